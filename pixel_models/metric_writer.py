"""Training metrics to `WORKDIR/metrics.jsonl` (one JSON object per line,
with its `step`) and to TensorBoard event files in `WORKDIR/tensorboard`.
Only process 0 writes; on the others every call is a no-op."""

import json
import math
import pathlib

import jax

METRICS_FILE = "metrics.jsonl"


class MetricWriter:
    """Appends to the metrics of `workdir`. A run resumed from step
    `resume_step` first drops the rows after it (the killed run's tail)."""

    def __init__(self, workdir: str | pathlib.Path, resume_step: int = 0):
        self._active = jax.process_index() == 0
        if not self._active:
            return
        from tensorboardX import SummaryWriter  # imported where used: protobuf, slow

        workdir = pathlib.Path(workdir)
        if (workdir / METRICS_FILE).exists():
            kept = [row for row in read_metrics(workdir) if row["step"] <= resume_step]
            with open(workdir / METRICS_FILE, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in kept)
        self._jsonl = open(workdir / METRICS_FILE, "a")  # noqa: SIM115 - closed in close()
        self._tensorboard = SummaryWriter(str(workdir / "tensorboard"))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """Append `scalars` for `step`; a non-finite value is written as null."""
        if not self._active:
            return
        row = {"step": int(step)}
        row.update({k: float(v) if math.isfinite(v) else None for k, v in scalars.items()})
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, int(step))
        self._tensorboard.flush()

    def close(self) -> None:
        if self._active:
            self._jsonl.close()
            self._tensorboard.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict]:
    """The rows of `WORKDIR/metrics.jsonl`, in the order written."""
    path = pathlib.Path(workdir) / METRICS_FILE
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
