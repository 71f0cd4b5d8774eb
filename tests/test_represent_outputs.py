"""What `sgtheory probe` writes (layer indices, captions), its answers to odd input, and the plot helpers."""

import json
import re
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from sgtheory import InputError


def _probe(argv, capsys):
    from sgtheory.cli.main import main

    try:
        rc = main(["probe", *map(str, argv)])
    except SystemExit as exc:  # usage errors exit as argparse does (code 2, one line)
        rc = exc.code
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture
def four_layers(tmp_path, rng):
    """Two activation files over 150 samples: A with layers l0..l3, B with m0, m1; labels in A."""
    x = rng.normal(size=(150, 6))
    a = {f"l{i}": np.tanh(x @ rng.normal(size=(6, 5))) for i in range(4)}
    np.savez(tmp_path / "a.npz", **a, labels=np.arange(150) % 3)
    np.savez(tmp_path / "b.npz", m0=x @ rng.normal(size=(6, 4)), m1=np.tanh(x @ rng.normal(size=(6, 3))))
    return tmp_path / "a.npz", tmp_path / "b.npz"


def _csv(path):
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, line.split(","))) for line in lines[1:]]


def test_csv_layer_columns_are_model_indices(four_layers, tmp_path, capsys):
    a, _ = four_layers
    out = tmp_path / "out"
    rc, _, _ = _probe([a, a, "--layers", "l1,-1", "--measures", "cka,rdm,probe", "--out", out], capsys)
    assert rc == 0
    rows = _csv(out / "per_layer.csv")
    # layer_a is the index in the model (l1 -> 1, -1 -> 3), position_a the place among the compared layers
    assert [(r["layer_a"], r["name_a"], r["position_a"]) for r in rows] == [("1", "l1", "0"), ("3", "l3", "1")]
    assert [r["layer_b"] for r in rows] == ["1", "3"]
    assert float(rows[0]["cka"]) == pytest.approx(1.0, abs=1e-9)  # the same file on both sides
    pairs = {(r["measure"], r["layer_a"], r["layer_b"]): r for r in _csv(out / "similarity.csv")}
    assert set(pairs) == {(m, i, j) for m in ("cka", "rdm") for i in ("1", "3") for j in ("1", "3")}
    assert pairs[("cka", "3", "1")]["position_a"] == "1" and pairs[("cka", "3", "1")]["name_b"] == "l1"
    record = json.loads((out / "probe.json").read_text())
    assert record["layers_a"] == [1, 3] and record["names_a"] == ["l1", "l3"]
    assert len(record["samples"]) == 150 and set(record["rdm_samples"]) <= set(record["samples"])


def test_layers_checked_against_each_model(four_layers, tmp_path, capsys):
    a, b = four_layers
    cases = [(["--layers", "0,3"], "B = .*b.npz: layer 3 asked for, but it has 2 layers"),
             (["--layers", "1,-3"], "layer 'l1' asked for twice"),
             (["--layers", "0,0"], "asked for twice"),
             (["--layers", "m0"], "A = .*a.npz: no layer named 'm0'; its 4 layers are l0, l1, l2, l3"),
             (["--layers", ","], "--layers: no layer in"),
             (["--layers", "1.5"], "no layer named '1.5'")]
    for extra, message in cases:
        rc, out, err = _probe([a, a if "1,-3" in extra else b, *extra, "--out", tmp_path / "o"], capsys)
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, extra
        assert re.search(message, err), (extra, err)
    assert not (tmp_path / "o").exists()


def test_figures_name_their_samples_and_seeds(four_layers, tmp_path, capsys, monkeypatch):
    import sgtheory.io

    saved = {}
    real = sgtheory.io.savefig

    def keep(fig, path, **kw):
        saved[path.name] = fig
        return real(fig, path, **kw)

    monkeypatch.setattr(sgtheory.io, "savefig", keep)
    a, b = four_layers
    rc, _, _ = _probe([a, b, "--n", 90, "--seed", 4, "--out", tmp_path / "o"], capsys)
    assert rc == 0
    assert set(saved) == {"similarity_cka.png", "similarity_svcca.png", "similarity_rdm.png", "per_layer.png",
                          "rdm_a.png", "rdm_b.png"}
    for name, fig in saved.items():
        texts = [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
        assert any("90 samples" in t and "subset seed 4" in t for t in texts), (name, texts)
    heat = saved["similarity_cka.png"].axes[0]
    assert len(heat.texts) == 4 * 2  # a value in every cell of the 4 x 2 matrix
    for name in ("rdm_a.png", "rdm_b.png"):
        fig = saved[name]
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 1 and "Pearson" in bars[0].get_ylabel()


def _odd_inputs(tmp, rng):
    x = rng.normal(size=(60, 5))
    good = tmp / "good.npz"
    np.savez(good, l1=x, l2=np.tanh(x @ rng.normal(size=(5, 4))))
    nan = x.copy()
    nan[3] = np.nan
    files = {
        "empty": b"", "one": {"l1": x[:1]}, "nan": {"l1": nan}, "complex": {"l1": x + 1j}, "vector": {"l1": x[:, 0]},
        "strings": {"l1": np.array([["a"]] * 60)}, "conv": {"c": rng.normal(size=(60, 2, 2, 2)), "l2": x},
        "huge": {"l1": x * 1e300, "l2": x}, "tiny": {"l1": x * 1e-300, "l2": x},
        "repeated": {"l1": np.repeat(rng.normal(size=(6, 4)), 10, axis=0)},
        "rows": {"l1": x[:59]}, "ints": {"l1": rng.integers(0, 4, (60, 5)), "l2": x},
    }
    for name, content in files.items():
        if isinstance(content, bytes):
            (tmp / f"{name}.npz").write_bytes(content)
        else:
            np.savez(tmp / f"{name}.npz", **content)
    (tmp / "labels.txt").write_text("\n".join(str(v / 2) for v in range(60)))
    return good


@pytest.mark.parametrize("a, b, extra, outcome", [
    ("empty", "good", [], "corrupt or not an .npz"),
    ("one", "one", [], "at least"),
    ("nan", "good", [], "NaN/inf"),
    ("complex", "good", [], "complex values"),
    ("vector", "good", [], r"shape \(60,\)"),
    ("strings", "good", [], "not a numeric array"),
    ("rows", "good", [], "59 rows but"),
    ("repeated", "repeated", ["--measures", "cca"], "6 distinct"),
    ("good", "good", ["--measures", "probe", "--labels", "labels.txt"], "integer class labels"),
    ("good", "good", ["--seed", "-1"], "--seed: a seed must be an integer in 0..4294967295"),
    ("good", "good", ["--n", "-4"], "--n: must be >= 3"),
    ("good", "good", ["--measures", "cka,nope"], "unknown nope"),
    ("good", "good", ["--rdm-metric", "nope", "--measures", "rdm"], "metric"),
    ("good", "good", ["--out="], "--out: empty"),
    ("conv", "good", ["--measures", "cka,svcca,rdm"], 0),
    ("huge", "tiny", ["--measures", "cka,cca,pwcca"], 0),
    ("ints", "good", ["--measures", "cka,cca", "--n", str(10**12)], 0),
])
def test_odd_inputs_one_line_or_a_clean_run(tmp_path, rng, capsys, a, b, extra, outcome):
    _odd_inputs(tmp_path, rng)
    out = [] if any(e.startswith("--out") for e in extra) else ["--out", tmp_path / "o"]
    argv = [tmp_path / f"{a}.npz", tmp_path / f"{b}.npz", *[str(tmp_path / e) if e.endswith(".txt") else e
                                                          for e in extra], *out]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc, stdout, stderr = _probe(argv, capsys)
    if outcome == 0:
        assert rc == 0, stderr
        record = json.loads((tmp_path / "o" / "probe.json").read_text())
        values = np.concatenate([np.ravel(v) for v in record["matrices"].values()])
        assert np.all(np.isfinite(values)) and np.all(np.abs(values) <= 1 + 1e-9)
    else:
        assert rc == 2 and stdout == "" and "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1 and re.search(outcome, stderr), stderr
        assert not (tmp_path / "o").exists()


def test_huge_and_tiny_values_give_the_unscaled_answers(rng):
    from sgtheory.represent import cca, linear_cka, linear_probe, pwcca, rbf_cka, rsa, svcca

    x = rng.normal(size=(80, 5))
    y = np.tanh(x @ rng.normal(size=(5, 4))) + 0.1 * rng.normal(size=(80, 4))
    for f in (linear_cka, rbf_cka, svcca, pwcca, rsa, lambda p, q: cca(p, q).mean()):
        base = f(x, y)
        for scale in (1e300, 1e-300):
            # every measure is unchanged by a common scale of a view; the power-of-two rescale is exact, so only
            # the order of round-off changes (1e-12)
            assert f(x * scale, y) == pytest.approx(base, abs=1e-12)
    labels = (x[:, 0] > 0).astype(int)
    assert linear_probe(x[:40] * 1e300, labels[:40], x[40:] * 1e300, labels[40:]) == linear_probe(
        x[:40], labels[:40], x[40:], labels[40:])


def test_data_seed_comes_from_the_checkpoints(recwarn):
    from sgtheory.cli._probe_io import _data_seed, _recorded_seed

    def ck(run=None, training=None):
        return SimpleNamespace(meta={"run": run or {}, "training": training or {}})

    assert _recorded_seed(ck({"seed": 3})) == 3
    assert _recorded_seed(ck(training={"seed": 5})) == 5
    assert _recorded_seed(ck({"seed": -1})) is None and _recorded_seed(ck()) is None
    both = [(None, ck({"seed": 2}), "a"), (None, ck({"seed": 2}), "b")]
    assert _data_seed(None, both, "mnist5k") == 2 and not recwarn.list
    assert _data_seed(7, both, "mnist") == 7 and not recwarn.list  # an official split: any seed is fine
    with pytest.warns(UserWarning, match="splits of seed"):
        assert _data_seed(None, [both[0], (None, ck({"seed": 4}), "b")], "mnist5k") == 2
    with pytest.warns(UserWarning, match="training samples"):
        _data_seed(1, both, "digits")


def test_plotting_leaves_the_backend_alone_and_skips_pyplot():
    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "import numpy as np\n"
        "from sgtheory.plotting import figure, get_ax\n"
        "from sgtheory.plotting.probes import plot_per_layer, plot_rdm_panels, plot_similarity\n"
        "fig, ax, _ = plot_similarity(np.eye(2), ['a', 'b'], ['a', 'b'])\n"
        "plot_rdm_panels([np.ones((3, 3)) - np.eye(3)], ['x'])\n"
        "with figure(1, 2) as (f, axes): plot_per_layer({'c': [1, 2]}, ax=axes[0])\n"
        "import io; buf = io.BytesIO(); fig.savefig(buf, format='png'); assert buf.getvalue()[:4] == b'\\x89PNG'\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "False"]


def test_heatmap_annotations(rng):
    from sgtheory.plotting.probes import plot_rdm_panels, plot_similarity

    m = np.array([[0.05, 0.5], [np.nan, 0.951]])
    fig, ax, _ = plot_similarity(m, ["a", "b"], ["c", "d"])
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert texts == {((0, 0), "0.05"), ((1, 0), "0.50"), ((0, 1), "–"), ((1, 1), "0.95")}
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["0.05"] == "white" and colours["0.95"] == "black"  # dark and light ends of viridis
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    _, big, _ = plot_similarity(rng.random((31, 31)), [str(i) for i in range(31)], [str(i) for i in range(31)])
    assert not big.texts  # 961 cells: too many to label
    with pytest.raises(InputError, match="no RDMs"):
        plot_rdm_panels([], [])
