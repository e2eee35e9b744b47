"""Progress bars for long work (training, evaluation): drawn by process 0
only; live on a terminal, and in a log file one line per 30 s of work that
lasts longer than that (short work, like a periodic evaluation, leaves no line)."""

import os
import sys
import weakref

import jax
import tqdm

_BARS: weakref.WeakSet = weakref.WeakSet()


def progress_bar(iterable=None, **kwargs) -> tqdm.tqdm:
    """`tqdm.tqdm(iterable, **kwargs)`, silent on every process but the first."""
    live = kwargs.get("file", sys.stderr).isatty()
    bar = tqdm.tqdm(
        iterable,
        disable=jax.process_index() != 0,
        mininterval=0.1 if live else 30.0,
        delay=0.0 if live else 30.0,
        **kwargs,
    )
    _BARS.add(bar)
    return bar


def last_words(message: str) -> None:
    """Write `message` to stderr on a line of its own, below a bar that is
    drawing, for a process about to exit: one write, which a bar drawn from
    another thread cannot split."""
    below = "\n" if any(not bar.disable for bar in _BARS) else ""  # closed: `disable`
    sys.stderr.flush()
    os.write(sys.stderr.fileno(), f"{below}{message}\n".encode())
