"""Training loop, checkpoints and the `sgtheory train` / `sgtheory methods` commands (tiny nets, digits)."""

import json

import jax
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.cli.main import main
from sgtheory.data import load
from sgtheory.nets import MLPConfig, activations, init_mlp, load_checkpoint, methods, save_checkpoint, train
from sgtheory.nets.checkpoint import FORMAT_VERSION
from sgtheory.testing import assert_trees_equal


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def run(digits):
    cfg = MLPConfig(64, 10, 2, 32, "relu", True)
    return train(digits, cfg, "csg", steps=300, batch_size=64, eval_every=150, seed=0, lr=3e-3)


def test_training_learns_and_records_metrics(run):
    m = run.metrics
    assert m["step"].tolist() == [150, 300] and m["cosine"].shape == (2, 2)
    # digits is easy: a 2×32 net gets well under 10% test error in 300 steps (chance is 90%)
    assert m["test_error"][-1] < 0.10
    assert m["train_loss"][-1] < m["train_loss"][0]
    assert np.all(m["sg_loss"] > 0)  # the SG module is being trained
    assert np.isclose(m["cosine"][-1, 1], 1.0, atol=1e-5)  # layer 2 is above the SG (k = 1): true gradient
    assert all(p["W"].dtype == np.float32 for p in run.params)
    assert run.info["steps_per_second"] > 0 and run.info["lr"] == 3e-3


def test_same_seed_same_numbers(digits, run):
    again = train(digits, run.config, "csg", steps=300, batch_size=64, eval_every=150, seed=0, lr=3e-3)
    assert_trees_equal((run.params, run.method_state.learned, run.bn_state),
                       (again.params, again.method_state.learned, again.bn_state))
    assert np.array_equal(run.metrics["test_error"], again.metrics["test_error"])
    other = train(digits, run.config, "csg", steps=150, batch_size=64, eval_every=150, seed=1, lr=3e-3)
    assert not np.array_equal(other.params[0]["W"], again.params[0]["W"])


def test_zero_sg_step_leaves_lower_layers_at_init(digits):
    cfg = MLPConfig(64, 10, 2, 16, "tanh", False)
    res = train(digits, cfg, methods.get("csg", layer=2), steps=1, batch_size=32, eval_every=1, seed=4)
    init = init_mlp(cfg, key=jax.random.split(jax.random.PRNGKey(4), 4)[0])
    assert np.array_equal(res.params[0]["W"], init[0]["W"]) and np.array_equal(res.params[1]["W"], init[1]["W"])
    assert not np.array_equal(res.params[2]["W"], init[2]["W"])


def test_checkpoint_round_trip(run, digits, tmp_path):
    save_checkpoint(tmp_path, run, {"note": "test"})
    ck = load_checkpoint(tmp_path / "checkpoint.json")
    assert ck.config == run.config and ck.method.name == "csg" and ck.meta["run"] == {"note": "test"}
    assert_trees_equal((run.params, run.bn_state, run.method_state.learned),
                       (ck.params, ck.bn_state, ck.method_state.learned))
    assert np.array_equal(ck.metrics["test_error"], run.metrics["test_error"])
    acts = activations(tmp_path, digits.x_test)
    assert [a.shape for a in acts] == [(359, 32), (359, 32), (359, 10)]
    err = np.mean(acts[-1].argmax(1) != digits.y_test)
    assert err == pytest.approx(run.metrics["test_error"][-1], abs=1e-6)  # eval mode, same as in training
    with pytest.raises(InputError, match="features"):
        activations(ck, digits.x_test[:, :10])


def test_bad_checkpoints(run, tmp_path):
    save_checkpoint(tmp_path, run)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    bad = dict(meta, format_version=FORMAT_VERSION + 1)
    (tmp_path / "checkpoint.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="format version"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps(dict(meta, arrays=meta["arrays"] + ["params/9/W"])))
    with pytest.raises(InputError, match="missing arrays params/9/W"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(InputError, match="corrupt JSON"):
        load_checkpoint(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load_checkpoint(tmp_path / "elsewhere.npz")


def test_periodic_checkpoint(digits, tmp_path):
    cfg = MLPConfig(64, 10, 1, 8, "relu", False)
    train(digits, cfg, "dfa", steps=20, batch_size=32, eval_every=10, seed=0, checkpoint_dir=tmp_path,
          checkpoint_every=10)
    ck = load_checkpoint(tmp_path)
    assert ck.metrics["step"].tolist() == [10, 20] and ck.method.name == "dfa"


def test_cli_train_json_and_checkpoint(tmp_path, capsys):
    rc = main(["train", "--method", "csg-every", "--dataset", "digits", "--depth", "2", "--width", "16",
               "--steps", "40", "--eval-every", "20", "--batch-size", "32", "--out", str(tmp_path), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"test_error", "train_loss", "steps_per_second"} <= set(summary) and summary["steps"] == 40
    assert load_checkpoint(summary["checkpoint"]).method.name == "csg-every"


@pytest.mark.parametrize("argv,needle", [
    (["--method", "magic"], "method"),
    (["--dataset", "imagenet"], "dataset"),
    (["--activation", "gelu"], "activation"),
    (["--depth", "0"], "depth"),
    (["--depth", "51"], "depth"),
    (["--width", "0"], "width"),
    (["--method", "csg", "--depth", "4", "--sg-layer", "5"], "outside"),
    (["--method", "bp", "--mix", "0.5"], "--mix"),
    (["--dataset", "mnist"], "SGTHEORY_MNIST"),
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--steps", "0"], "steps"),
])
def test_cli_bad_input_one_line_exit_2(argv, needle, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("SGTHEORY_MNIST", raising=False)
    rc = main(["train", "--dataset", "digits", "--steps", "2", "--width", "8", "--out", str(tmp_path / "o")]
              + argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "o" / "checkpoint.npz").exists()  # nothing written


def test_cli_corrupt_data_exit_2(tmp_path, capsys):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03garbage")
    rc = main(["train", "--dataset", "mnist", "--data-root", str(tmp_path), "--steps", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "IDX" in err


def test_cli_methods_table(capsys):
    assert main(["methods", "--table"]) == 0
    assert capsys.readouterr().out.strip() == methods.unified_table("markdown")
    assert main(["methods", "--json"]) == 0
    props = json.loads(capsys.readouterr().out)
    assert list(props) == list(methods.METHODS) and props["csg"]["update_locked"] is False


def test_learning_rate_schedules():
    from sgtheory.nets.train import learning_rate

    assert learning_rate(0.1) == 0.1
    cos = learning_rate(0.1, "cosine", 100)
    assert float(cos(0)) == pytest.approx(0.1) and float(cos(50)) == pytest.approx(0.05) and float(cos(100)) == 0.0
    with pytest.raises(InputError, match="schedule"):
        learning_rate(0.1, "linear", 100)
