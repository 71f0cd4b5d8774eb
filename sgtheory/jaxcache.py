"""JAX's persistent compilation cache, switched on by sgtheory's commands and analysis scripts.

Most of a small sweep's time is XLA compilation (``benchmarks/sweep_throughput.py`` times a cold and a
warm run). The cache keeps compiled programs on disk, keyed by JAX's version, the backend and the
program itself, so the second run of the same command (or any run with the same shapes and options)
skips it. Location: ``$SGTHEORY_JAX_CACHE`` if set (``off`` switches the cache off), else
``$XDG_CACHE_HOME/sgtheory/jax`` or ``~/.cache/sgtheory/jax``. An unwritable location means no cache,
never an error. The library itself never switches it on: only the entry points call :func:`enable`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "SGTHEORY_JAX_CACHE"
OFF = ("0", "off", "false", "no", "none")


def cache_dir() -> Path | None:
    """Where the cache lives.

    Returns:
        The folder, or None when switched off by ``$SGTHEORY_JAX_CACHE``.
    """
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "sgtheory" / "jax"


def enable() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (every program, however quick to compile).

    Call before the first compilation. Before JAX is imported this only sets JAX's own environment
    variables (``JAX_COMPILATION_CACHE_DIR`` and the two thresholds), which JAX reads when it starts, so a
    command pays for the JAX import only once it needs JAX (and child processes inherit the cache);
    afterwards it updates ``jax.config``.

    Returns:
        The folder, or None if off or unwritable.
    """
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None
    options = {"jax_compilation_cache_dir": str(path), "jax_persistent_cache_min_compile_time_secs": 0.0,
               "jax_persistent_cache_min_entry_size_bytes": 0}
    if "jax" not in sys.modules:
        os.environ.update({name.upper(): str(value) for name, value in options.items()})
        return path
    import jax

    for name, value in options.items():
        jax.config.update(name, value)
    return path


__all__ = ["ENV", "cache_dir", "enable"]
