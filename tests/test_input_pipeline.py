"""The input is a pure function of (seed, step): epochs are permutations,
hosts split every batch, and the iterator state restores the stream."""

import numpy as np
import pytest

from pixel_models.data import ImageSource, input_pipeline

N = 10


@pytest.fixture(scope="module")
def source():
    images = np.arange(N, dtype=np.uint8).reshape(N, 1, 1, 1)
    return ImageSource.from_arrays(images, labels=np.arange(N) * 10)


def ids(batch) -> list[int]:
    return batch["image"].reshape(-1).tolist()


def test_every_epoch_is_a_permutation_and_epochs_differ(source):
    dataset = input_pipeline.train_batches(source, 5, seed=3, process_index=0, process_count=1)
    stream = [i for s in range(8) for i in ids(dataset[s])]  # 4 epochs
    epochs = [stream[e * N : (e + 1) * N] for e in range(4)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(N))
    assert len({tuple(e) for e in epochs}) == 4
    assert dataset[0]["label"].tolist() == [10 * i for i in ids(dataset[0])]


def test_batches_straddle_epochs_without_dropping(source):
    dataset = input_pipeline.train_batches(source, 4, seed=0, process_index=0, process_count=1)
    stream = [i for s in range(5) for i in ids(dataset[s])]  # 20 = 2 epochs
    assert sorted(stream[:N]) == sorted(stream[N:]) == list(range(N))


def test_same_seed_same_stream_other_seed_other_stream(source):
    def first(seed):
        d = input_pipeline.train_batches(source, 5, seed=seed, process_index=0, process_count=1)
        return ids(d[0]) + ids(d[1])

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_processes_split_each_global_batch(source):
    full = input_pipeline.train_batches(source, 4, seed=5, process_index=0, process_count=1)
    parts = [
        input_pipeline.train_batches(source, 4, seed=5, process_index=p, process_count=2)
        for p in range(2)
    ]
    for step in range(6):
        assert all(len(ids(p[step])) == 2 for p in parts)
        assert sorted(ids(parts[0][step]) + ids(parts[1][step])) == sorted(ids(full[step]))
    with pytest.raises(ValueError, match="multiple of the process count"):
        input_pipeline.train_batches(source, 5, seed=0, process_index=0, process_count=2)


def test_iterator_state_restores_the_stream(source):
    dataset = input_pipeline.train_batches(source, 3, seed=7, process_index=0, process_count=1)
    iterator = input_pipeline.train_iterator(dataset)
    for _ in range(4):
        next(iterator)
    state = iterator.get_state()
    expected = [ids(next(iterator)) for _ in range(5)]
    assert expected == [ids(dataset[s]) for s in range(4, 9)]
    resumed = input_pipeline.train_iterator(dataset)
    resumed.set_state(state)
    assert [ids(next(resumed)) for _ in range(5)] == expected


@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_batches_cover_every_example_once(source, process_count):
    seen = []
    for p in range(process_count):
        for batch, mask in input_pipeline.eval_batches(source, 4, p, process_count):
            assert len(batch["image"]) == len(mask) == 4 // process_count
            seen += [i for i, m in zip(ids(batch), mask, strict=True) if m]
    assert sorted(seen) == list(range(N))
