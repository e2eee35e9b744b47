"""Train- and eval-step throughput of a model on random images.

python -m experiments.benchmark --config=configs/binarized_mnist.py:pixelcnn \
    [--config.model.hidden_dim=32 ...] [--seconds=10]

Prints one JSON line: train_images_per_sec, eval_images_per_sec, num_params,
peak_rss_mb, devices (and the backend, shape and eval chunk size it ran).
Both steps run on one device, the eval step in chunks as the evaluator's
does (`--config.eval_chunk_pixels=0` scores the batch at once).
"""

import functools
import json
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from experiments import launch
from pixel_models import build_model, data, steps
from pixel_models.optimizers import make_optimizer

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Recipe, e.g. configs/cifar10.py:pixelcnn"
)
_SECONDS = flags.DEFINE_float("seconds", 10.0, "Timed seconds for the train step (eval: half).")
flags.mark_flags_as_required(["config"])


def images_per_second(fn, batch_size: int, seconds: float) -> float:
    """Call `fn()` (already compiled) repeatedly for `seconds`; images per second."""
    jax.block_until_ready(fn())
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        jax.block_until_ready(fn())
        count += 1
    return count * batch_size / (time.perf_counter() - start)


def benchmark(config, seconds: float) -> dict:
    model = build_model(config.model)
    optimizer = make_optimizer(config.optimizer)
    shape = data.get_spec(config.dataset.name).image_shape
    rng = np.random.default_rng(config.seed)
    image = jnp.asarray(
        rng.integers(0, config.model.num_levels, (config.batch_size, *shape)), jnp.int32
    )
    state = steps.create_train_state(model, optimizer, jax.random.PRNGKey(config.seed), image)
    train = jax.jit(functools.partial(steps.train_step, model, optimizer), donate_argnums=0)
    chunk_size = steps.eval_chunk_size(
        config.batch_size, 1, shape, jax.default_backend(), config.get("eval_chunk_pixels", 0)
    )
    evaluate = jax.jit(functools.partial(steps.eval_step, model, chunk_size=chunk_size))
    mask = jnp.ones((config.batch_size,), bool)

    def train_once():
        nonlocal state
        state, metrics = train(state, image)
        return metrics["loss"]

    train_ips = images_per_second(train_once, config.batch_size, seconds)
    eval_ips = images_per_second(
        lambda: evaluate(state.params, image, mask)["nll_sum"], config.batch_size, seconds / 2
    )
    return {
        "train_images_per_sec": round(train_ips, 2),
        "eval_images_per_sec": round(eval_ips, 2),
        "num_params": int(sum(p.size for p in jax.tree.leaves(state.params))),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "devices": jax.device_count(),
        "backend": jax.default_backend(),
        "model": config.model.name,
        "batch_size": config.batch_size,
        "eval_chunk_size": chunk_size,
        "image_shape": list(shape),
    }


def main(argv):
    launch.setup(argv)
    print(json.dumps(benchmark(_CONFIG.value, _SECONDS.value)))


if __name__ == "__main__":
    app.run(main)
