"""Fast samplers for the PixelRNNs: carry the LSTM states instead of
recomputing the image.

At pixel (i, j) each step runs the model's own layers on that pixel only:
the mask-A input conv on the pixels around (i, j), then per layer the
input-to-state conv, one LSTM update from cached states, and the residual
conv, then the output stack. What later pixels need is written into
full-size caches at (i, j). A pixel's values are final at its last step (its
last colour is never an input at the pixel itself), and a step only
overwrites its own pixel, so a step may be repeated at a pixel as its
colours fill in.

* Row LSTM: the state at (i, j) needs the inputs `z` at (i, j-k//2 .. j) and
  the hidden states (and the cell) of row i-1, all cached.
* Diagonal BiLSTM: the forward state at (i, j) needs the states at (i-1, j)
  and (i, j-1), cached. The mirrored direction, shifted down one row, needs
  only rows < i: once row i-1 is final (at row i's first step), one
  right-to-left scan per layer computes its whole row i-1 from the cached
  `z` and the pixels of that row.

Layer biases (`PixelRNN.__call__`'s `layer_biases`, the multi-scale model's
conditioning) are given whole, for every pixel, when the stepper is made:
each update adds the bias at its own pixel (or row) to its input-to-state
gates.

Caches are zero-padded so that the image's borders read zeros, as the
model's convolutions and zero initial states do (`_RowCache` and
`_DiagonalCache` give the offsets). They are updated in place, and every
read of a cache either follows its update or feeds into it (so hidden state
and cell share one array): otherwise XLA copies the whole cache every step
to keep the old value for the read.
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import categorical_output, scale_pixels
from pixel_models.models.pixelrnn import (
    DiagonalBiLSTM,
    DiagonalBiLSTMLayer,
    PixelRNN,
    RowLSTM,
    RowLSTMLayer,
    diagonal_lstm_update,
    row_lstm_update,
)
from pixel_models.sampling.sampler import Stepper


def _read(cache: jnp.ndarray, row, col, rows: int = 1, cols: int = 1) -> jnp.ndarray:
    """`cache[:, row : row + rows, col : col + cols]`, `[B, rows, cols, F]`."""
    size = (cache.shape[0], rows, cols, cache.shape[-1])
    return jax.lax.dynamic_slice(cache, (0, row, col, 0), size)


def _read_one(cache: jnp.ndarray, row, col) -> jnp.ndarray:
    """`cache[:, row, col]`, `[B, F]`."""
    return _read(cache, row, col)[:, 0, 0]


def _write(cache: jnp.ndarray, value: jnp.ndarray, row, col) -> jnp.ndarray:
    """`cache` with `value[B, F]` at `[:, row, col, :F]`."""
    value = value[:, None, None].astype(cache.dtype)
    return jax.lax.dynamic_update_slice(cache, value, (0, row, col, 0))


def _pixels_around(x: jnp.ndarray, i, j, k: int, num_levels: int) -> jnp.ndarray:
    """Rows i-k//2 .. i, columns j-k//2 .. j+k//2 of `x[B, H, W, C]`, scaled
    to [-1, 1] and zero outside the image (as the input conv pads them):
    `[B, k//2 + 1, k, C]`, all a `k x k` mask-A conv at (i, j) reads."""
    _, height, width, _ = x.shape
    rows = i + jnp.arange(-(k // 2), 1)
    cols = j + jnp.arange(-(k // 2), k // 2 + 1)
    inside = (rows >= 0)[:, None] & (cols >= 0) & (cols < width)
    window = x[:, jnp.clip(rows, 0, height - 1)[:, None], jnp.clip(cols, 0, width - 1)]
    return jnp.where(inside[:, :, None], scale_pixels(window, num_levels), 0.0)


def _bias_at(bias: jnp.ndarray | None, row, col) -> jnp.ndarray | float:
    """A layer's bias `bias[B, H, W, 4h]` at (row, col), `[B, 4h]`; 0 without one."""
    return 0.0 if bias is None else _read_one(bias, row, col)


def _masked_conv_at(conv: MaskedConv, params, window: jnp.ndarray) -> jnp.ndarray:
    """`conv` (parameters `params`) at one position: `[B, features]`.

    `window[B, rows, cols, in]` is its input around the position, which is
    at `[:, kh//2, kw//2]`; it must hold every tap of the conv's region
    (e.g. rows above and the own row: `kh//2 + 1` rows). `MaskedConv.at`
    computes the one output from the part of it the taps read.
    """
    kh, kw = conv.kernel_size
    (top, bottom), (left, right) = conv.padding(window.shape[-1])
    taps = window[:, kh // 2 - top : kh // 2 + bottom + 1, kw // 2 - left : kw // 2 + right + 1]
    out = conv.apply({"params": params}, taps, 0, 0, method=MaskedConv.at)
    return out[:, 0, 0]


def _pixel_stepper(
    model: PixelRNN,
    variables,
    layer_init: Callable[[jnp.ndarray], Any],
    layer_step: Callable[..., tuple[Any, jnp.ndarray]],
    after_row: Callable[..., Any] | None = None,
    layer_biases: Sequence[jnp.ndarray] | None = None,
) -> Stepper:
    """The pixel loop both models share, around their recurrent layers.

    Args:
      layer_init: `x -> cache`, one layer's caches for images `x[B, H, W, C]`.
      layer_step: `(layer, params, cache, x, z, i, j, bias) -> (cache, hidden[B, h])`:
        layer `layer`'s output at (i, j) from its input `z[B, 2h]` there;
        `bias` is the layer's bias `[B, H, W, 4h]`, or None.
      after_row: `(layer, params, cache, x, row, bias) -> cache`, or None: run
        once row `row` of `x` is final, before the first step of the next row
        (once, however often that step is repeated).
      layer_biases: None, or per layer its bias `[B, H, W, 4h]`.
    """
    params = variables["params"]
    biases = [None] * model.num_layers if layer_biases is None else layer_biases

    def init(x: jnp.ndarray):
        caches = tuple(layer_init(x) for _ in range(model.num_layers))
        return caches, jnp.int32(0)  # and i: `after_row` has seen the rows < i

    def step(state, x, i, j):
        caches, rows_done = state
        num_colors = x.shape[-1]
        layer = model.recurrent_layer(num_colors)
        layer_params = [params[f"{type(layer).__name__}_{n}"] for n in range(model.num_layers)]
        if after_row is not None:

            def finish_row(caches):
                return tuple(
                    after_row(layer, p, c, x, i - 1, bias)
                    for p, c, bias in zip(layer_params, caches, biases, strict=True)
                )

            caches = jax.lax.cond(i > rows_done, finish_row, lambda c: c, caches)
        k = model.input_kernel_size
        window = _pixels_around(x, i, j, k, model.num_levels)
        z = _masked_conv_at(model.input_conv(num_colors), params["MaskedConv_0"], window)
        residual = model.residual_conv(num_colors)
        new_caches, outputs = [], []
        for n, (p, cache, bias) in enumerate(zip(layer_params, caches, biases, strict=True)):
            cache, hidden = layer_step(layer, p, cache, x, z, i, j, bias)
            new_caches.append(cache)
            z = z + _masked_conv_at(residual, params[f"MaskedConv_{n + 1}"], hidden[:, None, None])
            outputs.append(z)
        if model.skip_connections:
            z = sum(outputs)
        logits = categorical_output(model, num_colors).apply(
            {"params": params["CategoricalOutput_0"]}, z[:, None, None]
        )
        return (tuple(new_caches), jnp.maximum(rows_done, i)), logits

    return Stepper(init=init, step=step)


class _RowCache(NamedTuple):
    """One Row LSTM layer's caches, `p = kernel_size // 2`.

    z: `[B, H, p + W, 2h]`, the layer's input at (i, j) at `[:, i, p + j]`.
    state: `[B, 1 + H, p + W + p, 2h]`, the hidden state and the cell at
      (i, j) at `[:, 1 + i, p + j]` (features `:h` and `h:`).
    """

    z: jnp.ndarray
    state: jnp.ndarray


def row_lstm_stepper(
    model: RowLSTM, variables, layer_biases: Sequence[jnp.ndarray] | None = None
) -> Stepper:
    """The Row LSTM's fast stepper: per step and layer, a `1 x k` conv over
    cached inputs and one LSTM update from the row above's cached states;
    `layer_biases` as for `_pixel_stepper`."""
    h, k, dtype = model.hidden_dim, model.kernel_size, jnp.dtype(model.dtype or jnp.float32)
    p = k // 2

    def layer_init(x: jnp.ndarray) -> _RowCache:
        b, height, width, _ = x.shape
        return _RowCache(
            z=jnp.zeros((b, height, p + width, 2 * h), dtype),
            state=jnp.zeros((b, 1 + height, width + 2 * p, 2 * h), dtype),
        )

    def layer_step(layer: RowLSTMLayer, params, cache: _RowCache, x, z, i, j, bias):
        zs = _write(cache.z, z, i, p + j)
        window = _read(zs, i, j, 1, p + 1)  # (i, j-p .. j): the mask-B conv's taps
        pre = _masked_conv_at(layer.input_to_state(), params["MaskedConv_0"], window)
        pre = pre + _bias_at(bias, i, j)
        kernel = jnp.asarray(params["state_kernel"], pre.dtype)
        above = _read(cache.state, i, j, 1, k)[:, 0]  # (i-1, j-p .. j+p)
        hidden, cell = row_lstm_update(kernel, pre, above[..., :h], above[:, p, h:])
        state = _write(cache.state, jnp.concatenate([hidden, cell], axis=-1), 1 + i, p + j)
        return _RowCache(zs, state), hidden

    return _pixel_stepper(model, variables, layer_init, layer_step, layer_biases=layer_biases)


class _DiagonalCache(NamedTuple):
    """One Diagonal BiLSTM layer's caches.

    forward: `[B, 1 + H, 1 + W, 2h]`, the forward direction's hidden state
      and cell at (i, j) at `[:, 1 + i, 1 + j]` (features `:h` and `h:`).
    mirrored: `[B, 1 + H, W, 3h]`, at `[:, 1 + i, j]` the layer's input `z`
      at (i, j) (features `:2h`) and, once row i is final, the mirrored
      direction's hidden state there (`2h:`): the layer's term at (i+1, j).
    """

    forward: jnp.ndarray
    mirrored: jnp.ndarray


def diagonal_bilstm_stepper(
    model: DiagonalBiLSTM, variables, layer_biases: Sequence[jnp.ndarray] | None = None
) -> Stepper:
    """The Diagonal BiLSTM's fast stepper: per step and layer, the forward
    direction's LSTM update at (i, j); once a row is final, the mirrored
    direction on it, a right-to-left scan over its cached inputs.
    `layer_biases` as for `_pixel_stepper` (each bias serves both directions)."""
    h, dtype = model.hidden_dim, jnp.dtype(model.dtype or jnp.float32)

    def layer_init(x: jnp.ndarray) -> _DiagonalCache:
        b, height, width, _ = x.shape
        return _DiagonalCache(
            forward=jnp.zeros((b, 1 + height, 1 + width, 2 * h), dtype),
            mirrored=jnp.zeros((b, 1 + height, width, 3 * h), dtype),
        )

    def after_row(layer: DiagonalBiLSTMLayer, params, cache: _DiagonalCache, x, row, bias):
        b, _, width, _ = x.shape
        z = _read(cache.mirrored, 1 + row, 0, 1, width)[..., : 2 * h]
        pixels = scale_pixels(_read(x, row, 0, 1, width), model.num_levels).astype(z.dtype)
        mirrored = params["DiagonalLSTM_1"]
        conv = layer.directions()[1].input_to_state()  # 1x1: the whole row at once
        pre = conv.apply({"params": mirrored["MaskedConv_0"]}, jnp.concatenate([z, pixels], -1))
        pre = pre + (0.0 if bias is None else _read(bias, row, 0, 1, width))
        kernel = jnp.asarray(mirrored["state_kernel"], pre.dtype)
        above = _read(cache.mirrored, row, 0, 1, width)[..., 2 * h :]

        def column(carry, inputs):  # right to left: mirrored, (row, j+1) is on the left
            right, cell = carry
            hidden, cell = diagonal_lstm_update(kernel, *inputs, right, cell)
            return (hidden, cell), hidden

        zeros = jnp.zeros((b, h), pre.dtype)
        columns = (jnp.moveaxis(pre[:, 0], 1, 0), jnp.moveaxis(above[:, 0], 1, 0))
        _, hidden = jax.lax.scan(column, (zeros, zeros), columns, reverse=True)
        hidden = jnp.moveaxis(hidden, 0, 1)[:, None].astype(dtype)
        return cache._replace(
            mirrored=jax.lax.dynamic_update_slice(cache.mirrored, hidden, (0, 1 + row, 0, 2 * h))
        )

    def layer_step(layer: DiagonalBiLSTMLayer, params, cache: _DiagonalCache, x, z, i, j, bias):
        # z first, so that the read of the shifted term below follows the update.
        mirrored = _write(cache.mirrored, z, 1 + i, j)
        forward = params["DiagonalLSTM_0"]
        conv = layer.directions()[0].input_to_state()
        pre = _masked_conv_at(conv, forward["MaskedConv_0"], z[:, None, None])
        pre = pre + _bias_at(bias, i, j)
        kernel = jnp.asarray(forward["state_kernel"], pre.dtype)
        above, left = _read_one(cache.forward, i, 1 + j), _read_one(cache.forward, 1 + i, j)
        hidden, cell = diagonal_lstm_update(kernel, pre, above[:, :h], left[:, :h], left[:, h:])
        new = _DiagonalCache(
            forward=_write(cache.forward, jnp.concatenate([hidden, cell], axis=-1), 1 + i, 1 + j),
            mirrored=mirrored,
        )
        return new, hidden + _read_one(mirrored, i, j)[:, 2 * h :]

    return _pixel_stepper(model, variables, layer_init, layer_step, after_row, layer_biases)
