"""Grids of recurrent runs (task × method × T, seeds vmapped) and their Table-1-style summary.

Used by ``analyses/dni_rnn_table.py`` and ``analyses/dni_rnn_curves.py``: every cell is one
:func:`sgtheory.rnn.train` call over all seeds at once; the task metric per seed, the per-step and
per-evaluation histories and the throughput are collected into arrays keyed by
``"{task}/{method}/T{T}/{name}"``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sgtheory.rnn import methods as rnn_methods
from sgtheory.rnn.train import Settings, train

METRIC = {"copy": "solved_n", "repeat-copy": "solved_length", "charlm": "val_bpc"}
LABEL = {"tbptt": "truncated BPTT", "dni": "DNI", "dni-aux": "DNI + Aux", "cdni": "cDNI", "bptt": "BPTT"}


def run_cell(settings: Settings, method, seeds, corpus=None, show_progress=None, diagnostics: bool = False) -> dict:
    """One grid cell: ``method`` on ``settings`` for every seed.

    Args:
        settings: the run's :class:`~sgtheory.rnn.settings.Settings`.
        method: a method or its name.
        seeds: integer seeds, run together.
        corpus: the corpus (charlm only).
        show_progress: a progress bar (None: only on a terminal).
        diagnostics: also record the stability numbers of :func:`sgtheory.rnn.diagnostics.diagnose` at
            every evaluation (``diag_<name>``, ``(seeds, E)``).

    Returns:
        The cell's arrays (numpy): losses, levels, SG loss, cosines, throughput and the task metric.
    """
    result = train(settings, method, seeds, corpus=corpus, show_progress=show_progress, diagnostics=diagnostics)
    s, m = result.summary, result.metrics
    out = {"loss_bits": m["loss_bits"], "level_n": m["level_n"], "level_r": m["level_r"], "sg_loss": m["sg_loss"],
           "eval_step": m["eval_step"], "cosine": m["cosine"],
           "sequences_per_second": np.asarray(result.info["sequences_per_second"])}
    out.update({k: v for k, v in m.items() if k.startswith("diag_")})
    if settings.task == "charlm":
        out.update(val_bpc=np.asarray(s["val_bpc"]), test_bpc=np.asarray(s["test_bpc"]), val_curve=m["val_bpc"])
    else:
        out.update(solved_n=np.asarray(s["solved_n"]), solved_r=np.asarray(s["solved_r"]),
                   solved_length=np.asarray(s["solved_length"]))
    return out


def run_grid(base: dict, tasks, method_names, truncations, seeds, *, method_options: dict, corpus=None,
             show_progress=None) -> dict:
    """Every (task, method, T) cell; ``base[task]`` holds that task's :class:`Settings`.

    Args:
        base: task name → :class:`Settings` (its ``truncation`` is replaced per cell).
        tasks, method_names, truncations: the grid's axes.
        seeds: integer seeds, run together.
        method_options: options of the SG methods (``inject_scale``, ``target_discount``, ``module``,
            ``aux_weight`` for ``dni-aux`` only), or task name → such options.
        corpus: the corpus of ``charlm``.
        show_progress: progress bars.

    Returns:
        ``{"{task}/{method}/T{T}/{name}": array}``.
    """
    arrays = {}
    for task in tasks:
        opts = method_options[task] if task in method_options else method_options
        for name in method_names:
            method = make_method(name, opts)
            for T in truncations:
                st = replace(base[task], truncation=int(T))
                cell = run_cell(st, method, seeds, corpus if task == "charlm" else None, show_progress)
                arrays.update({f"{task}/{name}/T{T}/{k}": v for k, v in cell.items()})
    return arrays


def make_method(name: str, options: dict):
    """``methods.get(name)`` with the SG options that apply to it.

    Args:
        name: a method name of :mod:`sgtheory.rnn.methods`.
        options: SG options (``aux_weight`` is passed to ``dni-aux`` only; none to ``bptt`` and ``tbptt``).

    Returns:
        The method.
    """
    if name in ("bptt", "tbptt"):
        return rnn_methods.get(name)
    opts = {k: v for k, v in options.items() if k != "aux_weight" or name == "dni-aux"}
    return rnn_methods.get(name, **opts)


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value).

    Args:
        values: numbers.

    Returns:
        ``(mean, sd)``.
    """
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def markdown_table(arrays: dict, tasks, method_names, truncations) -> str:
    """Table 1's layout: one row per (task, method), one column per T, cells "mean ± sd" over seeds.

    Args:
        arrays: the grid's arrays (:func:`run_grid`).
        tasks, method_names, truncations: the grid's axes.

    Returns:
        The markdown table.
    """
    head = "| task | method | " + " | ".join(f"T = {T}" for T in truncations) + " |"
    lines = [head, "|" + "---|" * (2 + len(truncations))]
    for task in tasks:
        metric = METRIC[task]
        for name in method_names:
            cells = []
            for T in truncations:
                key = f"{task}/{name}/T{T}/{metric}"
                if key not in arrays:
                    cells.append("—")
                    continue
                m, s = mean_sd(arrays[key])
                cells.append(f"{m:.3f} ± {s:.3f}" if task == "charlm" else f"{m:.1f} ± {s:.1f}")
            label = {"copy": "Copy (N)", "repeat-copy": "Repeat Copy (length)", "charlm": "char LM (val BPC)"}[task]
            lines.append(f"| {label} | {LABEL[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["LABEL", "METRIC", "make_method", "markdown_table", "mean_sd", "run_cell", "run_grid"]
