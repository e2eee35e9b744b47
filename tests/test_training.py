"""A tiny PixelCNN learns binarized MNIST (a minimal loop; the real trainer is
`experiments.train`)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import binarized_mnist
from pixel_models import build_model, data
from pixel_models.data import input_pipeline
from pixel_models.training import steps, train_state
from pixel_models.training.optimizers import make_optimizer


@pytest.mark.slow
def test_tiny_pixelcnn_beats_uniform_on_the_full_test_set(data_dir):
    config = binarized_mnist.get_config("pixelcnn,tiny")
    config.dataset.data_dir = str(data_dir)
    config.batch_size, num_steps = 32, 300
    config.optimizer.name = "adam"
    train = data.load_split(config.dataset, "train")
    test = data.load_split(config.dataset, "test")
    model, optimizer = build_model(config.model), make_optimizer(config.optimizer)

    first = train.batch(np.arange(1))["image"]
    state = train_state.create_train_state(model, optimizer, jax.random.PRNGKey(0), first)
    train_step = jax.jit(functools.partial(steps.train_step, model, optimizer))
    batches = input_pipeline.train_batches(train, config.batch_size, seed=0)  # the trainer's order
    for step in range(num_steps):
        state, metrics = train_step(state, {"image": batches[step]["image"]})
    assert np.isfinite(metrics["loss"])

    eval_step = jax.jit(functools.partial(steps.eval_step, model))
    total, count = 0.0, 0
    for start in range(0, len(test), 1000):
        images = test.batch(np.arange(start, start + 1000))["image"]
        out = eval_step(state.params, {"image": images, "mask": jnp.ones(len(images), bool)})
        total, count = total + float(out["nll_sum"]), count + int(out["count"])
    assert count == 10_000
    uniform = 784 * math.log(2)  # 543.4 nats
    assert total / count < 0.4 * uniform, f"test NLL {total / count:.1f} nats"
