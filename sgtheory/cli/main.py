"""Entry point of the ``sgtheory`` command: dispatch to the subcommand modules of this package."""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import pkgutil
import sys

import sgtheory.cli as _cli_pkg
from sgtheory.errors import InputError
from sgtheory.hostdevices import one_device_per_core
from sgtheory.jaxcache import enable as enable_compilation_cache

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def subcommand_modules() -> list[str]:
    """Names of the subcommand modules in :mod:`sgtheory.cli` (every module but this and privates)."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(_cli_pkg.__path__)
        if not m.name.startswith("_") and m.name != "main"
    )


def build_parser() -> argparse.ArgumentParser:
    from sgtheory import __version__

    parser = Parser(prog="sgtheory", description="Theory and analysis of synthetic gradients (SG) and DNI.")
    parser.add_argument("--version", action="version", version=f"sgtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in subcommand_modules():
        importlib.import_module(f"sgtheory.cli.{name}").register(sub)
    return parser


def emit(summary: dict, as_json: bool, text: str | None = None) -> None:
    """Print the one-line summary: JSON with ``--json``, else ``text`` (or compact JSON)."""
    if as_json or text is None:
        print(json.dumps(summary, default=_jsonable), flush=True)
    else:
        print(text, flush=True)


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    if args.command == "sweep":
        one_device_per_core()  # before JAX starts: the sweep splits its configurations over the cores
    enable_compilation_cache()
    try:
        rc = args.func(args)
    except InputError as exc:
        print(f"sgtheory {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"sgtheory {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


FAST_EXIT_ENV = "SGTHEORY_FAST_EXIT"
_exit_code: list[int] = []


def _fast_exit() -> None:
    """Last atexit handler: flush and end the process without tearing down its heap (see :func:`entry`)."""
    if not _exit_code:  # main() did not return (an uncaught exception, argparse's exit): exit normally
        return
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_exit_code[0])


def entry() -> None:
    """The ``sgtheory`` console script and ``python -m sgtheory``: :func:`main`, then a fast exit.

    A process that has loaded JAX spends about 0.2 s at exit tearing down its heap (module and object
    finalisation, after the atexit handlers: a fifth of a 128×128 sweep's second on 2 cores). Every
    output of a command is written atomically and closed before :func:`main` returns, so once the other
    atexit handlers have run (JAX's clean-up among them) and stdout/stderr are flushed, the process ends
    with ``os._exit`` and main's exit code. ``SGTHEORY_FAST_EXIT=0`` keeps the normal exit (e.g. for tools
    that write their results at interpreter shutdown)."""
    if os.environ.get(FAST_EXIT_ENV, "1").strip().lower() not in ("0", "off", "false", "no"):
        atexit.register(_fast_exit)  # registered before JAX is imported, so it runs after JAX's handlers
    code = main()
    _exit_code.append(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
