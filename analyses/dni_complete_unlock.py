"""DNI complete unlock: test error against p_update, for DNI and cDNI with synthetic gradients (M) and inputs (I + M).

Jaderberg et al. (2017, arXiv 1608.05343): with synthetic gradients between every pair of layers a net's
layers need not update in lock-step, and with synthetic inputs ``I_i(x)`` as well they need not even wait for
the forward pass below them ("complete unlock"). In their asynchronous MNIST experiment each layer, after
every forward pass, does its backward pass and updates only with probability ``p_update``; cDNI still
converges at ``p_update = 5%``. Net, schedule, budget and values are unknown to us (paper_repro.md).

This script (it grew out of ``dni_async``, which had ``M`` only) sweeps ``p_update`` × {DNI, cDNI} ×
{M, I + M} × seeds with :func:`sgtheory.nets.async_train.async_sweep` — every ``p_update`` × seed run of one
method is one vmapped program. Each layer, with probability ``p_update`` per step, updates its weights, the
SG module it learns from and its input model (a skipped layer keeps them and its Adam state bit for bit).

- DNI = ``sg-every`` / ``sg-unlock`` (unconditioned SG modules, ``--dni-module``); cDNI = ``csg-every`` /
  ``csg-unlock`` (linear label-conditioned modules); ``I + M`` adds an input model for every layer above the
  first (``--input-model``), trained toward the real input of its layer; that layer then trains on the
  synthetic input. Test error is always that of the real composed net.
- ``I + M`` fits each SG module at the synthetic input above it, where its target is computed (as
  koz4k/dni-pytorch); the third panel (``imo``) fits it at the layer's own output, where it is applied.
- Also recorded: the train/apply shift of each SG (where it is fitted versus the real net's activation:
  :mod:`sgtheory.nets.sg_shift`), and BP at ``p_update = 1`` as a reference line.

    python analyses/dni_complete_unlock.py --quick   # 2×32 net, p in {1, 0.2, 0.05}, 3 seeds, 600 steps
    python analyses/dni_complete_unlock.py           # 3×64 net, p in {1, 0.5, 0.2, 0.1, 0.05}, 3 seeds, 12,000 steps

Defaults (ours; the paper's are unknown): Adam 3e-3 for net, SG and input models, constant; batch 64; DNI's
SG module an MLP with two hidden layers of 2×width units; input models an MLP with one hidden layer of
2×width units.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import numpy as np

from sgtheory.settings import TRAINING, Setting

NAME = "dni_complete_unlock"
VARIANTS = {"dni": ("sg-every", "sg-unlock"), "cdni": ("csg-every", "csg-unlock")}
UNLOCKS = {"m": "M", "im": "I + M", "imo": "I + M, SG fitted at the layer output"}
LABELS = {"dni": "DNI", "cdni": "cDNI"}

SETTINGS = (
    Setting("probs", "floats", full=(1.0, 0.5, 0.2, 0.1, 0.05), quick=(1.0, 0.2, 0.05), above=0, hi=1,
            help="update probabilities p_update"),
    Setting("variants", "strs", full=("dni", "cdni"), choices=tuple(VARIANTS),
            help="dni (unconditioned SG modules), cdni (label-conditioned)"),
    Setting("unlock", "strs", full=("m", "im", "imo"), quick=("m", "im"), choices=tuple(UNLOCKS),
            help="m (synthetic gradients only), im (synthetic inputs too: complete unlock; each SG fitted at the "
                 "synthetic input above it, as koz4k/dni-pytorch), imo (the same, SG fitted at the layer's output)"),
    Setting("seeds", "int", full=3, lo=1, hi=1000, help="seeds per cell: seed, seed+1, ..."),
    *TRAINING.pick("dataset", "data_root", "sg_lr", depth=(3, 2), width=(64, 32), steps=(12_000, 600),
                   batch_size=64, lr=3e-3, evals=4, batchnorm=True),
    Setting("schedule", "str", full="constant", choices=("constant", "step"),
            help="learning rates constant, or step: ÷10 at 60% and 80% of the steps (DNI's feed-forward schedule)"),
    Setting("dni_module", "str", full="mlp", choices=("mlp", "linear"), help="DNI's SG module (cDNI's is linear)"),
    Setting("sg_hidden", "int", full=None, optional=True, lo=1,
            help="units of each of the DNI MLP module's 2 hidden layers (none: 2×width)"),
    Setting("input_model", "str", full="mlp", choices=("mlp", "linear"),
            help="input model I(x): mlp (one hidden layer) or linear"),
    Setting("input_hidden", "int", full=None, optional=True, lo=1, help="input-model hidden units (none: 2×width)"),
    Setting("bp", "flag", full=True, help="BP reference runs at p_update = 1"),
)


def compute(args):
    from sgtheory import data, nets
    from sgtheory.errors import InputError
    from sgtheory.nets import methods as M
    from sgtheory.nets.async_train import async_sweep

    probs, variants, unlocks = list(args.probs), list(args.variants), list(args.unlock)
    depth, width, steps, evals, batch = args.depth, args.width, args.steps, args.evals, args.batch_size
    if steps % evals:
        raise InputError(f"--evals: must divide --steps ({steps}), got {evals}")
    sg_hidden = args.sg_hidden or 2 * width
    input_hidden = args.input_hidden or 2 * width
    n_seeds = args.seeds
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, depth, width, "relu", args.batchnorm)
    seeds = [args.seed + i for i in range(n_seeds)]
    common = dict(p_update=probs, seeds=seeds, steps=steps, eval_every=steps // evals, lr=args.lr, sg_lr=args.sg_lr,
                  batch_size=batch, schedule=args.schedule)

    def method(v, u):
        opts = {"module": args.dni_module, "hidden": sg_hidden} if v == "dni" else {}
        if u != "m":
            opts.update(input_model=args.input_model, input_hidden=input_hidden,
                        fit_at="input" if u == "im" else "output")
        return M.get(VARIANTS[v][u != "m"], **opts)

    keys = ("test_error", "train_loss", "sg_loss", "input_loss", "input_error", "sg_train_loss", "sg_apply_loss",
            "sg_cosine")
    out = {k: [] for k in keys}
    seconds = {}
    for v in variants:
        rows = {k: [] for k in keys}
        for u in unlocks:
            res = async_sweep(ds, config, method(v, u), **common)
            seconds[f"{v}-{u}"] = res.info["seconds"]
            for k in keys:
                rows[k].append(res.metrics[k])
        for k in keys:
            out[k].append(np.stack(rows[k]))
    arrays = {k: np.stack(v) for k, v in out.items()}  # (V, U, P, S, E[, K])
    arrays.update(step=res.metrics["step"], probs=np.asarray(probs), seeds=np.asarray(seeds))
    if args.bp:
        ref = async_sweep(ds, config, "bp", **{**common, "p_update": [1.0]})
        arrays["bp_test_error"] = ref.metrics["test_error"][0]  # (S, E)
        seconds["bp"] = ref.info["seconds"]
    meta = {"variants": variants, "unlocks": unlocks, "depth": depth, "width": width, "steps": steps, "lr": args.lr,
            "sg_lr": args.sg_lr or args.lr, "schedule": args.schedule, "batch_size": batch,
            "optimizer": "adam, per layer", "batchnorm": args.batchnorm, "activation": "relu",
            "dni_module": args.dni_module, "sg_hidden": sg_hidden if args.dni_module == "mlp" else None,
            "input_model": args.input_model, "input_hidden": input_hidden if args.input_model == "mlp" else None,
            "dataset": ds.name, "n_classes": ds.n_classes, "seconds_per_program": seconds,
            "methods": {f"{v}-{u}": method(v, u).name for v in variants for u in unlocks},
            "groups": "each layer with the SG module it learns from and its input model updates with p_update"}
    return arrays, meta


def _cells(arrays, meta):
    """Mean and sd over seeds of the test error, ``(V, U, P, E)`` each."""
    err = arrays["test_error"]
    return err.mean(axis=3), err.std(axis=3, ddof=1) if err.shape[3] > 1 else np.zeros(err.mean(axis=3).shape)


def _table(arrays, meta) -> str:
    mean, sd = _cells(arrays, meta)
    steps, probs = arrays["step"], arrays["probs"]
    head = "| variant | p_update | " + " | ".join(f"{int(s):,} steps" for s in steps) + " |"
    lines = [head, "|" + "---|" * (2 + len(steps))]
    for i, v in enumerate(meta["variants"]):
        for j, u in enumerate(meta["unlocks"]):
            for k, p in enumerate(probs):
                cells = [f"{100 * mean[i, j, k, e]:.1f} ± {100 * sd[i, j, k, e]:.1f}" for e in range(len(steps))]
                lines.append(f"| {LABELS[v]} {UNLOCKS[u]} | {p:g} | " + " | ".join(cells) + " |")
    if "bp_test_error" in arrays:
        bp = arrays["bp_test_error"]
        sd_bp = bp.std(axis=0, ddof=1) if bp.shape[0] > 1 else np.zeros(bp.shape[1])
        cells = [f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(bp.mean(0), sd_bp)]
        lines.append("| BP | 1 | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _shift_table(arrays, meta) -> str:
    """Final-step train/apply shift of the SG modules (mean over seeds and SG layers)."""
    probs = arrays["probs"]
    lines = ["| variant | p_update | input error | SG loss where trained | SG loss where applied "
             "| cos(SG, true grad) |",
             "|---|---|---|---|---|---|"]
    for i, v in enumerate(meta["variants"]):
        for j, u in enumerate(meta["unlocks"]):
            for k, p in enumerate(probs):
                cell = [arrays[n][i, j, k, :, -1].mean() for n in ("input_error", "sg_train_loss", "sg_apply_loss",
                                                                  "sg_cosine")]
                lines.append(f"| {LABELS[v]} {UNLOCKS[u]} | {p:g} | {cell[0]:.3f} | {cell[1]:.4g} | {cell[2]:.4g} | "
                             f"{cell[3]:.2f} |")
    return "\n".join(lines)


def plot(arrays, meta, out: Path):
    from matplotlib.ticker import FuncFormatter, LogLocator

    from sgtheory.io import savefig, write_text
    from sgtheory.plotting import figure

    mean, sd = _cells(arrays, meta)
    steps, probs = arrays["step"], arrays["probs"]
    unlocks = meta["unlocks"]
    with figure(1, len(unlocks), figsize=(4.0 * len(unlocks) + 1.8, 3.6), sharey=True, squeeze=False,
                layout="constrained") as (fig, axes):
        for j, u in enumerate(unlocks):
            ax = axes[0, j]
            for i, v in enumerate(meta["variants"]):
                for e, s in enumerate(steps):
                    ax.errorbar(probs, 100 * mean[i, j, :, e], yerr=100 * sd[i, j, :, e], color=f"C{e}",
                                ls="-" if v == "cdni" else "--", marker="o" if v == "cdni" else "s", ms=3, capsize=2,
                                label=f"{LABELS[v]}, {int(s):,} steps")
            if "bp_test_error" in arrays:
                ax.axhline(100 * arrays["bp_test_error"][:, -1].mean(), color="k", ls=":", lw=1,
                           label=f"BP, p = 1, {int(steps[-1]):,} steps")
            ax.set(xscale="log", xlabel="p_update", yscale="log")
            ax.set_title(UNLOCKS[u], fontsize=9)
            ax.set_xticks(probs, [f"{p:g}" for p in probs])
            ax.minorticks_off()
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axes[0, 0].set_ylabel("test error (%)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=6)
        bn = " + BN" if meta.get("batchnorm", True) else ""
        fig.suptitle(f"{meta['depth']}×{meta['width']} ReLU{bn}, {meta['dataset']}, mean ± sd over "
                     f"{arrays['test_error'].shape[3]} seeds", fontsize=9)
        savefig(fig, out / f"{NAME}.png")
    text = (f"# DNI complete unlock: test error (%) of the real composed net, mean ± sd over seeds\n\n"
            f"{meta['depth']}×{meta['width']} ReLU{' + batch-norm' if meta.get('batchnorm', True) else ''} on "
            f"{meta['dataset']}, Adam {meta['lr']} (SG and input "
            f"models {meta['sg_lr']}, schedule {meta.get('schedule', 'constant')}), batch {meta['batch_size']}, "
            f"DNI module {meta['dni_module']}, input model "
            f"{meta['input_model']}.\n\n{_table(arrays, meta)}\n\n"
            f"## Train/apply shift at the last step (mean over seeds and SG layers)\n\n{_shift_table(arrays, meta)}\n")
    write_text(out / f"{NAME}.md", text)
    summary = {"final_test_error": {}, "steps": int(steps[-1])}
    for i, v in enumerate(meta["variants"]):
        for j, u in enumerate(meta["unlocks"]):
            summary["final_test_error"][f"{v}-{u}"] = {f"{p:g}": round(float(mean[i, j, k, -1]), 4)
                                                       for k, p in enumerate(probs)}
    for u in ("im", "imo"):  # the number to reach: cDNI with I + M at p = 0.05 within 3 points of its p = 1
        if "cdni" in meta["variants"] and u in meta["unlocks"] and 1.0 in probs and 0.05 in probs:
            i, j = meta["variants"].index("cdni"), meta["unlocks"].index(u)
            gap = mean[i, j, list(probs).index(0.05), -1] - mean[i, j, list(probs).index(1.0), -1]
            summary[f"cdni_{u}_gap_p005_vs_p1"] = round(float(gap), 4)
            summary[f"cdni_{u}_within_3_points"] = bool(gap <= 0.03)
    if "bp_test_error" in arrays:
        summary["bp_final_test_error"] = round(float(arrays["bp_test_error"][:, -1].mean()), 4)
    return summary


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, settings=SETTINGS, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
