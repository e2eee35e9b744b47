"""What each data set is: image shape, levels, splits and where its files are."""

import dataclasses
import functools
import pathlib
from collections.abc import Callable

import numpy as np

from pixel_models.data import formats

# Images `[n, H, W, C]` (an array, or planar rows converted as indexed) and labels or None.
Arrays = tuple[np.ndarray | formats.PlanarImages, np.ndarray | None]


@dataclasses.dataclass(frozen=True)
class Shard:
    """A run of consecutive examples of a split, stored in files read together.

    Attributes:
      paths: the files (relative to the data folder), e.g. MNIST's images and
        labels, in the order `DatasetSpec.read` takes them.
      num_examples: how many examples they hold in the original release.
    """

    paths: tuple[str, ...]
    num_examples: int


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A data set.

    A split's canonical order is its original files' order: its shards in
    sequence, each shard's examples in file order. Split strings slice that
    order on every source.

    Attributes:
      image_shape: `(H, W, C)`.
      num_levels: values a subpixel takes.
      num_classes: label classes, 0 if unlabelled.
      tfds_name: the TFDS builder; the split names are TFDS's.
      shards: per split, its shards in the original format, in order.
      read: one shard's files and a writable cache folder -> `uint8[n, H, W, C]`
        images, `int64[n]` labels or None. Only a reader that converts a file
        to read it in place (ImageNet's compressed `.npz`) writes there.
      tfds_keys_are_file_indices: the TFDS builder's `_generate_examples`
        yields each example's index in the split's files as its key, so the
        canonical order can be recomputed on the TFDS source.
      count: one shard's files -> how many examples they hold, from their
        headers alone. Given where copies smaller than the release are common
        (ImageNet: subsets, synthetic test files): a split's size then comes
        from its files, and `shards` keeps the release's counts. None: the
        files hold the release's counts, checked when read.
    """

    image_shape: tuple[int, int, int]
    num_levels: int
    num_classes: int
    tfds_name: str
    shards: dict[str, tuple[Shard, ...]]
    read: Callable[[list[pathlib.Path], pathlib.Path], Arrays]
    tfds_keys_are_file_indices: bool
    count: Callable[[list[pathlib.Path]], int] | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.shards)

    def num_examples(self, split: str) -> int:
        return sum(shard.num_examples for shard in self.shards[split])


def _read_amat(paths: list[pathlib.Path], cache_dir: pathlib.Path) -> Arrays:
    return formats.read_amat(paths[0]), None


def _read_mnist(paths: list[pathlib.Path], cache_dir: pathlib.Path) -> Arrays:
    return formats.read_mnist(*paths)


def _read_cifar(paths: list[pathlib.Path], cache_dir: pathlib.Path) -> Arrays:
    return formats.read_cifar_batch(paths[0])


def _read_imagenet(size: int, paths: list[pathlib.Path], cache_dir: pathlib.Path) -> Arrays:
    return formats.read_imagenet_npz(paths[0], size, cache_dir)


def _count_imagenet(paths: list[pathlib.Path]) -> int:
    return formats.imagenet_npz_rows(paths[0])


def _one_file_shards(files: list[tuple[str, int]]) -> tuple[Shard, ...]:
    return tuple(Shard((path,), count) for path, count in files)


def _imagenet(size: int) -> DatasetSpec:
    # Chrabaszcz et al.'s image2numpy_imagenet_train.py (Imagenet32_Scripts)
    # writes the 1,281,167 shuffled training images as nine batches of
    # 1,281,167 // 10 = 128,116 and the remaining 128,123 in batch 10; the
    # 50,000 validation images go to one file. Those are the counts below;
    # the loader takes a split's size from its files' headers (`count`), so a
    # smaller copy in the same layout loads too (and is reported).
    # TFDS's downsampled_imagenet is another release (van den Oord et al.
    # 2016: unlabelled images keyed by archive member name), not these files.
    return DatasetSpec(
        image_shape=(size, size, 3),
        num_levels=256,
        num_classes=1000,
        tfds_name=f"downsampled_imagenet/{size}x{size}",
        shards={
            "train": _one_file_shards(
                [(f"imagenet{size}/train_data_batch_{i}.npz", 128_116) for i in range(1, 10)]
                + [(f"imagenet{size}/train_data_batch_10.npz", 128_123)]
            ),
            "validation": _one_file_shards([(f"imagenet{size}/val_data.npz", 50_000)]),
        },
        read=functools.partial(_read_imagenet, size),
        tfds_keys_are_file_indices=False,
        count=_count_imagenet,
    )


DATASETS: dict[str, DatasetSpec] = {
    "binarized_mnist": DatasetSpec(
        image_shape=(28, 28, 1),
        num_levels=2,
        num_classes=0,
        tfds_name="binarized_mnist",
        shards={
            split: _one_file_shards([(f"binarized_mnist/binarized_mnist_{name}.amat", count)])
            for split, name, count in [
                ("train", "train", 50_000),
                ("validation", "valid", 10_000),
                ("test", "test", 10_000),
            ]
        },
        read=_read_amat,
        tfds_keys_are_file_indices=True,
    ),
    "mnist": DatasetSpec(
        image_shape=(28, 28, 1),
        num_levels=256,
        num_classes=10,
        tfds_name="mnist",
        shards={
            split: (Shard((f"mnist/{p}-images-idx3-ubyte", f"mnist/{p}-labels-idx1-ubyte"), count),)
            for split, p, count in [("train", "train", 60_000), ("test", "t10k", 10_000)]
        },
        read=_read_mnist,
        tfds_keys_are_file_indices=True,
    ),
    "cifar10": DatasetSpec(
        image_shape=(32, 32, 3),
        num_levels=256,
        num_classes=10,
        tfds_name="cifar10",
        shards={
            "train": _one_file_shards(
                [(f"cifar10/cifar-10-batches-bin/data_batch_{i}.bin", 10_000) for i in range(1, 6)]
            ),
            "test": _one_file_shards([("cifar10/cifar-10-batches-bin/test_batch.bin", 10_000)]),
        },
        read=_read_cifar,
        tfds_keys_are_file_indices=True,
    ),
    "imagenet32": _imagenet(32),
    "imagenet64": _imagenet(64),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
