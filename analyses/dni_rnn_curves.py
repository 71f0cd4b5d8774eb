"""DNI Fig. 4 (recurrent): Copy curriculum level against sequences seen, and char-LM BPC against steps.

Jaderberg et al. (2017, §3.1, Fig. 4; paper_notes §2, likely): with synthetic gradients at the
truncation boundaries an LSTM climbs the Copy curriculum faster and further than with truncated
BPTT at the same T (a staircase: level solved against samples seen), and its char-LM validation BPC
falls faster. Sizes, rates, T and budgets here are ours (options).

Left: the curriculum level each run is training on (mean over seeds, band = min..max) against the
number of sequences seen. Right: validation BPC on the default offline corpus against batches.

    python analyses/dni_rnn_curves.py --quick    # T = 3, short runs
    python analyses/dni_rnn_curves.py            # T = 3, the table's budgets
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

from sgtheory.settings import RECURRENT, Setting

NAME = "dni_rnn_curves"

SETTINGS = (
    Setting("methods", "strs", full=("tbptt", "dni", "dni-aux"), quick=("tbptt", "dni"),
            choices=("bptt", "tbptt", "dni", "cdni", "dni-aux"), help="methods"),
    Setting("truncation", "int", full=3, lo=1, hi=1024, help="truncation window T"),
    Setting("runs", "int", full=3, quick=2, lo=1, hi=64, help="seeds per curve"),
    Setting("copy_steps", "int", full=12_000, quick=150, lo=1, help="batches per Copy run"),
    Setting("lm_steps", "int", full=1000, quick=40, lo=1, help="batches per char-LM run"),
    *RECURRENT.pick("hidden", "batch_size", "lr", "sg_lr", "clip", "inject_scale", "target_discount",
                    "lm_target_discount", "lm_sg_input", "aux_weight", "seq_len", "eval_every", "eval_chars", "corpus",
                    "data_root", hidden=(128, 32), batch_size=(32, 16), seq_len=(120, 60), eval_every=(50, 10),
                    eval_chars=(100_000, 8_000)),
)


def compute(args):
    from sgtheory.data.text import load_corpus
    from sgtheory.rnn import Settings
    from sgtheory.rnn.grid import make_method, run_cell

    clip = args.clip if args.clip > 0 else float("inf")
    common = dict(core="lstm", hidden=args.hidden, batch=args.batch_size, lr=args.lr, sg_lr=args.sg_lr, clip=clip,
                  sg_clip=clip, truncation=args.truncation)
    copy = Settings(task="copy", steps=args.copy_steps, eval_every=max(1, args.copy_steps // 5), **common).check()
    lm = Settings(task="charlm", steps=args.lm_steps, seq_len=args.seq_len, eval_every=args.eval_every,
                  eval_chars=args.eval_chars, **common).check()
    corpus = load_corpus(args.corpus, args.data_root)
    seeds = tuple(range(args.seed, args.seed + args.runs))
    opts = {"inject_scale": args.inject_scale, "aux_weight": args.aux_weight}
    discount = {"copy": args.target_discount, "charlm": args.lm_target_discount}
    sg_input = {"copy": "raw", "charlm": args.lm_sg_input}
    arrays = {}
    for name in args.methods:
        for task, st, cp in (("copy", copy, None), ("charlm", lm, corpus)):
            options = {**opts, "target_discount": discount[task], "sg_input": sg_input[task]}
            cell = run_cell(st, make_method(name, options), seeds, cp)
            keep = ("level_n", "solved_n") if task == "copy" else ("eval_step", "val_curve", "val_bpc")
            arrays.update({f"{task}/{name}/{k}": cell[k] for k in keep})
    meta = {"methods": list(args.methods), "truncation": args.truncation, "seeds": list(seeds),
            "batch": args.batch_size, "copy_settings": copy.to_dict(), "lm_settings": lm.to_dict(),
            "method_options": {**opts, "target_discount": discount, "sg_input": sg_input}, "corpus": corpus.name}
    return arrays, meta


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig
    from sgtheory.plotting import figure
    from sgtheory.rnn.grid import LABEL

    with figure(1, 2, figsize=(9.5, 3.5)) as (fig, (ax1, ax2)):
        for j, name in enumerate(meta["methods"]):
            lv = arrays[f"copy/{name}/level_n"]  # (seeds, steps): the level each batch was drawn at
            seen = np.arange(1, lv.shape[1] + 1) * meta["batch"]
            ax1.step(seen, lv.mean(0), where="post", color=f"C{j}", label=LABEL[name])
            ax1.fill_between(seen, lv.min(0), lv.max(0), step="post", color=f"C{j}", alpha=0.2)
            bpc = arrays[f"charlm/{name}/val_curve"]
            steps = arrays[f"charlm/{name}/eval_step"]
            ax2.plot(steps, bpc.mean(0), color=f"C{j}", marker=".", label=LABEL[name])
            ax2.fill_between(steps, bpc.min(0), bpc.max(0), color=f"C{j}", alpha=0.2)
        ax1.set(xlabel="sequences seen", ylabel="Copy level N (training on)", title=f"Copy, T = {meta['truncation']}")
        ax2.set(xlabel="batches", ylabel="validation BPC",
                title=f"char LM ({meta['corpus']}), T = {meta['truncation']}")
        ax1.legend(fontsize=7)
        savefig(fig, out / f"{NAME}.png")
    return {name: {"copy_solved_n": np.asarray(arrays[f"copy/{name}/solved_n"]).tolist(),
                   "charlm_val_bpc": np.round(arrays[f"charlm/{name}/val_bpc"], 4).tolist()}
            for name in meta["methods"]}


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, description=__doc__, settings=SETTINGS)


if __name__ == "__main__":
    sys.exit(main())
