"""PixelRNN: Row LSTM and Diagonal BiLSTM (van den Oord et al. 2016, Sec. 3).

Both models: 7x7 mask-A input conv to 2h maps; `num_layers` LSTM layers,
each with a residual connection (2h maps in, an LSTM with h units, a 1x1
mask-B conv h -> 2h added back); the categorical output stack shared with
PixelCNN. With `skip_connections` the output stack reads the sum of every
layer's output instead of the last one.

The recurrences run under `jax.lax.scan` with a small body: the
input-to-state convolution is computed for the whole image before the loop,
and each step does one GEMM (state-to-state) plus the LSTM update. The state
starts at zero. `remat` recomputes each step in the backward pass instead of
storing its activations (long scans, big images).

Gates are laid out gate-major (`[i | f | o | g]`, h units each) and unit u of
every gate has the colour group of state unit u, so the mask-B input-to-state
conv (`out_blocks=4`) keeps R -> G -> B causal.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.distributions import CategoricalModel
from pixel_models.layers.masked_conv import MaskedConv
from pixel_models.layers.pixel_io import CategoricalOutput, scale_pixels


def lstm_update(gates: jnp.ndarray, cell: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """`gates[..., 4h]` (i, f, o, g), `cell[..., h]` -> `(hidden, cell)`, both `[..., h]`."""
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    cell = jax.nn.sigmoid(f) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(cell), cell


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

    @nn.compact
    def __call__(self, z: jnp.ndarray, pixels: jnp.ndarray) -> jnp.ndarray:
        del pixels  # the row above is seen through z: the paper's triangle
        h, k = self.hidden_dim, self.kernel_size
        pre = MaskedConv(4 * h, (1, k), "B", self.num_colors, out_blocks=4, dtype=self.dtype)(z)
        kernel = self.param("state_kernel", nn.initializers.lecun_normal(), (k * h, 4 * h))
        kernel = jnp.asarray(kernel, pre.dtype)
        batch, _, width, _ = pre.shape

        def step(carry, pre_row):  # pre_row [B, W, 4h]
            hidden, cell = carry
            padded = jnp.pad(hidden, ((0, 0), (k // 2, k // 2), (0, 0)))
            window = jnp.concatenate([padded[:, d : d + width] for d in range(k)], axis=-1)
            gates = pre_row + (window.reshape(batch * width, k * h) @ kernel).reshape(pre_row.shape)
            hidden, cell = lstm_update(gates, cell)
            return (hidden, cell), hidden

        hidden = _scan_lstm(step, jnp.moveaxis(pre, 1, 0), h, self.remat)
        return jnp.moveaxis(hidden, 0, 1)


class DiagonalLSTM(nn.Module):
    """One direction: `z[B, H, W, F]` -> hidden `[B, H, W, h]`; the state at
    (i, j) comes from (i, j-1) and (i-1, j): a 2x1 conv down a column of the
    skewed map, one skewed column per scan step. Input-to-state: 1x1 mask B."""

    hidden_dim: int
    num_colors: int
    remat: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        h = self.hidden_dim
        pre = MaskedConv(4 * h, (1, 1), "B", self.num_colors, out_blocks=4, dtype=self.dtype)(z)
        kernel = self.param("state_kernel", nn.initializers.lecun_normal(), (2 * h, 4 * h))
        kernel = jnp.asarray(kernel, pre.dtype)
        batch, height, width, _ = pre.shape

        def step(carry, pre_column):  # pre_column [B, H, 4h]
            hidden, cell = carry
            above = jnp.pad(hidden, ((0, 0), (1, 0), (0, 0)))[:, :height]
            window = jnp.concatenate([above, hidden], axis=-1).reshape(batch * height, 2 * h)
            gates = pre_column + (window @ kernel).reshape(pre_column.shape)
            hidden, cell = lstm_update(gates, cell)
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

    @nn.compact
    def __call__(self, z: jnp.ndarray, pixels: jnp.ndarray) -> jnp.ndarray:
        forward = DiagonalLSTM(self.hidden_dim, self.num_colors, self.remat, self.dtype)(z)
        mirrored = jnp.concatenate([z, pixels.astype(z.dtype)], axis=-1)[:, :, ::-1]
        backward = DiagonalLSTM(self.hidden_dim, 1, self.remat, self.dtype)(mirrored)[:, :, ::-1]
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

    def recurrent_layer(self, num_colors: int) -> nn.Module:
        raise NotImplementedError("use RowLSTM or DiagonalBiLSTM")

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond=None, train: bool = False) -> jnp.ndarray:
        del train  # no dropout or batch statistics
        if cond is not None:
            raise ValueError(f"{type(self).__name__} is unconditional: call it with cond=None")
        num_colors = x.shape[-1]
        k = self.input_kernel_size
        pixels = scale_pixels(x, self.num_levels)
        z = MaskedConv(2 * self.hidden_dim, (k, k), "A", num_colors, dtype=self.dtype)(pixels)
        outputs = []
        for _ in range(self.num_layers):
            hidden = self.recurrent_layer(num_colors)(z, pixels)
            z = z + MaskedConv(z.shape[-1], (1, 1), "B", num_colors, dtype=self.dtype)(hidden)
            outputs.append(z)
        if self.skip_connections:
            z = sum(outputs)
        return CategoricalOutput(self.output_hidden_dim, self.num_levels, num_colors, self.dtype)(z)


class RowLSTM(PixelRNN):
    """PixelRNN with Row LSTM layers; `kernel_size` is the width of both its
    convolutions (3 in the paper). Triangular receptive field."""

    kernel_size: int = 3

    def recurrent_layer(self, num_colors: int) -> nn.Module:
        return RowLSTMLayer(self.hidden_dim, num_colors, self.kernel_size, self.remat, self.dtype)


class DiagonalBiLSTM(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers: every earlier pixel in view."""

    def recurrent_layer(self, num_colors: int) -> nn.Module:
        return DiagonalBiLSTMLayer(self.hidden_dim, num_colors, self.remat, self.dtype)
