r"""Train- and eval-step throughput of a model on random images.

python -m experiments.benchmark --config=configs/binarized_mnist.py:pixelcnn \
    [--config.model.hidden_dim=32 ...] [--seconds=10] [--sample_rows=2] [--whole_batch] \
    [--rounds=10 --peer="python ../shared/bench/pixelcnn_torch.py --seconds 4 ..."]

Prints one JSON line: train_images_per_sec, eval_images_per_sec, num_params,
peak_rss_mb, devices (and the backend, shape and chunk_size it ran), and
train_gflops_per_image (XLA's count for the compiled train step; times the
images per second, the FLOP/s reached). With `--sample_rows=N` (N > 0) also
`fast_sample_images_per_sec`, `naive_sample_images_per_sec` and their
ratio `sample_speedup`: each sampler draws N rows of a batch after one
compiled row, and the rate is scaled to whole images (a row's work is the
same in every row; the naive sampler's whole image takes minutes). And
`fast_kernels_per_step`, `naive_kernels_per_step`: the kernels that one step
of the sampling loop (one unit: a subpixel, or a pixel) runs in the
compiled row (`kernels_per_step`), what becomes kernel launches on a GPU
(`--samplers=fast` times the fast sampler only).
With `--whole_batch`, `fast_batch_seconds`: the fast sampler draws whole
images of the batch as `sample` does, after a first draw that compiles
(`fast_batch_first_seconds`). `--seconds=0` times no train or eval step.
Both steps are the trainer's (`Experiment`), on one device, in chunks as in
training and evaluation (`--config.cpu_chunk_pixels=0` takes each batch at once).

On a shared machine the speed drifts by tens of percent within minutes, so
two programs timed one after the other compare badly. With `--peer`, the
peer command (which prints a JSON line with the same two figures) runs after
each of `--rounds` timed rounds; the line then adds the peer's medians and
the medians of the per-round ratios, `train_ratio` and `eval_ratio`.
"""

import json
import re
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
    "seconds", 10.0, "Timed seconds per round for the train step (eval: half; 0: not timed)."
)
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Timed rounds; the figures are their medians.")
_SAMPLE_ROWS = flags.DEFINE_integer(
    "sample_rows", 0, "Rows timed per sampler (0: no sampling figures)."
)
_SAMPLERS = flags.DEFINE_list(
    "samplers", list(sampling.SAMPLERS), "The samplers that --sample_rows times."
)
_WHOLE_BATCH = flags.DEFINE_bool(
    "whole_batch",
    False,
    "Also draw whole images of the batch with the fast sampler, end to end.",
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


# HLO instructions that run no kernel: arguments, literals, tuples and views.
_NO_KERNEL = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
_CALLEES = re.compile(r"\b(?:body|condition|to_apply)=%?([\w.\-]+)|branch_computations=\{([^}]*)\}")


def _computations(hlo: str) -> tuple[dict[str, list[str]], str]:
    """A compiled HLO module's text -> ({computation: its instruction lines}, ENTRY's name)."""
    computations, entry, current = {}, None, None
    for line in hlo.splitlines():
        header = re.match(r"(ENTRY )?%?([\w.\-]+) \(.*\{$", line)
        if header and not line.startswith(" "):
            current = header.group(2)
            computations[current] = []
            entry = current if header.group(1) else entry
        elif line == "}":
            current = None
        elif current is not None and " = " in line:
            computations[current].append(line)
    return computations, entry


def _opcode(line: str) -> str:
    """The opcode of an HLO instruction line `%name = TYPE opcode(...)` (a
    TYPE, tuples too, holds no space followed by a word and a parenthesis)."""
    return re.search(r" ([a-z][\w\-]*)\(", " " + line.split(" = ", 1)[1]).group(1)


def _callees(line: str) -> list[str]:
    names = []
    for single, branches in _CALLEES.findall(line):
        names += [single] if single else [b.strip().lstrip("%") for b in branches.split(",")]
    return names


def kernels_per_step(hlo: str) -> int:
    """The kernels that one iteration of the largest outermost loop of a
    compiled HLO module (`compiled.as_text()`) runs: every instruction of its
    body and condition but arguments, literals, tuples and views, with the
    instructions of the loops, calls and branches inside counted in their
    place (once per loop). A fusion or a library call (a GEMM) is one. The
    largest: a sampled row's loop over its units, not the loops that a CPU
    build's random number generator runs before it."""
    computations, entry = _computations(hlo)

    def count(name: str) -> int:
        total = 0
        for line in computations[name]:
            opcode = _opcode(line)
            if opcode in ("while", "call", "conditional"):
                total += sum(count(callee) for callee in _callees(line))
            elif opcode not in _NO_KERNEL:
                total += 1
        return total

    loops, pending = [], [entry]
    while pending:  # from ENTRY, through calls and branches, to the outermost loops
        for line in computations[pending.pop(0)]:
            opcode = _opcode(line)
            if opcode == "while":
                loops.append(sum(count(callee) for callee in _callees(line)))
            elif opcode in ("call", "conditional"):
                pending += _callees(line)
    if not loops:
        raise ValueError("the compiled module has no loop")
    return max(loops)


def sampling_canvas(experiment: Experiment, params) -> canvases.Canvas:
    """What the samplers draw for the figures: `config.batch_size` plain
    samples, a row of label 0, one decoding of each of as many zero images
    (or zero embeddings), or samples given z from the prior."""
    model, config = experiment.model, experiment.config
    variables = {"params": params}
    zeros = np.zeros((config.batch_size, *experiment.image_shape), np.int32)
    labels = [0] if experiment.cond_key == "label" else None
    codes = None
    if experiment.cond_key == "embedding":
        codes = np.zeros((config.batch_size, config.embedding.dim), np.float32)
    num = 1 if model.ENCODES or codes is not None else config.batch_size
    shape = experiment.image_shape
    canvas = canvases.for_model(model, variables, shape, num, labels, zeros, codes)
    if model.LATENT:
        canvas = canvases.with_latent(canvas, model, variables, jax.random.key(0))
    return canvas


def sample_figures(experiment: Experiment, params, sampler: str, rows: int) -> tuple[float, int]:
    """Images per second of `sampler` on a batch of `config.batch_size`,
    timed over `rows` rows after one compiled row, scaled to whole images;
    and the kernels per step of the compiled row (`kernels_per_step`)."""
    model, config = experiment.model, experiment.config
    height = experiment.image_shape[0]
    if not 0 < rows < height:
        raise ValueError(f"--sample_rows={rows} must be in [1, {height - 1}]")
    variables = {"params": params}
    canvas = sampling_canvas(experiment, params)
    x, known = jnp.asarray(canvas.start), jnp.asarray(canvas.known)
    drawing, cond = sampling.Drawing(model, sampler), canvas.cond
    rng = jax.random.key(0)
    with jax.default_matmul_precision("highest"):  # as `sampling.sample` draws
        state, x, known = sampling.start(drawing, variables, cond, x, known)
        args = (drawing, variables, cond, state, x, known, rng, jnp.int32(0))
        kernels = kernels_per_step(sampling.draw_row.lower(*args).compile().as_text())
        state, x = sampling.draw_row(*args)
        jax.block_until_ready(x)
        start = time.perf_counter()
        for i in range(1, rows + 1):
            state, x = sampling.draw_row(
                drawing, variables, cond, state, x, known, rng, jnp.int32(i)
            )
        jax.block_until_ready(x)
    return config.batch_size / ((time.perf_counter() - start) / rows * height), kernels


def whole_batch_seconds(experiment: Experiment, params) -> tuple[float, float]:
    """Seconds that the fast sampler takes to draw whole images of a batch of
    `config.batch_size` through `sampling.sample` (what `sample` and
    `load(...).sample` run), end to end: the first draw, which compiles, and
    a second one."""
    canvas = sampling_canvas(experiment, params)
    times = []
    for seed in range(2):
        start = time.perf_counter()
        images = sampling.sample(
            experiment.model,
            {"params": params},
            jax.random.key(seed),
            jnp.asarray(canvas.start),
            jnp.asarray(canvas.known),
            canvas.cond,
        )
        jax.block_until_ready(images)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def run_peer(command: str) -> dict:
    """Run `command`; its last stdout line that parses as a JSON object."""
    out = subprocess.run(shlex.split(command), capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ValueError(f"--peer {command!r} failed (exit {out.returncode}): {tail[0]}")
    return json.loads(lines[-1])


def benchmark(
    config,
    seconds: float,
    rounds: int = 1,
    peer: str | None = None,
    sample_rows: int = 0,
    whole_batch: bool = False,
    samplers: tuple[str, ...] = sampling.SAMPLERS,
) -> dict:
    """Median train/eval images per second over `rounds` (none when `seconds`
    is 0), and against `peer`; the sampling figures of `sample_rows` and
    `whole_batch`."""
    if rounds < 1:
        raise ValueError(f"--rounds={rounds} must be at least 1")
    if unknown := set(samplers) - set(sampling.SAMPLERS):
        raise ValueError(f"unknown --samplers {sorted(unknown)}; known: {sampling.SAMPLERS}")
    if seconds < 0 or (peer and not seconds):
        raise ValueError(f"--seconds={seconds} must be > 0 (with --peer) or 0 (no train figures)")
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
    if experiment.cond_key == "embedding":
        local["embedding"] = rng.normal(size=(config.batch_size, config.embedding.dim)).astype(
            np.float32
        )
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
    for _ in range(rounds if seconds else 0):
        ours.append(
            {
                "train_images_per_sec": images_per_second(train_once, config.batch_size, seconds),
                "eval_images_per_sec": images_per_second(eval_once, config.batch_size, seconds / 2),
            }
        )
        if peer:
            theirs.append(run_peer(peer))
    result = {}
    if ours:
        result = {key: round(statistics.median(r[key] for r in ours), 2) for key in ours[0]}
        # XLA counts a loop body once: per chunk when the step runs in chunks.
        flops = (experiment.train_step.lower(state, batch).compile().cost_analysis() or {}).get(
            "flops"
        )
        result["train_gflops_per_image"] = (
            None if flops is None else round(flops / experiment.train_chunk_size / 1e9, 4)
        )
    if sample_rows:
        for sampler in samplers:
            rate, kernels = sample_figures(experiment, state.eval_params(), sampler, sample_rows)
            result[f"{sampler}_sample_images_per_sec"] = round(rate, 4)
            result[f"{sampler}_kernels_per_step"] = kernels
        if set(samplers) == set(sampling.SAMPLERS):
            result["sample_speedup"] = round(
                result["fast_sample_images_per_sec"] / result["naive_sample_images_per_sec"], 1
            )
    if whole_batch:
        first, second = whole_batch_seconds(experiment, state.eval_params())
        result["fast_batch_first_seconds"] = round(first, 3)
        result["fast_batch_seconds"] = round(second, 3)
    result.update(
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
            _CONFIG.value,
            _SECONDS.value,
            _ROUNDS.value,
            _PEER.value,
            _SAMPLE_ROWS.value,
            _WHOLE_BATCH.value,
            tuple(_SAMPLERS.value),
        )
    except ValueError as e:
        program.fail("benchmark", e)
    print(json.dumps(result))


if __name__ == "__main__":
    program.start(main)
