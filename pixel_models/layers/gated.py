"""The gated layer of the Gated PixelCNN (van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders", Fig. 2).

Each layer updates two stacks of p feature maps:

* the vertical stack `v` sees only rows strictly above the output pixel. The
  paper convolves over the rows above and the current row, then shifts the
  maps down one row before they reach the horizontal stack; here the stored
  state is the shifted one, so no shift is needed: the first layer reads the
  rows strictly above (region "above"), later layers the rows above and the
  current row of an input that already sees earlier rows only
  ("above_inclusive"). The two formulations are the same network, except
  that where the paper's shifted maps hold zero padding (above the image),
  ours hold a constant: the stack's response to the padding, not a pixel;
* the horizontal stack `h` sees the pixels to the left in the current row
  (mask A in the first layer, which reads the image; mask B after) plus, by
  a 1x1 convolution, the vertical stack's pre-activation maps at the same
  pixel. It is colour-grouped (R->G->B) like the image.

Both stacks compute one fused convolution to 2p maps, split into the two
halves of the gate `tanh(a) * sigmoid(b)`; `out_blocks=2` colour-groups each
half like the state. A per-example conditioning bias (class or embedding) is
added to both pre-activations.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.layers.masked_conv import MaskedConv


def gate(pre: jnp.ndarray) -> jnp.ndarray:
    """Gated activation: `pre[..., 2p]` = `[a | b]` -> `tanh(a) * sigmoid(b)`, `[..., p]`."""
    a, b = jnp.split(pre, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both stacks: `(v, h)` -> `(v, h, skip)`.

    Inputs `v[B, H, W, F]`, `h[B, H, W, F]` (F = C, the scaled image, in the
    first layer; p after); `cond_bias[B, 4p]` (vertical 2p, then horizontal
    2p) or None. Outputs `v[B, H, W, p]` and `h[B, H, W, p]` (both None in the
    last layer, which feeds only the skip) and `skip[B, H, W, p]`.

    Attributes:
      hidden_dim: p, feature maps of each stack.
      kernel_size: n; the vertical conv is n x n, the horizontal 1 x n (taps
        up to the current pixel: n//2 + 1 of each).
      num_colors: colour channels C of the image; the horizontal stack, the
        residual and the skip are split into C groups.
      first: the layer reading the image: mask A, and with a reach one pixel
        longer (the n//2 + 1 rows above and pixels to the left), as the
        paper's first layer has after its shifts; no residual connection.
      last: only the skip is computed (nothing reads the stacks' outputs).
    """

    hidden_dim: int
    kernel_size: int
    num_colors: int
    first: bool = False
    last: bool = False
    dtype: Any = None

    def setup(self) -> None:
        p, n, colors = self.hidden_dim, self.kernel_size, self.num_colors
        if self.first:
            v_kernel, v_region, h_kernel, mask = (n + 2, n), "above", (1, n + 2), "A"
        else:
            v_kernel, v_region, h_kernel, mask = (n, n), "above_inclusive", (1, n), "B"
        self.vertical = MaskedConv(2 * p, v_kernel, region=v_region, dtype=self.dtype)
        self.horizontal = MaskedConv(
            2 * p, h_kernel, mask, colors, "left", out_blocks=2, dtype=self.dtype
        )
        self.v_to_h = nn.Dense(2 * p, dtype=self.dtype)
        if self.last:
            self.skip = MaskedConv(p, (1, 1), "B", colors, dtype=self.dtype)
        else:
            # The residual and skip 1x1 convs fused: one GEMM to 2p, each half colour-grouped.
            self.residual_skip = MaskedConv(
                2 * p, (1, 1), "B", colors, out_blocks=2, dtype=self.dtype
            )

    def __call__(
        self, v: jnp.ndarray, h: jnp.ndarray, cond_bias: jnp.ndarray | None = None
    ) -> tuple[jnp.ndarray | None, jnp.ndarray | None, jnp.ndarray]:
        v_pre = self.vertical_stack(self.vertical(v), cond_bias)
        h, skip = self.horizontal_stack(self.horizontal(h), self.from_vertical(v_pre, cond_bias), h)
        return None if self.last else gate(v_pre), h, skip

    # The layer in parts around its two masked convs, so that the fast sampler
    # (`gated_pixelcnn.gated_stepper`) can run the vertical stack and what the
    # horizontal stack takes from it a row at a time, and the rest of the
    # horizontal stack a pixel at a time. Their array arguments cover the same
    # positions: `[B, H', W', ...]`.

    def vertical_stack(self, v_conv: jnp.ndarray, cond_bias: jnp.ndarray | None) -> jnp.ndarray:
        """The vertical pre-activations `[..., 2p]` from the vertical conv's output."""
        if cond_bias is None:
            return v_conv
        return v_conv + _split_bias(cond_bias)[0]

    def from_vertical(self, v_pre: jnp.ndarray, cond_bias: jnp.ndarray | None) -> jnp.ndarray:
        """The terms of the horizontal pre-activations `[..., 2p]` that come
        from outside the current row: the vertical pre-activations' 1x1 conv,
        plus the conditioning bias."""
        terms = self.v_to_h(v_pre)
        return terms if cond_bias is None else terms + _split_bias(cond_bias)[1]

    def horizontal_stack(
        self, h_conv: jnp.ndarray, from_vertical: jnp.ndarray, h: jnp.ndarray
    ) -> tuple[jnp.ndarray | None, jnp.ndarray]:
        """`(h, skip)` outputs (`h` None in the last layer) from the horizontal
        conv's output, `from_vertical` and the layer's input `h`."""
        gated = gate(h_conv + from_vertical)
        if self.last:
            return None, self.skip(gated)
        residual, skip = jnp.split(self.residual_skip(gated), 2, axis=-1)
        return residual if self.first else h + residual, skip


def _split_bias(cond_bias: jnp.ndarray) -> list[jnp.ndarray]:
    """`cond_bias[B, 4p]` -> the vertical and horizontal biases, `[B, 1, 1, 2p]` each."""
    return jnp.split(cond_bias[:, None, None, :], 2, axis=-1)
