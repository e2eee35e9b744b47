"""A convolution as 2-D matmuls over shifted slices of a padded input.

Every convolution of the zoo (masked, shifted, strided, transposed) runs
through `tap_conv`. XLA lowers those matmuls (and their gradients) to plain
GEMMs on every backend. On CPU this matters: `lax.conv`'s filter gradient
there is slow, above all for strided and transposed convolutions
(docs/benchmarks.md).

Two forms compute the same sum over taps:

* gathered inputs: the taps' input slices side by side, a few GEMMs with the
  taps' kernels stacked along the contraction (an im2col in groups);
* shifted outputs: one GEMM of the whole padded input with all taps' kernels
  side by side, then the sum of each tap's output slice.

Gradients always take the gathered form, which trains fastest. The forward
pass alone (evaluation) takes the shifted outputs where they do not compute
much more: stride 1, several taps, an output at most twice as wide as the
input, and padding that adds at most half the output's area (so not the
one-pixel windows of the fast samplers), which evaluates faster on CPU
(docs/benchmarks.md).
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

Tap = tuple[int, int]

# Taps are gathered into one matmul until its contraction width would pass
# this many input features: few large GEMMs for narrow inputs (a 7x7 input
# conv), one GEMM per tap for wide ones (avoids copying a wide im2col buffer).
# 96: a row of three 32-feature taps per GEMM (docs/benchmarks.md).
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
    starts, out_size, strides = tuple(map(tuple, starts)), tuple(out_size), tuple(strides)
    if _shift_outputs(padded.shape, kernel.shape, out_size, strides):
        return _shifted_outputs(padded, kernel, starts, out_size)
    return _gathered_inputs(padded, kernel, starts, out_size, strides)


def _shift_outputs(
    padded_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    out_size: tuple[int, int],
    strides: tuple[int, int],
) -> bool:
    """Whether the forward pass takes the shifted-outputs form (module docstring)."""
    num_taps, in_features, features = kernel_shape
    padded_area, out_area = padded_shape[1] * padded_shape[2], out_size[0] * out_size[1]
    return (
        strides == (1, 1)
        and num_taps > 1
        and features <= 2 * in_features
        and 2 * padded_area <= 3 * out_area
    )


def _gathered_inputs(
    padded: jnp.ndarray,
    kernel: jnp.ndarray,
    starts: tuple[Tap, ...],
    out_size: tuple[int, int],
    strides: tuple[int, int] = (1, 1),
) -> jnp.ndarray:
    """`tap_conv` as GEMMs over the taps' input slices side by side."""
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _shifted_outputs(
    padded: jnp.ndarray, kernel: jnp.ndarray, starts: tuple[Tap, ...], out_size: tuple[int, int]
) -> jnp.ndarray:
    """`tap_conv` at stride 1 as one GEMM `padded @ [kernel[0] .. kernel[T-1]]`,
    then the sum of tap t's output slice at `starts[t]`; differentiated as
    `_gathered_inputs`."""
    num_taps, in_features, features = kernel.shape
    batch, rows, cols, _ = padded.shape
    height, width = out_size
    stacked = jnp.moveaxis(kernel, 0, 1).reshape(in_features, num_taps * features)
    y = (padded.reshape(-1, in_features) @ stacked).reshape(batch, rows, cols, num_taps, features)
    return sum(y[:, r : r + height, c : c + width, t] for t, (r, c) in enumerate(starts))


def _shifted_outputs_fwd(padded, kernel, starts, out_size):
    return _gathered_inputs(padded, kernel, starts, out_size), (padded, kernel)


def _shifted_outputs_bwd(starts, out_size, residuals, grad):
    _, vjp = jax.vjp(lambda p, k: _gathered_inputs(p, k, starts, out_size), *residuals)
    return vjp(grad)


_shifted_outputs.defvjp(_shifted_outputs_fwd, _shifted_outputs_bwd)
