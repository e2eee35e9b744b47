import atexit
import os
import pathlib
import shutil
import tempfile

import jax
import pytest

from pixel_models.data import DATA_DIR_ENV

# Exact float32 matmuls on every backend (GPUs default to TF32), so the
# tolerances of the equivalence and causality checks mean the same everywhere.
jax.config.update("jax_default_matmul_precision", "highest")

# One persistent compilation cache for the whole session, this process and the
# programs the tests run (they inherit the environment), so that a computation
# is compiled once per session rather than once per test and per program.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="pixel_models_tests_")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The offline data folder (../shared/data in CI), from $PIXEL_MODELS_DATA_DIR."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        pytest.fail(f"set {DATA_DIR_ENV} to the offline data folder (e.g. ../shared/data)")
    return pathlib.Path(value)
