"""DNI Table 1 (recurrent): Copy, Repeat Copy and char LM × {truncated BPTT, DNI, DNI + Aux} × T.

Jaderberg et al. (2017, §3.1, Table 1; paper_notes §2, likely): an LSTM trained with truncated BPTT
at window T gets, at every truncation boundary, a synthetic gradient standing in for the gradient
from beyond the window; it then solves longer Copy / Repeat Copy sequences (curriculum level reached)
and reaches lower bits per character than truncated BPTT at the same T; an auxiliary task
(predicting future synthetic gradients) helps further. Numbers, sizes, rates and budgets of the
paper are unknown to us: every setting below is ours and an option.

Cells: mean ± sd over ``--runs`` seeds (run together as one vmapped program). Copy: the curriculum
level N solved within ``--copy-steps`` batches; Repeat Copy: the total length of the last level
solved (N(R+1)+3); char LM: the best validation BPC (early stopping on validation) within
``--lm-steps`` batches on the default offline corpus (King James Bible, see sgtheory.data.text).

    python analyses/dni_rnn_table.py --quick     # Copy + char LM at T = 3 (CPU, minutes)
    python analyses/dni_rnn_table.py             # all three tasks, T in {2, 3, 4, 5, 8}
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from sgtheory.settings import RECURRENT, Setting

NAME = "dni_rnn_table"

SETTINGS = (
    Setting("tasks", "strs", full=("copy", "repeat-copy", "charlm"), quick=("copy", "charlm"),
            choices=("copy", "repeat-copy", "charlm"), help="tasks"),
    Setting("methods", "strs", full=("tbptt", "dni", "dni-aux"), choices=("bptt", "tbptt", "dni", "cdni", "dni-aux"),
            help="methods"),
    Setting("truncations", "ints", full=(2, 3, 4, 5, 8), quick=(3,), lo=1, hi=1024, help="truncation windows T"),
    Setting("runs", "int", full=3, lo=1, hi=64, help="seeds per cell (--seed, --seed + 1, ...)"),
    Setting("copy_steps", "int", full=12_000, quick=300, lo=1, help="batches per Copy / Repeat Copy run (the budget)"),
    Setting("lm_steps", "int", full=1000, quick=100, lo=1, help="batches per char-LM run"),
    Setting("sg_input", "str", full="raw", choices=("raw", "rms"), help="Copy tasks: how the SG reads the state"),
    Setting("sg_module", "str", full="linear", choices=("linear", "mlp"), help="SG module"),
    Setting("threshold", "float", full=0.15, above=0, help="curriculum threshold (bits per target bit)"),
    *RECURRENT.pick("hidden", "batch_size", "lr", "sg_lr", "clip", "inject_scale", "target_discount",
                    "lm_target_discount", "lm_sg_input", "aux_weight", "seq_len", "eval_every", "eval_chars", "corpus",
                    "data_root"),
)


def settings_for(args):
    """The :class:`sgtheory.rnn.Settings` of each task from the parsed options."""
    from sgtheory.rnn import Settings

    clip = args.clip if args.clip > 0 else float("inf")
    common = dict(core="lstm", hidden=args.hidden, batch=args.batch_size, lr=args.lr, sg_lr=args.sg_lr, clip=clip,
                  sg_clip=clip, threshold=args.threshold)
    return {"copy": Settings(task="copy", steps=args.copy_steps, eval_every=max(1, args.copy_steps // 10), **common),
            "repeat-copy": Settings(task="repeat-copy", steps=args.copy_steps,
                                    eval_every=max(1, args.copy_steps // 10), **common),
            "charlm": Settings(task="charlm", steps=args.lm_steps, seq_len=args.seq_len, eval_every=args.eval_every,
                               eval_chars=args.eval_chars, **common)}


def method_options(args) -> dict:
    """SG options per task (the discount differs between episodic Copy tasks and the text stream)."""
    opts = {"inject_scale": args.inject_scale, "module": args.sg_module, "aux_weight": args.aux_weight}
    return {t: {**opts, "target_discount": args.lm_target_discount if t == "charlm" else args.target_discount,
                "sg_input": args.lm_sg_input if t == "charlm" else args.sg_input}
            for t in ("copy", "repeat-copy", "charlm")}


def compute(args):
    from sgtheory.rnn.grid import run_grid

    corpus = None
    if "charlm" in args.tasks:
        from sgtheory.data.text import load_corpus

        corpus = load_corpus(args.corpus, args.data_root)
    base = settings_for(args)
    for task in args.tasks:  # every cell's settings are checked before the first run
        for T in args.truncations:
            base[task].__class__(**{**base[task].to_dict(), "truncation": T}).check()
    seeds = tuple(range(args.seed, args.seed + args.runs))
    arrays = run_grid(base, args.tasks, args.methods, args.truncations, seeds, method_options=method_options(args),
                      corpus=corpus)
    meta = {"tasks": list(args.tasks), "methods": list(args.methods), "truncations": list(args.truncations),
            "seeds": list(seeds), "settings_per_task": {t: base[t].to_dict() for t in args.tasks},
            "method_options": method_options(args), "corpus": corpus.name if corpus else None,
            "budget_sequences": {t: base[t].steps * base[t].batch for t in args.tasks}}
    return arrays, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.plotting import figure
    from sgtheory.rnn.grid import LABEL, METRIC, markdown_table, mean_sd

    tasks, methods, Ts = meta["tasks"], meta["methods"], meta["truncations"]
    table = markdown_table(arrays, tasks, methods, Ts)
    write_text(out / f"{NAME}.md", table + "\n")
    with figure(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False) as (fig, axes):
        width = 0.8 / len(methods)
        for ax, task in zip(axes[0], tasks):
            for j, name in enumerate(methods):
                stats = [mean_sd(arrays[f"{task}/{name}/T{T}/{METRIC[task]}"]) for T in Ts]
                x = np.arange(len(Ts)) + (j - (len(methods) - 1) / 2) * width
                ax.bar(x, [m for m, _ in stats], width, yerr=[s for _, s in stats], label=LABEL[name], color=f"C{j}")
            ax.set_xticks(np.arange(len(Ts)), [f"T = {T}" for T in Ts])
            ax.set(title=task, ylabel={"copy": "level N solved", "repeat-copy": "total length solved",
                                       "charlm": "validation BPC (lower is better)"}[task])
            if task == "charlm":
                lo = min(mean_sd(arrays[f"{task}/{n}/T{T}/val_bpc"])[0] for n in methods for T in Ts)
                ax.set_ylim(bottom=max(0.0, lo - 0.3))
        axes[0][0].legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    summary: dict = {"table": str(out / f"{NAME}.md")}
    for task in tasks:
        cells = {f"{name}/T{T}": round(mean_sd(arrays[f"{task}/{name}/T{T}/{METRIC[task]}"])[0], 4)
                 for name in methods for T in Ts}
        summary[task] = cells
    if "copy" in tasks and {"tbptt", "dni"} <= set(methods):
        summary["copy_dni_over_tbptt"] = {f"T{T}": round(
            mean_sd(arrays[f"copy/dni/T{T}/solved_n"])[0] / max(mean_sd(arrays[f"copy/tbptt/T{T}/solved_n"])[0], 1e-9),
            3) for T in Ts}
    if "charlm" in tasks and {"tbptt", "dni"} <= set(methods):
        summary["charlm_dni_below_tbptt"] = {f"T{T}": bool(
            mean_sd(arrays[f"charlm/dni/T{T}/val_bpc"])[0] < mean_sd(arrays[f"charlm/tbptt/T{T}/val_bpc"])[0])
            for T in Ts}
    return summary


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
