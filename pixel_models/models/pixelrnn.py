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
sampler (`pixel_models.sampling.fast_pixelrnn`) evaluates the same layers one
pixel at a time, carrying the LSTM states.
"""

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.layers.conditioning import check_unconditional
from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import categorical_output, scale_pixels
from pixel_models.sampling import Stepper


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
    the backward scan: 5% faster training on CPU (README, Speed)."""
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


class PixelRNN(CategoricalModel, nn.Module):
    """`x[B, H, W, C]` integers in `[0, num_levels)` -> logits `[B, H, W, C, K]`.

    The base of `RowLSTM` and `DiagonalBiLSTM`, which pick the recurrent layer.
    """

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
        """Carries the LSTM states: O(1 pixel) per step (`fast_pixelrnn`);
        `layer_biases` as for `__call__`."""
        from pixel_models.sampling import fast_pixelrnn  # imports this module

        check_unconditional(self, cond)
        return fast_pixelrnn.row_lstm_stepper(self, variables, layer_biases)


class DiagonalBiLSTM(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers: every earlier pixel in view."""

    @nn.nowrap
    def recurrent_layer(self, num_colors: int) -> DiagonalBiLSTMLayer:
        return DiagonalBiLSTMLayer(self.hidden_dim, num_colors, self.remat, self.dtype)

    @nn.nowrap
    def fast_stepper(self, variables, cond=None, layer_biases=None) -> Stepper:
        """Carries the LSTM states: O(1 pixel) per step, plus the mirrored
        direction's row above at a row's start (`fast_pixelrnn`);
        `layer_biases` as for `__call__`."""
        from pixel_models.sampling import fast_pixelrnn  # imports this module

        check_unconditional(self, cond)
        return fast_pixelrnn.diagonal_bilstm_stepper(self, variables, layer_biases)
