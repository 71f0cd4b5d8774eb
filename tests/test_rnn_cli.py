"""``sgtheory rnn``: bad input, a tiny run end to end (checkpoint, --evaluate, determinism), the methods table."""

import json
import math

import jax
import numpy as np
import pytest

from sgtheory.cli.main import main
from sgtheory.rnn import methods
from sgtheory.rnn.checkpoint import load_checkpoint
from sgtheory.rnn.sg import init_sg
from sgtheory.rnn.tasks import CopyTask
from sgtheory.rnn.train import Settings, init_run

TINY = ["--hidden", "8", "--batch-size", "4", "--steps", "6", "--eval-every", "3", "-T", "2"]


def _run(capsys, argv):
    code = main(["rnn"] + argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,needle", [
    (["--task", "sort"], "task: unknown value 'sort'"),
    (["--method", "rtrl"], "method: unknown value 'rtrl'"),
    (["-T", "0"], "truncation: must be >= 1"),
    (["--task", "charlm", "--seq-len", "12", "-T", "24"], "longer than the sequence"),
    (["--task", "charlm", "--seq-len", "12", "-T", "5"], "must divide"),
    (["--hidden", "0"], "hidden: must be >= 1"),
    (["--batch-size", "-3"], "batch: must be >= 1"),
    (["--lr", "nan"], "lr: must be a finite number > 0"),
    (["--method", "tbptt", "--inject-scale", "0.5"], "an option of the SG methods"),
    (["--method", "dni", "--aux-weight", "1"], "aux_weight: an option of dni-aux only"),
    (["--task", "charlm", "--corpus", "ptb"], "--data-root"),
    (["--update", "epoch"], "update: unknown value"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    out_dir = tmp_path / "out"
    code, out, err = _run(capsys, argv + ["--out", str(out_dir)])
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())  # nothing half-written


def test_bad_files_are_one_line_and_exit_2(capsys, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("too short")
    code, _, err = _run(capsys, ["--task", "charlm", "--corpus", "text", "--data-root", str(small)])
    assert code == 2 and "at least" in err
    mlp = tmp_path / "mlp"
    mlp.mkdir()
    (mlp / "checkpoint.json").write_text(json.dumps({"format": "sgtheory-checkpoint", "format_version": 1}))
    code, _, err = _run(capsys, ["--evaluate", str(mlp)])
    assert code == 2 and "an MLP checkpoint" in err and "not a recurrent" in err
    (mlp / "checkpoint.json").write_text("{not json")
    code, _, err = _run(capsys, ["--evaluate", str(mlp)])
    assert code == 2 and "corrupt JSON" in err
    code, _, err = _run(capsys, ["--evaluate", str(tmp_path / "missing")])
    assert code == 2 and "checkpoint" in err


def test_tiny_copy_run_checkpoint_evaluate_and_determinism(capsys, tmp_path):
    argv = ["--task", "repeat-copy", "--method", "cdni", "--seeds", "2", "--clip", "inf", "--json"] + TINY
    code, out, _ = _run(capsys, argv + ["--out", str(tmp_path / "a")])
    assert code == 0
    first = json.loads(out)
    assert first["metric"] == "solved_n" and first["solved_n"]["per_seed"] == [0, 0]  # 6 batches solve nothing
    assert first["steps"] == 6 and first["sequences"] == 24 and math.isfinite(first["sg_loss"])
    assert first["sequences_per_second"] > 0
    ck = load_checkpoint(tmp_path / "a")
    assert ck.settings.clip == float("inf")  # "no clipping" survives strict JSON
    assert ck.seeds == (0, 1) and ck.method.name == "cdni" and ck.params.core["W"].shape == (2, 10 + 8, 32)
    # cDNI's SG reads [h; c] (16) and the next window's targets with their mask: T·(9 + 1) = 20
    assert ck.params.sg["layers"][0]["W"].shape == (2, 36, 16) and ck.metrics["loss_bits"].shape == (2, 6)
    code, out, _ = _run(capsys, ["--evaluate", str(tmp_path / "a"), "--json"])
    ev = json.loads(out)
    assert code == 0 and ev["metric"] == "bits_per_target" and len(ev["bits_per_target"]) == 2
    assert all(0.5 < row["bits"] < 1.5 for row in ev["bits_per_target"])  # an untrained net is near 1 bit
    # the same command gives the same numbers; another seed gives others
    code, out, _ = _run(capsys, argv)
    again = json.loads(out)
    assert again["sg_loss"] == first["sg_loss"]
    assert np.array_equal(load_checkpoint(tmp_path / "a").metrics["loss_bits"], ck.metrics["loss_bits"])
    code, out, _ = _run(capsys, argv + ["--seed", "5"])
    assert json.loads(out)["sg_loss"] != first["sg_loss"]
    # a checkpoint whose seeds were edited to a negative number: one line, exit 2, no traceback
    meta = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    meta["seeds"] = [0, -1]
    (tmp_path / "a" / "checkpoint.json").write_text(json.dumps(meta))
    code, _, err = _run(capsys, ["--evaluate", str(tmp_path / "a")])
    assert code == 2 and "seeds" in err and "Traceback" not in err


def test_tiny_charlm_run(capsys, tmp_path):
    rng = np.random.default_rng(0)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat\n"]
    (tmp_path / "t.txt").write_text("".join(rng.choice(words, 3000)))
    code, out, _ = _run(capsys, ["--task", "charlm", "--corpus", "text", "--data-root", str(tmp_path / "t.txt"),
                                 "--seq-len", "12", "--eval-streams", "4", "--json", "--method", "dni-aux"] + TINY)
    assert code == 0
    s = json.loads(out)
    vocab = len(set("".join(words)))
    assert s["metric"] == "val_bpc" and 0 < s["val_bpc"]["mean"] < math.log2(vocab) + 0.5
    assert math.isfinite(s["test_bpc"]["mean"]) and s["corpus"] == "text"


def test_declared_properties_match_behaviour():
    table = methods.unified_table("text")
    for name in methods.METHODS:
        m = methods.get(name)
        p = m.properties
        assert name in table and m.summary
        assert p.learned == m.uses_sg and p.update_locked == p.backward_locked == m.full_sequence
        assert (p.memory == "T steps") != m.full_sequence
        st = jax.eval_shape(lambda k, m=m: init_run(Settings(hidden=4, batch=2), m, CopyTask(False), k),
                            jax.random.PRNGKey(0))
        assert bool(st.params.sg) == p.learned and bool(st.params.aux) == m.has_aux
    for kind in ("linear", "mlp"):  # a fresh SG outputs exactly 0: its last layer starts at zero
        sg = init_sg(kind, 6, 2, key=jax.random.PRNGKey(0), hidden=5)
        assert float(np.abs(sg["layers"][-1]["W"]).max()) == 0.0 == float(np.abs(sg["layers"][-1]["b"]).max())
    assert methods.get("dni").two_pass is False and methods.get("dni", target_discount=1.0).two_pass
    with pytest.raises(ValueError, match="unknown option"):
        methods.get("dni", horizon=3)


def test_analysis_options_and_table_layout(capsys):
    import importlib.util
    from pathlib import Path

    from sgtheory.rnn.grid import markdown_table

    path = Path(__file__).resolve().parents[1] / "analyses" / "dni_rnn_table.py"
    spec = importlib.util.spec_from_file_location("dni_rnn_table", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--truncations", "0", "--out", "/nonexistent/never"]) == 2
    assert "--truncations: must be >= 1" in capsys.readouterr().err
    arrays = {"copy/tbptt/T2/solved_n": np.array([2, 2, 3]), "copy/dni/T2/solved_n": np.array([4, 5, 6]),
              "charlm/dni/T2/val_bpc": np.array([2.0, 2.5])}
    table = markdown_table(arrays, ["copy", "charlm"], ["tbptt", "dni"], [2, 3]).splitlines()
    assert table[2] == "| Copy (N) | truncated BPTT | 2.3 ± 0.6 | — |"
    assert table[3] == "| Copy (N) | DNI | 5.0 ± 1.0 | — |"
    assert table[5] == "| char LM (val BPC) | DNI | 2.250 ± 0.354 | — |"
