"""C5: deep linear models trained with synthetic gradients converge (MSE).

Deep linear nets (--depths hidden layers of --width units) on a regression data set, trained with backprop,
with one label-conditioned linear SG at the middle hidden layer, and with SGs at every layer (bootstrapped
targets: each module regresses onto SG_{i+1}·∂h_{i+1}/∂h_i, only the top one sees the true gradient), each
SG with a fixed rate β and with exact line-search steps. Measured: the excess loss over the global
(least-squares) optimum along training and the distance of the end-to-end map to the OLS solution.
Settings (the paper gives none): --dataset teacher in --dim 10, width 16, init W ~ 0.8·N(0, 1/fan_in),
α = --alpha, β = --beta, population moments (float64).
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np

from sgtheory.settings import Setting

NAME = "c5_deep_linear"
RULES = (  # label, sg, where ("mid" or "all"), sg step
    ("backprop", "none", "mid", "fixed"),
    ("SG at middle layer, fixed β", "cond-linear", "mid", "fixed"),
    ("SG at middle layer, line search", "cond-linear", "mid", "line-search"),
    ("SG at every layer, fixed β", "cond-linear", "all", "fixed"),
    ("SG at every layer, line search", "cond-linear", "all", "line-search"),
)


SETTINGS = (
    Setting("dataset", "str", full="teacher", choices=("teacher", "blobs", "xor", "correlated"),
            help="regression data set"),
    Setting("dim", "int", full=10, lo=1, hi=10000, help="input dimension"),
    Setting("depths", "ints", full=(1, 3, 5, 10), quick=(1, 3), lo=1, hi=50, help="hidden-layer counts"),
    Setting("width", "int", full=16, lo=1, hi=4096, help="hidden width"),
    Setting("steps", "int", full=50000, quick=4000, lo=100, help="steps"),
    Setting("alpha", "float", full=0.02, above=0, help="main rate α"),
    Setting("beta", "float", full=0.05, above=0, help="fixed SG rate β"),
)


def compute(args):
    from sgtheory.linear import datasets, effective, from_samples, init, make_config, optimum, trajectory
    depths = list(args.depths)
    steps = args.steps
    every = steps // 100
    steps -= steps % every
    alpha, beta, width = args.alpha, args.beta, args.width
    X, Y = datasets.make(args.dataset, args.dim, 1000, args.seed)
    pr = from_samples(X, Y).without_samples()
    key = jax.random.PRNGKey(args.seed)
    run = jax.jit(lambda cfg, st: trajectory(cfg, pr, st, alpha, beta, steps, every=every), static_argnums=0)
    arrays, rows = {}, []
    for depth in depths:
        for i, (label, sg, where, sg_step) in enumerate(RULES):
            layer = "all" if where == "all" else (depth + 2) // 2
            cfg = make_config("deep-linear", depth=depth, width=width, sg=sg, sg_layer=layer, sg_step=sg_step)
            opt = optimum(cfg, pr)
            tr = run(cfg, init(cfg, pr, key=key, init_scale=0.8))
            W, b = effective(tr.final)
            gap = (np.asarray(tr.loss) - opt.loss) / opt.loss
            arrays[f"gap_{depth}_{i}"] = gap
            rows.append({"depth": depth, "rule": label, "sg_layer": layer if sg != "none" else None,
                         "final_rel_excess_loss": float(gap[-1]),
                         "distance_to_ols": float(jnp.sqrt(jnp.sum((W - opt.W) ** 2) + jnp.sum((b - opt.b) ** 2))),
                         "steps_to_1e-6": int(np.argmax(gap < 1e-6) * every) if np.any(gap < 1e-6) else None})
    arrays["t"] = np.asarray(tr.t)
    meta = {"rows": rows, "depths": depths, "width": width, "steps": steps, "alpha": alpha, "beta": beta,
            "dataset": args.dataset, "dim": args.dim, "labels": [r[0] for r in RULES]}
    return arrays, meta


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    depths, t = meta["depths"], arrays["t"]
    with figure(1, len(depths), figsize=(3.6 * len(depths), 3.6), squeeze=False) as (fig, axes):
        for ax, depth in zip(axes[0], depths):
            for i, label in enumerate(meta["labels"]):
                ax.loglog(t + 1, np.maximum(arrays[f"gap_{depth}_{i}"], 1e-16), label=label,
                          ls="-" if i in (0, 1, 3) else "--")
            ax.set(xlabel="step + 1", title=f"{depth} hidden layer{'s' if depth > 1 else ''}")
        axes[0][0].set_ylabel("(L − L*) / L*")
        axes[0][0].legend(fontsize=6)
        savefig(fig, out / f"{NAME}.png")
    return {"max_final_rel_excess_loss": max(r["final_rel_excess_loss"] for r in meta["rows"]),
            "max_distance_to_ols": max(r["distance_to_ols"] for r in meta["rows"]),
            "runs": len(meta["rows"]), "all_below_1e-6": all(r["final_rel_excess_loss"] < 1e-6 for r in meta["rows"])}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
