"""Spreading a population's members over devices and processes, and compiling its programs.

The members of a population never talk to each other, so the population axis is split over a 1-D
mesh of devices (``shard_map`` of the ``vmap``-ped single-run function): each device runs its own
members and no collective runs during training. Devices are all the devices JAX sees: the local CPU
devices (one per core when ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, as the ``sgtheory``
command asks for), several GPUs, and, when the user started JAX's multi-process runtime
(``jax.distributed.initialize()``), the devices of every process. A population that does not divide
evenly is padded with copies of its first member, whose results are dropped.

Two things keep every member bit-identical to the same run alone on the CPU (tested in float64):
programs are compiled with one XLA CPU option, :data:`CPU_OPTIONS` (without it XLA hands some batched
reductions, the batch means of the bias gradients, to a library kernel that sums in its own order), and
the step counters stay one shared scalar (:func:`shared_counters`), so that XLA rewrites Adam's bias
correction the same way in both programs.
"""

from __future__ import annotations

import math

import jax
import numpy as np

AXIS = "members"
#: XLA options for CPU programs: no YNNPACK fusions (same summation order batched and alone).
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def layout(n_members: int, devices=None) -> tuple[list, int]:
    """The devices to split ``n_members`` over, and the padded member count (a multiple of their number).

    In one process: the fewest devices that give the smallest number of members per device (5 members
    on 4 devices: 3 devices, 2 each, 1 padded). With several processes every device takes part.

    Args:
        n_members: members of the population.
        devices: the candidates (default: every device JAX sees).

    Returns:
        ``(devices, padded_count)``.
    """
    devices = list(jax.devices() if devices is None else devices)
    if jax.process_count() > 1:
        n = len(devices)
    else:
        top = max(1, min(n_members, len(devices)))
        n = min(range(1, top + 1), key=lambda k: (math.ceil(n_members / k), k))
    return devices[:n], math.ceil(n_members / n) * n


def mesh(devices):
    """A 1-D mesh over ``devices`` (axis :data:`AXIS`).

    Args:
        devices: JAX devices.

    Returns:
        The mesh, or None for a single device.
    """
    return None if len(devices) < 2 else jax.sharding.Mesh(np.asarray(devices), (AXIS,))


def _shard_map(fn, mesh_, in_specs, out_specs):
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh_, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # JAX < 0.7

    return shard_map(fn, mesh=mesh_, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def batched(fn, mesh_, in_axes: tuple, out_axes):
    """``fn`` vmapped over members, split over ``mesh_`` when given; jitted, not yet compiled.

    Args:
        fn: the single-member function.
        mesh_: a mesh (:func:`mesh`), or None.
        in_axes: per argument, or per leaf: 0 for the member axis, None for a value every member shares.
        out_axes: the same for the outputs.

    Returns:
        The jitted function.
    """
    vfn = jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)
    if mesh_ is None:
        return jax.jit(vfn)
    return jax.jit(_shard_map(vfn, mesh_, _specs(in_axes), _specs(out_axes)))


def _specs(axes):
    P = jax.sharding.PartitionSpec
    return jax.tree_util.tree_map(lambda a: P() if a is None else P(AXIS), axes, is_leaf=lambda a: a is None)


def shared_counters(state, *, keys: bool = True):
    """Axes for a batched state: None (one value shared by every member) for its step counters, 0 for the rest.

    Step counters are the integer scalars of a training state (optax's ``count``, schedules, the
    asynchronous-update wrapper), the same in every member since all members step together; with ``keys``,
    small integer arrays equal in every member (a random key an optimiser factory closed over) count too.
    Kept as one shared value, a counter-derived term (Adam's bias correction) is a scalar in the population's
    program as in a single run's, and XLA simplifies both programs the same way.

    Args:
        state: a member's state (a pytree).
        keys: count small integer arrays as counters too.

    Returns:
        A tree of axes (0 or None) shaped like ``state``.
    """
    def axis(a):
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.integer):
            return 0
        if a.ndim == 1 or (keys and a.ndim == 2 and a.shape[1] <= 4 and bool(np.all(a == a[:1]))):
            return None
        return 0

    return jax.tree_util.tree_map(axis, state)


def compile_for(jitted, *args, platform: str):
    """Lower and compile ``jitted`` for ``args``, with :data:`CPU_OPTIONS` on the CPU.

    An XLA that no longer knows the option compiles without it.

    Args:
        jitted: a jitted function.
        *args: its arguments (or shape structs).
        platform: the backend's platform name.

    Returns:
        ``(compiled, options_applied)``.
    """
    lowered = jitted.lower(*args)
    if platform == "cpu":
        try:
            return lowered.compile(compiler_options=CPU_OPTIONS), True
        except Exception as exc:
            if "ynn" not in str(exc).lower():
                raise
    return lowered.compile(), False


def put(tree, mesh_, axes):
    """Host arrays as global arrays on ``mesh_``: split along the members axis (axis 0) or replicated (None).

    Works in every process of a multi-process run (each provides the shards of its own devices).

    Args:
        tree: a pytree of host arrays.
        mesh_: the mesh (:func:`mesh`).
        axes: 0 or None for the whole tree, or a tree of them.

    Returns:
        The tree of global arrays.
    """
    if mesh_ is None:
        return tree
    P = jax.sharding.PartitionSpec

    def one(x, axis):
        host = np.asarray(x)
        sharding = jax.sharding.NamedSharding(mesh_, P() if axis is None else P(AXIS))
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    if axes is None or axes == 0:
        return jax.tree_util.tree_map(lambda x: one(x, axes), tree)
    return jax.tree_util.tree_map(one, tree, axes)


def synchronise(tag: str) -> None:
    """Wait for every process of a multi-process run (no-op in one process).

    The first cross-process collective also sets up the CPU collectives' context, which waits only a
    short while for the other processes: calling this before the long compilation keeps the processes
    in step when one of them compiles more slowly.

    Args:
        tag: names the barrier (the same in every process).
    """
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(tag)


def to_host(tree):
    """Every array of ``tree`` as numpy, gathered from every process when there are several.

    Args:
        tree: a pytree of arrays.

    Returns:
        The tree of numpy arrays.
    """
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return jax.tree_util.tree_map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


__all__ = ["AXIS", "CPU_OPTIONS", "batched", "compile_for", "layout", "mesh", "put", "shared_counters",
           "synchronise", "to_host"]
