"""Output folders, temporary files, strict JSON and the commands' error contract (sgtheory.io, cli._guard)."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.cli import _guard
from sgtheory.cli.main import Parser, emit, main, run_command
from sgtheory.errors import NonFiniteWarning
from sgtheory.io import (
    TEMP_PATTERN,
    atomic_path,
    check_output_path,
    ensure_writable_dir,
    json_safe,
    json_text,
    output_dir,
    remove_stale_temporaries,
    write_json,
)
from sgtheory.validate import fits_in_memory, seed

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "SGTHEORY_JAX_CACHE": "off"}


def _dead_pid() -> int:
    """The id of a process that has ended (reuse within the test is not expected)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _start(code: str) -> subprocess.Popen:
    """A Python child running ``code``; returns once it printed its first line (its 'ready')."""
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return p


# ---------------------------------------------------------------- temporary files


def test_temporary_file_is_hidden_tagged_and_renamed(tmp_path):
    dest = tmp_path / "sweep.npz"
    with atomic_path(dest) as tmp:
        m = TEMP_PATTERN.match(tmp.name)
        assert m and tmp.name.startswith(".") and int(m["pid"]) == os.getpid() and m["name"] == "sweep.npz"
        assert tmp.suffix == ".npz"  # writers that infer the format from the suffix still see it
        tmp.write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.npz"]


def test_stale_temporaries_removed_only_when_ours_and_dead(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    stale = [f".sweep.npz.sgtheory-tmp-{dead}-abcd_123.npz", f".sweep.json.sgtheory-tmp-{dead}-zzzzzzzz"]
    kept = [f".sweep.json.sgtheory-tmp-{live}-abcdefgh",  # a live process's (ours)
            f".x.sgtheory-tmp-{dead}-abc.npz",  # random part of the wrong length
            f"x.sgtheory-tmp-{dead}-abcdefgh",  # not hidden
            f".x.sgtheory-tmp-{dead}-ABCDEFGH",  # not mkstemp's alphabet
            ".x.tmp", "results.json", f".sweep.npz.sgtheory-tmp-{dead}-abcdefgh.npz.bak"]
    for name in stale + kept:
        (tmp_path / name).write_text("data")
    (tmp_path / f".d.sgtheory-tmp-{dead}-abcdefgh").mkdir()  # a folder of that name is never ours
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + [f".d.sgtheory-tmp-{dead}-abcdefgh"])


def test_sigkill_during_write_leaves_only_a_temporary_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    p = _start(f"""
        import sys, time
        from sgtheory.io import atomic_path
        with atomic_path({str(out / 'big.json')!r}) as tmp:
            with open(tmp, "w") as fh:
                fh.write("[" + "1," * 100000)
                fh.flush()
                print("ready", flush=True)
                time.sleep(60)
    """)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    left = [x.name for x in out.iterdir()]
    assert len(left) == 1 and TEMP_PATTERN.match(left[0]) and int(TEMP_PATTERN.match(left[0])["pid"]) == p.pid
    (out / "mine.txt").write_text("a user's file")
    ensure_writable_dir(out)  # what every command does with its --out
    assert [x.name for x in out.iterdir()] == ["mine.txt"]


def test_sigint_during_write_removes_the_temporary_at_once(tmp_path):
    out = tmp_path / "out"
    p = _start(f"""
        import time
        from sgtheory.cli._guard import install_process_handlers, run_guarded
        from sgtheory.io import atomic_path
        install_process_handlers("writer")
        def work():
            with atomic_path({str(out / 'big.json')!r}) as tmp:
                tmp.write_text("[1,")
                print("ready", flush=True)
                time.sleep(60)
        raise SystemExit(run_guarded("writer", work))
    """)
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and err.strip() == "writer: interrupted"
    assert time.perf_counter() - t0 < 5  # promptly (the watchdog's grace is 0.5 s; slack for a loaded machine)
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- output folders


def test_check_output_path_refuses_before_creating_anything(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "o" / "sweep.json").mkdir(parents=True)
    with pytest.raises(InputError, match="empty path"):
        check_output_path("")
    with pytest.raises(InputError, match="not a folder"):
        check_output_path(tmp_path / "f")
    with pytest.raises(InputError, match="is not a folder"):
        check_output_path(tmp_path / "f" / "deeper" / "out")
    with pytest.raises(InputError, match="sweep.json exists and is not a file"):
        check_output_path(tmp_path / "o", outputs=("sweep.npz", "sweep.json"))
    assert check_output_path(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "o"]


def test_output_dir_removes_the_empty_folder_of_a_failed_run_but_keeps_existing_ones(tmp_path):
    with pytest.raises(RuntimeError):
        with output_dir(tmp_path / "new") as out:
            ensure_writable_dir(out / "data")
            raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError):
        with output_dir(tmp_path / "kept") as out:
            write_json(out / "data" / "done.json", {})
            ensure_writable_dir(out / "empty")
            raise RuntimeError("failed after one output")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["kept", "kept/data",
                                                                                  "kept/data/done.json"]
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError):
        with output_dir(tmp_path / "old") as out:
            raise RuntimeError("failed")
    assert (tmp_path / "old").is_dir()


@pytest.mark.parametrize("exists", [True, False])
def test_second_process_is_refused_with_the_holders_pid_and_the_lock_dies_with_it(tmp_path, exists):
    out = tmp_path / "out"
    if exists:
        out.mkdir()
    holder = _start(f"""
        import time
        from sgtheory.io import ensure_writable_dir, output_dir
        with output_dir({str(out)!r}) as out:
            ensure_writable_dir(out)
            print("ready", flush=True)
            time.sleep(60)
    """)
    try:
        with pytest.raises(InputError, match=rf"in use by another sgtheory process \(pid {holder.pid}\)"):
            with output_dir(out) as o:
                ensure_writable_dir(o)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    with output_dir(out) as o:  # the lock went with its process
        ensure_writable_dir(o)
        with output_dir(out):  # and this process may take it again
            ensure_writable_dir(o)


def test_a_refused_run_never_removes_the_holders_empty_folder(tmp_path):
    """Both runs find no folder; the other one creates and locks it first: this one fails, the folder stays."""
    out = tmp_path / "out"
    holder = None
    try:
        with pytest.raises(InputError, match="in use"):
            with output_dir(out) as o:
                holder = _start(f"""
                    import time
                    from sgtheory.io import ensure_writable_dir, output_dir
                    with output_dir({str(out)!r}) as out:
                        ensure_writable_dir(out)
                        print("ready", flush=True)
                        time.sleep(60)
                """)
                ensure_writable_dir(o)
        assert out.is_dir()
    finally:
        if holder is not None:
            holder.send_signal(signal.SIGKILL)
            holder.communicate()


def test_concurrent_command_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = _start(f"""
        import time
        from sgtheory.io import output_dir
        with output_dir({str(out)!r}):
            print("ready", flush=True)
            time.sleep(60)
    """)
    try:
        code = main(["sweep", "--grid", "2", "--steps", "3", "--dim", "2", "--no-plot", "--out", str(out)])
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"in use by another sgtheory process (pid {holder.pid})" in err[0]
    assert list(out.iterdir()) == []


def test_child_of_the_holder_may_write_into_its_folder(tmp_path):
    """``sgtheory repro`` holds --out while its analyses (child processes) write into it."""
    with output_dir(tmp_path / "out") as out:
        ensure_writable_dir(out)
        child = subprocess.run([sys.executable, "-c", "from sgtheory.io import output_dir, ensure_writable_dir\n"
                                f"with output_dir({str(out)!r}) as o: ensure_writable_dir(o); print('ok')"],
                               env={**ENV, **os.environ}, capture_output=True, text=True, timeout=60)
        assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr
        stranger = subprocess.run([sys.executable, "-c", "from sgtheory.io import output_dir, ensure_writable_dir\n"
                                   f"with output_dir({str(out)!r}) as o: ensure_writable_dir(o)"],
                                  env={k: v for k, v in ENV.items() if not k.startswith("SGTHEORY_HELD")},
                                  capture_output=True, text=True, timeout=60)
        assert stranger.returncode != 0 and "in use by another sgtheory process" in stranger.stderr


# ---------------------------------------------------------------- JSON and the summary line


def test_json_safe_converts_numpy_and_reports_non_finite_paths():
    import jax.numpy as jnp

    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": [1.0, float("nan"), {"d": -np.inf}], "e": jnp.ones(2),
           "f": np.bool_(True), "g": None, "h": (np.int64(2), "s")}
    clean, bad = json_safe(obj)
    assert bad == ["c[1]", "c[2].d"]
    assert clean == {"a": 1.5, "b": [0, 1, 2], "c": [1.0, None, {"d": None}], "e": [1.0, 1.0], "f": True,
                     "g": None, "h": [2, "s"]}
    with pytest.raises(TypeError, match="x.y: object"):
        json_safe({"x": {"y": object()}})


def test_write_json_is_strict_json_with_the_places_of_non_finite_values(tmp_path):
    with pytest.warns(NonFiniteWarning, match="rho\\[0\\]"):
        write_json(tmp_path / "s.json", {"rho": np.array([np.nan, 1.0]), "ok": 2})

    def no_constants(name):
        raise AssertionError(f"{name} in JSON")

    back = json.loads((tmp_path / "s.json").read_text(), parse_constant=no_constants)
    assert back == {"rho": [None, 1.0], "ok": 2, "non_finite": ["rho[0]"]}


def test_emit_never_prints_a_non_finite_number(capsys):
    summary = {"test_error": float("nan"), "loss": float("inf"), "n": np.int64(3), "v": np.array([0.5])}
    with pytest.warns(NonFiniteWarning):
        emit(summary, True)
    line = json.loads(capsys.readouterr().out)
    assert line == {"test_error": None, "loss": None, "n": 3, "v": [0.5], "non_finite": ["test_error", "loss"]}
    with pytest.warns(NonFiniteWarning):
        emit(summary, False, f"error {summary['test_error']:.4f}, loss {summary['loss']}, path /x/nan/inf")
    assert capsys.readouterr().out.strip() == "error non-finite, loss non-finite, path /x/nan/inf"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finite summary warns about nothing
        emit({"x": 1.0}, False, "x 1.0 nan-free")
    assert capsys.readouterr().out.strip() == "x 1.0 nan-free"
    with pytest.warns(NonFiniteWarning, match="^w: non-finite"):
        text, bad = json_text([math.inf, 1], what="w")
    assert bad == ["[0]"] and text == "[null, 1]"  # no top-level dict: no place for a "non_finite" list


# ---------------------------------------------------------------- the error contract


class _XlaLike(RuntimeError):
    """An exception from JAX's runtime, as far as the guard can tell (module name, message)."""


_XlaLike.__module__ = "jaxlib.xla_extension"


@pytest.mark.parametrize("exc, code, words", [
    (InputError("--grid: must be >= 1"), 2, "error: --grid: must be >= 1"),
    (MemoryError(), 2, "too large"),
    (_XlaLike("RESOURCE_EXHAUSTED: Out of memory allocating 4000000 bytes.\nmore detail"), 2, "too large"),
    (FileNotFoundError(2, "No such file or directory", "/data/x.npz"), 2, "/data/x.npz: No such file"),
    (IsADirectoryError(21, "Is a directory", "/o/sweep.json"), 2, "/o/sweep.json: Is a directory"),
    (ValueError("bad\nsecond line"), 1, "internal error: ValueError: bad"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_guard_turns_every_exception_into_one_line(exc, code, words, capsys, monkeypatch):
    monkeypatch.delenv(_guard.TRACEBACK_ENV, raising=False)

    def fail():
        raise exc

    assert run_command("sgtheory x", fail) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sgtheory x: ") and words in err[0]
    assert (_guard.TRACEBACK_ENV in err[0]) == (code in (1, 2) and not isinstance(exc, InputError))


def test_internal_error_in_a_command_is_exit_1_and_the_traceback_on_request(capsys, monkeypatch):
    import sgtheory.cli.methods as methods

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(methods, "run", broken)
    monkeypatch.delenv(_guard.TRACEBACK_ENV, raising=False)
    assert main(["methods"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sgtheory methods: error: internal error: ZeroDivisionError: division by zero "
                   f"(set {_guard.TRACEBACK_ENV}=1 for the full traceback)"]
    monkeypatch.setenv(_guard.TRACEBACK_ENV, "1")
    assert main(["methods"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err.strip().splitlines()[-1]


def test_seed_validator_and_every_seed_option():
    for good in (0, "5", np.int64(3), 3.0, 2**32 - 1):
        assert seed(good) == int(good)
    for bad in (-1, 2**32, 1.5, "x", True, float("nan"), None):
        with pytest.raises(InputError, match="--seed"):
            seed(bad)
    parser = Parser(prog="p")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1)  # a count, not a seed
    assert parser.parse_args(["--data-seed", "7", "--seeds", "-1"]).data_seed == 7
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--data-seed", "-1"])
    assert exc.value.code == 2


def test_fits_in_memory():
    assert fits_in_memory(1024, "x") == 1024.0
    with pytest.raises(InputError, match="--width 1e9: too large"):
        fits_in_memory(1e30, "--width 1e9")
