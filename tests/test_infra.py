"""The shared plumbing: atomic writes, pickle-free loading, the CLI's error contract, repro discovery."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.cli.main import main, subcommand_modules
from sgtheory.io import atomic_path, load_npz, savez, write_json
from sgtheory.repro import available_analyses


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_savez_roundtrip_and_order(tmp_path):
    arrays = {"z": np.arange(3), "a": np.eye(2)}
    savez(tmp_path / "x.npz", arrays)
    back = load_npz(tmp_path / "x.npz")
    assert list(back) == ["z", "a"]
    np.testing.assert_array_equal(back["a"], np.eye(2))


def test_load_npz_refuses_pickle_and_corruption(tmp_path):
    np.savez(tmp_path / "p.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickle"):
        load_npz(tmp_path / "p.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="corrupt"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="no such file"):
        load_npz(tmp_path / "missing.npz")


def test_write_json_numpy(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float32(1.5), "v": np.arange(2)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "v": [0, 1]}


def test_cli_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice" in err[0]


def test_repro_and_subcommands_registered():
    assert "repro" in subcommand_modules()
    assert len(available_analyses()) >= 1


def test_repro_unknown_analysis_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sgtheory.cli.main", "repro", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown analysis" in proc.stderr and "Traceback" not in proc.stderr


def test_atomic_outputs_get_umask_permissions(tmp_path):
    import os
    import stat

    write_json(tmp_path / "p.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o666 & ~mask


def test_compilation_cache_location_and_switch(monkeypatch, tmp_path):
    from sgtheory import jaxcache

    monkeypatch.setenv(jaxcache.ENV, "off")
    assert jaxcache.cache_dir() is None and jaxcache.enable() is None
    monkeypatch.setenv(jaxcache.ENV, str(tmp_path / "c"))
    assert jaxcache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(jaxcache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jaxcache.cache_dir() == tmp_path / "xdg" / "sgtheory" / "jax"


@pytest.mark.parametrize("jax_first", [False, True])
def test_compilation_cache_stores_programs(tmp_path, jax_first):
    """In a fresh process (the cache is set up once per process), enabled before JAX is imported (through
    JAX's environment variables) or after (through jax.config): a compiled program lands in the folder."""
    code = ("import jax; " if jax_first else "") + (
        "from sgtheory.jaxcache import enable; enable(); import jax, jax.numpy as jnp; "
        "jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(SGTHEORY_JAX_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert any((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("preset", [None, "--xla_force_host_platform_device_count=3"])
def test_one_device_per_core(preset):
    """``sgtheory sweep`` asks XLA for one CPU device per core before JAX starts; a count already in
    XLA_FLAGS is the user's and is kept."""
    from sgtheory.hostdevices import cores

    code = ("from sgtheory.hostdevices import one_device_per_core as f; s = f(); import jax; "
            "print(s, len(jax.devices('cpu')), f())")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if preset:
        env["XLA_FLAGS"] = preset
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    set_flag, n, again = out.stdout.split()
    assert again == "False"  # JAX is loaded: too late, nothing changes
    if preset:
        assert (set_flag, n) == ("False", "3")
    else:
        assert (set_flag, int(n)) == (str(cores() > 1), max(cores(), 1))


def test_console_entry_fast_exit_keeps_output_and_exit_code(tmp_path):
    """``python -m sgtheory`` (the console script's entry) ends with os._exit after main returns: its
    stdout line, its files and its exit codes (0, and 2 for bad input) must all survive that."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "sgtheory", "sweep", "--grid", "3", "--steps", "20", "--dim", "2", "--json",
           "--no-plot", "--out", str(tmp_path / "o")]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert sum(json.loads(ok.stdout.strip().splitlines()[-1])["counts"].values()) == 9
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"sweep.npz", "sweep.json"}
    bad = subprocess.run(cmd[:-2] + ["--steps", "0", "--out", str(tmp_path / "b")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "--steps" in bad.stderr and not (tmp_path / "b").exists()
