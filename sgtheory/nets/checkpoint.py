"""Checkpoints as ``checkpoint.npz`` (arrays) + ``checkpoint.json`` (everything else); never pickle.

Array keys are flat paths: ``params/3/W`` (layer 4's weights; ``params/{depth}`` is the output
layer), ``bn/0/mean``, ``sg/2/A`` (the SG module at hidden layer 2), ``fixed/R/3`` (a method's
fixed feedback matrix), ``metrics/test_error``. The JSON holds the format name and version, the
sgtheory version, the MLP config, the method and its options, the training settings, a metric
summary and the list of array keys. :func:`load_checkpoint` refuses another format version, a
missing array or a shape that does not match the config, with one :class:`sgtheory.InputError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.io import checkpoint_files, ensure_writable_dir, flatten_arrays, load_npz, read_json, savez, write_json
from sgtheory.validate import finite_array

FORMAT = "sgtheory-checkpoint"
FORMAT_VERSION = 1


class Checkpoint(NamedTuple):
    """A loaded checkpoint: numpy pytrees (``params`` tuple of layer dicts, ``bn_state``,
    ``method_state``), ``config`` (MLPConfig), ``method`` (a Method), ``metrics`` and ``meta`` (the JSON)."""

    params: tuple
    bn_state: tuple
    method_state: Any
    config: Any
    method: Any
    metrics: dict
    meta: dict



def _finite(x):
    """A JSON-safe number: None for NaN/inf (never printed as a number)."""
    x = float(x)
    return x if np.isfinite(x) else None


def save_checkpoint(directory, result, config: dict | None = None) -> Path:
    """Write ``DIR/checkpoint.npz`` and ``DIR/checkpoint.json`` (atomically) from a :class:`TrainResult`.

    Args:
      directory: the folder (created if needed).
      result: a :class:`sgtheory.nets.TrainResult` (or one member of a population).
      config: extra JSON-able run settings to record (e.g. the command-line arguments).

    Returns:
      The folder.
    """
    from sgtheory import __version__
    from sgtheory.nets.population_io import INDEX

    folder = ensure_writable_dir(directory)
    if (folder / INDEX).exists():
        raise InputError(f"checkpoint {folder}: holds a population ({INDEX}); write a single run elsewhere")
    arrays: dict = {}
    flatten_arrays(tuple(result.params), "params", arrays)
    flatten_arrays(tuple(result.bn_state), "bn", arrays)
    flatten_arrays(result.method_state.learned, "sg", arrays)
    flatten_arrays(result.method_state.fixed, "fixed", arrays)
    flatten_arrays(result.metrics, "metrics", arrays)
    m = result.metrics
    summary = {}
    if len(m["step"]):
        summary = {"steps": int(m["step"][-1]), "test_error": _finite(m["test_error"][-1]),
                   "train_loss": _finite(m["train_loss"][-1]), "sg_loss": _finite(m["sg_loss"][-1]),
                   "cosine": [_finite(c) for c in m["cosine"][-1]]}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "sgtheory_version": __version__,
            "mlp": result.config.to_dict(), "method": {"name": result.method.name, "options": result.method.options},
            "training": result.info, "status": result.info.get("status", "ok"), "run": config or {},
            "summary": summary, "arrays": sorted(arrays)}
    savez(folder / "checkpoint.npz", arrays)
    write_json(folder / "checkpoint.json", meta)
    return folder


def _member_path(path, member):
    """The folder of population member ``member`` under ``path``, or ``path`` itself for a single checkpoint."""
    from sgtheory.nets.population_io import INDEX, member_folder, member_folder_path, read_population

    p = Path(path)
    population = p.is_dir() and (p / INDEX).is_file() and not (p / "checkpoint.json").exists()
    if population:
        if member is None:
            n = len(read_population(p)["members"])
            raise InputError(f"checkpoint {p}: a population of {n} members; choose one (member=i, or the "
                             f"folder {p / member_folder(0)} .. {member_folder(n - 1)})")
        return member_folder_path(p, member)
    if member is not None:
        raise InputError(f"checkpoint {p}: a single run, not a population (no {INDEX}); drop member={member}")
    return p


def load_checkpoint(path, member: int | None = None) -> Checkpoint:
    """Load a checkpoint from its folder or either of its two files, validating format, types and shapes.

    Args:
      path: a checkpoint folder, its ``.npz`` or ``.json``, or a population folder (with ``member``).
      member: the member of a population folder (see :func:`sgtheory.nets.save_population`).

    Returns:
      A :class:`Checkpoint`. Every problem (missing or corrupt file, another format version, a field of
      the wrong type, an array of the wrong shape, parameters that are not finite) raises one
      :class:`sgtheory.InputError` line.
    """
    npz_path, json_path = checkpoint_files(_member_path(path, member))
    meta = read_json(json_path, what="checkpoint")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"checkpoint {json_path}: not an sgtheory checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"checkpoint {json_path}: format version {meta.get('format_version')!r} written by "
                         f"sgtheory {meta.get('sgtheory_version', '?')}; this sgtheory reads version {FORMAT_VERSION}")
    config, method = _metadata(meta, json_path)
    arrays = load_npz(npz_path, what="checkpoint")
    missing = [k for k in meta["arrays"] if k not in arrays]
    if missing or not meta["arrays"]:
        raise InputError(f"checkpoint {npz_path}: missing arrays {', '.join(missing[:5]) or '(none listed)'}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    from sgtheory.nets.checkpoint_check import check_arrays

    params, bn, state, metrics = check_arrays(arrays, config, method, npz_path)
    return Checkpoint(params, bn, state, config, method, metrics, meta)


def _metadata(meta: dict, json_path):
    """The MLP config and the method from the JSON, every field checked for its type."""
    from sgtheory.nets.methods import get
    from sgtheory.nets.mlp import MLPConfig

    def need(obj, key, types, where):
        field = f"{where}{key}" + (" (the net's config)" if key == "mlp" else "")
        if not isinstance(obj, dict) or key not in obj:
            raise InputError(f"checkpoint {json_path}: missing field {field}")
        value = obj[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            names = " or ".join(t.__name__ for t in types)
            raise InputError(f"checkpoint {json_path}: field {field} should be {names}, got {str(value)[:60]}")
        return value

    mlp = need(meta, "mlp", (dict,), "")
    fields = {k: need(mlp, k, (int,), "mlp.") for k in ("n_in", "n_out", "depth", "width")}
    fields["activation"] = need(mlp, "activation", (str,), "mlp.")
    fields["batchnorm"] = need(mlp, "batchnorm", (bool,), "mlp.")
    m = need(meta, "method", (dict,), "")
    name, options = need(m, "name", (str,), "method."), need(m, "options", (dict,), "method.")
    keys = need(meta, "arrays", (list,), "")
    if not all(isinstance(k, str) for k in keys):
        raise InputError(f"checkpoint {json_path}: field arrays should be a list of names")
    try:
        return MLPConfig(**fields), get(name, **options)
    except InputError as exc:
        raise InputError(f"checkpoint {json_path}: {exc}") from None


def activations(checkpoint, x, *, batch_size: int = 4096) -> list[np.ndarray]:
    """Hidden activations of a checkpointed net on inputs ``x`` ``(n, n_in)``.

    Args:
        checkpoint: a :class:`Checkpoint` or a path accepted by :func:`load_checkpoint`.
        x: inputs ``(n, n_in)``.
        batch_size: rows per forward pass.

    Returns:
        ``[h_1, ..., h_D, logits]``: the ``D`` post-activation hidden layers input→output, each
        ``(n, width)``, then the logits ``(n, n_out)``; float32 numpy arrays, batch-norm in evaluation
        mode (running statistics).
    """
    import jax.numpy as jnp

    from sgtheory.nets.mlp import forward

    ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    x = finite_array(x, "x", ndim=2)
    if x.shape[1] != ck.config.n_in:
        raise InputError(f"x: has {x.shape[1]} features, the net expects {ck.config.n_in}")
    params = [{k: jnp.asarray(v, jnp.float32) for k, v in layer.items()} for layer in ck.params]
    bn = tuple({k: jnp.asarray(v, jnp.float32) for k, v in s.items()} for s in ck.bn_state) or None
    chunks = []
    for start in range(0, x.shape[0], batch_size):
        logits, hiddens = forward(params, jnp.asarray(x[start:start + batch_size], jnp.float32), ck.config,
                                  state=bn, train=False)
        chunks.append([np.asarray(h) for h in hiddens] + [np.asarray(logits)])
    return [np.concatenate(parts) for parts in zip(*chunks)]


__all__ = ["Checkpoint", "FORMAT_VERSION", "activations", "load_checkpoint", "save_checkpoint"]
