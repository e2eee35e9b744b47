"""Readers for the data sets' original file formats, plain or gzipped.

Each returns `uint8` images `[N, H, W, C]` and, where the format has them,
`int64` labels `[N]`. The small sets are read whole; ImageNet's `.npz`
batches are read a row at a time (`npz`), as the images are indexed.
"""

import dataclasses
import gzip
import pathlib

import numpy as np

from pixel_models.data import npz


def read_bytes(path: pathlib.Path) -> bytes:
    """Contents of `path`, gunzipped when its name ends in `.gz`."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def read_amat(path: pathlib.Path, height: int = 28, width: int = 28) -> np.ndarray:
    """Binarized MNIST `.amat`: one image a line, `H*W` space-separated 0/1."""
    chars = np.frombuffer(read_bytes(path), np.uint8)
    values = chars[(chars == ord("0")) | (chars == ord("1"))] - ord("0")
    rows = int(np.count_nonzero(chars == ord("\n")))
    if values.size != rows * height * width:
        raise ValueError(f"{path}: expected {rows} lines of {height * width} binary values")
    return values.reshape(rows, height, width, 1)


def read_idx(path: pathlib.Path) -> np.ndarray:
    """IDX (MNIST): a big-endian header of magic + dimensions, then uint8 data."""
    data = read_bytes(path)
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_mnist(images: pathlib.Path, labels: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """IDX image and label files -> `[N, 28, 28, 1]`, `[N]`."""
    return read_idx(images)[..., None], read_idx(labels).astype(np.int64)


def planar_rgb(rows: np.ndarray, size: int) -> np.ndarray:
    """`[N, 3*size*size]` as R plane, G plane, B plane (row-major) -> `[N, size, size, 3]`."""
    return rows.reshape(-1, 3, size, size).transpose(0, 2, 3, 1)


def read_cifar_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary batch: records of 1 label byte + 3072 planar RGB bytes."""
    records = np.frombuffer(read_bytes(path), np.uint8)
    if records.size % 3073:
        raise ValueError(f"{path}: size is not a multiple of the 3073-byte CIFAR-10 record")
    records = records.reshape(-1, 3073)
    return planar_rgb(records[:, 1:], 32), records[:, 0].astype(np.int64)


@dataclasses.dataclass(frozen=True)
class PlanarImages:
    """Images kept as planar RGB rows (`planar_rgb`), e.g. on disk, read and
    converted only for the rows indexed: `images[rows]` -> `uint8[n, size, size, 3]`.

    Attributes:
      rows: `uint8[N, 3*size*size]`, an array or `npz.DiskRows`.
      size: the image side.
    """

    rows: np.ndarray | npz.DiskRows
    size: int

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        return planar_rgb(self.rows[index], self.size)


def imagenet_npz_rows(path: pathlib.Path) -> int:
    """How many images a downsampled ImageNet `.npz` batch holds, from its headers."""
    return npz.member_shape(path, "data")[0]


def read_imagenet_npz(
    path: pathlib.Path, size: int, cache_dir: pathlib.Path
) -> tuple[PlanarImages, np.ndarray]:
    """Downsampled ImageNet `.npz` batch (Chrabaszcz et al. 2017): `data`
    `uint8[N, 3*size*size]` planar RGB, left on disk (a compressed one
    unpacked into `cache_dir`: `npz.member_rows`), and `labels` 1..1000 ->
    labels 0..999, read."""
    rows = npz.member_rows(path, "data", cache_dir)
    if rows.dtype != np.uint8 or rows.shape[1:] != (3 * size * size,):
        raise ValueError(
            f"{path}: data is {rows.dtype}{list(rows.shape)}, expected uint8[N, {3 * size * size}] "
            f"({size}x{size} planar RGB); is it a {size}x{size} batch?"
        )
    return PlanarImages(rows, size), npz.read_member(path, "labels").astype(np.int64) - 1
