"""Run records: what each invocation ran, with what, and on what.

`record` appends one JSON object per line to `WORKDIR/runs.jsonl` (process 0
only): the `program` ("train", "train_end", "evaluate"), its `command` as it
was run (`python -m experiments.X ...` form), the UTC `time`, the `host`, the
resolved `config`, the `versions` of Python and the libraries that decide the
numbers, the `device_kind`, `num_devices` and `num_processes` of the JAX job,
the `cpu_cores` this process may use (XLA:CPU splits its sums by them, so
they decide the last bits of a CPU run), and the `git_commit` and
`git_dirty` state of the checkout `pixel_models` was imported from (null when
it is no git checkout or git is missing). A caller adds its own fields:
"train_end" has `start_step`, `step` (the last logged: a preempted run's
saved step, a diverged run's last good one), `seconds` (of `trainer.train`)
and how the invocation `ended`: "done", "preempted", "diverged" or "failed"
(an error, a second Ctrl-C). A process killed outright leaves no "train_end",
so each checkpoint a run saves adds a short "train_progress" row
(`record_progress`: `start_step`, `step`, `seconds` so far, `time`); the
training time of a workdir's invocations is read from them by `invocations`.
"""

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys

import jax
import ml_collections

RECORDS_FILE = "runs.jsonl"
PROGRESS = "train_progress"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
_CHECKOUT = pathlib.Path(__file__).resolve().parents[1]  # the pixel_models package


def command() -> list[str]:
    """This process's command line: `python -m module args` when it was
    started with -m, else `python script args`."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        return [sys.executable, *sys.argv]
    return [sys.executable, "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]


def versions() -> dict[str, str | None]:
    """Python's version and each of `PACKAGES`' (null when not installed)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _git(*args: str) -> str | None:
    """`git -C <checkout> args`' output, or None if git fails or is missing."""
    try:
        done = subprocess.run(
            ["git", "-C", str(_CHECKOUT), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, str | bool | None]:
    """`git_commit` (HEAD) and `git_dirty` (uncommitted or untracked files)."""
    status = _git("status", "--porcelain")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def record(
    workdir: str | pathlib.Path, program: str, config: ml_collections.ConfigDict, **fields
) -> None:
    """Append this invocation's record, plus `fields`, to `WORKDIR/runs.jsonl`."""
    if jax.process_index() != 0:
        return
    row = {
        "program": program,
        "command": command(),
        "time": _now(),
        "host": socket.gethostname(),
        "config": json.loads(config.to_json()),
        "versions": versions(),
        "device_kind": jax.devices()[0].device_kind,
        "num_devices": jax.device_count(),
        "num_processes": jax.process_count(),
        "cpu_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        **git_state(),
        **fields,
    }
    _append(workdir, row)


def record_progress(
    workdir: str | pathlib.Path, start_step: int, step: int, seconds: float
) -> None:
    """Append a "train_progress" row: the invocation that began at
    `start_step` is saving `step` after `seconds` (process 0 only)."""
    if jax.process_index() != 0:
        return
    row = {"program": PROGRESS, "time": _now(), "start_step": start_step, "step": step}
    row["seconds"] = seconds
    _append(workdir, row)


def _now() -> str:
    """The UTC time, to the second, as records give it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _append(workdir: str | pathlib.Path, row: dict) -> None:
    """`row` as one more line of `WORKDIR/runs.jsonl`."""
    with open(pathlib.Path(workdir) / RECORDS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")


def invocations(records: list[dict]) -> list[dict]:
    """Each train invocation of `records` (`read`), oldest first, as its last
    word: `start_step`, `step`, `seconds` and `ended` from its "train_end",
    else from its last "train_progress" with `ended` "killed" (the time up to
    its last checkpoint), else no step and 0 seconds ("killed" before its
    first checkpoint, or still running)."""
    found = []
    for row in records:
        if row["program"] == "train":
            found.append({"start_step": None, "step": None, "seconds": 0.0, "ended": "killed"})
        elif row["program"] in ("train_end", PROGRESS):
            word = {k: row[k] for k in ("start_step", "step", "seconds")}
            word["ended"] = row.get("ended", "killed")
            if found and found[-1]["ended"] == "killed":  # the open invocation's newer word
                found[-1] = word
            else:  # rows without a recorded start
                found.append(word)
    return found


def read(workdir: str | pathlib.Path) -> list[dict]:
    """The records of `workdir`, oldest first; none when it has no runs.jsonl.
    A line cut short (its process killed while writing it) is passed over."""
    path = pathlib.Path(workdir) / RECORDS_FILE
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
