"""The analysis-script framework behind ``analyses/`` and ``sgtheory repro``.

Each script in ``analyses/`` reproduces one figure or table of the paper. It declares its options once,
as a table of :class:`sgtheory.settings.Setting` rows (type, full value, quick value, bounds), and calls
:func:`analysis_main` with them and two functions:

- ``compute(args) -> (arrays, meta)``: the expensive part; ``args`` holds every setting resolved for the
  mode (``--quick`` or full) and checked; ``arrays`` (name -> numeric array) is
  written to ``OUT/data/NAME.npz`` and ``meta`` (JSON-able dict) to ``OUT/data/NAME.json``;
- ``plot(arrays, meta, out) -> summary``: draws figures into ``OUT`` from the saved data and
  returns a small dict of headline numbers, printed as one JSON line.

``--replot`` redraws from the saved data without recomputing. All files are written atomically. The
resolved settings are recorded in the saved metadata (``meta["settings"]``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sgtheory.errors import InputError
from sgtheory.io import ensure_writable_dir, load_npz, read_json, savez, write_json
from sgtheory.jaxcache import enable as enable_compilation_cache
from sgtheory.settings import SEED, Setting, add_settings, resolve

REPO_ROOT = Path(__file__).resolve().parents[1]


def analyses_dir() -> Path:
    """The ``analyses/`` folder of the source checkout (``$SGTHEORY_ANALYSES`` overrides).

    Returns:
        The folder's path (not checked to exist; :func:`available_analyses` does).
    """
    env = os.environ.get("SGTHEORY_ANALYSES")
    return Path(env) if env else REPO_ROOT / "analyses"


def default_out(quick: bool = False) -> Path:
    """Where figures go by default: ``figures/`` of the checkout, ``figures/quick/`` in quick mode.

    Quick-mode outputs are kept apart so they never overwrite the committed full-mode figures.

    Args:
        quick: the quick mode's folder.

    Returns:
        The folder's path.
    """
    return REPO_ROOT / "figures" / "quick" if quick else REPO_ROOT / "figures"


def available_analyses(folder: Path | None = None) -> dict[str, Path]:
    """Name -> script path of every analysis (``analyses/*.py`` not starting with ``_``).

    Args:
        folder: where to look (default :func:`analyses_dir`).

    Returns:
        ``{name: path}``, sorted by file name.

    Raises:
        InputError: the folder does not exist.
    """
    folder = folder or analyses_dir()
    if not folder.is_dir():
        raise InputError(f"analyses folder {folder} not found (run from a source checkout, or set SGTHEORY_ANALYSES)")
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")}


def guard_script(module_name: str, file: str) -> None:
    """Give an analysis script run from the shell the command-line contract from its first line.

    Call it at the top of the script, before heavy imports: ``guard_script(__name__, __file__)``. When the
    script is the main program, Ctrl-C at any later moment (JAX's import and compilation included) exits
    promptly with code 130 and one line (:func:`sgtheory.cli.main.install_process_handlers`); when it is
    imported (tests, ``sgtheory repro`` in-process) nothing happens.

    Args:
        module_name: the script's ``__name__``.
        file: the script's ``__file__`` (its name goes into the messages).
    """
    if module_name == "__main__":
        from sgtheory.cli.main import install_process_handlers

        install_process_handlers(f"analyses/{Path(file).name}")


def analysis_main(
    name: str,
    compute: Callable[[argparse.Namespace], tuple[dict, dict]],
    plot: Callable[[dict, dict, Path], dict],
    argv: list[str] | None = None,
    *,
    settings: Iterable[Setting] = (),
    description: str | None = None,
) -> int:
    """Parse the standard options and ``settings``, compute (or reload) the data, plot, print a summary.

    Runs under the command-line contract of :func:`sgtheory.cli.main.run_command`: bad input is one line
    and exit code 2, an internal error one line and exit code 1, Ctrl-C exit code 130; the output folder is
    checked before any work and held against a concurrent run into it.

    Args:
        name: the analysis' name (its data files are ``OUT/data/NAME.{npz,json}``).
        compute: ``args -> (arrays, meta)``.
        plot: ``(arrays, meta, out) -> summary``.
        argv: the arguments (default ``sys.argv[1:]``, and then the script owns the process).
        settings: the analysis' option table (``--seed`` is added to it).
        description: the ``--help`` text.

    Returns:
        the exit code.
    """
    from sgtheory.cli.main import Parser, emit, run_command

    prog = f"analyses/{name}.py"
    table = (SEED, *settings)
    parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small, fast settings (CPU, minutes)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: figures/, or figures/quick/ with --quick)")
    parser.add_argument("--replot", action="store_true", help="redraw figures from OUT/data without recomputing")
    add_settings(parser, table)
    args = parser.parse_args(argv)
    out_arg = args.out if args.out is not None else default_out(args.quick)

    def body() -> int:
        resolve(args, table, quick=args.quick)
        enable_compilation_cache()
        out = ensure_writable_dir(out_arg)
        data_dir = ensure_writable_dir(out / "data")
        if args.replot:
            if not (data_dir / f"{name}.npz").exists():
                raise InputError(f"--replot: no saved data in {data_dir}; run the analysis without --replot first, "
                                 f"with the same --out{' and --quick' if args.quick else ''}")
            arrays = load_npz(data_dir / f"{name}.npz", what="saved data")
            meta = read_json(data_dir / f"{name}.json", what="saved data")
        else:
            t0 = time.perf_counter()
            arrays, meta = compute(args)
            meta = {"analysis": name, "quick": bool(args.quick), "seed": args.seed,
                    "seconds": round(time.perf_counter() - t0, 2),
                    "settings": {s.name: getattr(args, s.name) for s in table}, **meta}
            savez(data_dir / f"{name}.npz", arrays)
            write_json(data_dir / f"{name}.json", meta)
        summary = plot(arrays, meta, out) or {}
        emit({"analysis": name, **summary}, True)
        return 0

    return run_command(prog, body, out=out_arg, process=argv is None)


def run_analyses(names: list[str], *, quick: bool, out: Path, progress: bool = True) -> list[dict]:
    """Run analysis scripts one after the other, each in its own process (isolated JAX config).

    Args:
        names: analyses to run, by name (empty: all of them).
        quick: pass ``--quick`` to each.
        out: the output folder every script writes into.
        progress: one line per analysis on stderr.

    Returns:
        One record per analysis: ``name``, return code ``rc``, ``seconds``, its ``summary`` line (parsed
        JSON, or None) and, when it failed, the last lines of its stderr (``stderr_tail``).

    Raises:
        InputError: an unknown analysis name or an unwritable ``out``.
    """
    scripts = available_analyses()
    names = list(names) or list(scripts)
    unknown = [n for n in names if n not in scripts]
    if unknown:
        raise InputError(f"unknown analysis {', '.join(unknown)}; choose from {', '.join(scripts)}")
    ensure_writable_dir(out)
    records = []
    for i, name in enumerate(names):
        cmd = [sys.executable, str(scripts[name]), "--out", str(out)] + (["--quick"] if quick else [])
        if progress:
            print(f"[{i + 1}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        summary = None
        for line in reversed(proc.stdout.strip().splitlines()):
            try:
                summary = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
        rec = {"name": name, "rc": proc.returncode, "seconds": round(secs, 1), "summary": summary}
        if proc.returncode != 0:
            rec["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
            if progress:
                print(f"    FAILED (rc={proc.returncode}):\n      " + "\n      ".join(rec["stderr_tail"]),
                      file=sys.stderr)
        elif progress:
            print(f"    ok in {secs:.1f}s", file=sys.stderr)
        records.append(rec)
    return records
