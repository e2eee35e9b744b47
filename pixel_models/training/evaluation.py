"""Exact negative log-likelihood of a whole split (every example once), or
the bound of a latent-variable model on it."""

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

# Folded into the run's seed for the z of a latent model's bound: the same
# draws at every evaluation, and none shared with training's.
_EVAL_RNG_STREAM = 1_000_003


def evaluate(
    experiment: Experiment, params, source: ImageSource, num_samples: int = 1
) -> dict[str, float | int]:
    """Mean NLL per image (nats) and bits/dim of `params` on all of `source`.

    Batches are global (`eval_batch_size` over all devices and hosts); the
    last one is padded and masked. Returns `num_examples`, `nll_nats`,
    `bits_per_dim`; for a latent-variable model, the NLL is the negative of
    its bound with `num_samples` importance samples (the ELBO for 1), its z
    drawn from the run's seed, and `kl_nats` is the mean KL term.
    """
    batch_size = experiment.config.eval_batch_size
    step = experiment.eval_step if num_samples == 1 else experiment.make_eval_step(num_samples)
    rng = jax.random.fold_in(jax.random.key(experiment.config.seed), _EVAL_RNG_STREAM)
    outputs = []
    num_batches = math.ceil(len(source) / batch_size)
    batches = input_pipeline.eval_batches(source, batch_size)
    for index, (local_batch, mask) in enumerate(
        progress_bar(batches, total=num_batches, desc="eval", unit="batch", leave=False)
    ):
        batch = experiment.device_batch(local_batch, mask=mask)
        outputs.append(step(params, batch, jax.random.fold_in(rng, index)))
    outputs = jax.device_get(outputs)  # one sync at the end keeps the device busy
    total = math.fsum(float(out["nll_sum"]) for out in outputs)
    count = sum(int(out["count"]) for out in outputs)
    if count != len(source):
        raise RuntimeError(f"scored {count} examples of {len(source)}")
    nll = total / count
    result = {
        "num_examples": count,
        "nll_nats": nll,
        "bits_per_dim": float(likelihood.bits_per_dim(nll, experiment.image_shape)),
    }
    if experiment.model.LATENT:
        result["kl_nats"] = math.fsum(float(out["kl_sum"]) for out in outputs) / count
        result["importance_samples"] = num_samples
    return result


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
