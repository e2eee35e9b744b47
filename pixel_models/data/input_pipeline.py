"""Deterministic, checkpointable input: which examples a step sees follows
from the seed and the step alone.

Training reads an endless stream: epoch e is the examples in the order of a
permutation fixed by `(seed, e)` (grain's per-epoch shuffle), so no example is
dropped or repeated within an epoch. Global batch s is stream positions
`[s*B, (s+1)*B)`; process p of P reads positions `p, p+P, ...` of it, so each
host loads only its own rows. The grain iterator's state (its next batch
index) is what a checkpoint stores.

Evaluation reads a split once, in order, in fixed-size global batches; the
last one is padded and carries a mask, so every example counts exactly once.
"""

from collections.abc import Iterator

import grain
import jax
import numpy as np

from pixel_models.data.sources import ImageSource


def train_batches(
    source: ImageSource,
    global_batch_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> grain.MapDataset:
    """`dataset[s]` = this process's rows of global batch s,
    `{"image": uint8[B/P, H, W, C], "label": [B/P]}` (label when the data has one)."""
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % process_count:
        raise ValueError(
            f"batch_size={global_batch_size} must be a multiple of the process count "
            f"({process_count})"
        )
    indices = grain.MapDataset.range(len(source)).shuffle(seed=seed).repeat()
    local_indices = indices[process_index::process_count]
    return local_indices.batch(global_batch_size // process_count, drop_remainder=True).map(
        source.batch
    )


def train_iterator(dataset: grain.MapDataset, prefetch: int = 2) -> grain.DatasetIterator:
    """An iterator over `dataset` that reads ahead in a thread; its
    `get_state()` / `set_state()` are JSON-able and go into checkpoints."""
    options = grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch)
    return iter(dataset.to_iter_dataset(options))


def eval_batches(
    source: ImageSource,
    global_batch_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Every example of `source` once: `(local_batch, mask[B/P])` per global
    batch; padding rows repeat the last example and have `mask == False`."""
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    num_examples = len(source)
    for start in range(0, num_examples, global_batch_size):
        positions = start + np.arange(global_batch_size)
        rows = np.split(positions, process_count)[process_index]
        mask = rows < num_examples
        yield source.batch(np.minimum(rows, num_examples - 1)), mask
