"""Running a plan: compile the single-run program (alone, or vmapped over members and split over
devices), then loop over its chunks, bringing one evaluation row per chunk back to the host.

Shared by :func:`sgtheory.nets.train` (one run, unbatched) and :func:`sgtheory.nets.train_population`
(many runs in one program); both go through :func:`execute`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.nets import sharding
from sgtheory.nets.program import Data, Hyper, Plan, init, make_chunk
from sgtheory.progress import progress


class Raw(NamedTuple):
    """What :func:`execute` returns, all numpy: ``state`` and ``member`` (leading member axis when
    batched), ``rows``: ``{field: (E,) or (P, E) array}`` plus ``step`` ``(E,)``, and ``info``."""

    state: object
    member: object
    rows: dict
    info: dict


def data_arrays(data, n_out: int, dtype) -> Data:
    """The data set as host arrays in the program's dtype (labels one-hot for training).

    Args:
        data: the :class:`~sgtheory.data.Dataset`.
        n_out: classes.
        dtype: the program's dtype.

    Returns:
        The :class:`~sgtheory.nets.program.Data`.
    """
    x = np.asarray(data.x_train, dtype)
    y = np.eye(n_out, dtype=dtype)[np.asarray(data.y_train)]
    return Data(x, y, np.asarray(data.x_test, dtype), np.asarray(data.y_test, np.int32))


def execute(plan: Plan, data: Data, seeds, hyper: Hyper, *, batched: bool, devices=None, show_progress=None,
            desc: str = "train", on_checkpoint: Callable | None = None, checkpoint_every: int | None = None) -> Raw:
    """Train ``plan`` for each seed.

    Args:
        plan: the training program's settings.
        data: the host arrays (:func:`data_arrays`).
        seeds: the seeds, one per member.
        hyper: the rates (arrays of the seeds' length when ``batched``).
        batched: train the members as one vmapped program.
        devices: the devices to split the members over (batched), or whose first runs the single run
            (default: every device JAX sees, or its first).
        show_progress: a progress bar (None: only on a terminal).
        desc: the progress bar's label.
        on_checkpoint: ``on_checkpoint(steps_done, raw)``, called at the first evaluation at or after each
            multiple of ``checkpoint_every`` steps, with the state so far.
        checkpoint_every: see ``on_checkpoint``.

    Returns:
        The :class:`Raw` results (numpy).
    """
    n = len(seeds) if batched else 1
    t0 = time.perf_counter()
    if batched:
        devs, n_pad = sharding.layout(n, devices)
        mesh = sharding.mesh(devs)
        pad = np.concatenate([np.arange(n), np.zeros(n_pad - n, np.int64)])  # copies of member 0
        # the start runs op by op (not jitted): its small programs, mostly random-number generation, are
        # kept by JAX for the whole process, so later runs with the same shapes (any method) skip compiling
        local = devs[0] if devs[0].process_index == jax.process_index() else jax.local_devices()[0]
        with jax.default_device(local):
            state, member = jax.vmap(partial(init, plan))(np.asarray(seeds, np.uint32)[pad],
                                                           Hyper(*(np.asarray(h, plan.dtype)[pad] for h in hyper)))
        shared = _shared(plan, state, member, data)
        state = jax.tree_util.tree_map(lambda a, ax: a[0] if ax is None else a, state, shared)
        if mesh is not None:
            state, member = sharding.put(jax.device_get(state), mesh, shared), sharding.put(member, mesh, 0)
        data_dev, put_start = sharding.put(data, mesh, None), partial(sharding.put, mesh_=mesh, axes=None)

        def build(k):
            return sharding.batched(make_chunk(plan, k), mesh, (shared, 0, None, None), (shared, 0))
    else:
        devs, n_pad = [devices[0] if devices else jax.devices()[0]], 1
        with jax.default_device(devs[0]):  # op by op, as above
            state, member = init(plan, np.uint32(seeds[0]), Hyper(*(jnp.asarray(h, plan.dtype) for h in hyper)))
        data_dev, put_start = jax.device_put(data, devs[0]), partial(jax.device_put, device=devs[0])

        def build(k):
            return jax.jit(make_chunk(plan, k))

    platform = devs[0].platform
    sharding.synchronise("sgtheory.nets: before compiling")
    args = (state, member, data_dev, put_start(np.int32(0)))
    signature = (batched, tuple(d.id for d in devs), n_pad, platform,
                 tuple((a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(data)))
    compiled, applied = {}, False
    for k in plan.lengths:
        compiled[k], applied = _compiled(plan, k, signature, lambda k=k: sharding.compile_for(
            build(k), *args, platform=platform))
    compile_s = time.perf_counter() - t0

    def host(tree):  # shared counters are scalars; everything else loses the padded members
        out = sharding.to_host(tree)
        return jax.tree_util.tree_map(lambda a: a[:n] if a.ndim else a, out) if batched else out

    rows, steps, train_s, done, next_ckpt = [], [], 0.0, 0, checkpoint_every
    with progress(plan.steps, desc=desc, enabled=show_progress, unit="step") as bar:
        while done < plan.steps:
            k = min(plan.eval_every, plan.steps - done)
            t1 = time.perf_counter()
            state, row = compiled[k](state, member, data_dev, put_start(np.int32(done)))
            rows.append(host(row))
            train_s += time.perf_counter() - t1
            done += k
            steps.append(done)
            bar.update(k)
            bar.set_postfix(loss=f"{np.mean(rows[-1].train_loss):.3f}", test_err=f"{np.mean(rows[-1].test_error):.3f}")
            if on_checkpoint is not None and checkpoint_every and done >= next_ckpt:
                on_checkpoint(done, Raw(host(state), host(member), _stack(rows, steps, batched), {}))
                next_ckpt = (done // checkpoint_every + 1) * checkpoint_every
    info = {"compile_seconds": round(compile_s, 3), "train_seconds": round(train_s, 3),
            "steps_per_second": round(plan.steps / max(train_s, 1e-9), 2),
            "member_steps_per_second": round(n * plan.steps / max(train_s, 1e-9), 2),
            "backend": platform, "devices": len(devs), "padded_members": n_pad - n,
            "processes": jax.process_count(), "bitwise_options": applied}
    return Raw(host(state), host(member), _stack(rows, steps, batched), info)


def _shared(plan: Plan, state, member, data):
    """The state's axes: its step counters and common keys shared (:func:`sharding.shared_counters`), else
    its counters only, else nothing when a counter turns out to differ between members (e.g. an optimiser
    that counts skipped steps)."""
    host = jax.device_get(state)
    for shared in (sharding.shared_counters(host), sharding.shared_counters(host, keys=False)):
        one = jax.tree_util.tree_map(lambda a, ax: a[0] if ax is None else a, state, shared)
        chunk = jax.vmap(make_chunk(plan, plan.lengths[0]), in_axes=(shared, 0, None, None), out_axes=(shared, 0))
        try:
            jax.eval_shape(chunk, one, member, data, np.int32(0))
            return shared
        except ValueError:  # vmap: a shared output depends on a member
            continue
    return jax.tree_util.tree_map(lambda _: 0, state)


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 16


def _plan_key(plan: Plan):
    """What a compiled chunk depends on, or None when that cannot be told from values (an optimiser
    factory is a Python function). A built-in method is its name and options (what a checkpoint records)."""
    m = plan.method
    if callable(plan.optimizer) or not type(m).__module__.startswith("sgtheory.nets.methods"):
        return None
    return (plan.config, type(m).__qualname__, m.name, json.dumps(m.options, sort_keys=True), plan.optimizer,
            plan.schedule, plan.steps, plan.batch_size, plan.eval_every, plan.n_train, np.dtype(plan.dtype).str)


def _compiled(plan: Plan, length: int, signature: tuple, compile_):
    """``compile_()`` (a ``(program, options_applied)`` pair), kept for later runs of an equal plan."""
    key = _plan_key(plan)
    if key is None:
        return compile_()
    key = (key, length, signature)
    if key not in _CACHE:
        _CACHE[key] = compile_()
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def _stack(rows, steps, batched: bool) -> dict:
    """Rows → ``{field: array}`` with the evaluation axis after the member axis (when batched)."""
    axis = 1 if batched else 0
    out = {f: np.stack([getattr(r, f) for r in rows], axis=axis) for f in rows[0]._fields}
    out["step"] = np.asarray(steps, np.int64)
    return out


__all__ = ["Raw", "data_arrays", "execute"]
