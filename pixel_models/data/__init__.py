"""Image data sets as integer arrays `[H, W, C]`, from original files or TFDS."""

from pixel_models.data.datasets import DATASETS, DatasetSpec, get_spec
from pixel_models.data.sources import (
    DATA_DIR_ENV,
    ImageData,
    TfdsImages,
    load_split,
    prepare_tfds,
    resolve_data_dir,
)
from pixel_models.data.splits import epoch_permutation, split_slices

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetSpec",
    "ImageData",
    "TfdsImages",
    "epoch_permutation",
    "get_spec",
    "load_split",
    "prepare_tfds",
    "resolve_data_dir",
    "split_slices",
]
