"""C2: an SG that cannot represent ∂L/∂h adds critical points; a non-linear SG closes the gap.

Logistic regression p = xW + b (sigmoid cross-entropy) on a non-separable data set, trained with backprop,
with a linear SG at the output (hA + C, and label-conditioned hA + yB + C; exact line-search SG steps — a
fixed β diverges as |p| grows, since the SG loss's curvature E[p²] grows with it) and with a small MLP SG
(one ReLU layer, fixed β). ∂L/∂p = σ(p) − y is not linear in p, so the joint system with a linear SG
stops where E[SG·x] = 0 but E[(σ(p) − y)·x] ≠ 0. Measured at the end: the true log-loss gradient norm, the
joint field's norm, the excess loss and the distance to the log-loss optimum (L-BFGS). Settings (the
paper's are unknown): --dataset blobs in 2-D, 500 samples, α = 0.2 (0.1 with the MLP SG), β = 0.1,
MLP width --hidden.
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

NAME = "c2_log_loss_sg"
RULES = (  # label, sg variant, sg step, alpha, beta
    ("backprop", "none", "fixed", 0.2, 0.0),
    ("linear SG hA+C", "linear", "line-search", 0.2, 0.0),
    ("cond. linear SG hA+yB+C", "cond-linear", "line-search", 0.2, 0.0),
    ("MLP SG", "mlp", "fixed", 0.1, 0.1),
)


SETTINGS = (
    Setting("dataset", "str", full="blobs", choices=("teacher", "blobs", "xor", "correlated"),
            help="data set (blobs: overlapping, finite optimum)"),
    Setting("dim", "int", full=2, lo=1, hi=10000, help="input dimension (needs ≥ 2 for a gap)"),
    Setting("steps", "int", full=40000, quick=4000, lo=100, help="training steps"),
    Setting("hidden", "int", full=32, lo=1, hi=65536, help="MLP SG hidden width"),
)


def compute(args):
    from sgtheory.linear import critical, datasets, from_samples, init, make_config, optimum, trajectory
    from sgtheory.linear.sg import apply_sg
    steps = args.steps
    every = steps // 100
    steps -= steps % every
    hidden = args.hidden
    X, Y = datasets.make(args.dataset, args.dim, 500, args.seed, target="classes")
    pr = from_samples(X, Y)
    key = jax.random.PRNGKey(args.seed)
    arrays, rows = {}, []
    p_grid = jnp.linspace(-6.0, 6.0, 121)[:, None]
    opt = optimum(make_config("linear", loss="log", sg="none"), pr)
    for i, (label, sg, sg_step, alpha, beta) in enumerate(RULES):
        cfg = make_config("linear", loss="log", sg=sg, sg_step=sg_step, sg_hidden=hidden)
        tr = trajectory(cfg, pr, init(cfg, pr, key=key), alpha, beta, steps, every=every)
        state = tr.final
        W, b = state.net[0]["W"], state.net[0]["b"]
        g_net, g_sg = critical.joint_gradient_norm(cfg, pr, state)
        arrays[f"gap_{i}"] = np.asarray(tr.loss) - opt.loss
        if sg != "none":
            u = jnp.ones((p_grid.shape[0],))
            for c in (0, 1):
                arrays[f"sg_{i}_y{c}"] = np.asarray(apply_sg(state.sg[0], p_grid, jnp.full_like(p_grid, c), u))[:, 0]
        rows.append({"rule": label, "alpha": alpha, "beta": beta, "final_loss": float(tr.loss[-1]),
                     "excess_loss": float(tr.loss[-1]) - opt.loss,
                     "true_grad": float(critical.bp_gradient_norm(cfg, pr, state)),
                     "joint_grad_net": float(g_net), "joint_grad_sg": float(g_sg),
                     "distance": float(jnp.sqrt(jnp.sum((W - opt.W) ** 2) + jnp.sum((b - opt.b) ** 2)))})
    arrays["t"] = np.asarray(tr.t)
    arrays["p_grid"] = np.asarray(p_grid[:, 0])
    meta = {"rows": rows, "steps": steps, "dataset": args.dataset, "dim": args.dim, "n": 500, "hidden": hidden,
            "opt_loss": opt.loss, "labels": [r[0] for r in RULES]}
    return arrays, meta


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    t, p = arrays["t"], arrays["p_grid"]
    with figure(1, 2, figsize=(10.5, 3.8)) as (fig, (ax1, ax2)):
        colors = {}
        for i, label in enumerate(meta["labels"]):
            (line,) = ax1.loglog(t[1:], np.maximum(arrays[f"gap_{i}"][1:], 1e-16), label=label)
            colors[i] = line.get_color()
        ax1.set(xlabel="step", ylabel="L − L*  (log loss)",
                title=f"C2: excess log loss, {meta['dataset']} {meta['dim']}-D")
        ax1.legend(fontsize=7)
        sig = 1.0 / (1.0 + np.exp(-p))
        for c, ls in ((0, "-"), (1, "--")):
            ax2.plot(p, sig - c, color="k", ls=ls, lw=2, label=f"σ(p) − y, y = {c}")
            for i in range(1, len(meta["labels"])):
                ax2.plot(p, arrays[f"sg_{i}_y{c}"], color=colors[i], ls=ls, lw=1)
        ax2.set(xlabel="output p", ylabel="∂L/∂p", title="true gradient (black) vs final SG (colours)",
                ylim=(-1.5, 1.5))
        ax2.legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    by = {r["rule"]: r for r in meta["rows"]}
    lin = by["cond. linear SG hA+yB+C"]
    mlp = by["MLP SG"]
    return {"cond_linear_true_grad": lin["true_grad"], "cond_linear_joint_grad": lin["joint_grad_net"],
            "cond_linear_excess_loss": lin["excess_loss"], "linear_excess_loss": by["linear SG hA+C"]["excess_loss"],
            "mlp_true_grad": mlp["true_grad"], "mlp_excess_loss": mlp["excess_loss"],
            "bp_excess_loss": by["backprop"]["excess_loss"]}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
