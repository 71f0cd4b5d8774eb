"""C1: adding an SG does not remove critical points (Czarnecki et al. 2017, section 3.1).

Start the joint (model, SG) dynamics at (θ*, SG*): θ* a critical point of the original MSE problem (a
global minimum built in closed form: random layers below, least-squares top layer; or, for deep linear
nets, the saddle at zero), SG* the label-conditioned linear SG refitted there by least squares (exact for
MSE). Cases: a linear model with an SG at the output; a deep linear net with one SG at a middle layer and
with SGs at every layer (bootstrapped); the deep saddle with SGs at every layer; backprop for reference.
Measured: ‖∂L/∂θ‖, the joint field's norm, and the parameter drift over --steps (expected: round-off).
Dashed: the same started 1e-6 away (whether the critical point attracts or repels). Negative control: the
log-loss optimum with a linear SG, which cannot output σ(p) − y, is not a joint critical point and drifts.
Settings (the paper gives none): data set --dataset in --dim dimensions, hidden width 8, depth 3,
α = β = --rate.
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import jax

jax.config.update("jax_enable_x64", True)  # drift is compared with float64 round-off

import jax.numpy as jnp
import numpy as np

from sgtheory.settings import Setting

NAME = "c1_critical_points"
CASES = (  # label, model, sg, sg_layer, where
    ("linear, SG at output", "linear", "cond-linear", "output", "optimum"),
    ("deep, SG at layer 2", "deep-linear", "cond-linear", 2, "optimum"),
    ("deep, SG at every layer", "deep-linear", "cond-linear", "all", "optimum"),
    ("deep saddle (0), SG every layer", "deep-linear", "cond-linear", "all", "zero"),
    ("deep, backprop", "deep-linear", "none", "output", "optimum"),
)


SETTINGS = (
    Setting("dataset", "str", full="teacher", choices=("teacher", "blobs", "xor", "correlated"), help="data set"),
    Setting("dim", "int", full=5, lo=1, hi=10000, help="input dimension"),
    Setting("steps", "int", full=5000, quick=1000, lo=100, help="steps of joint dynamics"),
    Setting("rate", "float", full=0.01, above=0, help="α = β"),
)


def compute(args):
    from sgtheory.linear import critical, datasets, fit_sg, from_samples, init, make_config, optimum
    from sgtheory.linear.rules import State
    steps = args.steps
    every = steps // 50
    steps -= steps % every
    rate = args.rate
    X, Y = datasets.make(args.dataset, args.dim, 500, args.seed)
    pr = from_samples(X, Y).without_samples()
    key = jax.random.PRNGKey(args.seed)
    arrays, rows = {}, []
    for i, (label, model, sg, layer, where) in enumerate(CASES):
        cfg = make_config(model, depth=3 if model == "deep-linear" else 0, width=8, sg=sg, sg_layer=layer)
        state = critical.critical_state(cfg, pr, key=key, where=where)
        noise_key = jax.random.fold_in(key, 7)
        noise = jax.tree_util.tree_map(lambda a, k=noise_key: 1e-6 / np.sqrt(a.size) *
                                       jax.random.normal(k, a.shape, a.dtype), state)
        near = jax.tree_util.tree_map(jnp.add, state, noise)
        exact = critical.drift(cfg, pr, state, rate, rate, steps, every=every)
        pert = critical.drift(cfg, pr, near, rate, rate, steps, every=every)
        g_net, g_sg = critical.joint_gradient_norm(cfg, pr, state)
        arrays[f"exact_{i}"] = np.hypot(exact.net, exact.sg)
        arrays[f"perturbed_{i}"] = np.hypot(pert.net, pert.sg)
        rows.append({"case": label, "bp_grad": float(critical.bp_gradient_norm(cfg, pr, state)),
                     "joint_grad_net": float(g_net), "joint_grad_sg": float(g_sg),
                     "max_drift": float(np.max(arrays[f"exact_{i}"])),
                     "perturbed_final": float(arrays[f"perturbed_{i}"][-1])})
    arrays["t"] = np.asarray(exact.t)

    # negative control: the log-loss optimum, with the best linear SG there, is not a joint critical point
    Xc, Yc = datasets.make(args.dataset, args.dim, 500, args.seed, target="classes")
    prc = from_samples(Xc, Yc)
    cfg = make_config("linear", loss="log", sg="cond-linear", sg_step="line-search")
    opt = optimum(cfg, prc)
    base = init(cfg, prc, key=key)
    state = fit_sg(cfg, prc, State(({"W": jnp.asarray(opt.W), "b": jnp.asarray(opt.b)},), base.sg))
    neg = critical.drift(cfg, prc, state, rate, 0.0, steps, every=every)
    g_net, g_sg = critical.joint_gradient_norm(cfg, prc, state)
    arrays["negative"] = np.asarray(neg.net)
    rows.append({"case": "log loss optimum, linear SG (control)",
                 "bp_grad": float(critical.bp_gradient_norm(cfg, prc, state)),
                 "joint_grad_net": float(g_net), "joint_grad_sg": float(g_sg),
                 "max_drift": float(np.max(neg.net)), "perturbed_final": None})
    meta = {"rows": rows, "steps": steps, "rate": rate, "dataset": args.dataset, "dim": args.dim,
            "depth": 3, "width": 8, "labels": [c[0] for c in CASES]}
    return arrays, meta


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    t = arrays["t"]
    with figure(figsize=(6.5, 4)) as (fig, ax):
        for i, label in enumerate(meta["labels"]):
            (line,) = ax.loglog(t[1:], np.maximum(arrays[f"exact_{i}"][1:], 1e-18), label=label)
            ax.loglog(t[1:], np.maximum(arrays[f"perturbed_{i}"][1:], 1e-18), ls="--", color=line.get_color())
        ax.loglog(t[1:], np.maximum(arrays["negative"][1:], 1e-18), color="k", lw=2,
                  label=meta["rows"][-1]["case"])
        ax.set(xlabel="step", ylabel="‖(θ, ψ)_t − (θ, ψ)_0‖",
               title=f"C1: drift from (θ*, SG*)   (dashed: started 1e-6 away), α = β = {meta['rate']}")
        ax.legend(fontsize=7, loc="center right")
        savefig(fig, out / f"{NAME}.png")
    exact = [r for r in meta["rows"] if r["perturbed_final"] is not None]
    return {"max_drift_at_critical_points": max(r["max_drift"] for r in exact),
            "max_joint_grad": max(max(r["joint_grad_net"], r["joint_grad_sg"]) for r in exact),
            "control_drift": meta["rows"][-1]["max_drift"], "control_true_grad": meta["rows"][-1]["bp_grad"],
            "control_joint_grad_net": meta["rows"][-1]["joint_grad_net"]}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
