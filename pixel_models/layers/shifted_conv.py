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
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp


def down_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved down one row, zeros in row 0: same shape,
    output row i is input row i - 1."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved right one column, zeros in column 0: same shape,
    output column j is input column j - 1."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class DownShiftedConv(nn.Module):
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
        x = jnp.pad(x, ((0, 0), (kh - 1, 0), (kw // 2, kw // 2), (0, 0)))
        return nn.Conv(
            self.features, self.kernel_size, self.strides, padding="VALID", dtype=self.dtype
        )(x)


class DownRightShiftedConv(nn.Module):
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
        x = jnp.pad(x, ((0, 0), (kh - 1, 0), (kw - 1, 0), (0, 0)))
        return nn.Conv(
            self.features, self.kernel_size, self.strides, padding="VALID", dtype=self.dtype
        )(x)


def _upsample(
    x: jnp.ndarray,
    features: int,
    kernel_size: tuple[int, int],
    strides: tuple[int, int],
    left: int,
    dtype: Any,
) -> jnp.ndarray:
    """`x[B, H, W, F]` -> `[B, sh H, sw W, features]`: a VALID transposed
    convolution (input `(i, j)` reaches outputs `sh i .. sh i + kh - 1`,
    `sw j .. sw j + kw - 1`), cropped to rows `0 .. sh H - 1` and columns
    `left .. left + sw W - 1`."""
    (kh, kw), (sh, sw) = kernel_size, strides
    if kh < sh or kw - left < sw:
        raise ValueError(
            f"kernel_size {kernel_size} too small for strides {strides}: some outputs "
            "would see no input"
        )
    _, height, width, _ = x.shape
    y = nn.ConvTranspose(features, kernel_size, strides, padding="VALID", dtype=dtype)(x)
    return y[:, : sh * height, left : left + sw * width]


class DownShiftedConvTranspose(nn.Module):
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
        return _upsample(x, self.features, self.kernel_size, self.strides, kw // 2, self.dtype)


class DownRightShiftedConvTranspose(nn.Module):
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
        return _upsample(x, self.features, self.kernel_size, self.strides, 0, self.dtype)
