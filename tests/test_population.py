"""Populations: many runs in one program, each member equal to the same run alone (tiny nets on digits)."""

import json
import math

import jax
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.cli.main import main
from sgtheory.data import load
from sgtheory.nets import MLPConfig, load_checkpoint, methods, save_population, train, train_population
from sgtheory.nets.sharding import layout
from sgtheory.testing import assert_trees_close, assert_trees_equal

COMMON = dict(steps=30, batch_size=32, eval_every=15)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _leaves(res):
    return jax.tree_util.tree_leaves((res.params, res.bn_state, res.method_state, res.metrics))


def _same(a, b):
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(_leaves(a), _leaves(b)))


@pytest.fixture(scope="module")
def pop64(digits):
    cfg = MLPConfig(64, 10, 2, 16, "tanh", True)
    # Adam at rate 1e200 overflows float64 within two steps: members 2 and 3 diverge, 0 and 1 train normally
    return train_population(digits, cfg, methods.get("csg", layer=1), seeds=[4, 9], lr=[1e-2, 1e200], sg_lr=[2e-3],
                            dtype=np.float64, **COMMON)


def test_members_are_bit_identical_to_runs_alone_float64(digits, pop64):
    assert pop64.size == 4
    assert [(m["seed"], m["lr"], m["sg_lr"]) for m in pop64.members] == [
        (4, 1e-2, 2e-3), (9, 1e-2, 2e-3), (4, 1e200, 2e-3), (9, 1e200, 2e-3)]
    assert pop64.metrics["test_error"].shape == (4, 2) and pop64.metrics["cosine"].shape == (4, 2, 2)
    for i in (0, 1):  # the same settings trained alone: bit-identical, although two neighbours diverged
        m = pop64.members[i]
        alone = train(digits, pop64.config, methods.get("csg", layer=1), seed=m["seed"], lr=m["lr"], sg_lr=m["sg_lr"],
                      dtype=np.float64, **COMMON)
        assert alone.info["status"] == "ok" and _same(alone, pop64.member(i)), f"member {i} differs from its run alone"
    assert not np.array_equal(pop64.params[0]["W"][0], pop64.params[0]["W"][1])  # seeds are per member


def test_a_diverging_member_does_not_disturb_the_others(pop64):
    assert pop64.status == ("ok", "ok", "diverged", "diverged")
    assert np.all(np.isnan(pop64.metrics["test_error"][2:, -1]))  # no fake test error for a diverged net
    assert np.all(np.isfinite(pop64.metrics["test_error"][:2]))
    assert pop64.summary()["n"] == 2 and pop64.summary()["sd"] > 0
    assert [g["test_error"]["n"] for g in pop64.groups()] == [2, 0]


def test_population_checkpoints(pop64, tmp_path):
    save_population(tmp_path / "p", pop64, {"note": "t"})
    index = json.loads((tmp_path / "p" / "population.json").read_text())
    assert index["size"] == 4 and [m["folder"] for m in index["members"]] == [f"member-{i}" for i in range(4)]
    assert index["groups"][0]["seeds"] == [4, 9] and index["groups"][0]["test_error"]["n"] == 2
    assert [m["status"] for m in index["members"]] == ["ok", "ok", "diverged", "diverged"]
    ck = load_checkpoint(tmp_path / "p", member=1)
    assert ck.meta["training"]["seed"] == 9 and ck.meta["training"]["lr"] == 1e-2
    member = pop64.member(1)
    assert_trees_equal((ck.params, ck.bn_state, ck.method_state.learned),
                       (member.params, member.bn_state, member.method_state.learned))
    assert load_checkpoint(tmp_path / "p" / "member-1").meta == ck.meta  # a member folder is a plain checkpoint
    with pytest.raises(InputError, match="population of 4 members"):
        load_checkpoint(tmp_path / "p")
    with pytest.raises(InputError, match="not a member"):
        load_checkpoint(tmp_path / "p", member=4)
    with pytest.raises(InputError, match="not a population"):
        load_checkpoint(tmp_path / "p" / "member-0", member=0)
    with pytest.raises(InputError, match="not finite"):
        load_checkpoint(tmp_path / "p", member=2)


def test_layout_fewest_devices_for_the_fewest_members_each():
    devs = [object()] * 4
    assert [(len(d), n) for d, n in (layout(p, devs) for p in (1, 2, 4, 5, 8, 9))] == [
        (1, 1), (2, 2), (4, 4), (3, 6), (4, 8), (3, 9)]


def test_bad_population_arguments(digits):
    cfg = MLPConfig(64, 10, 1, 8, "relu", False)
    for kwargs, needle in (({"seeds": 0}, "seeds"), ({"seeds": []}, "empty"), ({"seeds": [1, 1]}, "repeated"),
                           ({"seeds": [-1]}, "seed"), ({"lr": []}, "empty"), ({"lr": [1e-3, float("nan")]}, "lr"),
                           ({"mix": [0.5]}, "no SG mix"), ({"checkpoint_every": 0}, "checkpoint")):
        with pytest.raises(InputError, match=needle):
            train_population(digits, cfg, "bp", steps=2, **kwargs)
    with pytest.raises(InputError, match="mix"):
        train_population(digits, cfg, "csg", steps=2, mix=[0.5, 1.5])
    huge = MLPConfig(64, 10, 50, 65536, "relu", False)
    with pytest.raises(InputError, match="population too large"):  # refused from shapes alone, nothing allocated
        train_population(digits, huge, "bp", steps=2, seeds=64)


def _run_cli(argv, capsys):
    code = main(["train", "--dataset", "digits", "--depth", "1", "--width", "8", "--steps", "20", "--eval-every", "10",
                 "--batch-size", "32", *argv])
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err.strip().splitlines()


def test_cli_population_json_has_no_nan(tmp_path, capsys):
    # plain SGD at rate 1e30 overflows float32 at once
    code, out, err = _run_cli(["--seeds", "2", "--optimizer", "sgd", "--lr", "0.05,1e30", "--json",
                               "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    summary = json.loads(out[-1], parse_constant=lambda c: pytest.fail(f"{c} printed as a number"))
    assert summary["population"] == 4 and summary["status"] == "some diverged" and summary["members_ok"] == 2
    assert [m["status"] for m in summary["members"]] == ["ok", "ok", "diverged", "diverged"]
    assert summary["test_error"] is None  # two groups of rates: no mean over different settings
    ok, bad = summary["groups"]
    assert ok["lr"] == 0.05 and ok["seeds"] == [0, 1] and ok["members_ok"] == 2 and 0 < ok["test_error"] < 0.9
    assert ok["test_error_sd"] == pytest.approx(np.std([m["test_error"] for m in summary["members"][:2]], ddof=1),
                                                abs=1e-5)
    assert bad["test_error"] is None and bad["members_ok"] == 0
    assert summary["members"][2]["test_error"] is None and summary["members"][2]["cosine"] == [None]
    ck = load_checkpoint(tmp_path / "o", member=1)
    assert ck.meta["training"]["seed"] == 1 and ck.params[0]["W"].dtype == np.float32
    alone = train(load("digits"), ck.config, "bp", seed=1, lr=0.05, optimizer="sgd", steps=20, batch_size=32,
                  eval_every=10)
    # float32 (the command's default): equal to the run alone up to float32 round-off (eps 1.2e-7) of
    # weights of order 0.1-1 (bit-identical on the XLA versions tested)
    assert_trees_close(alone.params, ck.params, rtol=1e-5, atol=1e-6)
    code, out, err = _run_cli(["--seed", "5", "--out", str(tmp_path / "o")], capsys)  # one run into a population
    assert code == 2 and len(err) == 1 and "population" in err[0]


@pytest.mark.parametrize("argv,needle", [
    (["--seeds", "0"], "--seeds"),
    (["--seeds", "two"], "--seeds"),
    (["--lr", ""], "--lr"),
    (["--lr", "1e-3,,1e-2"], "--lr"),
    (["--lr", "1e-3,1e-3"], "duplicate"),
    (["--lr", "1e-3,-1"], "--lr"),
    (["--mix", "0.5,2", "--method", "csg"], "--mix"),
    (["--seed", str(2**32 - 2), "--seeds", "3"], "--seeds"),
    (["--width", "65536", "--depth", "50", "--seeds", "4096"], "too large"),
])
def test_cli_bad_population_input_one_line_exit_2(argv, needle, capsys, tmp_path):
    code, out, err = _run_cli([*argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o" / "population.json").exists()


def test_mean_sd():
    from sgtheory.nets import mean_sd

    assert mean_sd([1.0, 3.0, math.nan]) == {"n": 2, "mean": 2.0, "sd": pytest.approx(math.sqrt(2))}
    assert mean_sd([]) == {"n": 0, "mean": None, "sd": None}


def test_quick_benchmarks_never_overwrite_full_results():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    for name in ("population_throughput", "train_throughput"):
        spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert Path(mod.parse(["--quick"]).out).name == f"{name}_quick.json"
        assert Path(mod.parse([]).out).name == f"{name}.json"
