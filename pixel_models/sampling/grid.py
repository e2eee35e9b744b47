"""Image grids of samples, as uint8 arrays and PNG files."""

import io
import pathlib

import numpy as np
from PIL import Image

_PAD_VALUE = 128  # grey between cells: neither a black nor a white pixel


def to_uint8(x: np.ndarray, num_levels: int) -> np.ndarray:
    """Levels `[0, num_levels)` -> uint8 `[0, 255]` (binary images: 0 and 255),
    same shape; NaN (an occluded or empty cell) -> grey."""
    x = np.asarray(x, np.float64) * (255 / (num_levels - 1))
    return np.where(np.isnan(x), _PAD_VALUE, np.round(x)).astype(np.uint8)


def make_grid(cells: np.ndarray, pad: int = 2) -> np.ndarray:
    """`cells[R, K, H, W, C]` uint8 -> one image `[R (H + pad) + pad, K (W + pad) + pad, C]`,
    cell `(r, k)` at row r, column k, with `pad` grey pixels around each."""
    rows, cols, height, width, channels = cells.shape
    out = np.full(
        (rows * (height + pad) + pad, cols * (width + pad) + pad, channels), _PAD_VALUE, np.uint8
    )
    for r, k in np.ndindex(rows, cols):
        top, left = pad + r * (height + pad), pad + k * (width + pad)
        out[top : top + height, left : left + width] = cells[r, k]
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """A `[H, W, C]` uint8 image (C = 1 or 3) encoded as PNG."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | pathlib.Path, image: np.ndarray) -> None:
    """Write `image` (`[H, W, C]` uint8) to `path` as PNG, atomically."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(png_bytes(image))
    tmp.replace(path)
