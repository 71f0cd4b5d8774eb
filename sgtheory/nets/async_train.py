"""Asynchronous training as one pure, vmappable program: DNI's complete-unlock experiment.

Jaderberg et al. (2017, arXiv 1608.05343) train an MNIST net in which each layer, after every
forward pass, does its backward pass and updates only with probability ``p_update``; with
synthetic gradients (``M``) and synthetic inputs (``I + M``) the layers are fully decoupled.
:func:`async_run` is that training loop for one run — one seed, one ``p_update``, one pair of
learning rates — as a pure function of a key and of those numbers (all data, no Python
constants baked into the trace), so :func:`async_sweep` runs a whole grid of seeds × ``p_update``
as one ``vmap``-ped, jit-compiled program per method.

One step ``t`` (:func:`async_step`): a minibatch (a fresh permutation of the training set each
epoch); the real net's forward record (:func:`sgtheory.nets.tape.record`; batch-norm running
statistics follow it); the method's credit — for methods with input models, computed on the net cut
at its interfaces (:mod:`sgtheory.nets.methods.unlock`); then each layer ``j`` updates with Adam
only if ``layer_mask(skip_key, t, p)[j - 1]`` (:func:`sgtheory.nets.async_updates.layer_mask`): its
weights, the SG module it learns from and its input model together; a layer that did not draw an
update keeps its parameters and its optimiser state bit for bit. ``p_update = 1`` is plain Adam.

Every ``eval_every`` steps, inside the program: test error of the real composed net (batch-norm
in evaluation mode), mean train loss, SG loss and input-model loss over the last ``eval_every``
steps, and for SG methods the train/apply shift (:func:`sgtheory.nets.sg_shift.train_apply_shift`)
on a fixed training batch.

Keys: ``split(PRNGKey(seed), 5)`` → init, method state, data order, skips, probe batch. Runs of one
seed at different ``p_update`` share init, data order and skip draws (``u < p`` with the same
uniforms, so the steps a layer updates at ``p = 0.05`` are a subset of those at ``p = 0.2``).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sgtheory.data import Dataset
from sgtheory.errors import InputError
from sgtheory.nets.async_updates import async_layers, check_probability
from sgtheory.nets.methods import Method, MethodState, get
from sgtheory.nets.methods.synthetic import SyntheticGradient
from sgtheory.nets.mlp import MLPConfig, forward, init_bn_state, init_mlp
from sgtheory.nets.sg_shift import train_apply_shift
from sgtheory.nets.tape import record
from sgtheory.nets.train import check_data_fits
from sgtheory.validate import choice, int_in_range, positive
from sgtheory.validate import seeds as _seeds


class Hyper(NamedTuple):
    """The numbers of one run that are data: ``p_update`` in (0, 1], ``lr`` (net), ``sg_lr`` (SG and
    input models). Scalars, or ``(R,)`` arrays under :func:`jax.vmap`."""

    p_update: Any
    lr: Any
    sg_lr: Any


class RunKeys(NamedTuple):
    """A run's keys, from ``split(key, 5)``."""

    init: Any
    method: Any
    data: Any
    skip: Any
    probe: Any


class AsyncRun(NamedTuple):
    """A run's state: ``params``, ``bn`` (running statistics), ``learned`` / ``fixed`` (the method's
    state), ``opt_net`` / ``opt_method`` (the per-layer asynchronous Adam states) and ``perm`` (this
    epoch's order of the training set)."""

    params: Any
    bn: Any
    learned: Any
    fixed: Any
    opt_net: Any
    opt_method: Any
    perm: Any


def _optimizers(hyper: Hyper, skip_key):
    """Per-layer asynchronous Adam for the net and for the method state, sharing the skip draws."""
    return (async_layers(optax.adam(hyper.lr), hyper.p_update, key=skip_key),
            async_layers(optax.adam(hyper.sg_lr), hyper.p_update, key=skip_key))


def init_run(key, config: MLPConfig, method: Method, n_train: int, *, dtype=jnp.float32) -> tuple[AsyncRun, RunKeys]:
    """A fresh run from ``key``: parameters, method state, Adam states and the first epoch's order.

    Args:
        key: the run's JAX key; config: the net; method: the credit-assignment method;
        n_train: training-set size; dtype: parameter dtype.

    Returns:
        ``(run, keys)``.
    """
    keys = RunKeys(*jax.random.split(key, 5))
    params = init_mlp(config, key=keys.init, dtype=dtype)
    mstate = method.init(config, key=keys.method, dtype=dtype)
    opt_net, opt_method = _optimizers(Hyper(1.0, 1.0, 1.0), keys.skip)  # init does not read the numbers
    run = AsyncRun(params, init_bn_state(config, dtype), mstate.learned, mstate.fixed, opt_net.init(params),
                   opt_method.init(mstate.learned), jnp.arange(n_train))
    return run, keys


SCHEDULES = ("constant", "step")


def rate_scale(t, steps: int, schedule: str = "constant"):
    """The learning-rate factor at step ``t``.

    DNI's feed-forward decay counts steps, not a layer's own updates, so all ``p_update`` decay together.

    Args:
        t: the step (a number or a traced array).
        steps: the run's steps.
        schedule: ``"constant"`` (factor 1) or ``"step"`` (÷10 at 60% and again at 80% of the steps,
            Jaderberg et al. 2017's 300k and 400k of 500k).

    Returns:
        The factor.
    """
    if schedule == "constant":
        return 1.0
    return 0.1 ** ((t >= int(0.6 * steps)).astype(jnp.float32) + (t >= int(0.8 * steps)).astype(jnp.float32))


def async_step(run: AsyncRun, t, hyper: Hyper, keys: RunKeys, x_all, y_all, *, config: MLPConfig, method: Method,
               batch_size: int, scale=1.0) -> tuple[AsyncRun, tuple]:
    """One training step ``t`` (0-based) of one run.

    Args:
        run: the state; t: the step; hyper: ``p_update`` and learning rates; keys: the run's keys.
        x_all, y_all: the training set ``(N, n_in)`` and its one-hot labels ``(N, C)``.
        config, method, batch_size: static settings.
        scale: factor on both learning rates at this step (:func:`rate_scale`); Adam's rate only scales
            its step, so a per-step factor is exactly a step schedule.

    Returns:
        ``(run, (train_loss, sg_loss, input_loss))`` — the losses of this step's batch.
    """
    n_train = x_all.shape[0]
    per_epoch = n_train // batch_size
    epoch, pos = t // per_epoch, t % per_epoch
    perm = jax.lax.cond(pos == 0, lambda: jax.random.permutation(jax.random.fold_in(keys.data, epoch), n_train),
                        lambda: run.perm)
    idx = jax.lax.dynamic_slice(perm, (pos * batch_size,), (batch_size,))
    tape, bn = record(run.params, run.bn, x_all[idx], y_all[idx], config)
    cr = method.credit(MethodState(run.learned, run.fixed), tape)
    opt_net, opt_method = _optimizers(hyper._replace(lr=hyper.lr * scale, sg_lr=hyper.sg_lr * scale), keys.skip)
    upd, opt_net_state = opt_net.update(cr.grads, run.opt_net, run.params)
    upd_m, opt_method_state = opt_method.update(cr.state_grads, run.opt_method, run.learned)
    run = AsyncRun(optax.apply_updates(run.params, upd), bn, optax.apply_updates(run.learned, upd_m), run.fixed,
                   opt_net_state, opt_method_state, perm)
    return run, (tape.loss, cr.sg_loss, cr.input_loss)


def _evaluate(run: AsyncRun, x_test, y_test, x_probe, y_probe, config: MLPConfig, method: Method) -> dict:
    logits, _ = forward(run.params, x_test, config, state=run.bn or None, train=False)
    out = {"test_error": jnp.mean(jnp.argmax(logits, axis=1) != y_test)}
    if isinstance(method, SyntheticGradient):
        shift = train_apply_shift(method, MethodState(run.learned, run.fixed), run.params, x_probe, y_probe, config)
        out.update({f"sg_{k}" if k != "input_error" else k: v for k, v in shift.items()})
    return out


def async_run(key, hyper: Hyper, x_all, y_all, x_test, y_test, *, config: MLPConfig, method: Method, steps: int,
              eval_every: int, batch_size: int, schedule: str = "constant", dtype=jnp.float32) -> tuple[AsyncRun, dict]:
    """One whole run, as a pure function of ``key`` and ``hyper`` (``vmap`` it over both).

    Args:
        key: the run's key (see the module docstring); hyper: :class:`Hyper`.
        x_all, y_all: training inputs ``(N, n_in)`` and one-hot labels ``(N, C)`` (dtype ``dtype``).
        x_test, y_test: test inputs ``(M, n_in)`` and integer labels ``(M,)``.
        config, method: the net and its credit-assignment method.
        steps, eval_every: training steps (a multiple of ``eval_every``) and the evaluation interval.
        batch_size: minibatch size (≤ N); schedule: ``constant`` or ``step`` (:func:`rate_scale`);
        dtype: parameter dtype.

    Returns:
        ``(run, metrics)``: the final state and a dict of arrays over the ``E = steps / eval_every``
        evaluations: ``step``, ``test_error``, ``train_loss``, ``sg_loss``, ``input_loss`` ``(E,)``
        and, for SG methods, ``input_error``, ``sg_train_loss``, ``sg_apply_loss``, ``sg_cosine``
        ``(E, K)`` over the SG layers (top first; see :func:`sgtheory.nets.sg_shift.train_apply_shift`).
    """
    run, keys = init_run(key, config, method, x_all.shape[0], dtype=dtype)
    probe = jax.random.choice(keys.probe, x_all.shape[0], (batch_size,), replace=False)
    x_probe, y_probe = x_all[probe], y_all[probe]

    def chunk(run, e):
        ts = e * eval_every + jnp.arange(eval_every)
        run, (loss, sg, inp) = jax.lax.scan(
            lambda r, t: async_step(r, t, hyper, keys, x_all, y_all, config=config, method=method,
                                    batch_size=batch_size, scale=rate_scale(t, steps, schedule)), run, ts)
        ev = _evaluate(run, x_test, y_test, x_probe, y_probe, config, method)
        return run, {"step": (e + 1) * eval_every, "train_loss": jnp.mean(loss), "sg_loss": jnp.mean(sg),
                     "input_loss": jnp.mean(inp), **ev}

    return jax.lax.scan(chunk, run, jnp.arange(steps // eval_every))


class SweepResult(NamedTuple):
    """``metrics``: name → numpy array with leading axes ``(P, S)`` (``p_update`` × seed) then as in
    :func:`async_run`; ``p_update``, ``seeds``; ``method``; ``config``; ``info``: settings and timings."""

    metrics: dict
    p_update: np.ndarray
    seeds: np.ndarray
    method: Method
    config: MLPConfig
    info: dict


def async_sweep(data: Dataset, config: MLPConfig, method: Method | str, *, p_update, seeds, steps: int,
                eval_every: int, lr: float = 1e-3, sg_lr: float | None = None, batch_size: int = 128,
                schedule: str = "constant", dtype=jnp.float32) -> SweepResult:
    """Every ``p_update`` × seed run of ``method`` on ``data``, as one vmapped jit-compiled program.

    Args:
        data: the data set; config: the net (its inputs and outputs must match ``data``).
        method: a :class:`Method` or a name in :data:`sgtheory.nets.methods.METHODS`.
        p_update: update probabilities, each in (0, 1]; seeds: integer seeds (≥ 1 of each).
        steps: training steps per run, a multiple of ``eval_every``; eval_every: evaluation interval.
        lr, sg_lr: Adam learning rates of the net and of the method state (default ``lr``).
        batch_size: minibatch size; schedule: ``constant`` or ``step`` (:func:`rate_scale`);
        dtype: float32 (default) or float64.

    Returns:
        A :class:`SweepResult`; ``info["train_seconds"]`` includes compilation.
    """
    method = get(method) if isinstance(method, str) else method
    probs = [check_probability(p, "p_update") for p in np.atleast_1d(np.asarray(p_update, dtype=float))]
    seeds = _seeds(seeds, "seeds")
    if not probs:
        raise InputError("async sweep: needs at least one p_update")
    steps, eval_every = int_in_range(steps, "steps", 1), int_in_range(eval_every, "eval every", 1)
    if steps % eval_every:
        raise InputError(f"steps ({steps}) must be a multiple of eval every ({eval_every})")
    batch_size = check_data_fits(data, config, batch_size)
    choice(schedule, "schedule", SCHEDULES)
    lr = positive(lr, "lr")
    sg_lr = lr if sg_lr is None else positive(sg_lr, "sg lr")
    if isinstance(method, SyntheticGradient):
        method.sg_layers(config.depth)  # an SG layer outside the net fails here, before compiling

    P, S = len(probs), len(seeds)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds] * P)  # run r = (p index r // S, seed index r % S)
    hyper = Hyper(jnp.repeat(jnp.asarray(probs, dtype), S), jnp.full(P * S, lr, dtype), jnp.full(P * S, sg_lr, dtype))
    x_all = jnp.asarray(data.x_train, dtype)
    y_all = jax.nn.one_hot(data.y_train, config.n_out, dtype=dtype)
    x_test, y_test = jnp.asarray(data.x_test, dtype), jnp.asarray(data.y_test)

    def one(key, hyper):
        _, metrics = async_run(key, hyper, x_all, y_all, x_test, y_test, config=config, method=method, steps=steps,
                               eval_every=eval_every, batch_size=batch_size, schedule=schedule, dtype=dtype)
        return metrics

    t0 = time.perf_counter()
    metrics = jax.jit(jax.vmap(one))(keys, hyper)
    metrics = {k: np.asarray(v).reshape((P, S) + v.shape[1:]) for k, v in metrics.items()}
    seconds = time.perf_counter() - t0
    metrics["step"] = metrics["step"][0, 0]
    info = {"dataset": data.name, "steps": steps, "eval_every": eval_every, "batch_size": batch_size, "lr": lr,
            "sg_lr": sg_lr, "schedule": schedule, "optimizer": "adam (per layer, asynchronous)", "runs": P * S,
            "seconds": round(seconds, 2), "backend": jax.default_backend()}
    return SweepResult(metrics, np.asarray(probs), np.asarray(seeds), method, config, info)


__all__ = ["SCHEDULES", "AsyncRun", "Hyper", "RunKeys", "SweepResult", "async_run", "async_step", "async_sweep",
           "init_run", "rate_scale"]
