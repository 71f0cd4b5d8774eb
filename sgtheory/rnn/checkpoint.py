"""Recurrent-run checkpoints: ``checkpoint.npz`` (arrays) + ``checkpoint.json`` (the rest); never pickle.

Array keys are flat paths with the seed axis first: ``core/W`` ``(seeds, n_in + hidden, gates·hidden)``,
``sg/layers/0/W``, ``aux/A``, ``metrics/loss_bits``. The JSON holds the format name and version,
the settings, the method and its options, the seeds, the summary and the list of array keys.
:func:`load_checkpoint` refuses another format (an MLP checkpoint of ``sgtheory train`` included),
another version, a missing array or a shape that does not match the settings, with one
:class:`sgtheory.InputError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.io import (
    checkpoint_files,
    ensure_writable_dir,
    flatten_arrays,
    load_npz,
    read_json,
    savez,
    unflatten_arrays,
    write_json,
)
from sgtheory.validate import seeds as check_seeds

FORMAT = "sgtheory-rnn-checkpoint"
FORMAT_VERSION = 1
_OTHER_FORMATS = {"sgtheory-checkpoint": "an MLP checkpoint of `sgtheory train`"}


class RNNCheckpoint(NamedTuple):
    """A loaded checkpoint: ``params`` (:class:`sgtheory.rnn.window.Params` of numpy arrays, seed axis
    first), ``settings`` (:class:`sgtheory.rnn.train.Settings`), ``method``, ``seeds``, ``metrics``, ``meta``."""

    params: Any
    settings: Any
    method: Any
    seeds: tuple
    metrics: dict
    meta: dict



def save_checkpoint(directory, result, run: dict | None = None) -> Path:
    """Write ``DIR/checkpoint.npz`` and ``DIR/checkpoint.json`` atomically from an :class:`RNNResult`.

    Args:
        directory: the folder (created if needed).
        result: an :class:`sgtheory.rnn.train.RNNResult`.
        run: extra JSON-able settings to record (e.g. the command line).

    Returns:
        The folder.
    """
    from sgtheory import __version__

    folder = ensure_writable_dir(directory)
    arrays: dict = {}
    flatten_arrays(result.params.core, "core", arrays)
    flatten_arrays(result.params.aux, "aux", arrays)
    flatten_arrays(result.params.sg, "sg", arrays)
    flatten_arrays(result.metrics, "metrics", arrays)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "sgtheory_version": __version__,
            "settings": result.settings.to_dict(), "method": result.method.to_dict(), "seeds": list(result.seeds),
            "summary": result.summary, "training": result.info, "arrays": sorted(arrays),
            "run": {k: "inf" if isinstance(v, float) and v == float("inf") else v for k, v in (run or {}).items()}}
    savez(folder / "checkpoint.npz", arrays)
    write_json(folder / "checkpoint.json", meta)
    return folder


def load_checkpoint(path) -> RNNCheckpoint:
    """Load a recurrent checkpoint from its folder or either of its two files, validating it.

    Args:
        path: the folder, or ``checkpoint.npz`` / ``checkpoint.json``.

    Returns:
        An :class:`RNNCheckpoint`.
    """
    from sgtheory.rnn.methods import get
    from sgtheory.rnn.train import Settings
    from sgtheory.rnn.window import Params

    npz_path, json_path = checkpoint_files(path)
    meta = read_json(json_path, what="checkpoint")
    kind = meta.get("format") if isinstance(meta, dict) else None
    if kind != FORMAT:
        other = _OTHER_FORMATS.get(kind, "not an sgtheory checkpoint")
        raise InputError(f"checkpoint {json_path}: {other}, not a recurrent (`sgtheory rnn`) checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"checkpoint {json_path}: format version {meta.get('format_version')!r}; this sgtheory "
                         f"reads version {FORMAT_VERSION}")
    try:
        settings = Settings.from_dict(meta["settings"])
        method = get(meta["method"]["name"], **meta["method"]["options"])
        seeds = tuple(check_seeds(meta["seeds"], f"checkpoint {json_path}: seeds"))
        listed = list(meta["arrays"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {json_path}: incomplete or bad metadata ({exc})") from None
    arrays = load_npz(npz_path, what="checkpoint")
    missing = [k for k in listed if k not in arrays]
    if missing or not listed:
        raise InputError(f"checkpoint {npz_path}: missing arrays {', '.join(missing[:5]) or '(none listed)'}")
    core = unflatten_arrays(arrays, "core")
    n, h, gates = len(seeds), settings.hidden, 4 if settings.core == "lstm" else 1
    ok = isinstance(core, dict) and set(core) == {"W", "b", "V", "v"} and all(
        isinstance(a, np.ndarray) for a in core.values())
    ok = ok and core["W"].ndim == 3 and core["W"].shape[0] == n and core["W"].shape[1] > h \
        and core["W"].shape[2] == gates * h and core["b"].shape == (n, gates * h) and core["V"].ndim == 3 \
        and core["V"].shape[:2] == (n, h) and core["v"].shape == (n, core["V"].shape[2])
    if not ok:
        raise InputError(f"checkpoint {npz_path}: core arrays do not match the settings "
                         f"({settings.core}, {h} units, {n} seeds)")
    params = Params(core, unflatten_arrays(arrays, "aux") or {}, unflatten_arrays(arrays, "sg") or {})
    if method.uses_sg != bool(params.sg) or method.has_aux != bool(params.aux):
        raise InputError(f"checkpoint {npz_path}: its arrays do not match method {method.name}")
    return RNNCheckpoint(params, settings, method, seeds, unflatten_arrays(arrays, "metrics") or {}, meta)


__all__ = ["FORMAT", "FORMAT_VERSION", "RNNCheckpoint", "load_checkpoint", "save_checkpoint"]
