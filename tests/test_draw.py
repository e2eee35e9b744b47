"""DRAW: its filterbanks, reading and writing through them, and its bounds
on 2x2 binary images, where every image can be listed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from pixel_models import build_model, likelihood
from pixel_models.models import draw
from pixel_models.sampling import canvases
from pixel_models.training import sharding, trainer
from tests.helpers import run_ok, tiny_config, tiny_model_config

ALL_IMAGES = jnp.asarray([[(n >> b) & 1 for b in range(4)] for n in range(16)], jnp.int32).reshape(
    16, 2, 2, 1
)


def test_every_filter_sums_to_one():
    rng = np.random.default_rng(0)
    centre, stride = jnp.asarray(rng.uniform(0, 9, 4)), jnp.asarray(rng.uniform(0.5, 3, 4))
    bank = draw.filterbank(centre, stride, jnp.asarray(rng.uniform(0.1, 4, 4)), 5, 9)
    assert bank.shape == (4, 5, 9)
    np.testing.assert_allclose(bank.sum(axis=-1), 1.0, rtol=1e-6)


def test_reading_then_writing_returns_the_grid_of_pixels_read():
    """Centred (g~ = 0), unit stride factor and a tiny variance: the 3x3 grid's
    filters pick rows and columns 0, 4 and 8 of a 9x9 image exactly; writing
    the glimpse back puts those 9 pixels where they were, zeros elsewhere."""
    image = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 9, 9)), jnp.float32)
    out = jnp.asarray(
        [[0.0, 0.0, -20.0, 0.0, np.log(2.0)]] * 2
    )  # gx, gy, log var, log delta, log gamma
    fy, fx, gamma = draw.attention_params(out, 3, 9, 9)
    np.testing.assert_allclose(gamma, 2.0, rtol=1e-6)
    glimpse = draw.read_glimpse(image, fy, fx)
    rows = np.array([0, 4, 8])
    np.testing.assert_allclose(glimpse, image[:, rows][:, :, rows], atol=1e-6)
    written = draw.write_patch(glimpse, fy, fx)
    mask = np.zeros((9, 9), bool)
    mask[np.ix_(rows, rows)] = True
    np.testing.assert_allclose(written, np.where(mask, image, 0.0), atol=1e-6)


@pytest.mark.parametrize("attention", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_bounds_rise_with_k_and_stay_below_one_in_total(attention):
    """Over all 16 images: the exponentiated IWAE bound sums to at most 1
    (within Monte Carlo error), and the ELBO lies below IWAE_10 below
    IWAE_1000 (means over draws)."""
    sizes = dict(read_size=1, write_size=2) if attention else dict(read_size=0, write_size=0)
    model = build_model(
        dict(name="draw", num_levels=2, num_steps=2, z_dim=1, hidden_dim=8, **sizes)
    )
    variables = jax.jit(model.init)(jax.random.key(0), ALL_IMAGES)

    def mean_bound(num_samples: int, draws: int) -> np.ndarray:
        keys = jax.random.split(jax.random.key(num_samples), draws)
        bound = lambda k: likelihood.bound(model, variables, ALL_IMAGES, k, num_samples)[0]  # noqa: E731
        return np.asarray(jax.jit(jax.vmap(bound))(keys).mean(axis=0))

    elbo, iwae10, iwae1000 = mean_bound(1, 400), mean_bound(10, 100), mean_bound(1000, 4)
    assert elbo.sum() < iwae10.sum() < iwae1000.sum()
    assert np.exp(iwae1000).sum() <= 1.02
    # The canvas as it is drawn: T steps, the last one the decoded image's.
    z = model.sample_latent(variables, jax.random.key(2), 3)
    canvases = model.drawing_steps(variables, z, (2, 2, 1))
    logits = model.apply(variables, jnp.zeros((3, 2, 2, 1), jnp.int32), z)
    assert canvases.shape == (3, 2, 2, 2, 1)
    np.testing.assert_allclose(
        canvases[:, -1], jax.nn.sigmoid(logits[..., 1] - logits[..., 0]), rtol=1e-5
    )


def test_the_drawing_steps_are_of_the_samples_z():
    """`canvases.with_latent` fixes the z that the sampler would draw (the
    same samples), and `drawing_steps` shows that z's canvas at evenly
    spaced steps, ending at T."""
    model = build_model(dict(name="draw", num_levels=2, num_steps=5, z_dim=1, hidden_dim=8))
    variables = jax.jit(model.init)(jax.random.key(0), ALL_IMAGES)
    mesh = sharding.make_mesh()
    rng = jax.random.key(3)
    plain = canvases.unconditional(4, (2, 2, 1))
    fixed = canvases.with_latent(plain, model, variables, rng)
    assert fixed.cond.shape == (4, 5)
    samples = canvases.draw(fixed, model, variables, mesh, rng)
    np.testing.assert_array_equal(samples, canvases.draw(plain, model, variables, mesh, rng))
    frames, shown = canvases.drawing_steps(model, variables, fixed.cond, (2, 2, 1), 3)
    assert shown == [1, 3, 5] and frames.shape == (4, 3, 2, 2, 1)
    every = np.asarray(model.drawing_steps(variables, fixed.cond, (2, 2, 1)))
    np.testing.assert_array_equal(frames, every[:, [0, 2, 4]])
    assert canvases.drawing_steps(model, variables, fixed.cond, (2, 2, 1), 9)[1] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_sample_cli_writes_the_canvas_over_its_steps(tmp_path, data_dir):
    config = tiny_config(data_dir, num_train_steps=2, eval_every_steps=0)
    config.model = tiny_model_config("draw", 2)
    trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    png = tmp_path / "draw.png"
    args = ["--num_samples=3", "--drawing_steps=2", f"--output={png}"]
    out, _ = run_ok("experiments.sample", f"--workdir={tmp_path}", *args)
    steps = tmp_path / "draw_steps.png"
    assert f"the canvases at steps 1, 3 of 3, then the samples -> {steps}" in out
    # 3 rows (a sample each) of 2 canvases and the sample, 28 + 2 pixels a cell.
    assert Image.open(steps).size == (3 * 30 + 2, 3 * 30 + 2)


def test_refuses_colour_and_levels():
    model = build_model(dict(name="draw", num_levels=4, num_steps=2, z_dim=1, hidden_dim=4))
    with pytest.raises(ValueError, match="DRAW draws binary grey images"):
        model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1), jnp.int32))
