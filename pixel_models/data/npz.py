"""Members of `.npz` archives read a row at a time, never whole.

`np.savez` stores each member as is (ZIP_STORED): its `.npy` bytes lie in
the archive, at the offset its zip local header and its npy header give, so
its rows are read in place. A compressed member (`np.savez_compressed`,
ZIP_DEFLATED) cannot be: it is decompressed once, streaming, into an
uncompressed `.npy` in a cache folder (`CACHE/npz/<file>.<member>.<key>.npy`,
the key from the archive's path, size and modification time), read in place
from then on. A gzipped archive (`.npz.gz`) is refused: gunzip it.

Rows are read with plain file reads rather than a memory map: a process
holds only the rows it asked for, while the page cache, which the kernel
reclaims, keeps what it reads. (A map would leave every page it touched,
and the kernel's read-around of each, counted in the process's memory: by
the end of an epoch, the whole set.) Errors in an archive are a ValueError
that names it.
"""

import contextlib
import dataclasses
import hashlib
import os
import pathlib
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO

import numpy as np

CACHE_DIR_ENV = "PIXEL_MODELS_CACHE_DIR"

# A zip local file header: signature, 5 shorts (version, flags, method, time,
# date), 3 longs (crc, sizes), then the name and extra-field lengths.
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_CHUNK_BYTES = 1 << 20  # decompression buffer


def member_shape(path: pathlib.Path, name: str) -> tuple[int, ...]:
    """The shape of member `name` (e.g. "data") of the archive at `path`, from
    the zip directory and its npy header alone: no data is read."""
    with _archive(path) as archive, archive.open(_member(archive, name)) as f:
        return _npy_header(f)[0]


@dataclasses.dataclass(frozen=True)
class DiskRows:
    """A C-order array in a file, read by rows: `rows[index]` reads rows
    `index` (`int[n]`) -> `[n, *shape[1:]]`.

    Attributes:
      path: the file.
      offset: where the array's bytes start in it.
      shape: the array's shape.
      dtype: its dtype.
    """

    path: pathlib.Path
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"{self.path}: rows {index.min()}..{index.max()} of {len(self)}")
        row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        rows = np.empty((len(index), row_bytes), np.uint8)
        with open(self.path, "rb", buffering=0) as f:
            for row, out in zip(index, rows, strict=True):
                f.seek(self.offset + int(row) * row_bytes)
                if f.readinto(out) != row_bytes:
                    raise ValueError(f"{self.path}: cut short at row {row}; was it changed?")
        return rows.view(self.dtype).reshape(len(index), *self.shape[1:])


def member_rows(path: pathlib.Path, name: str, cache_dir: pathlib.Path) -> DiskRows:
    """Member `name` of the archive at `path`, to be read by rows; a compressed
    member is first decompressed into `cache_dir` (once)."""
    with _archive(path) as archive:
        info = _member(archive, name)
        if info.compress_type == zipfile.ZIP_STORED:
            return _npy_rows(path, _data_offset(path, info))
        cached = _cache_path(path, name, cache_dir)
        if not cached.exists():
            _decompress(archive, info, cached)
    with _named_errors(cached):
        return _npy_rows(cached, 0)


def read_member(path: pathlib.Path, name: str) -> np.ndarray:
    """Member `name` of the archive at `path`, read into memory (for small members)."""
    with _archive(path) as archive, archive.open(_member(archive, name)) as f:
        return np.lib.format.read_array(f)


@contextlib.contextmanager
def _archive(path: pathlib.Path) -> Iterator[zipfile.ZipFile]:
    """The zip archive at `path`, with `_named_errors`."""
    if path.suffix == ".gz":
        raise ValueError(f"{path}: a gzipped .npz cannot be read in place; gunzip it")
    with _named_errors(path), zipfile.ZipFile(path) as archive:
        yield archive


@contextlib.contextmanager
def _named_errors(path: pathlib.Path) -> Iterator[None]:
    """What a damaged or foreign file raises, as one ValueError that names it."""
    try:
        yield
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, struct.error) as e:
        reason = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise ValueError(f"{path}: unreadable ({reason}); is it the whole original file?") from None


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    return archive.getinfo(f"{name}.npy")


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """`(shape, fortran_order, dtype)` from the npy header at `f`'s position,
    leaving `f` at the first byte of the data."""
    version = np.lib.format.read_magic(f)
    if version not in _NPY_HEADER_READERS:
        raise ValueError(f"npy format version {version} is not supported")
    shape, fortran_order, dtype = _NPY_HEADER_READERS[version](f)
    if dtype.hasobject:
        raise ValueError("it holds Python objects, not an array")
    return shape, fortran_order, dtype


def _data_offset(path: pathlib.Path, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start in the archive: after its local
    header, whose name and extra field may differ in length from the directory's."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise ValueError(f"no local header for {info.filename}")
    name_length, extra_length = fields[-2:]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _npy_rows(path: pathlib.Path, start: int) -> DiskRows:
    """The array of the npy file that starts at byte `start` of `path`."""
    with open(path, "rb") as f:
        f.seek(start)
        shape, fortran_order, dtype = _npy_header(f)
        offset = f.tell()
    if fortran_order or not shape:
        order = "Fortran" if fortran_order else "C"
        raise ValueError(f"its array ({shape}, {order} order) cannot be read by rows")
    end = offset + int(np.prod(shape)) * dtype.itemsize
    if end > path.stat().st_size:
        raise ValueError(f"cut short: {path.stat().st_size} bytes, its {shape} array needs {end}")
    return DiskRows(path, offset, shape, dtype)


def _cache_path(path: pathlib.Path, name: str, cache_dir: pathlib.Path) -> pathlib.Path:
    stat = path.stat()
    source = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    return cache_dir / "npz" / f"{path.stem}.{name}.{key}.npy"


def _decompress(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: pathlib.Path) -> None:
    """Write member `info` (an npy file) uncompressed to `target`, a chunk at a
    time; a partial copy is never left under `target`'s name."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise OSError(
            f"cannot write the cache folder {target.parent} ({e.strerror}): set "
            f"dataset.cache_dir or ${CACHE_DIR_ENV} to a writable folder"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out, archive.open(info) as member:
            shutil.copyfileobj(member, out, _CHUNK_BYTES)
        os.replace(tmp, target)
    finally:
        pathlib.Path(tmp).unlink(missing_ok=True)
