"""Shared jaxtyping aliases."""

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

PyTree = Any
Key = PRNGKeyArray
Scalar = Float[Array, ""]
LatentVec = Float[Array, " k"]
NeuronVec = Float[Array, " n"]
Box = tuple[Float[Array, " k"], Float[Array, " k"]]
ArrayLike = jax.typing.ArrayLike | Sequence  # arrays, scalars, nested lists
# one latent state (k,) or a batch (B, k), as a JAX/NumPy array or nested lists
LatentStates = Float[Array | np.ndarray, "*batch k"] | Sequence
