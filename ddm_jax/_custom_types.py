"""Shared jaxtyping aliases."""

from typing import Any

import jax
from jaxtyping import Array, Float, PRNGKeyArray

PyTree = Any
Key = PRNGKeyArray
Scalar = Float[Array, ""]
LatentVec = Float[Array, " k"]
NeuronVec = Float[Array, " n"]
Box = tuple[Float[Array, " k"], Float[Array, " k"]]
ArrayLike = jax.typing.ArrayLike
