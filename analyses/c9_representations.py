"""C9: SG-trained nets learn drastically different layer-wise representations (Czarnecki et al. 2017, Fig. 7).

20-hidden-layer ReLU MLPs (batch-norm) on MNIST-5k trained with backprop, one cSG between layers 11 and 12
(the module predicts ∂ℓ/∂h₁₁), a cSG between every pair of layers (bootstrapped, csg-every), and DFA.
For each net: RDMs (1 − Pearson) of a label-ordered sample of test points at every hidden layer; the
root-mean-square distance of each layer's diagonal class blocks to those of layer 20; linear-probe accuracy
per layer; and CKA / SVCCA layer × layer matrices of every net against the backprop net (and, as the yardstick
for "different", of a second backprop net trained from another seed against the first).
"""

from __future__ import annotations

import sys

import numpy as np

from sgtheory.repro import analysis_main

NAME = "c9_representations"
NETS = ("bp", "csg", "every", "dfa")


def add_arguments(p):
    p.add_argument("--steps", type=int, default=None, help="training steps per net (default 3000; quick 400)")
    p.add_argument("--width", type=int, default=None, help="hidden width (default 256; quick 48)")
    p.add_argument("--depth", type=int, default=20, help="hidden layers (default 20, as the paper)")
    p.add_argument("--sg-layer", type=int, default=11, help="hidden layer of the single cSG (default 11)")
    p.add_argument("--every-method", default="csg-every", choices=["csg-every", "sg-every"],
                   help="the SG-between-every-pair net (default csg-every)")
    p.add_argument("--rdm-samples", type=int, default=None, help="label-ordered test points per RDM (300; quick 200)")
    p.add_argument("--n-compare", type=int, default=None,
                   help="test points for CKA/SVCCA/probes (default 1000 = all of MNIST-5k's test split; quick 500)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--every-lr", type=float, default=3e-4,
                   help="Adam learning rate of the SG-between-every-pair net (default 3e-4: at 1e-3 the 20-layer "
                        "csg-every net stays at ~76%% test error after 3,000 steps)")
    p.add_argument("--no-batchnorm", action="store_true", help="train without batch-norm")


def compute(args):
    from sgtheory.data import load
    from sgtheory.nets import MLPConfig, activations, methods, train
    from sgtheory.represent import rdm, similarity_matrix
    from sgtheory.represent.layerwise import diagonal_block_distance, label_ordered_sample
    from sgtheory.validate import int_in_range, positive

    steps = int_in_range(args.steps or (400 if args.quick else 3000), "--steps", lo=1)
    width = int_in_range(args.width or (48 if args.quick else 256), "--width", lo=1)
    depth = int_in_range(args.depth, "--depth", lo=2, hi=50)
    k = int_in_range(args.sg_layer, "--sg-layer", lo=1, hi=depth - 1)
    n_rdm = int_in_range(args.rdm_samples or (200 if args.quick else 300), "--rdm-samples", lo=10)
    n_cmp = int_in_range(args.n_compare or (500 if args.quick else 1000), "--n-compare", lo=20)
    data = load("mnist5k", seed=args.seed)
    config = MLPConfig(784, 10, depth=depth, width=width, batchnorm=not args.no_batchnorm)
    plan = {"bp": methods.get("bp"), "csg": methods.get("csg", layer=k), "every": methods.get(args.every_method),
            "dfa": methods.get("dfa"), "bp_seed2": methods.get("bp")}
    rdm_idx = label_ordered_sample(data.y_test, n_rdm, seed=args.seed)
    cmp_idx = label_ordered_sample(data.y_test, min(n_cmp, data.y_test.size), seed=args.seed)
    arrays, errors = {}, {}
    acts = {}
    for name, method in plan.items():
        seed = args.seed + (1 if name == "bp_seed2" else 0)
        lr = positive(args.every_lr, "--every-lr") if name == "every" else positive(args.lr, "--lr")
        res = train(data, config, method, steps=steps, batch_size=128, lr=lr,
                    eval_every=steps, seed=seed, show_progress=False)
        errors[name] = float(res.metrics["test_error"][-1])
        hidden = activations(_checkpoint(res), data.x_test)[:-1]  # h1..hD (logits dropped)
        acts[name] = [np.asarray(h, np.float64) for h in hidden]
    y_rdm = data.y_test[rdm_idx]
    for name in NETS:
        rdms = np.stack([rdm(h[rdm_idx]) if np.all(np.ptp(h[rdm_idx], axis=1) > 0) else _rdm_safe(h[rdm_idx])
                         for h in acts[name]])
        arrays[f"rdm_{name}"] = rdms.astype(np.float32)
        arrays[f"block_{name}"] = diagonal_block_distance(rdms, y_rdm)
        arrays[f"probe_{name}"] = _probes(acts[name], data.y_test[cmp_idx], cmp_idx, args.seed)
    for name in ("csg", "every", "dfa", "bp_seed2"):
        for measure in ("linear_cka", "svcca"):
            arrays[f"{measure}_{name}_vs_bp"] = similarity_matrix(
                [h[cmp_idx] for h in acts[name]], [h[cmp_idx] for h in acts["bp"]], measure)
    arrays["rdm_labels"] = y_rdm
    meta = {"depth": depth, "width": width, "steps": steps, "sg_layer": k, "every_method": args.every_method,
            "batchnorm": not args.no_batchnorm, "lr": args.lr, "every_lr": args.every_lr, "batch_size": 128, "optimizer": "adam",
            "rdm_samples": int(rdm_idx.size), "n_compare": int(cmp_idx.size), "test_error": errors,
            "dataset": "mnist5k"}
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


def plot(arrays, meta, out):
    import matplotlib.pyplot as plt

    from sgtheory.io import savefig
    from sgtheory.plotting import figure, style
    from sgtheory.plotting.probes import plot_per_layer, plot_rdm_panels, plot_similarity

    depth, k = meta["depth"], meta["sg_layer"]
    names = [f"h{i}" for i in range(1, depth + 1)]
    label = {"bp": "BP", "csg": f"cSG at h{k}", "every": meta["every_method"], "dfa": "DFA",
             "bp_seed2": "BP (seed 2)"}
    with style():
        fig = plt.figure(figsize=(0.75 * depth, 1.2 * len(NETS)))
        for sub, name in zip(fig.subfigures(len(NETS), 1), NETS):
            plot_rdm_panels(arrays[f"rdm_{name}"], names, labels=arrays["rdm_labels"], ncols=depth,
                            row_title=f"{label[name]} (test error {meta['test_error'][name]:.3f})", fig=sub)
        savefig(fig, out / f"{NAME}_rdms.png", dpi=90)
        plt.close(fig)
    with figure(1, 2, figsize=(10, 3.6)) as (fig, ax):
        plot_per_layer({label[n]: arrays[f"block_{n}"] for n in NETS}, names=names, markers=[k - 1],
                       ylabel=f"RMS distance of diagonal blocks to h{depth}", ax=ax[0],
                       title="class-block structure vs the last layer")
        plot_per_layer({label[n]: arrays[f"probe_{n}"] for n in NETS}, names=names, markers=[k - 1],
                       ylabel="held-out linear-probe accuracy", ax=ax[1], title="linear probes")
        fig.tight_layout()
        savefig(fig, out / f"{NAME}_curves.png")
    others = ("csg", "every", "dfa", "bp_seed2")
    with figure(2, len(others), figsize=(4.2 * len(others), 7.4)) as (fig, ax):
        for j, name in enumerate(others):
            for i, measure in enumerate(("linear_cka", "svcca")):
                plot_similarity(arrays[f"{measure}_{name}_vs_bp"], names, names, ax=ax[i, j],
                                label_a=label[name], label_b="BP", title=f"{measure}: {label[name]} vs BP")
        fig.tight_layout()
        savefig(fig, out / f"{NAME}_similarity.png")
    below = slice(max(0, k - 3), k)  # the layers just below the SG: h_{k-2}, h_{k-1}, h_k
    block = {n: arrays[f"block_{n}"] for n in NETS}
    diag = {n: float(np.mean(np.diag(arrays[f"linear_cka_{n}_vs_bp"]))) for n in others}
    return {
        "block_distance_below_sg_csg": round(float(block["csg"][below].mean()), 4),
        "block_distance_below_sg_bp": round(float(block["bp"][below].mean()), 4),
        "block_distance_at_sg_csg": round(float(block["csg"][k - 1]), 4),
        "block_distance_at_sg_bp": round(float(block["bp"][k - 1]), 4),
        "block_distance_mean_every": round(float(block["every"][:-1].mean()), 4),
        "block_distance_mean_bp": round(float(block["bp"][:-1].mean()), 4),
        "cka_diag_mean_vs_bp": {n: round(v, 4) for n, v in diag.items()},
        "probe_at_sg": {n: round(float(arrays[f"probe_{n}"][k - 1]), 4) for n in NETS},
        "test_error": {n: round(v, 4) for n, v in meta["test_error"].items()},
    }


def main(argv=None):
    return analysis_main(NAME, compute, plot, argv, description=__doc__, add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
