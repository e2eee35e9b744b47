"""PixelRNN: Row LSTM and Diagonal BiLSTM (van den Oord et al. 2016, Sec. 3).

Both models: 7x7 mask-A input conv to 2h maps; `num_layers` LSTM layers,
each with a residual connection (2h maps in, an LSTM with h units, a 1x1
mask-B conv h -> 2h added back); the categorical output stack shared with
PixelCNN. With `skip_connections` the output stack reads the sum of every
layer's output instead of the last one. `layer_biases` (the multi-scale
model's conditioning, `multiscale_pixelrnn`) adds a map per layer to its
input-to-state pre-activations.

The recurrences run under `jax.lax.scan` with a small body: the
input-to-state convolution is computed for the whole image before the loop,
and each step does one GEMM (state-to-state) plus the LSTM update. The state
starts at zero. `remat` recomputes each step in the backward pass instead of
storing its activations (long scans, big images). The Row LSTM's backward
scan leaves out its state kernel's gradient, which one GEMM over all rows
gives afterwards (`_row_lstm_scan`).

Gates are laid out gate-major (`[i | f | o | g]`, h units each) and unit u of
every gate has the colour group of state unit u, so the mask-B input-to-state
conv (`out_blocks=4`) keeps R -> G -> B causal.

The submodules are built by `nn.nowrap` methods and the recurrences' updates
are functions (`row_lstm_update`, `diagonal_lstm_update`), so that the fast
steppers (`row_lstm_stepper`, `diagonal_bilstm_stepper`) evaluate the same
layers one pixel at a time, carrying the LSTM states.

Fast sampling: carry the LSTM states instead of
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

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.interface import PixelModel, Stepper
from pixel_models.layers.conditioning import check_unconditional
from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import categorical_output, scale_pixels


def lstm_update(gates: jnp.ndarray, cell: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """`gates[..., 4h]` (i, f, o, g), `cell[..., h]` -> `(hidden, cell)`, both `[..., h]`."""
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    cell = jax.nn.sigmoid(f) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(cell), cell


def row_lstm_update(
    kernel: jnp.ndarray, pre: jnp.ndarray, above: jnp.ndarray, cell: jnp.ndarray
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The Row LSTM at (i, j): `pre[..., 4h]` its input-to-state gates,
    `above[..., k, h]` the hidden states at (i-1, j-k//2 .. j+k//2) (zeros
    outside the image), `cell[..., h]` the cell at (i-1, j), `kernel[k*h, 4h]`
    -> `(hidden, cell)`, both `[..., h]`."""
    window = above.reshape(*above.shape[:-2], -1)
    return lstm_update(pre + window @ kernel, cell)


def diagonal_lstm_update(
    kernel: jnp.ndarray,
    pre: jnp.ndarray,
    above: jnp.ndarray,
    left: jnp.ndarray,
    cell: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The Diagonal LSTM at (i, j): `pre[..., 4h]` its input-to-state gates,
    `above`, `left` the hidden states `[..., h]` at (i-1, j) and (i, j-1),
    `cell` the cell at (i, j-1), `kernel[2h, 4h]` -> `(hidden, cell)`."""
    return lstm_update(pre + jnp.concatenate([above, left], axis=-1) @ kernel, cell)


def skew(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` -> `[B, H, W + H - 1, F]`, row i shifted right by i
    (zeros elsewhere), by one pad and reshape."""
    b, h, w, f = x.shape
    flat = jnp.pad(x, ((0, 0), (0, 0), (0, h), (0, 0))).reshape(b, h * (w + h), f)
    return flat[:, : h * (w + h - 1)].reshape(b, h, w + h - 1, f)


def unskew(x: jnp.ndarray, width: int) -> jnp.ndarray:
    """Inverse of `skew`: `[B, H, width + H - 1, F]` -> `[B, H, width, F]`."""
    b, h, skewed, f = x.shape
    flat = jnp.pad(x.reshape(b, h * skewed, f), ((0, 0), (0, h), (0, 0)))
    return flat.reshape(b, h, skewed + 1, f)[:, :, :width]


def _scan_lstm(step, pre: jnp.ndarray, hidden_dim: int, remat: bool) -> jnp.ndarray:
    """Run `step(carry, pre_t)` over the leading axis of `pre[T, N..., 4h]`
    from a zero state; the hidden states `[T, N..., h]`."""
    zeros = jnp.zeros((*pre.shape[1:-1], hidden_dim), pre.dtype)
    step = jax.checkpoint(step) if remat else step
    _, hidden = jax.lax.scan(step, (zeros, zeros), pre)
    return hidden


class RowLSTMLayer(nn.Module):
    """`z[B, H, W, F]` -> hidden `[B, H, W, h]`, one row per scan step.

    Input-to-state: a `1 x kernel_size` mask-B conv (taps j-1, j of the row);
    state-to-state: a width-`kernel_size` conv over the previous row's state.
    """

    hidden_dim: int
    num_colors: int
    kernel_size: int = 3
    remat: bool = False
    dtype: Any = None

    @nn.nowrap
    def input_to_state(self) -> MaskedConv:
        """The `1 x kernel_size` mask-B conv to the gates `[..., 4h]`."""
        shape = (1, self.kernel_size)
        return MaskedConv(
            4 * self.hidden_dim, shape, "B", self.num_colors, out_blocks=4, dtype=self.dtype
        )

    @nn.compact
    def __call__(
        self, z: jnp.ndarray, pixels: jnp.ndarray, bias: jnp.ndarray | None = None
    ) -> jnp.ndarray:
        """`bias[B, H, W, 4h]`, or None: added to the input-to-state gates."""
        del pixels  # the row above is seen through z: the paper's triangle
        h, k = self.hidden_dim, self.kernel_size
        pre = self.input_to_state()(z)
        if bias is not None:
            pre = pre + bias
        kernel = self.param("state_kernel", nn.initializers.lecun_normal(), (k * h, 4 * h))
        kernel = jnp.asarray(kernel, pre.dtype)
        hidden = _row_lstm_scan(jnp.moveaxis(pre, 1, 0), kernel, self.remat)
        return jnp.moveaxis(hidden, 0, 1)


def _windows(hidden: jnp.ndarray, kernel_size: int) -> jnp.ndarray:
    """`hidden[..., W, h]` -> `[..., W, k, h]`: the states at columns
    `j - k//2 .. j + k//2` of each column j, zeros outside the row."""
    width, half = hidden.shape[-2], kernel_size // 2
    padded = jnp.pad(hidden, [(0, 0)] * (hidden.ndim - 2) + [(half, half), (0, 0)])
    return jnp.stack([padded[..., d : d + width, :] for d in range(kernel_size)], axis=-2)


def _row_lstm_rows(pre: jnp.ndarray, kernel: jnp.ndarray, remat: bool) -> jnp.ndarray:
    """The scan over rows: `pre[H, B, W, 4h]`, `kernel[k*h, 4h]` -> hidden `[H, B, W, h]`."""
    h = kernel.shape[-1] // 4

    def step(carry, pre_row):  # pre_row [B, W, 4h]
        hidden, cell = carry
        above = _windows(hidden, kernel.shape[0] // h)
        hidden, cell = row_lstm_update(kernel, pre_row, above, cell)
        return (hidden, cell), hidden

    return _scan_lstm(step, pre, h, remat)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _row_lstm_scan(pre: jnp.ndarray, kernel: jnp.ndarray, remat: bool) -> jnp.ndarray:
    """`_row_lstm_rows`, differentiated by JAX for `pre` with the state kernel
    held fixed; the kernel's gradient then comes from one GEMM over all rows
    (the gates' gradient equals `pre`'s), not one small GEMM per row inside
    the backward scan, which trains faster (docs/benchmarks.md)."""
    return _row_lstm_rows(pre, kernel, remat)


def _row_lstm_scan_fwd(pre, kernel, remat):
    hidden, pre_vjp = jax.vjp(lambda p: _row_lstm_rows(p, kernel, remat), pre)
    return hidden, (pre_vjp, hidden, kernel)


def _row_lstm_scan_bwd(remat, residuals, grad_hidden):
    pre_vjp, hidden, kernel = residuals
    (grad_gates,) = pre_vjp(grad_hidden)
    above = jnp.pad(hidden, ((1, 0), (0, 0), (0, 0), (0, 0)))[:-1]
    windows = _windows(above, kernel.shape[0] // hidden.shape[-1])
    grad_kernel = windows.reshape(-1, kernel.shape[0]).T @ grad_gates.reshape(-1, kernel.shape[1])
    return grad_gates, grad_kernel


_row_lstm_scan.defvjp(_row_lstm_scan_fwd, _row_lstm_scan_bwd)


class DiagonalLSTM(nn.Module):
    """One direction: `z[B, H, W, F]` -> hidden `[B, H, W, h]`; the state at
    (i, j) comes from (i, j-1) and (i-1, j): a 2x1 conv down a column of the
    skewed map, one skewed column per scan step. Input-to-state: 1x1 mask B."""

    hidden_dim: int
    num_colors: int
    remat: bool = False
    dtype: Any = None

    @nn.nowrap
    def input_to_state(self) -> MaskedConv:
        """The 1x1 mask-B conv to the gates `[..., 4h]`."""
        return MaskedConv(
            4 * self.hidden_dim, (1, 1), "B", self.num_colors, out_blocks=4, dtype=self.dtype
        )

    @nn.compact
    def __call__(self, z: jnp.ndarray, bias: jnp.ndarray | None = None) -> jnp.ndarray:
        """`bias[B, H, W, 4h]`, or None: added to the input-to-state gates."""
        h = self.hidden_dim
        pre = self.input_to_state()(z)
        if bias is not None:
            pre = pre + bias
        kernel = self.param("state_kernel", nn.initializers.lecun_normal(), (2 * h, 4 * h))
        kernel = jnp.asarray(kernel, pre.dtype)
        height, width = pre.shape[1:3]

        def step(carry, pre_column):  # pre_column [B, H, 4h]
            hidden, cell = carry
            above = jnp.pad(hidden, ((0, 0), (1, 0), (0, 0)))[:, :height]
            hidden, cell = diagonal_lstm_update(kernel, pre_column, above, hidden, cell)
            return (hidden, cell), hidden

        hidden = _scan_lstm(step, jnp.moveaxis(skew(pre), 2, 0), h, self.remat)
        return unskew(jnp.moveaxis(hidden, 0, 2), width)


class DiagonalBiLSTMLayer(nn.Module):
    """`z[B, H, W, F]`, `pixels[B, H, W, C]` -> `[B, H, W, h]`: a
    left-to-right Diagonal LSTM plus one on the mirrored map whose output is
    shifted down one row, so that (i, j) sees every earlier pixel and nothing
    after it.

    The shift makes all of row i-1 past for row i, so the mirrored direction
    needs no colour mask, and it also reads the pixels themselves. In the
    paper's form (it reads `z` only) the last pixels of the row above are
    out of sight: pixel (i-1, j') enters `z` only at rows >= i, or on row
    i-1 right of itself, so (i, j) never sees it when j' > j + 3 (the mask-A
    input conv's reach). Reading the pixels closes that blind spot.
    """

    hidden_dim: int
    num_colors: int
    remat: bool = False
    dtype: Any = None

    @nn.nowrap
    def directions(self) -> tuple[DiagonalLSTM, DiagonalLSTM]:
        """The forward (colour-masked) and mirrored (reads `[z, pixels]`) LSTMs."""
        return (
            DiagonalLSTM(self.hidden_dim, self.num_colors, self.remat, self.dtype),
            DiagonalLSTM(self.hidden_dim, 1, self.remat, self.dtype),
        )

    @nn.compact
    def __call__(
        self, z: jnp.ndarray, pixels: jnp.ndarray, bias: jnp.ndarray | None = None
    ) -> jnp.ndarray:
        """`bias[B, H, W, 4h]`, or None: added to both directions' input-to-state gates."""
        forward, backward = self.directions()
        mirrored = jnp.concatenate([z, pixels.astype(z.dtype)], axis=-1)[:, :, ::-1]
        mirrored_bias = None if bias is None else bias[:, :, ::-1]
        forward, backward = forward(z, bias), backward(mirrored, mirrored_bias)[:, :, ::-1]
        backward = jnp.pad(backward, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
        return forward + backward


class PixelRNN(CategoricalModel, PixelModel):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]`.

    The base of `RowLSTM` and `DiagonalBiLSTM`, which pick the recurrent layer.
    """

    CPU_CHUNK_PIXELS: ClassVar[int] = 0  # its row scans run slower in chunks

    num_levels: int
    hidden_dim: int = 16
    num_layers: int = 7
    input_kernel_size: int = 7
    output_hidden_dim: int = 32
    skip_connections: bool = False
    remat: bool = False
    dtype: Any = None

    # Flax names the submodules in the order __call__ builds them: the fast
    # sampler reads their parameters under these names.
    @nn.nowrap
    def recurrent_layer(self, num_colors: int) -> nn.Module:
        """Layer l (parameters `<class>_l`): `(z[B, H, W, 2h], pixels, bias) -> [B, H, W, h]`,
        `bias[B, H, W, 4h]` (or None) added to its input-to-state gates."""
        raise NotImplementedError("use RowLSTM or DiagonalBiLSTM")

    @nn.nowrap
    def input_conv(self, num_colors: int) -> MaskedConv:
        """The mask-A conv pixels -> `z[..., 2h]` (parameters `MaskedConv_0`)."""
        k = self.input_kernel_size
        return MaskedConv(2 * self.hidden_dim, (k, k), "A", num_colors, dtype=self.dtype)

    @nn.nowrap
    def residual_conv(self, num_colors: int) -> MaskedConv:
        """Layer l's 1x1 mask-B conv h -> 2h (parameters `MaskedConv_{l+1}`)."""
        return MaskedConv(2 * self.hidden_dim, (1, 1), "B", num_colors, dtype=self.dtype)

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        cond=None,
        train: bool = False,
        layer_biases: Sequence[jnp.ndarray] | None = None,
    ) -> jnp.ndarray:
        """`layer_biases`: None, or per layer a map `[B, H, W, 4h]` added to its
        input-to-state gates (it must not depend on `x`: causality is the
        caller's)."""
        del train  # no dropout or batch statistics
        check_unconditional(self, cond)
        num_colors = x.shape[-1]
        pixels = scale_pixels(x, self.num_levels)
        z = self.input_conv(num_colors)(pixels)
        outputs = []
        for n in range(self.num_layers):
            bias = None if layer_biases is None else layer_biases[n]
            hidden = self.recurrent_layer(num_colors)(z, pixels, bias)
            z = z + self.residual_conv(num_colors)(hidden)
            outputs.append(z)
        if self.skip_connections:
            z = sum(outputs)
        return categorical_output(self, num_colors)(z)


class RowLSTM(PixelRNN):
    """PixelRNN with Row LSTM layers; `kernel_size` is the width of both its
    convolutions (3 in the paper). Triangular receptive field."""

    kernel_size: int = 3

    @nn.nowrap
    def recurrent_layer(self, num_colors: int) -> RowLSTMLayer:
        return RowLSTMLayer(self.hidden_dim, num_colors, self.kernel_size, self.remat, self.dtype)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None, layer_biases=None) -> Stepper:
        """Carries the LSTM states: O(1 pixel) per step (`row_lstm_stepper`);
        `layer_biases` as for `__call__`."""
        check_unconditional(self, cond)
        return row_lstm_stepper(self, variables, layer_biases)


class DiagonalBiLSTM(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers: every earlier pixel in view."""

    @nn.nowrap
    def recurrent_layer(self, num_colors: int) -> DiagonalBiLSTMLayer:
        return DiagonalBiLSTMLayer(self.hidden_dim, num_colors, self.remat, self.dtype)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None, layer_biases=None) -> Stepper:
        """Carries the LSTM states: O(1 pixel) per step, plus the mirrored
        direction's row above at a row's start (`diagonal_bilstm_stepper`);
        `layer_biases` as for `__call__`."""
        check_unconditional(self, cond)
        return diagonal_bilstm_stepper(self, variables, layer_biases)


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
