"""`tap_conv`: its two forms against `lax.conv`, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from pixel_models.layers import tap_conv as tc

# The 5 taps of a 3x3 mask-B convolution, on an 8x8 output padded to 9x10.
_STARTS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))


def _reference(padded: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """The same convolution through `lax.conv` with the taps in a dense 2x3 kernel."""
    dense = jnp.zeros((2, 3, *kernel.shape[1:])).at[tuple(np.array(_STARTS).T)].set(kernel)
    return jax.lax.conv_general_dilated(
        padded, dense, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _inputs() -> tuple[jnp.ndarray, jnp.ndarray]:
    padded = jax.random.normal(jax.random.key(0), (2, 9, 10, 8))
    kernel = jax.random.normal(jax.random.key(1), (len(_STARTS), 8, 8))
    return padded, kernel


def test_forms_match_lax_conv():
    padded, kernel = _inputs()
    assert tc._shift_outputs(padded.shape, kernel.shape, (8, 8), (1, 1))
    expected = _reference(padded, kernel)
    for form in (tc.tap_conv, tc._gathered_inputs, tc._shifted_outputs):
        np.testing.assert_allclose(form(padded, kernel, _STARTS, (8, 8)), expected, atol=1e-4)


def test_gradients_match_lax_conv():
    padded, kernel = _inputs()
    weights = jax.random.normal(jax.random.key(2), (2, 8, 8, 8))

    def loss(conv):
        return lambda p, k: (conv(p, k) * weights).sum()

    ours = jax.grad(loss(lambda p, k: tc.tap_conv(p, k, _STARTS, (8, 8))), (0, 1))(padded, kernel)
    expected = jax.grad(loss(_reference), (0, 1))(padded, kernel)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_shifted_outputs_only_where_they_compute_little_more():
    taps_3x3, taps_1x1 = (5, 8, 8), (1, 8, 8)
    assert not tc._shift_outputs((2, 9, 10, 8), taps_3x3, (8, 8), (2, 2))  # strided
    assert not tc._shift_outputs((2, 9, 10, 8), taps_1x1, (8, 8), (1, 1))  # one tap
    assert not tc._shift_outputs((2, 9, 10, 8), (5, 8, 32), (8, 8), (1, 1))  # 4x wider out
    assert not tc._shift_outputs((2, 2, 3, 8), taps_3x3, (1, 1), (1, 1))  # a sampler's pixel
    assert tc._shift_outputs((2, 29, 30, 32), (5, 32, 32), (28, 28), (1, 1))
