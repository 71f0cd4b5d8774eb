"""One XLA CPU device per core, for the ``sgtheory sweep`` command.

On the CPU, XLA runs a sweep's many small per-step kernels on one device with a shared thread pool,
which keeps a second core only partly busy. Split over one device per core, each device runs its share
of the configurations single-threaded (:func:`sgtheory.linear.sweep.sweep` does the split), which uses
the cores better (``benchmarks/sweep_throughput.py`` measures both). XLA reads the
device count from ``XLA_FLAGS`` once, when JAX starts its CPU backend, so this has to run before that.
The library never calls it: a Python user sets ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
"""

from __future__ import annotations

import os
import sys

FLAG = "--xla_force_host_platform_device_count"


def cores() -> int:
    """CPU cores this process may run on.

    Returns:
        The count, at least 1.
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def one_device_per_core() -> bool:
    """Ask XLA for one CPU device per core.

    Nothing changes when JAX is already imported (too late) or ``XLA_FLAGS`` already sets the count (the
    user's choice wins).

    Returns:
        Whether it set the flag.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    n = cores()
    if "jax" in sys.modules or FLAG in flags or n < 2:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={n}".strip()
    return True


__all__ = ["FLAG", "cores", "one_device_per_core"]
