"""The contract of `pixel_models.interface`, over every entry of the model
registry at tiny sizes: a model added to `MODELS` is checked by these with no
new test code.

* causal in the model's own order (`subpixel_order`), on binary and RGB images;
* normalised: p(x) sums to one over every binary image of 2x4 pixels;
* its fast sampler draws the naive sampler's images for the same seed;
* it trains, evaluates, and scores and completes images through `pixel_models.load`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pixel_models
from pixel_models import MODELS, build_model
from pixel_models.training import trainer
from tests import model_checks
from tests.helpers import tiny_config, tiny_model_config
from tests.sampling_checks import assert_fast_matches_naive

NAMES = sorted(MODELS)


def tiny(name: str, num_levels: int):
    """`(model, compiled model)` of `name`'s tiny recipe for `num_levels` levels."""
    model = build_model(tiny_model_config(name, num_levels))
    return model, model_checks.compiled(model)


def given_cond(model, batch: int):
    """The `cond` the model is checked under: a code for a model that
    encodes its input (given, its order is causal), z for a latent-variable
    model (its p(x | z)), else None."""
    if not (model.ENCODES or model.LATENT):
        return None
    dim = model.code_dim if model.ENCODES else model.latent_dim
    return jnp.asarray(np.random.default_rng(0).normal(size=(batch, dim)), jnp.float32)


@pytest.mark.parametrize("num_levels,shape", [(2, (4, 4, 1)), (4, (4, 4, 3))])
@pytest.mark.parametrize("name", NAMES)
def test_causal_in_its_own_order(name, num_levels, shape):
    if name == "draw" and shape[-1] != 1:
        pytest.skip("DRAW draws binary grey images (tests/test_draw.py checks the refusal)")
    model, compiled = tiny(name, num_levels)
    cond = given_cond(model, 1)
    variables = model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), cond)
    model_checks.assert_causal(
        compiled, variables, shape, num_levels, cond=cond, order=model.subpixel_order(shape)
    )


@pytest.mark.parametrize("name", NAMES)
def test_normalised_on_binary_images(name):
    shape = (2, 4, 1)
    model, compiled = tiny(name, 2)
    cond = given_cond(model, 1)
    variables = model_checks.random_variables(model, jnp.zeros((1, *shape), jnp.int32), cond)
    model_checks.assert_normalised(compiled, variables, shape, cond=cond)


# The families whose fast samplers have their own checks against the naive
# ones, at more shapes and conditionings (tests/test_fast_pixelcnn.py,
# test_fast_pixelcnn_pp.py, test_fast_pixelrnn.py, test_multiscale_pixelrnn.py),
# are checked here in the long tier only.
CHECKED_ELSEWHERE = (
    "pixelcnn",
    "gated_pixelcnn",
    "pixelcnn_pp",
    "row_lstm",
    "diagonal_bilstm",
    "multiscale_pixelrnn",
)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in CHECKED_ELSEWHERE else n for n in NAMES],
)
def test_fast_sampler_draws_the_naive_samplers_images(name):
    shape = (2, 4, 4, 1)
    model, _ = tiny(name, 2)
    cond = given_cond(model, shape[0])
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32), cond)
    assert_fast_matches_naive(model, variables, shape, cond=cond)


# The ones that compile slowest (PixelCNN++, the auto-encoder's encoder and
# decoder, the Diagonal BiLSTM's skew, the multi-scale PixelRNN's two
# networks, the latent models beside the VAE) are long checks; the quick tier
# trains one of each kind: PixelCNN, Gated PixelCNN, Row LSTM, VAE.
SLOWEST = (
    "pixelcnn_pp",
    "pixelcnn_autoencoder",
    "diagonal_bilstm",
    "multiscale_pixelrnn",
    "draw",
    "pixel_vae",
)
TRAINED = [pytest.param(n, marks=pytest.mark.slow) if n in SLOWEST else n for n in NAMES]


@pytest.mark.parametrize("name", TRAINED)
def test_trains_evaluates_and_loads(name, tmp_path, data_dir):
    config = tiny_config(data_dir, num_train_steps=2, eval_every_steps=2)
    config.model = tiny_model_config(name, 2)
    config.dataset.eval_split = "validation[:8]"
    run = trainer.prepare(config, tmp_path)
    summary = trainer.train(run, tmp_path)
    assert summary["step"] == 2 and summary["eval_num_examples"] == 8
    # What the evaluated NLL is of: p(x), except for the auto-encoder's own code.
    model = run.experiment.model
    assert run.experiment.conditioned_on == model.CONDITIONED_ON
    trained = pixel_models.load(tmp_path)
    images = run.eval_data.batch(np.arange(8))["image"]
    if model.LATENT:
        # A bound, said as one; the ELBO of the same z as the evaluation's.
        assert run.experiment.likelihood() == "bound (ELBO)"
        assert np.all(np.isfinite(trained.bound(images, jax.random.key(0), num_samples=3)))
        samples = trained.sample(2, jax.random.key(0))
        assert samples.shape == (2, 28, 28, 1) and set(np.unique(samples)) <= {0, 1}
        return
    assert run.experiment.likelihood() == (model.LIKELIHOOD or "p(x)")
    np.testing.assert_allclose(
        -trained.log_prob(images).mean(), summary["eval_nll_nats"], rtol=1e-5
    )
    # The last 4 rows drawn given the rest (every step of a sample, in less time).
    completed = trained.complete(images[:2], rows=24, rng=jax.random.key(0))
    assert completed.shape == (2, 28, 28, 1) and set(np.unique(completed)) <= {0, 1}
    np.testing.assert_array_equal(completed[:, :24], images[:2, :24])
