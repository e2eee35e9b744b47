"""Image data sets as integer arrays `[H, W, C]`, from original files or TFDS."""

from pixel_models.data.datasets import DATASETS, DatasetSpec, Shard, get_spec
from pixel_models.data.npz import CACHE_DIR_ENV
from pixel_models.data.sources import (
    DATA_DIR_ENV,
    ImageSource,
    load_split,
    prepare_tfds,
    resolve_cache_dir,
    resolve_data_dir,
    tfds_rows,
)
from pixel_models.data.splits import split_slices

__all__ = [
    "CACHE_DIR_ENV",
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetSpec",
    "ImageSource",
    "Shard",
    "get_spec",
    "load_split",
    "prepare_tfds",
    "resolve_cache_dir",
    "resolve_data_dir",
    "split_slices",
    "tfds_rows",
]
