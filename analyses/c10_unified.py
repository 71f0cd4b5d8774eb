"""C10: the unified view — every credit-assignment method as a "synthetic gradient", trained side by side.

Czarnecki et al. (2017, §5) cast backprop, Feedback Alignment, Direct Feedback Alignment and Kickback as
particular synthetic gradients for layer i: fixed or learned, conditioned on the label or on the output
error, with different locking properties; only a learned label-conditioned SG is update-unlocked.
This script writes the table generated from the methods' own declarations
(:func:`sgtheory.nets.methods.unified_table`) and trains the same net with every method
(:func:`sgtheory.nets.train`, same seed, data order and initialisation), recording the test error
and each layer's cosine between the method's signal and the true gradient.

Outputs in ``--out``: ``c10_unified.png`` (test error curves and final errors), ``c10_cosine.png``
(signal/gradient cosine per layer at the end), ``c10_unified.md`` (both tables).

    python analyses/c10_unified.py --quick
    python analyses/c10_unified.py --dataset fashion-mnist --steps 6000 --out runs/c10_fashion
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main

NAME = "c10_unified"


def add_arguments(p):
    p.add_argument("--dataset", default="mnist5k", help="data set (default mnist5k)")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all)")
    p.add_argument("--depth", type=int, default=4, help="hidden layers (default 4)")
    p.add_argument("--width", type=int, default=None, help="units per hidden layer (default 256; quick 128)")
    p.add_argument("--activation", default="relu", help="relu, sigmoid or tanh (default relu)")
    p.add_argument("--steps", type=int, default=None, help="training steps per method (default 3000; quick 300)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--lr-decay", action="store_true",
                   help="divide the rate by 10 at 60%% and 80%% of the steps (DNI's schedule, scaled)")
    p.add_argument("--evals", type=int, default=10, help="evaluations along each run (default 10)")


def compute(args):
    import optax

    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_updates import step_decay
    from sgtheory.validate import int_in_range

    steps = args.steps or (300 if args.quick else 3000)
    width = args.width or (128 if args.quick else 256)
    names = [m.strip() for m in args.methods.split(",")] if args.methods else list(M.METHODS)
    for m in names:
        M.get(m)  # unknown names fail before any training
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, width, args.activation, False)
    eval_every = max(1, steps // int_in_range(args.evals, "evals", 1))
    common = dict(steps=steps, batch_size=args.batch_size, lr=args.lr, eval_every=eval_every, seed=args.seed)
    if args.lr_decay:
        runs = [nets.train(ds, config, m, optimizer=lambda r: optax.adam(step_decay(r, steps)), **common)
                for m in names]
    else:
        runs = [nets.train(ds, config, m, **common) for m in names]
    metrics = [r.metrics for r in runs]
    arrays = {"step": metrics[0]["step"],
              **{k: np.stack([m[k] for m in metrics]) for k in ("test_error", "train_loss", "sg_loss", "cosine")}}
    meta = {"methods": names, "table": M.unified_table("markdown"), "config": config.to_dict(),
            "dataset": ds.name, "steps": steps, "batch_size": args.batch_size, "optimizer": "adam", "lr": args.lr,
            "schedule": "x0.1 at 60% and 80% of the steps" if args.lr_decay else "constant",
            "steps_per_second": [r.info["steps_per_second"] for r in runs],
            "backend": runs[0].info["backend"]}
    return arrays, meta


def results_table(arrays, meta) -> str:
    lines = ["| method | test error | train loss | mean cosine to true gradient (layers 1..D) | steps/s |",
             "|---|---|---|---|---|"]
    for i, m in enumerate(meta["methods"]):
        cos = arrays["cosine"][i, -1]
        lines.append(f"| `{m}` | {arrays['test_error'][i, -1]:.4f} | {arrays['train_loss'][i, -1]:.4f} | "
                     f"{np.mean(cos):.3f} ({', '.join(f'{c:.2f}' for c in cos)}) | {meta['steps_per_second'][i]:.0f} |")
    return "\n".join(lines)


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.plotting import figure

    names, err, step = meta["methods"], arrays["test_error"], arrays["step"]
    cfg = meta["config"]
    title = (f"{meta['dataset']}, {cfg['depth']}×{cfg['width']} {cfg['activation']}, "
             f"{meta['steps']} steps")
    with figure(1, 2, figsize=(9.5, 3.6)) as (fig, (ax1, ax2)):
        for i, m in enumerate(names):
            ax1.plot(step, err[i], label=m)
        ax1.set(xlabel="step", ylabel="test error", yscale="log", title=title)
        ax1.legend(ncol=2)
        ax2.barh(names, err[:, -1], color=[f"C{i % 8}" for i in range(len(names))])
        ax2.invert_yaxis()
        ax2.set(xlabel="final test error", title="same net, seed and data order")
        for i, v in enumerate(err[:, -1]):
            ax2.text(v, i, f" {v:.3f}", va="center", fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    cos = arrays["cosine"][:, -1, :]
    with figure(figsize=(5.0, 3.6)) as (fig, ax):
        for i, m in enumerate(names):
            ax.plot(np.arange(1, cos.shape[1] + 1), cos[i], marker="o", label=m)
        ax.set(xlabel="hidden layer i", ylabel="cos(signal, ∂ℓ/∂h_i)", ylim=(-1.05, 1.05),
               title="signal vs true gradient at the end")
        ax.legend(ncol=2, fontsize=7)
        savefig(fig, out / "c10_cosine.png")
    text = (f"# C10: the unified view\n\n## Properties (generated from the method declarations)\n\n{meta['table']}\n\n"
            f"## One run per method: {title}, batch {meta['batch_size']}, Adam lr {meta['lr']} "
            f"({meta.get('schedule', 'constant')}), "
            f"seed {meta['seed']}\n\n{results_table(arrays, meta)}\n")
    write_text(out / f"{NAME}.md", text)
    final = {m: round(float(err[i, -1]), 4) for i, m in enumerate(names)}
    return {"dataset": meta["dataset"], "steps": meta["steps"], "test_error": final,
            "best": min(final, key=final.get)}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
