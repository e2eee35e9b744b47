"""What each data set is: image shape, levels, splits and where its files are."""

import dataclasses
import functools
import pathlib
from collections.abc import Callable

import numpy as np

from pixel_models.data import formats

Arrays = tuple[np.ndarray, np.ndarray | None]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A data set.

    Attributes:
      image_shape: `(H, W, C)`.
      num_levels: values a subpixel takes.
      num_classes: label classes, 0 if unlabelled.
      tfds_name: the TFDS builder.
      files: per split, the files (relative to the data folder) in the
        original format; `read(paths)` turns them into arrays.
    """

    image_shape: tuple[int, int, int]
    num_levels: int
    num_classes: int
    tfds_name: str
    files: dict[str, tuple[str, ...]]
    read: Callable[[list[pathlib.Path]], Arrays]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> Arrays:
    images, labels = zip(*parts, strict=True)
    return np.concatenate(images), np.concatenate(labels)


def _read_amat(paths: list[pathlib.Path]) -> Arrays:
    return formats.read_amat(paths[0]), None


def _read_mnist(paths: list[pathlib.Path]) -> Arrays:
    return formats.read_mnist(*paths)


def _read_cifar(paths: list[pathlib.Path]) -> Arrays:
    return _concat([formats.read_cifar_batch(p) for p in paths])


def _read_imagenet(size: int, paths: list[pathlib.Path]) -> Arrays:
    return _concat([formats.read_imagenet_npz(p, size) for p in paths])


def _imagenet(size: int) -> DatasetSpec:
    return DatasetSpec(
        image_shape=(size, size, 3),
        num_levels=256,
        num_classes=1000,
        tfds_name=f"downsampled_imagenet/{size}x{size}",
        files={
            "train": tuple(f"imagenet{size}/train_data_batch_{i}.npz" for i in range(1, 11)),
            "validation": (f"imagenet{size}/val_data.npz",),
        },
        read=functools.partial(_read_imagenet, size),
    )


DATASETS: dict[str, DatasetSpec] = {
    "binarized_mnist": DatasetSpec(
        image_shape=(28, 28, 1),
        num_levels=2,
        num_classes=0,
        tfds_name="binarized_mnist",
        files={
            split: (f"binarized_mnist/binarized_mnist_{name}.amat",)
            for split, name in [("train", "train"), ("validation", "valid"), ("test", "test")]
        },
        read=_read_amat,
    ),
    "mnist": DatasetSpec(
        image_shape=(28, 28, 1),
        num_levels=256,
        num_classes=10,
        tfds_name="mnist",
        files={
            split: (f"mnist/{p}-images-idx3-ubyte", f"mnist/{p}-labels-idx1-ubyte")
            for split, p in [("train", "train"), ("test", "t10k")]
        },
        read=_read_mnist,
    ),
    "cifar10": DatasetSpec(
        image_shape=(32, 32, 3),
        num_levels=256,
        num_classes=10,
        tfds_name="cifar10",
        files={
            "train": tuple(f"cifar10/cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
            "test": ("cifar10/cifar-10-batches-bin/test_batch.bin",),
        },
        read=_read_cifar,
    ),
    "imagenet32": _imagenet(32),
    "imagenet64": _imagenet(64),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
