"""Benchmark: ``similarity_matrix`` against per-pair calls of straightforward implementations (issue 4, item 7).

Two random ReLU nets with batch normalisation (20 layers of width 256, different seeds, the same
5,000 Gaussian inputs; float64) give 20 × 20 layer pairs. For linear CKA, CCA (mean canonical
correlation) and SVCCA (99% variance), the whole matrix from
:func:`sgtheory.represent.similarity_matrix` is timed against per-pair calls of plain
implementations written below, and the values are compared (target: ≥ 10× faster, equal to 1e-8).
The matrix is timed with ``backend="numpy"`` (CPU) and, when JAX has a GPU, also ``backend="jax"``.

Per-pair baselines, each recomputing everything for every pair:

- ``cka_gram``: linear CKA from centred ``n × n`` Gram matrices (the formulation of Kornblith et
  al.'s reference code); ``cka_features``: the feature-space formula ``‖YᵀX‖²/(‖XᵀX‖‖YᵀY‖)``,
  the leanest exact per-pair method (three ``n d²`` products where the matrix needs one).
- ``cca_svd``: thin SVD of each centred view, singular values of ``U_xᵀ U_y`` (Björck & Golub 1973);
  ``cca_cov``: covariance route (``np.cov``, eigh inverse square roots, SVD), as in google/svcca.
- ``svcca_svd``: SVD of each view, keep 99% of the variance, CCA of the kept directions.
- ``sgtheory``: this package's own per-pair function (``linear_cka``, ``cca(...).mean()``, ``svcca``).

``--baseline-pairs K`` times the baselines on K evenly spread pairs and scales the time to all
pairs (marked ``extrapolated`` in the JSON). ``--threads`` limits BLAS threads (use 1 on a shared
machine for stable numbers). Run from the repository root:

    python benchmarks/similarity_speed.py --threads 1                     # full, all 400 per-pair calls
    python benchmarks/similarity_speed.py --threads 1 --baseline-pairs 40 # full size, baselines extrapolated
    python benchmarks/similarity_speed.py --quick --threads 1             # 2000 x 128, 8 x 8 layers
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


# -- straightforward per-pair implementations --------------------------------------------------


def cka_gram(X, Y):
    def centred_gram(V):  # H V Vᵀ H, by subtracting row and column means
        G = V @ V.T
        m = G.mean(axis=0)
        return G - m[:, None] - m[None, :] + m.mean()

    K, L = centred_gram(X), centred_gram(Y)
    return float(np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L)))


def cka_features(X, Y):
    X, Y = X - X.mean(axis=0), Y - Y.mean(axis=0)
    return float(np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def cca_svd(X, Y):
    ux = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)[0]
    uy = np.linalg.svd(Y - Y.mean(axis=0), full_matrices=False)[0]
    return float(np.linalg.svd(ux.T @ uy, compute_uv=False).mean())


def cca_cov(X, Y):
    dx = X.shape[1]
    C = np.cov(X, Y, rowvar=False)

    def inv_sqrt(S):
        w, v = np.linalg.eigh(S)
        return (v / np.sqrt(w)) @ v.T

    return float(np.linalg.svd(inv_sqrt(C[:dx, :dx]) @ C[:dx, dx:] @ inv_sqrt(C[dx:, dx:]), compute_uv=False).mean())


def svcca_svd(X, Y, variance=0.99):
    kept = []
    for V in (X, Y):
        U, s, _ = np.linalg.svd(V - V.mean(axis=0), full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), variance * (1 - 1e-12))) + 1
        kept.append(U[:, :k])
    return float(np.linalg.svd(kept[0].T @ kept[1], compute_uv=False).mean())


def sgtheory_per_pair(measure):
    """This package's own per-pair function (validation, per-view work and pair step on every call)."""
    from sgtheory.represent import cca, linear_cka, svcca

    return {"linear_cka": linear_cka, "cca": lambda X, Y: float(cca(X, Y).mean()), "svcca": svcca}[measure]


CASES = {  # measure -> per-pair baselines
    "linear_cka": {"cka_gram": cka_gram, "cka_features": cka_features},
    "cca": {"cca_svd": cca_svd, "cca_cov": cca_cov},
    "svcca": {"svcca_svd": svcca_svd},
}


# -- data ----------------------------------------------------------------------------------------


def bn_relu_net(inputs, depth, width, seed):
    """Activations of a random ReLU net with batch normalisation: ``h ← relu(BN(h W) + 0.1)``."""
    rng = np.random.default_rng(seed)
    h, layers = inputs, []
    for _ in range(depth):
        z = h @ rng.normal(size=(h.shape[1], width))
        h = np.maximum((z - z.mean(axis=0)) / z.std(axis=0) + 0.1, 0.0)
        layers.append(h)
    return layers


# -- benchmark -----------------------------------------------------------------------------------


def run(args):
    from sgtheory.represent import similarity_matrix
    from sgtheory.represent._device import accelerator_present

    inputs = np.random.default_rng(0).normal(size=(args.samples, args.width))
    A = bn_relu_net(inputs, args.layers, args.width, seed=1)
    B = bn_relu_net(inputs, args.layers, args.width, seed=2)
    pairs = [(i, j) for i in range(args.layers) for j in range(args.layers)]
    k = min(args.baseline_pairs or len(pairs), len(pairs))
    chosen = [pairs[t] for t in np.linspace(0, len(pairs) - 1, k).round().astype(int)]
    backends = ["numpy"] + (["jax"] if accelerator_present() else [])
    rows = []
    for measure in args.measures:
        matrices = {}
        for backend in backends:
            similarity_matrix(A[:2], B[:2], measure, backend=backend)  # warm-up: lazy imports, device kernels
            t0 = time.perf_counter()
            matrices[backend] = (similarity_matrix(A, B, measure, backend=backend), time.perf_counter() - t0)
        for name, f in {**CASES[measure], "sgtheory": sgtheory_per_pair(measure)}.items():
            t0 = time.perf_counter()
            vals = np.array([f(A[i], B[j]) for i, j in chosen])
            t_pairs = (time.perf_counter() - t0) * len(pairs) / k
            for backend, (S, t_matrix) in matrices.items():
                diff = float(np.max(np.abs(vals - np.array([S[i, j] for i, j in chosen]))))
                rows.append({"measure": measure, "baseline": name, "backend": backend, "pairs_timed": k,
                             "extrapolated": k < len(pairs), "per_pair_total_s": t_pairs,
                             "similarity_matrix_s": t_matrix, "speedup": t_pairs / t_matrix,
                             "max_abs_diff": diff, "agree_1e-8": diff <= 1e-8})
                print(f"{measure:11s} {name:13s} {backend:7s} {t_pairs:10.2f} {t_matrix:10.2f} "
                      f"{t_pairs / t_matrix:8.1f}x {diff:10.1e}"
                      f"{'  (extrapolated from ' + str(k) + ' pairs)' if k < len(pairs) else ''}", flush=True)
    return rows


def machine(threads):
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "blas_threads": threads or "library default", "load_average_1_5_15min": list(os.getloadavg())}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pass
    try:
        import jax
        devices = [d.platform for d in jax.devices()]
        info["accelerator"] = "none (JAX sees CPU only)" if set(devices) == {"cpu"} else ", ".join(devices)
    except Exception as exc:  # jax is part of the stack, but the benchmark must not depend on it
        info["accelerator"] = f"unknown ({type(exc).__name__})"
    on_accelerator = not info["accelerator"].startswith(("none", "unknown"))
    info["gpu_timings"] = ("the rows with backend 'jax'" if on_accelerator
                           else "not run: no GPU present (the 'jax' backend is timed only on an accelerator)")
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small problem (2000 samples, 8 layers of width 128)")
    p.add_argument("--samples", type=int, help="samples (default 5000; quick 2000)")
    p.add_argument("--width", type=int, help="layer width (default 256; quick 128)")
    p.add_argument("--layers", type=int, help="layers per net (default 20; quick 8)")
    p.add_argument("--measures", default="linear_cka,cca,svcca", help="comma-separated subset of linear_cka,cca,svcca")
    p.add_argument("--baseline-pairs", type=int, default=None, help="time the per-pair baselines on this many pairs")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: the library's)")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default benchmarks/results/similarity_speed[_quick].json)")
    args = p.parse_args(argv)
    args.samples = args.samples or (2000 if args.quick else 5000)
    args.width = args.width or (128 if args.quick else 256)
    args.layers = args.layers or (8 if args.quick else 20)
    args.measures = [m for m in args.measures.split(",") if m]
    unknown = [m for m in args.measures if m not in CASES]
    if unknown:
        p.error(f"--measures: unknown {unknown}; choose from {list(CASES)}")
    from sgtheory.io import write_json

    print(f"{args.layers}x{args.layers} layers, {args.samples} samples, width {args.width}, float64")
    print(f"{'measure':11s} {'baseline':13s} {'backend':7s} {'per-pair s':>10s} {'matrix s':>10s} "
          f"{'speedup':>9s} {'max |diff|':>10s}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. small-sample notes in quick mode; the values are what is compared
        if args.threads:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(args.threads):
                rows = run(args)
        else:
            rows = run(args)
    out = args.out or RESULTS / ("similarity_speed_quick.json" if args.quick else "similarity_speed.json")
    write_json(out, {
        "benchmark": "similarity_matrix vs per-pair calls",
        "command": "python " + " ".join([os.path.relpath(__file__)] + list(argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.threads),
        "problem": {"samples": args.samples, "width": args.width, "layers": args.layers, "pairs": args.layers**2,
                    "data": "random BN-ReLU nets, seeds 1 and 2, shared Gaussian inputs", "dtype": "float64"},
        "results": rows,
        "target": "speedup >= 10 and max_abs_diff <= 1e-8",
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
