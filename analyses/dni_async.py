"""DNI asynchronous updates: cDNI still trains when each layer updates only with probability p per step.

Jaderberg et al. (2017, arXiv 1608.05343; paper_notes §2, likely): with label-conditioned synthetic
gradients between every layer, layers need not update in lock-step; a net still trains when each
layer updates only 5% of the time. Their net, schedule and step count for this are unknown to us:
we use the feed-forward protocol's 256-unit ReLU net with batch-norm and Adam.

Each run trains ``csg-every`` (cDNI, linear modules) with :func:`sgtheory.nets.async_updates.async_layers`:
at every step each hidden layer (with its SG module) and the output layer update independently with
probability ``p``; a skipped layer keeps its parameters and its Adam state. Forward passes and signals
are computed every step. ``bp`` at ``p = 1`` is the reference. Curves are drawn against steps and
against expected updates per layer (``p × step``).

    python analyses/dni_async.py --quick     # depth 3, width 128, 600 steps, p in {1, 0.5, 0.2, 0.05}
    python analyses/dni_async.py             # depth 4, width 256, 20,000 steps
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main

NAME = "dni_async"


def add_arguments(p):
    p.add_argument("--probs", default="1,0.5,0.2,0.05", help="update probabilities p (default 1,0.5,0.2,0.05)")
    p.add_argument("--method", default="csg-every", help="method whose layers update asynchronously (default csg-every)")
    p.add_argument("--depth", type=int, default=None, help="hidden layers (default 4; quick 3)")
    p.add_argument("--width", type=int, default=None, help="units per hidden layer (default 256; quick 128)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default 20000; quick 600)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3; paper's: unknown)")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch size (default 256)")
    p.add_argument("--evals", type=int, default=20, help="evaluations along each run (default 20)")
    p.add_argument("--dataset", default="mnist5k", help="data set (default mnist5k)")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")


def compute(args):
    import jax
    import optax

    from sgtheory import data, nets
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_updates import async_layers
    from sgtheory.validate import int_in_range, positive_list

    probs = [float(p) for p in positive_list(args.probs, "probs")]
    depth = args.depth or (3 if args.quick else 4)
    width = args.width or (128 if args.quick else 256)
    steps = int_in_range(args.steps or (600 if args.quick else 20_000), "steps", 1)
    eval_every = max(1, steps // int_in_range(args.evals, "evals", 1))
    method = M.get(args.method)
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, width, "relu", True)
    common = dict(steps=steps, lr=args.lr, batch_size=args.batch_size, eval_every=eval_every, seed=args.seed)
    skip_key = jax.random.fold_in(jax.random.PRNGKey(args.seed), 7)  # the skips' own stream
    runs = [nets.train(ds, config, method, optimizer=lambda r, p=p: async_layers(optax.adam(r), p, key=skip_key),
                       **common) for p in probs]
    ref = nets.train(ds, config, "bp", **common)
    arrays = {"step": ref.metrics["step"], "probs": np.array(probs),
              "test_error": np.stack([r.metrics["test_error"] for r in runs]),
              "train_loss": np.stack([r.metrics["train_loss"] for r in runs]),
              "sg_loss": np.stack([r.metrics["sg_loss"] for r in runs]),
              "bp_test_error": ref.metrics["test_error"], "bp_train_loss": ref.metrics["train_loss"]}
    meta = {"method": method.name, "depth": depth, "width": width, "steps": steps, "lr": args.lr,
            "optimizer": "adam", "batch_size": args.batch_size, "batchnorm": True, "dataset": ds.name, "n_classes": ds.n_classes,
            "groups": "each hidden layer with its SG module, and the output layer, updates independently"}
    return arrays, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    step, probs, err = arrays["step"], arrays["probs"], arrays["test_error"]
    with figure(1, 2, figsize=(9.0, 3.4)) as (fig, (ax1, ax2)):
        for k, p in enumerate(probs):
            ax1.plot(step, err[k], color=f"C{k}", label=f"{meta['method']}, p = {p:g}")
            ax2.plot(p * step, err[k], color=f"C{k}", label=f"p = {p:g}")
        ax1.plot(step, arrays["bp_test_error"], color="k", ls="--", label="bp, p = 1")
        ax2.plot(step, arrays["bp_test_error"], color="k", ls="--", label="bp")
        ax1.set(xlabel="step", ylabel="test error", yscale="log",
                title=f"{meta['depth']}×{meta['width']} ReLU + BN, {meta['dataset']}")
        ax2.set(xlabel="expected updates per layer (p × step)", yscale="log", title="per update")
        ax1.legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    final = {f"{p:g}": round(float(err[k, -1]), 4) for k, p in enumerate(probs)}
    return {"method": meta["method"], "final_test_error": final,
            "bp_final_test_error": round(float(arrays["bp_test_error"][-1]), 4),
            "chance_error": round(1 - 1 / meta["n_classes"], 2)}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__.splitlines()[0], add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
