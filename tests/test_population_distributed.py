"""A population split over two processes (``jax.distributed`` on this machine's CPU) equals the one-process run."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from sgtheory.data import load
from sgtheory.nets import MLPConfig, train_population

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(seeds=[0, 1, 2], lr=[1e-2], steps=20, batch_size=32, eval_every=10, dtype=np.float64)
CONFIG = (64, 10, 1, 8, "relu", False)

WORKER = """
import sys
import jax
jax.config.update("jax_enable_x64", True)
pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                           initialization_timeout=60)
import numpy as np
from sgtheory.data import load
from sgtheory.nets import MLPConfig, train_population
pop = train_population(load("digits"), MLPConfig(*CONFIG), "dfa", **SETTINGS)
leaves = jax.tree_util.tree_leaves((pop.params, pop.method_state, pop.metrics))
np.savez(out, *leaves, devices=pop.info["devices"], processes=pop.info["processes"],
         padded=pop.info["padded_members"], local=len(jax.local_devices()))
jax.distributed.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_population_equals_one_process(tmp_path):
    settings = ", ".join(f"{k}={v!r}" for k, v in SETTINGS.items() if k != "dtype")
    script = f"CONFIG = {CONFIG!r}\nimport numpy as np\nSETTINGS = dict({settings}, dtype=np.float64)\n" + WORKER
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), "SGTHEORY_JAX_CACHE": "off"}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), str(port), str(tmp_path / f"p{i}.npz")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-2000:]
    one = train_population(load("digits"), MLPConfig(*CONFIG), "dfa", **SETTINGS)
    expected = jax.tree_util.tree_leaves((one.params, one.method_state, one.metrics))
    for i in range(2):
        got = np.load(tmp_path / f"p{i}.npz")
        # 3 members over 2 processes of 1 device each: one padded member, 2 members per device
        assert (int(got["devices"]), int(got["processes"]), int(got["padded"]), int(got["local"])) == (2, 2, 1, 1)
        assert len(got.files) == len(expected) + 4
        for j, e in enumerate(expected):  # every process holds the whole population, bit for bit
            assert np.array_equal(got[f"arr_{j}"], e), f"process {i}, array {j}"
