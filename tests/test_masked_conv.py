import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pixel_models.layers.masked_conv import MaskedConv, centre_mask, dense_mask, tap_offsets


def test_mask_a_and_b_grey_3x3():
    a = dense_mask((3, 3), 1, 1, 1, "A")[..., 0, 0]
    b = dense_mask((3, 3), 1, 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


def test_mask_5x5_a():
    expected = [
        [1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    np.testing.assert_array_equal(dense_mask((5, 5), 1, 1, 1, "A")[..., 0, 0], expected)


def test_row_and_column_kernels():
    np.testing.assert_array_equal(dense_mask((1, 3), 1, 1, 1, "B")[..., 0, 0], [[1, 1, 0]])
    np.testing.assert_array_equal(dense_mask((1, 3), 1, 1, 1, "A")[..., 0, 0], [[1, 0, 0]])
    np.testing.assert_array_equal(dense_mask((3, 1), 1, 1, 1, "B")[..., 0, 0], [[1], [1], [0]])


def test_stack_regions():
    above = dense_mask((3, 3), 1, 1, 1, "B", region="above")[..., 0, 0]
    left = dense_mask((3, 3), 1, 1, 1, "B", region="left")[..., 0, 0]
    np.testing.assert_array_equal(above, [[1, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(left, [[0, 0, 0], [1, 1, 0], [0, 0, 0]])


def test_rgb_centre_masks():
    # Image channels R, G, B in; R, G, B out.
    np.testing.assert_array_equal(centre_mask(3, 3, 3, "A"), [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(centre_mask(3, 3, 3, "B"), [[1, 1, 1], [0, 1, 1], [0, 0, 1]])
    # Six features in groups R R G G B B, into three outputs R G B.
    expected_b = [[1, 1, 1], [1, 1, 1], [0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]]
    np.testing.assert_array_equal(centre_mask(6, 3, 3, "B"), expected_b)
    # Off-centre taps see every channel.
    assert dense_mask((3, 3), 3, 6, 3, "A")[0, 1].all()


def test_bad_kernels():
    with pytest.raises(ValueError, match="odd"):
        tap_offsets((2, 3), "causal")
    with pytest.raises(ValueError, match="region"):
        tap_offsets((3, 3), "diagonal")
    with pytest.raises(ValueError, match="no unmasked tap"):
        MaskedConv(4, (1, 1), "A", 1).init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))


def _dense_kernel(kernel, kernel_size, region, centre):
    """Our stored taps `[T, in, out]` scattered into a full HWIO kernel."""
    kh, kw = kernel_size
    taps = [t for t in tap_offsets(kernel_size, region) if t != (0, 0) or centre.any()]
    dense = np.zeros((kh, kw, *kernel.shape[1:]), np.float32)
    for t, (dy, dx) in enumerate(taps):
        dense[dy + kh // 2, dx + kw // 2] = kernel[t]
    return dense


@pytest.mark.parametrize(
    "kernel_size,mask_type,colors,cin,cout,region",
    [
        ((7, 7), "A", 3, 3, 12, "causal"),
        ((7, 7), "A", 1, 1, 8, "causal"),
        ((3, 3), "B", 3, 12, 12, "causal"),
        ((3, 3), "B", 1, 40, 24, "causal"),
        ((1, 3), "B", 3, 6, 9, "causal"),
        ((3, 1), "B", 1, 4, 4, "causal"),
        ((1, 1), "B", 3, 12, 6, "causal"),
        ((3, 3), "B", 1, 5, 5, "above"),
        ((1, 5), "A", 3, 6, 6, "left"),
    ],
)
def test_matches_dense_masked_convolution(kernel_size, mask_type, colors, cin, cout, region):
    x = jax.random.normal(jax.random.key(1), (2, 6, 7, cin))
    conv = MaskedConv(cout, kernel_size, mask_type, colors, region=region)
    variables = conv.init(jax.random.key(2), x)
    # A random bias and all-nonzero kernel so masked taps would show.
    kernel = np.asarray(variables["params"]["kernel"]) + 0.1
    variables = {"params": {"kernel": kernel, "bias": np.linspace(-1, 1, cout)}}
    mask = dense_mask(kernel_size, cin, cout, colors, mask_type, region)
    dense = _dense_kernel(kernel, kernel_size, region, centre_mask(cin, cout, colors, mask_type))
    expected = (
        jax.lax.conv_general_dilated(
            x, dense * mask, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        + variables["params"]["bias"]
    )
    np.testing.assert_allclose(conv.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_keeps_float32_params():
    x = jnp.ones((1, 4, 4, 8))
    conv = MaskedConv(8, (3, 3), "B", 1, dtype=jnp.bfloat16)
    variables = conv.init(jax.random.key(0), x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    assert conv.apply(variables, x).dtype == jnp.bfloat16


def test_above_inclusive_region():
    mask = dense_mask((3, 3), 1, 1, 1, "B", region="above_inclusive")[..., 0, 0]
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    # The centre tap keeps its colour mask; the taps right of it see every channel.
    np.testing.assert_array_equal(
        dense_mask((3, 3), 3, 3, 3, "A", region="above_inclusive")[1, 1], centre_mask(3, 3, 3, "A")
    )
    assert dense_mask((3, 3), 3, 3, 3, "A", region="above_inclusive")[1, 2].all()
    for kernel_size, mask_type, colors, cin, cout in [
        ((3, 3), "B", 1, 5, 6),
        ((5, 3), "A", 3, 6, 9),
    ]:
        test_matches_dense_masked_convolution(
            kernel_size, mask_type, colors, cin, cout, "above_inclusive"
        )
