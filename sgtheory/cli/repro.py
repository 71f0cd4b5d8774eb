"""``sgtheory repro``: regenerate the paper's figures and tables by running the ``analyses/`` scripts."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "repro",
        help="regenerate the paper's figures and tables (runs analyses/)",
        description="Run analyses scripts (all by default), each in its own process, writing figures to --out.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="analyses to run (default: all); see --list")
    p.add_argument("--quick", action="store_true", help="small, fast settings: minutes on a CPU")
    p.add_argument("--out", default=None,
                   help="output folder (default: figures/ of the checkout, figures/quick/ with --quick)")
    p.add_argument("--list", action="store_true", help="list the available analyses and exit")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    import contextlib

    from sgtheory.cli.main import emit
    from sgtheory.io import output_dir
    from sgtheory.repro import available_analyses, default_out, run_analyses

    if args.list:
        for name in available_analyses():
            print(name)
        return 0
    out = Path(args.out) if args.out else default_out(args.quick)
    names = list(args.names) or list(available_analyses())
    # an explicit --out is held by main(); the default folder is held here. The analyses (child processes)
    # write into it under this process's hold.
    with output_dir(out) if args.out is None else contextlib.nullcontext():
        records = run_analyses(names, quick=args.quick, out=out)
    failed = [r["name"] for r in records if r["rc"] != 0]
    summary = {"ran": len(records), "failed": failed, "out": str(out),
               "seconds": round(sum(r["seconds"] for r in records), 1),
               "analyses": {r["name"]: r["summary"] for r in records}}
    text = f"repro: {len(records) - len(failed)}/{len(records)} analyses ok in {summary['seconds']}s -> {out}"
    if failed:
        text += f"; failed: {', '.join(failed)}"
    emit(summary, args.json, text)
    return 1 if failed else 0
