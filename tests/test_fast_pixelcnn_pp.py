"""PixelCNN++'s fast sampler (cached activations, the u stream a row at a
time, the ul stream a pixel at a time) against the naive one: the same images
for the same seed, and the full forward pass's mixture parameters at every
pixel; and the shifted convolutions evaluated on a window, which it runs on."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models.layers.shifted_conv import (
    DownRightShiftedConv,
    DownRightShiftedConvTranspose,
    DownShiftedConv,
    DownShiftedConvTranspose,
    dilate,
)
from pixel_models.models.pixelcnn_pp import PixelCNNPP
from tests import model_checks
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


def test_fast_matches_naive_on_binary_grey_images_at_three_resolutions():
    # 4x8 -> 2x4 -> 1x2: the coarsest maps are a single row.
    model, shape = PixelCNNPP(2, num_scales=3, **TINY), (2, 4, 8, 1)
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32))
    assert_fast_matches_naive(model, variables, shape)


def test_fast_matches_naive_on_rgb_at_one_resolution():
    model, shape = PixelCNNPP(4, num_scales=1, **TINY), (2, 8, 4, 3)
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32))
    assert_fast_matches_naive(model, variables, shape)


def test_fast_matches_naive_on_rgb_with_class_labels_at_two_resolutions():
    model, shape = PixelCNNPP(4, num_scales=2, num_classes=3, **TINY), (3, 8, 4, 3)
    labels = jnp.array([2, 0, 1])
    variables = model_checks.random_variables(model, jnp.zeros(shape, jnp.int32), labels)
    assert_fast_matches_naive(model, variables, shape, cond=labels)
