"""DNI feed-forward protocol: BP vs DNI vs cDNI on 256-unit fully connected nets with batch-norm.

Jaderberg et al. (2017, arXiv 1608.05343, appendix; paper_notes §2, sure): MNIST fully connected nets of
256 units per layer with batch-norm and ReLU, every layer decoupled by a synthetic-gradient module —
two hidden layers of 1024 units for DNI, linear and conditioned on the label for cDNI — Adam at learning
rate 3e-5, divided by 10 at 300k and 400k steps, 500k steps, batch 256, SG loss weight 1. Table values are
unknown to us; the expected ordering (likely): cDNI close to BP, DNI worse as depth grows.

Here: ``bp``; DNI = ``sg-every`` with an MLP module (``--sg-hidden`` units × 2); cDNI = ``csg-every``
with a linear module; each trained as a population over ``--seeds`` seeds in one program
(:func:`sgtheory.nets.train_population`; seed s: the same initialisation and data order for every method).
``--steps S`` scales the schedule: the rate drops ×0.1 at 0.6·S and 0.8·S (300k and 400k of 500k).
Depths: numbers of hidden layers, default 3–6 (our choice). Curves and the final table: mean ± sd over seeds.

    python analyses/dni_feedforward.py --quick   # depths 3, 6; 400 steps; lr 1e-3 (not 3e-5); SG hidden 256; 2 seeds
    python analyses/dni_feedforward.py           # the paper's settings on mnist5k: 500k steps per run (GPU); 3 seeds
    python analyses/dni_feedforward.py --steps 20000 --lr 3e-4   # a scaled-down budget
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from pathlib import Path

import numpy as np

from sgtheory.settings import TRAINING, Setting

NAME = "dni_feedforward"
LABELS = {"bp": "BP", "sg-every": "DNI", "csg-every": "cDNI"}

SETTINGS = (
    Setting("depths", "ints", full=(3, 4, 5, 6), quick=(3, 6), lo=1, hi=50, help="hidden-layer counts"),
    *TRAINING.pick("dataset", "data_root", steps=(500_000, 400), lr=(3e-5, 1e-3), batch_size=256, width=256,
                   evals=20, seeds=(3, 2)),
    Setting("sg_hidden", "int", full=1024, quick=256, lo=1, hi=65536, help="DNI module hidden units"),
)


def compute(args):
    import optax

    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_updates import step_decay

    steps, depths, hidden = args.steps, list(args.depths), args.sg_hidden
    eval_every = max(1, steps // args.evals)
    seeds = list(range(args.seed, args.seed + args.seeds))
    methods = {"bp": M.get("bp"), "sg-every": M.get("sg-every", module="mlp", hidden=hidden),
               "csg-every": M.get("csg-every", module="linear")}
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    out = {k: [] for k in ("test_error", "train_loss", "sg_loss", "diverged", "member_steps_per_second")}
    for depth in depths:
        config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, args.width, "relu", True)
        runs = [nets.train_population(ds, config, m, optimizer=lambda r: optax.adam(step_decay(r, steps)),
                                      lr=args.lr, steps=steps, batch_size=args.batch_size, eval_every=eval_every,
                                      seeds=seeds, show_progress=False) for m in methods.values()]
        for k in ("test_error", "train_loss", "sg_loss"):
            out[k].append([r.metrics[k] for r in runs])
        out["diverged"].append([[s != "ok" for s in r.status] for r in runs])
        out["member_steps_per_second"].append([r.info["member_steps_per_second"] for r in runs])
    arrays = {"step": runs[0].metrics["step"], **{k: np.array(v) for k, v in out.items()}}
    meta = {"depths": depths, "methods": list(methods), "labels": [LABELS[m] for m in methods], "seeds": seeds,
            "steps": steps, "lr": args.lr, "schedule": f"x0.1 at steps {int(0.6 * steps)} and {int(0.8 * steps)}",
            "batch_size": args.batch_size, "width": args.width, "sg_hidden": hidden, "dataset": ds.name,
            "paper_settings": (not args.quick and args.lr == 3e-5 and steps == 500_000 and hidden == 1024
                               and args.batch_size == 256)}
    return arrays, meta


def _band(ax, x, runs, **kw):
    """Mean over seeds (rows) with a ± sd band."""
    mean = np.nanmean(runs, axis=0)
    sd = np.nanstd(runs, axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    (line,) = ax.plot(x, mean, **kw)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
    return mean, sd


def _pm(s: dict) -> str:
    if s["mean"] is None:
        return "diverged"
    return f"{100 * s['mean']:.2f}%" + (f" ± {100 * s['sd']:.2f}" if s["sd"] is not None else "")


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.nets import mean_sd, paired_difference
    from sgtheory.plotting import figure

    depths, labels, step = meta["depths"], meta["labels"], arrays["step"]
    err = np.where(arrays["diverged"][..., None], np.nan, arrays["test_error"])  # (depth, method, seed, eval)
    n = len(meta["seeds"])
    final = [[mean_sd(list(err[i, k, :, -1])) for k in range(len(labels))] for i in range(len(depths))]
    with figure(1, len(depths) + 1, figsize=(2.9 * (len(depths) + 1), 3.2), squeeze=False,
                layout="constrained") as (fig, axes):
        for i, depth in enumerate(depths):
            ax = axes[0, i]
            for k, lab in enumerate(labels):
                _band(ax, step, err[i, k], color=f"C{k}", label=lab)
            ax.set(yscale="log", xlabel="step", title=f"{depth} hidden layers", ylabel="test error" if i == 0 else None)
        ax = axes[0, -1]
        for k, lab in enumerate(labels):
            mean = np.array([np.nan if f[k]["mean"] is None else f[k]["mean"] for f in final])
            sd = np.array([f[k]["sd"] or 0.0 for f in final])
            ax.errorbar(depths, mean, yerr=sd, marker="o", color=f"C{k}", label=lab, capsize=3)
        ax.set(xlabel="hidden layers", ylabel="final test error", title=f"final (mean ± sd, {n} seeds)", xticks=depths)
        ax.legend()
        fig.suptitle(f"DNI feed-forward protocol on {meta['dataset']}: {meta['width']} units + BN, "
                     f"batch {meta['batch_size']}, Adam {meta['lr']:g}, {meta['steps']} steps, seeds "
                     f"{meta['seeds'][0]}..{meta['seeds'][-1]}", fontsize=9)
        savefig(fig, out / f"{NAME}.png")
    rows = ["| hidden layers | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    rows += [f"| {d} | " + " | ".join(_pm(final[i][k]) for k in range(len(labels))) + " |"
             for i, d in enumerate(depths)]
    write_text(out / f"{NAME}.md", f"# DNI feed-forward: final test error, mean ± sd over {n} seeds "
               f"({meta['dataset']}, {meta['steps']} steps, lr {meta['lr']:g} {meta['schedule']})\n\n"
               + "\n".join(rows) + "\n")
    bp, cdni = labels.index("BP"), labels.index("cDNI")
    gaps = {str(d): paired_difference(list(err[i, cdni, :, -1]), list(err[i, bp, :, -1]))
            for i, d in enumerate(depths)}
    r = lambda x: None if x is None else round(x, 4)
    return {"seeds": n,
            "final_test_error": {str(d): {lab: {"mean": r(final[i][k]["mean"]), "sd": r(final[i][k]["sd"])}
                                          for k, lab in enumerate(labels)} for i, d in enumerate(depths)},
            "cdni_minus_bp": {d: {"mean": r(g["mean"]), "sd": r(g["sd"]), "beyond_spread": g["beyond_spread"]}
                              for d, g in gaps.items()},
            "paper_settings": meta["paper_settings"]}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
