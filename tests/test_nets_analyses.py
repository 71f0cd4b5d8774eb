"""Asynchronous layer updates, and smoke runs of the nonlinear-net analyses and the training benchmark.

The analyses run in tiny settings (scikit-learn digits, 2 hidden layers of 16 units, a few dozen steps):
these tests check that scripts run end to end and write what they promise, not the paper's numbers
(those are in paper_repro.md, with the commands that produced them).
"""

import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgtheory import InputError
from sgtheory.nets import methods
from sgtheory.nets.async_updates import async_layers

ROOT = Path(__file__).resolve().parents[1]


def _load(relpath):
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trees(key, depth=3, width=4):
    ks = jax.random.split(key, 2 * depth + 2)
    params = tuple({"W": jax.random.normal(ks[i], (width, width)), "b": jnp.zeros(width)} for i in range(depth + 1))
    sg = {str(i): {"A": jax.random.normal(ks[depth + i], (width, width))} for i in (1, 2)}
    return params, sg


def test_async_p1_is_the_wrapped_optimizer(key):
    params, sg = _trees(key)
    grads = jax.tree_util.tree_map(lambda a: 0.1 * a + 1.0, (params, sg))
    for tree, g in zip((params, sg), grads):
        plain, wrapped = optax.adam(1e-2), async_layers(optax.adam(1e-2), 1.0, key=key)
        s1, s2 = plain.init(tree), wrapped.init(tree)
        for _ in range(3):
            u1, s1 = plain.update(g, s1, tree)
            u2, s2 = wrapped.update(g, s2, tree)
            # Adam is elementwise, so per-layer Adam equals Adam on the whole tree up to float64 round-off.
            for a, b in zip(jax.tree_util.tree_leaves(u1), jax.tree_util.tree_leaves(u2)):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_async_skipped_layers_keep_params_and_state_and_follow_their_sg(key):
    params, sg = _trees(key)
    net_opt, sg_opt = (async_layers(optax.adam(1e-2), 0.5, key=key) for _ in range(2))
    ns, ss = net_opt.init(params), sg_opt.init(sg)
    net_update, sg_update = jax.jit(net_opt.update), jax.jit(sg_opt.update)
    g_net = jax.tree_util.tree_map(jnp.ones_like, params)
    g_sg = jax.tree_util.tree_map(jnp.ones_like, sg)
    updated = []
    for _ in range(300):
        un, ns_new = net_update(g_net, ns, params)
        us, ss_new = sg_update(g_sg, ss, sg)
        moved = [bool(jnp.any(u["W"] != 0)) for u in un]
        for j, m in enumerate(moved):
            mu_old, mu_new = ns.inner[j][0].mu["W"], ns_new.inner[j][0].mu["W"]
            assert m == bool(jnp.any(mu_old != mu_new))  # a skipped layer keeps its Adam moments
        for k in sg:  # the SG module at layer i moves exactly when layer i does (shared key and step)
            assert bool(jnp.any(us[k]["A"] != 0)) == moved[int(k) - 1]
        updated.append(moved)
        ns, ss = ns_new, ss_new
    # 300 steps x 4 layers of Bernoulli(0.5): standard error 0.014; 0.06 is over 4 standard errors.
    assert abs(np.mean(updated) - 0.5) < 0.06


@pytest.mark.parametrize("p", [0.0, -0.1, 1.5])
def test_async_rejects_bad_probability(p, key):
    with pytest.raises(InputError, match="probability"):
        async_layers(optax.adam(1e-3), p, key=key)


TINY = ["--dataset", "digits", "--width", "16", "--steps", "30", "--evals", "2"]


def test_c10_unified_runs_and_writes_table_and_figures(tmp_path, capsys):
    mod = _load("analyses/c10_unified.py")
    rc = mod.main(TINY + ["--depth", "2", "--methods", "bp,csg", "--out", str(tmp_path)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["test_error"]) == {"bp", "csg"}
    assert all(0.0 <= v <= 1.0 for v in summary["test_error"].values())
    for name in ("c10_unified.png", "c10_cosine.png", "c10_unified.md", "data/c10_unified.npz"):
        assert (tmp_path / name).stat().st_size > 0
    md = (tmp_path / "c10_unified.md").read_text()
    assert all(f"| `{m}` |" in md for m in methods.METHODS)  # the generated table lists every method
    assert mod.main(["--replot", "--out", str(tmp_path)]) == 0


def test_analysis_bad_input_is_one_line_exit_2(tmp_path, capsys):
    mod = _load("analyses/c7_deep_sg.py")
    assert mod.main(["--depths", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "depth" in err[0]


def test_train_throughput_benchmark_tiny(tmp_path):
    mod = _load("benchmarks/train_throughput.py")
    out = tmp_path / "tt.json"
    assert mod.main(["--steps", "5", "--rounds", "1", "--depth", "2", "--width", "16", "--batch-size", "32",
                     "--dataset", "digits", "--methods", "bp,csg-every", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {r["method"] for r in res["results"]} == {"bp", "csg-every"}
    assert all(r["steps_per_second"] > 0 and r["compile_seconds"] > 0 for r in res["results"])
    assert res["cost_ratio_csg_every_over_bp"]["cpu"] > 0
    assert res["machine"]["cpu_count"] >= 1
