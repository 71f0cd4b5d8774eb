"""The complete-unlock and two-timescale analyses end to end in tiny settings (a few steps), and their
bad-input handling. These check that the script runs and writes what it promises, not the paper's
numbers (those are in paper_repro.md, with the commands that produced them)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# cDNI with M and I + M only: with BP, three compilations; the other rules are tested in test_unlock_methods
TINY = ["--dataset", "digits", "--depth", "1", "--width", "8", "--steps", "4", "--evals", "2", "--seeds", "2",
        "--batch-size", "16", "--probs", "1,0.5", "--variants", "cdni", "--unlock", "m,im", "--input-hidden", "4"]


def _load(name="dni_complete_unlock"):
    path = ROOT / "analyses" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_complete_unlock_runs_and_writes_every_cell(tmp_path, capsys):
    mod = _load()
    assert mod.main(TINY + ["--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["final_test_error"]) == {"cdni-m", "cdni-im"}
    assert all(set(v) == {"1", "0.5"} for v in summary["final_test_error"].values())
    for name in ("dni_complete_unlock.png", "dni_complete_unlock.md", "data/dni_complete_unlock.npz"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "dni_complete_unlock.md").read_text()
    assert md.count("| cDNI I + M |") == 2 + 2 and "| BP | 1 |" in md  # 2 p values in each of the two tables
    data = np.load(tmp_path / "data" / "dni_complete_unlock.npz")
    assert data["test_error"].shape == (1, 2, 2, 2, 2) and data["sg_cosine"].shape == (1, 2, 2, 2, 2, 1)
    assert np.all(data["input_error"][:, 0] == 0) and np.all(data["input_error"][:, 1] > 0)  # only I + M has inputs
    assert mod.main(["--replot", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("bad,word", [(["--probs", "0"], "probs"), (["--probs", "1,1.5"], "probs"),
                                      (["--variants", "dni,xyz"], "variants"), (["--unlock", "i"], "unlock"),
                                      (["--input-model", "conv"], "input-model"), (["--evals", "3"], "evals")])
def test_complete_unlock_bad_input_is_one_line_exit_2(bad, word, tmp_path, capsys):
    assert _load().main(TINY + bad + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]


TWO = ["--modes", "cdni", "--seeds", "2", "--steps", "4", "--evals", "2", "--period", "2", "--ticks", "2",
       "--vocab", "3", "--a-hidden", "4", "--b-hidden", "3", "--batch", "4", "--eval-batch", "8"]


def test_two_timescale_runs_and_writes_its_table(tmp_path, capsys):
    """One mode, one compiled program (the identities are in test_unlock_two_timescale.py)."""
    mod = _load("dni_two_timescale")
    assert mod.main(TWO + ["--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["b_loss"]) == {"cdni"} and 0 < summary["noise_floor"] < np.log(3)
    data = np.load(tmp_path / "data" / "dni_two_timescale.npz")
    assert data["b_loss"].shape == (1, 2, 2) and list(data["step"]) == [2, 4]
    assert np.all(np.isfinite(data["b_loss"])) and np.all(np.abs(data["sg_cosine"]) <= 1)
    assert not np.allclose(data["b_loss"][0, 0], data["b_loss"][0, 1])  # the two seeds are different runs
    assert "| cDNI (`cdni`) |" in (tmp_path / "dni_two_timescale.md").read_text()
    assert (tmp_path / "dni_two_timescale.png").stat().st_size > 0
    assert mod.main(["--replot", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("bad,word", [(["--modes", "bp"], "modes"), (["--evals", "3"], "evals"),
                                      (["--noise", "1"], "noise"), (["--period", "1"], "period")])
def test_two_timescale_bad_input_is_one_line_exit_2(bad, word, tmp_path, capsys):
    assert _load("dni_two_timescale").main(TWO + bad + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
