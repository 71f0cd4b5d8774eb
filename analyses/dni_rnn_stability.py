"""Why recurrent DNI's bootstrapped SG can diverge on a text stream, and what keeps it stable (ours).

Not a figure of the paper: a diagnosis of our char-LM runs (paper_repro.md, recurrent DNI). With the
SG reading the raw state [h; c], DNI diverged at T = 4 and 5. Along training this script records, on
the batch each run trains on next (sgtheory.rnn.diagnostics): the largest state entry (an LSTM's cell
state is an unbounded integrator), the SG's output and its target (RMS per sequence), the SG's
effective TD contraction γ·G_T (G_T: growth per window of a cotangent pulled back through the
windows; the discounted target exists when it is below 1) and the validation BPC — for the SG reading
the raw state and the state divided by its RMS over units (--sg-inputs).

    python analyses/dni_rnn_stability.py --quick   # T = 4, one seed, a few batches
    python analyses/dni_rnn_stability.py           # T in {3, 4, 5}, two seeds, 400 batches
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from sgtheory.settings import Setting

NAME = "dni_rnn_stability"
SERIES = ("state_max", "sg_rms", "target_rms", "contraction", "jac_norm", "sg_step_ratio")

SETTINGS = (
    Setting("truncations", "ints", full=(3, 4, 5), quick=(4,), lo=1, hi=1024, help="truncation windows T"),
    Setting("sg_inputs", "strs", full=("raw", "rms"), choices=("raw", "rms"), help="how the SG reads the state"),
    Setting("method", "str", full="dni", choices=("dni", "cdni", "dni-aux"), help="SG method"),
    Setting("runs", "int", full=2, quick=1, lo=1, hi=64, help="seeds per curve"),
    Setting("hidden", "int", full=128, quick=64, lo=1, hi=8192, help="LSTM units"),
    Setting("batch_size", "int", full=32, quick=16, lo=1, hi=4096, help="sequences per batch"),
    Setting("lm_steps", "int", full=400, quick=12, lo=1, help="batches per run"),
    Setting("eval_every", "int", full=20, quick=4, lo=1, help="batches between diagnostics and validations"),
    Setting("eval_chars", "int", full=30_000, quick=4_000, lo=0, help="validation characters (0 = all)"),
    Setting("seq_len", "int", full=120, quick=60, lo=1, help="characters per training sequence"),
    Setting("lr", "float", full=3e-3, above=0, help="Adam learning rate of the core"),
    Setting("sg_lr", "float", full=1e-3, above=0, help="Adam learning rate of the SG"),
    Setting("inject_scale", "float", full=0.1, lo=0, help="scale s of the injected SG"),
    Setting("target_discount", "float", full=0.1, lo=0, hi=1, help="discount γ of the SG in its own target"),
    Setting("aux_weight", "float", full=0.1, lo=0, help="weight λ of the DNI + Aux loss (dni-aux only)"),
    Setting("corpus", "str", full="kjv", choices=("kjv", "ptb", "text"), help="char LM corpus"),
    Setting("data_root", "path", full=None, optional=True, help="ptb folder or text file"),
)


def compute(args):
    from dataclasses import replace

    from sgtheory.data.text import load_corpus
    from sgtheory.rnn import Settings
    from sgtheory.rnn.grid import make_method, run_cell

    corpus = load_corpus(args.corpus, args.data_root)
    seeds = tuple(range(args.seed, args.seed + args.runs))
    base = Settings(task="charlm", hidden=args.hidden, batch=args.batch_size, steps=args.lm_steps, lr=args.lr,
                    sg_lr=args.sg_lr, clip=float("inf"), sg_clip=float("inf"), seq_len=args.seq_len,
                    eval_every=args.eval_every, eval_chars=args.eval_chars)
    for T in args.truncations:  # every run's settings are checked before the first one
        replace(base, truncation=T).check()
    arrays = {}
    for T in args.truncations:
        for sg_input in args.sg_inputs:
            opts = {"inject_scale": args.inject_scale, "target_discount": args.target_discount, "sg_input": sg_input,
                    "aux_weight": args.aux_weight}
            method = make_method(args.method, opts)
            cell = run_cell(replace(base, truncation=T), method, seeds, corpus, diagnostics=True)
            arrays[f"T{T}/{sg_input}/eval_step"] = cell["eval_step"]
            arrays[f"T{T}/{sg_input}/val_bpc"] = cell["val_curve"]
            arrays.update({f"T{T}/{sg_input}/{k}": cell[f"diag_{k}"] for k in SERIES})
    meta = {"truncations": list(args.truncations), "sg_inputs": list(args.sg_inputs), "method": args.method,
            "seeds": list(seeds), "settings": base.to_dict(), "corpus": corpus.name,
            "method_options": {"inject_scale": args.inject_scale, "target_discount": args.target_discount}}
    return arrays, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure

    panels = (("state_max", "largest |state| entry", True), ("sg_rms", "SG output RMS (dashed: target RMS)", True),
              ("contraction", "TD contraction γ·G_T", False), ("val_bpc", "validation BPC", False))
    summary: dict = {}
    with figure(1, 4, figsize=(16, 3.4)) as (fig, axes):
        for i, T in enumerate(meta["truncations"]):
            for sg_input in meta["sg_inputs"]:
                key = f"T{T}/{sg_input}"
                x = arrays[f"{key}/eval_step"]
                ls = "-" if sg_input == "raw" else ":"
                for ax, (name, label, log) in zip(axes, panels):
                    y = arrays[f"{key}/{name}"].mean(0)
                    ax.plot(x, y, ls=ls, color=f"C{i}", label=f"T = {T}, {sg_input}")
                    if name == "sg_rms":
                        ax.plot(x, arrays[f"{key}/target_rms"].mean(0), ls="--", color=f"C{i}", lw=0.8)
                    ax.set(xlabel="batches", title=label, yscale="log" if log else "linear")
                summary[key] = {"best_val_bpc": np.round(np.min(arrays[f"{key}/val_bpc"], axis=1), 4).tolist(),
                                "final_state_max": np.round(arrays[f"{key}/state_max"][:, -1], 2).tolist(),
                                "max_sg_over_target": round(float(np.max(
                                    arrays[f"{key}/sg_rms"] / np.maximum(arrays[f"{key}/target_rms"], 1e-30))), 3),
                                "max_contraction": round(float(np.max(arrays[f"{key}/contraction"])), 4)}
        axes[3].legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    return summary


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
