"""The process contract of every sgtheory command: one clear line on stderr, a meaningful exit code.

- :func:`run_guarded` runs a command and turns whatever it raises into one line on stderr:
  :class:`~sgtheory.errors.InputError`, OS errors on the user's paths and "too large" failures
  (``MemoryError``, XLA's ``RESOURCE_EXHAUSTED``) exit with :data:`EXIT_BAD_INPUT` (2), anything else
  with :data:`EXIT_INTERNAL` (1), Ctrl-C with :data:`EXIT_INTERRUPTED` (130). ``SGTHEORY_TRACEBACK=1``
  prints the full traceback first.
- :func:`install_process_handlers` (only in a process of its own: the ``sgtheory`` command, an analysis
  script run from the shell) makes Ctrl-C exit promptly at any moment. The Python-level handler raises
  ``KeyboardInterrupt`` once, so ``with`` blocks unwind (temporary files go, child processes are killed);
  a watchdog thread, woken by the signal itself through :func:`signal.set_wakeup_fd`, ends the process
  if the main thread has not done so within :data:`GRACE_S` (it may be inside a long C call such as an
  XLA compilation). Where an exception cannot travel safely the process ends at once, with the same line:
  inside an import (an exception raised into an extension module's initialisation can crash the
  interpreter) and inside a finaliser or garbage-collector callback (which would swallow it).
  Warnings are printed as one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable

from sgtheory.errors import InputError

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
TRACEBACK_ENV = "SGTHEORY_TRACEBACK"
#: Seconds the main thread gets to unwind after Ctrl-C before the watchdog ends the process. Unwinding
#: (removing temporary files, killing the plot child) is quick; a main thread still busy after this is
#: stuck in C code that does not return to the interpreter.
GRACE_S = 0.5
_MAX_MESSAGE = 400

_lock = threading.Lock()
_state = {"signalled": False, "reported": False, "prog": "sgtheory", "installed": False, "quiet": False}


def traceback_requested() -> bool:
    """Whether ``$SGTHEORY_TRACEBACK`` asks for full tracebacks."""
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "off", "false", "no")


def _one_line(text: str, *, first_only: bool) -> str:
    lines = [s.strip() for s in str(text).strip().splitlines() if s.strip()]
    line = (lines[0] if first_only else " ".join(lines)) if lines else ""
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


def _too_large(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    module = type(exc).__module__ or ""
    text = str(exc)
    return module.split(".")[0] in ("jax", "jaxlib") and ("RESOURCE_EXHAUSTED" in text or "Out of memory" in text)


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message for an exception raised by a command."""
    hint = f" (set {TRACEBACK_ENV}=1 for the full traceback)"
    if isinstance(exc, InputError):
        return EXIT_BAD_INPUT, _one_line(exc, first_only=False)
    if _too_large(exc):
        detail = _one_line(exc, first_only=True) or "out of memory"
        return EXIT_BAD_INPUT, f"too large for this machine's memory: {detail}; use smaller sizes{hint}"
    if isinstance(exc, OSError):
        what = exc.strerror or _one_line(exc, first_only=True) or type(exc).__name__
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_BAD_INPUT, f"{where}{what}{hint}"
    detail = _one_line(exc, first_only=True)
    return EXIT_INTERNAL, f"internal error: {type(exc).__name__}{': ' + detail if detail else ''}{hint}"


def _print_traceback() -> None:
    import traceback  # only here: it imports the tokenizer, and start-up should stay short

    traceback.print_exc()


def _remove_unfinished() -> None:
    outdir = sys.modules.get("sgtheory._outdir")  # never imported here: this may run in the watchdog thread
    if outdir is not None:
        outdir.remove_unfinished()


def _print(prog: str, line: str) -> None:
    try:
        print(f"{prog}: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nothing else to do
        pass


def _report_interrupted(prog: str) -> None:
    """Print ``prog: interrupted``; in a process with the handlers installed, only the first caller does
    (the main thread and the watchdog may both get there)."""
    with _lock:
        if _state["installed"] and _state["reported"]:
            return
        _state["reported"] = True
    _print(prog, "interrupted")


def run_guarded(prog: str | Callable[[], str], fn: Callable[[], int | None]) -> int:
    """Run ``fn()`` and return its exit code; anything it raises becomes one line on stderr and a code.

    Args:
        prog: the name that starts the line, e.g. ``"sgtheory sweep"`` or ``"analyses/c4_theorem1.py"`` (or a
            function returning it, called when the line is printed).
        fn: the command, returning its exit code (None counts as 0).

    Returns:
        ``fn``'s exit code, or 2 (bad input, OS error on a path, too large), 1 (internal error) or
        130 (interrupted). ``SystemExit`` (argparse's usage errors) passes through unchanged.
    """
    try:
        return int(fn() or 0)
    except SystemExit:
        raise
    except BaseException as exc:
        _remove_unfinished()  # a KeyboardInterrupt can land between creating a temp file and its try
        prog = prog() if callable(prog) else prog
        if isinstance(exc, KeyboardInterrupt) or _state["signalled"]:
            if traceback_requested():
                _print_traceback()
            _report_interrupted(prog)
            return EXIT_INTERRUPTED
        code, line = classify(exc)
        if traceback_requested():
            _print_traceback()
        _print(prog, f"error: {line}")
        return code


def set_prog(prog: str) -> None:
    """Name the command in the lines printed by the watchdog and the warning formatter."""
    _state["prog"] = prog


def install_process_handlers(prog: str = "sgtheory") -> bool:
    """Ctrl-C handling (see the module docstring) and one-line warnings, for a process of our own.

    Call as early as possible, from the main thread. Idempotent. Returns False (and changes nothing)
    when not on the main thread.

    Args:
        prog: the name that starts the printed lines (:func:`set_prog` changes it later).

    Returns:
        Whether the handlers are installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    set_prog(prog)
    if _state["installed"]:
        return True
    try:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (AttributeError, OSError, ValueError):  # no pipe wake-up on this platform: no watchdog
        pass
    else:
        threading.Thread(target=_watchdog, args=(read_fd,), name="sgtheory-interrupt", daemon=True).start()
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGINT, _on_sigint)
    warnings.showwarning = _show_warning
    _state["installed"] = True
    return True


def quiet_interrupts() -> None:
    """From now on Ctrl-C raises nothing (the process is ending; clean-up code must not be interrupted);
    the watchdog still ends the process with 130 if it has not ended within :data:`GRACE_S`."""
    _state["quiet"] = True


def _on_sigint(signum, frame):
    if _state["signalled"] or _state["quiet"]:
        _state["signalled"] = True
        return  # a second Ctrl-C must not interrupt the clean-up of the first; the watchdog ends the process
    _state["signalled"] = True
    if _importing(frame):
        _exit_interrupted()  # an exception raised into an extension module's initialisation can crash it
    raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """Our KeyboardInterrupt raised inside a finaliser or a garbage-collector callback is swallowed there
    ("Exception ignored in ..."): end the process as the interrupt asked, with one line instead."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        _exit_interrupted()
    sys.__unraisablehook__(unraisable)


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _exit_interrupted() -> None:
    _remove_unfinished()
    _report_interrupted(_state["prog"])
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(EXIT_INTERRUPTED)


def _watchdog(read_fd: int) -> None:
    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:
            continue
        if not data:
            return
        if signal.SIGINT in data:
            break
    threading.Event().wait(GRACE_S)
    _exit_interrupted()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = _one_line(message, first_only=False)
    try:
        print(f"{_state['prog']}: warning: {text}", file=file or sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "GRACE_S", "TRACEBACK_ENV", "classify",
           "install_process_handlers", "quiet_interrupts", "run_guarded", "set_prog", "traceback_requested"]
