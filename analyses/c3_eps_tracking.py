"""C3: the ε-tracking sufficient condition for SG convergence (Czarnecki et al. 2017, section 3.2).

If at every step ε_t K_t ≤ ‖∂L/∂θ‖(1 − δ)/(1 + δ) (ε = ‖SG − ∂L/∂h‖, K = ‖∂h/∂θ‖), training converges.
(a) Along real SG runs (MSE, label-conditioned linear SG, zero-initialised, fixed β) we record the ratio
εK/‖∂L/∂θ‖ and where it is below (1 − δ)/(1 + δ): a linear model with the SG at its output and a deep
linear net (3 hidden layers of width 8) with the SG at layer 2. (b) Controlled errors: gradient descent in
which the signal at the SG's position is the true gradient plus an error of size c × the largest error the
condition allows, either opposing the true gradient (adversarial) or in a random direction; final distance
to the least-squares solution after --steps as a function of c. Settings (the paper gives none): data set
--dataset in --dim dimensions, δ = --delta, α = 0.5/λ_max(E[(x,1)ᵀ(x,1)]) (linear) or 0.01 (deep).
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

NAME = "c3_eps_tracking"
MODELS = (("linear, SG at output", "linear", 0, "output"), ("deep linear, SG at layer 2", "deep-linear", 3, 2))


SETTINGS = (
    Setting("dataset", "str", full="correlated", choices=("teacher", "blobs", "xor", "correlated"), help="data set"),
    Setting("dim", "int", full=5, lo=1, hi=10000, help="input dimension"),
    Setting("delta", "float", full=0.1, above=0, hi=0.999999, help="δ of the condition, in (0, 1)"),
    Setting("steps", "int", full=5000, quick=1000, lo=100, help="steps per run"),
    Setting("beta", "float", full=0.05, above=0, help="SG rate β in part (a)"),
    Setting("n_scales", "int", full=17, quick=9, lo=2, hi=1000,
            help="error scales c in part (b), log-spaced 0.1..1000"),
)


def _setup(model, depth, layer, args):
    from sgtheory.linear import datasets, from_samples, make_config, optimum

    X, Y = datasets.make(args.dataset, args.dim, 500, args.seed)
    pr = from_samples(X, Y).without_samples()
    cfg = make_config(model, depth=depth, width=8, sg="cond-linear", sg_layer=layer)
    mx = np.asarray(pr.mx)
    G = np.block([[np.asarray(pr.Sxx), mx[:, None]], [mx[None, :], np.ones((1, 1))]])
    alpha = 0.5 / np.linalg.eigvalsh(G)[-1] if depth == 0 else 0.01
    return cfg, pr, optimum(cfg, pr), alpha


def _dist(net, opt):
    from sgtheory.linear import effective
    from sgtheory.linear.rules import State

    W, b = effective(State(net, ()))
    return jnp.sqrt(jnp.sum((W - opt.W) ** 2) + jnp.sum((b - opt.b) ** 2))


def compute(args):
    from sgtheory.linear import init, loss, tracking, trajectory
    from sgtheory.linear.rules import State

    steps = args.steps
    every = steps // 100
    steps -= steps % every
    delta, beta = args.delta, args.beta
    key = jax.random.PRNGKey(args.seed)
    cs = np.geomspace(0.1, 1000.0, args.n_scales)
    arrays, rows = {"c": cs}, []
    for i, (label, model, depth, layer) in enumerate(MODELS):
        cfg, pr, opt, alpha = _setup(model, depth, layer, args)
        state0 = init(cfg, pr, key=key, init_scale=1.0)
        # (a) the condition along a real SG run
        tr = trajectory(cfg, pr, state0, alpha, beta, steps, every=every, record_states=True)
        terms = jax.vmap(lambda s, cfg=cfg, pr=pr: tracking.terms_at(cfg, pr, s))(tr.states)
        holds = np.asarray(tracking.condition_holds(terms, delta))
        arrays[f"ratio_{i}"] = np.asarray(terms.ratio)
        arrays[f"loss_{i}"] = np.asarray(tr.loss) - opt.loss
        # (b) injected errors of size c × allowed, vmapped over c
        k = cfg.sg_layers[0]

        def inject(c, direction, key=key, cfg=cfg, pr=pr, opt=opt, alpha=alpha, k=k, net0=state0.net, sg=state0.sg):
            """Final distance to OLS and the largest one-step loss increase (≤ 0: descent at every step)."""
            def body(net, t):
                kk = jax.random.fold_in(key, t) if direction == "random" else None
                new, _ = tracking.injected_step(cfg, pr, net, alpha, c, delta, layer=k, direction=direction, key=kk)
                return new, loss(cfg, pr, State(new, sg)) - loss(cfg, pr, State(net, sg))

            net, rises = jax.lax.scan(body, net0, jnp.arange(steps))
            return _dist(net, opt), jnp.max(rises)

        for direction in ("adversarial", "random"):
            d, rise = jax.jit(jax.vmap(lambda c, dr=direction: inject(c, dr)))(jnp.asarray(cs))
            arrays[f"inject_{direction}_{i}"] = np.asarray(d)
            arrays[f"rise_{direction}_{i}"] = np.asarray(rise)
        d0 = float(_dist(state0.net, opt))
        rows.append({"model": label, "alpha": alpha, "beta": beta, "start_distance": d0,
                     "sg_final_excess_loss": float(arrays[f"loss_{i}"][-1]),
                     "fraction_steps_condition_holds": float(holds.mean()),
                     "first_step_holds": bool(holds[0]),
                     **{f"descent_every_step_c_le_1_{dr}": bool(np.all(arrays[f"rise_{dr}_{i}"][cs <= 1] <= 1e-12))
                        for dr in ("adversarial", "random")},
                     **{f"smallest_c_diverging_{dr}": float(min([c for c, v in zip(cs, arrays[f"inject_{dr}_{i}"])
                                                                  if not v < d0], default=np.inf))
                        for dr in ("adversarial", "random")}})
    arrays["t"] = np.asarray(tr.t)
    meta = {"rows": rows, "steps": steps, "delta": delta, "dataset": args.dataset, "dim": args.dim,
            "labels": [m[0] for m in MODELS]}
    return arrays, meta


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    t, cs = arrays["t"], arrays["c"]
    bound = (1 - meta["delta"]) / (1 + meta["delta"])
    with figure(1, 2, figsize=(10.5, 3.8)) as (fig, (ax1, ax2)):
        for i, label in enumerate(meta["labels"]):
            (line,) = ax1.loglog(t + 1, arrays[f"ratio_{i}"], label=f"εK/‖∂L/∂θ‖: {label}")
            ax1.loglog(t + 1, np.maximum(arrays[f"loss_{i}"], 1e-17), ls=":", color=line.get_color(),
                       label=f"L − L*: {label}")
            for direction, mk in (("adversarial", "o-"), ("random", "s--")):
                ax2.loglog(cs, np.clip(np.nan_to_num(arrays[f"inject_{direction}_{i}"], nan=1e6), 1e-17, 1e6), mk,
                           ms=3, color=line.get_color(), label=f"{direction}: {label}")
        ax1.axhline(bound, color="k", lw=0.8, ls="--")
        ax1.set(xlabel="step + 1", title=f"(a) condition along SG runs (dashed: (1−δ)/(1+δ), δ = {meta['delta']})")
        ax1.legend(fontsize=6)
        ax2.axvline(1.0, color="k", lw=0.8, ls="--")
        ax2.set(xlabel="c  (‖e‖ = c × allowed ε)", ylabel=f"distance to OLS after {meta['steps']} steps",
                title="(b) injected SG error")
        ax2.legend(fontsize=6)
        savefig(fig, out / f"{NAME}.png")
    return {r["model"]: {k: v for k, v in r.items() if k not in ("model", "alpha", "beta")} for r in meta["rows"]}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
