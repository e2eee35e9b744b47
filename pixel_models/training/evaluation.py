"""Exact negative log-likelihood of a whole split (every example once)."""

import json
import math
import pathlib
import re

import jax

from pixel_models import likelihood
from pixel_models.data import input_pipeline
from pixel_models.data.sources import ImageSource
from pixel_models.training.experiment import Experiment
from pixel_models.training.progress import progress_bar


def evaluate(experiment: Experiment, params, source: ImageSource) -> dict[str, float | int]:
    """Mean NLL per image (nats) and bits/dim of `params` on all of `source`.

    Batches are global (`eval_batch_size` over all devices and hosts); the
    last one is padded and masked. Returns `num_examples`, `nll_nats`,
    `bits_per_dim`.
    """
    batch_size = experiment.config.eval_batch_size
    outputs = []
    num_batches = math.ceil(len(source) / batch_size)
    batches = input_pipeline.eval_batches(source, batch_size)
    for local_batch, mask in progress_bar(
        batches, total=num_batches, desc="eval", unit="batch", leave=False
    ):
        batch = experiment.device_batch(local_batch, mask=mask)
        outputs.append(experiment.eval_step(params, batch))
    outputs = jax.device_get(outputs)  # one sync at the end keeps the device busy
    total = math.fsum(float(out["nll_sum"]) for out in outputs)
    count = sum(int(out["count"]) for out in outputs)
    if count != len(source):
        raise RuntimeError(f"scored {count} examples of {len(source)}")
    nll = total / count
    return {
        "num_examples": count,
        "nll_nats": nll,
        "bits_per_dim": float(likelihood.bits_per_dim(nll, experiment.image_shape)),
    }


def output_path(
    workdir: str | pathlib.Path, split: str, step: int | None = None, params: str | None = None
) -> pathlib.Path:
    """Where `experiments.evaluate` writes its result: DIR/eval_<split>.json,
    with `_step<step>` for an explicit checkpoint and `_<params>` for
    parameters other than the run's own ("raw" of a run with an EMA); the
    split made file-name safe ("test[:10]" -> "test_10")."""
    name = re.sub(r"[^A-Za-z0-9%]+", "_", split).strip("_")
    suffix = ("" if step is None else f"_step{step}") + ("" if params is None else f"_{params}")
    return pathlib.Path(workdir) / f"eval_{name}{suffix}.json"


def read_result(workdir: str | pathlib.Path, split: str) -> dict | None:
    """The newest result `experiments.evaluate` wrote for `split` in `workdir`,
    or None when there is none."""
    path = output_path(workdir, split)
    return json.loads(path.read_text()) if path.exists() else None
