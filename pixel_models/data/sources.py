"""Load a split of a data set from the original files or from TFDS.

Both sources give a random-access collection (`len(source)`,
`source[i] -> {"image": uint8[H, W, C], "label": int}`; the
`grain.RandomAccessDataSource` protocol) with `source.batch(indices)`.
"""

import dataclasses
import gzip
import os
import pathlib
import shutil
import tempfile

import ml_collections
import numpy as np

from pixel_models.data import splits
from pixel_models.data.datasets import DatasetSpec, get_spec

DATA_DIR_ENV = "PIXEL_MODELS_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class ImageData:
    """A split held in memory: `images[N, H, W, C]` uint8, `labels[N]` or None."""

    images: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.batch(index)

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Examples at `indices` (an int or an int array), stacked."""
        example = {"image": self.images[indices]}
        if self.labels is not None:
            example["label"] = self.labels[indices]
        return example


@dataclasses.dataclass(frozen=True)
class TfdsImages:
    """A split of a prepared TFDS data set, read by random access (array_record)."""

    source: object  # tfds ArrayRecordDataSource

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.source[index]

    def batch(self, indices) -> dict[str, np.ndarray]:
        records = self.source.__getitems__([int(i) for i in np.atleast_1d(indices)])
        return {key: np.stack([r[key] for r in records]) for key in records[0]}


def resolve_data_dir(data_dir: str | None) -> str | None:
    """The flag value, else $PIXEL_MODELS_DATA_DIR, else None (the TFDS default)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def load_split(dataset_config: ml_collections.ConfigDict, split: str) -> ImageData | TfdsImages:
    """Examples of `split` (e.g. "train[:90%]") of `dataset_config.name`."""
    spec = get_spec(dataset_config.name)
    data_dir = resolve_data_dir(dataset_config.get("data_dir"))
    source = dataset_config.get("source", "files")
    if source == "files":
        return _load_files(spec, dataset_config.name, data_dir, split)
    if source == "tfds":
        return _load_tfds(spec, data_dir, split, dataset_config.get("manual_dir"))
    raise ValueError(f"dataset.source must be 'files' or 'tfds', got {source!r}")


def _existing(path: pathlib.Path) -> pathlib.Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() else gz if gz.exists() else None


def _load_files(spec: DatasetSpec, name: str, data_dir: str | None, split: str) -> ImageData:
    if data_dir is None:
        raise FileNotFoundError(
            f"no data folder for {name}: pass --config.dataset.data_dir or set ${DATA_DIR_ENV}"
        )
    root = pathlib.Path(data_dir).expanduser()
    arrays = {}
    for base in splits.base_splits(split):
        if base not in spec.files:
            raise ValueError(f"{name} has no split {base!r}; splits: {', '.join(spec.splits)}")
        paths = [root / f for f in spec.files[base]]
        found = [_existing(p) for p in paths]
        missing = [str(p) for p, f in zip(paths, found, strict=True) if f is None]
        if missing:
            raise FileNotFoundError(
                f"{name} split {base!r} needs these files (plain or .gz), missing: "
                + ", ".join(missing)
            )
        arrays[base] = spec.read(found)
    parts = splits.split_slices(split, {b: len(images) for b, (images, _) in arrays.items()})
    images = np.concatenate([arrays[b][0][s] for b, s in parts])
    labels = arrays[parts[0][0]][1]
    if labels is not None:
        labels = np.concatenate([arrays[b][1][s] for b, s in parts])
    return ImageData(images, labels)


def prepare_tfds(spec: DatasetSpec, data_dir: str | None, manual_dir: str | None):
    """The TFDS builder of `spec`, prepared (array_record) in `data_dir`.

    `manual_dir` is passed to TFDS as `DownloadConfig(manual_dir=...)`. A folder
    in this project's files layout (e.g. ../shared/data, gzipped) is accepted
    too: its files for this data set are unpacked to a temporary manual dir,
    which is how `binarized_mnist` prepares offline.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds_name, data_dir=data_dir, file_format="array_record")
    if builder.is_prepared():
        return builder
    with tempfile.TemporaryDirectory() as tmp:
        if manual_dir is not None:
            files = [
                _existing(pathlib.Path(manual_dir) / f) for fs in spec.files.values() for f in fs
            ]
            if all(files):
                for f in files:
                    target = pathlib.Path(tmp) / f.name.removesuffix(".gz")
                    opener = gzip.open if f.suffix == ".gz" else open
                    with opener(f, "rb") as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                manual_dir = tmp
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    return builder


def _load_tfds(spec: DatasetSpec, data_dir: str | None, split: str, manual_dir) -> TfdsImages:
    builder = prepare_tfds(spec, data_dir, manual_dir)
    return TfdsImages(builder.as_data_source(split=split))
