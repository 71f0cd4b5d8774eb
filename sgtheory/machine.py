"""The machine a measurement was made on: CPU model, core count, GPUs JAX sees, versions and load.

The benchmarks write this next to every timing, so a number can always be read with the machine, the
package versions and the load it was measured under (``benchmarks/README.md`` shows them as columns).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` where there is one, else what :mod:`platform` knows).

    Returns:
        a short human-readable name.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """Machine, versions and load average, as plain JSON values (imports JAX to list its devices).

    Returns:
        a dict with ``cpu``, ``cpu_count``, ``gpus`` (device kinds, or a sentence saying there is none),
        ``python``, ``numpy``, ``jax``, ``platform`` and ``load_average`` (1, 5 and 15 minutes).
    """
    import jax
    import numpy as np

    gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpus": gpus or "none (no GPU visible to JAX in this run)",
            "python": platform.python_version(), "numpy": np.__version__, "jax": jax.__version__,
            "platform": platform.platform(), "load_average": [round(x, 2) for x in os.getloadavg()]}


__all__ = ["cpu_model", "describe"]
