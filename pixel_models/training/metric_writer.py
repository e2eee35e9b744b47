"""Training metrics to `WORKDIR/metrics.jsonl` (one JSON object per line,
with its `step`) and to TensorBoard event files in `WORKDIR/tensorboard`.
Only process 0 writes; on the others every call is a no-op.

Both are written synchronously: a row or point written before a `kill -9` is
on disk (an asynchronous event writer loses its queue).
"""

import itertools
import json
import math
import os
import pathlib
import socket
import time

import jax

from pixel_models.sampling import grid

METRICS_FILE = "metrics.jsonl"
_FILE_IDS = itertools.count()  # event file names stay unique within a process


class EventFile:
    """A new TensorBoard event file in `folder`, written record by record.

    `purge_step` (a resumed run's first step) starts it with a SessionLog
    START at that step: TensorBoard then drops the points of earlier files
    from that step on, the killed run's tail.
    """

    def __init__(self, folder: pathlib.Path, purge_step: int | None = None):
        from tensorboard.compat.proto import event_pb2  # imported where used: protobuf
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event_pb2 = event_pb2
        folder.mkdir(parents=True, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
            f".{os.getpid()}.{next(_FILE_IDS)}"
        )
        self._file = open(folder / name, "xb")  # noqa: SIM115 - closed in close()
        self._records = RecordWriter(self._file)
        self._write(step=0, file_version="brain.Event:2")
        if purge_step is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write(step=purge_step, session_log=start)
        self._file.flush()

    def _write(self, **fields) -> None:
        event = self._event_pb2.Event(wall_time=time.time(), **fields)
        self._records.write(event.SerializeToString())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One point per tag at `step`, flushed."""
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]
        )
        self._write(step=step, summary=summary)
        self._file.flush()

    def image(self, step: int, tag: str, png: bytes, shape: tuple[int, int, int]) -> None:
        """One PNG-encoded image `[H, W, C]` under `tag` at `step`, flushed."""
        from tensorboard.compat.proto import summary_pb2

        height, width, channels = shape
        image = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png
        )
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])
        self._write(step=step, summary=summary)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class MetricWriter:
    """Appends to the metrics of `workdir`. A run resumed from step
    `resume_step` first drops the rows after it (the killed run's tail), and
    tells TensorBoard to drop the earlier event files' points after it too."""

    def __init__(self, workdir: str | pathlib.Path, resume_step: int = 0):
        self._active = jax.process_index() == 0
        if not self._active:
            return
        workdir = pathlib.Path(workdir)
        if (workdir / METRICS_FILE).exists():
            kept = [row for row in read_metrics(workdir) if row["step"] <= resume_step]
            with open(workdir / METRICS_FILE, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in kept)
        self._jsonl = open(workdir / METRICS_FILE, "a")  # noqa: SIM115 - closed in close()
        self._tensorboard = EventFile(
            workdir / "tensorboard", purge_step=resume_step + 1 if resume_step else None
        )

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """Append `scalars` for `step`; a non-finite value is written as null
        (TensorBoard gets it as it is)."""
        if not self._active:
            return
        row = {"step": int(step)}
        row.update({k: float(v) if math.isfinite(v) else None for k, v in scalars.items()})
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        self._tensorboard.scalars(int(step), {k: float(v) for k, v in scalars.items()})

    def image(self, step: int, tag: str, image) -> None:
        """A uint8 image `[H, W, C]` to TensorBoard under `tag`."""
        if self._active:
            self._tensorboard.image(int(step), tag, grid.png_bytes(image), image.shape)

    def close(self) -> None:
        if self._active:
            self._jsonl.close()
            self._tensorboard.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict]:
    """The rows of `WORKDIR/metrics.jsonl`, in the order written."""
    path = pathlib.Path(workdir) / METRICS_FILE
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
