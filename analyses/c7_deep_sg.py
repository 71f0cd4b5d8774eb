"""C7: deep nets with batch-norm, backprop vs one synthetic gradient in the middle of the hidden stack.

Czarnecki et al. (2017) train fully connected nets of up to 50 hidden layers with batch-norm and two
activation functions on MNIST, with backprop and with one SG module between the middle layers, and
report similar training performance, SG sometimes faster (paper_notes C7: design sure, outcome likely;
the second activation is unknown — we use sigmoid). For every depth × activation the same nets (seed s:
the same initialisation and data order for both methods) are trained with ``bp`` and with ``--sg-method``
(default ``csg``, a linear label-conditioned SG at hidden layer ``depth // 2``), each as a population over
``--seeds`` seeds in one program (:func:`sgtheory.nets.train_population`). The learning curves (train
loss, test error) are drawn as mean ± sd over seeds, and SG − BP is compared seed by seed.

    python analyses/c7_deep_sg.py --quick        # depths 4, 12; width 64; 300 steps; 2 seeds
    python analyses/c7_deep_sg.py                # depths 5, 10, 20, 50; width 256; 3,000 steps; 3 seeds
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from pathlib import Path

import numpy as np

from sgtheory.settings import TRAINING, Setting

NAME = "c7_deep_sg"

SETTINGS = (
    Setting("depths", "ints", full=(5, 10, 20, 50), quick=(4, 12), lo=1, hi=50, help="hidden layers of each net"),
    Setting("activations", "strs", full=("relu", "sigmoid"), choices=("relu", "sigmoid", "tanh"),
            help="non-linearities"),
    Setting("sg_method", "str", full="csg", choices=("sg", "csg"), help="the SG variant compared with bp"),
    *TRAINING.pick("dataset", "data_root", "batch_size", "lr", width=(256, 64), steps=(3000, 300), evals=15,
                   seeds=(3, 2)),
)


def compute(args):
    from sgtheory import data, nets
    from sgtheory.nets import methods as M

    steps, depths, acts = args.steps, list(args.depths), list(args.activations)
    eval_every = max(1, steps // args.evals)
    seeds = list(range(args.seed, args.seed + args.seeds))
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    methods = ["bp", args.sg_method]
    keys = ("train_loss", "test_error", "sg_loss")
    n_eval = steps // eval_every + (steps % eval_every > 0)
    out = {k: np.zeros((len(depths), len(acts), 2, len(seeds), n_eval)) for k in keys}
    diverged = np.zeros((len(depths), len(acts), 2, len(seeds)), bool)
    sps = np.zeros((len(depths), len(acts), 2))
    for i, depth in enumerate(depths):
        for j, act in enumerate(acts):
            config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, args.width, act, True)
            for k, m in enumerate(methods):
                r = nets.train_population(ds, config, M.get(m), steps=steps, batch_size=args.batch_size, lr=args.lr,
                                          eval_every=eval_every, seeds=seeds, show_progress=False)
                for key in keys:
                    out[key][i, j, k] = r.metrics[key]
                diverged[i, j, k] = [s != "ok" for s in r.status]
                sps[i, j, k] = r.info["member_steps_per_second"]
                step = r.metrics["step"]
    meta = {"depths": depths, "activations": acts, "methods": methods, "width": args.width, "steps": steps,
            "batch_size": args.batch_size, "lr": args.lr, "optimizer": "adam", "batchnorm": True, "seeds": seeds,
            "dataset": ds.name, "sg_layer": "depth // 2 (at least 1)"}
    return {"step": step, "member_steps_per_second": sps, "diverged": diverged, **out}, meta


def _band(ax, x, runs, **kw):
    """Mean over seeds (rows) with a ± sd band."""
    mean = np.nanmean(runs, axis=0)
    sd = np.nanstd(runs, axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    (line,) = ax.plot(x, mean, **kw)
    ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig
    from sgtheory.nets import mean_sd, paired_difference
    from sgtheory.plotting import figure

    depths, acts, methods = meta["depths"], meta["activations"], meta["methods"]
    div = arrays["diverged"][..., None]
    step = arrays["step"]
    loss, err = (np.where(div, np.nan, arrays[k]) for k in ("train_loss", "test_error"))
    n = len(meta["seeds"])
    with figure(len(acts), len(depths), figsize=(2.6 * len(depths) + 0.6, 2.3 * len(acts) + 0.4),
                squeeze=False, sharex=True) as (fig, axes):
        for j, act in enumerate(acts):
            for i, depth in enumerate(depths):
                ax = axes[j, i]
                for k, m in enumerate(methods):
                    _band(ax, step, loss[i, j, k], color=f"C{k}", label=f"{m} train loss")
                    _band(ax, step, err[i, j, k], color=f"C{k}", ls="--", label=f"{m} test error")
                ax.set_yscale("log")
                ax.set_title(f"{act}, {depth} hidden layers", fontsize=8)
                if j == len(acts) - 1:
                    ax.set_xlabel("step")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(f"C7: BP vs {methods[1]} at layer depth//2, batch-norm, width {meta['width']}, "
                     f"{meta['dataset']}; mean ± sd over {n} seeds", fontsize=9)
        savefig(fig, out / f"{NAME}.png")
    final, gap, faster = {}, {}, []
    for i, depth in enumerate(depths):
        for j, act in enumerate(acts):
            cell = f"{act}-{depth}"
            final[cell] = {m: _rounded(mean_sd(list(err[i, j, k, :, -1]))) for k, m in enumerate(methods)}
            d = paired_difference(list(err[i, j, 1, :, -1]), list(err[i, j, 0, :, -1]))
            gap[cell] = {"mean": _r(d["mean"]), "sd": _r(d["sd"]), "beyond_spread": d["beyond_spread"]}
            # "SG faster": the SG run's mean train loss is below BP's at more than half of the evaluations
            if np.mean(np.nanmean(loss[i, j, 1], axis=0) < np.nanmean(loss[i, j, 0], axis=0)) > 0.5:
                faster.append(cell)
    return {"seeds": n, "final_test_error": final, "test_error_sg_minus_bp": gap,
            "sg_worse_beyond_spread": [c for c, g in gap.items() if g["beyond_spread"] and g["mean"] > 0],
            "sg_better_beyond_spread": [c for c, g in gap.items() if g["beyond_spread"] and g["mean"] < 0],
            "sg_loss_below_bp_most_of_run": faster}


def _r(x):
    return None if x is None else round(x, 4)


def _rounded(s: dict) -> dict:
    return {"mean": _r(s["mean"]), "sd": _r(s["sd"]), "n": s["n"]}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
