"""Entry point of the ``sgtheory`` command: dispatch to the subcommand modules of this package.

Every command runs under :func:`sgtheory.cli._guard.run_guarded` (one line on stderr and exit code 2 for
bad input, 1 for an internal error, 130 for Ctrl-C) and, where it has an ``--out``, inside
:func:`sgtheory.io.output_dir` (the folder is checked before any work and locked against a concurrent
run). A subcommand module may declare ``OUTPUTS``, the names of the files it writes into ``--out``, so
that a folder standing where one of them goes is refused before any work too.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import io
import os
import pkgutil
import re
import sys

import sgtheory.cli as _cli_pkg
from sgtheory.cli._guard import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    install_process_handlers,
    quiet_interrupts,
    run_guarded,
    set_prog,
)
from sgtheory.errors import InputError

_SEED_OPTION = re.compile(r"^--(?:[a-z0-9]+-)*seed$")


def _seed_type(text: str) -> int:
    from sgtheory.validate import seed

    try:
        return seed(text, "seed")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2.

    Every integer option named ``--seed`` or ``--…-seed`` is checked as a seed (0 <= seed < 2**32, see
    :func:`sgtheory.validate.seed`) when it is parsed.
    """

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")

    def add_argument(self, *names, **kwargs):
        if kwargs.get("type") is int and any(_SEED_OPTION.match(n) for n in names):
            kwargs["type"] = _seed_type
        return super().add_argument(*names, **kwargs)


def subcommand_modules() -> list[str]:
    """Names of the subcommand modules in :mod:`sgtheory.cli` (every module but this and privates).

    Returns:
        The module names, sorted.
    """
    return sorted(
        m.name
        for m in pkgutil.iter_modules(_cli_pkg.__path__)
        if not m.name.startswith("_") and m.name != "main"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``sgtheory`` parser with every subcommand registered.

    Returns:
        The parser.
    """
    from sgtheory import __version__

    parser = Parser(prog="sgtheory", description="Theory and analysis of synthetic gradients (SG) and DNI.")
    parser.add_argument("--version", action="version", version=f"sgtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in subcommand_modules():
        importlib.import_module(f"sgtheory.cli.{name}").register(sub)
    return parser


def parse_command(argv: list[str]) -> argparse.Namespace | None:
    """Parse one ``sgtheory`` command line with the real parsers, without running it (checks README examples).

    Args:
        argv: the arguments after ``sgtheory``.

    Returns:
        The parsed arguments (``command`` names the subcommand), or None for ``--help`` / ``--version``.

    Raises:
        InputError: the line does not parse (argparse's message), names no command, or gives a value its
            settings table refuses.
    """
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):
            return None
        raise InputError(err.getvalue().strip() or f"sgtheory {' '.join(argv)}: does not parse") from None
    if not getattr(args, "func", None):
        raise InputError(f"sgtheory {' '.join(argv)}: names no command")
    table = getattr(sys.modules[f"sgtheory.cli.{args.command}"], "SETTINGS", None)
    if table is not None:  # a command declared with a settings table: check its values too, on a copy
        from sgtheory.settings import resolve

        resolve(argparse.Namespace(**vars(args)), table)
    return args


_NON_FINITE_WORD = re.compile(r"(?:(?<=[\s(=,:\[])|^)[-+]?(?:nan|inf|infinity)(?=[\s),;\]]|$)", re.IGNORECASE)


def emit(summary: dict, as_json: bool, text: str | None = None) -> None:
    """Print the one-line summary: JSON with ``--json``, else ``text`` (or compact JSON).

    NaN and infinity are never printed as numbers: in JSON they become ``null`` with a ``"non_finite"``
    list of where they were (:func:`sgtheory.io.json_text`), in ``text`` the words ``nan``/``inf`` become
    ``non-finite``; a :class:`~sgtheory.errors.NonFiniteWarning` names them either way.

    Args:
        summary: the command's JSON-able summary.
        as_json: print the JSON line even when ``text`` is given.
        text: the human-readable line.
    """
    from sgtheory.io import json_text

    line, bad = json_text(summary, what="summary")
    if as_json or text is None:
        print(line, flush=True)
    else:
        print(_NON_FINITE_WORD.sub("non-finite", text) if bad else text, flush=True)


def run_command(prog, fn, *, out=None, outputs=(), process: bool = False) -> int:
    """Run a command under the sgtheory contract; what ``sgtheory`` and ``analyses/`` scripts share.

    Args:
        prog: the name that starts every printed line (a string, or a function returning it, read when a
            line is printed).
        fn: the command: no arguments, returns its exit code (None counts as 0).
        out: its output folder, if any: held with :func:`sgtheory.io.output_dir` around ``fn`` (checked
            before ``fn`` runs, locked against a concurrent run).
        outputs: names of the files it writes into ``out`` (none may be a folder).
        process: True when the command owns the process (called from a script's ``__main__``, not from
            Python code or a test): installs the Ctrl-C and warning handlers of
            :func:`sgtheory.cli._guard.install_process_handlers`.

    Returns:
        The exit code: ``fn``'s, or 2 (bad input), 1 (internal error), 130 (interrupted).
    """
    from sgtheory.io import output_dir

    if process:
        install_process_handlers(prog if isinstance(prog, str) else prog())

    def held() -> int:
        with contextlib.nullcontext() if out is None else output_dir(out, outputs=outputs):
            return int(fn() or 0)

    return run_guarded(prog, held)


def main(argv: list[str] | None = None) -> int:
    """Run one ``sgtheory`` command.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0, 2 for bad input (usage errors raise ``SystemExit(2)`` as argparse does), 1 for an
        internal error, 130 when interrupted.
    """
    prog = ["sgtheory"]

    def command() -> int:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.error(f"choose a command: {', '.join(subcommand_modules())} (see sgtheory --help)")
        prog[0] = f"sgtheory {args.command}"
        set_prog(prog[0])
        return _run(args)

    return run_guarded(lambda: prog[0], command)


def _run(args) -> int:
    from sgtheory.hostdevices import one_device_per_core
    from sgtheory.io import output_dir
    from sgtheory.jaxcache import enable as enable_compilation_cache

    module = sys.modules.get(f"sgtheory.cli.{args.command}")
    out = getattr(args, "out", None)
    with contextlib.nullcontext() if out is None else output_dir(out, outputs=getattr(module, "OUTPUTS", ())):
        if args.command == "sweep":
            one_device_per_core()  # before JAX starts: the sweep splits its configurations over the cores
        enable_compilation_cache()
        return int(args.func(args) or 0)


FAST_EXIT_ENV = "SGTHEORY_FAST_EXIT"
_exit_code: list[int] = []


def _flush() -> None:
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _fast_exit() -> None:
    """Last atexit handler: flush and end the process without tearing down its heap (see :func:`entry`)."""
    if not _exit_code:  # main() did not return (argparse's exit): exit normally
        return
    _flush()
    os._exit(_exit_code[0])


def entry() -> None:
    """The ``sgtheory`` console script and ``python -m sgtheory``: :func:`main`, then a fast exit.

    Installs the process handlers first (Ctrl-C at any moment exits with 130 and one line). A process
    that has loaded JAX spends a noticeable time at exit tearing down its heap (module and object
    finalisation, after the atexit handlers). Every output of a command is written atomically and closed
    before :func:`main` returns, so once the other atexit handlers have run (JAX's clean-up among them)
    and stdout/stderr are flushed, the process ends with ``os._exit`` and main's exit code; an interrupted
    run skips the atexit handlers too (a half-imported library's clean-up can crash).
    ``SGTHEORY_FAST_EXIT=0`` keeps the normal exit (e.g. for tools that write their results at
    interpreter shutdown)."""
    install_process_handlers("sgtheory")
    if os.environ.get(FAST_EXIT_ENV, "1").strip().lower() not in ("0", "off", "false", "no"):
        atexit.register(_fast_exit)  # registered before JAX is imported, so it runs after JAX's handlers
    try:
        code = main()
    finally:
        quiet_interrupts()  # from here a Ctrl-C cannot raise inside clean-up code; the watchdog still ends us
    if code == EXIT_INTERRUPTED:
        _flush()
        os._exit(code)
    _exit_code.append(code)
    sys.exit(code)


__all__ = ["Parser", "build_parser", "emit", "entry", "install_process_handlers", "main", "parse_command",
           "run_command", "subcommand_modules"]


if __name__ == "__main__":
    entry()
