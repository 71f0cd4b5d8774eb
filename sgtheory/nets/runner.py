"""Running a plan: compile the single-run program (alone, or vmapped over members and split over
devices), then loop over its chunks, bringing one evaluation row per chunk back to the host.

Shared by :func:`sgtheory.nets.train` (one run, unbatched) and :func:`sgtheory.nets.train_population`
(many runs in one program); both go through :func:`execute`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from functools import partial
from typing import Callable, NamedTuple

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
    """The data set as host arrays in the program's dtype (labels one-hot for training)."""
    x = np.asarray(data.x_train, dtype)
    y = np.eye(n_out, dtype=dtype)[np.asarray(data.y_train)]
    return Data(x, y, np.asarray(data.x_test, dtype), np.asarray(data.y_test, np.int32))


def execute(plan: Plan, data: Data, seeds, hyper: Hyper, *, batched: bool, devices=None, show_progress=None,
            desc: str = "train", on_checkpoint: Callable | None = None, checkpoint_every: int | None = None) -> Raw:
    """Train ``plan`` for each seed (with ``hyper``'s rates, arrays of the seeds' length when ``batched``).

    ``on_checkpoint(steps_done, raw)`` is called at the first evaluation at or after each multiple of
    ``checkpoint_every`` steps, with the state so far.
    """
    n = len(seeds) if batched else 1
    t0 = time.perf_counter()
    if batched:
        devs, n_pad = sharding.layout(n, devices)
        mesh = sharding.mesh(devs)
        pad = np.concatenate([np.arange(n), np.zeros(n_pad - n, np.int64)])  # copies of member 0
        init_args = (np.asarray(seeds, np.uint32)[pad], Hyper(*(np.asarray(h, plan.dtype)[pad] for h in hyper)))
        state, member = _start(plan, init_args, jax.jit(jax.vmap(partial(init, plan))), ("vmap", n_pad))
        if mesh is not None:
            state, member = sharding.put(jax.device_get((state, member)), mesh, True)
        data_dev, put_start = sharding.put(data, mesh, False), partial(sharding.put, mesh_=mesh, batched_=False)

        def build(k):
            return sharding.batched(make_chunk(plan, k), mesh, (True, True, False, False))
    else:
        devs, n_pad = [jax.devices()[0]], 1
        init_args = (np.uint32(seeds[0]), Hyper(*(np.asarray(h, plan.dtype) for h in hyper)))
        state, member = _start(plan, init_args, jax.jit(partial(init, plan)), ("one",))
        data_dev, put_start = jax.tree_util.tree_map(jnp.asarray, data), jnp.asarray

        def build(k):
            return jax.jit(make_chunk(plan, k))

    platform = devs[0].platform
    args = (state, member, data_dev, put_start(np.int32(0)))
    signature = (batched, tuple(d.id for d in devs), n_pad, platform,
                 tuple((a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(data)))
    compiled, applied = {}, False
    for k in plan.lengths:
        compiled[k], applied = _compiled(plan, k, signature, lambda k=k: sharding.compile_for(
            build(k), *args, platform=platform))
    compile_s = time.perf_counter() - t0

    def host(tree):
        out = sharding.to_host(tree)
        return jax.tree_util.tree_map(lambda a: a[:n], out) if batched else out

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


def _start(plan: Plan, args, jitted, tag: tuple):
    """The initial state and member constants: ``jitted(*args)``, its compiled program kept for equal plans
    (compiling the random initialisation costs more than running it)."""
    program, _ = _compiled(plan, "init", tag, lambda: (jitted.lower(*args).compile(), False))
    return program(*args)


def _stack(rows, steps, batched: bool) -> dict:
    """Rows → ``{field: array}`` with the evaluation axis after the member axis (when batched)."""
    axis = 1 if batched else 0
    out = {f: np.stack([getattr(r, f) for r in rows], axis=axis) for f in rows[0]._fields}
    out["step"] = np.asarray(steps, np.int64)
    return out


__all__ = ["Raw", "data_arrays", "execute"]
