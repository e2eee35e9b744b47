"""A convolution as a few 2-D matmuls over shifted slices of a padded input.

Every convolution of the zoo (masked, shifted, strided, transposed) runs
through `tap_conv`. XLA lowers those matmuls (and their gradients) to plain
GEMMs on every backend. On CPU this matters: `lax.conv`'s filter gradient
there is slow (a masked PixelCNN trained 5x slower on it, a PixelCNN++ with
strided and transposed convolutions about 50x; README, Speed).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

Tap = tuple[int, int]

# Taps are gathered into one matmul until its contraction width would pass
# this many input features: few large GEMMs for narrow inputs (a 7x7 input
# conv), one GEMM per tap for wide ones (avoids copying a wide im2col buffer).
# 96: a row of three 32-feature taps per GEMM, 6-8% faster training of the
# PixelCNN and Gated PixelCNN (p=32) on CPU than 64 (README, Speed).
_MAX_MATMUL_WIDTH = 96


def tap_conv(
    padded: jnp.ndarray,
    kernel: jnp.ndarray,
    starts: Sequence[Tap],
    out_size: tuple[int, int],
    strides: tuple[int, int] = (1, 1),
) -> jnp.ndarray:
    """`sum_t window_t(padded) @ kernel[t]`, `[B, Ho, Wo, out]`.

    Args:
      padded: `[B, Hp, Wp, in]`, the input with its padding.
      kernel: `[T, in, out]`, one matrix per tap.
      starts: `T` offsets `(r, c)`: tap t reads `padded[:, r + sh * i, c + sw * j]`
        for output `(i, j)`.
      out_size: `(Ho, Wo)`.
      strides: `(sh, sw)`.
    """
    (height, width), (sh, sw) = out_size, strides
    batch, in_features = padded.shape[0], padded.shape[-1]
    features = kernel.shape[-1]

    def window(r: int, c: int) -> jnp.ndarray:
        limits = (batch, r + sh * (height - 1) + 1, c + sw * (width - 1) + 1, in_features)
        return jax.lax.slice(padded, (0, r, c, 0), limits, (1, sh, sw, 1))

    per_matmul = max(1, _MAX_MATMUL_WIDTH // in_features)
    y = None
    for first in range(0, len(starts), per_matmul):
        chunk = starts[first : first + per_matmul]
        cols = jnp.concatenate([window(r, c) for r, c in chunk], axis=-1)
        w = kernel[first : first + len(chunk)].reshape(-1, features)
        part = cols.reshape(-1, cols.shape[-1]) @ w
        y = part if y is None else y + part
    return y.reshape(batch, height, width, features)
