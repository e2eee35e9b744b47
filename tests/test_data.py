import dataclasses
import gzip

import ml_collections
import numpy as np
import pytest

from pixel_models import data
from pixel_models.data import formats

CIFAR = "cifar10/cifar-10-batches-bin"


def load(data_dir, name, split, **fields):
    return data.load_split(
        ml_collections.ConfigDict(dict(name=name, data_dir=str(data_dir), **fields)), split
    )


def everything(source) -> dict[str, np.ndarray]:
    """All of `source`, in order: `{"image": [N, H, W, C], "label": [N]}`."""
    return source.batch(np.arange(len(source)))


@pytest.mark.parametrize(
    "name,split,count",
    [
        ("binarized_mnist", "train", 50_000),
        ("binarized_mnist", "validation", 10_000),
        ("binarized_mnist", "test", 10_000),
        ("mnist", "train", 60_000),
        ("mnist", "test", 10_000),
        ("cifar10", "test", 10_000),
    ],
)
def test_counts_shapes_and_levels(data_dir, name, split, count):
    source = load(data_dir, name, split)
    spec = data.get_spec(name)
    assert len(source) == count == spec.num_examples(split)
    examples = everything(source)
    images = examples["image"]
    assert images.shape == (count, *spec.image_shape)
    assert images.dtype == np.uint8
    assert images.max() == spec.num_levels - 1 and images.min() == 0
    if spec.num_classes:
        assert examples["label"].shape == (count,)
        assert set(np.unique(examples["label"])) == set(range(spec.num_classes))


@pytest.mark.parametrize("name", ["imagenet32", "imagenet64"])
def test_imagenet_file_counts_add_up_to_the_published_totals(name):
    """The spec keeps the release's layout; the loader takes a split's size
    from its files' headers (tests/test_imagenet.py)."""
    spec = data.get_spec(name)
    assert (spec.num_examples("train"), spec.num_examples("validation")) == (1_281_167, 50_000)


def test_binarized_mnist_first_record_is_the_first_line(data_dir):
    with gzip.open(data_dir / "binarized_mnist/binarized_mnist_test.amat.gz", "rt") as f:
        first = np.array(f.readline().split(), np.uint8)
    np.testing.assert_array_equal(
        load(data_dir, "binarized_mnist", "test")[0]["image"].ravel(), first
    )


def test_mnist_first_records(data_dir):
    train, test = load(data_dir, "mnist", "train[:5]"), load(data_dir, "mnist", "test[:5]")
    assert everything(train)["label"].tolist() == [5, 0, 4, 1, 9]
    assert everything(test)["label"].tolist() == [7, 2, 1, 0, 4]
    raw = gzip.decompress((data_dir / "mnist/t10k-images-idx3-ubyte.gz").read_bytes())
    assert raw[16 : 16 + 784] == test[0]["image"].tobytes()  # 16-byte IDX header


def test_cifar_first_record_is_planar_rgb(data_dir):
    test = everything(load(data_dir, "cifar10", "test[:5]"))
    raw = gzip.decompress((data_dir / CIFAR / "test_batch.bin.gz").read_bytes())
    assert test["label"].tolist() == [3, 8, 8, 0, 6] == list(raw[0 : 3073 * 5 : 3073])
    image = test["image"][0]
    assert raw[1:1025] == image[..., 0].tobytes()  # R plane
    assert raw[2049:3073] == image[..., 2].tobytes()  # B plane


def test_split_slicing(data_dir):
    full = everything(load(data_dir, "mnist", "train"))
    held_out = everything(load(data_dir, "mnist", "train[50000:]"))
    np.testing.assert_array_equal(held_out["image"], full["image"][50000:])
    np.testing.assert_array_equal(held_out["label"], full["label"][50000:])
    assert len(load(data_dir, "binarized_mnist", "train[:90%]")) == 45_000
    mixed = load(data_dir, "binarized_mnist", "train[:10]+test[-5:]")
    assert len(mixed) == 15
    batch = mixed.batch(np.array([0, 14]))
    assert batch["image"].shape == (2, 28, 28, 1)


def test_bad_split_and_dataset(data_dir):
    with pytest.raises(ValueError, match="has no split 'valid'"):
        load(data_dir, "binarized_mnist", "valid")
    with pytest.raises(ValueError, match="bad split"):
        load(data_dir, "mnist", "train[:70000]")
    with pytest.raises(ValueError, match="unknown dataset"):
        load(data_dir, "svhn", "train")
    with pytest.raises(ValueError, match="dataset.source"):
        load(data_dir, "mnist", "train", source="hub")


def test_missing_files_are_named(tmp_path, data_dir):
    with pytest.raises(FileNotFoundError, match="data_batch_2.bin"):
        load(data_dir, "cifar10", "train")  # only data_batch_1 is in the offline copy
    with pytest.raises(FileNotFoundError, match="data_batch_2.bin"):
        load(data_dir, "cifar10", "train[:45000]")  # the recipe's split needs them all
    with pytest.raises(FileNotFoundError, match="mnist/train-images-idx3-ubyte"):
        load(tmp_path, "mnist", "train")


def test_cifar10_slice_reads_only_the_files_it_covers(data_dir):
    batch_1 = formats.read_cifar_batch(data_dir / CIFAR / "data_batch_1.bin.gz")
    source = load(data_dir, "cifar10", "train[:9000]")
    examples = everything(source)
    assert len(source) == 9000
    np.testing.assert_array_equal(examples["image"], batch_1[0][:9000])
    np.testing.assert_array_equal(examples["label"], batch_1[1][:9000])
    held_out = everything(load(data_dir, "cifar10", "train[9000:10000]"))
    np.testing.assert_array_equal(held_out["image"], batch_1[0][9000:])


def write_cifar_batch(path, images, labels):
    """`uint8[n, 32, 32, 3]`, `[n]` as a CIFAR-10 binary batch file."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    path.write_bytes(np.concatenate([labels[:, None].astype(np.uint8), planes], 1).tobytes())


@pytest.fixture
def two_file_dataset(tmp_path, monkeypatch):
    """A CIFAR-format data set `tiny` whose train split is a.bin (3 examples)
    then b.bin (4), in tmp_path; returns (images[7], labels[7])."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 32, 32, 3), np.uint8)
    labels = np.arange(7) % 10
    write_cifar_batch(tmp_path / "a.bin", images[:3], labels[:3])
    write_cifar_batch(tmp_path / "b.bin", images[3:], labels[3:])
    shards = (data.Shard(("a.bin",), 3), data.Shard(("b.bin",), 4))
    spec = dataclasses.replace(data.get_spec("cifar10"), shards={"train": shards})
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    return images, labels


def test_a_split_spans_files_in_their_order(tmp_path, two_file_dataset):
    images, labels = two_file_dataset
    source = load(tmp_path, "tiny", "train[1:6]")
    assert len(source) == 5
    np.testing.assert_array_equal(everything(source)["image"], images[1:6])
    batch = source.batch(np.array([4, 0, 2, 1]))  # rows come back in the asked order
    np.testing.assert_array_equal(batch["image"], images[[5, 1, 3, 2]])
    np.testing.assert_array_equal(batch["label"], labels[[5, 1, 3, 2]])
    mixed = everything(load(tmp_path, "tiny", "train[-1:]+train[:2]"))
    np.testing.assert_array_equal(mixed["label"], labels[[6, 0, 1]])


def test_only_the_covered_files_are_read(tmp_path, two_file_dataset):
    images, _ = two_file_dataset
    (tmp_path / "b.bin").unlink()
    first_file = everything(load(tmp_path, "tiny", "train[:3]"))
    np.testing.assert_array_equal(first_file["image"], images[:3])
    with pytest.raises(FileNotFoundError, match="b.bin"):
        load(tmp_path, "tiny", "train[:4]")


def test_a_file_with_another_count_is_named(tmp_path, two_file_dataset):
    images, labels = two_file_dataset
    write_cifar_batch(tmp_path / "b.bin", images[:2], labels[:2])
    with pytest.raises(ValueError, match="b.bin: holds 2 examples, expected 4"):
        load(tmp_path, "tiny", "train[2:]")
    assert len(load(tmp_path, "tiny", "train[:3]")) == 3  # a.bin alone is fine


def test_no_data_dir_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=data.DATA_DIR_ENV):
        data.load_split(ml_collections.ConfigDict(dict(name="mnist", data_dir=None)), "test")


def test_tfds_rows_follow_the_tfds_shuffler(tmp_path):
    """TFDS writes a split in the order of its `Shuffler`, keyed here by file index."""
    from tensorflow_datasets.core import shuffle

    shuffler = shuffle.Shuffler(tmp_path, hash_salt="validation")
    for i in range(1000):
        shuffler.add(i, str(i).encode())
    file_rows = np.array([int(example) for _, example in shuffler])  # TFDS row -> file row
    np.testing.assert_array_equal(file_rows[data.tfds_rows("validation", 1000)], np.arange(1000))
    # As seen on a prepared binarized_mnist: file test rows 0..4 are these TFDS rows.
    assert data.tfds_rows("test", 10_000)[:5].tolist() == [9634, 3449, 6749, 5372, 5207]


def test_tfds_refuses_slices_out_of_file_order(tmp_path):
    """downsampled_imagenet's TFDS keys are archive names, not file indices."""
    with pytest.raises(ValueError, match="dataset.source=files"):
        load(tmp_path, "imagenet32", "validation[:500]", source="tfds")


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory, data_dir):
    """A TFDS folder with binarized_mnist prepared offline from the files (once)."""
    folder = tmp_path_factory.mktemp("tfds")
    data.prepare_tfds(data.get_spec("binarized_mnist"), str(folder), str(data_dir))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "split",
    [
        "train",
        "validation",
        "test",
        "test[:5]",
        "validation[100:200]",
        "train[-7:]",
        "test[:3]+validation[:2]",
        "train[:1%]+test[10:20]+train[:3]",
    ],
)
def test_tfds_and_files_name_the_same_images(tfds_dir, data_dir, split):
    """The real TFDS builder, prepared from the offline files: a split string
    names the same images, in the same order, on both sources."""
    from_tfds = load(tfds_dir, "binarized_mnist", split, source="tfds")
    from_files = load(data_dir, "binarized_mnist", split)
    assert len(from_tfds) == len(from_files)
    np.testing.assert_array_equal(everything(from_tfds)["image"], everything(from_files)["image"])
