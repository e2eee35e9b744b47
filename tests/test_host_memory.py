"""`host_memory.keep_host_memory`: XLA:CPU's per-step scratch buffer is reused
instead of being mapped, page-faulted and unmapped again every step."""

import subprocess
import sys

import pytest

# One PixelCNN train step whose scratch buffer (about 60 MB) is far above
# glibc's largest mmap threshold (32 MB); prints the median minor page faults
# of 8 steps. The median is the steady state: with the setting, one or two
# early steps may still fault the whole buffer while the heap grows to fit.
_STEP_FAULTS = """
import functools, resource, sys
from pixel_models import host_memory
if sys.argv[1] == "keep":
    assert host_memory.keep_host_memory()
import jax, jax.numpy as jnp
from configs import binarized_mnist
from pixel_models import build_model
from pixel_models.training import steps, train_state
from pixel_models.training.optimizers import make_optimizer
config = binarized_mnist.get_config("pixelcnn,tiny")
model, optimizer = build_model(config.model), make_optimizer(config.optimizer)
image = jnp.zeros((64, 28, 28, 1), jnp.int32)
state = train_state.create_train_state(model, optimizer, jax.random.PRNGKey(0), image)
train = jax.jit(functools.partial(steps.train_step, model, optimizer))
for _ in range(2):
    state, metrics = jax.block_until_ready(train(state, {"image": image}))
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    state, metrics = jax.block_until_ready(train(state, {"image": image}))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[len(faults) // 2])
"""


def _faults_per_step(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _STEP_FAULTS, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_host_memory_stops_per_step_page_faults():
    default, kept = _faults_per_step("default"), _faults_per_step("keep")
    assert default > 10_000, "the scratch buffer no longer comes from mmap: test needs updating"
    assert kept < 0.01 * default, (default, kept)


def test_one_arena_only_for_unchunked_recipes():
    import types

    from configs import binarized_mnist
    from experiments import program

    def flag(config):
        return types.SimpleNamespace(value=config)

    class Unloadable:
        @property
        def value(self):
            raise OSError("Failed loading config file")

    assert program.one_arena_for(flag(binarized_mnist.get_config("row_lstm")))
    assert not program.one_arena_for(flag(binarized_mnist.get_config("gated_pixelcnn")))
    assert not program.one_arena_for(flag(None))  # resuming without --config: not known
    assert not program.one_arena_for(Unloadable())  # the program reports the error itself
