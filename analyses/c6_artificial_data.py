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

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import jax

jax.config.update("jax_enable_x64", True)  # 1e-6 relative agreement needs float64

import jax.numpy as jnp
import numpy as np

from sgtheory.settings import Setting

NAME = "c6_artificial_data"
CHUNK = 1000


SETTINGS = (
    Setting("dims", "ints", full=(2, 100), quick=(2, 20), lo=1, hi=10000, help="input dimensions"),
    Setting("depth", "int", full=10, lo=1, hi=50, help="hidden layers of the deep linear model"),
    Setting("width", "int", full=32, lo=1, hi=4096, help="hidden width"),
    Setting("sg_layer", "str", full="output", help="SG position: output, all, or an index 1..depth+1"),
    Setting("rate", "float", full=0.5, above=0, help="linear model: α = rate/λ_max(E[(x,1)ᵀ(x,1)])"),
    Setting("deep_rate", "float", full=0.06, above=0, help="deep linear model: α"),
    Setting("init_scale", "float", full=0.8, above=0, help="deep linear init: W ~ s·N(0, 1/fan_in)"),
    Setting("max_steps", "int", full=100_000, quick=30_000, lo=CHUNK, help="MSE step cap"),
    Setting("log_steps", "int", full=20_000, quick=2000, lo=CHUNK, help="log-loss steps"),
    Setting("n", "int", full=2000, quick=500, lo=2, hi=10**7, help="samples per data set"),
)


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
    from sgtheory.validate import int_in_range

    dims, depth, width, n = list(args.dims), args.depth, args.width, args.n
    layer = args.sg_layer if args.sg_layer in ("output", "all") else int_in_range(args.sg_layer, "--sg-layer", lo=1)
    max_steps, log_steps = args.max_steps, args.log_steps
    rate, deep_rate, init_scale = args.rate, args.deep_rate, args.init_scale
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
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
