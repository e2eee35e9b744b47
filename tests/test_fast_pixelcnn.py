"""The fast samplers of the masked-convolution models (PixelCNN, Gated
PixelCNN, PixelCNN auto-encoder): the naive sampler's images for the same
seed, and the full forward pass's logits at every pixel."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models import sampling
from pixel_models.interface import NEEDS_A_CODE
from pixel_models.models.gated_pixelcnn import GatedPixelCNN
from pixel_models.models.pixelcnn import PixelCNN
from pixel_models.models.pixelcnn_autoencoder import PixelCNNAutoEncoder
from tests import model_checks
from tests.sampling_checks import assert_fast_matches_naive

GREY, RGB = ((2, 4, 5, 1), 2), ((2, 5, 4, 3), 4)  # (shape [B, H, W, C], levels K)
NUM_CLASSES, CODE_DIM = 3, 3
TINY_GATED = dict(hidden_dim=6, num_layers=3, output_hidden_dim=8)


def _variables(model, shape, cond=None):
    """Random variables, biases included (cheaper than compiling `init`)."""
    return model_checks.random_variables(model, jnp.zeros(shape, jnp.int32), cond)


def test_pixelcnn_on_rgb():  # grey images: tests/test_contract.py
    shape, levels = RGB
    model = PixelCNN(levels, hidden_dim=4, num_layers=2, output_hidden_dim=8)
    assert_fast_matches_naive(model, _variables(model, shape), shape)


# The float-embedding conditioning is the auto-encoder's (its code).
@pytest.mark.parametrize(
    "kind,shape,levels,fields",
    [
        ("none", *GREY, dict(kernel_size=5)),
        pytest.param("label", *RGB, dict(num_classes=NUM_CLASSES), marks=pytest.mark.slow),
    ],
)
def test_gated_pixelcnn(kind, shape, levels, fields):
    model = GatedPixelCNN(levels, **TINY_GATED, **fields)
    cond = None if kind == "none" else jnp.array([2, 0])
    assert_fast_matches_naive(model, _variables(model, shape, cond), shape, cond)


@pytest.fixture(scope="module")
def autoencoder():
    """An RGB auto-encoder (1x1 input kernel, 2 layers), its variables, two
    images and their codes."""
    shape, levels = RGB
    fields = TINY_GATED | dict(num_layers=2, input_kernel_size=1)
    model = PixelCNNAutoEncoder(levels, code_dim=CODE_DIM, encoder_dim=4, **fields)
    variables = _variables(model, shape)
    images = jax.random.randint(jax.random.key(1), shape, 0, levels)
    return model, variables, images, model.encode(variables, images)


def test_autoencoder_encode_gives_the_code_it_uses(autoencoder):
    model, variables, images, codes = autoencoder
    assert codes.shape == (RGB[0][0], CODE_DIM)
    apply = jax.jit(model.apply)
    np.testing.assert_allclose(apply(variables, images, codes), apply(variables, images), atol=1e-6)


def test_autoencoder_with_the_codes_of_images(autoencoder):
    model, variables, _, codes = autoencoder
    assert_fast_matches_naive(model, variables, RGB[0], codes)


def test_autoencoder_needs_a_code(autoencoder):
    model, variables, _, _ = autoencoder
    with pytest.raises(ValueError, match=re.escape(NEEDS_A_CODE)):
        sampling.make_stepper(model, variables, "fast")
