import gzip

import ml_collections
import numpy as np
import pytest

from pixel_models import data


def load(data_dir, name, split, **fields):
    return data.load_split(
        ml_collections.ConfigDict(dict(name=name, data_dir=str(data_dir), **fields)), split
    )


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
    assert len(source) == count
    assert source.images.shape == (count, *spec.image_shape)
    assert source.images.dtype == np.uint8
    assert source.images.max() == spec.num_levels - 1 and source.images.min() == 0
    if spec.num_classes:
        assert source.labels.shape == (count,)
        assert set(np.unique(source.labels)) == set(range(spec.num_classes))


def test_binarized_mnist_first_record_is_the_first_line(data_dir):
    with gzip.open(data_dir / "binarized_mnist/binarized_mnist_test.amat.gz", "rt") as f:
        first = np.array(f.readline().split(), np.uint8)
    np.testing.assert_array_equal(
        load(data_dir, "binarized_mnist", "test").images[0].ravel(), first
    )


def test_mnist_first_records(data_dir):
    train, test = load(data_dir, "mnist", "train"), load(data_dir, "mnist", "test")
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    raw = gzip.decompress((data_dir / "mnist/t10k-images-idx3-ubyte.gz").read_bytes())
    assert raw[16 : 16 + 784] == test.images[0].tobytes()  # 16-byte IDX header


def test_cifar_first_record_is_planar_rgb(data_dir):
    test = load(data_dir, "cifar10", "test")
    raw = gzip.decompress(
        (data_dir / "cifar10/cifar-10-batches-bin/test_batch.bin.gz").read_bytes()
    )
    assert test.labels[:5].tolist() == [3, 8, 8, 0, 6] == list(raw[0 : 3073 * 5 : 3073])
    image = test.images[0]
    assert raw[1:1025] == image[..., 0].tobytes()  # R plane
    assert raw[2049:3073] == image[..., 2].tobytes()  # B plane


def test_split_slicing(data_dir):
    full = load(data_dir, "mnist", "train")
    held_out = load(data_dir, "mnist", "train[50000:]")
    np.testing.assert_array_equal(held_out.images, full.images[50000:])
    np.testing.assert_array_equal(held_out.labels, full.labels[50000:])
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
    with pytest.raises(FileNotFoundError, match="mnist/train-images-idx3-ubyte"):
        load(tmp_path, "mnist", "train")


def test_no_data_dir_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=data.DATA_DIR_ENV):
        data.load_split(ml_collections.ConfigDict(dict(name="mnist", data_dir=None)), "test")


def test_epoch_permutation_is_deterministic():
    a = data.epoch_permutation(1000, seed=3, epoch=2)
    np.testing.assert_array_equal(a, data.epoch_permutation(1000, seed=3, epoch=2))
    np.testing.assert_array_equal(np.sort(a), np.arange(1000))
    assert not np.array_equal(a, data.epoch_permutation(1000, seed=3, epoch=3))
    assert not np.array_equal(a, data.epoch_permutation(1000, seed=4, epoch=2))


@pytest.mark.slow
def test_tfds_binarized_mnist_prepares_offline(tmp_path, data_dir):
    """The real TFDS builder, prepared from the offline files, holds the same images."""
    tfds_split = load(tmp_path, "binarized_mnist", "test", source="tfds", manual_dir=str(data_dir))
    files_split = load(data_dir, "binarized_mnist", "test")
    assert len(tfds_split) == 10_000
    tfds_images = tfds_split.batch(np.arange(len(tfds_split)))["image"]

    # TFDS stores examples in its own order: compare as sorted sets of rows.
    def rows(images):
        flat = images.reshape(len(images), -1)
        return flat[np.lexsort(flat.T[::-1])]

    np.testing.assert_array_equal(rows(tfds_images), rows(files_split.images))
