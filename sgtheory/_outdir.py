"""Output folders: checked before any work, held by one process at a time, cleaned of killed runs' files.

:func:`output_dir` is what every command wraps its writing in; :func:`ensure_writable_dir` creates the
folder (and takes the lock that :func:`output_dir` is waiting for). The atomic writers of
:mod:`sgtheory.io` write hidden temporary files named by :data:`TEMP_PATTERN`; a run killed outright
(SIGKILL, power loss) can leave one, and the next run into the same folder removes it. Re-exported by
:mod:`sgtheory.io`, the public place for all of these.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from sgtheory import _outlock
from sgtheory.errors import InputError

TEMP_TAG = ".sgtheory-tmp-"
#: ``.NAME.sgtheory-tmp-PID-XXXXXXXX[.suffix]``: NAME is the destination's name (cut to 100 characters),
#: XXXXXXXX the random part of :func:`tempfile.mkstemp` (8 of ``a-z0-9_``).
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.sgtheory-tmp-(?P<pid>[0-9]+)-[a-z0-9_]{8}(?:\.[A-Za-z0-9]+)?$")
live_temps: set[str] = set()  # temporary files of this process's open atomic writes
live_lock = threading.Lock()
_new_folders: list[str] = []  # absolute paths of folders created (and locked) by open output_dir blocks


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
    claim(p)
    remove_stale_temporaries(p)
    return p


def claim(path: str | os.PathLike) -> None:
    """Lock the folder an :func:`output_dir` block waits for, once ``path`` (it, or a path inside it) exists.

    Called by :func:`ensure_writable_dir` and by the atomic writers, so a folder is locked as soon as
    anything is created in it; the folder is then this run's to clean up should it fail.

    Args:
        path: an existing folder.
    """
    folder = _outlock.claim_if_pending(Path(path))
    if folder is not None:
        with live_lock:
            _new_folders.append(str(folder))


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
    started inside the block (``sgtheory repro``'s analyses) may hold it again. A folder this block
    created (and locked) is removed again if the block fails while it holds no file.

    Args:
        path: the output folder.
        outputs: names of the files the command writes there (checked not to be folders).
        option: the option name used in messages.

    Yields:
        ``path`` as a :class:`~pathlib.Path`.
    """
    p = check_output_path(path, outputs=outputs, option=option)
    name = os.path.abspath(p)
    with _outlock.hold(p, option=option):
        if p.is_dir():
            remove_stale_temporaries(p)
        try:
            yield p
        except BaseException:
            if name in _new_folders:  # a failed run leaves no empty folder of its own behind (never another's)
                _remove_empty_folders(p)
            raise
        finally:
            with live_lock:
                while name in _new_folders:
                    _new_folders.remove(name)


def remove_unfinished() -> None:
    """Remove this process's open temporary files, and the output folders it created that are still empty
    (for a process about to end abruptly: an interrupt, where ``with`` blocks will not unwind)."""
    with live_lock:
        live, folders = list(live_temps), list(_new_folders)
        live_temps.clear()
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

    Only regular files named exactly like :func:`sgtheory.io.atomic_path`'s temporaries (:data:`TEMP_PATTERN`) whose
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
