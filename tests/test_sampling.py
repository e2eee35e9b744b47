"""The sampling loop and its command line: completion keeps the known
subpixels, temperature -> 0 is deterministic, labels steer conditional
samples, and `experiments.sample` writes the grid and the array it says."""

import fcntl
import itertools
import os
import pty
import select
import signal
import struct
import termios
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from PIL import Image

from configs import binarized_mnist
from pixel_models import data, likelihood, sampling
from pixel_models.models.gated_pixelcnn import GatedPixelCNN
from pixel_models.models.pixelcnn import PixelCNN
from pixel_models.models.pixelcnn_pp import PixelCNNPP
from pixel_models.sampling import canvases
from pixel_models.sampling.grid import make_grid, to_uint8
from pixel_models.training import sharding, trainer
from tests import model_checks
from tests.helpers import cli, run_ok

TINY = dict(hidden_dim=6, num_layers=2, output_hidden_dim=8)


@pytest.fixture(scope="module")
def rgb_model():
    model = PixelCNN(4, **TINY)
    variables = model_checks.random_variables(model, jnp.zeros((1, 3, 4, 3), jnp.int32))
    return model, variables


def test_completion_never_changes_the_known_subpixels(rgb_model):
    model, variables = rgb_model
    rng = np.random.default_rng(0)
    given = jnp.asarray(rng.integers(0, 4, (3, 3, 4, 3)), jnp.int32)
    known = jnp.asarray(rng.random(given.shape) < 0.5)
    out = sampling.sample(model, variables, jax.random.key(0), given, known, sampler="naive")
    np.testing.assert_array_equal(np.asarray(out)[np.asarray(known)], given[known])
    assert (np.asarray(out)[~np.asarray(known)] != np.asarray(given)[~np.asarray(known)]).any()


def test_temperature_to_zero_is_deterministic(rgb_model):
    model, variables = rgb_model
    start = jnp.zeros((2, 3, 4, 3), jnp.int32)
    cold = [
        sampling.sample(
            model, variables, jax.random.key(s), start, temperature=1e-6, sampler="naive"
        )
        for s in (0, 1)
    ]
    np.testing.assert_array_equal(*cold)
    warm = [
        sampling.sample(model, variables, jax.random.key(s), start, sampler="naive") for s in (0, 1)
    ]
    assert not np.array_equal(*warm)


def test_conditional_samples_follow_their_labels():
    model = GatedPixelCNN(4, num_classes=2, **TINY)
    x = jnp.zeros((2, 3, 4, 3), jnp.int32)
    variables = model_checks.random_variables(model, x, jnp.zeros(2, jnp.int32))

    def draw(labels):
        cond = jnp.asarray(labels, jnp.int32)
        return np.asarray(
            sampling.sample(
                model, variables, jax.random.key(0), x, cond=cond, temperature=1e-6, sampler="naive"
            )
        )

    same, swapped = draw([0, 1]), draw([1, 0])
    assert not np.array_equal(same[0], same[1])
    np.testing.assert_array_equal(swapped, same[::-1])


def test_unknown_sampler_and_bad_temperature_are_refused(rgb_model):
    model, variables = rgb_model
    start = jnp.zeros((1, 3, 4, 3), jnp.int32)
    with pytest.raises(ValueError, match="unknown sampler 'slow'"):
        sampling.sample(model, variables, jax.random.key(0), start, sampler="slow")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sampling.sample(model, variables, jax.random.key(0), start, temperature=0.0)


def test_grid_layout():
    canvas = canvases.completions(np.ones((2, 5, 4, 1), np.int32), known_rows=2, num_completions=3)
    assert (
        canvas.start.shape == (6, 5, 4, 1)
        and canvas.known[:, :2].all()
        and not canvas.known[:, 2:].any()
    )
    image = canvas.grid(np.zeros((6, 5, 4, 1), np.int32), num_levels=2)
    assert image.shape == (2 * 7 + 2, 5 * 6 + 2, 1)  # 2 rows; original, occluded, 3 completions
    assert image[2, 2, 0] == 255 and image[2 + 3, 6 + 2, 0] == 128  # the occluded rows: grey


def test_a_grid_per_label_writes_each_label_beside_its_row():
    samples = np.arange(6 * 28 * 28).reshape(6, 28, 28, 1) % 2
    plain = make_grid(to_uint8(samples.reshape(3, 2, 28, 28, 1), 2))
    assert plain.shape == (3 * 30 + 2, 2 * 30 + 2, 1)
    labelled = canvases.per_label([3, 7, 3], 2, (28, 28, 1)).grid(samples, num_levels=2)
    margin, cells = labelled[:, : -plain.shape[1]], labelled[:, -plain.shape[1] :]
    np.testing.assert_array_equal(cells, plain)  # the cells as without labels
    rows = [margin[2 + r * 30 : 2 + r * 30 + 28] for r in range(3)]
    assert margin.shape[1] > 0 and (rows[0] != 128).any()  # a label is drawn
    assert (rows[0] != rows[1]).any() and (rows[0] == rows[2]).all()  # 3, 7, 3
    # Completions of a class-conditional run: each image's label beside its row.
    completions = canvases.completions(np.ones((2, 8, 8, 3), np.int32), 4, 1, np.array([0, 9]))
    image = completions.grid(np.zeros((2, 8, 8, 3), np.int32), num_levels=256)
    width = image.shape[1] - (3 * 10 + 2)
    assert image.shape[0] == 2 * 10 + 2 and width > 0
    assert (image[2:10, :width] != image[12:20, :width]).any()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("sample_run")
    config = binarized_mnist.get_config("pixelcnn,tiny")
    config.dataset.data_dir = str(data_dir)
    config.dataset.eval_split = "validation[:16]"
    config.num_train_steps = 2
    trainer.train(trainer.prepare(config, workdir), workdir)
    return workdir


def test_sample_cli_writes_the_grid_and_the_array(tiny_run, tmp_path):
    output = tmp_path / "grid.png"
    out, _ = run_ok(
        "experiments.sample",
        f"--workdir={tiny_run}",
        "--num_samples=5",
        f"--output={output}",
        "--seed=3",
    )
    assert "5 images from step 2 (fast sampler)" in out
    samples = np.load(output.with_suffix(".npy"))
    assert samples.shape == (5, 28, 28, 1) and samples.dtype == np.uint8
    assert set(np.unique(samples)) <= {0, 1}
    # 5 samples in rows of ceil(sqrt(5)) = 3: 2 rows, 3 columns of 28 + 2 pixels.
    assert Image.open(output).size == (3 * 30 + 2, 2 * 30 + 2)


def test_sample_cli_completes_test_images(tiny_run, tmp_path, data_dir):
    output = tmp_path / "completions.png"
    run_ok(
        "experiments.sample",
        f"--workdir={tiny_run}",
        "--num_samples=2",
        f"--output={output}",
        "--complete_split=test",
        "--complete_rows=14",
        "--num_completions=2",
        "--sampler=naive",
    )
    samples = np.load(output.with_suffix(".npy"))
    config = binarized_mnist.get_config("pixelcnn")
    config.dataset.data_dir = str(data_dir)
    originals = data.load_split(config.dataset, "test").batch(np.arange(2))["image"]
    np.testing.assert_array_equal(samples[:, :14], np.repeat(originals, 2, axis=0)[:, :14])
    assert Image.open(output).size == (4 * 30 + 2, 2 * 30 + 2)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--temperature=0"], "--temperature=0.0 must be > 0"),
        (["--labels=1,2"], "--labels given, but this run is not class-conditional"),
        (["--output=grid.jpg"], "must name a .png file"),
        (["--checkpoint_step=7"], "no checkpoint at step 7"),
        (["--temperature=inf"], "--temperature=inf must be > 0 and finite"),
        (["--complete_rows=14"], "--complete_rows needs --complete_split"),
        (["--num_completions=2"], "--num_completions needs --complete_split"),
        (["--complete_split=test", "--labels=3"], "completions are conditioned on each image's"),
        (["--interpolate=0,1"], "PixelCNN has no code to interpolate"),
        (["--drawing_steps=4"], "--drawing_steps: PixelCNN does not draw in steps"),
        (["--drawing_steps=0"], "--drawing_steps=0 must be at least 1"),
    ],
)
def test_bad_sample_flags_fail_with_one_line(tiny_run, tmp_path, flags, message):
    args = [f"--workdir={tiny_run}", f"--output={tmp_path / 'grid.png'}", *flags]
    process = cli("experiments.sample", *args)
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert err.strip().splitlines()[-1].startswith("sample: error:") and message in err, err
    assert not (tmp_path / "grid.png").exists()


# Slow tier while it is flaky: alone it passes (20 s), but with the other
# xdist worker's tests on the machine the sampler has twice not exited within
# 60 s of SIGINT (fresh-clone .ci/run). Why it waits is not yet known.
@pytest.mark.slow
def test_ctrl_c_stops_sampling_at_once(tiny_run, tmp_path):
    """Ctrl-C at a terminal while the (slow, naive) sampler runs: exit 130
    within seconds, not after the device work already queued, with one line
    below the live progress bar."""
    args = ["--num_samples=1024", "--sampler=naive", f"--output={tmp_path / 'grid.png'}"]
    terminal, stderr = pty.openpty()  # a terminal's stderr, 80 columns: the bar is live
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = cli("experiments.sample", f"--workdir={tiny_run}", *args, stderr=stderr)
    os.close(stderr)
    seen = b""
    while b"sample:" not in seen:  # the progress bar: sampling has begun
        assert select.select([terminal], [], [], 120)[0], f"no progress bar: {seen}"
        seen += os.read(terminal, 1024)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    interrupted = time.perf_counter()
    while process.poll() is None and time.perf_counter() - interrupted < 60:
        if select.select([terminal], [], [], 0.1)[0]:  # drain the terminal meanwhile
            seen += _read_or_empty(terminal)
    assert time.perf_counter() - interrupted < 5, seen
    assert process.wait(timeout=60) == 130
    while chunk := _read_or_empty(terminal):
        seen += chunk
    # On a line of its own, below the bar (which may redraw once more before the exit).
    lines = seen.decode().replace("\r\n", "\n").split("\n")
    assert "sample: interrupted (Ctrl-C)" in lines, seen
    assert not (tmp_path / "grid.png").exists()


def _read_or_empty(fd: int) -> bytes:
    """What is left to read from a pty whose other end has closed (Linux
    raises EIO there), or b""."""
    try:
        return os.read(fd, 1024)
    except OSError:
        return b""


@pytest.mark.slow
def test_sample_cli_decodes_the_autoencoders_codes(tmp_path, data_dir):
    """The auto-encoder's fast sampler needs a code: the CLI encodes eval
    images and decodes each code `--num_completions` times."""
    workdir = tmp_path / "ae"
    run_ok(
        "experiments.train",
        "--config=configs/cifar10.py:pixelcnn_autoencoder,tiny",
        f"--workdir={workdir}",
        f"--config.dataset.data_dir={data_dir}",
        "--config.dataset.train_split=train[:16]",
        "--config.dataset.eval_split=train[16:24]",
        "--config.num_train_steps=1",
    )
    output = tmp_path / "decodings.png"
    args = ["--num_samples=2", "--num_completions=3", f"--output={output}"]
    out, _ = run_ok("experiments.sample", f"--workdir={workdir}", *args)
    assert "6 images from step 1 (fast sampler)" in out
    assert np.load(output.with_suffix(".npy")).shape == (6, 32, 32, 3)
    # 2 rows: the image, then 3 decodings of its code.
    assert Image.open(output).size == (4 * 34 + 2, 2 * 34 + 2)


def test_progress_reports_finished_rows_only(rgb_model):
    """`on_row(n)` comes when n rows are computed, not when they are queued:
    with a step made slow by work on the device, the reports are a row's
    compute time apart (queued at once, they would come together)."""
    _, variables = rgb_model
    weights = jnp.full((300, 300), 1 / 300)

    def slow_work(x, extra=0.0):  # device time that depends on x (and extra): not hoisted
        return jnp.linalg.matrix_power(weights + (x.sum() + extra) * 0, 8).sum() * 0

    class SlowPixelCNN(PixelCNN):
        @nn.nowrap
        def fast_stepper(self, variables, cond=None) -> sampling.Stepper:
            naive = sampling.naive_stepper(self, variables, cond)

            def step(state, x, i, j):
                state, params = naive.step(state, x, i, j)
                return state, params + slow_work(x)

            return sampling.Stepper(init=naive.init, step=step)

    model = SlowPixelCNN(4, **TINY)
    per_row = sampling.units_per_row(model, (3, 4, 3))
    work = jax.jit(lambda x: jax.lax.fori_loop(0, per_row, lambda _, s: s + slow_work(x, s), 0.0))
    x = jnp.zeros((2, 3, 4, 3), jnp.int32)
    work(x).block_until_ready()
    start = time.perf_counter()
    work(x).block_until_ready()
    row_time = time.perf_counter() - start
    reported = []
    sampling.sample(
        model,
        variables,
        jax.random.key(0),
        x,
        on_row=lambda rows: reported.append(time.perf_counter()),
    )
    assert len(reported) == 3
    # Reports of queued rows came microseconds apart; a tenth of a row's time
    # keeps the check far from both that and a busy machine's noise.
    assert min(np.diff(reported)) > row_time / 10, (np.diff(reported), row_time)


@pytest.mark.parametrize("on_a_mesh", [False, True], ids=["plain", "on_a_mesh"])
def test_sampling_again_compiles_nothing(rgb_model, on_a_mesh):
    """The compiled row takes the variables as arguments, not constants: the
    first `sample` compiles it once (variables on a mesh too, as the trainer
    and `load` place them), and a second one, with other parameters and
    another seed, compiles nothing."""
    model, variables = rgb_model
    if on_a_mesh:
        mesh = sharding.make_mesh(jax.devices()[:1])
        variables = jax.device_put(variables, sharding.replicated(mesh))
    x = jnp.zeros((2, 3, 4, 3), jnp.int32)
    before = sampling.draw_row._cache_size()
    sampling.sample(model, variables, jax.random.key(0), x, temperature=0.5 + on_a_mesh)
    assert sampling.draw_row._cache_size() == before + 1
    other = jax.tree.map(lambda p: p * 2, variables)
    sampling.sample(model, other, jax.random.key(1), x, temperature=0.5 + on_a_mesh)
    assert sampling.draw_row._cache_size() == before + 1


# Kernels a fast step adds per layer in CPU's compilation of the row that
# `sample` runs (7 and 2 from 2 to 3 layers at 3x3, the gated layer's 4 from
# 3 layers on; 9 and 13 before the steps were fused): the PixelCNN's block its
# three GEMMs and the element-wise work between them, which XLA:CPU keeps
# apart from its GEMMs; a gated layer's horizontal stack its two GEMMs, its
# gate and its residual. The layers' windows and cache updates are read and
# written once per step for all of them, the centre taps' kernels sliced from
# the weights once (`centre_kernel`), and the vertical stacks run once per row.
@pytest.mark.parametrize("model_class,per_layer", [(PixelCNN, 7), (GatedPixelCNN, 6)])
def test_a_fast_step_runs_few_kernels_per_layer(model_class, per_layer):
    from experiments.benchmark import kernels_per_step

    x = jnp.zeros((2, 3, 3, 1), jnp.int32)
    known = jnp.zeros(x.shape, bool)

    def kernels(num_layers: int) -> int:
        model = model_class(2, hidden_dim=4, num_layers=num_layers, output_hidden_dim=4)
        variables = model.init(jax.random.key(0), x)
        drawing = sampling.Drawing(model, "fast")
        state = jax.eval_shape(lambda: sampling.start(drawing, variables, None, x, known)[0])
        row = sampling.draw_row.lower(
            drawing, variables, None, state, x, known, jax.random.key(0), jnp.int32(0)
        )
        return kernels_per_step(row.compile().as_text())

    one, two, three = kernels(1), kernels(2), kernels(3)
    assert three - two <= per_layer
    # No random number generator and no branch inside the step (96 and 78
    # kernels at one layer before): the row's noise is drawn and its row-wide
    # work done before its loop.
    assert one <= 40


# Every image of a few binary subpixels, drawn 20,000 times by the fast
# sampler (the naive one draws the same images): the counts follow the
# model's exact p(x), by a chi-square test over all images (those expected
# fewer than 5 times pooled). Grey and RGB (one draw per colour), and
# PixelCNN++ (one draw per pixel).
@pytest.mark.parametrize(
    "model,shape",
    [
        (PixelCNN(2, hidden_dim=4, num_layers=2, output_hidden_dim=4), (2, 2, 1)),
        (GatedPixelCNN(2, hidden_dim=6, num_layers=2, output_hidden_dim=6), (1, 2, 3)),
        pytest.param(
            PixelCNNPP(2, hidden_dim=4, num_resnets=1, num_scales=1, num_mixtures=2),
            (2, 2, 1),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["pixelcnn", "gated_rgb", "pixelcnn_pp"],
)
def test_samples_follow_the_exact_distribution(model, shape):
    num, subpixels = 20_000, int(np.prod(shape))
    variables = model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), seed=1)
    drawn = sampling.sample(
        model, variables, jax.random.key(0), jnp.zeros((num, *shape), jnp.int32)
    )
    index = np.asarray(drawn).reshape(num, subpixels) @ (2 ** np.arange(subpixels)[::-1])
    images = np.array(list(itertools.product(range(2), repeat=subpixels))).reshape(-1, *shape)
    log_p = likelihood.log_prob(model, variables, jnp.asarray(images, jnp.int32))
    probs = np.exp(np.asarray(log_p, np.float64))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
    expected, counts = probs / probs.sum() * num, np.bincount(index, minlength=probs.size)
    rare = expected < 5
    if rare.any():
        expected = np.append(expected[~rare], expected[rare].sum())
        counts = np.append(counts[~rare], counts[rare].sum())
    assert len(expected) > 8 and expected.max() < 0.5 * num, "a point mass proves little"
    assert scipy.stats.chisquare(counts, expected).pvalue > 1e-3
