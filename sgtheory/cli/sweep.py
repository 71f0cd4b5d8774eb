"""``sgtheory sweep``: convergence phase diagram of a linear / deep linear model trained with SG.

Runs an α × β grid (× seeds × init scales) with :func:`sgtheory.linear.sweep`, linearises the joint
dynamics at its fixed point (:mod:`sgtheory.linear.theory`), and writes ``sweep.npz`` (coordinates,
verdicts, ρ), ``sweep.json`` (the summary) and ``phase_diagram.png`` (unless ``--no-plot``) into ``--out``.
"""

from __future__ import annotations

import contextlib
import time

from sgtheory.cli._plot_child import PlotChild

BAND_HELP = ("theory_agreement counts cells outside a ±5%% band around the predicted boundary: cells with "
             "|ρ−1| ≤ ln(1.05)·(|∂ρ/∂lnα|+|∂ρ/∂lnβ|) are left out (see --band)")


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="α×β convergence sweep of linear/deep linear SG training, with the linear-stability prediction",
        description="Sweep the main learning rate α and the SG learning rate β (log-spaced N×N grid, or explicit "
                    "lists) over seeds and init scales; classify each run as converged / not converged / diverged; "
                    "predict convergence from the spectral radius ρ of the update map's Jacobian at the fixed "
                    "point; write sweep.npz, sweep.json and phase_diagram.png. " + BAND_HELP + ".",
    )
    p.add_argument("--model", default="linear", help="linear or deep-linear (default linear)")
    p.add_argument("--depth", type=int, default=None, help="hidden layers of deep-linear (default 3)")
    p.add_argument("--width", type=int, default=10, help="hidden width (default 10)")
    p.add_argument("--sg", default="cond-linear", help="none (backprop), linear, cond-linear or mlp (default cond-linear)")
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
    p.add_argument("--no-theory", action="store_true", help="skip the linear-stability prediction")
    p.add_argument("--no-plot", action="store_true", help="skip phase_diagram.png (and the child process that draws it)")
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
    if explicit is not None:
        return positive_list(explicit, f"--{which}s")
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


def _run(args, plotter) -> int:
    from sgtheory.cli.main import emit
    from sgtheory.io import ensure_writable_dir
    from sgtheory.linear.datasets import DATASETS, make, target_for_loss
    from sgtheory.linear.sweep import KERNELS
    from sgtheory.validate import choice, int_in_range, positive, positive_list

    # validate everything before any work or any file
    config = _config(args)
    choice(args.dataset, "--dataset", DATASETS)
    dim = int_in_range(args.dim, "--dim", lo=1)
    n = int_in_range(args.n, "--n", lo=1)
    alphas, betas = _rates(args, "alpha"), _rates(args, "beta")
    steps = int_in_range(args.steps, "--steps", lo=1)
    seeds = list(range(int_in_range(args.seeds, "--seeds", lo=1)))
    scales = positive_list(args.init_scales, "--init-scales")
    tol = positive(args.tol, "--tol")
    band = positive(args.band, "--band")
    dtype_name = choice(args.dtype, "--dtype", ("float32", "float64"))
    choice(args.kernel, "--kernel", KERNELS)
    X, Y = make(args.dataset, dim, n, args.data_seed, target=target_for_loss(config.loss), noise=args.noise)
    out = ensure_writable_dir(args.out)
    if plotter is not None:
        layer = "" if config.sg == "none" else f" at layer {config.sg_layer}"
        plotter.prepare(alphas, betas, f"{config.model} (depth {config.depth}), {config.loss}, SG {config.sg}{layer}")

    import jax

    jax.config.update("jax_enable_x64", True)  # theory in float64; the sweep's dtype is explicit
    import jax.numpy as jnp

    from sgtheory.linear import from_samples
    from sgtheory.linear.sweep import devices_used, engine, sweep

    problem64 = from_samples(X, Y, dtype=jnp.float64)
    problem = problem64.astype(jnp.float32 if dtype_name == "float32" else jnp.float64)
    if not config.uses_samples:
        problem = problem.without_samples()
    t0 = time.perf_counter()
    result = sweep(config, problem, alphas, betas, seeds=seeds, init_scales=scales, steps=steps, tol=tol,
                   chunk_size=args.chunk_size, kernel=args.kernel)
    t_sweep = time.perf_counter() - t0
    summary = {"model": config.model, "depth": config.depth, "sg": config.sg, "sg_layer": config.sg_layer,
               "loss": config.loss, "dataset": args.dataset, "dim": dim, "grid": [len(alphas), len(betas)],
               "steps": steps, "seeds": len(seeds), "init_scales": scales.tolist(), "dtype": dtype_name,
               "counts": result.counts(), "sweep_seconds": round(t_sweep, 2),
               "config_steps_per_s": float(f"{result.status.size * steps / t_sweep:.4g}"),
               "device": jax.devices()[0].platform,
               "engine": engine(config, problem, kernel=args.kernel),
               "devices": devices_used(result.status.size, args.chunk_size)}
    rho, mismatch, theory = None, None, {}
    if not args.no_theory:
        t1 = time.perf_counter()
        theory, rho, mismatch = _theory(config, problem64, result, seeds[0], float(scales[0]), band)
        theory["theory_seconds"] = round(time.perf_counter() - t1, 2)
    summary.update(theory)
    _write(out, result, rho, mismatch, summary, plotter)
    text = (f"sweep: {result.status.size} runs in {t_sweep:.1f}s, " +
            ", ".join(f"{v} {k}" for k, v in result.counts().items()) +
            (f"; theory_agreement {summary['theory_agreement']:.4f}" if "theory_agreement" in summary else "") +
            f" -> {out}")
    emit(summary, args.json, text)
    return 0


def _theory(config, problem64, result, seed, scale, band):
    import math

    import jax
    import numpy as np

    from sgtheory.linear import init
    from sgtheory.linear.agreement import theory_agreement
    from sgtheory.linear.theory import exact_fixed_point, fixed_point, linearise, spectral_radius

    if config.sg_step != "fixed":
        return {"theory": "skipped: needs a fixed-rate SG step"}, None, None
    draw = lambda: init(config, problem64, key=jax.random.PRNGKey(seed), init_scale=scale)  # noqa: E731
    start = jax.eval_shape(draw)  # shapes only: a closed-form fixed point needs no random draw
    if sum(math.prod(v.shape) for v in jax.tree_util.tree_leaves(start)) > 3000:
        return {"theory": "skipped: more than 3000 parameters (Jacobian too large)"}, None, None
    if not exact_fixed_point(config):
        start = draw()  # the dynamics' fixed point depends on where they start
    fixed, residual = fixed_point(config, problem64, start)
    if not residual < 1e-8:
        return {"theory": f"skipped: no fixed point found from seed {seed}, scale {scale} "
                          f"(residual {residual:.3g})"}, None, None
    lin = linearise(config, problem64, fixed, residual=residual)
    rho = spectral_radius(lin, result.alphas[:, None], result.betas[None, :])
    agree = theory_agreement(result.status, rho, result.alphas, result.betas, rel=band)
    mismatch = agree.pop("mismatch")
    out = {"theory_agreement": round(agree.pop("agreement"), 5), **agree,
           "fixed_point_residual": float(f"{residual:.3g}"), "neutral_directions": lin.n_neutral,
           "predicted_converging_fraction": float(np.mean(rho < 1))}
    return out, rho, mismatch


def _write(out, result, rho, mismatch, summary, plotter=None):
    """sweep.npz, sweep.json and (with a ``plotter``) phase_diagram.png, the first seed and init scale."""
    from sgtheory.io import savez, write_json

    arrays = result.arrays()
    if rho is not None:
        arrays.update(rho=rho, mismatch=mismatch)
    savez(out / "sweep.npz", arrays)
    write_json(out / "sweep.json", summary)
    if plotter is not None:
        plotter.draw(out / "sweep.npz", out / "phase_diagram.png")
