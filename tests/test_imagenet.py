"""Downsampled ImageNet (Chrabaszcz et al. 2017 `.npz` batches) on small
synthetic files with the real names: pixels and labels, plain and compressed,
counts from the headers, one-line errors, bounded host memory, and the
recipes end to end through the command lines."""

import gzip
import importlib
import json
import logging
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from pixel_models import data
from tests.helpers import ROOT, run_ok

TRAIN_FILES = [f"train_data_batch_{i}.npz" for i in range(1, 11)]
VAL_FILE = "val_data.npz"


def pattern(index: np.ndarray, size: int) -> np.ndarray:
    """The images of examples `index` (`int[n]`): `uint8[n, size, size, 3]`,
    pixel (y, x) colour c of example k = (k + 3y + 5x + 85c) mod 256."""
    k, y, x, c = np.ix_(index, np.arange(size), np.arange(size), np.arange(3))
    return ((k + 3 * y + 5 * x + 85 * c) % 256).astype(np.uint8)


def labels(index: np.ndarray) -> np.ndarray:
    """The 0-based labels of examples `index`: 0, 999, 998, ..."""
    return (999 * index) % 1000


def write_batch(path: pathlib.Path, index: np.ndarray, size: int, compressed: bool) -> None:
    """Examples `index` as the release writes a batch: `data` `uint8[n, 3*S*S]`,
    each row the R plane, then G, then B (row-major); `labels` 1..1000."""
    j = np.arange(3 * size * size)
    c, y, x = j // (size * size), j // size % size, j % size
    rows = ((index[:, None] + 3 * y + 5 * x + 85 * c) % 256).astype(np.uint8)
    save = np.savez_compressed if compressed else np.savez
    save(path, data=rows, labels=labels(index) + 1)


def write_imagenet(root, size, train_counts, val_count, compressed=()) -> dict[str, np.ndarray]:
    """`root/imagenet{size}/`: the ten train batches (`train_counts[i]` images)
    and the validation file; the files named in `compressed` by
    `np.savez_compressed`. Returns each split's example numbers, in order."""
    folder = root / f"imagenet{size}"
    folder.mkdir(parents=True)
    starts = np.cumsum([0, *train_counts])
    for name, start, stop in zip(TRAIN_FILES, starts[:-1], starts[1:], strict=True):
        write_batch(folder / name, np.arange(start, stop), size, name in compressed)
    validation = np.arange(10_000, 10_000 + val_count)  # other images than train's
    write_batch(folder / VAL_FILE, validation, size, VAL_FILE in compressed)
    return {"train": np.arange(starts[-1]), "validation": validation}


COUNTS = [3, 4, 2, 3, 2, 2, 3, 2, 2, 5]  # per train batch: 28 examples


def load(root, size, split, cache_dir=None):
    """`split` of imagenet{size} from `root`; `cache_dir` None: the default."""
    cache_dir = None if cache_dir is None else str(cache_dir)
    config = dict(name=f"imagenet{size}", data_dir=str(root), cache_dir=cache_dir)
    return data.load_split(ml_collections.ConfigDict(config), split)


def everything(source) -> dict[str, np.ndarray]:
    return source.batch(np.arange(len(source)))


@pytest.mark.parametrize("compressed", [(), ("train_data_batch_2.npz", VAL_FILE)])
def test_pixels_and_labels(tmp_path, compressed):
    examples = write_imagenet(tmp_path, 32, COUNTS, 6, compressed)
    train, validation = examples["train"], examples["validation"]
    for split, index in [
        ("train", train),
        ("validation", validation),
        ("train[2:9]", train[2:9]),  # across batches 1 to 4
        ("validation[-3:]+train[:4]", np.concatenate([validation[-3:], train[:4]])),
    ]:
        got = everything(load(tmp_path, 32, split, tmp_path / "cache"))
        np.testing.assert_array_equal(got["image"], pattern(index, 32))
        np.testing.assert_array_equal(got["label"], labels(index))
    assert labels(train[:2]).tolist() == [0, 999]  # 1 and 1000 in the files
    cached = sorted((tmp_path / "cache").rglob("*.npy"))
    assert [p.name.split(".")[:2] for p in cached] == [
        [pathlib.Path(name).stem, "data"] for name in sorted(compressed)
    ]


def test_a_compressed_batch_is_unpacked_once(tmp_path, monkeypatch):
    write_imagenet(tmp_path, 32, COUNTS, 6, compressed=(VAL_FILE,))
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "from_env"))
    load(tmp_path, 32, "validation", cache_dir=None)
    (cached,) = (tmp_path / "from_env").rglob("*.npy")
    written = cached.stat().st_mtime_ns
    again = everything(load(tmp_path, 32, "validation"))
    np.testing.assert_array_equal(again["image"], pattern(np.arange(10_000, 10_006), 32))
    assert cached.stat().st_mtime_ns == written
    assert not list((tmp_path / "from_env").rglob("*.tmp"))


def test_counts_come_from_the_files_and_a_smaller_copy_is_reported(tmp_path, caplog):
    write_imagenet(tmp_path, 32, COUNTS, 6)
    with caplog.at_level(logging.WARNING):
        assert len(load(tmp_path, 32, "train")) == sum(COUNTS)
    assert "hold 28 examples, the original release 1,281,167" in caplog.text
    spec = data.get_spec("imagenet32")  # the release's layout is unchanged
    assert (spec.num_examples("train"), spec.num_examples("validation")) == (1_281_167, 50_000)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _gzip(path):
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()


def _other_size(path):
    write_batch(path, np.arange(3), 64, compressed=False)


def _fewer_labels(path):
    with np.load(path) as batch:
        np.savez(path, data=batch["data"], labels=batch["labels"][:-1])


@pytest.mark.parametrize(
    "damage,split,error,message",
    [
        (
            pathlib.Path.unlink,
            "train[:2]",
            FileNotFoundError,
            r"missing: .*train_data_batch_7\.npz",
        ),
        (_truncate, "train", ValueError, r"train_data_batch_7\.npz: unreadable"),
        (_gzip, "train", ValueError, r"batch_7\.npz\.gz: a gzipped \.npz cannot be .*; gunzip it"),
        (_other_size, "train", ValueError, r"batch_7\.npz: data is uint8\[3, 12288\], expected"),
        (_fewer_labels, "train[-12:]", ValueError, r"batch_7\.npz: holds 2/3 examples, expected 3"),
    ],
)
def test_a_bad_file_is_a_one_line_error_naming_it(tmp_path, damage, split, error, message):
    write_imagenet(tmp_path, 32, COUNTS, 6)
    damage(tmp_path / "imagenet32" / "train_data_batch_7.npz")
    with pytest.raises(error, match=message) as raised:
        load(tmp_path, 32, split, tmp_path / "cache")
    assert "\n" not in str(raised.value)
    assert len(load(tmp_path, 32, "validation")) == 6  # the other split is fine


def test_an_unwritable_cache_folder_is_named(tmp_path):
    write_imagenet(tmp_path, 32, COUNTS, 6, compressed=(VAL_FILE,))
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match=f"cannot write the cache folder .*{data.CACHE_DIR_ENV}"):
        load(tmp_path, 32, "validation", cache_dir=tmp_path / "file" / "cache")


# In a fresh process: the resident memory (MiB) before loading, imports done,
# and the peak after loading the split and reading 8 shuffled train batches
# and 8 evaluation batches; and whether each image was its label's value.
_READ_BATCHES = """
import json, resource, sys
import ml_collections
from pixel_models import data
from tests.helpers import ROOT, run_ok
from pixel_models.data import input_pipeline

def right(batch):  # example k is all k mod 250, its label -k mod 1000
    value = (-batch["label"]) % 1000 % 250
    return bool((batch["image"] == value[:, None, None, None]).all())

data.split_slices("train", {"train": 1})  # imports TFDS before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak so far, MiB
config = dict(name="imagenet64", data_dir=sys.argv[1], cache_dir=sys.argv[2])
source = data.load_split(ml_collections.ConfigDict(config), "train")
train = input_pipeline.train_batches(source, 64, seed=0, process_index=0, process_count=1)
ok = all(right(train[step]) for step in range(8))
evaluation = input_pipeline.eval_batches(source, 64, process_index=0, process_count=1)
ok &= all(right(batch) for _, (batch, _) in zip(range(8), evaluation))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(before=before, peak=peak, ok=ok)))
"""


def write_constant_batch(path: pathlib.Path, index: np.ndarray, compressed: bool) -> None:
    """A 64x64 batch whose example k is all k mod 250 (its label is -k mod
    1000), written a chunk at a time."""
    rows = np.broadcast_to((index % 250).astype(np.uint8)[:, None], (len(index), 3 * 64 * 64))
    (np.savez_compressed if compressed else np.savez)(path, data=rows, labels=labels(index) + 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB")
def test_host_memory_stays_far_below_the_set_size(tmp_path):
    """A 241 MiB imagenet64 train set, a third of it in one compressed batch:
    loading it and reading 16 batches raises peak RSS by under a quarter of that."""
    folder = tmp_path / "imagenet64"
    folder.mkdir()
    counts = [1_400] * 9 + [8_000]
    starts = np.cumsum([0, *counts])
    for name, start, stop in zip(TRAIN_FILES, starts[:-1], starts[1:], strict=True):
        write_constant_batch(folder / name, np.arange(start, stop), name == TRAIN_FILES[-1])
    set_mib = sum(counts) * 3 * 64 * 64 / 2**20
    out = subprocess.run(
        [sys.executable, "-c", _READ_BATCHES, str(tmp_path), str(tmp_path / "cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"]
    growth = result["peak"] - result["before"]
    print(f"set {set_mib:.0f} MiB; peak RSS {result['before']:.0f} -> {result['peak']:.0f} MiB")
    assert growth < 0.25 * set_mib, result


CLI_RUNS = [
    pytest.param("imagenet32", "row_lstm,tiny", marks=pytest.mark.slow),
    pytest.param("imagenet64", "gated_pixelcnn,conditional,tiny", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("dataset,arg", CLI_RUNS)
def test_a_recipe_trains_and_evaluates_on_synthetic_files(tmp_path, dataset, arg):
    size = data.get_spec(dataset).image_shape[0]
    write_imagenet(tmp_path / "data", size, [4] * 10, 20, compressed=(TRAIN_FILES[0],))
    workdir = tmp_path / "run"
    run_ok(
        "experiments.train",
        f"--config=configs/{dataset}.py:{arg}",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={tmp_path / 'data'}",
        f"--config.dataset.cache_dir={tmp_path / 'cache'}",
        "--config.dataset.eval_split=validation[:16]",
        "--config.num_train_steps=2",
    )
    run_ok("experiments.evaluate", f"--workdir={workdir}", "--split=validation")
    result = json.loads((workdir / "eval_validation.json").read_text())
    assert result["num_examples"] == 20
    assert np.isfinite(result["bits_per_dim"])
    assert result["conditioned_on"] == ("label" if "conditional" in arg else None)


@pytest.mark.parametrize(
    "dataset,recipes",
    [("imagenet32", {"row_lstm", "gated_pixelcnn"}), ("imagenet64", {"gated_pixelcnn"})],
)
def test_recipes(dataset, recipes):
    module = importlib.import_module(f"configs.{dataset}")
    assert recipes <= set(module.RECIPES)
    for model in module.RECIPES:
        assert "bits/dim" in module.get_config(model).reference
        conditional = model in module.CONDITIONAL
        options = ["", ",tiny"] + [",conditional", ",conditional,tiny"] * conditional
        for option in options:
            config = module.get_config(model + option)
            assert config.dataset.name == dataset and config.model.num_levels == 256
            assert config.dataset.train_split == "train"
            assert config.dataset.eval_split.startswith("validation")
            if "conditional" in option:
                assert config.model.num_classes == 1000 and config.conditioning == "label"
