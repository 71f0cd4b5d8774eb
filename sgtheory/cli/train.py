"""``sgtheory train``: train an MLP (or a population of them) with one credit-assignment method.

One run (``--seeds 1``, one ``--lr``) writes ``OUT/checkpoint.{npz,json}``; a population (``--seeds N`` and/or
lists ``--lr 1e-3,3e-4``, ``--sg-lr``, ``--mix``) trains every combination in one compiled program and writes
``OUT/population.json`` plus one checkpoint per member in ``OUT/member-i/``. The summary gives each
member's final numbers and their mean ± sd; a member whose loss or parameters stopped being finite has
``status: diverged`` and ``null`` numbers (never NaN).
"""

from __future__ import annotations

from sgtheory.settings import SEED, SEED_MAX, TRAINING, Setting, add_settings, resolve

_SG_METHODS = ("sg", "csg", "sg-every", "csg-every")
OUTPUTS = ("checkpoint.npz", "checkpoint.json", "population.json")


def _methods():
    from sgtheory.nets.methods import METHODS

    return METHODS


def _datasets():
    from sgtheory.data import DATASETS

    return tuple(DATASETS)


SETTINGS = (
    Setting("method", "str", full="bp", choices=_methods, help="credit-assignment method (see `sgtheory methods`)"),
    *(s.with_(choices=_datasets) if s.name == "dataset" else s
      for s in TRAINING.pick("dataset", "data_root", "depth", "width", "activation", "batchnorm", "steps",
                             "batch_size", "optimizer")),
    *(s.with_(kind="floats", full=None if s.full is None else (s.full,), help=s.help + "; a comma list: one "
              "population member per value") for s in TRAINING.pick("lr", "sg_lr")),
    Setting("schedule", "str", full="constant", choices=("constant", "cosine"),
            help="learning-rate schedule (cosine: decay to 0 over --steps)"),
    Setting("eval_every", "int", full=500, lo=1, help="steps between evaluations"),
    Setting("checkpoint_every", "int", full=None, optional=True, lo=1,
            help="also overwrite the checkpoint(s) in --out every N steps (at the next evaluation)"),
    Setting("sg_layer", "int", full=None, optional=True, lo=1,
            help="hidden layer carrying the SG for sg/csg (none: depth // 2)"),
    Setting("sg_module", "str", full="linear", choices=("linear", "mlp"), help="SG module"),
    Setting("sg_hidden", "int", full=1024, lo=1, hi=65536, help="hidden units of an mlp SG module"),
    Setting("mix", "floats", full=(1.0,), lo=0, hi=1,
            help="weight of the SG in the signal (1 = pure SG, 0 = backprop); a comma list: one member per value"),
    SEED,
    *TRAINING.pick("seeds"),
    Setting("data_seed", "int", full=None, optional=True, lo=0, hi=SEED_MAX,
            help="seed of the data set's split and order (none: --seed)"),
)


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an MLP (or a population: --seeds N, --lr a,b) with bp, sg, csg, sg-every, csg-every, "
             "sg-unlock, csg-unlock, fa, dfa, kickback",
        description="Train a fully connected net with one credit-assignment method on an offline data set, or a "
                    "population of them in one compiled program (--seeds N and comma lists of --lr, --sg-lr, --mix); "
                    "print a one-line summary (per member and mean ± sd) and, with --out, write the checkpoint(s).",
    )
    add_settings(p, SETTINGS)
    p.add_argument("--out", default=None,
                   help="folder for the checkpoint (one run) or the population (population.json + member-i/)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def _method(args):
    from sgtheory.errors import InputError
    from sgtheory.nets import methods

    given = {k: getattr(args, k) is not None for k in ("sg_layer", "sg_module", "sg_hidden", "mix")}
    resolve(args, SETTINGS)
    if args.method not in _SG_METHODS:
        if any(given.values()):
            raise InputError(f"--sg-layer/--sg-module/--sg-hidden/--mix apply to {', '.join(_SG_METHODS)}, "
                             f"not {args.method}")
        return methods.get(args.method), None
    options = {"module": args.sg_module, "hidden": args.sg_hidden, "mix": args.mix[0]}
    if args.sg_layer is not None:
        if args.method.endswith("-every"):
            raise InputError(f"--sg-layer: {args.method} puts an SG at every hidden layer")
        options["layer"] = args.sg_layer
    return methods.get(args.method, **options), (list(args.mix) if len(args.mix) > 1 else None)


def run(args) -> int:
    from sgtheory.errors import InputError

    if args.seeds not in (None, "1") or any("," in (getattr(args, k) or "") for k in ("lr", "sg_lr", "mix")):
        from sgtheory.hostdevices import one_device_per_core

        one_device_per_core()  # before JAX starts (the checks below import it): members split over the cores
    method, mixes = _method(args)
    if args.seed + args.seeds - 1 > SEED_MAX:
        raise InputError(f"--seeds: seeds {args.seed}..{args.seed + args.seeds - 1} exceed {SEED_MAX}")
    population = args.seeds > 1 or len(args.lr) > 1 or len(args.sg_lr or ()) > 1 or mixes is not None
    from pathlib import Path

    from sgtheory.io import ensure_writable_dir

    out = ensure_writable_dir(args.out) if args.out is not None else None
    if args.checkpoint_every is not None and out is None:
        raise InputError("--checkpoint-every needs --out")
    taken = "checkpoint.json" if population else "population.json"
    if out is not None and (Path(out) / taken).exists():
        raise InputError(f"--out {out}: holds a {'single run' if population else 'population'} ({taken}); "
                         "choose another folder")
    from sgtheory.cli._train_summary import summarise, train_from_args

    result, ds, data_seed = train_from_args(args, method, mixes, population, out)
    summary, text = summarise(args, result, ds, data_seed, out, population)
    from sgtheory.cli.main import emit

    emit(summary, args.json, text)
    return 0
