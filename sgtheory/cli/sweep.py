"""``sgtheory sweep``: convergence phase diagram of a linear / deep linear model trained with SG.

Runs an α × β grid (× seeds × init scales) with :func:`sgtheory.linear.sweep`, asks the theory for its
per-cell prediction (:func:`sgtheory.linear.predict`: converges / diverges / undetermined) and scores it
(:func:`sgtheory.linear.agreement.score`), and writes ``sweep.npz`` (coordinates, verdicts, the prediction
per cell and its fixed points), ``sweep.json`` (the summary) and ``phase_diagram.png`` (unless
``--no-plot``) into ``--out``. The command parses, calls the library and writes; the theory lives in
:mod:`sgtheory.linear`.
"""

from __future__ import annotations

import contextlib
import time

from sgtheory.cli._plot_child import PlotChild

OUTPUTS = ("sweep.npz", "sweep.json", "phase_diagram.png")  # what --out receives (sgtheory.cli.main checks them)

BAND_TEXT = ("theory_agreement counts the decided cells outside a ±5% band around the predicted boundary "
             "(cells with |ρ−ρc| ≤ ln(1.05)·(|∂ρ/∂lnα|+|∂ρ/∂lnβ|) are left out, see --band); coverage = those "
             "cells / all cells")


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="α×β convergence sweep of linear/deep linear SG training, with the linear-stability prediction",
        description="Sweep the main learning rate α and the SG learning rate β (log-spaced N×N grid, or explicit "
                    "lists) over seeds and init scales; classify each run as converged / not converged / diverged; "
                    "predict, per cell, converges / diverges / undetermined from the linearised joint dynamics "
                    "(the fixed point each run approaches, a flatter one on manifolds, the start); write "
                    "sweep.npz, sweep.json and phase_diagram.png. " + BAND_TEXT + ".",
    )
    p.add_argument("--model", default="linear", help="linear or deep-linear (default linear)")
    p.add_argument("--depth", type=int, default=None, help="hidden layers of deep-linear (default 3)")
    p.add_argument("--width", type=int, default=10, help="hidden width (default 10)")
    p.add_argument("--sg", default="cond-linear",
                   help="none (backprop), linear, cond-linear or mlp (default cond-linear)")
    p.add_argument("--sg-layer", default="output",
                   help="activation index 1..depth+1 of the SG, 'output' (default) or 'all' (bootstrapped)")
    p.add_argument("--loss", default="mse", help="mse or log (default mse)")
    p.add_argument("--dataset", default="teacher", help="teacher, blobs, xor or correlated (default teacher)")
    p.add_argument("--dim", type=int, default=10, help="input dimension (default 10)")
    p.add_argument("--noise", type=float, default=0.5,
                   help="noise level of the data set (default 0.5; the teacher's own is 0.1, where the SG's slowest "
                        "mode, curvature ≈ noise variance / 2, outlasts 2000 steps)")
    p.add_argument("--n", type=int, default=1000, help="samples drawn from the data set (default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the data set (default 0)")
    p.add_argument("--grid", type=int, default=64, help="N: an N×N log-spaced α×β grid (default 64)")
    p.add_argument("--alpha-range", default="1e-2,10", help="lo,hi of the α grid (default 1e-2,10)")
    p.add_argument("--beta-range", default="1e-2,10", help="lo,hi of the β grid (default 1e-2,10)")
    p.add_argument("--alphas", default=None, help="explicit comma-separated α values (overrides --grid/--alpha-range)")
    p.add_argument("--betas", default=None, help="explicit comma-separated β values (overrides --grid/--beta-range)")
    p.add_argument("--steps", type=int, default=2000, help="updates per run (default 2000)")
    p.add_argument("--seeds", type=int, default=1, help="number of initialisation seeds 0..S-1 (default 1)")
    p.add_argument("--init-scales", default="1", help="comma-separated init scales (default 1)")
    p.add_argument("--tol", type=float, default=1e-5, help="converged when ‖G‖ ≤ tol·‖G_0‖ (default 1e-5)")
    p.add_argument("--dtype", default="float32", help="float32 (default) or float64 for the simulation")
    p.add_argument("--band", type=float, default=0.05, help="relative half-width of the boundary band (default 0.05)")
    p.add_argument("--no-theory", action="store_true", help="skip the theory's prediction")
    p.add_argument("--theory", default="three-way",
                   help="three-way (default: converges / diverges / undetermined) or single-point (the earlier "
                        "two-way prediction, ρ < 1 at one fixed point, for comparison)")
    p.add_argument("--no-plot", action="store_true",
                   help="skip phase_diagram.png (and the child process that draws it)")
    p.add_argument("--chunk-size", type=int, default=None, help="configurations per compiled chunk (default auto)")
    p.add_argument("--kernel", default="auto", help="auto (default: the fused kernel on a GPU where it applies, "
                   "else XLA), xla, or fused (one Pallas kernel for all steps; GPU, linear model, MSE)")
    p.add_argument("--out", default="sweep_out", help="output folder (default sweep_out)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def _pair(text: str, name: str):
    from sgtheory.errors import InputError
    from sgtheory.validate import positive_list

    vals = positive_list(text, name)
    if vals.size != 2 or vals[0] > vals[1]:
        raise InputError(f"{name}: expected lo,hi with 0 < lo <= hi, got {text!r}")
    return vals


def _rates(args, which: str):
    import numpy as np

    from sgtheory.validate import int_in_range, positive_list

    explicit = getattr(args, f"{which}s")
    if explicit is not None:  # sorted and de-duplicated: the band's finite differences need ordered rates
        return np.unique(positive_list(explicit, f"--{which}s"))
    lo, hi = _pair(getattr(args, f"{which}_range"), f"--{which}-range")
    return np.geomspace(lo, hi, int_in_range(args.grid, "--grid", lo=1))


def _config(args):
    from sgtheory.errors import InputError
    from sgtheory.linear import make_config
    from sgtheory.validate import choice, int_in_range

    model = choice(args.model, "--model", ("linear", "deep-linear"))
    depth = args.depth if args.depth is not None else (3 if model == "deep-linear" else 0)
    depth = int_in_range(depth, "--depth", lo=0)
    layer = args.sg_layer
    if layer not in ("output", "all"):
        try:
            layer = int(layer)
        except ValueError:
            raise InputError(f"--sg-layer: expected an integer, 'output' or 'all', got {layer!r}") from None
    kw = dict(sg=choice(args.sg, "--sg", ("none", "linear", "cond-linear", "mlp")), sg_layer=layer,
              loss=choice(args.loss, "--loss", ("mse", "log")))
    return make_config(model, depth=depth, width=args.width, **kw)


def run(args) -> int:
    # the PNG's child process starts first: it imports matplotlib while this one imports JAX and sweeps
    with contextlib.nullcontext() if args.no_plot else PlotChild() as plotter:
        return _run(args, plotter)


def _validate(args) -> dict:
    """Every input checked before any work or any file: the plan of the run."""
    import numpy as np

    from sgtheory.linear.datasets import DATASETS
    from sgtheory.linear.predict import METHODS
    from sgtheory.linear.sweep import KERNELS
    from sgtheory.validate import choice, int_in_range, positive, positive_list

    config = _config(args)
    plan = {"config": config, "dataset": choice(args.dataset, "--dataset", DATASETS),
            "dim": int_in_range(args.dim, "--dim", lo=1), "n": int_in_range(args.n, "--n", lo=1),
            "data_seed": int_in_range(args.data_seed, "--data-seed", lo=0),
            "noise": positive(args.noise, "--noise"),
            "alphas": _rates(args, "alpha"), "betas": _rates(args, "beta"),
            "steps": int_in_range(args.steps, "--steps", lo=1),
            "seeds": list(range(int_in_range(args.seeds, "--seeds", lo=1))),
            "scales": np.unique(positive_list(args.init_scales, "--init-scales")),
            "tol": positive(args.tol, "--tol"), "band": positive(args.band, "--band"),
            "dtype": choice(args.dtype, "--dtype", ("float32", "float64")),
            "kernel": choice(args.kernel, "--kernel", KERNELS),
            "theory": None if args.no_theory else choice(args.theory, "--theory", METHODS)}
    if args.chunk_size is not None:
        int_in_range(args.chunk_size, "--chunk-size", lo=1)
    return plan


def _run(args, plotter) -> int:
    from sgtheory.cli.main import emit
    from sgtheory.io import ensure_writable_dir
    from sgtheory.linear.datasets import make, target_for_loss

    plan = _validate(args)
    config = plan["config"]
    X, Y = make(plan["dataset"], plan["dim"], plan["n"], plan["data_seed"], target=target_for_loss(config.loss),
                noise=plan["noise"])
    out = ensure_writable_dir(args.out)
    if plotter is not None:
        layer = "" if config.sg == "none" else f" at layer {config.sg_layer}"
        title = f"{config.model} (depth {config.depth}), {config.loss}, SG {config.sg}{layer}"
        plotter.prepare(plan["alphas"], plan["betas"], f"{title}; seed 0, init scale {plan['scales'][0]:g}")

    import jax

    jax.config.update("jax_enable_x64", True)  # theory in float64; the sweep's dtype is explicit
    import jax.numpy as jnp

    from sgtheory.linear import from_samples
    from sgtheory.linear.sweep import devices_used, engine, sweep

    problem64 = from_samples(X, Y, dtype=jnp.float64)
    if not config.uses_samples:
        problem64 = problem64.without_samples()
    problem = problem64.astype(jnp.float32 if plan["dtype"] == "float32" else jnp.float64)
    t0 = time.perf_counter()
    result = sweep(config, problem, plan["alphas"], plan["betas"], seeds=plan["seeds"], init_scales=plan["scales"],
                   steps=plan["steps"], tol=plan["tol"], chunk_size=args.chunk_size, kernel=plan["kernel"])
    t_sweep = time.perf_counter() - t0
    summary = {"model": config.model, "depth": config.depth, "sg": config.sg, "sg_layer": config.sg_layer,
               "loss": config.loss, "dataset": plan["dataset"], "dim": plan["dim"],
               "grid": [len(plan["alphas"]), len(plan["betas"])], "steps": plan["steps"],
               "seeds": len(plan["seeds"]), "init_scales": plan["scales"].tolist(), "dtype": plan["dtype"],
               "counts": result.counts(), "sweep_seconds": round(t_sweep, 2),
               "config_steps_per_s": _rate(result.status.size * plan["steps"], t_sweep),
               "device": jax.devices()[0].platform, "engine": engine(config, problem, kernel=plan["kernel"]),
               "devices": devices_used(result.status.size, args.chunk_size)}
    prediction, scored = None, None
    if plan["theory"] is not None:
        t1 = time.perf_counter()
        prediction, scored, theory = _theory(config, problem64, result, plan)
        theory["theory_seconds"] = round(time.perf_counter() - t1, 2)
        summary.update(theory)
    _write(out, result, prediction, scored, summary, plotter)
    agreement = summary.get("theory_agreement")
    text = (f"sweep: {result.status.size} runs in {t_sweep:.1f}s, " +
            ", ".join(f"{v} {k}" for k, v in result.counts().items()) +
            (f"; theory_agreement {agreement:.4f}, coverage {summary['coverage']:.4f}" if agreement is not None
             else (f"; theory: {summary['theory']}" if "theory" in summary else "")) +
            f" -> {out}")
    emit(summary, args.json, text)
    return 0


def _rate(work: float, seconds: float):
    """Config-steps per second with 4 significant digits (None for a time too short to measure: no inf)."""
    return float(f"{work / seconds:.4g}") if seconds > 0 else None


def _theory(config, problem64, result, plan):
    """(prediction, score, the summary's theory fields) of :func:`sgtheory.linear.predict`."""
    import numpy as np

    from sgtheory.linear.agreement import score
    from sgtheory.linear.predict import KINDS, predict

    prediction = predict(config, problem64, result.alphas, result.betas, seeds=plan["seeds"],
                         init_scales=plan["scales"], steps=plan["steps"], method=plan["theory"],
                         start_dtype=plan["dtype"])
    if prediction.claim is not None:
        return prediction, None, {"theory": prediction.claim, "theory_method": prediction.method}
    scored = score(prediction, result.status, rel=plan["band"])
    table = prediction.table
    out = {"theory_method": prediction.method, "theory_agreement": scored["agreement"],
           "coverage": scored["coverage"], "n_counted": scored["n_counted"], "n_mismatch": scored["n_mismatch"],
           "n_undetermined": scored["n_undetermined"], "n_band": scored["n_band"], "band": scored["band"],
           **prediction.counts(),
           "fixed_points": {"found": int(np.sum(table["found"])), "sought": int(table["found"].size),
                            "kinds": sorted({KINDS[k] for k, f in zip(table["kind"], table["found"]) if f}),
                            "max_residual": _finite(np.max(table["residual"])),
                            "neutral_directions": [int(table["neutral"].min()), int(table["neutral"].max())]}}
    if "status" in scored:
        out["theory"] = scored["status"]
    return prediction, scored, out


def _finite(x):
    """A float for the JSON, or None where it is not finite (never NaN/inf in the output)."""
    import numpy as np

    x = float(x)
    return float(f"{x:.3g}") if np.isfinite(x) else None


def _write(out, result, prediction, scored, summary, plotter=None):
    """sweep.npz, sweep.json and (with a ``plotter``) phase_diagram.png of the first seed and init scale."""
    from sgtheory.io import savez, write_json

    arrays = result.arrays()
    if prediction is not None:
        arrays.update(prediction.arrays())
    if scored is not None:
        arrays.update(mismatch=scored["mismatch"], counted=scored["counted"])
    savez(out / "sweep.npz", arrays)
    write_json(out / "sweep.json", summary)
    if plotter is not None:
        plotter.draw(out / "sweep.npz", out / "phase_diagram.png")
