"""Atomic file output, output folders, JSON without NaN, and pickle-free array input.

Every file sgtheory writes goes through these helpers: the content is written to a hidden temporary
file in the destination folder (``.NAME.sgtheory-tmp-PID-XXXXXXXX[.suffix]``, a name no output has) and
renamed into place, so an interrupted run never leaves a half-written output. A run killed outright
(SIGKILL, power loss) can leave such a temporary file; the next run into the same folder removes it
(only files of exactly that pattern whose process is gone). A command holds its output folder with
:func:`output_dir`, so a second process writing into it at the same time is refused with one clear line
(the folder functions live in :mod:`sgtheory._outdir` and are exported here). JSON never carries NaN or
infinity (:func:`json_safe`). Arrays are always read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sgtheory import _outdir
from sgtheory._outdir import (
    TEMP_PATTERN,
    TEMP_TAG,
    check_output_path,
    ensure_writable_dir,
    output_dir,
    remove_stale_temporaries,
    remove_unfinished,
)
from sgtheory.errors import InputError, NonFiniteWarning

__all__ = ["TEMP_PATTERN", "TEMP_TAG", "atomic_path", "check_output_path", "checkpoint_files", "ensure_writable_dir",
           "flatten_arrays", "json_safe", "json_text", "load_npz", "output_dir", "read_json",
           "remove_stale_temporaries", "remove_unfinished", "savefig", "savez", "unflatten_arrays", "write_json",
           "write_text"]


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
    _outdir.claim(dest.parent)
    prefix = f".{dest.name[:100]}{TEMP_TAG}{os.getpid()}-"
    with _outdir.live_lock:  # registered before it exists, so an interrupt right after mkstemp still finds it
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix or dest.suffix, dir=dest.parent)
        _outdir.live_temps.add(tmp)
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
        with _outdir.live_lock:
            _outdir.live_temps.discard(tmp)


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
    """Atomically write a text file.

    Args:
        path: the destination.
        text: its content.

    Returns:
        The destination's path.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def savez(path: str | os.PathLike, arrays: Mapping[str, Any], *, compressed: bool = True) -> Path:
    """Atomically write a ``.npz`` of plain numeric arrays (no object arrays: nothing needs pickle).

    Args:
        path: the destination.
        arrays: name → array.
        compressed: write a compressed archive.

    Returns:
        The destination's path.

    Raises:
        TypeError: an object array (a programming error, not user input).
    """
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
    """Atomically save a matplotlib figure; the format comes from ``path``'s suffix.

    Args:
        fig: the figure.
        path: the destination.
        **kwargs: for ``fig.savefig`` (defaults ``dpi=150``, ``bbox_inches="tight"``).

    Returns:
        The destination's path.
    """
    dest = Path(path)
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(dest, suffix=dest.suffix) as tmp:
        fig.savefig(tmp, format=dest.suffix.lstrip(".") or "png", **kwargs)
    return dest


def load_npz(path: str | os.PathLike, *, what: str = "file") -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` into memory, never unpickling.

    Args:
        path: the file.
        what: what the file is, for the messages.

    Returns:
        name → array, in the stored order.

    Raises:
        InputError: a missing, corrupt or pickled file (one clear message).
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
    """Read a JSON file.

    Args:
        path: the file.
        what: what the file is, for the messages.

    Returns:
        The parsed JSON value.

    Raises:
        InputError: a missing or corrupt file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p}: no such file")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {p}: corrupt JSON ({exc})") from None


def flatten_arrays(tree, prefix: str, out: dict) -> dict:
    """Flatten a pytree of dicts, lists and tuples into ``out`` under ``prefix/key/index`` names (the
    ``.npz`` layout of every checkpoint: plain arrays, readable without pickle).

    Args:
        tree: nested dicts / lists / tuples with array leaves.
        prefix: the name the keys start with.
        out: the dict to add ``name -> numpy array`` entries to.

    Returns:
        ``out``.
    """
    if isinstance(tree, dict):
        for k, v in tree.items():
            flatten_arrays(v, f"{prefix}/{k}", out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            flatten_arrays(v, f"{prefix}/{i}", out)
    else:
        out[prefix] = np.asarray(tree)
    return out


def unflatten_arrays(flat: Mapping[str, Any], prefix: str):
    """Inverse of :func:`flatten_arrays` for the keys under ``prefix``.

    Args:
        flat: ``name -> array``, e.g. from :func:`load_npz`.
        prefix: the name the wanted keys start with.

    Returns:
        Nested dicts; a level whose keys are exactly ``0..n-1`` becomes a list; ``{}`` if no key matches.
    """
    root: dict = {}
    for key, value in flat.items():
        if not key.startswith(prefix + "/"):
            continue
        node, parts = root, key[len(prefix) + 1:].split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    def fix(node):
        if not isinstance(node, dict):
            return node
        node = {k: fix(v) for k, v in node.items()}
        if node and set(node) == {str(i) for i in range(len(node))}:
            return [node[str(i)] for i in range(len(node))]
        return node

    return fix(root)


def checkpoint_files(path: str | os.PathLike) -> tuple[Path, Path]:
    """The two files of a checkpoint (``checkpoint.npz``, ``checkpoint.json``) named by its folder or by either file.

    Args:
        path: the checkpoint's folder, or its ``.npz`` or ``.json`` file.

    Returns:
        ``(npz_path, json_path)`` (not checked for existence).

    Raises:
        InputError: for a path that is neither a folder nor a ``.npz``/``.json`` file.
    """
    p = Path(path)
    if p.is_dir():
        return p / "checkpoint.npz", p / "checkpoint.json"
    if p.suffix in (".npz", ".json"):
        return p.with_suffix(".npz"), p.with_suffix(".json")
    raise InputError(f"checkpoint {p}: not a checkpoint folder or .npz/.json file")
