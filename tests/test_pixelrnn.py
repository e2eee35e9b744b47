"""Row LSTM and Diagonal BiLSTM: the shared invariants, their receptive fields,
skew/unskew, and the scans against slow per-pixel loops written here."""

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pixel_models import build_model, likelihood
from pixel_models.layers.masked_conv import centre_mask, tap_offsets
from pixel_models.models.pixelrnn import (
    DiagonalBiLSTMLayer,
    DiagonalLSTM,
    RowLSTMLayer,
    _row_lstm_rows,
    _row_lstm_scan,
    skew,
    unskew,
)
from tests import model_checks

MODELS = ["row_lstm", "diagonal_bilstm"]


def pixelrnn(name, num_levels, **overrides):
    fields = dict(
        name=name, num_levels=num_levels, hidden_dim=6, num_layers=2, output_hidden_dim=12
    )
    fields.update(overrides)
    return build_model(ml_collections.ConfigDict(fields))


def init(model, shape, seed=0):
    """Flax's own initialisation (every path it opens carries a visible change), compiled."""
    return jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, *shape), jnp.int32))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape,levels", [((6, 5, 1), 2), ((4, 4, 3), 256), ((3, 4, 3), 2)])
def test_causal(name, shape, levels):
    model = pixelrnn(name, levels)
    model_checks.assert_causal(model_checks.compiled(model), init(model, shape), shape, levels)


@pytest.mark.parametrize("name", MODELS)
def test_causal_with_skip_connections(name):
    model = pixelrnn(name, 256, skip_connections=True, remat=True)
    compiled = model_checks.compiled(model)
    model_checks.assert_causal(compiled, init(model, (4, 3, 3)), (4, 3, 3), 256)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape", [(3, 3, 1), (1, 2, 3)])
def test_normalised(name, shape):
    model = pixelrnn(name, 2)
    variables = init(model, shape)
    model_checks.assert_normalised(model_checks.compiled(model), variables, image_shape=shape)


def _row_lstm_field(shape, target, num_layers, input_kernel=7, width=3):
    """Which pixels reach `target`, by following the Row LSTM's dependency
    graph on the grid: the mask-A input conv, then per layer a 1 x width
    mask-B input-to-state conv and the width-`width` recurrence over rows."""
    height, cols = shape
    inside = lambda i, j: 0 <= i < height and 0 <= j < cols  # noqa: E731
    first = [t for t in tap_offsets((input_kernel,) * 2, "causal") if t != (0, 0)]
    deps = {
        (i, j): {(i + a, j + b) for a, b in first if inside(i + a, j + b)}
        for i, j in itertools.product(range(height), range(cols))
    }
    half = width // 2
    for _ in range(num_layers):
        hidden = {}
        for i, j in itertools.product(range(height), range(cols)):
            seen = set().union(*(deps[i, j + d] for d in range(-half, 1) if inside(i, j + d)))
            for d in range(-half, half + 1):
                if inside(i - 1, j + d):
                    seen |= hidden[i - 1, j + d]
            hidden[i, j] = seen
        deps = {p: deps[p] | hidden[p] for p in deps}
    field = np.zeros(shape, bool)
    for p in deps[target]:
        field[p] = True
    return field


def test_row_lstm_has_the_triangular_field():
    # Small enough that every path's effect is far above float32 noise.
    shape, target = (6, 10), (4, 4)
    model = pixelrnn("row_lstm", 2, num_layers=2, input_kernel_size=3)
    compiled, variables = model_checks.compiled(model), init(model, (*shape, 1))
    seen = model_checks.dependency_map(compiled, variables, (*shape, 1), 2, (*target, 0))
    np.testing.assert_array_equal(seen[..., 0], _row_lstm_field(shape, target, 2, 3))
    # A triangle widening upwards: one more pixel to the right per row up.
    assert seen[3, 5, 0] and not seen[3, 6, 0] and seen[0, 8, 0] and not seen[0, 9, 0]


def test_diagonal_bilstm_sees_every_earlier_pixel():
    shape = (8, 8, 1)
    model = pixelrnn("diagonal_bilstm", 2, num_layers=2)
    compiled, variables = model_checks.compiled(model), init(model, shape)
    for target in [(7, 7, 0), (4, 3, 0), (5, 0, 0), (1, 7, 0)]:
        # A path can be cut for one image by a ReLU that is off: try three.
        seen = np.logical_or.reduce(
            [
                model_checks.dependency_map(compiled, variables, shape, 2, target, seed=s)
                for s in range(3)
            ]
        )
        earlier = np.zeros(shape, bool)
        earlier.reshape(-1)[: np.ravel_multi_index(target, shape)] = True
        np.testing.assert_array_equal(seen, earlier, err_msg=f"target {target}")


@pytest.mark.parametrize("height,width", [(1, 1), (3, 5), (5, 2)])
def test_skew_unskew_round_trip(height, width):
    x = jnp.arange(2 * height * width * 3, dtype=jnp.float32).reshape(2, height, width, 3) + 1
    skewed = skew(x)
    assert skewed.shape == (2, height, width + height - 1, 3)
    for i in range(height):
        np.testing.assert_array_equal(skewed[:, i, i : i + width], x[:, i])
        assert not skewed[:, i, :i].any() and not skewed[:, i, i + width :].any()
    np.testing.assert_array_equal(unskew(skewed, width), x)


# Slow references: plain loops over pixels, reading the modules' parameters.


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _cell(gates, cell):
    i, f, o, g = np.split(gates, 4, axis=-1)
    cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(cell), cell


def _input_to_state(params, z, taps, num_colors):
    """Masked conv by loops: `pre[b, i, j] = sum_t z[b, i+dy, j+dx] @ K[t] + bias`."""
    kernel, bias = np.asarray(params["kernel"]), np.asarray(params["bias"])
    mask = centre_mask(z.shape[-1], kernel.shape[-1], num_colors, "B", out_blocks=4)
    b, height, width, _ = z.shape
    pre = np.broadcast_to(bias, (b, height, width, len(bias))).copy()
    for t, (dy, dx) in enumerate(taps):
        k = kernel[t] * mask if (dy, dx) == (0, 0) else kernel[t]
        for i, j in itertools.product(range(height), range(width)):
            if 0 <= i + dy < height and 0 <= j + dx < width:
                pre[:, i, j] += z[:, i + dy, j + dx] @ k
    return pre


def _row_lstm_reference(params, z, hidden_dim, num_colors):
    pre = _input_to_state(params["MaskedConv_0"], z, [(0, -1), (0, 0)], num_colors)
    state_kernel = np.asarray(params["state_kernel"]).reshape(3, hidden_dim, -1)
    b, height, width, _ = z.shape
    hidden = np.zeros((b, height, width, hidden_dim))
    cell = np.zeros((b, width, hidden_dim))
    for i in range(height):
        previous = hidden[:, i - 1] if i else np.zeros((b, width, hidden_dim))
        for j in range(width):
            gates = pre[:, i, j].copy()
            for d in range(3):
                if 0 <= j + d - 1 < width:
                    gates += previous[:, j + d - 1] @ state_kernel[d]
            hidden[:, i, j], cell[:, j] = _cell(gates, cell[:, j])
    return hidden


def _diagonal_lstm_reference(params, z, hidden_dim, num_colors):
    pre = _input_to_state(params["MaskedConv_0"], z, [(0, 0)], num_colors)
    above_kernel, here_kernel = np.split(np.asarray(params["state_kernel"]), 2, axis=0)
    b, height, width, _ = z.shape
    columns = width + height - 1
    hidden = np.zeros((b, height, columns, hidden_dim))
    cell = np.zeros((b, height, hidden_dim))
    for col in range(columns):
        new_cell = np.zeros_like(cell)
        for i in range(height):
            j = col - i  # the unskewed column; outside [0, width): zero input
            gates = pre[:, i, j].copy() if 0 <= j < width else np.zeros((b, 4 * hidden_dim))
            if col:
                gates += hidden[:, i, col - 1] @ here_kernel
                if i:
                    gates += hidden[:, i - 1, col - 1] @ above_kernel
            hidden[:, i, col], new_cell[:, i] = _cell(gates, cell[:, i])
        cell = new_cell
    return np.stack([hidden[:, i, i : i + width] for i in range(height)], axis=1)


@pytest.mark.parametrize("num_colors", [1, 3])
def test_row_lstm_scan_equals_a_loop(num_colors):
    layer = RowLSTMLayer(hidden_dim=6, num_colors=num_colors)
    z = jax.random.normal(jax.random.key(1), (2, 4, 5, 6))
    pixels = jnp.zeros((2, 4, 5, num_colors))  # unused by the Row LSTM
    params = layer.init(jax.random.key(2), z, pixels)["params"]
    expected = _row_lstm_reference(params, np.asarray(z, np.float64), 6, num_colors)
    np.testing.assert_allclose(layer.apply({"params": params}, z, pixels), expected, atol=1e-5)


@pytest.mark.parametrize("num_colors", [1, 3])
def test_diagonal_lstm_scan_equals_a_loop(num_colors):
    layer = DiagonalLSTM(hidden_dim=6, num_colors=num_colors)
    z = jax.random.normal(jax.random.key(1), (2, 4, 5, 6))
    params = layer.init(jax.random.key(2), z)["params"]
    expected = _diagonal_lstm_reference(params, np.asarray(z, np.float64), 6, num_colors)
    np.testing.assert_allclose(layer.apply({"params": params}, z), expected, atol=1e-5)


def test_diagonal_bilstm_is_forward_plus_shifted_mirror():
    layer = DiagonalBiLSTMLayer(hidden_dim=6, num_colors=3)
    z = jax.random.normal(jax.random.key(1), (2, 4, 5, 6))
    pixels = jax.random.uniform(jax.random.key(3), (2, 4, 5, 3), minval=-1, maxval=1)
    params = layer.init(jax.random.key(2), z, pixels)["params"]
    z64, both = np.asarray(z, np.float64), np.concatenate([z, pixels], -1).astype(np.float64)
    forward = _diagonal_lstm_reference(params["DiagonalLSTM_0"], z64, 6, 3)
    mirrored = _diagonal_lstm_reference(params["DiagonalLSTM_1"], both[:, :, ::-1], 6, 1)
    backward = np.zeros_like(forward)
    backward[:, 1:] = mirrored[:, :-1, ::-1]
    out = layer.apply({"params": params}, z, pixels)
    np.testing.assert_allclose(out, forward + backward, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_remat_and_bfloat16_keep_the_numbers(name):
    shape = (4, 4, 3)
    model = pixelrnn(name, 256)
    variables = init(model, shape)
    x = jax.random.randint(jax.random.key(3), (2, *shape), 0, 256)

    def loss(m, params):
        return -likelihood.log_prob(m, {"params": params}, x).mean()

    value, grads = jax.value_and_grad(loss, argnums=1)(model, variables["params"])
    remat_value, remat_grads = jax.value_and_grad(loss, argnums=1)(
        pixelrnn(name, 256, remat=True), variables["params"]
    )
    np.testing.assert_allclose(remat_value, value, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(remat_grads), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    bf16 = pixelrnn(name, 256, dtype=jnp.bfloat16).apply(variables, x)
    assert bf16.dtype == jnp.float32
    np.testing.assert_allclose(bf16, model.apply(variables, x), atol=0.1, rtol=0.1)


@pytest.mark.parametrize("remat", [False, True])
def test_row_lstm_kernel_gradient_matches_autodiff(remat):
    """The Row LSTM's scan takes its state kernel's gradient in one GEMM after
    the backward scan (a custom VJP): the same as JAX's own, per row."""
    rows, batch, width, hidden, size = 5, 2, 6, 4, 3
    pre = jax.random.normal(jax.random.key(0), (rows, batch, width, 4 * hidden))
    kernel = 0.3 * jax.random.normal(jax.random.key(1), (size * hidden, 4 * hidden))
    weights = jax.random.normal(jax.random.key(2), (rows, batch, width, hidden))

    def loss(scan):
        return lambda p, k: (scan(p, k, remat) * weights).sum()

    ours = jax.jit(jax.grad(loss(_row_lstm_scan), (0, 1)))(pre, kernel)
    expected = jax.grad(loss(_row_lstm_rows), (0, 1))(pre, kernel)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
