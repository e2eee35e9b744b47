import os
import pathlib

import pytest

from pixel_models.data import DATA_DIR_ENV


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The offline data folder (../shared/data in CI), from $PIXEL_MODELS_DATA_DIR."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        pytest.fail(f"set {DATA_DIR_ENV} to the offline data folder (e.g. ../shared/data)")
    return pathlib.Path(value)
