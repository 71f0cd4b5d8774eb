"""C7: deep nets with batch-norm, backprop vs one synthetic gradient in the middle of the hidden stack.

Czarnecki et al. (2017) train fully connected nets of up to 50 hidden layers with batch-norm and two
activation functions on MNIST, with backprop and with one SG module between the middle layers, and
report similar training performance, SG sometimes faster (paper_notes C7: design sure, outcome likely;
the second activation is unknown — we use sigmoid). For every depth × activation the same net (same
initialisation and data order) is trained with ``bp`` and with ``--sg-method`` (default ``csg``, a linear
label-conditioned SG at hidden layer ``depth // 2``, the analysis' SG of paper_notes §1) via
:func:`sgtheory.nets.train`, and the learning curves (train loss, test error) are drawn.

    python analyses/c7_deep_sg.py --quick        # depths 4, 12; width 64; 300 steps (CPU, ~1 min)
    python analyses/c7_deep_sg.py                # depths 5, 10, 20, 50; width 256; 3,000 steps (GPU or long CPU)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main

NAME = "c7_deep_sg"


def add_arguments(p):
    p.add_argument("--depths", default=None, help="comma-separated depths (default 5,10,20,50; quick 4,12)")
    p.add_argument("--activations", default="relu,sigmoid", help="comma-separated activations (default relu,sigmoid)")
    p.add_argument("--sg-method", default="csg", help="sg or csg: the SG variant compared with bp (default csg)")
    p.add_argument("--width", type=int, default=None, help="units per hidden layer (default 256; quick 64)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default 3000; quick 300)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3; paper's: unknown)")
    p.add_argument("--evals", type=int, default=15, help="evaluations along each run (default 15)")
    p.add_argument("--dataset", default="mnist5k", help="data set (default mnist5k)")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")


def _int_list(text, name):
    from sgtheory.validate import int_in_range

    return [int_in_range(v.strip(), name, 1, 50) for v in text.split(",") if v.strip()]


def compute(args):
    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.validate import choice, int_in_range

    depths = _int_list(args.depths or ("4,12" if args.quick else "5,10,20,50"), "depth")
    acts = [choice(a.strip(), "activation", nets.ACTIVATIONS) for a in args.activations.split(",") if a.strip()]
    choice(args.sg_method, "sg method", ("sg", "csg"))
    steps = args.steps or (300 if args.quick else 3000)
    width = args.width or (64 if args.quick else 256)
    eval_every = max(1, steps // int_in_range(args.evals, "evals", 1))
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    methods = ["bp", args.sg_method]
    keys = ("train_loss", "test_error", "sg_loss")
    out = {k: np.zeros((len(depths), len(acts), 2, steps // eval_every + (steps % eval_every > 0))) for k in keys}
    sps = np.zeros((len(depths), len(acts), 2))
    for i, depth in enumerate(depths):
        for j, act in enumerate(acts):
            config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, width, act, True)
            for k, m in enumerate(methods):
                r = nets.train(ds, config, M.get(m), steps=steps, batch_size=args.batch_size, lr=args.lr,
                               eval_every=eval_every, seed=args.seed)
                for key in keys:
                    out[key][i, j, k] = r.metrics[key]
                sps[i, j, k] = r.info["steps_per_second"]
                step = r.metrics["step"]
    meta = {"depths": depths, "activations": acts, "methods": methods, "width": width, "steps": steps,
            "batch_size": args.batch_size, "lr": args.lr, "optimizer": "adam", "batchnorm": True,
            "dataset": ds.name, "sg_layer": "depth // 2 (at least 1)"}
    return {"step": step, "steps_per_second": sps, **out}, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    depths, acts, methods = meta["depths"], meta["activations"], meta["methods"]
    step, loss, err = arrays["step"], arrays["train_loss"], arrays["test_error"]
    with figure(len(acts), len(depths), figsize=(2.6 * len(depths) + 0.6, 2.3 * len(acts) + 0.4),
                squeeze=False, sharex=True) as (fig, axes):
        for j, act in enumerate(acts):
            for i, depth in enumerate(depths):
                ax = axes[j, i]
                for k, m in enumerate(methods):
                    ax.plot(step, loss[i, j, k], color=f"C{k}", label=f"{m} train loss")
                    ax.plot(step, err[i, j, k], color=f"C{k}", ls="--", label=f"{m} test error")
                ax.set_yscale("log")
                ax.set_title(f"{act}, {depth} hidden layers", fontsize=8)
                if j == len(acts) - 1:
                    ax.set_xlabel("step")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(f"C7: BP vs {methods[1]} at layer depth//2, batch-norm, width {meta['width']}, "
                     f"{meta['dataset']}", fontsize=9)
        savefig(fig, out / f"{NAME}.png")
    final = {f"{act}-{depth}": {m: round(float(err[i, j, k, -1]), 4) for k, m in enumerate(methods)}
             for i, depth in enumerate(depths) for j, act in enumerate(acts)}
    # "SG faster": the SG run's train loss is below BP's at more than half of the evaluations.
    faster = [f"{act}-{depth}" for i, depth in enumerate(depths) for j, act in enumerate(acts)
              if np.mean(loss[i, j, 1] < loss[i, j, 0]) > 0.5]
    gap = float(np.max(err[:, :, 1, -1] - err[:, :, 0, -1]))
    return {"final_test_error": final, "sg_loss_below_bp_most_of_run": faster,
            "max_test_error_gap_sg_minus_bp": round(gap, 4)}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
