r"""Train- and eval-step throughput of a model on random images.

python -m experiments.benchmark --config=configs/binarized_mnist.py:pixelcnn \
    [--config.model.hidden_dim=32 ...] [--seconds=10] \
    [--rounds=10 --peer="python ../shared/bench/pixelcnn_torch.py --seconds 4 ..."]

Prints one JSON line: train_images_per_sec, eval_images_per_sec, num_params,
peak_rss_mb, devices (and the backend, shape and chunk_size it ran), and
train_gflops_per_image (XLA's count for the compiled train step; times the
images per second, the FLOP/s reached). With `--sample_rows=N` (N > 0) also
`fast_sample_images_per_sec`, `naive_sample_images_per_sec` and their
ratio `sample_speedup`: each sampler draws N rows of a batch after one
compiled row, and the rate is scaled to whole images (a row's work is the
same in every row; the naive sampler's whole image takes minutes).
Both steps are the trainer's (`Experiment`), on one device, in chunks as in
training and evaluation (`--config.cpu_chunk_pixels=0` takes each batch at once).

On a shared machine the speed drifts by tens of percent within minutes, so
two programs timed one after the other compare badly. With `--peer`, the
peer command (which prints a JSON line with the same two figures) runs after
each of `--rounds` timed rounds; the line then adds the peer's medians and
the medians of the per-round ratios, `train_ratio` and `eval_ratio`.
"""

import json
import resource
import shlex
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from experiments import program
from pixel_models import data, sampling
from pixel_models.sampling import canvases
from pixel_models.training.experiment import Experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Recipe, e.g. configs/cifar10.py:pixelcnn"
)
_SECONDS = flags.DEFINE_float(
    "seconds", 10.0, "Timed seconds per round for the train step (eval: half)."
)
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Timed rounds; the figures are their medians.")
_SAMPLE_ROWS = flags.DEFINE_integer(
    "sample_rows", 0, "Rows timed per sampler (0: no sampling figures)."
)
_PEER = flags.DEFINE_string(
    "peer", None, "Command run after each round, printing a JSON line to compare with."
)
flags.mark_flags_as_required(["config"])


def images_per_second(fn, batch_size: int, seconds: float) -> float:
    """Call `fn()` (already compiled) repeatedly for `seconds`; images per second."""
    jax.block_until_ready(fn())
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        jax.block_until_ready(fn())
        count += 1
    return count * batch_size / (time.perf_counter() - start)


def sample_images_per_second(experiment: Experiment, params, sampler: str, rows: int) -> float:
    """Images per second of `sampler` on a batch of `config.batch_size`,
    timed over `rows` rows after one compiled row, scaled to whole images."""
    model, config = experiment.model, experiment.config
    height = experiment.image_shape[0]
    if not 0 < rows < height:
        raise ValueError(f"--sample_rows={rows} must be in [1, {height - 1}]")
    variables = {"params": params}
    # A batch of `batch_size` images: plain samples, a row of label 0, or one
    # decoding of each of as many zero images.
    zeros = np.zeros((config.batch_size, *experiment.image_shape), np.int32)
    labels = [0] if experiment.cond_key == "label" else None
    num = 1 if model.ENCODES else config.batch_size
    canvas = canvases.for_model(model, variables, experiment.image_shape, num, labels, zeros)
    x, known = jnp.asarray(canvas.start), jnp.asarray(canvas.known)
    stepper = sampling.make_stepper(model, variables, sampler, canvas.cond)
    row = jax.jit(
        lambda state, x, i: sampling.sample_rows(
            model, stepper, state, x, known, jax.random.key(0), i
        )
    )
    state, x = row(jax.jit(stepper.init)(x), x, jnp.int32(0))
    jax.block_until_ready(x)
    start = time.perf_counter()
    for i in range(1, rows + 1):
        state, x = row(state, x, jnp.int32(i))
    jax.block_until_ready(x)
    return config.batch_size / ((time.perf_counter() - start) / rows * height)


def run_peer(command: str) -> dict:
    """Run `command`; its last stdout line that parses as a JSON object."""
    out = subprocess.run(shlex.split(command), capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ValueError(f"--peer {command!r} failed (exit {out.returncode}): {tail[0]}")
    return json.loads(lines[-1])


def benchmark(
    config, seconds: float, rounds: int = 1, peer: str | None = None, sample_rows: int = 0
) -> dict:
    """Median train/eval images per second over `rounds`, and against `peer`."""
    if rounds < 1:
        raise ValueError(f"--rounds={rounds} must be at least 1")
    config = config.copy_and_resolve_references()
    config.eval_batch_size = config.batch_size
    experiment = Experiment.build(config, devices=jax.devices()[:1])
    rng = np.random.default_rng(config.seed)
    shape = experiment.image_shape
    images = rng.integers(0, config.model.num_levels, (config.batch_size, *shape), np.int32)
    local = {"image": images}
    if experiment.cond_key == "label":
        num_classes = data.get_spec(config.dataset.name).num_classes
        local["label"] = rng.integers(0, num_classes, config.batch_size)
    batch = experiment.device_batch(local)
    eval_batch = experiment.device_batch(local, mask=np.ones(config.batch_size, bool))
    eval_rng = jax.random.key(config.seed)  # the z of a latent model's bound
    state = experiment.init_state()

    def train_once():
        nonlocal state
        state, metrics = experiment.train_step(state, batch)
        return metrics["loss"]

    def eval_once():
        return experiment.eval_step(state.params, eval_batch, eval_rng)["nll_sum"]

    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(
            {
                "train_images_per_sec": images_per_second(train_once, config.batch_size, seconds),
                "eval_images_per_sec": images_per_second(eval_once, config.batch_size, seconds / 2),
            }
        )
        if peer:
            theirs.append(run_peer(peer))
    result = {key: round(statistics.median(r[key] for r in ours), 2) for key in ours[0]}
    compiled = experiment.train_step.lower(state, batch).compile()
    flops = (compiled.cost_analysis() or {}).get("flops")
    if sample_rows:
        for sampler in sampling.SAMPLERS:
            result[f"{sampler}_sample_images_per_sec"] = round(
                sample_images_per_second(experiment, state.eval_params(), sampler, sample_rows), 4
            )
        result["sample_speedup"] = round(
            result["fast_sample_images_per_sec"] / result["naive_sample_images_per_sec"], 1
        )
    result.update(
        # XLA counts a loop body once: per chunk when the step runs in chunks.
        train_gflops_per_image=None
        if flops is None
        else round(flops / experiment.train_chunk_size / 1e9, 4),
        num_params=int(sum(p.size for p in jax.tree.leaves(state.params))),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        devices=jax.device_count(),
        backend=jax.default_backend(),
        model=config.model.name,
        batch_size=config.batch_size,
        chunk_size=experiment.train_chunk_size,
        image_shape=list(shape),
        rounds=rounds,
    )
    if peer:
        for kind in ("train", "eval"):
            key = f"{kind}_images_per_sec"
            result[f"peer_{key}"] = round(statistics.median(r[key] for r in theirs), 2)
            ratios = [a[key] / b[key] for a, b in zip(ours, theirs, strict=True)]
            result[f"{kind}_ratio"] = round(statistics.median(ratios), 3)
        result["peer_num_params"] = theirs[-1].get("num_params")
    return result


def main(argv):
    program.setup(argv, one_arena=program.one_arena_for(_CONFIG))
    try:
        result = benchmark(
            _CONFIG.value, _SECONDS.value, _ROUNDS.value, _PEER.value, _SAMPLE_ROWS.value
        )
    except ValueError as e:
        program.fail("benchmark", e)
    print(json.dumps(result))


if __name__ == "__main__":
    program.start(main)
