"""Unusual inputs to every subcommand: exit code 2, one line on stderr, no traceback, nothing written.

Each row runs ``sgtheory.cli.main.main(argv)`` in this process (JAX imported once). Sizes in the base
arguments are tiny, so a row whose bad value is wrongly accepted still ends in seconds.
"""

import gzip
import json
import os

import numpy as np
import pytest

from sgtheory.cli.main import main


def _idx(path: str, arr, *, corrupt: bool = False) -> None:
    """A gzipped IDX file of unsigned bytes; ``corrupt`` flips bytes inside the deflate stream."""
    arr = np.asarray(arr, np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    raw = gzip.compress(head + arr.tobytes())
    if corrupt:
        raw = raw[:10] + bytes(b ^ 0x5A for b in raw[10:30]) + raw[30:]
    with open(path + ".gz", "wb") as fh:
        fh.write(raw)


def _checkpoint(folder: str, meta: dict, arrays: dict) -> None:
    os.makedirs(folder)
    with open(f"{folder}/checkpoint.json", "w") as fh:
        json.dump(meta, fh)
    np.savez(f"{folder}/checkpoint.npz", **arrays)


def make_fixtures(f: str) -> None:
    """Write every fixture file into the (empty) folder ``f``."""
    rng = np.random.default_rng(0)
    with open(f"{f}/afile", "w") as fh:
        fh.write("x")
    os.makedirs(f"{f}/taken/sweep.json")
    os.makedirs(f"{f}/taken_ck/checkpoint.json")
    os.makedirs(f"{f}/existing_out")
    with open(f"{f}/existing_out/keep.txt", "w") as fh:
        fh.write("a user's file")
    np.savez(f"{f}/acts_a.npz", l1=rng.normal(size=(40, 5)), l2=rng.normal(size=(40, 3)))
    np.savez(f"{f}/acts_b.npz", l1=rng.normal(size=(40, 4)), l2=rng.normal(size=(40, 3)))
    np.savez(f"{f}/acts_30.npz", l1=rng.normal(size=(30, 4)))
    np.savez(f"{f}/acts_nan.npz", l1=np.full((40, 3), np.nan))
    np.savez(f"{f}/acts_1d.npz", l1=np.zeros(40))
    np.savez(f"{f}/acts_empty.npz")
    np.savez(f"{f}/acts_obj.npz", l1=np.array([{"a": 1}] * 40, dtype=object))
    open(f"{f}/empty.npz", "wb").close()
    with open(f"{f}/corrupt.npz", "wb") as fh:
        fh.write(b"PK\x03\x04garbage")
    with open(f"{f}/labels_bad.txt", "w") as fh:
        fh.write("a\nb\n")
    with open(f"{f}/labels_short.txt", "w") as fh:
        fh.write("1\n2\n")
    os.makedirs(f"{f}/ck_badjson")
    with open(f"{f}/ck_badjson/checkpoint.json", "w") as fh:
        fh.write("{not json")
    np.savez(f"{f}/ck_badjson/checkpoint.npz", x=np.zeros(1))
    mlp = {"n_in": 64, "n_out": 10, "depth": 1, "width": 8, "activation": "relu", "batchnorm": False}
    names = ["params/0/W", "params/0/b", "params/1/W", "params/1/b"]
    _checkpoint(f"{f}/ck_wrongtype", {"format": "sgtheory-checkpoint", "format_version": 1, "arrays": names[:1],
                                      "mlp": [1, 2, 3], "method": "bp", "training": {"dataset": "digits"}},
                {"params/0/W": np.zeros((2, 2))})
    _checkpoint(f"{f}/ck_wrongshape", {"format": "sgtheory-checkpoint", "format_version": 1, "arrays": names,
                                       "mlp": mlp, "method": {"name": "bp", "options": {}},
                                       "training": {"dataset": "digits"}},
                {"params/0/W": np.zeros((3, 3)), "params/0/b": np.zeros(3), "params/1/W": np.zeros((8, 10)),
                 "params/1/b": np.zeros(10)})
    _checkpoint(f"{f}/ck_version", {"format": "sgtheory-checkpoint", "format_version": 99, "arrays": names},
                {"x": np.zeros(1)})
    for name, corrupt, n_test in (("idx_corrupt", True, 5), ("idx_emptytest", False, 0)):
        r = f"{f}/{name}"
        os.makedirs(r)
        _idx(f"{r}/train-images-idx3-ubyte", rng.integers(0, 255, (20, 28, 28)), corrupt=corrupt)
        _idx(f"{r}/train-labels-idx1-ubyte", rng.integers(0, 10, 20))
        _idx(f"{r}/t10k-images-idx3-ubyte", rng.integers(0, 255, (n_test, 28, 28)))
        _idx(f"{r}/t10k-labels-idx1-ubyte", rng.integers(0, 10, n_test))
    os.makedirs(f"{f}/csv_root")
    with open(f"{f}/csv_root/mnist_5k.csv.gz", "wb") as fh:
        fh.write(gzip.compress(b"1,2,3\nnot,a,number\n"))

OUT = ["--out", "{out}"]
S = ["sweep", "--grid", "2", "--steps", "3", "--dim", "2", "--n", "20", "--no-plot", *OUT]
T = ["train", "--dataset", "digits", "--steps", "2", "--depth", "1", "--width", "8", "--eval-every", "1"]
P = ["probe", "{fx}/acts_a.npz", "{fx}/acts_b.npz", *OUT]


def row(rid, argv, needle, *marks):
    return pytest.param(argv, needle, id=rid, marks=marks)


ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

ROWS = [
    row("sweep-grid-0", S + ["--grid", "0"], "--grid"),
    row("sweep-grid-neg", S + ["--grid", "-3"], "--grid"),
    row("sweep-grid-float", S + ["--grid", "2.5"], "--grid"),
    row("sweep-grid-word", S + ["--grid", "many"], "--grid"),
    row("sweep-steps-0", S + ["--steps", "0"], "--steps"),
    row("sweep-steps-neg", S + ["--steps", "-1"], "--steps"),
    row("sweep-alphas-empty", S + ["--alphas", ","], "--alphas"),
    row("sweep-alphas-nan", S + ["--alphas", "nan,1"], "--alphas"),
    row("sweep-alphas-inf", S + ["--alphas", "inf"], "--alphas"),
    row("sweep-alphas-neg", S + ["--alphas=-1,1"], "--alphas"),
    row("sweep-alphas-zero", S + ["--alphas", "0"], "--alphas"),
    row("sweep-alphas-words", S + ["--alphas", "a,b"], "--alphas"),
    row("sweep-range-reversed", S + ["--alpha-range", "10,1"], "--alpha-range"),
    row("sweep-range-one-value", S + ["--beta-range", "1"], "--beta-range"),
    row("sweep-range-nan", S + ["--beta-range", "nan,1"], "--beta-range"),
    row("sweep-model-unknown", S + ["--model", "cnn"], "--model"),
    row("sweep-sg-unknown", S + ["--sg", "quadratic"], "--sg"),
    row("sweep-loss-unknown", S + ["--loss", "hinge"], "--loss"),
    row("sweep-dataset-unknown", S + ["--dataset", "imagenet"], "--dataset"),
    row("sweep-dtype-unknown", S + ["--dtype", "float16"], "--dtype"),
    row("sweep-kernel-unknown", S + ["--kernel", "cuda"], "--kernel"),
    row("sweep-sg-layer-word", S + ["--sg-layer", "middle"], "sg-layer"),
    row("sweep-sg-layer-99", S + ["--model", "deep-linear", "--sg-layer", "99"], "sg_layer"),
    row("sweep-sg-layer-0", S + ["--model", "deep-linear", "--sg-layer", "0"], "sg_layer"),
    row("sweep-depth-neg", S + ["--model", "deep-linear", "--depth", "-1"], "--depth"),
    row("sweep-width-0", S + ["--model", "deep-linear", "--width", "0"], "width"),
    row("sweep-dim-0", S + ["--dim", "0"], "--dim"),
    row("sweep-n-0", S + ["--n", "0"], "--n"),
    row("sweep-noise-nan", S + ["--noise", "nan"], "noise"),
    row("sweep-noise-neg", S + ["--noise", "-1"], "noise"),
    row("sweep-tol-0", S + ["--tol", "0"], "--tol"),
    row("sweep-tol-nan", S + ["--tol", "nan"], "--tol"),
    row("sweep-band-neg", S + ["--band", "-0.1"], "--band"),
    row("sweep-seeds-0", S + ["--seeds", "0"], "--seeds"),
    row("sweep-init-scales-empty", S + ["--init-scales", ","], "--init-scales"),
    row("sweep-init-scales-nan", S + ["--init-scales", "nan"], "--init-scales"),
    row("sweep-data-seed-neg", S + ["--data-seed", "-1"], "--data-seed"),
    row("sweep-data-seed-2**32", S + ["--data-seed", str(2**32)], "--data-seed"),
    row("sweep-chunk-0", S + ["--chunk-size", "0"], "chunk"),
    row("sweep-chunk-neg", S + ["--chunk-size", "-4"], "chunk"),
    row("sweep-out-empty", S + ["--out", ""], "--out"),
    row("sweep-out-is-file", S + ["--out", "{fx}/afile"], "afile"),
    row("sweep-out-inside-file", S + ["--out", "{fx}/afile/sub"], "afile"),
    row("sweep-out-name-too-long", S + ["--out", "{fx}/" + "x" * 300], "--out"),
    row("sweep-out-name-taken-by-folder", S + ["--out", "{fx}/taken"], "sweep.json"),
    row("sweep-bad-input-existing-out", S + ["--grid", "0", "--out", "{fx}/existing_out"], "--grid"),
    row("sweep-unknown-option", S + ["--frobnicate"], "--frobnicate"),
    row("train-method-unknown", T + ["--method", "hebb"], "method"),
    row("train-dataset-unknown", T + ["--dataset", "imagenet"], "dataset"),
    row("train-depth-0", T + ["--depth", "0"], "depth"),
    row("train-depth-51", T + ["--depth", "51"], "depth"),
    row("train-width-0", T + ["--width", "0"], "width"),
    row("train-activation-unknown", T + ["--activation", "gelu2"], "activation"),
    row("train-steps-0", T + ["--steps", "0"], "steps"),
    row("train-steps-neg", T + ["--steps", "-5"], "steps"),
    row("train-seed-neg", T + ["--seed", "-1"], "--seed"),
    row("train-seed-huge", T + ["--seed", str(10**30)], "--seed"),
    row("train-lr-0", T + ["--lr", "0"], "lr"),
    row("train-lr-nan", T + ["--lr", "nan"], "lr"),
    row("train-lr-inf", T + ["--lr", "inf"], "lr"),
    row("train-sg-lr-neg", T + ["--method", "csg", "--sg-lr", "-1"], "lr"),
    row("train-optimizer-unknown", T + ["--optimizer", "lion"], "optimizer"),
    row("train-schedule-unknown", T + ["--schedule", "step"], "schedule"),
    row("train-batch-0", T + ["--batch-size", "0"], "batch"),
    row("train-eval-every-0", T + ["--eval-every", "0"], "eval"),
    row("train-checkpoint-every-0", T + ["--checkpoint-every", "0", *OUT], "checkpoint-every"),
    row("train-checkpoint-every-neg", T + ["--checkpoint-every", "-2", *OUT], "checkpoint-every"),
    row("train-checkpoint-every-without-out", T + ["--checkpoint-every", "5"], "--out"),
    row("train-sg-layer-99", T + ["--method", "csg", "--sg-layer", "99"], "sg layer"),
    row("train-sg-layer-with-bp", T + ["--sg-layer", "1"], "--sg-layer"),
    row("train-sg-module-unknown", T + ["--method", "sg", "--sg-module", "rnn"], "sg module"),
    row("train-sg-hidden-0", T + ["--method", "sg", "--sg-module", "mlp", "--sg-hidden", "0"], "hidden"),
    row("train-mix-2", T + ["--method", "sg", "--mix", "2"], "mix"),
    row("train-mix-nan", T + ["--method", "sg", "--mix", "nan"], "mix"),
    row("train-data-root-missing", T + ["--dataset", "mnist", "--data-root", "{fx}/nope"], "nope"),
    row("train-idx-corrupt-gzip-stream", T + ["--dataset", "mnist", "--data-root", "{fx}/idx_corrupt"], "idx3"),
    row("train-idx-empty-test-split", T + ["--dataset", "mnist", "--data-root", "{fx}/idx_emptytest"], "t10k"),
    row("train-mnist5k-corrupt-csv", T + ["--dataset", "mnist5k", "--data-root", "{fx}/csv_root"], "mnist_5k"),
    row("train-out-empty", T + ["--out", ""], "--out"),
    row("train-out-inside-file", T + ["--out", "{fx}/afile/x"], "afile"),
    row("train-out-name-taken-by-folder", T + ["--out", "{fx}/taken_ck"], "checkpoint.json"),
    row("train-out-unwritable", T + ["--out", "{fx}/readonly/o"], "readonly",
        pytest.mark.skipif(ROOT, reason="root may write into a read-only folder")),
    row("probe-a-missing", ["probe", "{fx}/none.npz", "{fx}/acts_b.npz", *OUT], "none.npz"),
    row("probe-a-empty-file", ["probe", "{fx}/empty.npz", "{fx}/acts_b.npz", *OUT], "empty.npz"),
    row("probe-a-corrupt", ["probe", "{fx}/corrupt.npz", "{fx}/acts_b.npz", *OUT], "corrupt.npz"),
    row("probe-a-pickled", ["probe", "{fx}/acts_obj.npz", "{fx}/acts_b.npz", *OUT], "pickle"),
    row("probe-a-no-arrays", ["probe", "{fx}/acts_empty.npz", "{fx}/acts_b.npz", *OUT], "acts_empty"),
    row("probe-a-nan", ["probe", "{fx}/acts_nan.npz", "{fx}/acts_b.npz", *OUT], "nan"),
    row("probe-a-1d", ["probe", "{fx}/acts_1d.npz", "{fx}/acts_b.npz", *OUT], "acts_1d"),
    row("probe-rows-differ", ["probe", "{fx}/acts_30.npz", "{fx}/acts_b.npz", *OUT], "rows"),
    row("probe-a-wrong-kind", ["probe", "{fx}/afile", "{fx}/acts_b.npz", *OUT], "afile"),
    row("probe-ck-corrupt-json", ["probe", "{fx}/ck_badjson", "{fx}/acts_b.npz", *OUT], "ck_badjson"),
    row("probe-ck-json-wrong-type", ["probe", "{fx}/ck_wrongtype", "{fx}/ck_wrongtype", *OUT], "config"),
    row("probe-ck-array-wrong-shape", ["probe", "{fx}/ck_wrongshape", "{fx}/ck_wrongshape", *OUT], "params/0"),
    row("probe-ck-format-version", ["probe", "{fx}/ck_version", "{fx}/ck_version", *OUT], "version"),
    row("probe-measures-unknown", P + ["--measures", "mutual-info"], "mutual-info"),
    row("probe-measures-empty", P + ["--measures", ","], "measures"),
    row("probe-n-0", P + ["--n", "0"], "--n"),
    row("probe-layers-99", P + ["--layers", "99"], "99"),
    row("probe-layers-unknown", P + ["--layers", "conv9"], "conv9"),
    row("probe-labels-missing", P + ["--labels", "{fx}/nolabels.txt"], "--labels"),
    row("probe-labels-words", P + ["--labels", "{fx}/labels_bad.txt"], "--labels"),
    row("probe-labels-short", P + ["--labels", "{fx}/labels_short.txt"], "--labels"),
    row("probe-rdm-metric-unknown", P + ["--measures", "rdm", "--rdm-metric", "manhattan2"], "manhattan2"),
    row("probe-seed-neg", P + ["--seed", "-7"], "--seed"),
    row("probe-out-inside-file", P + ["--out", "{fx}/afile/o"], "afile"),
    row("probe-out-empty", P + ["--out", ""], "--out"),
    row("methods-format-unknown", ["methods", "--table", "--format", "html"], "--format"),
    row("methods-unknown-option", ["methods", "--verbose"], "--verbose"),
    row("repro-unknown-analysis", ["repro", "no_such_analysis", *OUT], "no_such_analysis"),
    row("repro-out-inside-file", ["repro", "c4_theorem1", "--quick", "--out", "{fx}/afile/o"], "afile"),
    row("repro-out-empty", ["repro", "--out", ""], "--out"),
    row("command-unknown", ["frobnicate"], "frobnicate"),
    row("command-none", [], "choose a command"),
]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input_fixtures")
    make_fixtures(str(folder))
    os.makedirs(folder / "readonly")
    os.chmod(folder / "readonly", 0o555)
    return folder


def _snapshot(folder):
    """Every path under ``folder`` with its size and modification time."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            found[p] = (st.st_size, st.st_mtime_ns)
    return found


def _norm(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "").replace(" ", "")


@pytest.mark.parametrize("argv, needle", ROWS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, needle, fx, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [a.replace("{fx}", str(fx)).replace("{out}", str(out)) for a in argv]
    before = _snapshot(fx)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err[-2000:]
    assert len(lines) == 1, captured.err[-2000:]
    assert "Traceback" not in captured.err
    if argv:
        assert _norm(needle) in _norm(lines[0]), lines[0]  # the line names the bad input
        assert captured.out == ""
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert _snapshot(fx) == before  # nothing written or removed among the existing files and folders
