"""Recurrent training throughput: sequences per second of ``tbptt``, ``dni`` and ``dni-aux`` at the same T.

The issue's target: ``dni`` costs at most 1.3× ``tbptt`` per sequence at the same T (a GPU figure when a
GPU is present, CPU otherwise). Every run goes through :func:`sgtheory.rnn.train` on the char-LM task
(fixed-length sequences, so every method does the same work per batch; compilation and evaluation are
not counted). Methods run in interleaved rounds so a load change on a shared machine hits all alike;
the best round per method is the headline. ``dni`` uses the one-pass target (γ = s); ``dni-γ1`` (target
discount 1, a second pull of each window's VJP) is measured too. Every backend present is measured.

    python benchmarks/rnn_throughput.py            # LSTM 128, batch 32, 120 characters, T = 5; 3 rounds of 60 batches
    python benchmarks/rnn_throughput.py --quick    # 2 rounds of 15 batches -> results/rnn_throughput_quick.json

Prints a table and writes ``benchmarks/results/rnn_throughput.json``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from sgtheory.machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "rnn_throughput.json"
VARIANTS = {"tbptt": ("tbptt", {}), "dni": ("dni", {}), "dni-γ1": ("dni", {"target_discount": 1.0}),
            "dni-aux": ("dni-aux", {})}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 15 batches")
    p.add_argument("--steps", type=int, default=None, help="batches per round (default 60; quick 15)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 2)")
    p.add_argument("--truncation", type=int, default=5)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=120)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default=None, help="JSON results file (default results/rnn_throughput[_quick].json)")
    args = p.parse_args(argv)
    args.out = args.out or str(RESULTS.with_name("rnn_throughput_quick.json") if args.quick else RESULTS)
    args.steps = args.steps or (15 if args.quick else 60)
    args.rounds = args.rounds or (2 if args.quick else 3)
    return args



def main(argv=None) -> int:
    args = parse(argv)
    import jax

    from sgtheory.data.text import load_corpus
    from sgtheory.io import write_json
    from sgtheory.rnn import Settings, methods, train

    corpus = load_corpus("kjv")
    settings = Settings(task="charlm", hidden=args.hidden, batch=args.batch_size, seq_len=args.seq_len,
                        truncation=args.truncation, steps=args.steps, eval_every=args.steps, eval_chars=2048,
                        eval_streams=8, chunk=min(25, args.steps)).check()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    backends = ["cpu"] + (["gpu"] if any(d.platform == "gpu" for d in jax.devices()) else [])
    rows = []
    for backend in backends:
        with jax.default_device(jax.devices(backend)[0]):
            runs = {n: [] for n in names}
            for _ in range(args.rounds):
                for n in names:
                    name, opts = VARIANTS[n]
                    r = train(settings, methods.get(name, **opts), (0,), corpus=corpus, show_progress=False)
                    runs[n].append(r.info)
            for n in names:
                best = max(i["sequences_per_second"] for i in runs[n])
                rows.append({"backend": backend, "variant": n, "rounds_sequences_per_second":
                             [i["sequences_per_second"] for i in runs[n]], "sequences_per_second": best,
                             "ms_per_sequence": round(1000.0 / best, 4),
                             "compile_seconds": runs[n][0]["compile_seconds"]})
    ratios = {}
    for backend in backends:
        by = {r["variant"]: r["sequences_per_second"] for r in rows if r["backend"] == backend}
        if "tbptt" in by:
            ratios[backend] = {f"{n}/tbptt": round(by["tbptt"] / by[n], 3) for n in by if n != "tbptt"}
    result = {"benchmark": "rnn_throughput", "date": datetime.date.today().isoformat(), "machine": describe(),
              "command": "python benchmarks/rnn_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "settings": settings.to_dict(), "rows": rows, "cost_ratio_per_sequence": ratios,
              "target": "dni/tbptt <= 1.3 per sequence at the same T",
              **{f"cost_{n.replace('/', '_over_')}_{b}": v for b, r in ratios.items() for n, v in r.items()}}
    write_json(args.out, result)
    print(f"{'backend':<8}{'variant':<10}{'seq/s (best)':>14}{'ms/seq':>10}  rounds")
    for r in rows:
        print(f"{r['backend']:<8}{r['variant']:<10}{r['sequences_per_second']:>14.1f}{r['ms_per_sequence']:>10.3f}  "
              f"{r['rounds_sequences_per_second']}")
    print("cost per sequence relative to tbptt:", ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
