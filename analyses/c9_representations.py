"""C9: SG-trained nets learn drastically different layer-wise representations (Czarnecki et al. 2017, Fig. 7).

20-hidden-layer ReLU MLPs (batch-norm) on MNIST-5k trained with backprop, one cSG between layers 11 and 12
(the module predicts ∂ℓ/∂h₁₁), a cSG between every pair of layers (bootstrapped, csg-every), and DFA, each
as a population over ``--seeds`` seeds in one program (seed s: the same initialisation and data order
for every net). For each net and seed: RDMs (1 − Pearson) of a label-ordered sample of test points at every
hidden layer; the root-mean-square distance of each layer's diagonal class blocks to those of layer 20;
linear-probe accuracy per layer; and CKA / SVCCA layer × layer matrices against the BP net of the same seed.
The yardstick for "different" is BP against BP of the next seed (BP is trained with one seed more).
Curves: mean ± sd over seeds; the RDM panels and similarity matrices show the first seed (and say so).
"""

from __future__ import annotations

import sys

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import numpy as np

from sgtheory.settings import TRAINING, Setting

NAME = "c9_representations"
NETS = ("bp", "csg", "every", "dfa")
OTHERS = ("csg", "every", "dfa", "bp_next_seed")

SETTINGS = (
    *TRAINING.pick("lr", steps=(3000, 400), width=(256, 48), depth=20, seeds=(3, 2)),
    Setting("sg_layer", "int", full=11, lo=1, help="hidden layer of the single cSG (below the top layer)"),
    Setting("every_method", "str", full="csg-every", choices=("csg-every", "sg-every"),
            help="the SG-between-every-pair net"),
    Setting("rdm_samples", "int", full=300, quick=200, lo=10, hi=5000, help="label-ordered test points per RDM"),
    Setting("n_compare", "int", full=1000, quick=500, lo=20, hi=5000,
            help="test points for CKA/SVCCA/probes (1000 = all of MNIST-5k's test split)"),
    Setting("every_lr", "float", full=3e-4, above=0,
            help="Adam rate of the SG-between-every-pair net (at 1e-3 the 20-layer csg-every net stays at ~76% "
                 "test error after 3,000 steps)"),
    Setting("batchnorm", "flag", full=True, help="batch-normalise every hidden layer"),
)


def compute(args):
    from sgtheory.data import load
    from sgtheory.errors import InputError
    from sgtheory.nets import MLPConfig, activations, methods, train_population
    from sgtheory.represent import rdm, similarity_matrix
    from sgtheory.represent.layerwise import diagonal_block_distance, label_ordered_sample

    depth, k = args.depth, args.sg_layer
    if not 2 <= depth <= 50 or k >= depth:
        raise InputError(f"--sg-layer: must be below the top hidden layer (1..{depth - 1}), got {k}")
    seeds = list(range(args.seed, args.seed + args.seeds))
    data = load("mnist5k", seed=args.seed)
    config = MLPConfig(784, 10, depth=depth, width=args.width, batchnorm=args.batchnorm)
    plan = {"bp": methods.get("bp"), "csg": methods.get("csg", layer=k), "every": methods.get(args.every_method),
            "dfa": methods.get("dfa")}
    rdm_idx = label_ordered_sample(data.y_test, args.rdm_samples, seed=args.seed)
    cmp_idx = label_ordered_sample(data.y_test, min(args.n_compare, data.y_test.size), seed=args.seed)
    errors, acts = {}, {}
    for name, method in plan.items():
        lr = args.every_lr if name == "every" else args.lr
        # BP gets one more seed: BP of seed s+1 against BP of seed s is the yardstick for "different"
        pop = train_population(data, config, method, steps=args.steps, batch_size=128, lr=lr, eval_every=args.steps,
                               seeds=seeds + ([seeds[-1] + 1] if name == "bp" else []), show_progress=False)
        errors[name] = [float(e) for e in pop.metrics["test_error"][:len(seeds), -1]]  # NaN for a diverged seed
        acts[name] = [[np.asarray(h, np.float64) for h in activations(_checkpoint(pop.member(s)), data.x_test)[:-1]]
                      for s in range(pop.size)]  # per seed: h1..hD (logits dropped)
    acts["bp_next_seed"], acts["bp"] = acts["bp"][1:], acts["bp"][:-1]
    y_rdm = data.y_test[rdm_idx]
    arrays = {"rdm_labels": y_rdm}
    for name in NETS:
        blocks, probes = [], []
        for s in range(len(seeds)):
            rdms = np.stack([rdm(h[rdm_idx]) if np.all(np.ptp(h[rdm_idx], axis=1) > 0) else _rdm_safe(h[rdm_idx])
                             for h in acts[name][s]])
            if s == 0:
                arrays[f"rdm_{name}"] = rdms.astype(np.float32)  # the panels show the first seed
            blocks.append(diagonal_block_distance(rdms, y_rdm))
            probes.append(_probes(acts[name][s], data.y_test[cmp_idx], cmp_idx, args.seed))
        arrays[f"block_{name}"], arrays[f"probe_{name}"] = np.stack(blocks), np.stack(probes)  # (seeds, D)
    for name in OTHERS:
        for measure in ("linear_cka", "svcca"):
            arrays[f"{measure}_{name}_vs_bp"] = np.stack([similarity_matrix(
                [h[cmp_idx] for h in acts[name][s]], [h[cmp_idx] for h in acts["bp"][s]], measure)
                for s in range(len(seeds))])
    meta = {"depth": depth, "width": args.width, "steps": args.steps, "sg_layer": k, "every_method": args.every_method,
            "batchnorm": args.batchnorm, "lr": args.lr, "every_lr": args.every_lr, "batch_size": 128,
            "optimizer": "adam", "seeds": seeds, "rdm_samples": int(rdm_idx.size), "n_compare": int(cmp_idx.size),
            "test_error": errors, "dataset": "mnist5k"}
    return arrays, meta


def _checkpoint(res):
    """A loaded-checkpoint view of a TrainResult (what :func:`sgtheory.nets.activations` reads)."""
    from sgtheory.nets import Checkpoint

    return Checkpoint(tuple({k: np.asarray(v) for k, v in p.items()} for p in res.params),
                      tuple({k: np.asarray(v) for k, v in s.items()} for s in res.bn_state),
                      res.method_state, res.config, res.method, res.metrics, {})


def _rdm_safe(x):
    """1 − Pearson, with a sample whose activations are all equal (a dead ReLU layer) at distance 1."""
    xc = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(xc, axis=1)
    z = np.divide(xc, norm[:, None], out=np.zeros_like(xc), where=norm[:, None] > 0)
    return np.clip(1.0 - z @ z.T, 0.0, 2.0) * (1 - np.eye(len(x)))


def _probes(layers, y, idx, seed):
    from sgtheory.represent.activations import make_activations
    from sgtheory.represent.layerwise import probe_accuracy

    return probe_accuracy(make_activations([h[idx] for h in layers]), y, test_fraction=0.5, seed=seed)


def _bands(ax, curves: dict):
    """± sd bands under the mean lines :func:`plot_per_layer` drew (same order, same colours)."""
    for line, runs in zip(ax.get_lines(), curves.values()):
        runs = np.asarray(runs, float)
        if len(runs) > 1:
            mean, sd = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0, ddof=1)
            ax.fill_between(np.arange(mean.size), mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)


def _pm(values) -> str:
    from sgtheory.nets import mean_sd

    s = mean_sd(list(values))
    return "diverged" if s["mean"] is None else f"{s['mean']:.3f}" + (f" ± {s['sd']:.3f}" if s["sd"] else "")


def plot(arrays, meta, out):
    import matplotlib.pyplot as plt

    from sgtheory.io import savefig
    from sgtheory.nets import mean_sd, paired_difference
    from sgtheory.plotting import figure, style
    from sgtheory.plotting.probes import plot_per_layer, plot_rdm_panels, plot_similarity

    depth, k, seeds = meta["depth"], meta["sg_layer"], meta["seeds"]
    names = [f"h{i}" for i in range(1, depth + 1)]
    label = {"bp": "BP", "csg": f"cSG at h{k}", "every": meta["every_method"], "dfa": "DFA",
             "bp_next_seed": "BP (next seed)"}
    err = meta["test_error"]
    with style():
        fig = plt.figure(figsize=(0.75 * depth, 1.2 * len(NETS)))
        for sub, name in zip(fig.subfigures(len(NETS), 1), NETS):
            plot_rdm_panels(arrays[f"rdm_{name}"], names, labels=arrays["rdm_labels"], ncols=depth,
                            row_title=f"{label[name]}, seed {seeds[0]} (test error {err[name][0]:.3f})", fig=sub)
        savefig(fig, out / f"{NAME}_rdms.png", dpi=90)
        plt.close(fig)
    with figure(1, 2, figsize=(10, 3.6)) as (fig, ax):
        for i, (key, ylabel, title) in enumerate((
                ("block", f"RMS distance of diagonal blocks to h{depth}", "class-block structure vs the last layer"),
                ("probe", "held-out linear-probe accuracy", "linear probes"))):
            curves = {label[n]: arrays[f"{key}_{n}"] for n in NETS}
            plot_per_layer({lab: np.nanmean(v, axis=0) for lab, v in curves.items()}, names=names, markers=[k - 1],
                           ylabel=ylabel, ax=ax[i], title=f"{title} (mean ± sd, {len(seeds)} seeds)")
            _bands(ax[i], curves)
        fig.tight_layout()
        savefig(fig, out / f"{NAME}_curves.png")
    with figure(2, len(OTHERS), figsize=(4.2 * len(OTHERS), 7.4)) as (fig, ax):
        for j, name in enumerate(OTHERS):
            for i, measure in enumerate(("linear_cka", "svcca")):
                plot_similarity(arrays[f"{measure}_{name}_vs_bp"][0], names, names, ax=ax[i, j], label_a=label[name],
                                label_b="BP", title=f"{measure}: {label[name]} vs BP (seed {seeds[0]})")
        fig.tight_layout()
        savefig(fig, out / f"{NAME}_similarity.png")
    below = slice(max(0, k - 3), k)  # the layers just below the SG: h_{k-2}, h_{k-1}, h_k
    block = {n: arrays[f"block_{n}"] for n in NETS}  # (seeds, D)
    below_sg = {n: block[n][:, below].mean(axis=1) for n in NETS}
    diff = paired_difference(list(below_sg["csg"]), list(below_sg["bp"]))
    cka = {n: np.array([np.mean(np.diag(m)) for m in arrays[f"linear_cka_{n}_vs_bp"]]) for n in OTHERS}
    r = lambda x: None if x is None else round(x, 4)
    stat = lambda v: {key: r(val) for key, val in mean_sd(list(v)).items() if key != "n"}
    return {
        "seeds": len(seeds),
        "block_distance_below_sg": {n: stat(v) for n, v in below_sg.items()},
        "block_distance_below_sg_csg_minus_bp": {"mean": r(diff["mean"]), "sd": r(diff["sd"]),
                                                  "beyond_spread": diff["beyond_spread"]},
        "block_distance_at_sg": {n: stat(block[n][:, k - 1]) for n in NETS},
        "block_distance_mean_over_layers": {n: stat(block[n][:, :-1].mean(axis=1)) for n in NETS},
        "cka_diag_mean_vs_bp": {n: stat(v) for n, v in cka.items()},
        "probe_at_sg": {n: stat(arrays[f"probe_{n}"][:, k - 1]) for n in NETS},
        "test_error": {n: _pm(v) for n, v in err.items()},
    }


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
