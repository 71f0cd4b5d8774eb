"""DNI feed-forward protocol: BP vs DNI vs cDNI on 256-unit fully connected nets with batch-norm.

Jaderberg et al. (2017, arXiv 1608.05343, appendix; paper_notes §2, sure): MNIST fully connected nets of
256 units per layer with batch-norm and ReLU, every layer decoupled by a synthetic-gradient module —
two hidden layers of 1024 units for DNI, linear and conditioned on the label for cDNI — Adam at learning
rate 3e-5, divided by 10 at 300k and 400k steps, 500k steps, batch 256, SG loss weight 1. Table values are
unknown to us; the expected ordering (likely): cDNI close to BP, DNI worse as depth grows.

Here: ``bp``; DNI = ``sg-every`` with an MLP module (``--sg-hidden`` units × 2); cDNI = ``csg-every``
with a linear module; all trained by :func:`sgtheory.nets.train` (SG loss weight 1: one optimiser on the
sum of the net's and the modules' losses). ``--steps S`` scales the schedule: the rate drops ×0.1 at
0.6·S and 0.8·S (300k and 400k of 500k). Depths: numbers of hidden layers, default 3–6 (our choice).

    python analyses/dni_feedforward.py --quick   # depths 3, 6; 400 steps; lr 1e-3 (not the paper's 3e-5); SG hidden 256
    python analyses/dni_feedforward.py           # the paper's settings on mnist5k: 500k steps per run (GPU)
    python analyses/dni_feedforward.py --steps 20000 --lr 3e-4   # a scaled-down budget
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main

NAME = "dni_feedforward"
LABELS = {"bp": "BP", "sg-every": "DNI", "csg-every": "cDNI"}


def add_arguments(p):
    p.add_argument("--depths", default=None, help="comma-separated hidden-layer counts (default 3,4,5,6; quick 3,6)")
    p.add_argument("--steps", type=int, default=None, help="steps per run; the schedule scales with it "
                   "(default 500000, the paper's; quick 400)")
    p.add_argument("--lr", type=float, default=None, help="initial Adam rate (default 3e-5, the paper's; quick 1e-3)")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch size (default 256, the paper's)")
    p.add_argument("--width", type=int, default=256, help="units per hidden layer (default 256, the paper's)")
    p.add_argument("--sg-hidden", type=int, default=None, help="DNI module hidden units (default 1024; quick 256)")
    p.add_argument("--evals", type=int, default=20, help="evaluations along each run (default 20)")
    p.add_argument("--dataset", default="mnist5k", help="data set (default mnist5k; mnist with --data-root)")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")


def compute(args):
    import optax

    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_updates import step_decay
    from sgtheory.validate import int_in_range, positive

    depths = [int_in_range(d.strip(), "depth", 1, 50)
              for d in (args.depths or ("3,6" if args.quick else "3,4,5,6")).split(",") if d.strip()]
    steps = int_in_range(args.steps or (400 if args.quick else 500_000), "steps", 1)
    lr = positive(args.lr or (1e-3 if args.quick else 3e-5), "lr")
    hidden = args.sg_hidden or (256 if args.quick else 1024)
    eval_every = max(1, steps // int_in_range(args.evals, "evals", 1))
    methods = {"bp": M.get("bp"), "sg-every": M.get("sg-every", module="mlp", hidden=hidden),
               "csg-every": M.get("csg-every", module="linear")}
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    err, loss, sg_loss, sps = [], [], [], []
    for depth in depths:
        config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, args.width, "relu", True)
        runs = [nets.train(ds, config, m, optimizer=lambda r: optax.adam(step_decay(r, steps)), lr=lr, steps=steps,
                           batch_size=args.batch_size, eval_every=eval_every, seed=args.seed)
                for m in methods.values()]
        err.append([r.metrics["test_error"] for r in runs])
        loss.append([r.metrics["train_loss"] for r in runs])
        sg_loss.append([r.metrics["sg_loss"] for r in runs])
        sps.append([r.info["steps_per_second"] for r in runs])
    arrays = {"step": runs[0].metrics["step"], "test_error": np.array(err), "train_loss": np.array(loss),
              "sg_loss": np.array(sg_loss), "steps_per_second": np.array(sps)}
    meta = {"depths": depths, "methods": list(methods), "labels": [LABELS[m] for m in methods],
            "steps": steps, "lr": lr, "schedule": f"x0.1 at steps {int(0.6 * steps)} and {int(0.8 * steps)}",
            "batch_size": args.batch_size, "width": args.width, "sg_hidden": hidden, "dataset": ds.name,
            "paper_settings": (not args.quick and lr == 3e-5 and steps == 500_000 and hidden == 1024
                               and args.batch_size == 256)}
    return arrays, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.plotting import figure

    depths, labels, step, err = meta["depths"], meta["labels"], arrays["step"], arrays["test_error"]
    with figure(1, len(depths) + 1, figsize=(2.9 * (len(depths) + 1), 3.2), squeeze=False,
                layout="constrained") as (fig, axes):
        for i, depth in enumerate(depths):
            ax = axes[0, i]
            for k, lab in enumerate(labels):
                ax.plot(step, err[i, k], color=f"C{k}", label=lab)
            ax.set(yscale="log", xlabel="step", title=f"{depth} hidden layers", ylabel="test error" if i == 0 else None)
        ax = axes[0, -1]
        for k, lab in enumerate(labels):
            ax.plot(depths, err[:, k, -1], marker="o", color=f"C{k}", label=lab)
        ax.set(xlabel="hidden layers", ylabel="final test error", title="final", xticks=depths)
        ax.legend()
        fig.suptitle(f"DNI feed-forward protocol on {meta['dataset']}: {meta['width']} units + BN, "
                     f"batch {meta['batch_size']}, Adam {meta['lr']:g}, {meta['steps']} steps", fontsize=9)
        savefig(fig, out / f"{NAME}.png")
    rows = ["| hidden layers | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    rows += [f"| {d} | " + " | ".join(f"{100 * err[i, k, -1]:.2f}%" for k in range(len(labels))) + " |"
             for i, d in enumerate(depths)]
    write_text(out / f"{NAME}.md", f"# DNI feed-forward: final test error ({meta['dataset']}, {meta['steps']} steps, "
               f"lr {meta['lr']:g} {meta['schedule']})\n\n" + "\n".join(rows) + "\n")
    final = {str(d): {lab: round(float(err[i, k, -1]), 4) for k, lab in enumerate(labels)} for i, d in enumerate(depths)}
    gap = err[:, labels.index("cDNI"), -1] - err[:, labels.index("BP"), -1]
    return {"final_test_error": final, "max_cdni_minus_bp": round(float(np.max(gap)), 4),
            "paper_settings": meta["paper_settings"]}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
