"""Per-layer activations: from an sgtheory checkpoint on a data set, or from a user's own file.

Checkpoints (written by ``sgtheory train``: a folder, or its ``checkpoint.npz`` / ``checkpoint.json``):
:func:`checkpoint_activations` runs the net (:func:`sgtheory.nets.activations`, batch-norm in evaluation
mode) and names the layers ``h1 … hD`` (post-activation hidden layers) and ``logits``.

A :class:`LayerActivations` holds one ``(n_samples, n_features)`` array per layer, ordered from the
input side to the output side, plus optional integer labels (for linear probes).

Activation files (so that models from any framework can be probed):

- ``.npz``: one array per layer, in the archive's order (``np.savez(f, conv1=..., fc1=..., ...)``
  keeps keyword order). Two reserved keys: ``layers``, an optional 1-D string array naming the layer
  arrays in the order to use (it may list a subset), and ``labels``, an optional 1-D integer array of
  ``n_samples`` class labels. Read with ``allow_pickle=False``: pickled archives are refused.
- ``.safetensors`` (needs the optional ``safetensors`` package): the format stores tensors sorted by
  name, so the order comes from the ``"layers"`` metadata entry (a JSON list or a comma-separated
  string) when present, else from a natural sort of the names (``layer2`` before ``layer10``).
  A ``labels`` tensor plays the same role as in ``.npz``.

Arrays must share their first (sample) axis. Arrays with more than two axes (e.g. convolutional
maps ``(n, C, H, W)``) are flattened to ``(n, C·H·W)`` and a note is recorded in ``notes``; 0-D and
1-D arrays, NaN/inf and non-numeric arrays are refused. Every problem raises one
:class:`sgtheory.InputError` naming the file and the layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sgtheory.errors import InputError
from sgtheory.io import load_npz

LAYERS_KEY = "layers"
LABELS_KEY = "labels"


@dataclass(frozen=True)
class LayerActivations:
    """Activations of one model on one set of samples.

    Attributes:
      names: layer names, input side first; ``len(names) == len(arrays)``.
      arrays: one float64 array ``(n_samples, n_features_l)`` per layer.
      labels: ``(n_samples,)`` integer class labels, or ``None``.
      source: where they came from (file or checkpoint path), for messages and reports.
      notes: human-readable remarks (e.g. flattened layers).
      indices: each layer's index in the whole model (its position in the file, or its depth in the net),
        which :meth:`select` keeps; ``()`` means ``0 … len - 1``.
    """

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]
    labels: np.ndarray | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    indices: tuple[int, ...] = field(default=())

    def __post_init__(self):
        if not self.indices:
            object.__setattr__(self, "indices", tuple(range(len(self.arrays))))

    @property
    def n_samples(self) -> int:
        """Rows (samples) of every layer."""
        return int(self.arrays[0].shape[0])

    def __len__(self) -> int:
        return len(self.arrays)

    def select(self, layers: Sequence[int | str] | None) -> LayerActivations:
        """The layers given by position (negative allowed) or by name, in the order given.

        Args:
          layers: positions among this object's layers or names; ``None`` keeps all.

        Returns:
          A :class:`LayerActivations` of those layers (``indices`` still name their place in the model).

        Raises:
          InputError: an unknown name, a position out of range, a layer asked for twice, or an empty list.
        """
        if layers is None:
            return self
        idx = resolve_layers(self.names, layers, self.source)
        return LayerActivations(tuple(self.names[i] for i in idx), tuple(self.arrays[i] for i in idx),
                                self.labels, self.source, self.notes, tuple(self.indices[i] for i in idx))

    def subsample(self, index: np.ndarray) -> LayerActivations:
        """The same layers restricted to the samples ``index`` (an integer index array).

        Args:
          index: the rows to keep, in the order to keep them.

        Returns:
          A :class:`LayerActivations` over those samples.
        """
        labels = None if self.labels is None else self.labels[index]
        return LayerActivations(self.names, tuple(a[index] for a in self.arrays), labels, self.source, self.notes,
                                self.indices)


def resolve_layers(names: Sequence[str], layers: Sequence[int | str], source: str) -> list[int]:
    """Positions of ``layers`` (positions, negative allowed, or names) among a model's layers ``names``.

    Args:
      names: the model's layer names, in order.
      layers: the selection: integers (or integer strings) and names.
      source: the model's file or folder, for messages.

    Returns:
      The positions, in the order given.

    Raises:
      InputError: an empty selection, an unknown name, a position out of range, or a layer asked for twice.
    """
    specs = list(layers)
    if not specs:
        raise InputError(f"{source}: empty layer selection")
    idx = [_layer_index(names, spec, source) for spec in specs]
    seen: dict[int, int | str] = {}
    for spec, i in zip(specs, idx):
        if i in seen:
            raise InputError(f"{source}: layer {names[i]!r} asked for twice ({seen[i]!r} and {spec!r}); "
                             "list each layer once")
        seen[i] = spec
    return idx


def make_activations(arrays: dict[str, np.ndarray] | Sequence[np.ndarray], *, labels=None, source: str = "arrays",
                     names: Sequence[str] | None = None) -> LayerActivations:
    """Validate arrays (first axis = samples) into a :class:`LayerActivations`.

    Args:
      arrays: a name -> array mapping (order kept) or a sequence (then named ``layer0``, ``layer1``, ...
        unless ``names`` is given). Arrays with more than 2 axes are flattened per sample, with a note.
      labels: ``(n,)`` integer class labels (or one-hot ``(n, k)``), or ``None``.
      source: where they came from, for messages.
      names: layer names for a sequence.

    Returns:
      A :class:`LayerActivations` of float64 arrays.

    Raises:
      InputError: non-numeric, complex, 0-D/1-D, empty or non-finite arrays, or differing sample counts.
    """
    if isinstance(arrays, dict):
        items = list(arrays.items())
    else:
        arrays = list(arrays)
        names = list(names) if names is not None else [f"layer{i}" for i in range(len(arrays))]
        if len(names) != len(arrays):
            raise InputError(f"{source}: {len(names)} names for {len(arrays)} layers")
        items = list(zip(names, arrays))
    if not items:
        raise InputError(f"{source}: no layer arrays found")
    out_names, out_arrays, notes = [], [], []
    n = None
    for name, a in items:
        a = np.asarray(a)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise InputError(f"{source}: layer {name!r} is not a numeric array (dtype {a.dtype})")
        if np.iscomplexobj(a):
            raise InputError(f"{source}: layer {name!r} holds complex values; activations must be real")
        if a.ndim < 2:
            raise InputError(f"{source}: layer {name!r} has shape {a.shape}; expected (n_samples, n_features)")
        if a.ndim > 2:
            notes.append(f"layer {name!r}: shape {a.shape} flattened to ({a.shape[0]}, {int(np.prod(a.shape[1:]))})")
            a = a.reshape(a.shape[0], -1)
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise InputError(f"{source}: layer {name!r} has {a.shape[0]} samples but layer {out_names[0]!r} "
                             f"has {n}; all layers need the same samples")
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise InputError(f"{source}: layer {name!r} is empty (shape {a.shape})")
        a = a.astype(np.float64, copy=False)
        if not np.all(np.isfinite(a)):
            raise InputError(f"{source}: layer {name!r} contains {int(a.size - np.isfinite(a).sum())} NaN/inf values")
        out_names.append(str(name))
        out_arrays.append(a)
    return LayerActivations(tuple(out_names), tuple(out_arrays), _check_labels(labels, n, source), source,
                            tuple(notes))


def load_activations(path, *, layers: Sequence[int | str] | None = None,
                     n_layers: int | None = None) -> LayerActivations:
    """Read a user's activation file (``.npz`` or ``.safetensors``; see the module docstring).

    Args:
      path: the file.
      layers: optional selection (indices or names) applied after loading.
      n_layers: if given, the number of layers the caller expects (after selection); a different count
        raises :class:`InputError`.

    Returns:
      A :class:`LayerActivations`.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        arrays = load_npz(p, what="activation file")
        order = _npz_order(arrays, p)
    elif suffix == ".safetensors":
        arrays, order = _read_safetensors(p)
    else:
        raise InputError(f"activation file {p}: unknown type {p.suffix!r}; expected .npz or .safetensors")
    labels = arrays.get(LABELS_KEY)
    acts = make_activations({k: arrays[k] for k in order}, labels=labels, source=str(p)).select(layers)
    if n_layers is not None and len(acts) != n_layers:
        raise InputError(f"activation file {p}: has {len(acts)} layers, expected {n_layers}")
    return acts


def checkpoint_activations(checkpoint, x, *, labels=None, source: str | None = None) -> LayerActivations:
    """Activations of a checkpointed net: layers ``h1 … hD``, then ``logits``.

    Args:
      checkpoint: a path accepted by :func:`sgtheory.nets.load_checkpoint` or a loaded
        :class:`sgtheory.nets.Checkpoint`.
      x: ``(n, n_in)`` inputs.
      labels: optional ``(n,)`` class labels to carry along.
      source: the name used in messages (default: the checkpoint's path).

    Returns:
      A :class:`LayerActivations` with ``D + 1`` layers.
    """
    from sgtheory.nets import Checkpoint, activations, load_checkpoint

    ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    arrays = activations(ck, x)
    names = [f"h{i}" for i in range(1, len(arrays))] + ["logits"]
    return make_activations(arrays, names=names, labels=labels, source=source or str(checkpoint))


def is_checkpoint(path) -> bool:
    """Whether ``path`` names an sgtheory checkpoint rather than an activation file.

    Args:
      path: a folder, a ``.json``, or an ``.npz`` (a checkpoint when named ``checkpoint.npz`` or beside a
        ``.json`` of the checkpoint format).

    Returns:
      ``True`` for a checkpoint.
    """
    from sgtheory.nets.checkpoint import FORMAT

    p = Path(path)
    if p.is_dir() or p.suffix.lower() == ".json":
        return True
    if p.suffix.lower() != ".npz":
        return False
    if p.name == "checkpoint.npz":  # the name sgtheory train writes: a missing .json is then reported as such
        return True
    meta = p.with_suffix(".json")
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
        return False


def _npz_order(arrays: dict[str, np.ndarray], p: Path) -> list[str]:
    if LAYERS_KEY not in arrays:
        return [k for k in arrays if k != LABELS_KEY]
    order = arrays[LAYERS_KEY]
    if order.ndim != 1 or order.dtype.kind not in "US":
        raise InputError(f"activation file {p}: {LAYERS_KEY!r} must be a 1-D string array of layer names")
    order = [str(s) for s in order.tolist()]
    return _check_order(order, arrays, p)


def _check_order(order: list[str], arrays: dict, p: Path) -> list[str]:
    missing = [k for k in order if k not in arrays or k in (LAYERS_KEY, LABELS_KEY)]
    if missing:
        raise InputError(f"activation file {p}: {LAYERS_KEY!r} names arrays not in the file: {', '.join(missing)}")
    if len(set(order)) != len(order):
        raise InputError(f"activation file {p}: {LAYERS_KEY!r} lists a layer twice")
    return order


def _read_safetensors(p: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise InputError(f"activation file {p}: reading .safetensors needs the optional 'safetensors' package "
                         f"(pip install 'sgtheory[safetensors]'), or save the activations as .npz") from None
    if not p.is_file():
        raise InputError(f"activation file {p}: no such file")
    try:
        with safe_open(str(p), framework="np") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # the Rust reader raises its own SafetensorError (and TypeError for bf16)
        raise InputError(f"activation file {p}: corrupt or unreadable .safetensors ({exc})") from None
    if LAYERS_KEY in meta:
        text = meta[LAYERS_KEY]
        try:
            order = json.loads(text)
        except json.JSONDecodeError:
            order = [s.strip() for s in text.split(",") if s.strip()]
        if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
            raise InputError(f"activation file {p}: metadata {LAYERS_KEY!r} must be a list of layer names")
        order = _check_order(order, arrays, p)
    else:
        order = sorted((k for k in arrays if k != LABELS_KEY), key=_natural_key)
    return arrays, order


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _check_labels(labels, n: int, source: str) -> np.ndarray | None:
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{source}: labels have shape {np.shape(labels)}; expected ({n},)")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise InputError(f"{source}: labels must be integer class labels")
    return y.astype(np.int64)


def _layer_index(names: Sequence[str], spec: int | str, source: str) -> int:
    n = len(names)
    if isinstance(spec, str) and not spec.strip().lstrip("-").isdigit():
        if spec not in names:
            raise InputError(f"{source}: no layer named {spec!r}; its {n} layers are {', '.join(names)}")
        return list(names).index(spec)
    try:
        i = int(spec)
    except (TypeError, ValueError):
        raise InputError(f"{source}: layer {spec!r} is neither a position nor a name") from None
    if not -n <= i < n:
        raise InputError(f"{source}: layer {i} asked for, but it has {n} layers (positions 0..{n - 1} or "
                         f"{-n}..-1: {', '.join(names)})")
    return i % n
