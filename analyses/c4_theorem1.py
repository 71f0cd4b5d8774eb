"""C4 (Theorem 1 of Czarnecki et al. 2017): linear regression with a linear SG between output and loss
converges to the least-squares solution when the SG step is an exact line search and the main rate is small.

For every regression data set (2-D and 100-D, or --dims) we train p = xW + b with a label-conditioned
linear SG at the output whose step is the exact line-search minimiser, at main rate α = c/λ_max(G)
(G = E[(x,1)ᵀ(x,1)], c = --rate), in float64 from the population moments, until the distance to the OLS
solution falls below --tol/100 or --max-steps. A second panel sweeps c at a fixed step budget.
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import jax

jax.config.update("jax_enable_x64", True)  # the 1e-6 target needs float64, set before any computation

import jax.numpy as jnp
import numpy as np

from sgtheory.settings import Setting

NAME = "c4_theorem1"


SETTINGS = (
    Setting("dims", "ints", full=(2, 100), quick=(2, 10), lo=1, hi=10000, help="input dimensions"),
    Setting("rate", "float", full=0.5, above=0, help="main rate c in α = c/λ_max(G)"),
    Setting("tol", "float", full=1e-6, above=0, help="target distance to the OLS solution"),
    Setting("max_steps", "int", full=400_000, quick=100_000, lo=1000, help="step cap per run"),
    Setting("sg", "str", full="cond-linear", choices=("linear", "cond-linear"), help="SG variant"),
    Setting("n", "int", full=2000, lo=2, hi=10**7, help="samples drawn to build each data set's moments"),
    Setting("n_rates", "int", full=15, quick=7, lo=2, hi=1000,
            help="main rates c of the rate sweep, log-spaced 0.05..4"),
    Setting("sweep_budget", "int", full=20000, quick=5000, lo=100, help="steps per run of the rate sweep"),
)


def _setup(name, dim, args):
    from sgtheory.linear import datasets, from_samples, make_config, optimum

    X, Y = datasets.make(name, dim, args.n, args.seed, target="regression")
    pr = from_samples(X, Y).without_samples()  # population form: cost independent of n
    cfg = make_config("linear", sg=args.sg, sg_step="line-search")
    opt = optimum(cfg, pr)
    mx = np.asarray(pr.mx)
    G = np.block([[np.asarray(pr.Sxx), mx[:, None]], [mx[None, :], np.ones((1, 1))]])
    return cfg, pr, opt, np.linalg.eigvalsh(G)


def _distance(state, opt):
    from sgtheory.linear import effective

    W, b = effective(state)
    return jnp.sqrt(jnp.sum((W - opt.W) ** 2) + jnp.sum((b - opt.b) ** 2))


def compute(args):
    from sgtheory.linear import datasets, init, loss, trajectory
    dims = list(args.dims)
    rate, tol, max_steps = args.rate, args.tol, args.max_steps
    chunk, every = 1000, 100
    key = jax.random.PRNGKey(args.seed)
    run = jax.jit(lambda cfg, pr, st, a: trajectory(cfg, pr, st, a, 0.0, chunk, every=every, record_states=True),
                  static_argnums=0)

    arrays, rows = {}, []
    for dim in dims:
        for name in datasets.DATASETS:
            cfg, pr, opt, lam = _setup(name, dim, args)
            alpha = rate / lam[-1]
            state = init(cfg, pr, key=key)
            hist = [float(_distance(state, opt))]
            steps = 0
            while steps < max_steps and hist[-1] > tol / 100 and np.isfinite(hist[-1]):
                tr = run(cfg, pr, state, alpha)
                hist += [float(d) for d in jax.vmap(lambda s, opt=opt: _distance(s, opt))(tr.states)[1:]]
                state, steps = tr.final, steps + chunk
            final_loss = float(loss(cfg, pr, state))
            arrays[f"dist_{name}_{dim}"] = np.asarray(hist)
            rows.append({"dataset": name, "dim": dim, "alpha": alpha, "cond_G": float(lam[-1] / lam[0]),
                         "steps": steps, "distance": hist[-1], "loss": final_loss, "ols_loss": opt.loss,
                         "reached_tol": bool(hist[-1] < tol)})

    # rate sweep: final distance after a fixed budget, vmapped over c, smallest dimension
    cs = np.geomspace(0.05, 4.0, args.n_rates)
    budget = args.sweep_budget
    sweep = {}
    for name in datasets.DATASETS:
        cfg, pr, opt, lam = _setup(name, dims[0], args)
        state = init(cfg, pr, key=key)
        fin = jax.jit(jax.vmap(lambda a, cfg=cfg, pr=pr, state=state, opt=opt:
                               _distance(trajectory(cfg, pr, state, a, 0.0, budget).final, opt)))
        sweep[name] = np.asarray(fin(jnp.asarray(cs / lam[-1])))
        arrays[f"sweep_{name}"] = sweep[name]
    arrays["sweep_c"] = cs
    meta = {"rows": rows, "dims": dims, "rate": rate, "tol": tol, "max_steps": max_steps, "sg": args.sg,
            "record_every": every, "sweep_budget": budget, "sweep_dim": dims[0], "n": args.n,
            "datasets": list(datasets.DATASETS)}
    return arrays, meta


def plot(arrays, meta, out):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    with figure(1, 2, figsize=(10, 3.8)) as (fig, (ax1, ax2)):
        for r in meta["rows"]:
            d = arrays[f"dist_{r['dataset']}_{r['dim']}"]
            ax1.loglog(1 + np.arange(len(d)) * meta["record_every"], np.maximum(d, 1e-17),
                         ls="-" if r["dim"] == meta["dims"][0] else "--", label=f"{r['dataset']} {r['dim']}-D")
        ax1.axhline(meta["tol"], color="k", lw=0.8, ls=":")
        ax1.set(xlabel="step + 1", ylabel="‖θ − θ_OLS‖", title=f"line-search SG, α = {meta['rate']}/λ_max")
        ax1.legend(fontsize=7, ncol=2)
        for name in meta["datasets"]:
            ax2.loglog(arrays["sweep_c"], np.clip(np.nan_to_num(arrays[f"sweep_{name}"], nan=1e3), 1e-17, 1e3),
                       "o-", ms=3, label=name)
        ax2.axhline(meta["tol"], color="k", lw=0.8, ls=":")
        ax2.set(xlabel="c  (α = c/λ_max)", ylabel=f"distance after {meta['sweep_budget']} steps",
                title=f"main-rate sweep, {meta['sweep_dim']}-D")
        ax2.legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    worst = max(r["distance"] for r in meta["rows"])
    return {"max_distance_to_ols": worst, "all_below_tol": all(r["reached_tol"] for r in meta["rows"]),
            "tol": meta["tol"], "runs": len(meta["rows"]), "max_steps_used": max(r["steps"] for r in meta["rows"])}


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
