"""``sgtheory train``: train an MLP with one credit-assignment method and write a checkpoint."""

from __future__ import annotations

_SG_METHODS = ("sg", "csg", "sg-every", "csg-every")


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an MLP with bp, sg, csg, sg-every, csg-every, fa, dfa or kickback",
        description="Train a fully connected net with one credit-assignment method on an offline data set; "
                    "print a one-line summary and, with --out, write DIR/checkpoint.npz + DIR/checkpoint.json.",
    )
    p.add_argument("--method", default="bp", help="credit-assignment method (see `sgtheory methods`; default bp)")
    p.add_argument("--depth", type=int, default=4, help="hidden layers, 1..50 (default 4)")
    p.add_argument("--width", type=int, default=256, help="units per hidden layer (default 256)")
    p.add_argument("--activation", default="relu", help="relu, sigmoid or tanh (default relu)")
    p.add_argument("--batchnorm", action="store_true", help="batch-normalise every hidden layer")
    p.add_argument("--dataset", default="mnist5k",
                   help="mnist5k (embedded, default), digits, fashion-mnist, mnist, cifar10")
    p.add_argument("--data-root", default=None, help="folder holding the data set's files")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="seed for init, method state, batches and split (default 0)")
    p.add_argument("--out", default=None, help="folder for the checkpoint (default: none written)")
    p.add_argument("--optimizer", default="adam", help="adam or sgd (default adam)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--schedule", default="constant",
                   help="learning-rate schedule: constant, or cosine (decay to 0 over --steps); default constant")
    p.add_argument("--sg-lr", type=float, default=None, help="learning rate of the SG modules (default --lr)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between evaluations (default 500)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="also overwrite the checkpoint in --out every N steps (at the next evaluation)")
    p.add_argument("--sg-layer", type=int, default=None,
                   help="hidden layer carrying the SG for sg/csg (1..depth; default depth // 2)")
    p.add_argument("--sg-module", default="linear", help="linear or mlp SG module (default linear)")
    p.add_argument("--sg-hidden", type=int, default=1024, help="hidden units of an mlp SG module (default 1024)")
    p.add_argument("--mix", type=float, default=1.0,
                   help="weight of the SG in the signal, 0..1 (1 = pure SG, 0 = backprop; default 1)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=run)


def run(args) -> int:
    from sgtheory.cli.main import emit
    from sgtheory.errors import InputError
    from sgtheory.io import ensure_writable_dir
    from sgtheory.validate import choice

    from sgtheory import data, nets
    from sgtheory.nets import methods

    choice(args.method, "method", methods.METHODS)
    choice(args.dataset, "dataset", data.DATASETS)
    options = {}
    if args.method in _SG_METHODS:
        options = {"module": args.sg_module, "hidden": args.sg_hidden, "mix": args.mix}
        if args.sg_layer is not None:
            if args.method.endswith("-every"):
                raise InputError(f"--sg-layer: {args.method} puts an SG at every hidden layer")
            options["layer"] = args.sg_layer
    elif args.sg_layer is not None or args.mix != 1.0 or args.sg_module != "linear":
        raise InputError(f"--sg-layer/--sg-module/--mix apply to {', '.join(_SG_METHODS)}, not {args.method}")
    method = methods.get(args.method, **options)
    out = ensure_writable_dir(args.out) if args.out is not None else None
    if args.checkpoint_every is not None and out is None:
        raise InputError("--checkpoint-every needs --out")
    ds = data.load(args.dataset, root=args.data_root, seed=args.seed)
    config = nets.MLPConfig(ds.x_train.shape[1], ds.n_classes, args.depth, args.width, args.activation,
                            bool(args.batchnorm))
    if method.name in _SG_METHODS:
        method.sg_layers(config.depth)  # an --sg-layer outside the net fails before training
    result = nets.train(ds, config, method, steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer,
                        lr=args.lr, sg_lr=args.sg_lr, schedule=args.schedule, eval_every=args.eval_every, seed=args.seed,
                        show_progress=True if args.progress else None, checkpoint_dir=out,
                        checkpoint_every=args.checkpoint_every)
    m = result.metrics
    summary = {"method": method.name, "dataset": ds.name, "depth": config.depth, "width": config.width,
               "activation": config.activation, "batchnorm": config.batchnorm, "steps": int(m["step"][-1]),
               "test_error": round(float(m["test_error"][-1]), 5), "train_loss": round(float(m["train_loss"][-1]), 6),
               "sg_loss": round(float(m["sg_loss"][-1]), 6),
               "cosine": [round(float(c), 4) for c in m["cosine"][-1]],
               "steps_per_second": result.info["steps_per_second"], "train_seconds": result.info["train_seconds"],
               "compile_seconds": result.info["compile_seconds"], "backend": result.info["backend"],
               "checkpoint": None}
    if out is not None:
        run_args = {k: v for k, v in vars(args).items() if k != "func"}
        summary["checkpoint"] = str(nets.save_checkpoint(out, result, run_args) / "checkpoint.npz")
    text = (f"train {method.name} on {ds.name} ({config.depth}x{config.width} {config.activation}"
            f"{' +bn' if config.batchnorm else ''}): test error {summary['test_error']:.4f}, train loss "
            f"{summary['train_loss']:.4g} after {summary['steps']} steps ({summary['steps_per_second']:.0f} steps/s)"
            + (f" -> {summary['checkpoint']}" if summary["checkpoint"] else ""))
    emit(summary, args.json, text)
    return 0
