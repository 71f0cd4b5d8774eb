"""The work and the one-line summary of ``sgtheory train`` (kept apart from its option table)."""

from __future__ import annotations

import math

import numpy as np

from sgtheory.nets.population import METRICS


def _num(x, digits: int):
    """A JSON-safe rounded number: None for NaN/inf."""
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def train_from_args(args, method, mixes, population: bool, out):
    """Load the data, build the net and train it (one run or a population); write the checkpoint(s).

    Returns ``(result, dataset, data_seed)``: a TrainResult or a PopulationResult.
    """
    from sgtheory import data, nets

    data_seed = args.seed if args.data_seed is None else args.data_seed
    ds = data.load(args.dataset, root=args.data_root, seed=data_seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, args.width, args.activation,
                            bool(args.batchnorm))
    common = dict(steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer, schedule=args.schedule,
                  eval_every=args.eval_every, show_progress=True if args.progress else None,
                  checkpoint_dir=out, checkpoint_every=args.checkpoint_every)
    run_args = {k: v for k, v in vars(args).items() if k != "func"}
    run_args["data_seed"] = data_seed
    if population:
        result = nets.train_population(ds, config, method, seeds=list(range(args.seed, args.seed + args.seeds)),
                                       lr=list(args.lr), sg_lr=None if args.sg_lr is None else list(args.sg_lr),
                                       mix=mixes, **common)
        result = result._replace(info={**result.info, "data_seed": data_seed})
        if out is not None:
            nets.save_population(out, result, run_args)
    else:
        result = nets.train(ds, config, method, lr=args.lr[0], sg_lr=None if args.sg_lr is None else args.sg_lr[0],
                            seed=args.seed, **common)
        result = result._replace(info={**result.info, "data_seed": data_seed})
        if out is not None:
            nets.save_checkpoint(out, result, run_args)
    return result, ds, data_seed


def _member_row(i: int, result, population: bool) -> dict:
    m = result.member(i) if population else result
    status = m.info["status"]
    row = {k: m.info[k] for k in ("seed", "lr", "sg_lr") if k in m.info}
    if "mix" in m.info:
        row["mix"] = m.info["mix"]
    metrics = m.metrics
    row.update({"status": status, "test_error": _num(metrics["test_error"][-1], 5),
                "train_loss": _num(metrics["train_loss"][-1], 6), "sg_loss": _num(metrics["sg_loss"][-1], 6),
                "cosine": [_num(c, 4) for c in metrics["cosine"][-1]]})
    return row


def _stats(rows: list[dict]) -> dict:
    """Mean and sd of the final numbers over the rows that did not diverge (the keys of a summary)."""
    from sgtheory.nets import mean_sd

    ok = [m for m in rows if m["status"] == "ok"]
    out = {"members_ok": len(ok)}
    for k in METRICS:
        if k == "cosine":
            continue
        st = mean_sd([m[k] for m in ok])
        out[k] = None if st["mean"] is None else round(st["mean"], 6)
        out[f"{k}_sd"] = None if st["sd"] is None else round(st["sd"], 6)
    out["cosine"] = [_num(np.mean([v for v in c if v is not None]), 4) if any(v is not None for v in c) else None
                     for c in zip(*(m["cosine"] for m in ok))] if ok else None
    return out


def _groups(members: list[dict]) -> list[dict]:
    """Members with the same rates (and mix), each group with the mean ± sd over its seeds."""
    keys = [k for k in ("lr", "sg_lr", "mix") if k in members[0]]
    groups: dict = {}
    for m in members:
        groups.setdefault(tuple(m[k] for k in keys), []).append(m)
    return [{**dict(zip(keys, key)), "seeds": [m["seed"] for m in rows], **_stats(rows)}
            for key, rows in groups.items()]


def _describe(g: dict, n: int, population: bool) -> str:
    if g["test_error"] is None:
        return "every member diverged" if population else "diverged (loss or parameters not finite)"
    if not population:
        return f"test error {g['test_error']:.4f}, train loss {g['train_loss']:.4g}"
    sd = f" ± {g['test_error_sd']:.4f}" if g["test_error_sd"] is not None else ""
    return f"test error {g['test_error']:.4f}{sd} (mean ± sd over {g['members_ok']} of {n} seeds)"


def summarise(args, result, ds, data_seed: int, out, population: bool) -> tuple[dict, str]:
    """The JSON summary and the text line.

    Per member: its settings, ``status`` and final numbers (``null`` when not finite). Per group of members
    with the same rates: mean ± sd over its seeds that did not diverge; with a single group (one set of
    rates) these are also the top-level ``test_error``, ``test_error_sd``, ... (for one run: its numbers).
    """
    from sgtheory.nets.population_io import member_folder

    n = result.size if population else 1
    members = [_member_row(i, result, population) for i in range(n)]
    groups = _groups(members)
    n_ok = sum(m["status"] == "ok" for m in members)
    status = "ok" if n_ok == n else ("diverged" if not n_ok else "some diverged")
    info = result.info
    top = groups[0] if len(groups) == 1 else {k: None for k in groups[0] if k not in ("lr", "sg_lr", "mix", "seeds")}
    summary = {"method": result.methods[0].name if population else result.method.name, "dataset": ds.name,
               "data_seed": data_seed, "depth": args.depth, "width": args.width, "activation": args.activation,
               "batchnorm": bool(args.batchnorm), "steps": args.steps, "population": n, "status": status,
               **{k: v for k, v in top.items() if k not in ("lr", "sg_lr", "mix", "seeds")},
               "members_ok": n_ok, "groups": groups, "members": members,
               "steps_per_second": info["steps_per_second"],
               "member_steps_per_second": info.get("member_steps_per_second", info["steps_per_second"]),
               "train_seconds": info["train_seconds"], "compile_seconds": info["compile_seconds"],
               "backend": info["backend"], "devices": info.get("devices", 1), "checkpoint": None}
    if out is not None:
        summary["checkpoint"] = str(out / "population.json") if population else str(out / "checkpoint.npz")
        for i, m in enumerate(members):
            m["checkpoint"] = str(out / member_folder(i)) if population else summary["checkpoint"]
    net = f"{args.depth}x{args.width} {args.activation}{' +bn' if args.batchnorm else ''}"
    if len(groups) == 1:
        result_text = _describe(groups[0], len(members), population)
    else:
        label = lambda g: ", ".join(f"{k} {g[k]:g}" for k in ("lr", "sg_lr", "mix") if k in g)
        result_text = "; ".join(f"{label(g)}: {_describe(g, len(g['seeds']), True)}" for g in groups)
    speed = (f"{summary['member_steps_per_second']:.0f} member-steps/s on {summary['devices']} device(s)"
             if population else f"{summary['steps_per_second']:.0f} steps/s")
    text = (f"train {summary['method']} on {ds.name} ({net}): {result_text} after {args.steps} steps ({speed})"
            + (f" -> {summary['checkpoint']}" if summary["checkpoint"] else ""))
    return summary, text
