"""The C1–C6 analyses: Theorem 1 reaches the least-squares solution, and a script runs end to end."""

import importlib.util
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from sgtheory.linear import datasets, effective, from_samples, init, make_config, optimum, trajectory

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ANALYSES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_c4_line_search_sg_reaches_least_squares(key):
    X, Y = datasets.make("correlated", 3, 300, 0)
    pr = from_samples(X, Y).without_samples()
    cfg = make_config("linear", sg="cond-linear", sg_step="line-search")
    opt = optimum(cfg, pr)
    mx = np.asarray(pr.mx)
    G = np.block([[np.asarray(pr.Sxx), mx[:, None]], [mx[None, :], np.ones((1, 1))]])
    alpha = 0.5 / np.linalg.eigvalsh(G)[-1]  # "small enough": half the largest stable GD rate
    tr = trajectory(cfg, pr, init(cfg, pr, key=key), alpha, 0.0, 6000, every=2000)
    W, b = effective(tr.final)
    dist = float(jnp.sqrt(jnp.sum((W - opt.W) ** 2) + jnp.sum((b - opt.b) ** 2)))
    assert dist < 1e-6  # the Theorem 1 target of the issue, in float64
    assert abs(float(tr.loss[-1]) - opt.loss) <= 1e-9 * opt.loss
    # the SG run is a genuine SG run: its module learned the exact gradient p − y (A = 1, B = −1, C = 0)
    sg = tr.final.sg[0]
    np.testing.assert_allclose([float(sg["A"][0, 0]), float(sg["B"][0, 0]), float(sg["C"][0])], [1, -1, 0],
                               atol=1e-4)


def test_analysis_script_runs_quick_and_replots(tmp_path, capsys):
    c2 = _load("c2_log_loss_sg")
    assert c2.main(["--quick", "--steps", "300", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["analysis"] == "c2_log_loss_sg"
    assert (tmp_path / "c2_log_loss_sg.png").stat().st_size > 0
    meta = json.loads((tmp_path / "data" / "c2_log_loss_sg.json").read_text())
    assert meta["quick"] and meta["steps"] == 300 and len(meta["rows"]) == 4
    (tmp_path / "c2_log_loss_sg.png").unlink()
    assert c2.main(["--replot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "c2_log_loss_sg.png").exists()


def test_analysis_bad_input_is_one_line(tmp_path, capsys):
    c4 = _load("c4_theorem1")
    assert c4.main(["--quick", "--rate", "-1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rate" in err[0]
