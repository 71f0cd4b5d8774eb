"""The lock behind :func:`sgtheory.io.output_dir`: one process at a time writes into an output folder.

An exclusive, non-blocking ``flock`` on the folder itself (no lock file is written, and the lock dies with
its process). The holder's process id comes from ``/proc/locks`` where there is one. Without ``fcntl``
(not POSIX) or on a file system without ``flock``, folders are not locked. The same process may
take a folder again (a count); a child process may take a folder its parent holds, told through the
environment variable :data:`HELD_ENV` (``PID:DEV:INODE`` entries).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from sgtheory.errors import InputError

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked
    fcntl = None

HELD_ENV = "SGTHEORY_HELD_FOLDERS"
_held: dict[tuple[int, int], list] = {}  # (st_dev, st_ino) -> [fd or None, count]
_pending: dict[str, dict] = {}  # absolute path -> {"option", "key"}: folders to lock once created


def _key(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _held_by_parent(key: tuple[int, int]) -> bool:
    entry = f"{os.getppid()}:{key[0]}:{key[1]}"
    return entry in os.environ.get(HELD_ENV, "").split(";")


def _publish() -> None:
    mine = [f"{os.getpid()}:{d}:{i}" for (d, i) in _held]
    others = [e for e in os.environ.get(HELD_ENV, "").split(";") if e and not e.startswith(f"{os.getpid()}:")]
    if mine or others:
        os.environ[HELD_ENV] = ";".join(others + mine)
    else:
        os.environ.pop(HELD_ENV, None)


def holder_pid(key: tuple[int, int]) -> int | None:
    """The process holding an ``flock`` on the file ``key`` (device, inode), from ``/proc/locks``."""
    dev, ino = key
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK":
            continue
        if parts[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(parts[4])
    return None


def acquire(path: Path, option: str = "--out") -> tuple[int, int]:
    """Lock the existing folder ``path`` for this process (again, if already held). Returns its key."""
    key = _key(path)
    if key in _held:
        _held[key][1] += 1
        return key
    if _held_by_parent(key) or fcntl is None:
        _held[key] = [None, 1]
        return key
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            _held[key] = [None, 1]  # no flock on this file system: run unlocked
            return key
        pid = holder_pid(key)
        who = f" (pid {pid})" if pid else ""
        raise InputError(f"{option} {path}: in use by another sgtheory process{who}; wait for it to finish "
                         "or choose another folder") from None
    _held[key] = [fd, 1]
    _publish()
    return key


def release(key: tuple[int, int]) -> None:
    """Undo one :func:`acquire`; the last one unlocks the folder."""
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[key]
    if entry[0] is not None:
        os.close(entry[0])  # closing the descriptor drops the flock
    _publish()


def claim_if_pending(path: Path) -> Path | None:
    """Lock the folder a :func:`hold` block waits for, if ``path`` is it or lies inside it (so it exists
    now). Returns that folder if it was locked by this call, else None."""
    here = os.path.abspath(path)
    for name, entry in _pending.items():
        if entry["key"] is None and (here == name or here.startswith(name.rstrip(os.sep) + os.sep)):
            entry["key"] = acquire(Path(name), entry["option"])
            return Path(name)
    return None


@contextlib.contextmanager
def hold(path: Path, option: str = "--out") -> Iterator[None]:
    """Hold ``path`` for the block: locked now if it exists, else when :func:`claim_if_pending` sees it."""
    if Path(path).is_dir():
        key = acquire(Path(path), option)
        try:
            yield
        finally:
            release(key)
        return
    name = os.path.abspath(path)
    if name in _pending:  # an enclosing block already waits for this folder
        yield
        return
    _pending[name] = {"option": option, "key": None}
    try:
        yield
    finally:
        entry = _pending.pop(name)
        if entry["key"] is not None:
            release(entry["key"])
