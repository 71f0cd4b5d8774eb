"""Atomic file output, output folders, JSON without NaN, and pickle-free array input.

Every file sgtheory writes goes through these helpers: the content is written to a hidden temporary
file in the destination folder (``.NAME.sgtheory-tmp-PID-XXXXXXXX[.suffix]``, a name no output has) and
renamed into place, so an interrupted run never leaves a half-written output. A run killed outright
(SIGKILL, power loss) can leave such a temporary file; the next run into the same folder removes it
(only files of exactly that pattern whose process is gone). A command holds its output folder with
:func:`output_dir`, so a second process writing into it at the same time is refused with one clear line.
JSON never carries NaN or infinity (:func:`json_safe`). Arrays are always read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from sgtheory import _outlock
from sgtheory.errors import InputError, NonFiniteWarning

TEMP_TAG = ".sgtheory-tmp-"
#: ``.NAME.sgtheory-tmp-PID-XXXXXXXX[.suffix]``: NAME is the destination's name (cut to 100 characters),
#: XXXXXXXX the random part of :func:`tempfile.mkstemp` (8 of ``a-z0-9_``).
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.sgtheory-tmp-(?P<pid>[0-9]+)-[a-z0-9_]{8}(?:\.[A-Za-z0-9]+)?$")
_live_temps: set[str] = set()
_new_folders: list[str] = []  # output folders created by the current output_dir blocks
_live_lock = threading.Lock()


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check it is a writable folder.

    Also removes stale temporary files of killed runs from it (see :func:`remove_stale_temporaries`)
    and, inside an :func:`output_dir` block for this folder, locks it now that it exists.

    Args:
        path: the folder.

    Returns:
        The folder as a :class:`~pathlib.Path`.

    Raises:
        InputError: naming the folder when it cannot be created or written.
    """
    p = _nonempty(path, "--out")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {p}: cannot create folder ({exc.strerror or exc})") from None
    if not p.is_dir():
        raise InputError(f"--out {p}: not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"--out {p}: folder is not writable")
    _outlock.claim_if_pending(p)
    remove_stale_temporaries(p)
    return p


def check_output_path(path: str | os.PathLike, *, outputs: Iterable[str] = (), option: str = "--out") -> Path:
    """Check, without creating anything, that ``path`` can be an output folder that receives ``outputs``.

    Args:
        path: the folder (need not exist yet).
        outputs: names of the files the command will write into it; none may be an existing folder.
        option: the option name used in messages.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: an empty path, a path through or onto a file, an unwritable folder or ancestor, or an
            output name taken by a folder.
    """
    p = _nonempty(path, option)
    try:
        exists = p.exists()
        if exists:
            if not p.is_dir():
                raise InputError(f"{option} {p}: exists and is not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise InputError(f"{option} {p}: folder is not writable")
            for name in outputs:
                target = p / name
                if target.is_dir() or (target.exists() and not target.is_file()):
                    raise InputError(f"{option} {p}: {name} exists and is not a file (this command writes that file)")
            return p
        ancestor = p.absolute().parent
        while not ancestor.exists() and not ancestor.is_symlink():
            ancestor = ancestor.parent
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{option} {p}: unusable path ({exc.strerror or exc})") from None
    if not ancestor.is_dir():
        raise InputError(f"{option} {p}: cannot create it ({ancestor} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{option} {p}: cannot create it ({ancestor} is not writable)")
    return p


@contextlib.contextmanager
def output_dir(path: str | os.PathLike, *, outputs: Iterable[str] = (), option: str = "--out") -> Iterator[Path]:
    """Hold ``path`` as this process's output folder for the block (a context manager).

    On entry the path is checked (:func:`check_output_path`; nothing is created, so bad input leaves no
    trace). The folder is locked with ``flock`` at once if it exists, else as soon as
    :func:`ensure_writable_dir` creates it inside the block; a second process holding it (a concurrent run
    into the same folder) makes that step raise ``InputError("--out X: in use by another sgtheory process
    (pid N)")``. The lock dies with its process; the same process may re-enter it, and child processes
    started inside the block (``sgtheory repro``'s analyses) may hold it again. A folder created inside
    the block is removed again if the block fails while it is still empty.

    Args:
        path: the output folder.
        outputs: names of the files the command writes there (checked not to be folders).
        option: the option name used in messages.

    Yields:
        ``path`` as a :class:`~pathlib.Path`.
    """
    p = check_output_path(path, outputs=outputs, option=option)
    existed = p.is_dir()
    with _outlock.hold(p, option=option):
        if existed:
            remove_stale_temporaries(p)
        else:
            with _live_lock:
                _new_folders.append(str(p))
        try:
            yield p
        except BaseException:
            if not existed:  # a run that failed leaves no empty folder of its own behind
                _remove_empty_folders(p)
            raise
        finally:
            if not existed:
                with _live_lock, contextlib.suppress(ValueError):
                    _new_folders.remove(str(p))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    Args:
        path: the destination file.
        suffix: appended to the temporary name (default: ``path``'s own suffix), for writers that infer the
            format from it (matplotlib from ``.png``, numpy's ``savez`` adds ``.npz`` when missing).

    Yields:
        The temporary path, ``.NAME.sgtheory-tmp-PID-XXXXXXXX[suffix]`` in ``path``'s folder. On any
        exception (Ctrl-C included) it is removed and nothing appears at ``path``.

    Raises:
        InputError: when ``path`` is an existing folder (or another non-file).
    """
    dest = Path(path)
    if dest.is_dir() or (dest.exists() and not dest.is_file()):
        raise InputError(f"cannot write {dest}: it exists and is not a file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest.name[:100]}{TEMP_TAG}{os.getpid()}-"
    with _live_lock:  # registered before it exists, so an interrupt right after mkstemp still finds it
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix or dest.suffix, dir=dest.parent)
        _live_temps.add(tmp)
    tmp_path = Path(tmp)
    try:
        os.close(fd)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    finally:
        with _live_lock:
            _live_temps.discard(tmp)


def remove_unfinished() -> None:
    """Remove this process's open temporary files, and the output folders it created that are still empty
    (for a process about to end abruptly: an interrupt, where ``with`` blocks will not unwind)."""
    with _live_lock:
        live, folders = list(_live_temps), list(_new_folders)
        _live_temps.clear()
    for tmp in live:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    for folder in reversed(folders):
        _remove_empty_folders(folder)


def _remove_empty_folders(top: str | os.PathLike) -> None:
    """Remove ``top`` and the folders under it that hold no file (a failed run's ``out/data/``)."""
    for root, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(root)  # only succeeds while empty


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files left in ``folder`` by sgtheory processes that no longer run.

    Only regular files named exactly like :func:`atomic_path`'s temporaries (:data:`TEMP_PATTERN`) whose
    process id is not alive are removed; everything else, a live process's temporaries included, stays.

    Args:
        folder: the folder to clean (a missing or unreadable folder is left alone).

    Returns:
        The removed paths.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = TEMP_PATTERN.match(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False) or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's live process (or an impossible id: then not ours to judge)
    return True


def _nonempty(path: str | os.PathLike, option: str) -> Path:
    text = os.fspath(path)
    if not str(text).strip():
        raise InputError(f"{option}: empty path")
    if "\0" in str(text):
        raise InputError(f"{option} {text!r}: contains a NUL character")
    return Path(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(obj: Any) -> tuple[Any, list[str]]:
    """``obj`` as plain JSON values (numpy and JAX scalars/arrays, paths), non-finite floats as None.

    Args:
        obj: nested dicts / lists / tuples of numbers, strings, booleans, None, arrays and paths.

    Returns:
        ``(clean, paths)``: the converted object, and the dotted paths (``"metrics.loss"``, ``"rho[3]"``) of
        every NaN or infinity replaced by None, so a caller can report them (e.g. a ``status`` field).

    Raises:
        TypeError: for a value JSON cannot hold (naming its path).
    """
    bad: list[str] = []
    return _safe(obj, "", bad), bad


def _safe(o: Any, where: str, bad: list[str]) -> Any:
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, (int, np.integer, np.bool_)):
        return o.item() if isinstance(o, np.generic) else o
    if isinstance(o, (float, np.floating)):
        v = float(o)
        if math.isfinite(v):
            return v
        bad.append(where or "(value)")
        return None
    if isinstance(o, Mapping):
        return {str(k): _safe(v, f"{where}.{k}" if where else str(k), bad) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_safe(v, f"{where}[{i}]", bad) for i, v in enumerate(o)]
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, np.ndarray) or hasattr(o, "__array__"):
        a = np.asarray(o)
        if a.dtype.kind in "biuf":
            return _safe(a.tolist(), where, bad)
    raise TypeError(f"{where or 'value'}: {type(o).__name__} cannot be written as JSON")


def json_text(obj: Any, *, indent: int | None = None, what: str = "summary") -> tuple[str, list[str]]:
    """Strict JSON text of ``obj``: NaN and infinity become ``null``, a ``"non_finite"`` list of their paths
    is added to a top-level dict (unless it has that key), and a :class:`NonFiniteWarning` names them.

    Args:
        obj: see :func:`json_safe`.
        indent: ``json.dumps``'s indent (None: one line).
        what: names the output in the warning.

    Returns:
        ``(text, paths)``: the JSON text (``allow_nan=False``) and the paths of the non-finite values.
    """
    clean, bad = json_safe(obj)
    if bad:
        if isinstance(clean, dict) and "non_finite" not in clean:
            clean["non_finite"] = bad
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        warnings.warn(f"{what}: non-finite values written as null: {shown}", NonFiniteWarning, stacklevel=3)
    return json.dumps(clean, indent=indent, allow_nan=False), bad


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    """Atomically write ``obj`` as strict JSON (numpy scalars and arrays converted; NaN/inf as null, see
    :func:`json_text`).

    Args:
        path: the destination file.
        obj: see :func:`json_safe`.
        indent: ``json.dumps``'s indent.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    text, _ = json_text(obj, indent=indent, what=str(path))
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
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
