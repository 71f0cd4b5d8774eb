"""C10: the unified view — every credit-assignment method as a "synthetic gradient", trained side by side.

Czarnecki et al. (2017, §5) cast backprop, Feedback Alignment, Direct Feedback Alignment and Kickback as
particular synthetic gradients for layer i: fixed or learned, conditioned on the label or on the output
error, with different locking properties; only a learned label-conditioned SG is update-unlocked.
This script writes the table generated from the methods' own declarations
(:func:`sgtheory.nets.methods.unified_table`) and trains the same net with every method, each as a
population over ``--seeds`` seeds in one program (:func:`sgtheory.nets.train_population`; seed s gives
every method the same initialisation and data order), recording the test error and each layer's cosine
between the method's signal and the true gradient: mean ± sd over seeds.

Outputs in ``--out``: ``c10_unified.png`` (test error curves with ± sd bands and final errors),
``c10_cosine.png`` (signal/gradient cosine per layer at the end), ``c10_unified.md`` (both tables).

    python analyses/c10_unified.py --quick     # 4x128, 300 steps, 2 seeds
    python analyses/c10_unified.py --dataset fashion-mnist --steps 6000 --out runs/c10_fashion
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from pathlib import Path

import numpy as np

from sgtheory.settings import TRAINING, Setting

NAME = "c10_unified"


def _methods():
    from sgtheory.nets.methods import METHODS

    return METHODS


SETTINGS = (
    *TRAINING.pick("dataset", "data_root", "depth", "activation", "batch_size", "lr", width=(256, 128),
                   steps=(3000, 300), evals=10, seeds=(3, 2)),
    Setting("methods", "strs", full=None, optional=True, choices=_methods, help="methods to train (none: all)"),
    Setting("lr_decay", "flag", full=False, help="divide the rate by 10 at 60% and 80% of the steps (DNI's schedule)"),
)


def compute(args):
    import optax

    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_updates import step_decay

    names = list(args.methods or M.METHODS)
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, args.width, args.activation, False)
    steps = args.steps
    common = dict(steps=steps, batch_size=args.batch_size, lr=args.lr, eval_every=max(1, steps // args.evals),
                  seeds=list(range(args.seed, args.seed + args.seeds)), show_progress=False)
    if args.lr_decay:
        common["optimizer"] = lambda r: optax.adam(step_decay(r, steps))
    runs = [nets.train_population(ds, config, m, **common) for m in names]
    arrays = {"step": runs[0].metrics["step"],
              **{k: np.stack([r.metrics[k] for r in runs]) for k in ("test_error", "train_loss", "sg_loss", "cosine")},
              "diverged": np.array([[s != "ok" for s in r.status] for r in runs])}
    meta = {"methods": names, "table": M.unified_table("markdown"), "config": config.to_dict(),
            "dataset": ds.name, "steps": steps, "batch_size": args.batch_size, "optimizer": "adam", "lr": args.lr,
            "seeds": common["seeds"],
            "schedule": "x0.1 at 60% and 80% of the steps" if args.lr_decay else "constant",
            "member_steps_per_second": [r.info["member_steps_per_second"] for r in runs],
            "backend": runs[0].info["backend"]}
    return arrays, meta


def _final(arrays, key):
    """Per method: the final value of ``key`` for each seed that did not diverge."""
    return [[float(v) for v, bad in zip(vals[:, -1], div) if not bad]
            for vals, div in zip(arrays[key], arrays["diverged"])]


def _pm(values, fmt=".4f") -> str:
    from sgtheory.nets import mean_sd

    s = mean_sd(values)
    if s["mean"] is None:
        return "diverged"
    return f"{s['mean']:{fmt}}" + (f" ± {s['sd']:{fmt}}" if s["sd"] is not None else "")


def results_table(arrays, meta) -> str:
    lines = ["| method | test error | train loss | mean cosine to true gradient (layers 1..D) | diverged seeds |",
             "|---|---|---|---|---|"]
    err, loss = _final(arrays, "test_error"), _final(arrays, "train_loss")
    for i, m in enumerate(meta["methods"]):
        ok = ~arrays["diverged"][i]
        cos = arrays["cosine"][i, ok, -1]  # (seeds, D)
        per_layer = ", ".join(f"{c:.2f}" for c in cos.mean(axis=0)) if ok.any() else "—"
        mean_cos = _pm(list(cos.mean(axis=1)), ".3f") if ok.any() else "—"
        lines.append(f"| `{m}` | {_pm(err[i])} | {_pm(loss[i])} | {mean_cos} ({per_layer}) | "
                     f"{int((~ok).sum())} of {ok.size} |")
    return "\n".join(lines)


def _band(ax, x, runs, **kw):
    """Mean over the seeds (rows of ``runs``, NaN rows skipped) with a ± sd band."""
    mean, sd = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0, ddof=1) if len(runs) > 1 else 0 * runs[0]
    (line,) = ax.plot(x, mean, **kw)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    return line


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.nets import mean_sd
    from sgtheory.plotting import figure

    names, step = meta["methods"], arrays["step"]
    err = np.where(arrays["diverged"][:, :, None], np.nan, arrays["test_error"])
    cfg, n_seeds = meta["config"], len(meta["seeds"])
    title = f"{meta['dataset']}, {cfg['depth']}×{cfg['width']} {cfg['activation']}, {meta['steps']} steps"
    finals = _final(arrays, "test_error")
    stats = [mean_sd(f) for f in finals]
    with figure(1, 2, figsize=(9.5, 3.6)) as (fig, (ax1, ax2)):
        for i, m in enumerate(names):
            _band(ax1, step, err[i], label=m)
        ax1.set(xlabel="step", ylabel="test error", yscale="log", title=f"{title}; mean ± sd over {n_seeds} seeds")
        ax1.legend(ncol=2)
        means = [s["mean"] if s["mean"] is not None else np.nan for s in stats]
        sds = [s["sd"] or 0.0 for s in stats]
        ax2.barh(names, means, xerr=sds, color=[f"C{i % 8}" for i in range(len(names))], capsize=3)
        ax2.invert_yaxis()
        ax2.set(xlabel="final test error", title=f"seeds {meta['seeds'][0]}..{meta['seeds'][-1]}, same per method")
        for i, v in enumerate(means):
            ax2.text(0 if np.isnan(v) else v, i, " diverged" if np.isnan(v) else f" {v:.3f}", va="center", fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    with figure(figsize=(5.0, 3.6)) as (fig, ax):
        layers = np.arange(1, arrays["cosine"].shape[-1] + 1)
        for i, m in enumerate(names):
            cos = arrays["cosine"][i, ~arrays["diverged"][i], -1]
            if len(cos):
                _band(ax, layers, cos, marker="o", label=m)
        ax.set(xlabel="hidden layer i", ylabel="cos(signal, ∂ℓ/∂h_i)", ylim=(-1.05, 1.05),
               title=f"signal vs true gradient at the end (± sd, {n_seeds} seeds)")
        ax.legend(ncol=2, fontsize=7)
        savefig(fig, out / "c10_cosine.png")
    text = (f"# C10: the unified view\n\n## Properties (generated from the method declarations)\n\n{meta['table']}\n\n"
            f"## Every method: {title}, batch {meta['batch_size']}, Adam lr {meta['lr']} "
            f"({meta.get('schedule', 'constant')}), mean ± sd over seeds {meta['seeds']}\n\n"
            f"{results_table(arrays, meta)}\n")
    write_text(out / f"{NAME}.md", text)
    final = {m: None if s["mean"] is None else round(s["mean"], 4) for m, s in zip(names, stats)}
    ranked = [m for m in names if final[m] is not None]
    best = min(ranked, key=final.get) if ranked else None
    from sgtheory.nets import paired_difference

    vs_bp = {}
    if "bp" in names:
        bp = arrays["test_error"][names.index("bp"), :, -1]
        for i, m in enumerate(names):
            if m != "bp":
                d = paired_difference(arrays["test_error"][i, :, -1], bp)
                vs_bp[m] = {"minus_bp": None if d["mean"] is None else round(d["mean"], 4),
                            "sd": None if d["sd"] is None else round(d["sd"], 4), "beyond_spread": d["beyond_spread"]}
    return {"dataset": meta["dataset"], "steps": meta["steps"], "seeds": n_seeds, "test_error": final,
            "test_error_sd": {m: None if s["sd"] is None else round(s["sd"], 4) for m, s in zip(names, stats)},
            "test_error_minus_bp": vs_bp, "best": best}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
