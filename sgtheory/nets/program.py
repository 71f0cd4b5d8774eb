"""One training run as pure functions: the program that :func:`train` compiles and populations ``vmap``.

A run is ``init(seed, hyper) -> (state, member)`` followed by chunks
``chunk(state, member, data, start) -> (state, row)``, each ``length`` minibatch steps (a compiled
``lax.scan``) ending with one evaluation ``row``. Everything that differs between two runs of the
same plan is data: the seed, the learning rates (:class:`Hyper`), the keys and the method's fixed
state, so one compiled program serves a whole population.

One step: sample a minibatch (a fresh permutation of the training set each epoch), record the
forward pass (:func:`sgtheory.nets.tape.record`), ask the method for its credit, and apply optax
updates to the net's parameters and (at their own learning rate) to the method's learned state.
Each evaluation records: mean train loss and SG loss over the chunk, test error (batch-norm in
evaluation mode), for each hidden layer the cosine between the method's signal and the true
gradient ``∂ℓ/∂h_i`` on a fixed random training batch, and whether every number is still finite
(when not, the test error and the cosines are NaN too: they mean nothing for a diverged net).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sgtheory.nets.methods import Method, MethodState
from sgtheory.nets.methods.chain_rule import Backprop
from sgtheory.nets.mlp import MLPConfig, forward, init_bn_state, init_mlp
from sgtheory.nets.tape import record

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Plan:
    """What a compiled program depends on (shared by every member of a population).

    ``optimizer``: ``"adam"`` | ``"sgd"`` or a factory ``rate -> optax.GradientTransformation``;
    ``schedule``: ``"constant"`` | ``"cosine"`` (built-in optimisers only); ``lengths``: the chunk
    lengths to compile (``eval_every`` and the remainder of ``steps``).
    """

    config: MLPConfig
    method: Method
    optimizer: Any
    schedule: str
    steps: int
    batch_size: int
    eval_every: int
    n_train: int
    dtype: Any

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(sorted({min(self.eval_every, self.steps), self.steps % self.eval_every} - {0}))

    @property
    def optimizer_name(self) -> str:
        o = self.optimizer
        return o if isinstance(o, str) else getattr(o, "__name__", "custom")


class Hyper(NamedTuple):
    """Numeric settings of one run, as arrays: ``lr`` (the net's) and ``sg_lr`` (the method's learned state)."""

    lr: Any
    sg_lr: Any


class Member(NamedTuple):
    """What stays fixed along one run: the method's ``fixed`` state, the minibatch ``data_key``, the
    row indices of the ``probe`` batch for the cosines, and the ``hyper`` settings."""

    fixed: Any
    data_key: Any
    probe: Any
    hyper: Hyper


class State(NamedTuple):
    """What changes along one run: ``params``, ``bn`` statistics, the method's ``learned`` state,
    the two optimiser states and the current epoch's permutation ``perm``."""

    params: Any
    bn: Any
    learned: Any
    opt_state: Any
    sg_opt_state: Any
    perm: Any


class Data(NamedTuple):
    """Training inputs ``x`` ``(n, n_in)`` and one-hot labels ``y`` ``(n, C)``; test ``x_test``, labels ``y_test``."""

    x: Any
    y: Any
    x_test: Any
    y_test: Any


class Row(NamedTuple):
    """One evaluation: ``train_loss``, ``sg_loss`` (chunk means), ``test_error``, ``cosine`` ``(D,)``, ``finite``."""

    train_loss: Any
    sg_loss: Any
    test_error: Any
    cosine: Any
    finite: Any


def rate(plan: Plan, lr):
    """The learning rate under ``plan.schedule``; no validation here.

    Args:
        plan: the training program's settings.
        lr: the base rate (a number, an array or a tracer).

    Returns:
        The rate, or an optax schedule of it.
    """
    if callable(plan.optimizer) or plan.schedule == "constant":
        return lr
    return optax.cosine_decay_schedule(lr, plan.steps)


def optimizer(name, lr) -> optax.GradientTransformation:
    """``adam`` (optax defaults) or ``sgd`` at rate ``lr``, or ``name(lr)`` for a factory; no validation here.

    Args:
        name: ``"adam"``, ``"sgd"`` or a factory ``rate -> optax.GradientTransformation``.
        lr: the rate (a number, an array or a tracer).

    Returns:
        The optax transformation.
    """
    if callable(name):
        return name(lr)
    return optax.adam(lr) if name == "adam" else optax.sgd(lr)


def _optimizers(plan: Plan, hyper: Hyper):
    return optimizer(plan.optimizer, rate(plan, hyper.lr)), optimizer(plan.optimizer, rate(plan, hyper.sg_lr))


def keys(seed):
    """The four keys of a run from its seed: init, method state, minibatch order, probe batch.

    Args:
        seed: an int (a traced one under ``vmap``).

    Returns:
        The four JAX PRNG keys, stacked.
    """
    return jax.random.split(jax.random.PRNGKey(seed), 4)


def init(plan: Plan, seed, hyper: Hyper) -> tuple[State, Member]:
    """The start of the run with ``seed`` and ``hyper``.

    Args:
        plan: the training program's settings.
        seed: an int or an int array (vmapped over members).
        hyper: the run's rates.

    Returns:
        ``(State, Member)``.
    """
    k_init, k_method, k_data, k_probe = keys(seed)
    params = init_mlp(plan.config, key=k_init, dtype=plan.dtype)
    mstate = plan.method.init(plan.config, key=k_method, dtype=plan.dtype)
    opt, opt_sg = _optimizers(plan, hyper)
    probe = jax.random.choice(k_probe, plan.n_train, (plan.batch_size,), replace=False)
    state = State(params, init_bn_state(plan.config, plan.dtype), mstate.learned, opt.init(params),
                  opt_sg.init(mstate.learned), jnp.arange(plan.n_train))
    return state, Member(mstate.fixed, k_data, probe, hyper)


def _cosine(a, b):
    return jnp.sum(a * b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)


def _all_finite(tree):
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def make_chunk(plan: Plan, length: int) -> Callable:
    """A function running ``length`` training steps and then one evaluation.

    Args:
        plan: the training program's settings.
        length: steps per chunk.

    Returns:
        ``chunk(state, member, data, start) -> (state, row)``: steps ``start .. start + length - 1``, then
        the evaluation row.
    """
    config, method = plan.config, plan.method
    steps_per_epoch, n_train, batch = plan.n_train // plan.batch_size, plan.n_train, plan.batch_size

    def step(carry: State, s, member: Member, data: Data):
        opt, opt_sg = _optimizers(plan, member.hyper)
        epoch, pos = s // steps_per_epoch, s % steps_per_epoch
        perm = jax.lax.cond(pos == 0,
                            lambda: jax.random.permutation(jax.random.fold_in(member.data_key, epoch), n_train),
                            lambda: carry.perm)
        idx = jax.lax.dynamic_slice(perm, (pos * batch,), (batch,))
        tape, bn = record(carry.params, carry.bn, data.x[idx], data.y[idx], config)
        cr = method.credit(MethodState(carry.learned, member.fixed), tape)
        updates, opt_state = opt.update(cr.grads, carry.opt_state, carry.params)
        sg_updates, sg_opt_state = opt_sg.update(cr.state_grads, carry.sg_opt_state, carry.learned)
        params, learned = optax.apply_updates(carry.params, updates), optax.apply_updates(carry.learned, sg_updates)
        return State(params, bn, learned, opt_state, sg_opt_state, perm), (tape.loss, cr.sg_loss)

    def evaluate(state: State, member: Member, data: Data, losses, sg_losses) -> Row:
        logits, _ = forward(state.params, data.x_test, config, state=state.bn or None, train=False)
        test_error = jnp.mean(jnp.argmax(logits, axis=1) != data.y_test)
        tape, _ = record(state.params, state.bn, data.x[member.probe], data.y[member.probe], config)
        mine = method.credit(MethodState(state.learned, member.fixed), tape).signals
        true = Backprop().credit(MethodState({}, {}), tape).signals
        cosine = jnp.stack([_cosine(a, b) for a, b in zip(mine, true)])
        loss, sg = jnp.mean(losses), jnp.mean(sg_losses)
        finite = _all_finite((state.params, state.learned, loss, sg, cosine))
        nan = jnp.asarray(jnp.nan, test_error.dtype)  # a diverged net has no test error (argmax of NaN is 0)
        return Row(loss, sg, jnp.where(finite, test_error, nan), jnp.where(finite, cosine, jnp.nan), finite)

    def chunk(state: State, member: Member, data: Data, start):
        state, (losses, sg_losses) = jax.lax.scan(lambda c, s: step(c, s, member, data), state,
                                                  start + jnp.arange(length))
        return state, evaluate(state, member, data, losses, sg_losses)

    return chunk


__all__ = ["OPTIMIZERS", "SCHEDULES", "Data", "Hyper", "Member", "Plan", "Row", "State", "init", "keys",
           "make_chunk", "optimizer", "rate"]
