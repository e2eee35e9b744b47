"""Run by test_trainer.py in a subprocess with 8 forced CPU devices: one
train step and one full evaluation on 8 devices and on 1, compared, and
again on 8 devices with each batch taken in 2 chunks; then 8 samples drawn
with the batch sharded over the 8 devices and on 1.

Prints one JSON line: max relative differences, the collectives the chunked
steps compile to, the batch-size error, and whether the samples agree.
"""

import json
import re

import jax
import numpy as np

from configs import binarized_mnist
from pixel_models import data
from pixel_models.sampling import canvases
from pixel_models.training import evaluation
from pixel_models.training.experiment import Experiment

COLLECTIVE = r"\b(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)\b"


def max_rel_diff(a, b) -> float:
    """Largest difference per array relative to that array's scale (max |b|):
    entry-wise ratios blow up on the near-zero entries RMSProp's first,
    sign-like step leaves."""
    diffs = jax.tree.map(
        lambda x, y: float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-12)), a, b
    )
    return max(jax.tree.leaves(diffs))


def main():
    jax.config.update("jax_default_matmul_precision", "highest")
    config = binarized_mnist.get_config("pixelcnn,tiny")
    config.batch_size, config.eval_batch_size = 16, 16
    images = data.load_split(config.dataset, "train[:16]").batch(np.arange(16))["image"]
    test = data.load_split(config.dataset, "test[:37]")
    chunked = config.copy_and_resolve_references()
    chunked.cpu_chunk_pixels = 784  # 2 chunks of one image per device
    results, collectives = {}, set()
    for name, workdirs, devices in (
        ("8", config, jax.devices()),
        ("1", config, jax.devices()[:1]),
        ("8_chunked", chunked, jax.devices()),
    ):
        experiment = Experiment.build(workdirs, devices)
        state = experiment.init_state()
        batch = experiment.device_batch({"image": images})
        if name == "8_chunked":
            eval_batch = experiment.device_batch({"image": images}, mask=np.ones(16, bool))
            for step, args in (
                (experiment.train_step, (state, batch)),
                (experiment.eval_step, (state.params, eval_batch, jax.random.key(0))),
            ):
                collectives.update(re.findall(COLLECTIVE, step.lower(*args).compile().as_text()))
        state, metrics = experiment.train_step(state, batch)
        result = evaluation.evaluate(experiment, state.params, test)
        results[name] = jax.device_get((metrics["loss"], state.params, result["nll_nats"]))
        results[name + "_shards"] = len(batch["image"].sharding.device_set)
        if name != "8_chunked":
            canvas = canvases.unconditional(8, experiment.image_shape)
            variables = {"params": state.params}
            rng = jax.random.key(0)
            results[name + "_samples"] = canvases.draw(
                canvas, experiment.model, variables, experiment.mesh, rng
            )
    bad = config.copy_and_resolve_references()
    bad.batch_size = 12
    try:
        Experiment.build(bad)
        error = None
    except ValueError as e:
        error = str(e)
    print(
        json.dumps(
            {
                "devices": jax.device_count(),
                "shards": [results["8_shards"], results["1_shards"]],
                "loss_rel_diff": max_rel_diff(results["8"][0], results["1"][0]),
                "params_rel_diff": max_rel_diff(results["8"][1], results["1"][1]),
                "eval_rel_diff": max_rel_diff(results["8"][2], results["1"][2]),
                "chunked_rel_diff": max_rel_diff(results["8_chunked"], results["1"]),
                "chunked_collectives": sorted(collectives),
                "batch_error": error,
                "same_samples": bool(np.array_equal(results["8_samples"], results["1_samples"])),
            }
        )
    )


if __name__ == "__main__":
    main()
