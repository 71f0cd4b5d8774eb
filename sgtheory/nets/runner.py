"""Running a plan: compile the single-run program (alone, or vmapped over members and split over
devices), then loop over its chunks, bringing one evaluation row per chunk back to the host.

Shared by :func:`sgtheory.nets.train` (one run, unbatched) and :func:`sgtheory.nets.train_population`
(many runs in one program); both go through :func:`execute`.
"""

from __future__ import annotations

import time
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
    if batched:
        devs, n_pad = sharding.layout(n, devices)
        mesh = sharding.mesh(devs)
        pad = np.concatenate([np.arange(n), np.zeros(n_pad - n, np.int64)])  # copies of member 0

        def member_args(a):
            return sharding.put(np.asarray(a)[pad], mesh, True)

        init_fn = sharding.batched(partial(init, plan), mesh, (True, True))
        chunks = {k: sharding.batched(make_chunk(plan, k), mesh, (True, True, False, False)) for k in plan.lengths}
        args = (member_args(np.asarray(seeds, np.uint32)), Hyper(*(member_args(h) for h in hyper)))
        data_dev, platform = sharding.put(data, mesh, False), devs[0].platform
        put_start = partial(sharding.put, mesh_=mesh, batched_=False)
    else:
        devs, n_pad = [jax.devices()[0]], 1
        init_fn = jax.jit(partial(init, plan))
        chunks = {k: jax.jit(make_chunk(plan, k)) for k in plan.lengths}
        args = (np.uint32(seeds[0]), Hyper(*(jnp.asarray(h, plan.dtype) for h in hyper)))
        data_dev, platform = jax.tree_util.tree_map(jnp.asarray, data), devs[0].platform
        put_start = jnp.asarray

    t0 = time.perf_counter()
    init_c, applied = sharding.compile_for(init_fn, *args, platform=platform)
    state, member = init_c(*args)
    start0 = put_start(np.int32(0))
    compiled = {k: sharding.compile_for(f, state, member, data_dev, start0, platform=platform)[0]
                for k, f in chunks.items()}
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


def _stack(rows, steps, batched: bool) -> dict:
    """Rows → ``{field: array}`` with the evaluation axis after the member axis (when batched)."""
    axis = 1 if batched else 0
    out = {f: np.stack([getattr(r, f) for r in rows], axis=axis) for f in rows[0]._fields}
    out["step"] = np.asarray(steps, np.int64)
    return out


__all__ = ["Raw", "data_arrays", "execute"]
