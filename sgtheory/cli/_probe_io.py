"""Inputs and outputs of ``sgtheory probe``: resolving A/B, samples and labels; writing figures, CSV, JSON."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent.activations import (
    LayerActivations,
    checkpoint_activations,
    is_checkpoint,
    load_activations,
    resolve_layers,
)


def check_out(path) -> Path:
    """Check that ``--out`` can be created/written, without creating it yet (nothing is written on bad input).

    Args:
      path: the ``--out`` folder.

    Returns:
      It, as a :class:`~pathlib.Path`.
    """
    if not str(path).strip():
        raise InputError("--out: empty; name an output folder")
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


def load_pair(a_path, b_path, *, dataset, data_root, data_seed, labels_file, n: int, layers, seed: int,
              need_labels: bool):
    """Load A and B on the same ``n`` samples.

    Checkpoints run on the test split of the data set (``dataset``, else the one the first checkpoint was
    trained on), loaded with ``data_seed`` (else the seed the first checkpoint was trained with, else 0);
    activation files contribute their rows. All sources must index the same sample set: files of equal row
    count, and with a checkpoint, files holding the whole test split in order. The compared samples are a
    seeded random subset of ``n`` of them (all if fewer), kept in their original order. ``layers`` is
    checked against both models before any net runs.

    Args:
      a_path, b_path: the two models (checkpoints or activation files).
      dataset: ``--dataset`` or ``None``.
      data_root: ``--data-root`` or ``None``.
      data_seed: ``--data-seed`` or ``None``.
      labels_file: ``--labels`` or ``None``.
      n: samples to compare.
      layers: the ``--layers`` items, or ``None``.
      seed: the subset's seed.
      need_labels: whether a measure needs class labels.

    Returns:
      ``(acts_a, acts_b, labels or None, info)``; ``info``: ``dataset`` and ``data_seed`` used (or ``None``)
      and ``samples``, the compared rows' indices in the test split / the files.
    """
    from sgtheory.nets import load_checkpoint

    sources = []
    for tag, path in (("A", a_path), ("B", b_path)):
        if is_checkpoint(path):
            sources.append(("checkpoint", load_checkpoint(path), str(path)))
        elif Path(path).suffix.lower() in (".npz", ".safetensors"):
            sources.append(("file", load_activations(path), str(path)))
        elif not Path(path).exists():
            raise InputError(f"{tag} = {path}: no such file or folder")
        else:
            raise InputError(f"{tag} = {path}: not a checkpoint (folder/.npz/.json) or activation file "
                             "(.npz/.safetensors)")
    if layers is not None:
        for tag, (kind, obj, name) in zip("AB", sources):
            resolve_layers(_layer_names(kind, obj), layers, f"--layers: {tag} = {name}")
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

        data_seed = _data_seed(data_seed, checkpoints, dataset)
        data = load(dataset, root=Path(data_root) if data_root else None, seed=data_seed)
    rows = {s[1].n_samples for s in files}
    if len(rows) > 1:
        raise InputError(f"{a_path} has {files[0][1].n_samples} rows but {b_path} has {files[1][1].n_samples}; "
                         "activation files must hold the same samples")
    if checkpoints:
        total = data.x_test.shape[0]
        if rows and rows != {total}:
            raise InputError(f"{files[0][2]}: {rows.pop()} rows, but compared with a checkpoint it must hold the "
                             f"{total} test samples of {dataset} (seed {data_seed}), in the order "
                             f"sgtheory.data.load({dataset!r}, seed={data_seed}) gives them")
        for _, ck, name in checkpoints:
            if ck.config.n_in != data.x_test.shape[1]:
                raise InputError(f"checkpoint {name}: takes {ck.config.n_in} inputs but {dataset} samples have "
                                 f"{data.x_test.shape[1]} features; pass the --dataset it was trained on")
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
    info = {"dataset": dataset, "data_seed": data_seed if data is not None else None, "samples": idx}
    return acts[0], acts[1], None if labels is None else labels[idx], info


def _layer_names(kind: str, obj) -> list[str]:
    """A model's layer names without running it: a checkpoint's ``h1 … hD, logits``, a file's arrays."""
    if kind == "checkpoint":
        return [f"h{i}" for i in range(1, obj.config.depth + 1)] + ["logits"]
    return list(obj.names)


def _data_seed(given, checkpoints, dataset: str) -> int:
    """``--data-seed``, else the seed the first checkpoint was trained with (its split and order), else 0.

    Warns when two checkpoints were trained on different seeds of a data set without an official split:
    then some compared samples were in one of the nets' training sets.
    """
    import warnings

    recorded = [_recorded_seed(ck) for _, ck, _ in checkpoints]
    if given is not None:
        seed = given
    else:
        seed = next((s for s in recorded if s is not None), 0)
    known = sorted({s for s in recorded if s is not None})
    if dataset in ("mnist5k", "digits") and (len(known) > 1 or (known and known[0] != seed)):
        warnings.warn(f"the checkpoints were trained on {dataset} splits of seed(s) {', '.join(map(str, known))}; "
                      f"the test split of seed {seed} is used, so some compared samples were training samples "
                      "of a net", UserWarning, stacklevel=2)
    return seed


def _recorded_seed(ck) -> int | None:
    """The data seed a checkpoint was trained with: ``sgtheory train``'s ``--seed`` (its ``run`` record),
    else the training seed."""
    for record in (ck.meta.get("run"), ck.meta.get("training")):
        value = record.get("seed") if isinstance(record, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


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
    """Write heatmaps, per-layer curves, RDM panels, CSV and JSON into ``out``.

    Args:
      out: the output folder (created if needed).
      comp: the :class:`~sgtheory.represent.layerwise.LayerComparison` of ``a`` and ``b``.
      a, b: the compared layers (their ``indices`` are written as the layer indices).
      rdms: ``(rdms_a, rdms_b, labels, samples)`` from the RDM panels, or ``None``.
      notes: remarks to record.
      settings: the run's settings (``n``, ``seed``, ``dataset``, ``data_seed``, ``rdm_metric``...), recorded and
        quoted in the figures.

    Returns:
      The written paths.
    """
    from sgtheory.io import ensure_writable_dir, savefig, write_json, write_text
    from sgtheory.plotting import subplots
    from sgtheory.plotting.probes import plot_per_layer, plot_rdm_panels, plot_similarity

    out = ensure_writable_dir(out)
    name_a, name_b = f"A = {Path(a.source).name}", f"B = {Path(b.source).name}"
    samples = _samples_caption(settings, comp.n_samples)
    files = []

    for m, mat in comp.matrices.items():
        vmin = -1.0 if m == "rdm" else 0.0
        fig, _, _ = plot_similarity(mat, comp.names_a, comp.names_b, title=f"{m}: {name_a} vs {name_b}\n{samples}",
                                    vmin=vmin)
        files.append(savefig(fig, out / f"similarity_{m}.png"))
    curves = {m: comp.matching_values(m) for m in comp.matrices}
    probes = {}
    if comp.probe_a is not None:
        probes = {f"probe acc. {name_a}": comp.probe_a, f"probe acc. {name_b}": comp.probe_b}
    if curves or probes:
        both = bool(probes and curves)
        fig, ax = subplots(1, 2 if both else 1, squeeze=False, figsize=(9 if both else 5, 3.6))
        if curves:
            plot_per_layer(curves, names=[f"{comp.names_a[i]}~{comp.names_b[j]}" for i, j in comp.matching],
                           ylabel="similarity (matching layers)", ax=ax[0, 0])
        if probes:
            same = len(comp.names_a) == len(comp.names_b)
            plot_per_layer(probes, names=comp.names_a if same else None, ylabel="held-out probe accuracy",
                           ax=ax[0, -1])
        fig.suptitle(samples, fontsize=8)
        files.append(savefig(fig, out / "per_layer.png"))
    if rdms is not None:
        metric = settings.get("rdm_metric", "correlation")
        what = "1 − Pearson" if metric == "correlation" else metric
        order = "label-ordered" if rdms[2] is not None else "in sample order"
        caption = f"{len(rdms[3])} of the {samples}, {order}"
        for tag, stack, acts in (("a", rdms[0], a), ("b", rdms[1], b)):
            fig, _ = plot_rdm_panels(stack, acts.names, labels=rdms[2], vmax=2.0 if metric == "correlation" else None,
                                     colorbar_label=what,
                                     row_title=f"RDMs ({what}), {name_a if tag == 'a' else name_b}\n{caption}")
            files.append(savefig(fig, out / f"rdm_{tag}.png"))

    # layer_a/layer_b: the layer's index in its model; position_a/position_b: its place among the compared
    # layers (the --layers order), i.e. the row/column of the matrices in probe.json
    lines = ["measure,layer_a,name_a,layer_b,name_b,value,position_a,position_b"]
    for m, mat in comp.matrices.items():
        for i, na in enumerate(comp.names_a):
            for j, nb in enumerate(comp.names_b):
                lines.append(f"{m},{a.indices[i]},{na},{b.indices[j]},{nb},{mat[i, j]:.10g},{i},{j}")
    files.append(write_text(out / "similarity.csv", "\n".join(lines) + "\n"))
    head = ["layer_a", "name_a", "layer_b", "name_b", *comp.matrices]
    rows = [",".join(head + (["probe_a", "probe_b"] if probes else []) + ["position_a", "position_b"])]
    for i, j in comp.matching:
        vals = [f"{comp.matrices[m][i, j]:.10g}" for m in comp.matrices]
        if probes:
            vals += [f"{comp.probe_a[i]:.6g}", f"{comp.probe_b[j]:.6g}"]
        rows.append(",".join([str(a.indices[i]), comp.names_a[i], str(b.indices[j]), comp.names_b[j], *vals,
                              str(i), str(j)]))
    files.append(write_text(out / "per_layer.csv", "\n".join(rows) + "\n"))
    record = {**settings, "names_a": list(comp.names_a), "names_b": list(comp.names_b),
              "layers_a": list(a.indices), "layers_b": list(b.indices),
              "matrices": {m: v.tolist() for m, v in comp.matrices.items()},
              "matching": [list(p) for p in comp.matching],
              "probe_a": None if comp.probe_a is None else comp.probe_a.tolist(),
              "probe_b": None if comp.probe_b is None else comp.probe_b.tolist(),
              "rdm_samples": None if rdms is None else [int(i) for i in rdms[3]], "notes": notes}
    files.append(write_json(out / "probe.json", record))
    return files


def _samples_caption(settings: dict, n: int) -> str:
    """Which samples a figure shows, e.g. "1000 samples of the digits test split (data seed 0), subset seed 0"."""
    if settings.get("dataset") and settings.get("data_seed") is not None:
        where = f"the {settings['dataset']} test split (data seed {settings['data_seed']})"
    else:
        where = "the activation files' rows"
    return f"{n} samples of {where}, subset seed {settings.get('seed', 0)}"
