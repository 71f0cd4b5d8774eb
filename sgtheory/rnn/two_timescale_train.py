"""Training the two-timescale system (:mod:`sgtheory.rnn.two_timescale`): seeds as one vmapped program.

:func:`run` is one training run as a pure function of a key and of its numbers (learning rates, clips,
B's loss weight, the label noise: all data), so :func:`sweep` ``vmap``-s it over seeds, one compiled
program per mode. Each step draws a fresh batch (``fold_in(data key, step)``), computes the mode's
credit and takes one Adam step per net (and for B's DNI module) with global-norm clips. Every
``eval_every`` steps, inside the program, a fixed held-out batch gives B's and A's mean loss (nats per
tick / per step), B's error rate against its (noisy) targets, and for ``dni``/``cdni`` the cosine between
B's DNI output and the true future gradient at A's boundary states ``kT``, ``k = 1..K``.

Keys: ``split(PRNGKey(seed), 3)`` → init, training batches, held-out batch; a seed gives every mode the
same init, batches and held-out set.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sgtheory.errors import InputError
from sgtheory.rnn.cores import core_step, readout
from sgtheory.rnn.sg import apply_sg
from sgtheory.rnn.two_timescale import (
    MODES,
    Params,
    System,
    b_loss,
    boundary_states,
    conditions,
    credit,
    init_params,
    make_data,
    oracle_gradients,
    system_loss,
)
from sgtheory.rnn.window import adam_update
from sgtheory.validate import choice, int_in_range, positive
from sgtheory.validate import seeds as _seeds


class Numbers(NamedTuple):
    """A run's numbers as data: Adam rates ``lr`` (both nets) and ``sg_lr``, clip norms, ``b_weight``, ``noise``."""

    lr: Any
    sg_lr: Any
    clip: Any
    sg_clip: Any
    b_weight: Any
    noise: Any


class State(NamedTuple):
    """``params`` and the Adam states ``opt`` = ``(a, b, sg)``."""

    params: Params
    opt: Any


def init_state(system: System, mode: str, key, dtype=jnp.float32) -> State:
    """Fresh parameters (:func:`sgtheory.rnn.two_timescale.init_params`) and Adam states.

    Args:
        system: the nets and the task.
        mode: a name in :data:`MODES` (``cdni`` conditions the SG module).
        key: the JAX PRNG key.
        dtype: the parameters' dtype.

    Returns:
        The :class:`State`.
    """
    params = init_params(system, key, conditioned=mode == "cdni", dtype=dtype)
    adam = optax.scale_by_adam()
    return State(params, (adam.init(params.a), adam.init(params.b), adam.init(params.sg)))


def train_step(state: State, t, data_key, nums: Numbers, *, system: System, mode: str, batch: int):
    """One step ``t``: a fresh batch, the mode's credit, one Adam step per net and for the SG module.

    Args:
        state: the current :class:`State`.
        t: the step (folded into ``data_key`` for the batch).
        data_key: the run's data key.
        nums: the run's numbers (rates, clips, ``b_weight``, ``noise``).
        system: the nets and the task.
        mode: a name in :data:`MODES`.
        batch: sequences per batch.

    Returns:
        ``(state, (loss_a, loss_b, sg_loss))``, losses of this batch (summed, nats).
    """
    dtype = jax.tree_util.tree_leaves(state.params.a)[0].dtype
    data = make_data(system, jax.random.fold_in(data_key, t), batch, nums.noise, dtype)
    cr = credit(system, mode, state.params, data, nums.b_weight)
    p, (oa, ob, osg) = state.params, state.opt
    on = jnp.asarray(True)
    a, oa = adam_update(p.a, cr.a, oa, nums.lr, nums.clip, on)
    b, ob = adam_update(p.b, cr.b, ob, nums.lr, nums.clip, on)
    sg, osg = adam_update(p.sg, cr.sg, osg, nums.sg_lr, nums.sg_clip, on) if mode in ("dni", "cdni") else (p.sg, osg)
    return State(Params(a, b, sg), (oa, ob, osg)), (cr.loss_a, cr.loss_b, cr.sg_loss)


def evaluate(params: Params, data, *, system: System, mode: str, b_weight) -> dict:
    """Held-out numbers of ``params``.

    Args:
        params: the parameters.
        data: the held-out batch.
        system: the nets and the task.
        mode: a name in :data:`MODES`.
        b_weight: the weight of B's loss.

    Returns:
        ``b_loss`` (nats per B tick), ``a_loss`` (nats per A step), ``b_error``, ``sg_cosine``.
    """
    states = boundary_states(system, params.a, data)
    lb = b_loss(system, params.b, states[1:], data) / jnp.sum(data.mb)
    la = system_loss(system, params.a, params.b, data, 0.0) / jnp.sum(data.ma)

    def b_logits(us):
        def tick(s, u):
            s = core_step("lstm", params.b, s, u)
            return s, readout("lstm", params.b, s)

        return jax.lax.scan(tick, jnp.zeros((us.shape[1], system.b.state_size), us.dtype), us)[1]

    wrong = (jnp.argmax(b_logits(states[1:]), axis=-1) != data.yb) * data.mb
    out = {"b_loss": lb, "a_loss": la, "b_error": jnp.sum(wrong) / jnp.sum(data.mb),
           "sg_cosine": jnp.zeros((), lb.dtype)}
    if mode in ("dni", "cdni"):
        g = oracle_gradients(system, params.a, params.b, data, b_weight)[1:]
        m = apply_sg(params.sg, states[1:], conditions(system, data)[1:] if mode == "cdni" else None)
        out["sg_cosine"] = jnp.sum(g * m) / (jnp.linalg.norm(g) * jnp.linalg.norm(m) + 1e-30)
    return out


def run(key, nums: Numbers, *, system: System, mode: str, steps: int, batch: int, eval_every: int,
        eval_batch: int, dtype=jnp.float32) -> dict:
    """One run; returns metrics over the ``E = steps / eval_every`` evaluations (see the module docstring).

    Args:
        key: the run's key; nums: :class:`Numbers`; system, mode: the nets and the mode.
        steps (a multiple of ``eval_every``), batch, eval_every, eval_batch: budget and sizes; dtype.

    Returns:
        ``step``, ``b_loss``, ``a_loss``, ``b_error``, ``sg_cosine`` (held out), ``train_b_loss`` (mean per
        tick over the last ``eval_every`` training batches) — each ``(E,)``.
    """
    k_init, k_data, k_eval = jax.random.split(key, 3)
    state = init_state(system, mode, k_init, dtype)
    held_out = make_data(system, k_eval, eval_batch, nums.noise, dtype)

    def chunk(state, e):
        ts = e * eval_every + jnp.arange(eval_every)
        state, (_, lb, _) = jax.lax.scan(
            lambda st, t: train_step(st, t, k_data, nums, system=system, mode=mode, batch=batch), state, ts)
        ev = evaluate(state.params, held_out, system=system, mode=mode, b_weight=nums.b_weight)
        return state, {"step": (e + 1) * eval_every, "train_b_loss": jnp.mean(lb) / (batch * system.ticks), **ev}

    return jax.lax.scan(chunk, state, jnp.arange(steps // eval_every))[1]


def sweep(system: System, modes, seeds, *, steps: int, eval_every: int, batch: int = 32, lr: float = 3e-3,
          sg_lr: float | None = None, clip: float = 1.0, sg_clip: float = 1.0, b_weight: float = 1.0,
          noise: float = 0.2, eval_batch: int = 256, dtype=jnp.float32) -> dict:
    """Every mode × seed: one vmapped, jit-compiled program per mode.

    Args:
        system: the nets and the task; modes: names in :data:`MODES`; seeds: integer seeds.
        steps, eval_every: training batches (a multiple of ``eval_every``) and the evaluation interval.
        batch, eval_batch: sequences per training / held-out batch.
        lr, sg_lr (default ``lr``), clip, sg_clip: Adam rates and global-norm clips.
        b_weight: weight of B's loss (> 0); noise: probability that B's target is a random symbol, in [0, 1).
        dtype: float32 (default) or float64.

    Returns:
        ``{"metrics": {mode: {name: (S, E) numpy array}}, "step": (E,), "seconds": {mode: wall seconds}}``.
    """
    system.check()
    modes = [choice(m, "mode", MODES) for m in modes]
    seeds = _seeds(seeds, "seeds")
    if not modes:
        raise InputError("two-timescale sweep: needs at least one mode")
    steps, eval_every = int_in_range(steps, "steps", 1), int_in_range(eval_every, "eval every", 1)
    if steps % eval_every:
        raise InputError(f"steps ({steps}) must be a multiple of eval every ({eval_every})")
    batch, eval_batch = int_in_range(batch, "batch", 1), int_in_range(eval_batch, "eval batch", 1)
    noise = float(noise)
    if not 0.0 <= noise < 1.0:
        raise InputError(f"noise: must be in [0, 1), got {noise}")
    nums = Numbers(*(jnp.full(len(seeds), v, dtype) for v in (
        positive(lr, "lr"), positive(lr if sg_lr is None else sg_lr, "sg lr"), positive(clip, "clip"),
        positive(sg_clip, "sg clip"), positive(b_weight, "b weight"), noise)))
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    out, seconds = {}, {}
    for mode in modes:
        t0 = time.perf_counter()
        fn = jax.jit(jax.vmap(lambda k, n, mode=mode: run(k, n, system=system, mode=mode, steps=steps, batch=batch,
                                                           eval_every=eval_every, eval_batch=eval_batch, dtype=dtype)))
        out[mode] = {k: np.asarray(v) for k, v in fn(keys, nums).items()}
        seconds[mode] = round(time.perf_counter() - t0, 2)
    step = next(iter(out.values())).pop("step")[0]
    for m in out.values():
        m.pop("step", None)
    return {"metrics": out, "step": step, "seconds": seconds}


__all__ = ["Numbers", "State", "evaluate", "init_state", "run", "sweep", "train_step"]
