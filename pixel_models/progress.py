"""Progress bars for long work (training, evaluation): drawn by process 0
only, live on a terminal and one line per 30 s in a log file."""

import sys

import jax
import tqdm


def progress_bar(iterable=None, **kwargs) -> tqdm.tqdm:
    """`tqdm.tqdm(iterable, **kwargs)`, silent on every process but the first."""
    return tqdm.tqdm(
        iterable,
        disable=jax.process_index() != 0,
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
        **kwargs,
    )
