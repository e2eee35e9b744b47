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

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pixel_models.layers.tap_conv import Tap, tap_conv


def down_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved down one row, zeros in row 0: same shape,
    output row i is input row i - 1."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


def right_shift(x: jnp.ndarray) -> jnp.ndarray:
    """`x[B, H, W, F]` moved right one column, zeros in column 0: same shape,
    output column j is input column j - 1."""
    return jnp.pad(x, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]


class _Layout(NamedTuple):
    """A shifted convolution as a `tap_conv`: its input padded with `top` rows
    of zeros above, `left` and `right` columns either side; kernel tap t read
    from `starts[t]`, with `strides`."""

    top: int
    left: int
    right: int
    starts: list[Tap]
    strides: tuple[int, int]


class _TapConv(nn.Module):
    """What the shifted convolutions share: the parameters, and the convolution
    as a `tap_conv` over a window of the (padded) input.

    Each kind says, in `_layout`, how much zero padding goes above, left and
    right of its input (none below), where each kernel tap starts, and the
    strides; then `x -> valid(pad(x))` (of `dilate(x)` for the transposed
    kinds). The fast samplers use the same two methods on parts of a map:
    `window(start, size)` gives the region of the input that some outputs
    read, `valid` computes them from it.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    dtype: Any = None

    def _layout(self) -> _Layout:
        raise NotImplementedError

    def _pad(self, x: jnp.ndarray) -> jnp.ndarray:
        """`x[B, H, W, F]` with the layout's zeros above, left and right."""
        layout = self._layout()
        return jnp.pad(x, ((0, 0), (layout.top, 0), (layout.left, layout.right), (0, 0)))

    def window(
        self, start: tuple[jnp.ndarray, jnp.ndarray], size: tuple[int, int]
    ) -> tuple[tuple[jnp.ndarray, jnp.ndarray], tuple[int, int]]:
        """The input region that the outputs at rows `start[0] .. start[0] +
        size[0] - 1` and columns `start[1] .. start[1] + size[1] - 1` read:
        `(corner, shape)`, its top-left corner (negative or past the input's
        width where it covers the zero padding; `start` may be traced) and its
        static `(height, width)`. In input coordinates; for the transposed
        convolutions, of the input as `dilate` spreads it."""
        layout, (kh, kw) = self._layout(), self.kernel_size
        (sh, sw), (row, col) = layout.strides, start
        corner = (sh * row - layout.top, sw * col - layout.left)
        return corner, (sh * (size[0] - 1) + kh, sw * (size[1] - 1) + kw)

    @nn.compact
    def valid(self, window: jnp.ndarray, gather: bool = False) -> jnp.ndarray:
        """The outputs whose input region (`window`) is `window[B, h, w, in]`,
        zeros where it covers the padding: `[B, ho, wo, features]`, computed
        from it alone (`ho = (h - kh) // sh + 1`, `wo` alike).

        `gather`: one GEMM over all kernel taps, on the taps' slices side by
        side (an im2col; for one output, on the window itself, the kernel's
        taps put in the window's order). For the few outputs of a sampler's
        step, where a launch per tap costs more than that copy; whole maps
        leave it to `tap_conv`, which copies wide inputs less."""
        layout, (kh, kw) = self._layout(), self.kernel_size
        (sh, sw), (height, width) = layout.strides, window.shape[1:3]
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (kh, kw, window.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        window, kernel, bias = nn.dtypes.promote_dtype(window, kernel, bias, dtype=self.dtype)
        kernel = kernel.reshape(kh * kw, *kernel.shape[2:])
        out_size = ((height - kh) // sh + 1, (width - kw) // sw + 1)
        if not gather:
            return tap_conv(window, kernel, layout.starts, out_size, layout.strides) + bias
        (ho, wo), (batch, features) = out_size, (window.shape[0], window.shape[-1])
        if out_size == (1, 1):  # the window is the one output's patch: a GEMM of it whole
            order = np.argsort([r * width + c for r, c in layout.starts])
            y = window.reshape(batch, -1) @ kernel[order].reshape(-1, self.features)
            return (y + bias).reshape(batch, 1, 1, self.features)
        taps = [
            jax.lax.slice(
                window,
                (0, r, c, 0),
                (batch, r + sh * (ho - 1) + 1, c + sw * (wo - 1) + 1, features),
                (1, sh, sw, 1),
            )
            for r, c in layout.starts
        ]
        patches = jnp.concatenate(taps, axis=-1)
        return tap_conv(patches, kernel.reshape(1, -1, self.features), [(0, 0)], out_size) + bias


def _taps(kernel_size: tuple[int, int], flip: bool = False) -> list[tuple[int, int]]:
    """Start offsets `(a, b)` of kernel tap `(a, b)`, row-major; with `flip`,
    `(kh - 1 - a, kw - 1 - b)`."""
    kh, kw = kernel_size
    return [(kh - 1 - a, kw - 1 - b) if flip else (a, b) for a in range(kh) for b in range(kw)]


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

    def _layout(self) -> _Layout:
        kh, kw = self.kernel_size
        return _Layout(kh - 1, kw // 2, kw // 2, _taps(self.kernel_size), self.strides)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kw = self.kernel_size[1]
        if kw % 2 == 0:
            raise ValueError(f"DownShiftedConv needs an odd kernel width, got {kw}")
        return self.valid(self._pad(x))


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

    def _layout(self) -> _Layout:
        kh, kw = self.kernel_size
        return _Layout(kh - 1, kw - 1, 0, _taps(self.kernel_size), self.strides)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return self.valid(self._pad(x))


def dilate(x: jnp.ndarray, strides: tuple[int, int]) -> jnp.ndarray:
    """`x[B, H, W, F]` -> `[B, sh H, sw W, F]`: `x[i, j]` at `(sh i, sw j)`,
    zeros elsewhere (`s - 1` after each pixel), what a transposed convolution reads."""
    (sh, sw), zero = strides, jnp.zeros((), x.dtype)
    return jax.lax.pad(x, zero, ((0, 0, 0), (0, sh - 1, sh - 1), (0, sw - 1, sw - 1), (0, 0, 0)))


class _UpsamplingConv(_TapConv):
    """A transposed shifted convolution: `x[B, H, W, F]` -> `[B, sh H, sw W,
    features]`, a stride-1 convolution of `dilate(x)` with the kernel
    flipped: output `(r, c)` sums `dilate(x)[r - a, c + left - b] @ kernel[a, b]`
    (the reference's VALID transposed convolution, cropped to rows
    `0 .. sh H - 1` and columns `left .. left + sw W - 1`)."""

    def _left(self) -> int:
        """Columns of the uncropped output cut on the left."""
        raise NotImplementedError

    def _layout(self) -> _Layout:
        (kh, kw), left = self.kernel_size, self._left()
        return _Layout(kh - 1, kw - 1 - left, left, _taps(self.kernel_size, flip=True), (1, 1))

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if kh < sh or kw - self._left() < sw:
            raise ValueError(
                f"kernel_size {self.kernel_size} too small for strides {self.strides}: some "
                "outputs would see no input"
            )
        return self.valid(self._pad(dilate(x, self.strides)))


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

    def _left(self) -> int:
        return self.kernel_size[1] // 2

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kw = self.kernel_size[1]
        if kw % 2 == 0:
            raise ValueError(f"DownShiftedConvTranspose needs an odd kernel width, got {kw}")
        return super().__call__(x)


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

    def _left(self) -> int:
        return 0
