"""Training an MLP with any credit-assignment method: a jit-compiled ``lax.scan`` loop with optax.

One step: sample a minibatch (a fresh permutation of the training set each epoch), record the
forward pass (:func:`sgtheory.nets.tape.record`), ask the method for its credit, and apply optax
updates to the net's parameters and (with their own learning rate) to the method's learned state.
Every ``eval_every`` steps the loop leaves the compiled scan and records: mean train loss and
SG loss over those steps, test error (batch-norm in evaluation mode), and for each hidden layer the
cosine between the method's signal and the true gradient ``∂ℓ/∂h_i`` on a fixed training batch.
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
from sgtheory.nets.methods import Method, MethodState, get
from sgtheory.nets.methods.chain_rule import Backprop
from sgtheory.nets.mlp import MLPConfig, forward, init_bn_state, init_mlp
from sgtheory.nets.tape import record
from sgtheory.progress import progress
from sgtheory.validate import choice, int_in_range, positive

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")


class TrainResult(NamedTuple):
    """``params``, ``bn_state``, ``method_state``; ``metrics``: name → numpy array over evaluations
    (``step``, ``train_loss``, ``test_error``, ``sg_loss`` each ``(E,)``, ``cosine`` ``(E, depth)``);
    ``config``: the :class:`MLPConfig`; ``method``; ``info``: settings and timings (JSON-able)."""

    params: Any
    bn_state: Any
    method_state: MethodState
    metrics: dict
    config: MLPConfig
    method: Method
    info: dict


def learning_rate(lr: float, schedule: str = "constant", steps: int | None = None):
    """``lr`` itself (``constant``) or an optax schedule decaying it to 0 over ``steps`` (``cosine``,
    Loshchilov & Hutter 2017)."""
    choice(schedule, "schedule", SCHEDULES)
    rate = positive(lr, "lr")
    return optax.cosine_decay_schedule(rate, int_in_range(steps, "steps", 1)) if schedule == "cosine" else rate


def make_optimizer(name, lr) -> optax.GradientTransformation:
    """``adam`` (optax defaults β = (0.9, 0.999)) or plain ``sgd`` at learning rate ``lr``.

    ``lr``: a number or an optax schedule (see :func:`learning_rate`). ``name`` may also be a
    factory ``lr -> optax.GradientTransformation`` (e.g. a step-decay schedule, or
    :func:`sgtheory.nets.async_updates.async_layers` around Adam).
    """
    if callable(name):
        return name(lr)
    choice(name, "optimizer", OPTIMIZERS)
    rate = lr if callable(lr) else positive(lr, "lr")
    return optax.adam(rate) if name == "adam" else optax.sgd(rate)


def _cosine(a, b):
    return jnp.sum(a * b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)


def _build(config: MLPConfig, method: Method, opt, opt_sg, fixed, batch_size: int, n_train: int, data_key):
    steps_per_epoch = n_train // batch_size

    def one_step(carry, s, x_all, y_all):
        params, bn, learned, (opt_state, sg_state), perm = carry
        epoch, pos = s // steps_per_epoch, s % steps_per_epoch
        perm = jax.lax.cond(pos == 0, lambda: jax.random.permutation(jax.random.fold_in(data_key, epoch), n_train),
                            lambda: perm)
        idx = jax.lax.dynamic_slice(perm, (pos * batch_size,), (batch_size,))
        tape, bn = record(params, bn, x_all[idx], y_all[idx], config)
        cr = method.credit(MethodState(learned, fixed), tape)
        updates, opt_state = opt.update(cr.grads, opt_state, params)
        sg_updates, sg_state = opt_sg.update(cr.state_grads, sg_state, learned)
        params, learned = optax.apply_updates(params, updates), optax.apply_updates(learned, sg_updates)
        return (params, bn, learned, (opt_state, sg_state), perm), (tape.loss, cr.sg_loss)

    def run_chunk(carry, x_all, y_all, start, length):
        return jax.lax.scan(lambda c, s: one_step(c, s, x_all, y_all), carry, start + jnp.arange(length))

    def test_error(params, bn, x, y):
        logits, _ = forward(params, x, config, state=bn or None, train=False)
        return jnp.mean(jnp.argmax(logits, axis=1) != y)

    def alignment(params, bn, learned, x, y1):
        tape, _ = record(params, bn, x, y1, config)
        mine = method.credit(MethodState(learned, fixed), tape).signals
        true = Backprop().credit(MethodState({}, {}), tape).signals
        return jnp.stack([_cosine(a, b) for a, b in zip(mine, true)])

    return (jax.jit(run_chunk, static_argnums=4), jax.jit(test_error), jax.jit(alignment))


def train(data: Dataset, config: MLPConfig, method: Method | str, *, steps: int, batch_size: int = 128,
          optimizer="adam", lr: float = 1e-3, sg_lr: float | None = None, schedule: str = "constant",
          eval_every: int = 500, seed: int = 0,
          show_progress: bool | None = None, checkpoint_dir=None, checkpoint_every: int | None = None) -> TrainResult:
    """Train ``config``'s MLP on ``data`` with ``method`` for ``steps`` minibatch steps.

    ``method``: a :class:`Method` or a name from :data:`sgtheory.nets.methods.METHODS`.
    ``optimizer`` (``adam`` | ``sgd``, or a factory ``rate -> optax.GradientTransformation``) at
    learning rate ``lr`` trains the net; the same optimiser at ``sg_lr`` (default ``lr``) trains the
    method's learned state (its SG modules); ``schedule`` (``constant`` | ``cosine``) applies to both.
    Everything random derives from ``jax.random.PRNGKey(seed)`` (init, method state, batches),
    so the same arguments give the same numbers. With ``checkpoint_dir`` and ``checkpoint_every``
    a checkpoint is (over)written there at the first evaluation at or after each multiple of
    ``checkpoint_every`` steps. ``info["steps_per_second"]`` counts training steps only (not
    compilation or evaluation).
    """
    method = get(method) if isinstance(method, str) else method
    steps = int_in_range(steps, "steps", 1)
    batch_size = int_in_range(batch_size, "batch size", 1)
    eval_every = int_in_range(eval_every, "eval every", 1)
    n_train = data.x_train.shape[0]
    if batch_size > n_train:
        raise InputError(f"batch size {batch_size} exceeds the {n_train} training examples of {data.name}")
    if data.x_train.shape[1] != config.n_in or data.n_classes != config.n_out:
        raise InputError(f"net has {config.n_in} inputs / {config.n_out} outputs but {data.name} has "
                         f"{data.x_train.shape[1]} features / {data.n_classes} classes")
    sg_lr = lr if sg_lr is None else sg_lr
    if callable(optimizer) and schedule != "constant":
        raise InputError("schedule: a custom optimizer factory brings its own schedule")
    rates = [learning_rate(r, schedule, steps) for r in (lr, sg_lr)] if not callable(optimizer) else [lr, sg_lr]
    opt, opt_sg = (make_optimizer(optimizer, r) for r in rates)
    k_init, k_method, k_data, k_probe = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = init_mlp(config, key=k_init)
    mstate = method.init(config, key=k_method)
    bn = init_bn_state(config)
    run_chunk, test_error, alignment = _build(config, method, opt, opt_sg, mstate.fixed, batch_size, n_train, k_data)

    f32 = jnp.float32
    x_all, y_all = jnp.asarray(data.x_train, f32), jax.nn.one_hot(data.y_train, config.n_out, dtype=f32)
    x_test, y_test = jnp.asarray(data.x_test, f32), jnp.asarray(data.y_test)
    probe = jax.random.choice(k_probe, n_train, (batch_size,), replace=False)
    x_probe, y_probe = x_all[probe], y_all[probe]  # a fixed random training batch for the cosines
    carry = (params, bn, mstate.learned, (opt.init(params), opt_sg.init(mstate.learned)), jnp.arange(n_train))

    t0 = time.perf_counter()
    lengths = sorted({min(eval_every, steps), steps % eval_every} - {0})
    compiled = {n: run_chunk.lower(carry, x_all, y_all, jnp.asarray(0), n).compile() for n in lengths}
    compile_s = time.perf_counter() - t0

    opt_name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", "custom")
    info = {"dataset": data.name, "steps": steps, "batch_size": batch_size, "optimizer": opt_name, "lr": float(lr),
            "sg_lr": float(sg_lr), "schedule": schedule, "eval_every": eval_every, "seed": int(seed), "backend": jax.default_backend()}
    rows, train_s, done, next_ckpt = [], 0.0, 0, checkpoint_every
    with progress(steps, desc=f"train {method.name}", enabled=show_progress, unit="step") as bar:
        while done < steps:
            n = min(eval_every, steps - done)
            t1 = time.perf_counter()
            carry, (losses, sg_losses) = compiled[n](carry, x_all, y_all, jnp.asarray(done))
            losses.block_until_ready()
            train_s += time.perf_counter() - t1
            done += n
            params, bn, learned = carry[:3]
            err = float(test_error(params, bn, x_test, y_test))
            cos = np.asarray(alignment(params, bn, learned, x_probe, y_probe))
            rows.append((done, float(jnp.mean(losses)), err, float(jnp.mean(sg_losses)), cos))
            bar.update(n)
            bar.set_postfix(loss=f"{rows[-1][1]:.3f}", test_err=f"{err:.3f}")
            if checkpoint_dir is not None and checkpoint_every and done >= next_ckpt:
                from sgtheory.nets.checkpoint import save_checkpoint

                save_checkpoint(checkpoint_dir, _result(carry, mstate, rows, config, method, info))
                next_ckpt = (done // checkpoint_every + 1) * checkpoint_every
    info.update({"compile_seconds": round(compile_s, 3), "train_seconds": round(train_s, 3),
                 "steps_per_second": round(steps / max(train_s, 1e-9), 2)})
    return _result(carry, mstate, rows, config, method, info)


def _result(carry, mstate, rows, config, method, info) -> TrainResult:
    params, bn, learned = carry[:3]
    metrics = {"step": np.array([r[0] for r in rows], np.int64),
               "train_loss": np.array([r[1] for r in rows]), "test_error": np.array([r[2] for r in rows]),
               "sg_loss": np.array([r[3] for r in rows]), "cosine": np.stack([r[4] for r in rows])}
    return TrainResult(params, bn, MethodState(learned, mstate.fixed), metrics, config, method, info)
