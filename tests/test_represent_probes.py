"""Activation files, SG loss-approximation probes (C8) and the ``sgtheory probe`` command."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.represent import activations as act
from sgtheory.represent import sg_probes as sp

# ---------------------------------------------------------------- activation files


def test_npz_keeps_layer_order_and_labels(tmp_path, rng):
    path = tmp_path / "acts.npz"
    z, a, m = rng.normal(size=(20, 3)), rng.normal(size=(20, 5)), rng.normal(size=(20, 2))
    np.savez(path, zeta=z, alpha=a, mid=m, labels=np.arange(20) % 4)
    got = act.load_activations(path)
    assert got.names == ("zeta", "alpha", "mid")  # archive order, not alphabetical
    np.testing.assert_array_equal(got.arrays[1], a)
    np.testing.assert_array_equal(got.labels, np.arange(20) % 4)
    # an explicit `layers` key picks and orders a subset
    np.savez(path, zeta=z, alpha=a, mid=m, layers=np.array(["mid", "zeta"]))
    got = act.load_activations(path)
    assert got.names == ("mid", "zeta") and got.labels is None
    assert act.load_activations(path, layers=[-1]).names == ("zeta",)


def test_conv_maps_flattened_with_note(tmp_path, rng):
    path = tmp_path / "conv.npz"
    np.savez(path, conv=rng.normal(size=(6, 2, 3, 3)), fc=rng.normal(size=(6, 4)))
    got = act.load_activations(path)
    assert got.arrays[0].shape == (6, 18) and "flattened" in got.notes[0]


def test_safetensors_order_from_metadata_or_natural_sort(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    arrs = {f"layer{i}": rng.normal(size=(8, 3)).astype(np.float32) for i in (10, 2, 1)}
    st.save_file(arrs, str(tmp_path / "a.safetensors"))
    assert act.load_activations(tmp_path / "a.safetensors").names == ("layer1", "layer2", "layer10")
    st.save_file(arrs, str(tmp_path / "b.safetensors"), metadata={"layers": '["layer10", "layer1"]'})
    got = act.load_activations(tmp_path / "b.safetensors")
    assert got.names == ("layer10", "layer1")
    np.testing.assert_array_equal(got.arrays[0], arrs["layer10"].astype(np.float64))


@pytest.mark.parametrize("case", ["missing", "corrupt", "pickled", "samples", "one_d", "nan", "count",
                                  "bad_layers_key", "bad_suffix", "corrupt_safetensors"])
def test_bad_activation_files_raise_one_input_error(tmp_path, rng, case):
    path = tmp_path / "acts.npz"
    kwargs = {}
    if case == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    elif case == "pickled":
        np.savez(path, a=np.array([{"x": 1}], dtype=object))
    elif case == "samples":
        np.savez(path, a=rng.normal(size=(10, 3)), b=rng.normal(size=(9, 3)))
    elif case == "one_d":
        np.savez(path, a=rng.normal(size=10))
    elif case == "nan":
        np.savez(path, a=np.full((4, 2), np.nan))
    elif case == "count":
        np.savez(path, a=rng.normal(size=(10, 3)), b=rng.normal(size=(10, 3)))
        kwargs = {"n_layers": 3}
    elif case == "bad_layers_key":
        np.savez(path, a=rng.normal(size=(10, 3)), layers=np.array(["a", "nope"]))
    elif case == "bad_suffix":
        path = tmp_path / "acts.pkl"
        path.write_bytes(pickle.dumps({"a": 1}))
    elif case == "corrupt_safetensors":
        path = tmp_path / "acts.safetensors"
        path.write_bytes(b"\xff" * 64)
    with pytest.raises(InputError) as info:
        act.load_activations(path, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg


def test_layer_selection_out_of_range(tmp_path, rng):
    path = tmp_path / "a.npz"
    np.savez(path, a=rng.normal(size=(5, 2)))
    with pytest.raises(InputError, match="has 1 layers"):
        act.load_activations(path, layers=[3])


# ---------------------------------------------------------------- SG loss probes


def _quartic(h, y):
    """A non-quadratic per-sample loss and its exact gradient (the 'true gradient' SG)."""
    return np.sum(0.25 * h**4 - y * h, axis=1)


def _quartic_grad(h, y):
    return h**3 - y


def test_line_integral_of_true_gradient_is_loss_difference(rng):
    h0, h1, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    res = sp.compare_line_integral(_quartic_grad, _quartic, h0, h1, y, n_points=2)
    # Gauss–Legendre with 2 nodes is exact for the cubic-in-t integrand: round-off only (1e-12 relative).
    np.testing.assert_allclose(res.implied, res.true, rtol=1e-12, atol=1e-12)
    assert res.correlation == pytest.approx(1.0, abs=1e-12) and res.sign_agreement == 1.0
    # trapezoid converges as O(1/n²): with 400 nodes the error is ~ max|f''|/(12·400²) ≪ 1e-3.
    trap = sp.sg_line_integral(_quartic_grad, h0, h1, y, n_points=400, rule="trapezoid")
    np.testing.assert_allclose(trap, res.true, rtol=1e-3, atol=1e-3)


def test_symmetric_linear_sg_integral_equals_implied_loss_difference(rng):
    d, k, n = 6, 3, 25
    M = rng.normal(size=(d, d))
    A, B, C = M + M.T, rng.normal(size=(k, d)), rng.normal(size=d)
    y = np.eye(k)[rng.integers(0, k, n)]
    h0, h1 = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    integral = sp.sg_line_integral(sp.linear_sg_fn(A, B, C), h0, h1, y, n_points=1)
    implied = sp.implied_loss_fn(A, B, C)
    # one Gauss node is exact for a linear field; float64 round-off only.
    np.testing.assert_allclose(integral, implied(h1, y) - implied(h0, y), rtol=1e-12, atol=1e-11)
    # an antisymmetric part adds a path-dependent term: the straight-line integral then differs
    R = rng.normal(size=(d, d))
    rot = sp.sg_line_integral(sp.linear_sg_fn(A + R - R.T, B, C), h0, h1, y, n_points=1)
    # straight path: <h0 A_a, h1 - h0> + ½<dh A_a, dh> = h0 A_a h1ᵀ (the antisymmetric term is not 0).
    np.testing.assert_allclose(rot - integral, np.einsum("nd,de,ne->n", h0, R - R.T, h1), rtol=1e-10, atol=1e-10)


def test_per_class_minimiser_is_stationary(rng):
    d, k = 5, 4
    M = rng.normal(size=(d, d))
    A = M @ M.T + 0.5 * np.eye(d) + 0.3 * (M - M.T)  # SPD symmetric part plus a rotation
    B, C = rng.normal(size=(k, d)), rng.normal(size=d)
    probe = sp.linear_sg_probe(A, B, C)
    assert probe.h_star.shape == (k, d) and probe.convex and not probe.singular
    assert 0 < probe.share < 1
    grad = sp.implied_loss_fn(A, B, C)
    # stationary: the implied gradient h A_s + yB + C vanishes (1e-10: solve round-off)
    np.testing.assert_allclose(probe.h_star @ probe.A_s + B + C, 0.0, atol=1e-10)
    # and a minimum: every perturbation raises the implied loss
    y = np.eye(k)
    for _ in range(5):
        eps = 1e-2 * rng.normal(size=(k, d))
        assert np.all(grad(probe.h_star + eps, y) > grad(probe.h_star, y))


def test_trajectory_correlation_descending_true_loss(rng):
    # gradient descent on the quartic loss, with the true gradient as SG: changes agree exactly
    y = rng.normal(size=(10, 3))
    hs = [rng.normal(size=(10, 3))]
    for _ in range(12):
        hs.append(hs[-1] - 0.05 * _quartic_grad(hs[-1], y))
    res = sp.trajectory_loss_changes(_quartic_grad, _quartic, np.stack(hs), y, n_points=3)
    np.testing.assert_allclose(res.implied, res.true, rtol=1e-10)
    assert np.all(res.true < 0) and res.correlation > 0.999999
    with pytest.raises(InputError, match="steps"):
        sp.trajectory_loss_changes([_quartic_grad] * 3, _quartic, np.stack(hs), y)


def test_probe_input_errors(rng):
    with pytest.raises(InputError, match="h1"):
        sp.sg_line_integral(_quartic_grad, np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="sg"):
        sp.sg_line_integral(lambda h, y: h[:, :1], np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(InputError, match="rule"):
        sp.quadrature(3, "simpson")


# ---------------------------------------------------------------- sgtheory probe


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A 2×16 ReLU net with a linear cSG at h1, random weights (no training: keeps the test fast), saved with
    :func:`sgtheory.nets.save_checkpoint` exactly as ``sgtheory train`` saves its result."""
    import jax

    from sgtheory.data import load
    from sgtheory.nets import MLPConfig, TrainResult, init_bn_state, init_mlp, methods, save_checkpoint

    data = load("digits")
    config, method, key = MLPConfig(64, 10, depth=2, width=16), methods.get("csg", layer=1), jax.random.PRNGKey(3)
    state = method.init(config, key=key)
    learned = jax.tree_util.tree_map(lambda a: 0.1 * jax.random.normal(key, a.shape, a.dtype), state.learned)
    metrics = {"step": np.array([0]), "train_loss": np.array([2.3]), "test_error": np.array([0.9]),
               "sg_loss": np.array([0.0]), "cosine": np.zeros((1, 2))}
    res = TrainResult(init_mlp(config, key=key), init_bn_state(config), state._replace(learned=learned), metrics,
                      config, method, {"dataset": "digits"})
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "csg", res), data


def _probe(argv, capsys):
    from sgtheory.cli.main import main

    rc = main(["probe", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_probe_checkpoint_against_its_own_activation_file(tiny_checkpoint, tmp_path, capsys):
    ck, data = tiny_checkpoint
    acts = act.checkpoint_activations(ck, data.x_test)
    assert acts.names == ("h1", "h2", "logits") and acts.n_samples == data.x_test.shape[0]
    np.savez(tmp_path / "acts.npz", **dict(zip(acts.names, acts.arrays)))
    out = tmp_path / "out"
    rc, stdout, _ = _probe([ck, tmp_path / "acts.npz", "--dataset", "digits", "--measures", "cka,svcca,rdm,probe",
                            "--n", 200, "--out", out, "--json"], capsys)
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    # same net, same samples: matching layers are identical (1 up to float round-off, 1e-9)
    for m in ("cka", "svcca", "rdm"):
        assert summary["matching_mean"][m] == pytest.approx(1.0, abs=1e-9)
    assert summary["probe_last_a"] == summary["probe_last_b"]
    for name in ("similarity_cka.png", "similarity_svcca.png", "similarity_rdm.png", "per_layer.png", "rdm_a.png",
                 "rdm_b.png", "similarity.csv", "per_layer.csv", "probe.json"):
        assert (out / name).stat().st_size > 0
    record = json.loads((out / "probe.json").read_text())
    assert np.asarray(record["matrices"]["cka"]).shape == (3, 3)
    assert len((out / "similarity.csv").read_text().splitlines()) == 1 + 3 * 9


def test_probe_two_activation_files(tmp_path, rng, capsys):
    x = rng.normal(size=(120, 6))
    np.savez(tmp_path / "a.npz", l1=x, l2=np.maximum(x @ rng.normal(size=(6, 5)), 0), labels=np.arange(120) % 3)
    np.savez(tmp_path / "b.npz", l1=x @ rng.normal(size=(6, 6)), l2=rng.normal(size=(120, 4)))
    rc, stdout, _ = _probe([tmp_path / "a.npz", tmp_path / "b.npz", "--measures", "cka,cca,probe", "--out",
                            tmp_path / "o", "--json"], capsys)
    assert rc == 0
    record = json.loads((tmp_path / "o" / "probe.json").read_text())
    # layer 1 of B is an invertible linear map of layer 1 of A: every canonical correlation is 1 (1e-9 round-off)
    assert record["matrices"]["cca"][0][0] == pytest.approx(1.0, abs=1e-9)
    assert len(record["probe_a"]) == 2


@pytest.mark.parametrize("case", ["missing", "pickled", "rows", "layers", "measure", "labels", "n"])
def test_probe_bad_inputs_exit_2_one_line(tmp_path, rng, capsys, case):
    good = tmp_path / "good.npz"
    np.savez(good, l1=rng.normal(size=(30, 3)), l2=rng.normal(size=(30, 2)))
    a, extra = good, []
    if case == "missing":
        a = tmp_path / "nope.npz"
    elif case == "pickled":
        a = tmp_path / "p.npz"
        np.savez(a, l1=np.array([{"x": 1}], dtype=object))
    elif case == "rows":
        a = tmp_path / "r.npz"
        np.savez(a, l1=rng.normal(size=(29, 3)))
    elif case == "layers":
        extra = ["--layers", "0,7"]
    elif case == "measure":
        extra = ["--measures", "cka,nonsense"]
    elif case == "labels":
        extra = ["--measures", "probe"]  # no labels anywhere
    elif case == "n":
        extra = ["--n", "1"]
    out = tmp_path / "out"
    rc, stdout, stderr = _probe([a, good, "--out", out, *extra], capsys)
    assert rc == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "error" in stderr and "Traceback" not in stderr
    assert not out.exists()  # nothing half-written


def test_net_sg_probe_oracle_and_module(key):
    import jax

    from sgtheory.nets import MLPConfig, init_mlp
    from sgtheory.sg import init_sg

    config = MLPConfig(7, 4, depth=3, width=6, activation="tanh")
    params = init_mlp(config, key=key)
    sg_params = {k: 0.3 * jax.random.normal(jax.random.fold_in(key, i), v.shape, v.dtype) for i, (k, v) in
                 enumerate(init_sg("linear", 6, 4, conditioned=True, key=key).items())}
    probe = sp.net_sg_probe(params, config, sg_params, layer=2)
    rng = np.random.default_rng(1)
    h0, h1 = np.tanh(rng.normal(size=(9, 6))), np.tanh(rng.normal(size=(9, 6)))
    y = np.eye(4)[rng.integers(0, 4, 9)]
    oracle = sp.compare_line_integral(probe.grad, probe.loss, h0, h1, y, n_points=16)
    # smooth (tanh) upper net: 16-node Gauss–Legendre is accurate far below the float32 params' precision
    np.testing.assert_allclose(oracle.implied, oracle.true, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(probe.sg(h0, y), h0 @ sg_params["A"] + y @ sg_params["B"] + sg_params["C"][None, :],
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="layer"):
        sp.net_sg_probe(params, config, sg_params, layer=4)


def test_checkpoint_sg_probe(tiny_checkpoint, rng):
    from sgtheory.nets import load_checkpoint

    ck, data = tiny_checkpoint
    probe = sp.checkpoint_sg_probe(ck)
    assert probe.layer == 1
    p = load_checkpoint(ck).method_state.learned["1"]
    h = act.checkpoint_activations(ck, data.x_test[:20]).arrays[0]
    y = np.eye(10)[data.y_test[:20]]
    # float32 checkpoint parameters: agreement to float32 round-off
    np.testing.assert_allclose(probe.sg(h, y), h @ p["A"] + y @ p["B"] + p["C"], rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="no SG module at layer 2"):
        sp.checkpoint_sg_probe(ck, layer=2)


# ---------------------------------------------------------------- layer-wise helpers (C9)


def test_label_ordered_sample_balanced_and_sorted(rng):
    from sgtheory.represent.layerwise import label_ordered_sample

    y = rng.integers(0, 4, 500)
    idx = label_ordered_sample(y, 41, seed=0)
    assert idx.size == 41 and np.all(np.diff(y[idx]) >= 0)
    assert sorted(np.bincount(y[idx]).tolist()) == [10, 10, 10, 11]


def test_diagonal_block_distance_against_slow_reference(rng):
    from sgtheory.represent import rdm
    from sgtheory.represent.layerwise import diagonal_block_distance

    y = np.repeat(np.arange(3), 5)
    rdms = [rdm(rng.normal(size=(15, 4))) for _ in range(3)]
    got = diagonal_block_distance(rdms, y)
    want = []
    for r in rdms:
        diffs = [r[i, j] - rdms[-1][i, j] for i in range(15) for j in range(i + 1, 15) if y[i] == y[j]]
        want.append(np.sqrt(np.mean(np.square(diffs))))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[-1] == 0.0
    with pytest.raises(InputError, match="no two samples"):
        diagonal_block_distance(rdms[:1], np.arange(15))


def test_matching_layers():
    from sgtheory.represent.layerwise import matching_layers

    assert matching_layers(3, 3) == ((0, 0), (1, 1), (2, 2))
    assert matching_layers(3, 5) == ((0, 0), (1, 2), (2, 4))
