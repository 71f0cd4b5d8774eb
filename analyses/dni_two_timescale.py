"""DNI two-timescale system: a slow LSTM B sends synthetic gradients into a fast LSTM A at each of its ticks.

Jaderberg et al. (2017) show a hierarchical system of two recurrent nets ticking at different rates,
coupled only by synthetic gradients; its task, sizes and numbers are unknown, so the protocol here is ours
(:mod:`sgtheory.rnn.two_timescale`): A reads a stream of random symbols and names the previous one; every
``period`` steps B reads A's state and must name the first symbol of the window A just read (with label
noise, an irreducible loss), which A's own task never asks it to keep. A is trained by the window algorithm
(windows of ``period`` steps, one per B tick) and gets at each window's exit, by mode:

- ``none``: nothing (no gradient from B to A); ``bptt``: full backpropagation through both nets;
- ``oracle``: the true future gradient (equal to full BPTT: tested);
- ``dni`` / ``cdni``: B's DNI, an SG module over A's state (``cdni``: also conditioned on B's target at
  that tick), trained on A's bootstrapped window targets plus B's real gradient from B's own backward pass.

Reported: B's held-out loss (nats per tick) along training for every mode (mean ± sd over seeds), its
excess over the noise floor, B's error rate, A's loss, and the cosine between B's DNI and the true gradient.

    python analyses/dni_two_timescale.py --quick   # 600 steps, 3 seeds
    python analyses/dni_two_timescale.py           # 3,000 steps, 3 seeds
"""

from __future__ import annotations

import sys
from pathlib import Path

from sgtheory.repro import analysis_main, guard_script

guard_script(__name__, __file__)  # Ctrl-C from here on: one line, exit code 130

import numpy as np

from sgtheory.settings import Setting

NAME = "dni_two_timescale"
MODE_NAMES = ("none", "dni", "cdni", "oracle", "bptt")
LABELS = {"none": "no B→A gradient", "dni": "DNI", "cdni": "cDNI", "oracle": "oracle SG", "bptt": "full BPTT"}

SETTINGS = (
    Setting("modes", "strs", full=MODE_NAMES, choices=MODE_NAMES, help="what A gets at B's ticks"),
    Setting("seeds", "int", full=3, lo=1, hi=1000, help="seeds per mode: seed, seed+1, ..."),
    Setting("steps", "int", full=3000, quick=600, lo=1, help="training batches"),
    Setting("evals", "int", full=6, quick=3, lo=1, help="evaluations along each run (must divide steps)"),
    Setting("period", "int", full=5, lo=2, hi=100, help="A's steps per B tick (A's window length T)"),
    Setting("ticks", "int", full=6, lo=1, hi=1000, help="B ticks per sequence"),
    Setting("vocab", "int", full=4, lo=2, hi=1000, help="symbols in the stream"),
    Setting("a_hidden", "int", full=32, lo=1, hi=4096, help="A's LSTM units"),
    Setting("b_hidden", "int", full=16, lo=1, hi=4096, help="B's LSTM units"),
    Setting("sg", "str", full="linear", choices=("linear", "mlp"), help="B's DNI module"),
    Setting("sg_hidden", "int", full=64, lo=1, hi=4096, help="hidden units of an mlp DNI module"),
    Setting("batch", "int", full=32, lo=1, hi=4096, help="sequences per batch"),
    Setting("eval_batch", "int", full=256, lo=1, hi=100_000, help="held-out sequences"),
    Setting("lr", "float", full=3e-3, above=0, help="Adam rate of both nets"),
    Setting("sg_lr", "float", full=None, optional=True, above=0, help="Adam rate of the DNI module (none: --lr)"),
    Setting("clip", "float", full=1.0, above=0, help="global-norm clip of each net's and the module's gradient"),
    Setting("noise", "float", full=0.2, lo=0, hi=0.99, help="probability that B's target is a random symbol"),
    Setting("b_weight", "float", full=1.0, above=0, help="weight of B's loss in the system's objective"),
)


def compute(args):
    from sgtheory.errors import InputError
    from sgtheory.rnn.two_timescale import System, noise_floor
    from sgtheory.rnn.two_timescale_train import sweep

    if args.steps % args.evals:
        raise InputError(f"--evals: must divide --steps ({args.steps}), got {args.evals}")
    system = System(args.period, args.ticks, args.vocab, args.a_hidden, args.b_hidden, args.sg, args.sg_hidden).check()
    seeds = [args.seed + i for i in range(args.seeds)]
    res = sweep(system, list(args.modes), seeds, steps=args.steps, eval_every=args.steps // args.evals,
                batch=args.batch, lr=args.lr, sg_lr=args.sg_lr, clip=args.clip, sg_clip=args.clip,
                b_weight=args.b_weight, noise=args.noise, eval_batch=args.eval_batch)
    modes = list(args.modes)
    arrays = {k: np.stack([res["metrics"][m][k] for m in modes]) for k in
              ("b_loss", "a_loss", "b_error", "sg_cosine", "train_b_loss")}  # (M, S, E)
    arrays.update(step=res["step"], seeds=np.asarray(seeds))
    meta = {"modes": modes, "system": system.__dict__, "batch": args.batch, "eval_batch": args.eval_batch,
            "lr": args.lr, "sg_lr": args.sg_lr or args.lr, "clip": args.clip, "noise": args.noise,
            "b_weight": args.b_weight, "steps": args.steps, "noise_floor": noise_floor(args.vocab, args.noise),
            "chance": float(np.log(args.vocab)), "seconds_per_mode": res["seconds"]}
    return arrays, meta


def _sd(a, axis=0):
    return a.std(axis=axis, ddof=1) if a.shape[axis] > 1 else np.zeros(np.delete(a.shape, axis))


def _table(arrays, meta) -> str:
    lines = ["| mode | B loss (nats/tick) | excess over the noise floor | B error | A loss | cos(DNI, true grad) |",
             "|---|---|---|---|---|---|"]
    for i, m in enumerate(meta["modes"]):
        b = arrays["b_loss"][i, :, -1]
        cos = f"{arrays['sg_cosine'][i, :, -1].mean():.2f}" if m in ("dni", "cdni") else "—"
        lines.append(f"| {LABELS[m]} (`{m}`) | {b.mean():.3f} ± {_sd(b):.3f} | {b.mean() - meta['noise_floor']:.3f} "
                     f"| {100 * arrays['b_error'][i, :, -1].mean():.1f}% | {arrays['a_loss'][i, :, -1].mean():.4f} "
                     f"| {cos} |")
    return "\n".join(lines)


def plot(arrays, meta, out: Path):
    from sgtheory.io import savefig, write_text
    from sgtheory.plotting import figure

    step, modes = arrays["step"], meta["modes"]
    with figure(1, 2, figsize=(10.5, 3.6), layout="constrained") as (fig, (ax1, ax2)):
        for i, m in enumerate(modes):
            b = arrays["b_loss"][i]
            ax1.plot(step, b.mean(0), color=f"C{i}", label=LABELS[m], ls="--" if m == "oracle" else "-",
                     zorder=3 if m == "oracle" else 2)  # the oracle lies on full BPTT: drawn on top, dashed
            ax1.fill_between(step, b.mean(0) - _sd(b), b.mean(0) + _sd(b), color=f"C{i}", alpha=0.2, lw=0)
            if m in ("dni", "cdni"):
                ax2.plot(step, arrays["sg_cosine"][i].mean(0), color=f"C{i}", label=LABELS[m])
        ax1.axhline(meta["noise_floor"], color="k", ls=":", lw=1, label="noise floor")
        ax1.axhline(meta["chance"], color="0.5", ls=":", lw=1, label="chance")
        s = meta["system"]
        ax1.set(xlabel="training batch", ylabel="B's held-out loss (nats/tick)",
                title=f"A: LSTM {s['a_hidden']}, B: LSTM {s['b_hidden']}, B ticks every {s['period']} steps")
        handles, labels = ax1.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=7)  # colours shared by both panels
        ax2.set(xlabel="training batch", ylabel="cos(B's DNI, true future gradient)", ylim=(-0.1, 1.05),
                title="B's synthetic gradient into A")
        savefig(fig, out / f"{NAME}.png")
    text = (f"# DNI two-timescale system (our protocol): after {meta['steps']:,} batches, mean ± sd over "
            f"{arrays['b_loss'].shape[1]} seeds\n\nNoise floor {meta['noise_floor']:.3f} nats, chance "
            f"{meta['chance']:.3f}.\n\n{_table(arrays, meta)}\n")
    write_text(out / f"{NAME}.md", text)
    final = {m: round(float(arrays["b_loss"][i, :, -1].mean()), 4) for i, m in enumerate(modes)}
    summary = {"b_loss": final, "noise_floor": round(meta["noise_floor"], 4)}
    if "bptt" in final and "none" in final:
        i_none = modes.index("none")
        for m in ("dni", "cdni"):
            if m in final:
                ratio = final[m] / final["bptt"]
                gap = final["none"] - final[m]
                spread = float(np.hypot(_sd(arrays["b_loss"][modes.index(m), :, -1]),
                                        _sd(arrays["b_loss"][i_none, :, -1])))
                summary[f"{m}_over_bptt"] = round(ratio, 3)
                summary[f"{m}_within_20_percent"] = bool(ratio <= 1.2)
                summary[f"{m}_gain_over_none_in_sd"] = round(gap / spread, 1) if spread > 0 else None
    return summary


def main(argv=None) -> int:
    return analysis_main(NAME, compute, plot, argv, settings=SETTINGS, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
