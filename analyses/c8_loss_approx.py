"""C8: the layers below a synthetic gradient descend a model of the loss (Czarnecki et al. 2017, §3).

Linear part (float64): a deep linear net x → h = xW₁ + b₁ → p = hW₂ + b₂ with MSE on one-hot targets of a
3-class Gaussian mixture, trained with a label-conditioned linear SG at h (SG(h, y) = hA + yB + C,
sgtheory.linear rules, full batch). At every recorded step t we compare, for the move h_t → h_{t+e}:
the SG line integral (what the layers below descend) and the implied-loss change (its symmetric part)
against the true loss change with the layers above held at step t; the antisymmetric share ‖A_a‖/‖A‖; slices
of implied and true loss along a random direction; and the true loss at the implied per-class minimisers h*(y).

MNIST-5k part: a ReLU MLP trained with a linear cSG at hidden layer k (sgtheory.nets). Between snapshots
t → t' of the same run (per test sample) and between pairs of same-class test samples at the end, the SG
line integral is compared with the true cross-entropy difference of the layers above.
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import jax

jax.config.update("jax_enable_x64", True)  # the linear part runs in float64; the nets ask for float32

import numpy as np

from sgtheory.settings import Setting

NAME = "c8_loss_approx"


SETTINGS = (
    Setting("steps", "int", full=3000, quick=1500, lo=3, help="linear-model steps, each recorded"),
    Setting("n_mixture", "int", full=600, quick=300, lo=10, hi=10**6,
            help="samples of the linear model's mixture data"),
    Setting("alpha", "float", full=0.02, above=0, help="main learning rate of the linear model"),
    Setting("beta", "float", full=0.05, above=0, help="SG learning rate of the linear model"),
    Setting("net_steps", "ints", full=(100, 200, 400, 800, 1600), quick=(50, 100, 200, 400), lo=1,
            help="MNIST snapshot steps"),
    Setting("depth", "int", full=6, quick=4, lo=2, hi=50, help="MNIST net hidden layers"),
    Setting("width", "int", full=256, quick=64, lo=1, hi=65536, help="MNIST net width"),
    Setting("sg_layer", "int", full=None, optional=True, lo=1, help="hidden layer of the cSG (none: depth // 2)"),
    Setting("n_test", "int", full=1000, quick=300, lo=10, hi=5000, help="MNIST test samples probed"),
)


def _mixture(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = 1.5 * rng.normal(size=(k, d)) / np.sqrt(d) * 2.0
    labels = rng.integers(0, k, n)
    return centres[labels] + rng.normal(size=(n, d)), np.eye(k)[labels]


def _linear_part(args):
    import jax.numpy as jnp

    from sgtheory.linear import from_samples, init, make_config, surrogate, trajectory
    from sgtheory.linear.rules import forward
    from sgtheory.represent.sg_probes import (
        implied_loss_fn,
        linear_sg_fn,
        linear_sg_probe,
        loss_change_correlation,
        trajectory_loss_changes,
    )
    steps = args.steps
    every = 1  # every step recorded: the SG that moved h over step t is exactly the one recorded at t
    alpha, beta = args.alpha, args.beta
    X, Y = _mixture(args.n_mixture, 10, 3, args.seed)
    problem = from_samples(X, Y)
    config = make_config("deep-linear", depth=1, width=8, loss="mse", sg="cond-linear", sg_layer=1)
    state0 = init(config, problem, key=jax.random.PRNGKey(args.seed))
    traj = trajectory(config, problem, state0, alpha, beta, steps, every=every, record_states=True)
    u = jnp.ones((X.shape[0],))
    n_rec = traj.t.shape[0]
    recs = [jax.tree_util.tree_map(lambda a, r=r: a[r], traj.states) for r in range(n_rec)]
    hs = np.stack([np.asarray(forward(s.net, jnp.asarray(X), u)[1]) for s in recs])
    sgp = [(np.asarray(s.sg[0]["A"]), np.asarray(s.sg[0]["B"]), np.asarray(s.sg[0]["C"])) for s in recs]

    def true_loss(s):
        W, b = np.asarray(s.net[1]["W"]), np.asarray(s.net[1]["b"])
        return lambda h, y: 0.5 * np.sum((h @ W + b - y) ** 2, axis=1)

    losses = [true_loss(s) for s in recs[:-1]]
    line = trajectory_loss_changes([linear_sg_fn(*p) for p in sgp[:-1]], losses, hs, Y, n_points=1)
    sym = np.array([np.mean(implied_loss_fn(*sgp[t])(hs[t + 1], Y) - implied_loss_fn(*sgp[t])(hs[t], Y))
                    for t in range(n_rec - 1)])
    sym_cmp = loss_change_correlation(sym, line.true)
    share = np.array([float(surrogate.non_gradient_share(p[0])) for p in sgp])
    # slices through the final and the middle state along one random unit direction (same for all samples)
    v = np.random.default_rng(args.seed + 1).normal(size=hs.shape[2])
    v /= np.linalg.norm(v)
    grid = np.linspace(-2.0, 2.0, 41)
    slices = {}
    for tag, r in (("mid", n_rec // 8), ("end", n_rec - 1)):
        lt, li = true_loss(recs[r]), implied_loss_fn(*sgp[r])
        slices[tag] = np.array([[np.mean(lt(hs[r] + s * v, Y) - lt(hs[r], Y)),
                                 np.mean(li(hs[r] + s * v, Y) - li(hs[r], Y))] for s in grid])
    probe = linear_sg_probe(*sgp[-1])
    h_star_loss = true_loss(recs[-1])(probe.h_star, np.eye(3))
    arrays = {"t": np.asarray(traj.t), "loss": np.asarray(traj.loss), "sg_loss": np.asarray(traj.sg_loss),
              "lin_true": line.true, "lin_line": line.implied, "lin_sym": sym, "lin_share": share,
              "slice_grid": grid, "slice_mid": slices["mid"], "slice_end": slices["end"],
              "lin_h_star_loss": h_star_loss, "lin_mid_t": np.asarray(traj.t[n_rec // 8])}
    meta = {"linear": {"steps": steps, "every": every, "alpha": alpha, "beta": beta, "n": X.shape[0], "d": 10,
                       "width": 8, "classes": 3, "sg": "cond-linear at the hidden layer", "loss": "mse",
                       "corr_line": line.correlation, "corr_sym": sym_cmp.correlation,
                       "sign_agreement": line.sign_agreement, "share_end": float(share[-1]),
                       "share_max": float(share.max()), "convex_end": probe.convex}}
    return arrays, meta


def _net_part(args):
    from sgtheory.data import load
    from sgtheory.nets import MLPConfig, forward, methods, train
    from sgtheory.represent.layerwise import label_ordered_sample
    from sgtheory.represent.sg_probes import compare_line_integral, net_sg_probe
    from sgtheory.validate import int_in_range

    snaps = sorted(args.net_steps)
    depth, width = args.depth, args.width
    k = int_in_range(depth // 2 if args.sg_layer is None else args.sg_layer, "--sg-layer", lo=1, hi=depth - 1)
    data = load("mnist5k", seed=args.seed)
    idx = label_ordered_sample(data.y_test, args.n_test, seed=args.seed)
    x, y = data.x_test[idx], np.eye(10)[data.y_test[idx]]
    config = MLPConfig(784, 10, depth=depth, width=width)
    method = methods.get("csg", layer=k)
    snapshots = []
    for s in snaps:  # same seed: each run's first steps are exactly the shorter runs
        res = train(data, config, method, steps=s, batch_size=128, lr=1e-3, eval_every=s, seed=args.seed,
                    show_progress=False)
        probe = net_sg_probe(res.params, config, res.method_state.learned[str(k)], k, bn_state=res.bn_state)
        h = np.asarray(forward(res.params, x.astype(np.float32), config, state=res.bn_state or None)[1][k - 1],
                       dtype=np.float64)
        snapshots.append((s, probe, h, float(res.metrics["test_error"][-1])))
    imp, tru, orc = [], [], []
    for (_, p0, h0, _), (_, _, h1, _) in zip(snapshots[:-1], snapshots[1:]):
        c = compare_line_integral(p0.sg, p0.loss, h0, h1, y)
        imp.append(c.implied)
        tru.append(c.true)
        # ReLU makes the integrand piecewise smooth: 64 Gauss nodes keep the oracle's quadrature error small
        orc.append(np.max(np.abs(compare_line_integral(p0.grad, p0.loss, h0, h1, y, n_points=64).implied - c.true)))
    _, p_end, h_end, err_end = snapshots[-1]
    rng = np.random.default_rng(args.seed)
    labels = data.y_test[idx]
    partner = np.array([rng.choice(np.flatnonzero(labels == c)) for c in labels])
    pairs = compare_line_integral(p_end.sg, p_end.loss, h_end, h_end[partner], y)
    arrays = {"net_train_implied": np.concatenate(imp), "net_train_true": np.concatenate(tru),
              "net_train_step": np.repeat(np.arange(len(imp)), [a.size for a in imp]),
              "net_pair_implied": pairs.implied, "net_pair_true": pairs.true, "net_snaps": np.array(snaps),
              "net_test_error": np.array([s[3] for s in snapshots])}
    meta = {"net": {"dataset": "mnist5k", "depth": depth, "width": width, "sg_layer": k, "method": "csg (linear)",
                    "snapshots": snaps, "n_test": int(idx.size), "final_test_error": err_end,
                    "oracle_max_abs_error": float(max(orc))}}
    return arrays, meta


def compute(args):
    a1, m1 = _linear_part(args)
    a2, m2 = _net_part(args)
    return {**a1, **a2}, {**m1, **m2}


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure
    from sgtheory.represent.sg_probes import loss_change_correlation

    lin, net = meta["linear"], meta["net"]
    train = loss_change_correlation(arrays["net_train_implied"], arrays["net_train_true"])
    pairs = loss_change_correlation(arrays["net_pair_implied"], arrays["net_pair_true"])
    with figure(2, 3, figsize=(13, 7.2)) as (fig, ax):
        t = arrays["t"]
        ax[0, 0].plot(t[1:], np.cumsum(arrays["lin_true"]), label="true loss change (layers above fixed)")
        ax[0, 0].plot(t[1:], np.cumsum(arrays["lin_line"]), "--", label="SG line integral")
        ax[0, 0].plot(t[1:], np.cumsum(arrays["lin_sym"]), ":", label="implied loss (symmetric part)")
        ax[0, 0].set(xlabel="step", ylabel="cumulative change", xscale="log",
                     title="linear net: loss change from the layers below the SG")
        ax[0, 0].legend()
        ax[0, 1].scatter(arrays["lin_true"], arrays["lin_line"], s=6,
                         label=f"SG line integral (r={lin['corr_line']:.3f})")
        ax[0, 1].scatter(arrays["lin_true"], arrays["lin_sym"], s=6, marker="x",
                         label=f"implied loss, symmetric part (r={lin['corr_sym']:.3f})")
        _diag(ax[0, 1])
        ax[0, 1].set(xlabel="true loss change per step", ylabel="implied change", title="linear net: per-step changes")
        ax[0, 1].set_xscale("symlog", linthresh=1e-4)
        ax[0, 1].set_yscale("symlog", linthresh=1e-4)
        ax[0, 1].legend()
        ax2 = ax[0, 2]
        ax2.plot(t, arrays["lin_share"])
        ax2.set(xlabel="step", ylabel="‖A_a‖/‖A‖", title="antisymmetric (non-gradient) share of the SG")
        g = arrays["slice_grid"]
        for tag, style in (("mid", ":"), ("end", "-")):
            sl = arrays[f"slice_{tag}"]
            when = int(arrays["lin_mid_t"]) if tag == "mid" else int(t[-1])
            ax[1, 0].plot(g, sl[:, 0], style, color="C0", label=f"true, step {when}")
            ax[1, 0].plot(g, sl[:, 1], style, color="C1", label=f"implied, step {when}")
        ax[1, 0].set(xlabel="s (h + s·v, v random unit)", ylabel="loss − loss(s=0)", title="linear net: slices")
        ax[1, 0].legend()
        ax[1, 1].scatter(arrays["net_train_true"], arrays["net_train_implied"], s=4, c=arrays["net_train_step"],
                         cmap="viridis")
        _diag(ax[1, 1])
        ax[1, 1].set(xlabel="true CE change (per sample)", ylabel="SG line integral",
                     title=f"MNIST-5k, cSG at h{net['sg_layer']}: between snapshots\n"
                           f"(Pearson {train.correlation:.2f}, Spearman {train.rank_correlation:.2f})")
        ax[1, 2].scatter(arrays["net_pair_true"], arrays["net_pair_implied"], s=4)
        _diag(ax[1, 2])
        ax[1, 2].set(xlabel="true CE difference", ylabel="SG line integral",
                     title=f"MNIST-5k: same-class pairs at the end\n"
                           f"(Pearson {pairs.correlation:.2f}, Spearman {pairs.rank_correlation:.2f})")
        fig.tight_layout()
        savefig(fig, out / f"{NAME}.png")
    return {"linear_corr_line_integral": round(lin["corr_line"], 4),
            "linear_corr_implied_sym": round(lin["corr_sym"], 4),
            "linear_sign_agreement": round(lin["sign_agreement"], 4), "linear_share_end": round(lin["share_end"], 4),
            "linear_share_max": round(lin["share_max"], 4),
            "linear_true_loss_at_h_star": round(float(np.mean(arrays["lin_h_star_loss"])), 6),
            "net_corr_between_snapshots": round(train.correlation, 4),
            "net_rank_corr_between_snapshots": round(train.rank_correlation, 4),
            "net_rank_corr_same_class_pairs": round(pairs.rank_correlation, 4),
            "net_slope_same_class_pairs": round(pairs.slope, 4),
            "net_sign_agreement_between_snapshots": round(train.sign_agreement, 4),
            "net_corr_same_class_pairs": round(pairs.correlation, 4),
            "net_oracle_max_abs_error": net["oracle_max_abs_error"], "net_final_test_error": net["final_test_error"]}


def _diag(ax):
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([lo, hi], [lo, hi], color="0.5", linewidth=0.8, linestyle="--")


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
