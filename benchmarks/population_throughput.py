"""Populations: member-steps per second of many nets trained as one program vs the same nets one after another.

The net of the issue: a 6×256 ReLU MLP, batch 256, on mnist5k, with ``bp`` and ``csg-every``. For each
population size P the members are seeds 0..P-1 at one learning rate:

- **population**: :func:`sgtheory.nets.train_population` (one program, vmapped, split over every device);
- **one after another**: :func:`sgtheory.nets.train` for seeds 0..max(P)-1 in turn, in the same process;
  the first P of them are the baseline of population P (the same members).

Two rates per row: training only (the compiled chunks, no compilation), and end to end (compilation, the
initial states and training; the process start-up aside). The CPU target of the issue is about whole
processes, so ``--whole-process`` also times ``sgtheory train --seeds 8`` against eight
``sgtheory train --seed i`` commands (each a fresh process; the sequential commands share a compilation
cache, as a user's would; the population command starts with an empty one).

    python benchmarks/population_throughput.py           # P = 1, 4, 8, 16 (GPU: also 64), 500 steps; whole process
    python benchmarks/population_throughput.py --quick   # P = 1, 4; 100 steps; writes population_throughput_quick.json

Every backend JAX sees is measured (CPU always, then GPU). The process asks for one CPU device per core
before JAX starts, as ``sgtheory train`` does for a population.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sgtheory.machine import describe

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="P = 1, 4 and 100 steps; no whole-process check")
    p.add_argument("--sizes", default=None, help="population sizes (default 1,4,8,16 and 64 on a GPU; quick 1,4)")
    p.add_argument("--steps", type=int, default=None, help="steps per member (default 500; quick 100)")
    p.add_argument("--methods", default="bp,csg-every")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--whole-process", type=int, default=None,
                   help="steps of the whole-process check (8 members; default 1000; 0 = skip; quick 0)")
    p.add_argument("--out", default=None, help="results file (default results/population_throughput[_quick].json)")
    args = p.parse_args(argv)
    args.steps = args.steps or (100 if args.quick else 500)
    if args.whole_process is None:
        args.whole_process = 0 if args.quick else 1000
    name = "population_throughput" + ("_quick" if args.quick else "")
    args.out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    return args


def in_process(ds, config, method: str, sizes: list[int], steps: int, batch: int, devices) -> list[dict]:
    """One row per population size: population vs the same members one after another (same process)."""
    from sgtheory import nets

    common = dict(steps=steps, batch_size=batch, eval_every=steps, show_progress=False)
    seq = []  # seeds 0..max-1 one after another; the first P are population P's members
    for seed in range(max(sizes)):
        t = time.perf_counter()
        r = nets.train(ds, config, method, seed=seed, device=devices[0], **common)
        seq.append((time.perf_counter() - t, r.info["train_seconds"]))
    rows = []
    for n in sizes:
        t = time.perf_counter()
        pop = nets.train_population(ds, config, method, seeds=n, devices=devices, **common)
        wall = time.perf_counter() - t
        seq_wall, seq_train = (sum(x[i] for x in seq[:n]) for i in (0, 1))
        row = {"backend": devices[0].platform, "method": method, "population": n, "devices": pop.info["devices"],
               "pop_member_steps_per_s": round(n * steps / pop.info["train_seconds"], 1),
               "seq_member_steps_per_s": round(n * steps / seq_train, 1),
               "pop_end_to_end_per_s": round(n * steps / wall, 1),
               "seq_end_to_end_per_s": round(n * steps / seq_wall, 1),
               "pop_compile_s": pop.info["compile_seconds"]}
        row["speedup_training"] = round(row["pop_member_steps_per_s"] / row["seq_member_steps_per_s"], 3)
        row["speedup_end_to_end"] = round(row["pop_end_to_end_per_s"] / row["seq_end_to_end_per_s"], 3)
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


def whole_process(method: str, steps: int, depth: int, width: int, batch: int, n: int = 8) -> dict:
    """``sgtheory train --seeds n`` vs n ``sgtheory train --seed i`` commands: wall time of whole processes."""
    base = [sys.executable, "-m", "sgtheory", "train", "--method", method, "--depth", str(depth), "--width", str(width),
            "--batch-size", str(batch), "--steps", str(steps), "--eval-every", str(steps), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def run(argv, cache) -> float:
        t = time.perf_counter()
        proc = subprocess.run(argv, env={**env, "SGTHEORY_JAX_CACHE": cache}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
        return time.perf_counter() - t

    with tempfile.TemporaryDirectory() as seq_cache, tempfile.TemporaryDirectory() as pop_cache:
        seq = [run(base + ["--seed", str(i)], seq_cache) for i in range(n)]
        pop = run(base + ["--seeds", str(n)], pop_cache)
    row = {"method": method, "members": n, "steps": steps, "sequential_seconds": round(sum(seq), 2),
           "sequential_per_process": [round(s, 2) for s in seq], "population_seconds": round(pop, 2),
           "member_steps_per_s_sequential": round(n * steps / sum(seq), 1),
           "member_steps_per_s_population": round(n * steps / pop, 1)}
    row["speedup"] = round(sum(seq) / pop, 3)
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row



def main(argv=None) -> int:
    args = parse(argv)
    from sgtheory.hostdevices import one_device_per_core

    one_device_per_core()
    import jax

    from sgtheory import data, nets
    from sgtheory.io import write_json

    ds = data.load("mnist5k")
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, args.width, "relu", False)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    gpu = [d for d in jax.devices() if d.platform == "gpu"]
    rows, whole = [], []
    for devices in [jax.devices("cpu")] + ([gpu] if gpu else []):
        default = "1,4" if args.quick else ("1,4,16,64" if devices[0].platform == "gpu" else "1,4,8,16")
        sizes = [int(s) for s in (args.sizes or default).split(",")]
        for m in methods:
            rows += in_process(ds, config, m, sizes, args.steps, args.batch_size, devices)
    if args.whole_process:
        whole = [whole_process(m, args.whole_process, args.depth, args.width, args.batch_size) for m in methods]
    result = {"benchmark": "population_throughput",
              "command": " ".join(["python benchmarks/population_throughput.py",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "date": datetime.date.today().isoformat(), "machine": describe(),
              "settings": {"depth": args.depth, "width": args.width, "activation": "relu",
                           "batch_size": args.batch_size,
                           "steps": args.steps, "dataset": ds.name, "dtype": "float32", "optimizer": "adam",
                           "cpu_devices": len(jax.devices("cpu"))},
              "table_columns": ["backend", "method", "population", "devices", "pop_member_steps_per_s",
                                "seq_member_steps_per_s", "speedup_training", "pop_end_to_end_per_s",
                                "seq_end_to_end_per_s", "speedup_end_to_end"],
              "rows": rows, "whole_process": whole,
              "targets": {"cpu_population_8_whole_process_speedup": 1.5, "gpu_population_16_vs_one_net": 8.0}}
    for w in whole:
        result[f"whole_process_speedup_{w['method']}"] = w["speedup"]
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
