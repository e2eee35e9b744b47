"""PixelCNN++'s fast sampler (cached activations, the u stream a row at a
time, the ul stream a pixel at a time) against the naive one: the same images
for the same seed, also at 256 levels, and the full forward pass's mixture
parameters at every pixel; and the shifted convolutions evaluated on a window,
which it runs on."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models import build_model, sampling
from pixel_models.distributions import DiscretizedLogisticMixture
from pixel_models.layers.shifted_conv import (
    DownRightShiftedConv,
    DownRightShiftedConvTranspose,
    DownShiftedConv,
    DownShiftedConvTranspose,
    dilate,
)
from pixel_models.models.pixelcnn_pp import PixelCNNPP
from tests import model_checks
from tests.helpers import tiny_model_config
from tests.sampling_checks import assert_fast_matches_naive

TINY = dict(hidden_dim=6, num_resnets=1, num_mixtures=2)


# The model's strided and transposed kinds (its stride-1 convs run in every sampler test).
@pytest.mark.parametrize(
    "layer",
    [
        DownShiftedConv(3, (2, 3), (2, 2)),
        DownRightShiftedConv(3, (2, 2), (2, 2)),
        DownShiftedConvTranspose(3),
        DownRightShiftedConvTranspose(3),
    ],
    ids=lambda layer: type(layer).__name__ + str(layer.strides),
)
def test_outputs_from_their_window_equal_the_whole_convolution(layer):
    x = model_checks.random_images((2, 4, 6, 2), 5).astype(jnp.float32)
    variables = layer.init(jax.random.key(0), x)
    full = np.asarray(layer.apply(variables, x))
    upsampling = isinstance(layer, DownShiftedConvTranspose | DownRightShiftedConvTranspose)
    spread = dilate(x, layer.strides) if upsampling else x
    border = 3  # zeros around the input: more than any window reaches past it
    padded = jnp.pad(spread, ((0, 0), (border, border), (border, border), (0, 0)))
    height, width = full.shape[1:3]
    regions = [((0, 0), (1, width)), ((height - 1, 0), (1, width)), ((0, 1), (2, 2))]
    regions.append(((height - 1, width - 1), (1, 1)))
    for start, size in regions:
        (row, col), (h, w) = layer.window(jnp.array(start), size)
        window = jax.lax.dynamic_slice(padded, (0, row + border, col + border, 0), (2, h, w, 2))
        expected = full[:, start[0] : start[0] + size[0], start[1] : start[1] + size[1]]
        for gather in (False, True):
            out = layer.apply(variables, window, gather, method="valid")
            message = f"at {start}, {size}, gather={gather}"
            np.testing.assert_allclose(out, expected, atol=1e-5, err_msg=message)


@pytest.mark.slow
def test_fast_matches_naive_on_binary_grey_images_at_three_resolutions():
    # 4x8 -> 2x4 -> 1x2: the coarsest maps are a single row.
    model, shape = PixelCNNPP(2, num_scales=3, **TINY), (2, 4, 8, 1)
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32))
    assert_fast_matches_naive(model, variables, shape)


def test_fast_matches_naive_on_rgb_at_one_resolution():
    model, shape = PixelCNNPP(4, num_scales=1, **TINY), (2, 8, 4, 3)
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32))
    assert_fast_matches_naive(model, variables, shape)


@pytest.mark.slow
def test_fast_matches_naive_on_rgb_with_class_labels_at_two_resolutions():
    model, shape = PixelCNNPP(4, num_scales=2, num_classes=3, **TINY), (3, 8, 4, 3)
    labels = jnp.array([2, 0, 1])
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32), labels)
    assert_fast_matches_naive(model, variables, shape, cond=labels)


def test_float_rounding_of_the_parameters_flips_no_draw_at_256_levels():
    # The two samplers compute the mixture parameters in different orders, about
    # 1e-7 apart. Nudged by up to 1e-5 here, so that 16 images show what a few
    # hundred would at 1e-7: a logistic draw rounded to a level flipped 8 subpixels.
    dist = DiscretizedLogisticMixture(num_mixtures=2, num_levels=256)
    rng = np.random.default_rng(0)
    pixels = (16, 32, 32)
    logits = rng.normal(0, 1, (*pixels, 2))
    means = rng.uniform(-1, 1, (*pixels, 6))
    log_scales = rng.uniform(-1, 1, (*pixels, 6))  # as a randomly initialised model's
    coeffs = rng.normal(0, 1, (*pixels, 6))
    params = np.concatenate([logits, means, log_scales, coeffs], axis=-1).astype(np.float32)
    nudged = (params * (1 + rng.uniform(-1e-5, 1e-5, params.shape))).astype(np.float32)
    sample = jax.jit(dist.sample)
    drawn = np.asarray(sample(params, jax.random.key(0)))
    np.testing.assert_array_equal(np.asarray(sample(nudged, jax.random.key(0))), drawn)
    assert len(np.unique(drawn)) == 256


@pytest.mark.slow
def test_fast_and_naive_draw_the_same_8_bit_images():
    # 256 images of 32x32x3 from `cifar10.py:pixelcnn_pp,tiny`. The naive sampler
    # draws pixel (i, j) from the full pass's parameters there with the key
    # fold_in(rng, i * W + j) (`sample_rows`): so it is replayed here on the fast
    # sampler's images, a pixel at a time, rather than run (a full pass per pixel).
    model = build_model(tiny_model_config("pixelcnn_pp", 256))
    shape = (256, 32, 32, 3)
    variables = model_checks.random_variables(model, jnp.zeros((1, *shape[1:]), jnp.int32))
    rng = jax.random.key(42)
    fast = sampling.sample(model, variables, rng, jnp.zeros(shape, jnp.int32), sampler="fast")
    full = jax.jit(model.apply)(variables, fast)

    def naive_draw(params, index):  # one pixel's parameters [B, P] -> its values [B, C]
        key = jax.random.fold_in(rng, index)
        return model.distribution.sample(params[:, None, None], key)[:, 0, 0]

    @jax.jit
    def naive_row(params, row):  # the row's parameters [B, W, P] -> its values [B, W, C]
        indices = row * shape[2] + jnp.arange(shape[2])
        return jax.vmap(naive_draw, in_axes=(1, 0), out_axes=1)(params, indices)

    naive = np.stack([naive_row(full[:, i], i) for i in range(shape[1])], axis=1)
    np.testing.assert_array_equal(np.asarray(fast), naive)
