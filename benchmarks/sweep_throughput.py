"""Sweep throughput: sgtheory's vmapped sweep vs a plain numpy loop, one configuration at a time.

Problem: linear regression in population form (x ~ N(0, I_d), y = x·w* + 0.5·noise, ‖w*‖ = 1, one output,
no bias), trained with a label-conditioned linear SG at the output: 13 floats of state per configuration
at d = 10. Both sides run the same full-batch update, float32, ``--steps`` steps per configuration:

- sweep: :func:`sgtheory.linear.sweep` over a ``--grid`` × ``--grid`` α × β grid; its time is the whole
  call *including* JIT compilation (it is the first call in the process); the time since the interpreter
  started (imports included) is reported too;
- numpy: the update written with numpy arrays, looped over ``--numpy-configs`` configurations.

``ratio`` divides the two rates; ``ratio_counting_imports`` also charges the sweep the interpreter's
start-up and the JAX/sgtheory imports (this process up to the sweep's end). ``ratio_whole_process_*``
charges it a whole separate process timed from outside (start-up, imports, compilation, sweep, exit),
first with an empty persistent compilation cache (``cold_cache``: a first run) and then five times with the
cache that run left (``warm_cache``, their median: every later run of the same sweep; see
:mod:`sgtheory.jaxcache`).
This process itself never enables the cache, so its in-process figures always include compilation.
On the CPU every process here asks XLA for one device per core before JAX starts, as ``sgtheory sweep``
does (:mod:`sgtheory.hostdevices`), and the sweep splits its configurations over them. The issue's own
command, ``sgtheory sweep --model linear --sg cond-linear --dim 10 --grid 128 --steps 1000 --json``, is
timed as a whole process too, as it is (``*_cli_full_*``: it also computes the theory and writes its
files and PNG) and with ``--no-theory --no-plot`` (``*_cli_sweep_*``: the sweep and its npz / json).

Config-steps per second of both and their ratios go to ``benchmarks/results/sweep_throughput.json`` (a full
run at the default settings only; ``--quick`` or any changed setting writes ``sweep_throughput_quick.json``,
or ``--out``, which may not be the full result), with the machine and the command. On a GPU (when JAX
sees one) a 2^20-configuration sweep is timed as well, through the XLA scan and through the fused
Pallas kernel (:mod:`sgtheory.linear.fused`), each on a first call (compilation included) and a second.

    python benchmarks/sweep_throughput.py [--quick]
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def population(d: int, seed: int = 0, noise: float = 0.5):
    """Population moments of the benchmark problem: Sxx = I, Sxy = w*, Syy = ‖w*‖² + noise² (zero means)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, 1))
    w /= np.linalg.norm(w)
    return np.eye(d), w, np.array([[1.0 + noise ** 2]])


def numpy_run(Sxx, Sxy, Syy, theta0, alpha, beta, steps):
    """The same update as the sweep, one configuration, plain numpy float32 (SG s = pA + yB + C)."""
    f = np.float32
    Sxx, Sxy, Syy = Sxx.astype(f), Sxy.astype(f), f(Syy[0, 0])
    th = theta0.astype(f).copy()
    A = B = C = f(0.0)
    alpha, beta = f(alpha), f(beta)
    for _ in range(steps):
        Q = Sxx @ th
        Epp, Epy = (th.T @ Q)[0, 0], (th.T @ Sxy)[0, 0]
        d_th = Q * A + Sxy * B  # + E[x]·C, and E[x] = 0
        Ab, Bb = A - 1, B + 1
        dA = Epp * Ab + Epy * Bb
        dB = Epy * Ab + Syy * Bb
        dC = C  # E[p] = E[y] = 0
        th = th - alpha * d_th
        A, B, C = A - beta * dA, B - beta * dB, C - beta * dC
    return th


_CHILD = """
import sys
import numpy as np
sys.path.insert(0, {bench!r})
from sgtheory.hostdevices import one_device_per_core
from sgtheory.jaxcache import enable
one_device_per_core()  # as the sgtheory command does
enable()
import jax.numpy as jnp
from sweep_throughput import population
from sgtheory.linear import Config, from_moments, sweep
pb = from_moments(*population({d}), dtype=jnp.float32)
sweep(Config(sg="cond-linear", bias=False), pb, np.geomspace(1e-2, 1.0, {grid}), np.geomspace(1e-2, 0.9, {grid}),
      steps={steps}, progress=False)
"""


def whole_process(d: int, grid: int, steps: int) -> dict:
    """Wall time of a whole Python process that imports sgtheory and runs the sweep (interpreter start,
    imports, compilation, the sweep and the exit), timed from outside by :func:`_timed_cold_and_warm`.
    The child asks for one XLA CPU device per core before JAX starts, as ``sgtheory sweep`` does."""
    code = _CHILD.format(bench=str(Path(__file__).resolve().parent), d=d, grid=grid, steps=steps)
    return _timed_cold_and_warm([sys.executable, "-c", code])


WARM_REPEATS = 5


def _timed_cold_and_warm(cmd: list[str]) -> dict:
    """Wall seconds of ``cmd`` with an empty compilation cache, then the median of ``WARM_REPEATS`` runs
    with the cache it left (a median, because a shared machine's speed varies from run to run); the warm runs'
    fastest and slowest go in too."""
    import statistics
    import subprocess
    import tempfile

    def timed(env):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as cache:
        # on a GPU this process already holds most of the memory (JAX preallocates): the child takes what it needs
        env = {**os.environ, "SGTHEORY_JAX_CACHE": cache, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        env.pop("XLA_FLAGS", None)
        cold = timed(env)
        warm = [timed(env) for _ in range(WARM_REPEATS)]
    return {"cold_cache": cold, "warm_cache": statistics.median(warm), "warm_cache_fastest": min(warm),
            "warm_cache_slowest": max(warm)}


def cli_process(grid: int, steps: int, *extra: str) -> dict:
    """Wall time of the issue's command ``sgtheory sweep --model linear --sg cond-linear --dim 10 --grid G
    --steps S --json`` (as ``python -m sgtheory``) as a whole process (:func:`_timed_cold_and_warm`). Its sweep is
    the CLI's own data set with a bias: the same d, one more input row (14 floats of state, not 13). With
    no ``extra`` it also computes the linear-stability theory and writes the phase-diagram PNG, which the
    numpy loop does not do; ``--no-theory --no-plot`` leaves the sweep and its npz / json files."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "sgtheory", "sweep", "--model", "linear", "--sg", "cond-linear", "--dim", "10",
               "--grid", str(grid), "--steps", str(steps), "--json", "--out", out, *extra]
        return _timed_cold_and_warm(cmd)


def gpu_rows(cfg, steps: int, side: int) -> dict:
    """The GPU figure: a side × side (default 2^20-configuration) sweep at d = 10, float32, through the
    XLA scan and through the fused kernel, each timed on its first call (compile included) and on a
    second, compiled call; plus how often the two kernels' verdicts agree."""
    import jax
    import jax.numpy as jnp

    from sgtheory.linear import from_moments, sweep

    pb = from_moments(*population(10), dtype=jnp.float32)
    alphas, betas = np.geomspace(1e-2, 1.0, side), np.geomspace(1e-2, 0.9, side)
    out, status = {"device": str(jax.devices()[0]), "configs": side * side, "steps": steps}, {}
    for kernel in ("xla", "fused"):
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            res = sweep(cfg, pb, alphas, betas, steps=steps, chunk_size=side * side, kernel=kernel, progress=False)
            times.append(time.perf_counter() - t0)
        status[kernel] = res.status
        out[kernel] = {"seconds_first_call": round(times[0], 4), "seconds_compiled": round(times[1], 4),
                       "config_steps_per_s_first_call": float(f"{side * side * steps / times[0]:.4g}"),
                       "config_steps_per_s_compiled": float(f"{side * side * steps / times[1]:.4g}"),
                       "status_counts": res.counts()}
    out["verdicts_agree_fraction"] = float(np.mean(status["xla"] == status["fused"]))
    return out


def _versions() -> dict:
    """Python and the packages whose speed the ratio depends on (the numpy loop's per-call overhead, JAX's
    import and compilation: ml_dtypes' extension module is a large share of the import, paper_repro.md)."""
    from importlib.metadata import version

    return {"python": platform.python_version(),
            **{name: version(name) for name in ("numpy", "jax", "jaxlib", "ml_dtypes", "matplotlib")}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid and few numpy configurations")
    parser.add_argument("--grid", type=int, default=None, help="N for the N×N sweep (default 128; quick 32)")
    parser.add_argument("--steps", type=int, default=1000, help="steps per configuration (default 1000)")
    parser.add_argument("--dims", default="10,100", help="input dimensions (default 10,100)")
    parser.add_argument("--numpy-configs", type=int, default=None,
                        help="numpy loop configurations (default 60; quick 4)")
    parser.add_argument("--gpu-side", type=int, default=1024, help="GPU grid side (default 1024: 2^20 configurations)")
    parser.add_argument("--out", default=None,
                        help="results file (default benchmarks/results/sweep_throughput[_quick].json)")
    args = parser.parse_args(argv)
    # the committed full result is written only by a full run at the default settings: a quick or custom
    # run goes to the _quick file (or its --out), and may not name the full result as --out
    custom = args.quick or args.grid is not None or args.numpy_configs is not None or args.steps != 1000 \
        or args.dims != "10,100"
    full = RESULTS / "sweep_throughput.json"
    target = Path(args.out) if args.out else (RESULTS / "sweep_throughput_quick.json" if custom else full)
    if custom and target.resolve() == full.resolve():
        parser.error(f"--out {args.out}: a quick or custom run never overwrites the full result {full.name}")
    grid = args.grid or (32 if args.quick else 128)
    n_np = args.numpy_configs or (4 if args.quick else 60)
    dims = [int(x) for x in args.dims.split(",")]

    from sgtheory.hostdevices import cores, one_device_per_core

    one_device_per_core()  # before JAX starts, as the sgtheory command does: the sweep splits over the cores
    import jax
    import jax.numpy as jnp

    from sgtheory.io import write_json
    from sgtheory.linear import Config, from_moments, init, sweep

    t_imports = time.perf_counter() - T_START  # interpreter start to JAX and sgtheory imported
    platform_name = jax.devices()[0].platform
    alphas = np.geomspace(1e-2, 1.0, grid)
    betas = np.geomspace(1e-2, 0.9, grid)
    cfg = Config(sg="cond-linear", bias=False)
    rows = []
    for d in dims:
        Sxx, Sxy, Syy = population(d)
        pb = from_moments(Sxx, Sxy, Syy, dtype=jnp.float32)
        t0 = time.perf_counter()
        res = sweep(cfg, pb, alphas, betas, steps=args.steps)
        t_sweep = time.perf_counter() - t0
        n_cfg = res.status.size
        theta0 = np.asarray(init(cfg, pb, key=jax.random.PRNGKey(0)).net[0]["W"])
        pick = np.random.default_rng(1).integers(0, grid, size=(n_np, 2))
        t0 = time.perf_counter()
        finals = [numpy_run(Sxx, Sxy, Syy, theta0, alphas[i], betas[j], args.steps) for i, j in pick]
        t_np = time.perf_counter() - t0
        # same update: the numpy runs end at the sweep's distances to the optimum (float32 round-off)
        opt = np.linalg.solve(Sxx, Sxy)
        np_dist = np.array([np.linalg.norm(th - opt) for th in finals])
        sw_dist = res.distance[0, 0, pick[:, 0], pick[:, 1]]
        ok = np.isfinite(sw_dist) & (sw_dist < 1)
        agree = bool(np.allclose(np_dist[ok], sw_dist[ok], rtol=1e-2, atol=1e-4))
        sweep_rate = n_cfg * args.steps / t_sweep
        np_rate = n_np * args.steps / t_np
        proc = whole_process(d, grid, args.steps)
        if d == 10:
            cli_sweep = cli_process(grid, args.steps, "--no-theory", "--no-plot")
            proc.update({f"cli_sweep_{k}": v for k, v in cli_sweep.items()})
            proc.update({f"cli_full_{k}": v for k, v in cli_process(grid, args.steps).items()})
        rows.append({"dim": d, "configs": n_cfg, "steps": args.steps, "sweep_seconds_incl_compile": round(t_sweep, 3),
                     "sweep_config_steps_per_s": float(f"{sweep_rate:.4g}"), "numpy_configs": n_np,
                     "numpy_seconds": round(t_np, 3), "numpy_config_steps_per_s": float(f"{np_rate:.4g}"),
                     "ratio": float(f"{sweep_rate / np_rate:.4g}"),
                     "ratio_counting_imports": float(f"{n_cfg * args.steps / (t_sweep + t_imports) / np_rate:.4g}"),
                     **{f"process_seconds_{k}": round(v, 3) for k, v in proc.items()},
                     **{f"ratio_whole_process_{k}": float(f"{n_cfg * args.steps / v / np_rate:.4g}")
                        for k, v in proc.items()},
                     "numpy_matches_sweep": agree})
    gpu = "no GPU visible to JAX in this run"
    if platform_name == "gpu":
        gpu = gpu_rows(cfg, args.steps, args.gpu_side)
    process = time.perf_counter() - T_START
    print(f"{'dim':>4} {'configs':>8} {'sweep cfg-steps/s':>18} {'numpy cfg-steps/s':>18} {'ratio':>8} "
          f"{'process: cold s':>16} {'ratio':>7} {'warm s':>7} {'ratio':>7}")
    for r in rows:
        print(f"{r['dim']:>4} {r['configs']:>8} {r['sweep_config_steps_per_s']:>18.4g} "
              f"{r['numpy_config_steps_per_s']:>18.4g} {r['ratio']:>8.4g} {r['process_seconds_cold_cache']:>16.3f} "
              f"{r['ratio_whole_process_cold_cache']:>7.4g} {r['process_seconds_warm_cache']:>7.3f} "
              f"{r['ratio_whole_process_warm_cache']:>7.4g}")
    for r in rows:
        for name, what in (("cli_sweep", "--no-theory --no-plot"), ("cli_full", "theory, files and PNG included")):
            if f"process_seconds_{name}_warm_cache" in r:
                print(f"sgtheory sweep, d={r['dim']} ({what}): whole process "
                      f"{r[f'process_seconds_{name}_cold_cache']:.2f} s cold "
                      f"({r[f'ratio_whole_process_{name}_cold_cache']:.3g}x), "
                      f"{r[f'process_seconds_{name}_warm_cache']:.2f} s warm "
                      f"({r[f'ratio_whole_process_{name}_warm_cache']:.3g}x)")
    print(f"GPU: {gpu}")
    out = {"benchmark": "sweep_throughput", "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
           "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "cpu_count": os.cpu_count(), "jax_backend": platform_name,
                       "load_average_1min": round(os.getloadavg()[0], 2),
                       "xla_cpu_devices_in_children": cores(), "versions": _versions()},
           "dtype": "float32", "rows": rows, "gpu": gpu,
           "seconds_to_import_jax_and_sgtheory": round(t_imports, 2),
           "process_seconds_total": round(process, 2)}
    write_json(target, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
