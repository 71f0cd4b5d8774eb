"""``sgtheory methods``: the credit-assignment methods and the unified-view table (claim C10)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list the credit-assignment methods; --table prints the unified-view table",
        description="List the credit-assignment methods of `sgtheory train`. --table prints the unified view "
                    "(Czarnecki et al. 2017): each method's signal, what it reads, and its locking, generated "
                    "from the methods' own declarations.",
    )
    p.add_argument("--table", action="store_true", help="print the unified-view table")
    p.add_argument("--format", default="markdown", choices=("markdown", "text"), help="table format (default markdown)")
    p.add_argument("--json", action="store_true", help="print every method's declared properties as one JSON line")
    p.add_argument("--recurrent", action="store_true", help="the recurrent methods of `sgtheory rnn` instead")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import asdict

    from sgtheory.cli.main import emit
    from sgtheory.nets import methods

    if args.recurrent:  # the recurrent family (sgtheory.rnn.methods), same three outputs
        from sgtheory.rnn import methods as rm
        names = "\n".join(f"{n:<8} {rm.get(n).summary}" for n in rm.METHODS)
        lines = rm.unified_table(args.format) if args.table else names
        emit({n: rm.describe(n) for n in rm.METHODS}, True) if args.json else print(lines)
        return 0
    if args.json:
        emit({name: {"summary": methods.get(name).summary, **asdict(methods.get(name).properties)}
              for name in methods.METHODS}, True)
    elif args.table:
        print(methods.unified_table(args.format))
    else:
        for name in methods.METHODS:
            print(f"{name:<10} {methods.get(name).summary}")
    return 0
