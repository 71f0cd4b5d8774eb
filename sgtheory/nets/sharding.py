"""Spreading a population's members over devices and processes, and compiling its programs.

The members of a population never talk to each other, so the population axis is split over a 1-D
mesh of devices (``shard_map`` of the ``vmap``-ped single-run function): each device runs its own
members and no collective runs during training. Devices are all the devices JAX sees: the local CPU
devices (one per core when ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, as the ``sgtheory``
command asks for), several GPUs, and, when the user started JAX's multi-process runtime
(``jax.distributed.initialize()``), the devices of every process. A population that does not divide
evenly is padded with copies of its first member, whose results are dropped.

Programs are compiled with one XLA CPU option, :data:`CPU_OPTIONS`: without it XLA hands some
reductions (the batch means of the bias gradients) to a library kernel when they are batched and sums
them in its own order when they are not, so a member would differ from the same run alone in the
last bits. With it, every member is bit-identical to the run alone (tested, float64 and float32).
"""

from __future__ import annotations

import math

import jax
import numpy as np

AXIS = "members"
#: XLA options for CPU programs: no YNNPACK fusions (same summation order batched and alone).
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "", "xla_disable_hlo_passes": "algsimp"}


def layout(n_members: int, devices=None) -> tuple[list, int]:
    """The devices to split ``n_members`` over, and the padded member count (a multiple of their number).

    In one process: the fewest devices that give the smallest number of members per device (5 members
    on 4 devices: 3 devices, 2 each, 1 padded). With several processes every device takes part.
    """
    devices = list(jax.devices() if devices is None else devices)
    if jax.process_count() > 1:
        n = len(devices)
    else:
        top = max(1, min(n_members, len(devices)))
        n = min(range(1, top + 1), key=lambda k: (math.ceil(n_members / k), k))
    return devices[:n], math.ceil(n_members / n) * n


def mesh(devices):
    """A 1-D mesh over ``devices`` (axis :data:`AXIS`), or None for a single device."""
    return None if len(devices) < 2 else jax.sharding.Mesh(np.asarray(devices), (AXIS,))


def _shard_map(fn, mesh_, in_specs, out_specs):
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh_, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # JAX < 0.7

    return shard_map(fn, mesh=mesh_, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def batched(fn, mesh_, batched_args: tuple[bool, ...]):
    """``fn`` vmapped over the leading axis of the arguments flagged in ``batched_args`` (others shared),
    split over ``mesh_`` when given; jitted, not yet compiled."""
    in_axes = tuple(0 if b else None for b in batched_args)
    vfn = jax.vmap(fn, in_axes=in_axes)
    if mesh_ is None:
        return jax.jit(vfn)
    P = jax.sharding.PartitionSpec
    specs = tuple(P(AXIS) if b else P() for b in batched_args)
    return jax.jit(_shard_map(vfn, mesh_, specs, P(AXIS)))


def compile_for(jitted, *args, platform: str):
    """Lower and compile ``jitted`` for ``args``, with :data:`CPU_OPTIONS` on the CPU.

    Returns ``(compiled, options_applied)``; an XLA that no longer knows the option compiles without it.
    """
    lowered = jitted.lower(*args)
    if platform == "cpu":
        try:
            return lowered.compile(compiler_options=CPU_OPTIONS), True
        except Exception as exc:  # noqa: BLE001 - XLA raises its own runtime error type for unknown options
            if "ynn" not in str(exc).lower():
                raise
    return lowered.compile(), False


def put(tree, mesh_, batched_: bool):
    """Host arrays as global arrays on ``mesh_``: split along the members axis, or replicated.

    Works in every process of a multi-process run (each provides the shards of its own devices).
    """
    if mesh_ is None:
        return tree
    P = jax.sharding.PartitionSpec
    sharding = jax.sharding.NamedSharding(mesh_, P(AXIS) if batched_ else P())

    def one(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree_util.tree_map(one, tree)


def to_host(tree):
    """Every array of ``tree`` as numpy, gathered from every process when there are several."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree_util.tree_map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


__all__ = ["AXIS", "CPU_OPTIONS", "batched", "compile_for", "layout", "mesh", "put", "to_host"]
