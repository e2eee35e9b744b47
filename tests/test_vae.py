"""The VAE and the bounds of `likelihood.bound`, on 2x2 binary images, where
log p(x) = log E_{z ~ p(z)} p(x | z) is estimated closely enough to check
them: ELBO <= importance-weighted bound <= log p(x), the bound rising to
log p(x) with k; and the programs that say a bound is a bound."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from pixel_models import build_model, likelihood
from pixel_models.sampling import canvases
from pixel_models.training import trainer
from tests import model_checks
from tests.helpers import run_ok, tiny_config, tiny_model_config
from tests.sampling_checks import assert_fast_matches_naive

SHAPE = (2, 2, 1)
ALL_IMAGES = jnp.asarray([[(n >> b) & 1 for b in range(4)] for n in range(16)], jnp.int32).reshape(
    16, *SHAPE
)


@pytest.fixture(scope="module")
def vae():
    """A VAE of one latent number fitted (300 Adam steps of the ELBO) to a
    few of the 2x2 images, so that its posterior is a fair proposal; its
    variables; and log p(x) of all 16 images by quadrature over z in
    [-10, 10] (20,001 points)."""
    model = build_model(dict(name="vae", num_levels=2, latent_dim=1, hidden_dim=8, num_hidden=1))
    variables = model.init(jax.random.key(0), ALL_IMAGES)
    data = ALL_IMAGES[jnp.asarray([0, 3, 5, 6, 9, 10, 12, 15, 15, 0])]
    optimizer = optax.adam(3e-2)

    @jax.jit
    def step(variables, opt_state, key):
        loss = lambda v: -likelihood.bound(model, v, data, key)[0].mean()  # noqa: E731
        grads = jax.grad(loss)(variables)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(variables, updates), opt_state

    opt_state = optimizer.init(variables)
    for i in range(300):
        variables, opt_state = step(variables, opt_state, jax.random.key(100 + i))
    grid = jnp.linspace(-10.0, 10.0, 20_001)[:, None]
    log_weight = jax.scipy.stats.norm.logpdf(grid[:, 0]) + np.log(20.0 / 20_000)

    @jax.jit
    def log_px(variables, x):
        images = jnp.broadcast_to(x, (len(grid), *SHAPE))
        log_px_z = likelihood.log_prob(model, variables, images, cond=grid)
        return jax.nn.logsumexp(log_px_z + log_weight)

    return model, variables, jnp.stack([log_px(variables, x) for x in ALL_IMAGES])


def mean_bound(model, variables, num_samples: int, draws: int) -> np.ndarray:
    """The mean over `draws` independent draws of the bound, `[16]`."""
    keys = jax.random.split(jax.random.key(num_samples), draws)
    bound = jax.vmap(lambda k: likelihood.bound(model, variables, ALL_IMAGES, k, num_samples)[0])
    return np.asarray(bound(keys).mean(axis=0))


def test_the_marginal_sums_to_one(vae):
    _, _, log_px = vae
    np.testing.assert_allclose(jnp.exp(log_px).sum(), 1.0, rtol=1e-5)


def test_elbo_below_iwae_below_log_px_and_iwae_rises_to_it(vae):
    """In expectation, each bound lies below log p(x) and rises with k; the
    tolerances are three standard errors of the means."""
    model, variables, log_px = vae
    log_px = np.asarray(log_px)
    elbo = mean_bound(model, variables, 1, 400)
    iwae = {k: mean_bound(model, variables, k, draws) for k, draws in ((10, 100), (1000, 10))}
    assert np.all(elbo <= log_px + 0.15) and np.all(iwae[10] <= log_px + 0.1)
    assert elbo.sum() < iwae[10].sum() - 0.5 < iwae[1000].sum() - 0.6
    np.testing.assert_allclose(iwae[1000], log_px, atol=0.04)
    # The KL term is the closed form's: the same whatever the draws.
    _, kl = likelihood.bound(model, variables, ALL_IMAGES, jax.random.key(4), 10)
    _, kl1 = likelihood.bound(model, variables, ALL_IMAGES, jax.random.key(5))
    np.testing.assert_allclose(kl, kl1, rtol=1e-6)
    assert np.all(np.asarray(kl) > 0)


def test_the_pass_size_sets_memory_not_the_bound(vae, monkeypatch):
    """Sample i's z comes from its own key, so decoding 10 draws in passes of
    16, 32 or 160 images gives one bound."""
    model, variables, _ = vae
    key = jax.random.key(7)
    values = []
    for images_per_pass in (16, 32, 160):
        monkeypatch.setattr(likelihood, "_IMAGES_PER_PASS", images_per_pass)
        values.append(likelihood.bound(model, variables, ALL_IMAGES, key, 10)[0])
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    np.testing.assert_allclose(values[0], values[2], rtol=1e-6)


@pytest.mark.slow
def test_a_logistic_mixture_decoder_is_causal_normalised_and_sampled_given_z():
    """The colour decoder (PixelCNN++'s mixture per pixel): given z, each
    channel depends on its pixel's earlier ones only; p(x | z) sums to 1 over
    all 4,096 images of 1x2 pixels at 4 levels; fast and naive samples agree."""
    model = build_model(
        dict(
            name="vae",
            num_levels=4,
            latent_dim=2,
            hidden_dim=8,
            num_hidden=1,
            output="logistic_mixture",
            num_mixtures=2,
        )
    )
    shape = (1, 2, 3)
    z = jnp.asarray([[0.3, -1.2]])
    variables = model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), z)
    compiled = model_checks.compiled(model)
    order = model.subpixel_order(shape)
    assert order.tolist() == [[[0, 1, 2], [0, 1, 2]]]
    model_checks.assert_causal(compiled, variables, shape, 4, cond=z, order=order)
    images = jnp.asarray(list(itertools.product(range(4), repeat=6)), jnp.int32).reshape(-1, *shape)
    log_p = likelihood.log_prob(model, variables, images, jnp.repeat(z, len(images), axis=0))
    np.testing.assert_allclose(jax.nn.logsumexp(log_p), 0.0, atol=1e-4)
    assert_fast_matches_naive(model, variables, (3, *shape), cond=jnp.repeat(z, 3, axis=0))
    with pytest.raises(ValueError, match="model.output='gaussian': use one of softmax, logistic"):
        build_model(dict(name="vae", num_levels=4, output="gaussian")).init(
            jax.random.key(0), images[:1]
        )


def test_interpolation_ends_are_the_two_codes_exactly():
    codes = np.asarray([[0.1, -3.7, 2.2], [5.3, 0.3, -1.9]], np.float32)
    images = np.zeros((2, 2, 2, 1), np.int32)
    canvas = canvases.interpolations(images, codes, 5)
    np.testing.assert_array_equal(canvas.cond[0], codes[0])
    np.testing.assert_array_equal(canvas.cond[-1], codes[1])
    np.testing.assert_allclose(canvas.cond[2], codes.mean(axis=0), rtol=1e-6)
    assert canvas.start.shape == (5, 2, 2, 1) and canvas.rows == 1
    with pytest.raises(ValueError, match="must be at least 2"):
        canvases.interpolations(images, codes, 1)


def test_exact_and_bound_routes_refuse_each_others_models(vae):
    model, variables, _ = vae
    with pytest.raises(ValueError, match="latent-variable model: its log p\\(x\\) is intractable"):
        likelihood.log_prob(model, variables, ALL_IMAGES)
    pixelcnn = build_model(tiny_model_config("pixelcnn", 2))
    with pytest.raises(ValueError, match="PixelCNN has an exact likelihood: use log_prob"):
        likelihood.bound(pixelcnn, {}, ALL_IMAGES, jax.random.key(0))
    with pytest.raises(ValueError, match="num_samples=0 must be a whole number >= 1"):
        likelihood.bound(model, variables, ALL_IMAGES, jax.random.key(0), 0)


def test_evaluate_and_sample_say_a_bound_is_a_bound(tmp_path, data_dir):
    config = tiny_config(data_dir, num_train_steps=4, eval_every_steps=4)
    config.model = tiny_model_config("vae", 2)
    config.dataset.eval_split = "validation[:8]"
    summary = trainer.train(trainer.prepare(config, tmp_path), tmp_path)
    assert summary["eval_kl_nats"] > 0
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_kl_nats" in row for row in metrics)
    split = "--split=validation[:8]"
    out, _ = run_ok(
        "experiments.evaluate", f"--workdir={tmp_path}", split, "--importance_samples=20"
    )
    result = json.loads(out)
    assert result["likelihood"] == "bound (IWAE, k=20)" and result["importance_samples"] == 20
    # The IWAE bound is above the ELBO of the training-time evaluation.
    assert result["nll_nats"] < summary["eval_nll_nats"] and result["kl_nats"] > 0
    png = tmp_path / "samples.png"
    run_ok("experiments.sample", f"--workdir={tmp_path}", "--num_samples=4", f"--output={png}")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert np.load(png.with_suffix(".npy")).shape == (4, 28, 28, 1)
    # From image 0's posterior mean to image 1's: the two images, then 3 decodings.
    between = tmp_path / "between.png"
    interpolate = [
        "--interpolate=0,1",
        "--interpolation_steps=3",
        "--code_split=validation[:8]",
    ]
    run_ok("experiments.sample", f"--workdir={tmp_path}", *interpolate, f"--output={between}")
    assert np.load(between.with_suffix(".npy")).shape == (3, 28, 28, 1)
    assert Image.open(between).size == (5 * 30 + 2, 30 + 2)
