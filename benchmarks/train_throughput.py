"""Training throughput of ``bp``, ``csg-every`` and ``dfa``: steps per second on the same net.

The issue's target: the per-step cost of ``csg-every`` is at most 1.5× that of ``bp`` (a GPU figure when
a GPU is present, CPU otherwise). Every run goes through :func:`sgtheory.nets.train` (jit-compiled
``lax.scan`` chunks); its ``steps_per_second`` counts training steps only, and compilation is reported
separately. Methods are run in interleaved rounds (bp, csg-every, dfa, bp, ...) so a load change on a
shared machine hits all of them alike; the best round per method is the headline (the least disturbed).
Every backend present is measured in the same run (CPU always, then GPU if JAX sees one).

    python benchmarks/train_throughput.py            # 6×256 ReLU, batch 256, 3 rounds of 1,000 steps
    python benchmarks/train_throughput.py --quick    # 2 rounds of 200 steps

Prints a table and writes ``benchmarks/results/train_throughput.json`` (``train_throughput_quick.json`` with
``--quick``): machine, numbers, command and date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sgtheory.machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "train_throughput.json"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 200 steps")
    p.add_argument("--steps", type=int, default=None, help="steps per round (default 1000; quick 200)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per method (default 3; quick 2)")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--methods", default="bp,csg-every,dfa")
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--out", default=None, help="JSON results file (default results/train_throughput.json, "
                   "train_throughput_quick.json with --quick: a quick run never overwrites the full result)")
    args = p.parse_args(argv)
    args.out = args.out or str(RESULTS.with_name("train_throughput_quick.json") if args.quick else RESULTS)
    args.steps = args.steps or (200 if args.quick else 1000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    return args



def main(argv=None) -> int:
    args = parse(argv)
    import jax

    from sgtheory import data, nets
    from sgtheory.io import write_json

    ds = data.load(args.dataset)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, args.width, "relu", False)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    backends = ["cpu"] + (["gpu"] if any(d.platform == "gpu" for d in jax.devices()) else [])
    rows = []
    for backend in backends:
        with jax.default_device(jax.devices(backend)[0]):
            runs = {m: [] for m in methods}
            for _ in range(args.rounds):
                for m in methods:
                    r = nets.train(ds, config, m, steps=args.steps, batch_size=args.batch_size,
                                   eval_every=args.steps, seed=0, show_progress=False)
                    runs[m].append(r.info)
            for m in methods:
                sps = sorted(i["steps_per_second"] for i in runs[m])
                rows.append({"backend": backend, "method": m, "steps_per_second": sps[-1],
                             "steps_per_second_rounds": [i["steps_per_second"] for i in runs[m]],
                             "ms_per_step": round(1000.0 / sps[-1], 3),
                             "compile_seconds": runs[m][0]["compile_seconds"]})
    ratios = {}
    for backend in backends:
        by = {r["method"]: r for r in rows if r["backend"] == backend}
        if "bp" in by and "csg-every" in by:
            ratios[backend] = round(by["bp"]["steps_per_second"] / by["csg-every"]["steps_per_second"], 3)
    print(f"{'backend':8}{'method':12}{'steps/s':>10}{'ms/step':>10}{'compile s':>11}  rounds (steps/s)")
    for r in rows:
        print(f"{r['backend']:8}{r['method']:12}{r['steps_per_second']:>10.1f}{r['ms_per_step']:>10.2f}"
              f"{r['compile_seconds']:>11.2f}  {r['steps_per_second_rounds']}")
    for backend, ratio in ratios.items():
        print(f"{backend}: per-step cost csg-every / bp = {ratio:.2f} (target <= 1.5: "
              f"{'met' if ratio <= 1.5 else 'NOT met'})")
    import datetime

    result = {"benchmark": "train_throughput", "date": datetime.date.today().isoformat(),
              "command": " ".join(["python benchmarks/train_throughput.py", *(sys.argv[1:] if argv is None else argv)]),
              "machine": describe(), "settings": {"depth": args.depth, "width": args.width, "activation": "relu",
                                                 "batchnorm": False, "batch_size": args.batch_size,
                                                 "steps_per_round": args.steps, "rounds": args.rounds,
                                                 "dataset": ds.name, "dtype": "float32", "optimizer": "adam"},
              "results": rows, "cost_ratio_csg_every_over_bp": ratios, "target_ratio": 1.5}
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
