"""Atomic file output and pickle-free array input.

Every file sgtheory writes goes through these helpers: the content is written to a temporary
file in the destination folder and renamed into place, so an interrupted run never leaves a
half-written output. Arrays are always read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from sgtheory.errors import InputError


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check it is a writable folder.

    Raises :class:`InputError` naming the folder when it cannot be written.
    """
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {p}: cannot create folder ({exc.strerror or exc})") from None
    if not p.is_dir():
        raise InputError(f"--out {p}: not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"--out {p}: folder is not writable")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` is appended to the temporary name (some writers infer the format from it,
    e.g. matplotlib from ``.png``). On any exception the temporary file is removed.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as JSON (numpy scalars and arrays converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, default=_json_default) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def savez(path: str | os.PathLike, arrays: Mapping[str, Any], *, compressed: bool = True) -> Path:
    """Atomically write a ``.npz`` of plain numeric arrays (no object arrays: nothing needs pickle)."""
    clean = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise TypeError(f"savez: array {k!r} has dtype object, which would need pickle")
        clean[k] = a
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **clean)
    return Path(path)


def savefig(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Atomically save a matplotlib figure; the format comes from ``path``'s suffix."""
    dest = Path(path)
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(dest, suffix=dest.suffix) as tmp:
        fig.savefig(tmp, format=dest.suffix.lstrip(".") or "png", **kwargs)
    return dest


def load_npz(path: str | os.PathLike, *, what: str = "file") -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` into memory, never unpickling.

    Raises :class:`InputError` for a missing, corrupt or pickled file (one clear message).
    Key order is kept as stored.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: no such file")
    if not p.is_file():
        raise InputError(f"{what} {p}: not a file")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"PK":
        raise InputError(f"{what} {p}: corrupt or not an .npz archive")
    try:
        with np.load(p, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise InputError(f"{what} {p}: not an .npz archive")
            return {k: z[k] for k in z.files}
    except InputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{what} {p}: contains pickled objects, which sgtheory never loads") from None
        raise InputError(f"{what} {p}: corrupt or unreadable .npz ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise InputError(f"{what} {p}: corrupt or unreadable .npz ({exc})") from None


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Read a JSON file, raising :class:`InputError` if it is missing or corrupt."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p}: no such file")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {p}: corrupt JSON ({exc})") from None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "__array__"):
        return np.asarray(o).tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
