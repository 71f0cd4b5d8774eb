"""``sgtheory probe A B``: compare two models layer by layer (CKA, SVCCA, PWCCA, CCA, RDMs, linear probes).

A and B are sgtheory checkpoints (a folder from ``sgtheory train``, or its ``.npz`` / ``.json``) or
activation files (``.npz`` / ``.safetensors``, one array per layer; see
:mod:`sgtheory.represent.activations`). Everything is read and computed before anything is written.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MEASURES = "cka,svcca,rdm,probe"


def register(sub) -> None:
    """Add the ``probe`` subcommand.

    Args:
      sub: the subparsers object of the ``sgtheory`` parser.
    """
    p = sub.add_parser(
        "probe",
        help="compare two checkpoints or activation files layer by layer",
        description=(
            "Compare the layer representations of A and B on the same samples: a layer x layer heatmap per "
            "similarity measure, per-layer curves for matching layers, linear-probe accuracy per layer, RDM panels "
            "(with 'rdm'), and the numbers as CSV and JSON. A and B are checkpoints (folder, .npz or .json from "
            "'sgtheory train', run on the test split of --dataset) or activation files (.npz/.safetensors, one "
            "(n_samples, n_features) array per layer, rows = the same samples in both). Labels for activation files "
            "(needed by 'probe'): --labels FILE, else a 'labels' array in the file, else the test labels of "
            "--dataset (the file's rows must then be that test split, in order)."),
    )
    p.add_argument("a", metavar="A", help="checkpoint (folder/.npz/.json) or activation file (.npz/.safetensors)")
    p.add_argument("b", metavar="B", help="the second model, same kinds as A")
    p.add_argument("--dataset", default=None,
                   help="data set whose test split is fed to checkpoints (default: the one A/B were trained on)")
    p.add_argument("--data-root", default=None, help="folder of the data set's files, where it needs one")
    p.add_argument("--measures", default=DEFAULT_MEASURES,
                   help=f"comma-separated, from cka,svcca,pwcca,cca,rdm,probe (default {DEFAULT_MEASURES}); "
                        "cca and pwcca need more samples than the two layers' widths together")
    p.add_argument("--n", type=int, default=1000,
                   help="samples to compare: a seeded random subset of the test split / the files' rows (default 1000)")
    p.add_argument("--layers", default=None,
                   help="comma-separated layer positions (0 = the input side; negative count from the output side) or "
                        "names, applied to both A and B; a checkpoint's layers are h1 ... hD, logits")
    p.add_argument("--labels", default=None,
                   help="class labels for activation files: .npz (array 'labels' or its only array) or a text "
                        "file with one integer per row")
    p.add_argument("--rdm-metric", default="correlation",
                   help="sample dissimilarity for 'rdm' (default correlation = 1 − Pearson; any scipy pdist metric, "
                        "e.g. euclidean when some samples have constant activations)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample subset and the probe split (default 0)")
    p.add_argument("--data-seed", type=int, default=None,
                   help="seed of --dataset's split and order (default: the seed the first checkpoint was trained with, "
                        "else 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``sgtheory probe`` (see the module docstring).

    Args:
      args: the parsed arguments.

    Returns:
      The exit code (0; bad input raises :class:`sgtheory.InputError`).
    """
    import sys
    import warnings

    from sgtheory.cli._probe_io import check_out, load_pair, write_outputs
    from sgtheory.cli.main import emit
    from sgtheory.errors import InputError
    from sgtheory.represent.layerwise import compare_layers, parse_measures
    from sgtheory.validate import int_in_range

    measures = parse_measures(args.measures)
    n = int_in_range(args.n, "--n", lo=3)
    seed = int_in_range(args.seed, "--seed", lo=0)
    data_seed = None if args.data_seed is None else int_in_range(args.data_seed, "--data-seed", lo=0)
    out = check_out(args.out)
    layers = None
    if args.layers is not None:
        layers = [s.strip() for s in args.layers.split(",") if s.strip()]
        if not layers:
            raise InputError(f"--layers: no layer in {args.layers!r}; give positions or names, e.g. 0,1,-1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b, labels, info = load_pair(args.a, args.b, dataset=args.dataset, data_root=args.data_root,
                                       data_seed=data_seed, labels_file=args.labels, n=n, layers=layers, seed=seed,
                                       need_labels="probe" in measures)
        comp = compare_layers(a, b, measures, labels=labels, seed=seed,
                              options={"rdm": {"metric": args.rdm_metric}})
        rdms = None
        if "rdm" in measures:
            rdms = _rdm_panels(a, b, labels, info["samples"], seed=seed, metric=args.rdm_metric)
    notes = list(dict.fromkeys([*a.notes, *b.notes, *(str(w.message) for w in caught)]))

    files = write_outputs(out, comp, a, b, rdms, notes=notes,
                          settings={"a": str(args.a), "b": str(args.b), "dataset": info["dataset"],
                                    "data_seed": info["data_seed"], "n": comp.n_samples, "measures": list(measures),
                                    "seed": seed, "layers": layers, "rdm_metric": args.rdm_metric,
                                    "samples": [int(i) for i in info["samples"]]})
    for note in notes:
        print(f"sgtheory probe: note: {note}", file=sys.stderr)
    means = {m: round(float(comp.matching_values(m).mean()), 4) for m in comp.matrices}
    summary = {"a": str(args.a), "b": str(args.b), "n_samples": comp.n_samples, "layers_a": len(a),
               "layers_b": len(b), "measures": list(measures), "matching_mean": means, "out": str(out),
               "files": [f.name for f in files]}
    if comp.probe_a is not None:
        summary["probe_last_a"] = round(float(comp.probe_a[-1]), 4)
        summary["probe_last_b"] = round(float(comp.probe_b[-1]), 4)
    text = (f"probe: {Path(args.a).name} ({len(a)} layers) vs {Path(args.b).name} ({len(b)} layers) on "
            f"{comp.n_samples} samples; matching-layer mean " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
            + f" -> {out}")
    emit(summary, args.json, text)
    return 0


def _rdm_panels(a, b, labels, samples, *, seed: int, metric: str, max_samples: int = 300):
    """RDMs of a label-ordered subsample (≤ ``max_samples``) for every layer of A and B.

    Returns ``(rdms_a, rdms_b, labels of the subsample or None, the subsample's indices in samples' numbering)``.
    """
    import numpy as np

    from sgtheory.represent import rdm
    from sgtheory.represent.layerwise import label_ordered_sample

    if labels is not None:
        idx = label_ordered_sample(labels, min(max_samples, a.n_samples), seed=seed)
    else:
        idx = np.arange(min(max_samples, a.n_samples))
    sub_labels = None if labels is None else np.asarray(labels)[idx]
    return ([rdm(x[idx], metric) for x in a.arrays], [rdm(x[idx], metric) for x in b.arrays], sub_labels,
            np.asarray(samples)[idx])
