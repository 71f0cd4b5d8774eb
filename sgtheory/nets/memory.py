"""How much memory a training run or a population needs, estimated before anything is allocated.

Shapes come from ``jax.eval_shape`` of the real initialisers (the net, the method's state and the
optimiser states), so no array is created; activations and temporaries are a stated rough bound.
:func:`check_fits` refuses a population that cannot fit with one clear :class:`sgtheory.InputError`
line instead of an allocation failure deep inside XLA.
"""

from __future__ import annotations

import math
import os

import jax
import numpy as np

from sgtheory.errors import InputError

#: Headroom: refuse when the estimate exceeds this share of the memory available.
SHARE = 0.8


def _bytes(tree) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(tree))


def member_bytes(plan, n_test: int) -> int:
    """Estimated bytes for one member of ``plan``.

    State (params, learned and fixed method state, optimiser states) from their exact shapes, plus
    two more copies of the params and learned state (gradients and updates), plus activations:
    ``batch × (n_in + 8 × depth × width)`` (forward record, signals, vjp residuals) and
    ``n_test × (n_in + 2 × width)`` for the test-set evaluation.

    Args:
        plan: the :class:`sgtheory.nets.program.Plan`.
        n_test: test-set rows.

    Returns:
        The estimate in bytes.
    """
    from sgtheory.nets.program import Hyper, init

    hyper = Hyper(np.zeros((), plan.dtype), np.zeros((), plan.dtype))
    state, member = jax.eval_shape(lambda: init(plan, 0, hyper))
    c = plan.config
    item = np.dtype(plan.dtype).itemsize
    weights = _bytes((state.params, state.learned))
    activations = item * (plan.batch_size * (c.n_in + 8 * c.depth * c.width) + n_test * (c.n_in + 2 * c.width))
    return _bytes(state) + _bytes(member) + 2 * weights + activations


def available_bytes(devices) -> int | None:
    """Memory the ``devices`` can use: free host memory for CPU devices (shared by all of them), the sum of
    the per-device limits otherwise.

    Args:
        devices: JAX devices.

    Returns:
        Bytes, or None when unknown.
    """
    if all(d.platform == "cpu" for d in devices):
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    total = 0
    for d in devices:
        stats = d.memory_stats() if hasattr(d, "memory_stats") else None
        if not stats or "bytes_limit" not in stats:
            return None
        total += stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    return total


def check_fits(plan, *, n_members: int, n_test: int, data_bytes: int, devices) -> int:
    """Raise :class:`InputError` when ``n_members`` members of ``plan`` on ``devices`` would not fit.

    Only the devices of this process count, with their share of the members.

    Args:
        plan: the :class:`sgtheory.nets.program.Plan`.
        n_members: members trained together.
        n_test: test-set rows.
        data_bytes: the training and test sets (one copy per device).
        devices: JAX devices.

    Returns:
        The estimate in bytes.

    Raises:
        InputError: it would not fit.
    """
    local = [d for d in devices if d.process_index == jax.process_index()]
    share = math.ceil(n_members * len(local) / max(1, len(devices)))
    need = share * member_bytes(plan, n_test) + len(local) * data_bytes
    have = available_bytes(local)
    if have is not None and need > SHARE * have:
        c = plan.config
        raise InputError(
            f"population too large: {share} member(s) of a {c.depth}x{c.width} net (batch {plan.batch_size}) need "
            f"about {_gb(need)} (estimate) but {len(local)} {local[0].platform} device(s) have {_gb(have)} free; "
            "use fewer members, a smaller net or batch, or more devices")
    return need


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**27 else f"{n / 2**20:.0f} MB"


__all__ = ["available_bytes", "check_fits", "member_bytes"]
