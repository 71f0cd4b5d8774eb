"""``sgtheory rnn``: train a recurrent net with bptt, tbptt, dni, cdni or dni-aux on Copy, Repeat Copy or a char LM."""

from __future__ import annotations

OUTPUTS = ("checkpoint.npz", "checkpoint.json")  # what --out receives (sgtheory.cli.main checks them first)


def register(sub) -> None:
    p = sub.add_parser(
        "rnn",
        help="train an LSTM/tanh RNN with bptt, tbptt, dni, cdni or dni-aux (Copy, Repeat Copy, char LM)",
        description="Train a recurrent net with truncated BPTT and synthetic gradients at the truncation "
                    "boundaries (recurrent DNI). Copy tasks report the curriculum level solved within --steps "
                    "batches; charlm reports validation bits per character (early stopping). --seeds N runs "
                    "seeds SEED..SEED+N-1 as one vectorised program. With --out, writes DIR/checkpoint.npz + "
                    "DIR/checkpoint.json; --evaluate CHECKPOINT re-evaluates a saved run.",
    )
    p.add_argument("--task", default="copy", help="copy (default), repeat-copy or charlm")
    p.add_argument("--method", default="dni", help="bptt, tbptt, dni (default), cdni or dni-aux")
    p.add_argument("--truncation", "-T", type=int, default=3, help="truncation window T in steps (default 3)")
    p.add_argument("--steps", type=int, default=2000, help="training batches (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds run together (default 1)")
    p.add_argument("--core", default="lstm", help="lstm (default) or tanh")
    p.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per batch (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the core (default 1e-3)")
    p.add_argument("--sg-lr", type=float, default=None, help="Adam learning rate of the SG (default --lr)")
    p.add_argument("--clip", type=float, default=1.0,
                   help="global-norm clip of the core's gradient (default 1; inf = none)")
    p.add_argument("--sg-clip", type=float, default=1.0, help="global-norm clip of the SG's gradient (default 1)")
    p.add_argument("--update", default="window", help="update after every window (default) or once per sequence")
    p.add_argument("--inject-scale", type=float, default=None, help="scale s of the injected SG (default 0.1)")
    p.add_argument("--target-discount", type=float, default=None,
                   help="discount γ of the bootstrapped SG in its own target (default: equal to --inject-scale)")
    p.add_argument("--sg-module", default=None, help="linear (default) or mlp SG module")
    p.add_argument("--sg-hidden", type=int, default=None, help="hidden units of an mlp SG module (default 256)")
    p.add_argument("--sg-input", default=None,
                   help="how the SG reads the state: raw or rms (divided by its RMS over units); default rms for "
                        "charlm (the raw state of an unending stream grows and the SG can diverge), raw otherwise")
    p.add_argument("--aux-weight", type=float, default=None, help="weight λ of the DNI + Aux loss (default 0.1)")
    p.add_argument("--threshold", type=float, default=0.15, help="curriculum threshold in bits per target bit")
    p.add_argument("--repeat-norm", type=float, default=10.0, help="repeat-count normalisation (default 10)")
    p.add_argument("--max-length", type=int, default=1024, help="longest Copy sequence (default 1024 steps)")
    p.add_argument("--corpus", default="kjv", help="charlm corpus: kjv (default, shipped), ptb, text")
    p.add_argument("--data-root", default=None,
                   help="ptb: folder of Mikolov's char files ($SGTHEORY_PTB); text: the file")
    p.add_argument("--seq-len", type=int, default=120, help="charlm: characters per training sequence (default 120)")
    p.add_argument("--eval-every", type=int, default=250, help="batches between evaluations (default 250)")
    p.add_argument("--patience", type=int, default=0, help="charlm: stop after N evaluations without improvement")
    p.add_argument("--eval-chars", type=int, default=0, help="charlm: validation characters read (default 0 = all)")
    p.add_argument("--eval-streams", type=int, default=64, help="charlm: held-out text read as N streams (default 64)")
    p.add_argument("--evaluate", default=None, metavar="CHECKPOINT", help="evaluate a saved run instead of training")
    p.add_argument("--out", default=None, help="folder for the checkpoint (default: none written)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def _method_options(args) -> dict:
    if args.sg_input is None and args.task == "charlm" and args.method not in ("bptt", "tbptt"):
        args.sg_input = "rms"  # the setting of the char-LM table (paper_repro.md, recurrent DNI)
    opts = {"inject_scale": args.inject_scale, "target_discount": args.target_discount, "module": args.sg_module,
            "hidden": args.sg_hidden, "aux_weight": args.aux_weight, "sg_input": args.sg_input}
    return {k: v for k, v in opts.items() if v is not None}


def _mean_sd(values) -> dict:
    import numpy as np

    v = np.asarray(values, float)
    return {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=1)), 4) if v.size > 1 else 0.0}


def run(args) -> int:
    from sgtheory import rnn
    from sgtheory.cli.main import emit
    from sgtheory.errors import InputError
    from sgtheory.io import ensure_writable_dir
    from sgtheory.rnn import methods
    from sgtheory.validate import int_in_range

    if args.evaluate is not None:
        return _evaluate(args)
    opts = _method_options(args)
    if args.method in ("bptt", "tbptt") and opts:
        raise InputError(f"--{next(iter(opts)).replace('_', '-')}: an option of the SG methods, not {args.method}")
    method = methods.get(args.method, **opts)
    int_in_range(args.seeds, "seeds", 1)
    settings = rnn.Settings(task=args.task, core=args.core, hidden=args.hidden, truncation=args.truncation,
                            batch=args.batch_size, steps=args.steps, lr=args.lr,
                            sg_lr=args.lr if args.sg_lr is None else args.sg_lr, clip=args.clip, sg_clip=args.sg_clip,
                            update=args.update, threshold=args.threshold, repeat_norm=args.repeat_norm,
                            max_length=args.max_length, seq_len=args.seq_len, eval_every=args.eval_every,
                            patience=args.patience, eval_chars=args.eval_chars,
                            eval_streams=args.eval_streams).check()
    corpus = None
    if settings.task == "charlm":
        from sgtheory.data.text import load_corpus

        corpus = load_corpus(args.corpus, args.data_root)
    elif args.data_root is not None or args.corpus != "kjv":
        raise InputError(f"--corpus/--data-root: options of charlm, not {settings.task}")
    out = ensure_writable_dir(args.out) if args.out is not None else None
    seeds = tuple(range(args.seed, args.seed + args.seeds))
    result = rnn.train(settings, method, seeds, corpus=corpus, show_progress=True if args.progress else None)
    summary = _summary(result, corpus)
    if out is not None:
        from sgtheory.rnn.checkpoint import save_checkpoint

        run_args = {k: v for k, v in vars(args).items() if k != "func"}
        summary["checkpoint"] = str(save_checkpoint(out, result, run_args) / "checkpoint.npz")
    metric = summary["metric"]
    m = summary[metric]
    text = (f"rnn {method.name} on {settings.task} (T={settings.truncation}, {settings.core} {settings.hidden}, "
            f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}): {metric} {m['mean']:g} ± {m['sd']:g} after "
            f"{summary['steps']} batches ({summary['sequences_per_second']:.0f} sequences/s)"
            + (f" -> {summary['checkpoint']}" if summary.get("checkpoint") else ""))
    emit(summary, args.json, text)
    return 0


def _summary(result, corpus) -> dict:
    import numpy as np

    st, s = result.settings, result.summary
    out = {"task": st.task, "method": result.method.name, "method_options": result.method.options,
           "truncation": st.truncation, "core": st.core, "hidden": st.hidden, "seeds": list(result.seeds),
           "steps": result.info["steps_run"], "sequences": result.info["steps_run"] * st.batch, "metric": s["metric"]}
    if s["metric"] == "val_bpc":
        out["val_bpc"] = {"per_seed": s["val_bpc"], **_mean_sd(s["val_bpc"])}
        out["test_bpc"] = {"per_seed": s["test_bpc"], **_mean_sd(s["test_bpc"])}
        out["corpus"] = corpus.name
    else:
        out["solved_n"] = {"per_seed": s["solved_n"], **_mean_sd(s["solved_n"])}
        out["solved_length"] = {"per_seed": s["solved_length"], **_mean_sd(s["solved_length"])}
        if st.task == "repeat-copy":
            out["solved_r"] = s["solved_r"]
        out["sequences_to_level"] = s["sequences_to_level"]
    sg = result.metrics["sg_loss"]
    tail = max(1, sg.shape[1] // 10)
    out["sg_loss"] = round(float(np.mean(sg[:, -tail:])), 6) if result.method.uses_sg else None
    cos = result.metrics["cosine"]
    out["cosine"] = round(float(np.mean(cos[:, -1])), 4) if result.method.uses_sg and cos.size and \
        np.isfinite(cos[:, -1]).all() else None
    out.update({k: result.info[k] for k in ("sequences_per_second", "train_seconds", "compile_seconds", "backend")})
    return out


def _evaluate(args) -> int:
    from sgtheory.cli.main import emit
    from sgtheory.rnn.evaluate import evaluate_checkpoint

    summary = evaluate_checkpoint(args.evaluate, corpus_root=args.data_root)
    emit(summary, args.json, f"rnn evaluate {args.evaluate}: " + ", ".join(
        f"{k} {v}" for k, v in summary.items() if k in ("metric", "test_bpc", "bits_per_target")))
    return 0

