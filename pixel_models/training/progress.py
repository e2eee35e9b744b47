"""Progress bars for long work (training, evaluation): drawn by process 0
only; live on a terminal, and in a log file one line per 30 s of work that
lasts longer than that (short work, like a periodic evaluation, leaves no line)."""

import sys

import jax
import tqdm


def progress_bar(iterable=None, **kwargs) -> tqdm.tqdm:
    """`tqdm.tqdm(iterable, **kwargs)`, silent on every process but the first."""
    live = kwargs.get("file", sys.stderr).isatty()
    return tqdm.tqdm(
        iterable,
        disable=jax.process_index() != 0,
        mininterval=0.1 if live else 30.0,
        delay=0.0 if live else 30.0,
        **kwargs,
    )
