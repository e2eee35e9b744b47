"""Shifted convolutions: PixelCNN++'s causal convolutions without masks
(Salimans et al. 2017, "PixelCNN++"; `down_shifted_conv2d` and friends in
openai/pixel-cnn's `pixel_cnn_pp/nn.py`).

The input is padded above (and, for the down-right kind, on the left) so that
a VALID convolution of an unmasked `kh x kw` kernel places each output at the
bottom row (and right column) of its window: it sees the current row and the
`kh - 1` rows above, never a row below (never a column to the right). Then
`down_shift` (one row) or `right_shift` (one column) makes the region strict:

* `down_shift(DownShiftedConv(x))` sees rows strictly above, `kw` wide,
  centred: the "u" stream;
* `right_shift(DownRightShiftedConv(x))` sees pixels up and to the left,
  strictly left of the current column: with the u stream, the "ul" stream.

Strides downsample; the transposed convolutions upsample by the same factor
and keep the same one-sided windows, as the reference's `*_deconv2d` do (a
VALID transposed convolution, then a crop). Nothing is masked, so there is no
blind spot: stacked deep enough, the two streams see every earlier pixel.

All of them run as GEMMs over shifted slices (`tap_conv`); a transposed
convolution reads its input with zeros inserted between the pixels. Kernels
are `[kh, kw, in, out]` as `nn.Conv`'s.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from pixel_models.layers.tap_conv import tap_conv


def down_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved down one row, zeros in row 0: same shape,
    output row i is input row i - 1."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved right one column, zeros in column 0: same shape,
    output column j is input column j - 1."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class _TapConv(nn.Module):
    """What the shifted convolutions share: the parameters and `_conv`."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    dtype: Any = None

    def _conv(
        self,
        x: jnp.ndarray,
        rows: tuple[int, int, int],
        cols: tuple[int, int, int],
        starts: list[tuple[int, int]],
        out_size: tuple[int, int],
        strides: tuple[int, int],
    ) -> jnp.ndarray:
        """`x[B, H, W, in]` padded by `rows` and `cols` (low, high, interior,
        as `lax.pad`), then `tap_conv` with kernel tap `(a, b)` at `starts[a * kw + b]`."""
        kh, kw = self.kernel_size
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        padded = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), rows, cols, (0, 0, 0)))
        kernel = kernel.reshape(kh * kw, *kernel.shape[2:])
        return tap_conv(padded, kernel, starts, out_size, strides) + bias


def _taps(kernel_size: tuple[int, int], flip: bool = False) -> list[tuple[int, int]]:
    """Start offsets `(a, b)` of kernel tap `(a, b)`, row-major; with `flip`,
    `(kh - 1 - a, kw - 1 - b)`."""
    kh, kw = kernel_size
    return [(kh - 1 - a, kw - 1 - b) if flip else (a, b) for a in range(kh) for b in range(kw)]


def _downsampled(x: jnp.ndarray, strides: tuple[int, int]) -> tuple[int, int]:
    return tuple(math.ceil(n / s) for n, s in zip(x.shape[1:3], strides, strict=True))


class DownShiftedConv(_TapConv):
    """`x[B, H, W, F]` -> `[B, ceil(H / sh), ceil(W / sw), features]`.

    Output `(r, c)` sees the input pixels of rows `sh r - kh + 1 .. sh r` and
    columns `sw c - kw // 2 .. sw c + kw // 2` (zero padding outside the
    image): the current row, the `kh - 1` above, `kw // 2` either side.

    Attributes:
      features: output feature maps.
      kernel_size: `(kh, kw)`, `kw` odd; (2, 3) in the paper, (1, 3) for the
        first layer of the ul stream.
      strides: `(sh, sw)`; (2, 2) downsamples.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: tuple[int, int] = (2, 3)
    strides: tuple[int, int] = (1, 1)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kh, kw = self.kernel_size
        if kw % 2 == 0:
            raise ValueError(f"DownShiftedConv needs an odd kernel width, got {kw}")
        size = _downsampled(x, self.strides)
        rows, cols = (kh - 1, 0, 0), (kw // 2, kw // 2, 0)
        return self._conv(x, rows, cols, _taps(self.kernel_size), size, self.strides)


class DownRightShiftedConv(_TapConv):
    """`x[B, H, W, F]` -> `[B, ceil(H / sh), ceil(W / sw), features]`.

    Output `(r, c)` sees the input pixels of rows `sh r - kh + 1 .. sh r` and
    columns `sw c - kw + 1 .. sw c` (zero padding outside the image): the
    current pixel and those up and to the left of it.

    Attributes:
      features: output feature maps.
      kernel_size: `(kh, kw)`; (2, 2) in the paper, (2, 1) for the first
        layer of the ul stream.
      strides: `(sh, sw)`; (2, 2) downsamples.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (1, 1)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kh, kw = self.kernel_size
        size = _downsampled(x, self.strides)
        rows, cols = (kh - 1, 0, 0), (kw - 1, 0, 0)
        return self._conv(x, rows, cols, _taps(self.kernel_size), size, self.strides)


class _UpsamplingConv(_TapConv):
    """A transposed shifted convolution."""

    def _upsample(self, x: jnp.ndarray, left: int) -> jnp.ndarray:
        """`x[B, H, W, F]` -> `[B, sh H, sw W, features]`: a VALID transposed
        convolution (input `(i, j)` reaches outputs `sh i .. sh i + kh - 1`,
        `sw j .. sw j + kw - 1`), cropped to rows `0 .. sh H - 1` and columns
        `left .. left + sw W - 1`. It reads `x` with `s - 1` zeros between
        its pixels: output `(r, c)` sums `x_dilated[r - a, c + left - b] @ kernel[a, b]`."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if kh < sh or kw - left < sw:
            raise ValueError(
                f"kernel_size {self.kernel_size} too small for strides {self.strides}: some "
                "outputs would see no input"
            )
        size = (sh * x.shape[1], sw * x.shape[2])
        rows, cols = (kh - 1, sh - 1, sh - 1), (kw - 1 - left, sw - 1 + left, sw - 1)
        return self._conv(x, rows, cols, _taps(self.kernel_size, flip=True), size, (1, 1))


class DownShiftedConvTranspose(_UpsamplingConv):
    """`x[B, H, W, F]` -> `[B, sh H, sw W, features]`, the upsampling
    counterpart of `DownShiftedConv`.

    Output `(r, c)` sees the input pixels `(i, j)` with `sh i` in rows
    `r - kh + 1 .. r` and `sw j` in columns `c - kw // 2 .. c + kw // 2`:
    at or above, never below.

    Attributes:
      features: output feature maps.
      kernel_size: `(kh, kw)`, `kw` odd, `kh >= sh`, `kw // 2 + 1 >= sw`;
        (2, 3) in the paper.
      strides: `(sh, sw)`; (2, 2) upsamples.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: tuple[int, int] = (2, 3)
    strides: tuple[int, int] = (2, 2)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kw = self.kernel_size[1]
        if kw % 2 == 0:
            raise ValueError(f"DownShiftedConvTranspose needs an odd kernel width, got {kw}")
        return self._upsample(x, kw // 2)


class DownRightShiftedConvTranspose(_UpsamplingConv):
    """`x[B, H, W, F]` -> `[B, sh H, sw W, features]`, the upsampling
    counterpart of `DownRightShiftedConv`.

    Output `(r, c)` sees the input pixels `(i, j)` with `sh i` in rows
    `r - kh + 1 .. r` and `sw j` in columns `c - kw + 1 .. c`: at or up and
    to the left, never below or to the right.

    Attributes:
      features: output feature maps.
      kernel_size: `(kh, kw)`, `kh >= sh`, `kw >= sw`; (2, 2) in the paper.
      strides: `(sh, sw)`; (2, 2) upsamples.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: tuple[int, int] = (2, 2)
    strides: tuple[int, int] = (2, 2)
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self._upsample(x, 0)
