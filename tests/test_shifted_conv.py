"""Shifted convolutions: each output sees exactly the window its docstring
gives (at strides 1 and 2, convs and transposed convs), and the shifts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models.layers.shifted_conv import (
    DownRightShiftedConv,
    DownRightShiftedConvTranspose,
    DownShiftedConv,
    DownShiftedConvTranspose,
    down_shift,
    right_shift,
)

CONVS = (DownShiftedConv, DownRightShiftedConv)
CENTRED = (DownShiftedConv, DownShiftedConvTranspose)


def documented_window(layer, kernel_size, strides, in_size, out_size) -> np.ndarray:
    """bool `[out_h, out_w, in_h, in_w]`: output (r, c) sees input (i, j), as the docstrings say."""
    (kh, kw), (sh, sw) = kernel_size, strides
    r, c, i, j = np.ix_(*(np.arange(n) for n in (*out_size, *in_size)))
    if layer in CONVS:
        row, col = sh * r - i, sw * c - j  # output position minus input position
    else:
        row, col = r - sh * i, c - sw * j
    rows = (row >= 0) & (row <= kh - 1)
    cols = np.abs(col) <= kw // 2 if layer in CENTRED else (col >= 0) & (col <= kw - 1)
    return rows & cols


@pytest.mark.parametrize(
    "layer,kernel_size,strides",
    [
        (DownShiftedConv, (2, 3), (1, 1)),
        (DownShiftedConv, (1, 3), (1, 1)),
        (DownShiftedConv, (2, 3), (2, 2)),
        (DownRightShiftedConv, (2, 2), (1, 1)),
        (DownRightShiftedConv, (2, 1), (1, 1)),
        (DownRightShiftedConv, (2, 2), (2, 2)),
        (DownShiftedConvTranspose, (2, 3), (2, 2)),
        (DownShiftedConvTranspose, (2, 3), (1, 1)),
        (DownRightShiftedConvTranspose, (2, 2), (2, 2)),
        (DownRightShiftedConvTranspose, (2, 2), (1, 1)),
    ],
)
def test_each_output_sees_its_documented_window(layer, kernel_size, strides):
    in_size = (6, 6) if layer in CONVS else (3, 3)
    module = layer(1, kernel_size, strides)
    x = jnp.zeros((1, *in_size, 1))
    variables = module.init(jax.random.key(0), x)
    jacobian = jax.jacobian(lambda x: module.apply(variables, x))(x)[0, :, :, 0, 0, :, :, 0]
    factor = np.array(strides)
    expected_size = in_size // factor if layer in CONVS else in_size * factor
    assert jacobian.shape[:2] == tuple(expected_size)
    seen = np.asarray(jacobian) != 0
    np.testing.assert_array_equal(
        seen, documented_window(layer, kernel_size, strides, in_size, expected_size)
    )


def test_shifts_move_by_one_and_fill_with_zeros():
    x = jnp.arange(1, 2 * 3 * 4 + 1, dtype=jnp.float32).reshape(1, 3, 4, 2)
    down, right = np.asarray(down_shift(x)), np.asarray(right_shift(x))
    np.testing.assert_array_equal(down[:, 1:], x[:, :-1])
    np.testing.assert_array_equal(right[:, :, 1:], x[:, :, :-1])
    assert not down[:, 0].any() and not right[:, :, 0].any()


def test_bad_kernels():
    x = jnp.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="odd kernel width"):
        DownShiftedConv(1, (2, 2)).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="too small for strides"):
        DownRightShiftedConvTranspose(1, (1, 2), (2, 2)).init(jax.random.key(0), x)
