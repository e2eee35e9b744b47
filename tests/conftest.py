import os
import pathlib

import jax
import pytest

from pixel_models.data import DATA_DIR_ENV

# Exact float32 matmuls on every backend (GPUs default to TF32), so the
# tolerances of the equivalence and causality checks mean the same everywhere.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The offline data folder (../shared/data in CI), from $PIXEL_MODELS_DATA_DIR."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        pytest.fail(f"set {DATA_DIR_ENV} to the offline data folder (e.g. ../shared/data)")
    return pathlib.Path(value)
