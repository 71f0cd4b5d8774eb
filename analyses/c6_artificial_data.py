"""C6: backprop vs synthetic gradients on four artificial data sets (the paper's Appendix D design).

Table: 4 data sets × {2-D, 100-D} × {linear, deep linear (10 hidden layers)} × {MSE, log loss} × {BP, SG}:
final loss, its gap to the problem's optimum, and the distance between the SG and BP solutions (end-to-end
maps p = xW + b, so deep nets compare as functions). The paper's data sets, widths, rates and step counts are
unknown; ours are the four of :mod:`sgtheory.linear.datasets` and the options below. The SG is a
label-conditioned linear SG (hA + yB + C) with exact line-search steps, placed between the output and the
loss by default (--sg-layer: any activation index, ``output``, or ``all``). MSE runs use the population
moments and stop when the loss is within 1e-10 (relative) of the OLS loss or at --max-steps; log-loss runs
use the samples for a fixed --log-steps (their optimum may lie at infinity on separable data).
Expected: MSE → same solution (the SG can represent p − y exactly); log loss → a different one.
"""

from __future__ import annotations

import sys

import jax

jax.config.update("jax_enable_x64", True)  # 1e-6 relative agreement needs float64

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from sgtheory.repro import analysis_main  # noqa: E402

NAME = "c6_artificial_data"
CHUNK = 1000


def add_arguments(p):
    p.add_argument("--dims", default=None, help="input dimensions (default 2,100; quick 2,20)")
    p.add_argument("--depth", type=int, default=10, help="hidden layers of the deep linear model (default 10)")
    p.add_argument("--width", type=int, default=32, help="hidden width (default 32)")
    p.add_argument("--sg-layer", default="output", help="SG position: output (default), all, or an index 1..depth+1")
    p.add_argument("--rate", type=float, default=0.5, help="linear model: α = rate/λ_max(E[(x,1)ᵀ(x,1)]) (default 0.5)")
    p.add_argument("--deep-rate", type=float, default=0.06, help="deep linear model: α (default 0.06)")
    p.add_argument("--init-scale", type=float, default=0.8, help="deep linear init: W ~ s·N(0, 1/fan_in) (default 0.8)")
    p.add_argument("--max-steps", type=int, default=None, help="MSE step cap (default 100000; quick 30000)")
    p.add_argument("--log-steps", type=int, default=None, help="log-loss steps (default 20000; quick 2000)")
    p.add_argument("--n", type=int, default=None, help="samples per data set (default 2000; quick 500)")


def _run(run, cfg, pr, state, alpha, target, max_steps):
    """Chunks of CHUNK steps until loss ≤ target (None: run max_steps exactly); returns (state, steps)."""
    steps = 0
    while steps < max_steps:
        tr = run(cfg, pr, state, alpha)
        state, steps = tr.final, steps + CHUNK
        last = float(tr.loss[-1])
        if not np.isfinite(last) or (target is not None and last <= target):
            break
    return state, steps


def compute(args):
    from sgtheory.linear import datasets, effective, from_samples, init, loss, make_config, optimum, trajectory
    from sgtheory.validate import int_in_range, positive, positive_list

    dims = [int_in_range(d, "--dims", lo=1) for d in positive_list(args.dims or ("2,20" if args.quick else "2,100"),
                                                                     "--dims")]
    depth = int_in_range(args.depth, "--depth", lo=1)
    width = int_in_range(args.width, "--width", lo=1)
    layer = args.sg_layer if args.sg_layer in ("output", "all") else int_in_range(args.sg_layer, "--sg-layer", lo=1)
    max_steps = int_in_range(args.max_steps or (30_000 if args.quick else 100_000), "--max-steps", lo=CHUNK)
    log_steps = int_in_range(args.log_steps or (2000 if args.quick else 20_000), "--log-steps", lo=CHUNK)
    n = int_in_range(args.n or (500 if args.quick else 2000), "--n", lo=2)
    rate, deep_rate = positive(args.rate, "--rate"), positive(args.deep_rate, "--deep-rate")
    init_scale = positive(args.init_scale, "--init-scale")
    make_config("deep-linear", depth=depth, width=width, sg="cond-linear", sg_layer=layer)  # bad input fails now
    key = jax.random.PRNGKey(args.seed)
    run = jax.jit(lambda cfg, pr, st, a: trajectory(cfg, pr, st, a, 0.0, CHUNK, every=CHUNK), static_argnums=0)

    rows = []
    for dim in dims:
        for name in datasets.DATASETS:
            for loss_name in ("mse", "log"):
                X, Y = datasets.make(name, dim, n, args.seed, target=datasets.target_for_loss(loss_name))
                pr = from_samples(X, Y)
                if loss_name == "mse":
                    pr = pr.without_samples()
                for model in ("linear", "deep-linear"):
                    d = depth if model == "deep-linear" else 0
                    kw = dict(depth=d, width=width, loss=loss_name)
                    bp = make_config(model, sg="none", **kw)
                    sg = make_config(model, sg="cond-linear", sg_layer="output" if not d else layer,
                                     sg_step="line-search", **kw)
                    opt = optimum(bp, pr)
                    if d:
                        alpha = deep_rate
                    else:
                        mx = np.asarray(pr.mx)
                        G = np.block([[np.asarray(pr.Sxx), mx[:, None]], [mx[None, :], np.ones((1, 1))]])
                        alpha = rate / np.linalg.eigvalsh(G)[-1]
                    target = opt.loss * (1 + 1e-10) if loss_name == "mse" else None
                    cap = max_steps if loss_name == "mse" else log_steps
                    res = {}
                    for rule, cfg in (("bp", bp), ("sg", sg)):
                        state = init(cfg, pr, key=key, init_scale=init_scale if d else 1.0)
                        state, steps = _run(run, cfg, pr, state, alpha, target, cap)
                        res[rule] = (state, steps, float(loss(cfg, pr, state)))
                    (Wb, bb), (Ws, bs) = effective(res["bp"][0]), effective(res["sg"][0])
                    dist = float(jnp.sqrt(jnp.sum((Ws - Wb) ** 2) + jnp.sum((bs - bb) ** 2)))
                    scale = float(jnp.sqrt(jnp.sum(Wb ** 2) + jnp.sum(bb ** 2)))
                    lb, ls = res["bp"][2], res["sg"][2]
                    rows.append({"dataset": name, "dim": dim, "model": model, "loss": loss_name, "alpha": alpha,
                                 "bp_loss": lb, "sg_loss": ls, "opt_loss": opt.loss,
                                 "bp_steps": res["bp"][1], "sg_steps": res["sg"][1],
                                 "rel_loss_diff": abs(ls - lb) / max(abs(lb), 1e-300),
                                 "distance": dist, "rel_distance": dist / max(scale, 1e-300)})
    meta = {"rows": rows, "dims": dims, "depth": depth, "width": width, "sg_layer": layer, "rate": rate,
            "deep_rate": deep_rate, "init_scale": init_scale, "max_steps": max_steps, "log_steps": log_steps,
            "n": n, "sg": "cond-linear, line-search"}
    return {"rel_loss_diff": np.asarray([r["rel_loss_diff"] for r in rows]),
            "rel_distance": np.asarray([r["rel_distance"] for r in rows])}, meta


def _table(rows) -> str:
    head = ("| data set | dim | model | loss | BP loss | SG loss | optimum | |SG−BP|/BP loss | ‖SG−BP‖/‖BP‖ "
            "| steps BP/SG |\n|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['dataset']} | {r['dim']} | {r['model']} | {r['loss']} | {r['bp_loss']:.6g} | {r['sg_loss']:.6g} "
        f"| {r['opt_loss']:.6g} | {r['rel_loss_diff']:.1e} | {r['rel_distance']:.1e} "
        f"| {r['bp_steps']}/{r['sg_steps']} |\n" for r in rows)


def plot(arrays, meta, out):
    from sgtheory.io import savefig, write_text
    from sgtheory.linear.datasets import plot_datasets
    from sgtheory.plotting import figure

    rows = meta["rows"]
    write_text(out / f"{NAME}.md", _table(rows))
    with figure(1, 4, figsize=(15, 3.4), layout="constrained") as (fig, axes):
        plot_datasets(seed=0, axes=axes)
        savefig(fig, out / "c6_datasets.png")
    with figure(1, 2, figsize=(10, 3.6)) as (fig, (ax1, ax2)):
        labels = [f"{r['dataset'][:4]} {r['dim']} {'lin' if r['model'] == 'linear' else 'deep'}" for r in rows]
        for ax, loss_name in ((ax1, "mse"), (ax2, "log")):
            sel = [i for i, r in enumerate(rows) if r["loss"] == loss_name]
            x = np.arange(len(sel))
            ax.semilogy(x, np.maximum(arrays["rel_loss_diff"][sel], 1e-17), "o", label="|SG − BP| / BP loss")
            ax.semilogy(x, np.maximum(arrays["rel_distance"][sel], 1e-17), "s", label="‖SG − BP‖ / ‖BP‖ (map)")
            ax.axhline(1e-6, color="k", lw=0.8, ls=":")
            ax.set_xticks(x, [labels[i] for i in sel], rotation=70, fontsize=6)
            ax.set_title(f"{loss_name}: SG vs BP solutions")
        ax1.legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    mse = [r for r in rows if r["loss"] == "mse"]
    log = [r for r in rows if r["loss"] == "log"]
    return {"rows": len(rows), "mse_max_rel_loss_diff": max(r["rel_loss_diff"] for r in mse),
            "mse_all_agree_1e-6": all(r["rel_loss_diff"] < 1e-6 for r in mse),
            "mse_max_rel_distance": max(r["rel_distance"] for r in mse),
            "log_min_rel_distance": min(r["rel_distance"] for r in log),
            "log_median_rel_distance": float(np.median([r["rel_distance"] for r in log])),
            "table": str(out / f"{NAME}.md")}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
