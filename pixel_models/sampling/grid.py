"""Image grids of samples, as uint8 arrays and PNG files."""

import io
import math
import pathlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_PAD_VALUE = 128  # grey between cells: neither a black nor a white pixel


def to_uint8(x: np.ndarray, num_levels: int) -> np.ndarray:
    """Levels `[0, num_levels)` -> uint8 `[0, 255]` (binary images: 0 and 255),
    same shape; NaN (an occluded or empty cell) -> grey."""
    x = np.asarray(x, np.float64) * (255 / (num_levels - 1))
    return np.where(np.isnan(x), _PAD_VALUE, np.round(x)).astype(np.uint8)


def make_grid(
    cells: np.ndarray, pad: int = 2, row_labels: Sequence[str] | None = None
) -> np.ndarray:
    """`cells[R, K, H, W, C]` uint8 -> one image `[R (H + pad) + pad, M + K (W + pad) + pad, C]`,
    cell `(r, k)` at row r, column k, with `pad` grey pixels around each.
    With `row_labels` (R texts, e.g. the class of each row) a grey margin of
    M pixels on the left holds `row_labels[r]` beside row r; else M = 0."""
    rows, cols, height, width, channels = cells.shape
    out = np.full(
        (rows * (height + pad) + pad, cols * (width + pad) + pad, channels), _PAD_VALUE, np.uint8
    )
    for r, k in np.ndindex(rows, cols):
        top, left = pad + r * (height + pad), pad + k * (width + pad)
        out[top : top + height, left : left + width] = cells[r, k]
    if row_labels is None:
        return out
    margin = _label_margin(row_labels, height, pad)
    return np.concatenate([np.repeat(margin[..., None], channels, axis=-1), out], axis=1)


def _label_margin(labels: Sequence[str], height: int, pad: int) -> np.ndarray:
    """A grey `[len(labels) (height + pad) + pad, M]` uint8 column holding
    `labels[r]` in white, right-aligned and centred on row r of a grid whose
    cells are `height` pixels tall; M fits the widest label."""
    font = ImageFont.load_default(size=max(8, round(0.6 * height)))
    width = math.ceil(max(font.getlength(label) for label in labels)) + 2 * pad
    margin = Image.new("L", (width, len(labels) * (height + pad) + pad), _PAD_VALUE)
    draw = ImageDraw.Draw(margin)
    for r, label in enumerate(labels):
        middle = pad + r * (height + pad) + height / 2
        draw.text((width - pad, middle), label, fill=255, font=font, anchor="rm")
    return np.asarray(margin)


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
