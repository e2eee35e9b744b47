"""Load a split of a data set from the original files or from TFDS.

Both sources give an `ImageSource`: a random-access collection (`len(source)`,
`source[i]`, `source.batch(indices)`; the `grain.RandomAccessDataSource`
protocol) over the split's examples in canonical order, the original files'
order. A split string is sliced in that order by `splits.split_slices` on
both sources, so "validation[:500]" names the same images on either.

A source holds stores (one per file read, or one TFDS data source per base
split) and, for each of its examples, which store and which row there. The
files source opens only the files its slices cover; ImageNet's it reads by
rows, as asked (`npz`), after counting every file of the splits named from
its headers.
"""

import dataclasses
import gzip
import os
import pathlib
import shutil
import tempfile

import ml_collections
import numpy as np
from absl import logging

from pixel_models.data import formats, splits
from pixel_models.data.datasets import DatasetSpec, Shard, get_spec
from pixel_models.data.npz import CACHE_DIR_ENV

DATA_DIR_ENV = "PIXEL_MODELS_DATA_DIR"
DEFAULT_CACHE_DIR = "~/.cache/pixel_models"


@dataclasses.dataclass(frozen=True)
class ArrayStore:
    """One shard's examples: `images[n, H, W, C]` uint8 (in memory, or planar
    rows on disk, read as indexed), `labels[n]` or None."""

    images: np.ndarray | formats.PlanarImages
    labels: np.ndarray | None

    def batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        example = {"image": self.images[rows]}
        if self.labels is not None:
            example["label"] = self.labels[rows]
        return example


@dataclasses.dataclass(frozen=True)
class TfdsStore:
    """A base split of a prepared TFDS data set, read by random access (array_record)."""

    source: object  # tfds ArrayRecordDataSource

    def batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        records = self.source.__getitems__([int(r) for r in rows])
        keys = [key for key in ("image", "label") if key in records[0]]
        return {key: np.stack([r[key] for r in records]) for key in keys}


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """A split: example `i` is row `rows[i]` of store `store_ids[i]`.

    Attributes:
      stores: where the examples are.
      store_ids: `int[N]`, the store of each example.
      rows: `int[N]`, its row in that store.
    """

    stores: tuple[ArrayStore | TfdsStore, ...]
    store_ids: np.ndarray
    rows: np.ndarray

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray | None = None) -> "ImageSource":
        """All of `images[N, H, W, C]` (and `labels[N]`), in order."""
        n = len(images)
        return cls((ArrayStore(images, labels),), np.zeros(n, np.int64), np.arange(n))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.batch(np.array([index])).items()}

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Examples `indices` (`int[n]`), in that order: `{"image": uint8[n, H, W, C],
        "label": int64[n]}` (label when the data has one)."""
        store_ids, rows = self.store_ids[indices], self.rows[indices]
        parts = [self.stores[s].batch(rows[store_ids == s]) for s in np.unique(store_ids)]
        # The parts hold the examples grouped by store: undo that grouping.
        position = np.argsort(np.argsort(store_ids, kind="stable"))
        return {key: np.concatenate([p[key] for p in parts])[position] for key in parts[0]}


def resolve_data_dir(data_dir: str | None) -> str | None:
    """The flag value, else $PIXEL_MODELS_DATA_DIR, else None (the TFDS default)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def resolve_cache_dir(cache_dir: str | None) -> pathlib.Path:
    """The flag value, else $PIXEL_MODELS_CACHE_DIR, else ~/.cache/pixel_models:
    where decompressed copies of compressed `.npz` members are kept."""
    folder = cache_dir or os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
    return pathlib.Path(folder).expanduser()


def load_split(dataset_config: ml_collections.ConfigDict, split: str) -> ImageSource:
    """Examples of `split` (e.g. "train[:90%]") of `dataset_config.name`, in canonical order."""
    name = dataset_config.name
    spec = get_spec(name)
    data_dir = resolve_data_dir(dataset_config.get("data_dir"))
    source = dataset_config.get("source", "files")
    if source == "files":
        cache_dir = resolve_cache_dir(dataset_config.get("cache_dir"))
        return _load_files(spec, name, data_dir, cache_dir, split)
    if source == "tfds":
        return _load_tfds(spec, name, data_dir, split, dataset_config.get("manual_dir"))
    raise ValueError(f"dataset.source must be 'files' or 'tfds', got {source!r}")


def _base_splits(spec: DatasetSpec, name: str, split: str) -> list[str]:
    """The base splits `split` names, each checked to be one of `spec`'s."""
    bases = splits.base_splits(split)
    for base in bases:
        if base not in spec.shards:
            raise ValueError(f"{name} has no split {base!r}; splits: {', '.join(spec.splits)}")
    return bases


def _canonical_indices(spec: DatasetSpec, name: str, split: str) -> list[tuple[str, np.ndarray]]:
    """`split` -> `[(base_split, int[n] indices in its canonical order), ...]`.

    The base splits' sizes come from the spec (for ImageNet, as `_counted`
    left it), so no file is read.
    """
    _base_splits(spec, name, split)
    sizes = {base: spec.num_examples(base) for base in spec.splits}
    return [(base, np.arange(sizes[base])[s]) for base, s in splits.split_slices(split, sizes)]


def _existing(path: pathlib.Path) -> pathlib.Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() else gz if gz.exists() else None


def _require_files(reader: str, files: list[pathlib.Path]) -> None:
    missing = [str(path) for path in files if _existing(path) is None]
    if missing:
        raise FileNotFoundError(
            f"{reader} needs these files (plain or .gz), missing: " + ", ".join(missing)
        )


def _counted(spec: DatasetSpec, name: str, root: pathlib.Path, split: str) -> DatasetSpec:
    """`spec` with the shards of the base splits `split` names counted by
    `spec.count` in their files' headers (all must be present: a slice's
    position depends on the files before it). A total other than the
    release's (a smaller copy) is logged, not refused."""
    bases = _base_splits(spec, name, split)
    _require_files(
        f"{name} split {split!r} (sized from every file of {', '.join(bases)})",
        [root / p for b in bases for s in spec.shards[b] for p in s.paths],
    )
    counted = {}
    for base in bases:
        counted[base] = tuple(
            dataclasses.replace(s, num_examples=spec.count([_existing(root / p) for p in s.paths]))
            for s in spec.shards[base]
        )
        found, published = sum(s.num_examples for s in counted[base]), spec.num_examples(base)
        if found != published:
            logging.warning(
                f"{name} split {base!r}: the files in {root} hold {found:,} examples, the "
                f"original release {published:,}; using the files"
            )
    return dataclasses.replace(spec, shards=spec.shards | counted)


def _read_shard(
    spec: DatasetSpec, root: pathlib.Path, shard: Shard, cache_dir: pathlib.Path
) -> ArrayStore:
    """`shard`'s examples from its files under `root`, counted against the spec."""
    paths = [_existing(root / path) for path in shard.paths]
    images, labels = spec.read(paths, cache_dir)
    counts = {len(images)} | ({len(labels)} if labels is not None else set())
    if counts != {shard.num_examples}:
        raise ValueError(
            f"{', '.join(map(str, paths))}: holds {'/'.join(map(str, sorted(counts)))} examples, "
            f"expected {shard.num_examples}; is it the original file?"
        )
    return ArrayStore(images, labels)


def _load_files(
    spec: DatasetSpec, name: str, data_dir: str | None, cache_dir: pathlib.Path, split: str
) -> ImageSource:
    if data_dir is None:
        raise FileNotFoundError(
            f"no data folder for {name}: pass --config.dataset.data_dir or set ${DATA_DIR_ENV}"
        )
    root = pathlib.Path(data_dir).expanduser()
    if spec.count is not None:
        spec = _counted(spec, name, root, split)
    parts = []  # per slice: (base, shard[n], row in the shard[n]) of its examples
    for base, indices in _canonical_indices(spec, name, split):
        starts = np.cumsum([0] + [shard.num_examples for shard in spec.shards[base]])
        shard = np.searchsorted(starts, indices, side="right") - 1
        parts.append((base, shard, indices - starts[shard]))
    needed = list(dict.fromkeys((b, int(i)) for b, shard, _ in parts for i in np.unique(shard)))
    _require_files(
        f"{name} split {split!r}", [root / p for b, i in needed for p in spec.shards[b][i].paths]
    )
    stores = tuple(_read_shard(spec, root, spec.shards[b][i], cache_dir) for b, i in needed)
    store_id = {key: i for i, key in enumerate(needed)}
    store_ids = [
        np.array([store_id.get((base, i), -1) for i in range(len(spec.shards[base]))])[shard]
        for base, shard, _ in parts
    ]
    return ImageSource(
        stores, np.concatenate(store_ids), np.concatenate([rows for _, _, rows in parts])
    )


def tfds_rows(split: str, num_examples: int) -> np.ndarray:
    """`int[N]`: the TFDS row of each example of base split `split`, in file order.

    For builders whose `_generate_examples` keys example `i` of a split by `i`
    (its index in the files): TFDS's `Writer` (core/writer.py) sorts a split by
    `hashing.Hasher(salt=split name).hash_key(key)` (core/shuffle.py,
    `Shuffler`) and writes the shards in that order, so example `i` is at the
    rank of its key's hash.
    """
    from tensorflow_datasets.core import hashing  # only here: importing TFDS costs seconds

    hasher = hashing.Hasher(split)
    hashes = [hasher.hash_key(i) for i in range(num_examples)]
    file_rows = sorted(range(num_examples), key=hashes.__getitem__)  # TFDS row -> file row
    rows = np.empty(num_examples, np.int64)
    rows[file_rows] = np.arange(num_examples)
    return rows


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
                _existing(pathlib.Path(manual_dir) / path)
                for shards in spec.shards.values()
                for shard in shards
                for path in shard.paths
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


def _load_tfds(
    spec: DatasetSpec, name: str, data_dir: str | None, split: str, manual_dir: str | None
) -> ImageSource:
    parts = _canonical_indices(spec, name, split)
    if not spec.tfds_keys_are_file_indices and any(
        len(indices) != spec.num_examples(base) for base, indices in parts
    ):
        raise ValueError(
            f"{name} split {split!r}: TFDS's order of {spec.tfds_name} is not the files' order, "
            "so only whole splits are read from it; slice with dataset.source=files"
        )
    builder = prepare_tfds(spec, data_dir, manual_dir)
    bases = list(dict.fromkeys(base for base, _ in parts))
    stores, tfds_order = [], {}
    for base in bases:
        store, n = TfdsStore(builder.as_data_source(split=base)), spec.num_examples(base)
        if len(store.source) != n:
            raise ValueError(
                f"TFDS {spec.tfds_name} split {base!r} holds {len(store.source)} examples, "
                f"the files {n}: not the same data; use dataset.source=files"
            )
        stores.append(store)
        tfds_order[base] = tfds_rows(base, n) if spec.tfds_keys_are_file_indices else np.arange(n)
    return ImageSource(
        tuple(stores),
        np.concatenate([np.full(len(indices), bases.index(base)) for base, indices in parts]),
        np.concatenate([tfds_order[base][indices] for base, indices in parts]),
    )
