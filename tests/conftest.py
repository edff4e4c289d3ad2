import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Most of the suite's time is XLA compiling the same functions in many processes (test workers,
# the CLI's subprocesses, notebook kernels). One compilation cache for the session, inherited
# by all of them, compiles each once; it starts empty, so nothing outlives the session.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _xla_cache = tempfile.mkdtemp(prefix="ddm-jax-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _xla_cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)
# The suite runs the default form of the network update (`fused_update`, a fixed form: no
# timing); the opt-in measured choice has its own tests. Nothing is kept in a user's cache.
os.environ.setdefault("DDM_JAX_CACHE_DIR", "")

import jax  # noqa: E402
from jaxtyping import install_import_hook  # noqa: E402

# Shapes and dtypes of every annotated function are checked at run time in the tests only.
with install_import_hook("ddm_jax", "beartype.beartype"):
    import ddm_jax  # noqa: E402

    for _name in ddm_jax._LAZY:  # analysis, figures, run folders load on first use: checked
        getattr(ddm_jax, _name)
import jax.random as jr  # noqa: E402
import pytest  # noqa: E402

# Strict dtype promotion is not switched on: optax (0.2.8) itself mixes Python floats and int32
# step counts in Adam's bias correction and fails under it.
jax.config.update("jax_debug_key_reuse", True)


@pytest.fixture
def key():
    return jr.key(0)


@pytest.fixture
def no_typecheck():
    """Switch the run-time type checker off, for tests that pass deliberately ill-typed input
    (a float neuron count, a NumPy NaN parameter) to check the library's own error messages,
    which are what a user without the checker sees."""
    import jaxtyping

    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


# Modules whose module-scoped fixture trains a network or builds targets (1-7 s): under
# ``pytest -n 2 --dist loadgroup`` (`make test`) each runs on one worker, so its fixture is
# built once, not once per worker. Other modules' tests go to whichever worker is free.
SHARED_FIXTURES = {"test_cli", "test_analysis_network", "test_zoo", "test_noise_matching",
                   "test_memory_run", "test_from_data", "test_analysis_irreversibility",
                   "test_composable", "test_fidelity", "test_memory", "test_run_validation",
                   "test_analysis_run"}  # fmt: skip


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__ if item.module is not None else ""
        if module in SHARED_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(module))
