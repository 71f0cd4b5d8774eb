"""Ctrl-C at any moment of a real ``python -m sgtheory sweep`` / ``train``: exit 130 promptly, one line.

The runs start together (each in its own session, as a terminal job would be) and each gets SIGINT at a
different delay, so the signals land in different phases: start-up imports, the JAX import, compilation,
the run, writing, and (sweep) while the plot child draws. The delays count from the moment sgtheory's
handlers are in place (the watchdog thread exists): a SIGINT during the interpreter's own start-up (its
``site`` import, before any sgtheory code runs) is Python's to handle and is not tested here.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import pytest

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "SGTHEORY_JAX_CACHE": "off", "PYTHONFAULTHANDLER": "1"}
SWEEP = ["sweep", "--grid", "48", "--steps", "4000", "--dim", "4"]  # far longer than the largest delay
TRAIN = ["train", "--dataset", "digits", "--steps", "20000", "--depth", "2", "--width", "16", "--eval-every", "50"]
#: (command, seconds after the handlers are in place, signal the whole session (terminal Ctrl-C) or the
#: parent only)
CASES = [(SWEEP, 0.0, True), (SWEEP, 0.25, True), (SWEEP, 0.7, True), (SWEEP, 1.5, True), (SWEEP, 3.0, True),
         (SWEEP, 1.0, False), (SWEEP, 2.5, False), (TRAIN, 0.4, True), (TRAIN, 1.5, True), (TRAIN, 3.5, True)]
LINE = re.compile(r"^sgtheory( sweep| train)?: interrupted$")


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the command and any child it started)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(name))
    return found


def _complete(path) -> bool:
    """An output file that is whole (parses), not a half-written one."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npz":
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_at_any_moment_exits_130_with_one_line(tmp_path):
    procs = []
    for i, (cmd, _, _) in enumerate(CASES):
        p = subprocess.Popen([sys.executable, "-m", "sgtheory", *cmd, "--out", str(tmp_path / f"out{i}")], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(p)
    ready = {}
    deadline = time.monotonic() + 60
    while len(ready) < len(procs) and time.monotonic() < deadline:
        for i, p in enumerate(procs):
            if i not in ready and _threads(p.pid) >= 2:  # the watchdog thread: the handlers are in place
                ready[i] = time.monotonic()
        time.sleep(0.005)
    assert len(ready) == len(procs), "a command never reached its handlers"
    sent = {}
    pending = sorted(range(len(procs)), key=lambda i: ready[i] + CASES[i][1])
    for i in pending:
        time.sleep(max(0.0, ready[i] + CASES[i][1] - time.monotonic()))
        if CASES[i][2]:
            os.killpg(procs[i].pid, signal.SIGINT)
        else:
            os.kill(procs[i].pid, signal.SIGINT)
        sent[i] = time.monotonic()
    failures = []
    for i, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            failures.append(f"case {i} {CASES[i]}: still running 30 s after SIGINT")
            continue
        took = time.monotonic() - sent[i]
        lines = err.strip().splitlines()
        if p.returncode != 130 or len(lines) != 1 or not LINE.match(lines[0]) or out:
            failures.append(f"case {i} {CASES[i]}: rc {p.returncode}, stdout {out!r}, stderr {err[-1500:]!r}")
        elif took > 8:  # the watchdog ends a stuck process 0.5 s after the signal; slack for a loaded machine
            failures.append(f"case {i} {CASES[i]}: exit {took:.1f} s after SIGINT")
        folder = tmp_path / f"out{i}"
        if folder.exists():
            names = sorted(x.name for x in folder.iterdir())
            if any(".sgtheory-tmp-" in n for n in names) or not all(_complete(folder / n) for n in names):
                failures.append(f"case {i} {CASES[i]}: left {names}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_session_members(p.pid) for p in procs):
        time.sleep(0.05)
    left = {i: _session_members(p.pid) for i, p in enumerate(procs) if _session_members(p.pid)}
    for pids in left.values():
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    assert not failures, "\n".join(failures)
    assert not left, f"processes (the plot child?) outlived their command: {left}"
