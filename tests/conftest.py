import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.random as jr  # noqa: E402
import pytest  # noqa: E402

# Strict dtype promotion is not switched on: optax (0.2.8) itself mixes Python floats and int32
# step counts in Adam's bias correction and fails under it.
jax.config.update("jax_debug_key_reuse", True)


@pytest.fixture
def key():
    return jr.key(0)
