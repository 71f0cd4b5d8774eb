"""Inputs and outputs of ``sgtheory probe``: resolving A/B, samples and labels; writing figures, CSV, JSON."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent.activations import (LayerActivations, checkpoint_activations, is_checkpoint,
                                            load_activations)


def check_out(path) -> Path:
    """Check that ``--out`` can be created/written, without creating it yet (nothing is written on bad input)."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise InputError(f"--out {p}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"--out {p}: folder is not writable")
        return p
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {p}: cannot create it ({parent} is not a writable folder)")
    return p


def load_pair(a_path, b_path, *, dataset, data_root, labels_file, n: int, layers, seed: int, need_labels: bool):
    """Load A and B on the same ``n`` samples. Returns ``(acts_a, acts_b, labels or None, dataset name or None)``.

    Checkpoints run on the test split of the data set (``dataset``, else the one the first checkpoint was
    trained on); activation files contribute their rows. All sources must index the same sample set: files of
    equal row count, and with a checkpoint, files holding the whole test split in order. The compared samples
    are a seeded random subset of ``n`` of them (all if fewer), kept in their original order.
    """
    from sgtheory.nets import load_checkpoint

    sources = []
    for path in (a_path, b_path):
        if is_checkpoint(path):
            sources.append(("checkpoint", load_checkpoint(path), str(path)))
        elif Path(path).suffix.lower() in (".npz", ".safetensors"):
            sources.append(("file", load_activations(path), str(path)))
        elif not Path(path).exists():
            raise InputError(f"{path}: no such file or folder")
        else:
            raise InputError(f"{path}: not a checkpoint (folder/.npz/.json) or activation file (.npz/.safetensors)")
    checkpoints = [s for s in sources if s[0] == "checkpoint"]
    files = [s for s in sources if s[0] == "file"]
    if dataset is None and checkpoints:
        dataset = checkpoints[0][1].meta.get("training", {}).get("dataset")
        if not dataset:
            raise InputError(f"checkpoint {checkpoints[0][2]}: records no data set; pass --dataset")
    data = None
    if dataset is not None and (checkpoints or (need_labels and labels_file is None
                                                and all(s[1].labels is None for s in files))):
        from sgtheory.data import load

        data = load(dataset, root=Path(data_root) if data_root else None)
    rows = {s[1].n_samples for s in files}
    if len(rows) > 1:
        raise InputError(f"{a_path} has {files[0][1].n_samples} rows but {b_path} has {files[1][1].n_samples}; "
                         "activation files must hold the same samples")
    if checkpoints:
        total = data.x_test.shape[0]
        if rows and rows != {total}:
            raise InputError(f"{files[0][2]}: {rows.pop()} rows, but compared with a checkpoint it must hold the "
                             f"{total} test samples of {dataset}, in order")
    else:
        total = rows.pop()
    labels = _labels(labels_file, total, files, data)
    rng = np.random.default_rng(seed)
    idx = np.arange(total) if n >= total else np.sort(rng.choice(total, size=n, replace=False))
    acts = []
    for kind, obj, name in sources:
        if kind == "checkpoint":
            obj = checkpoint_activations(obj, data.x_test[idx], source=name)
        else:
            obj = obj.subsample(idx)
        acts.append(obj.select(layers))
    return acts[0], acts[1], None if labels is None else labels[idx], dataset


def _labels(labels_file, total: int, files, data) -> np.ndarray | None:
    if labels_file is not None:
        y = _read_labels(Path(labels_file))
        if y.shape != (total,):
            raise InputError(f"--labels {labels_file}: {y.size} labels for {total} samples")
        return y
    for _, acts, _ in files:
        if acts.labels is not None:
            return acts.labels
    if data is not None and data.y_test.shape[0] == total:
        return np.asarray(data.y_test)
    return None


def _read_labels(p: Path) -> np.ndarray:
    from sgtheory.io import load_npz

    if p.suffix.lower() == ".npz":
        arrays = load_npz(p, what="--labels")
        if "labels" in arrays:
            y = arrays["labels"]
        elif len(arrays) == 1:
            y = next(iter(arrays.values()))
        else:
            raise InputError(f"--labels {p}: has several arrays and none named 'labels'")
    else:
        if not p.is_file():
            raise InputError(f"--labels {p}: no such file")
        try:
            y = np.loadtxt(p, dtype=np.float64, ndmin=1, delimiter=",")
        except ValueError as exc:
            raise InputError(f"--labels {p}: not one integer per row ({exc})") from None
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
        raise InputError(f"--labels {p}: expected a 1-D array of integer class labels")
    return y.astype(np.int64)


def write_outputs(out, comp, a: LayerActivations, b: LayerActivations, rdms, *, notes, settings) -> list[Path]:
    """Write heatmaps, per-layer curves, RDM panels, CSV and JSON into ``out``; returns the written paths."""
    import matplotlib.pyplot as plt

    from sgtheory.io import ensure_writable_dir, savefig, write_json, write_text
    from sgtheory.plotting import style
    from sgtheory.plotting.probes import plot_per_layer, plot_rdm_panels, plot_similarity

    out = ensure_writable_dir(out)
    name_a, name_b = f"A = {Path(a.source).name}", f"B = {Path(b.source).name}"
    files = []

    def save(fig, name):
        files.append(savefig(fig, out / name))
        plt.close(fig)

    for m, mat in comp.matrices.items():
        vmin = -1.0 if m == "rdm" else 0.0
        fig, _, _ = plot_similarity(mat, comp.names_a, comp.names_b, title=f"{m}: {name_a} vs {name_b}",
                                    vmin=vmin)
        save(fig, f"similarity_{m}.png")
    curves = {m: comp.matching_values(m) for m in comp.matrices}
    probes = {}
    if comp.probe_a is not None:
        probes = {f"probe acc. {name_a}": comp.probe_a, f"probe acc. {name_b}": comp.probe_b}
    if curves or probes:
        with style():
            fig, ax = plt.subplots(1, 2 if probes and curves else 1, squeeze=False,
                                   figsize=(9 if probes and curves else 5, 3.4))
        if curves:
            plot_per_layer(curves, names=[f"{comp.names_a[i]}~{comp.names_b[j]}" for i, j in comp.matching],
                           ylabel="similarity (matching layers)", ax=ax[0, 0])
        if probes:
            same = len(comp.names_a) == len(comp.names_b)
            plot_per_layer(probes, names=comp.names_a if same else None, ylabel="held-out probe accuracy",
                           ax=ax[0, -1])
        save(fig, "per_layer.png")
    if rdms is not None:
        for tag, stack, acts in (("a", rdms[0], a), ("b", rdms[1], b)):
            metric = settings.get("rdm_metric", "correlation")
            what = "1 − Pearson" if metric == "correlation" else metric
            fig, _ = plot_rdm_panels(stack, acts.names, labels=rdms[2], vmax=2.0 if metric == "correlation" else None,
                                     row_title=f"RDMs ({what}), {name_a if tag == 'a' else name_b}")
            save(fig, f"rdm_{tag}.png")

    lines = ["measure,layer_a,name_a,layer_b,name_b,value"]
    for m, mat in comp.matrices.items():
        for i, na in enumerate(comp.names_a):
            for j, nb in enumerate(comp.names_b):
                lines.append(f"{m},{i},{na},{j},{nb},{mat[i, j]:.10g}")
    files.append(write_text(out / "similarity.csv", "\n".join(lines) + "\n"))
    head = ["layer_a", "name_a", "layer_b", "name_b", *comp.matrices]
    rows = [",".join(head + (["probe_a", "probe_b"] if probes else []))]
    for k, (i, j) in enumerate(comp.matching):
        vals = [f"{comp.matrices[m][i, j]:.10g}" for m in comp.matrices]
        if probes:
            vals += [f"{comp.probe_a[i]:.6g}", f"{comp.probe_b[j]:.6g}"]
        rows.append(",".join([str(i), comp.names_a[i], str(j), comp.names_b[j], *vals]))
    files.append(write_text(out / "per_layer.csv", "\n".join(rows) + "\n"))
    record = {**settings, "names_a": list(comp.names_a), "names_b": list(comp.names_b),
              "matrices": {m: v.tolist() for m, v in comp.matrices.items()},
              "matching": [list(p) for p in comp.matching],
              "probe_a": None if comp.probe_a is None else comp.probe_a.tolist(),
              "probe_b": None if comp.probe_b is None else comp.probe_b.tolist(), "notes": notes}
    files.append(write_json(out / "probe.json", record))
    return files
