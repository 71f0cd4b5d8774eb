"""Sweeps: vmap == per-config loop, fast grid path == generic path, isolation of divergent runs,
classification, chunking, and the CLI's bad-input contract."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import linear as L
from sgtheory.cli.main import main
from sgtheory.linear.sweep import CONVERGED, DIVERGED, NOT_CONVERGED, run_one, scaled
from sgtheory.testing import assert_trees_equal


def _problem(dim=4, n=200):
    X, Y = L.datasets.make("teacher", dim, n, 0, noise=0.5)
    return L.from_samples(X, Y).without_samples()


FIELDS = ("status", "final_loss", "distance", "residual", "steps_to_tol", "diverged_at")


def test_vmapped_sweep_equals_per_config_loop():
    pb = _problem()
    cfg = L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1)
    alphas, betas, seeds, scales = [0.05, 0.5, 5.0], [0.1, 3.0], [0, 1], [0.5, 1.0]
    res = L.sweep(cfg, pb, alphas, betas, seeds=seeds, init_scales=scales, steps=300)
    opt = L.optimum(cfg, pb)
    one = jax.jit(lambda a, b, s0: run_one(cfg, pb, jnp.asarray(opt.W), jnp.asarray(opt.b), a, b, s0, steps=300))
    for si, seed in enumerate(seeds):
        for ci, c in enumerate(scales):
            s0 = L.init(cfg, pb, key=jax.random.PRNGKey(seed), init_scale=c)
            for ai, a in enumerate(alphas):
                for bi, b in enumerate(betas):
                    ref = one(a, b, s0)
                    for f in FIELDS:
                        # vmap batches the same arithmetic: equal up to reassociation round-off
                        np.testing.assert_allclose(getattr(res, f)[si, ci, ai, bi], ref[f], rtol=1e-9, atol=1e-12)
    assert (res.status == DIVERGED).any() and (res.status != DIVERGED).any()  # both kinds compared


def test_init_is_linear_in_scale():
    pb = _problem()
    cfg = L.make_config("deep-linear", depth=2, width=3)
    a = L.init(cfg, pb, key=jax.random.PRNGKey(3), init_scale=0.7)
    b = scaled(L.init(cfg, pb, key=jax.random.PRNGKey(3)), 0.7)
    assert_trees_equal(a, b)


@pytest.mark.parametrize("sg,bias", [("cond-linear", True), ("linear", False), ("none", True)])
def test_fast_grid_path_equals_generic_path(sg, bias):
    pb = _problem()
    cfg = L.Config(sg=sg, bias=bias)
    kw = dict(seeds=[0, 1], init_scales=[1.0, 2.0], steps=400)
    a, b = np.geomspace(0.01, 5, 5), np.geomspace(0.01, 5, 4)
    fast, slow = L.sweep(cfg, pb, a, b, **kw), L.sweep(cfg, pb, a, b, fast=False, **kw)
    np.testing.assert_array_equal(fast.status, slow.status)
    ok = fast.status != DIVERGED
    for f in ("final_loss", "distance", "residual"):
        # the same update with sums associated differently (float64, ~1e-16 per step); 400 steps amplify
        # it in the least stable non-divergent runs, hence rtol 1e-6 and atol 1e-10 at the round-off floor
        np.testing.assert_allclose(getattr(fast, f)[ok], getattr(slow, f)[ok], rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(fast.steps_to_tol, slow.steps_to_tol)


def test_divergent_configs_do_not_contaminate_and_chunks_agree():
    pb = _problem().astype(jnp.float32)
    cfg = L.Config(sg="cond-linear")
    a = [0.01, 0.1, 1.0]
    clean = L.sweep(cfg, pb, a, [0.3], steps=500)
    mixed = L.sweep(cfg, pb, a + [1e6], [0.3, 1e9], steps=500, chunk_size=3)  # odd chunks, padded last chunk
    assert (mixed.status[..., 3, :] == DIVERGED).all() and (mixed.status[..., :, 1] == DIVERGED).all()
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(mixed, f)[..., :3, :1], getattr(clean, f))
    assert np.isfinite(mixed.final_loss[..., :3, 0]).all()
    assert (mixed.diverged_at[..., 3, 0] >= 0).all()


def test_classification():
    pb = _problem()
    cfg = L.Config(sg="cond-linear")
    res = L.sweep(cfg, pb, [1e-4, 0.3, 50.0], [0.3], steps=1500, tol=1e-8)
    s = res.status[0, 0, :, 0]
    assert list(s) == [NOT_CONVERGED, CONVERGED, DIVERGED]
    assert 0 < res.steps_to_tol[0, 0, 1, 0] <= 1500 and res.steps_to_tol[0, 0, 0, 0] == -1
    assert res.distance[0, 0, 1, 0] < 1e-6  # converged to the least-squares solution (float64)
    assert res.counts() == {"converged": 1, "not converged": 1, "diverged": 1}


BAD = [
    (["--alphas", "0,1"], "--alphas"),
    (["--alpha-range", "nan,1"], "--alpha-range"),
    (["--betas", ","], "--betas"),
    (["--grid", "0"], "--grid"),
    (["--dataset", "spiral"], "--dataset"),
    (["--sg", "cubic"], "--sg"),
    (["--dim", "0"], "--dim"),
    (["--model", "deep-linear", "--depth", "-1"], "--depth"),
    (["--steps", "0"], "--steps"),
    (["--sg-layer", "9"], "sg_layer"),
    (["--kernel", "cuda"], "--kernel"),
]


@pytest.mark.parametrize("extra,name", BAD)
def test_cli_bad_input_one_line_exit_2(extra, name, tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["sweep", "--out", str(out), "--grid", "2", "--steps", "5", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and name in err
    assert not out.exists()


def test_cli_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["sweep", "--out", str(blocker / "sub"), "--grid", "2", "--steps", "5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--out" in err


def test_cli_sweep_writes_outputs(tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(["sweep", "--grid", "6", "--steps", "300", "--dim", "3", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"sweep.npz", "sweep.json", "phase_diagram.png"}
    assert 0.0 <= summary["theory_agreement"] <= 1.0 and "band" in summary
    assert sum(summary["counts"].values()) == 36


def test_default_chunk_fits_the_state_budget():
    """Default configurations per call: a power of two per device, at least 256; for the CPU's whole-grid
    update (this test machine) at most 2^17 state floats per device (cache-sized), for the vmap path 2^20
    per call (see sweep.CHUNK_FLOATS)."""
    from sgtheory.linear.sweep import CHUNK_FLOATS, CHUNK_FLOATS_CPU_GRID, default_chunk

    for n_state, devices in [(14, 1), (14, 2), (104, 2), (10 ** 6, 1)]:
        c = default_chunk(n_state, devices) // devices
        assert c >= 256 and c & (c - 1) == 0
        assert c == 256 or c * max(n_state, 16) <= CHUNK_FLOATS_CPU_GRID
        v = default_chunk(n_state, devices, whole_grid=False)
        assert v >= 256 and v & (v - 1) == 0 and (v == 256 or v * max(n_state, 16) <= CHUNK_FLOATS)
    assert default_chunk(14, 2) == 2 * 8192 and default_chunk(330, 2, whole_grid=False) == 2048


def test_plot_child_draws_from_npz_and_reports_failures(tmp_path):
    """The sweep command's PNG child: draws the PNG from a sweep file; a missing file is one clear error;
    a child that is never asked is ended and writes nothing."""
    import numpy as np

    from sgtheory.cli._plot_child import PlotChild
    from sgtheory.io import savez

    a = np.geomspace(0.01, 1, 5)
    status = np.arange(25, dtype=np.int8).reshape(1, 1, 5, 5) % 3
    savez(tmp_path / "s.npz", {"alphas": a, "betas": a, "status": status, "rho": np.outer(a, a) * 3,
                               "mismatch": status == 1})
    with PlotChild() as child:
        child.prepare(a, a, "test")
        child.draw(tmp_path / "s.npz", tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with PlotChild() as child:
        child.prepare(a, a, "test")
        with pytest.raises(RuntimeError, match="no such file"):
            child.draw(tmp_path / "missing.npz", tmp_path / "q.png")
    with PlotChild() as child:
        child.prepare(a, a, "test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "s.npz"]


_SPLIT_CHILD = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from sgtheory import linear as L
from sgtheory.linear.sweep import DIVERGED, devices_used
assert len(jax.devices()) == 2 and devices_used(576) == 2 and devices_used(576, 288) == 1 and devices_used(300) == 1
X, Y = L.datasets.make("teacher", 4, 200, 0, noise=0.5)
pb = L.from_samples(X, Y).without_samples()
a, b = np.geomspace(0.01, 5, 24), np.geomspace(0.01, 5, 24)
for cfg in (L.Config(sg="cond-linear"), L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1)):
    split = L.sweep(cfg, pb, a, b, steps=300)              # 576 configurations over the 2 devices
    # one device, two chunks of the devices' shape (a different batch shape can change round-off, which the
    # deep net's chaotic cells near α ≈ 0.4 amplify to O(1) within 300 steps, even in float64)
    one = L.sweep(cfg, pb, a, b, steps=300, chunk_size=288)
    np.testing.assert_array_equal(split.status, one.status)
    assert (split.status == DIVERGED).any() and (split.status != DIVERGED).any()
    ok = split.status != DIVERGED
    for f in ("final_loss", "distance", "residual"):
        # float64; the devices' kernels may associate sums differently (round-off ~1e-16 per step)
        np.testing.assert_allclose(getattr(split, f)[ok], getattr(one, f)[ok], rtol=1e-6, atol=1e-10)
print("ok")
"""


def test_sweep_split_over_cpu_devices_equals_one_device():
    """Two XLA CPU devices (as ``sgtheory sweep`` sets up on a 2-core machine): the split sweep gives
    the verdicts and numbers of the one-device sweep. A child process, since the device count is fixed
    when JAX starts."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", _SPLIT_CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
