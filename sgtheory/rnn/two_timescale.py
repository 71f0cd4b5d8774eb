"""Two recurrent nets at two timescales, coupled only by synthetic gradients (Jaderberg et al. 2017).

The paper's hierarchical system — a fast network A and a slow network B whose DNI sends synthetic gradients
back into A — has no public task, sizes or numbers (``../shared/rnn_dni_notes.md`` §6); this protocol is
ours:

- **A**, an LSTM, ticks every step on a stream of one-hot symbols ``x_t`` (``vocab`` of them) with its own
  loss: predict the previous symbol ``x_{t-1}`` (a one-step memory, local in time).
- **B**, an LSTM, ticks once every ``period`` steps (``T``): at tick ``k`` it reads A's whole state
  ``s^A_{(k+1)T}`` (``[h; c]``) at the end of A's window ``k`` and must name ``x_{kT}``, the *first* symbol
  of that window (replaced by a uniform random symbol with probability ``noise``: an irreducible loss).
  Only A saw ``x_{kT}``, and A's own loss never asks it to keep it for ``T − 1`` steps: A carries it only
  if B's gradient reaches A.

A is trained by the window algorithm of :mod:`sgtheory.rnn.window` with windows of ``T`` steps — one per
B tick, whose exit state is what B reads. What A's window ``k`` gets at its exit, the cotangent ``e_k``
of ``s^A_{(k+1)T}``, is the mode:

- ``none``: 0 — no gradient from B to A (and A's own loss truncated at the windows);
- ``dni`` / ``cdni``: B's DNI, ``e_k = M(s^A_{(k+1)T}[, c_k])``, an SG module over A's state (``cdni``:
  also conditioned on B's target at the tick that reads it, ``c_k`` = its one-hot and its mask). ``M``
  regresses onto the bootstrapped target ``δ_b = ∂L^A_k/∂s_b + (∂s_{b+T}/∂s_b)ᵀ e_k + β_{k-1}`` at every
  boundary ``b = kT`` (``k = 0..K``), where ``β_{k-1}`` is the real gradient of B's losses with respect
  to what B read at its tick ``k − 1`` (that is ``s_b``), from B's own backward pass; ``δ_K = β_{K-1}``.
  A never waits for B: it uses ``M`` at B's ticks; B's real gradient only trains ``M``;
- ``oracle``: ``e_k`` = the true gradient of every later loss (A's and B's) with respect to
  ``s^A_{(k+1)T}``, from one VJP of the whole system — this makes A's update exactly full BPTT (tested);
- ``bptt``: full backpropagation through both nets, no windows (the reference).

B always learns by backpropagation through its own ``K`` ticks. Losses are summed over steps, ticks and
the batch (B's weighted by ``b_weight``); parameter gradients are divided by the batch size, as in
:mod:`sgtheory.rnn.window`. Updates: Adam per net and for ``M``, global-norm clips, once per batch of
sequences (the window algorithm's ``update="sequence"``: the sum over windows with the parameters fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.rnn.cores import CoreSpec, core_step, init_core, readout, zero_state
from sgtheory.rnn.sg import SG_MODULES, apply_sg, init_sg
from sgtheory.rnn.window import Numbers, Rule, step_loss, window_credit
from sgtheory.validate import choice, int_in_range

MODES = ("none", "dni", "cdni", "oracle", "bptt")


@dataclass(frozen=True)
class System:
    """The two nets and the task (hashable; part of the compiled program).

    ``period``: ``T``, A's steps per B tick; ``ticks``: ``K`` B ticks per sequence (``L = K·T`` steps);
    ``vocab``: symbols; ``a_hidden`` / ``b_hidden``: LSTM units; ``sg`` / ``sg_hidden``: B's DNI module
    over A's state (``linear`` or ``mlp`` with two hidden layers of ``sg_hidden``).
    """

    period: int = 5
    ticks: int = 6
    vocab: int = 4
    a_hidden: int = 32
    b_hidden: int = 16
    sg: str = "linear"
    sg_hidden: int = 64

    def check(self) -> System:
        """The system after validating every field (one :class:`sgtheory.InputError` line)."""
        int_in_range(self.period, "period", 2)
        int_in_range(self.ticks, "ticks", 1)
        int_in_range(self.vocab, "vocab", 2)
        int_in_range(self.a_hidden, "a hidden units", 1)
        int_in_range(self.b_hidden, "b hidden units", 1)
        choice(self.sg, "sg module", SG_MODULES)
        int_in_range(self.sg_hidden, "sg hidden units", 1)
        return self

    @property
    def a(self) -> CoreSpec:
        return CoreSpec("lstm", self.vocab, self.a_hidden, self.vocab)

    @property
    def b(self) -> CoreSpec:
        return CoreSpec("lstm", self.a.state_size, self.b_hidden, self.vocab)

    @property
    def length(self) -> int:
        return self.period * self.ticks

    @property
    def rule(self) -> Rule:
        """A's window algorithm: softmax loss, windows of ``period`` steps."""
        return Rule("lstm", "softmax", self.vocab, self.period)


class Data(NamedTuple):
    """A batch: ``xs`` ``(L, N, vocab)`` one-hot inputs; ``ya``/``ma`` ``(L, N)`` A's targets and loss
    weights; ``yb``/``mb`` ``(K, N)`` B's targets and loss weights."""

    xs: Any
    ya: Any
    ma: Any
    yb: Any
    mb: Any


class Params(NamedTuple):
    """``a``, ``b``: the two cores with their readouts; ``sg``: B's DNI module (unused by the other modes)."""

    a: dict
    b: dict
    sg: dict


class Credit(NamedTuple):
    """One batch's result: gradients ``a``, ``b``, ``sg`` (per sequence, batch-averaged); ``loss_a``,
    ``loss_b`` (summed); ``sg_loss``; ``exits`` ``(K, N, S)`` the cotangents A's windows got;
    ``targets`` ``(K + 1, N, S)`` the SG targets ``δ_b``."""

    a: Any
    b: Any
    sg: Any
    loss_a: Any
    loss_b: Any
    sg_loss: Any
    exits: Any
    targets: Any


def noise_floor(vocab: int, noise: float) -> float:
    """B's irreducible loss (nats): the entropy of its target given the clean symbol.

    Args:
        vocab: symbols.
        noise: the probability that B's target is a random symbol.

    Returns:
        The entropy in nats.
    """
    hit = 1.0 - noise + noise / vocab
    miss = noise / vocab
    return -(hit * math.log(hit) + ((vocab - 1) * miss * math.log(miss) if miss > 0 else 0.0))


def make_data(system: System, key, batch: int, noise, dtype=jnp.float32) -> Data:
    """A batch of random sequences (see the module docstring).

    Args:
        system: the nets and the task.
        key: the JAX PRNG key of the batch.
        batch: sequences N.
        noise: the label noise (may be traced).
        dtype: the inputs' and weights' dtype.

    Returns:
        The :class:`Data`.
    """
    k_sym, k_flip, k_rand = jax.random.split(key, 3)
    L, K, V = system.length, system.ticks, system.vocab
    sym = jax.random.randint(k_sym, (L, batch), 0, V)
    ya = jnp.concatenate([jnp.zeros((1, batch), sym.dtype), sym[:-1]])
    ma = jnp.concatenate([jnp.zeros((1, batch), dtype), jnp.ones((L - 1, batch), dtype)])
    flip = jax.random.bernoulli(k_flip, noise, (K, batch))
    yb = jnp.where(flip, jax.random.randint(k_rand, (K, batch), 0, V), sym[::system.period])
    return Data(jax.nn.one_hot(sym, V, dtype=dtype), ya, ma, yb, jnp.ones((K, batch), dtype))


def init_params(system: System, key, *, conditioned: bool = False, dtype=jnp.float32) -> Params:
    """Fresh cores and an SG module whose last layer is zero (so ``dni`` starts as ``none``).

    Args:
        system: the nets and the task.
        key: the JAX PRNG key.
        conditioned: the SG module reads cDNI's conditioning too.
        dtype: the parameters' dtype.

    Returns:
        The :class:`Params`.
    """
    k_a, k_b, k_sg = jax.random.split(key, 3)
    cond = system.vocab + 1 if conditioned else 0
    return Params(init_core(system.a, key=k_a, dtype=dtype), init_core(system.b, key=k_b, dtype=dtype),
                  init_sg(system.sg, system.a.state_size, cond, key=k_sg, hidden=system.sg_hidden, dtype=dtype))


def _window(a: dict, s, xs, ys, ms):
    """A over one window: ``(loss summed over steps and batch, exit state)``."""

    def step(s, inp):
        x, y, m = inp
        s = core_step("lstm", a, s, x)
        return s, step_loss("softmax", readout("lstm", a, s), y) * m

    s, losses = jax.lax.scan(step, s, (xs, ys, ms))
    return jnp.sum(losses), s


def b_loss(system: System, b: dict, us, data: Data):
    """B's loss over its ticks reading ``us``, summed over ticks and batch (nats).

    Args:
        system: the nets and the task.
        b: B's core parameters.
        us: what B reads at each tick ``(K, N, S_A)`` (A's boundary states).
        data: the batch.

    Returns:
        The loss, a scalar array.
    """
    s0 = zero_state(system.b, us.shape[1], us.dtype)

    def tick(s, inp):
        u, y, m = inp
        s = core_step("lstm", b, s, u)
        return s, step_loss("softmax", readout("lstm", b, s), y) * m

    _, losses = jax.lax.scan(tick, s0, (us, data.yb, data.mb))
    return jnp.sum(losses)


def _split(system: System, a):
    return a.reshape((system.ticks, system.period) + a.shape[1:])


def system_loss(system: System, a: dict, b: dict, data: Data, b_weight, eps=None):
    """``Σ ℓ^A + b_weight · Σ ℓ^B`` of the whole system.

    Args:
        system: the nets and the task.
        a, b: the two cores' parameters.
        data: the batch.
        b_weight: the weight of B's loss.
        eps: ``(K + 1, N, S)`` added to A's state at every boundary ``kT`` (zero perturbations whose
            gradients are the true future gradients), or None.

    Returns:
        The loss, a scalar array (nats).
    """
    n = data.xs.shape[1]
    s0 = zero_state(system.a, n, data.xs.dtype)
    eps = jnp.zeros((system.ticks + 1,) + s0.shape, s0.dtype) if eps is None else eps

    def window(s, inp):
        xs, ys, ms, e = inp
        loss, s = _window(a, s, xs, ys, ms)
        s = s + e
        return s, (loss, s)

    _, (losses, us) = jax.lax.scan(window, s0 + eps[0], (_split(system, data.xs), _split(system, data.ya),
                                                         _split(system, data.ma), eps[1:]))
    return jnp.sum(losses) + b_weight * b_loss(system, b, us, data)


def oracle_gradients(system: System, a: dict, b: dict, data: Data, b_weight):
    """``∂(every later loss, A's and B's)/∂s^A_{kT}`` for ``k = 0..K``, per sequence.

    Args:
        system: the nets and the task.
        a, b: the two cores' parameters.
        data: the batch.
        b_weight: the weight of B's loss.

    Returns:
        ``(K + 1, N, S)``.
    """
    n = data.xs.shape[1]
    eps = jnp.zeros((system.ticks + 1, n, system.a.state_size), data.xs.dtype)
    return jax.grad(lambda e: system_loss(system, a, b, data, b_weight, e))(eps)


def boundary_states(system: System, a: dict, data: Data):
    """A's state at every boundary ``kT``, ``k = 0..K``.

    Args:
        system: the nets and the task.
        a: A's core parameters.
        data: the batch.

    Returns:
        ``(K + 1, N, S)``.
    """
    s0 = zero_state(system.a, data.xs.shape[1], data.xs.dtype)

    def window(s, xs):
        s = jax.lax.scan(lambda s, x: (core_step("lstm", a, s, x), None), s, xs)[0]
        return s, s

    _, states = jax.lax.scan(window, s0, _split(system, data.xs))
    return jnp.concatenate([s0[None], states])


def conditions(system: System, data: Data):
    """cDNI's conditioning at every boundary ``kT``: the one-hot target and mask of the B tick that reads it
    (tick ``k − 1``; zeros at ``k = 0``).

    Args:
        system: the nets and the task.
        data: the batch.

    Returns:
        ``(K + 1, N, vocab + 1)``.
    """
    c = jnp.concatenate([jax.nn.one_hot(data.yb, system.vocab, dtype=data.mb.dtype) * data.mb[..., None],
                         data.mb[..., None]], axis=-1)
    return jnp.concatenate([jnp.zeros_like(c[:1]), c])


def credit(system: System, mode: str, params: Params, data: Data, b_weight) -> Credit:
    """Gradients of one batch in ``mode`` (see the module docstring).

    Args:
        system: the nets and the task; mode: one of :data:`MODES`.
        params: the cores and B's DNI module; data: the batch; b_weight: weight of B's loss (may be traced).

    Returns:
        :class:`Credit`.
    """
    choice(mode, "mode", MODES)
    n = data.xs.shape[1]
    inv = jnp.asarray(1.0 / n, data.xs.dtype)
    scale = lambda tree: jax.tree_util.tree_map(lambda g: g * inv, tree)
    zeros_sg = jax.tree_util.tree_map(jnp.zeros_like, params.sg)
    K, S = system.ticks, system.a.state_size
    if mode == "bptt":
        ga, gb = jax.grad(system_loss, argnums=(1, 2))(system, params.a, params.b, data, b_weight)
        states = boundary_states(system, params.a, data)
        la = system_loss(system, params.a, params.b, data, 0.0)
        lb = b_loss(system, params.b, jax.lax.stop_gradient(states[1:]), data)
        z = jnp.zeros((K, n, S), data.xs.dtype)
        return Credit(scale(ga), scale(gb), zeros_sg, la, lb, jnp.zeros((), data.xs.dtype), z,
                      jnp.concatenate([z, z[:1]]))
    states = jax.lax.stop_gradient(boundary_states(system, params.a, data))
    lb, (gb, beta) = jax.value_and_grad(lambda b, us: b_loss(system, b, us, data), argnums=(0, 1))(
        params.b, states[1:])
    gb, beta = jax.tree_util.tree_map(lambda g: b_weight * g, (gb, beta))
    cond = conditions(system, data) if mode == "cdni" else None
    if mode == "none":
        exits = jnp.zeros((K, n, S), data.xs.dtype)
    elif mode == "oracle":
        exits = oracle_gradients(system, params.a, params.b, data, b_weight)[1:]
    else:
        exits = apply_sg(params.sg, states[1:], None if cond is None else cond[1:])
    exits = jax.lax.stop_gradient(exits)
    one = jnp.ones((), data.xs.dtype)
    nums = Numbers(one, one, one, one, one, one, 0.0 * one)  # inject scale 1, target discount 1, no aux

    def window(_, inp):
        s, xs, ys, ms, e = inp
        cr = window_credit(system.rule, params.a, {}, s, xs, ys, ms, lambda s_end: e, nums)
        return None, (cr.core_grad, cr.target, cr.loss)

    _, (ga, entries, la) = jax.lax.scan(window, None, (states[:-1], _split(system, data.xs),
                                                      _split(system, data.ya), _split(system, data.ma), exits))
    ga = jax.tree_util.tree_map(lambda g: jnp.sum(g, axis=0), ga)
    pad = jnp.zeros_like(entries[:1])
    targets = jnp.concatenate([entries, pad]) + jnp.concatenate([pad, beta])  # δ_b at b = 0..K
    sg_loss, g_sg = jnp.zeros((), data.xs.dtype), zeros_sg
    if mode in ("dni", "cdni"):
        def objective(sg):
            err = apply_sg(sg, states, cond) - jax.lax.stop_gradient(targets)
            return jnp.sum(err ** 2) * inv / (K + 1)

        sg_loss, g_sg = jax.value_and_grad(objective)(params.sg)
    return Credit(scale(ga), scale(gb), g_sg, jnp.sum(la), lb, sg_loss, exits, targets)


__all__ = ["MODES", "Credit", "Data", "Params", "System", "b_loss", "boundary_states", "conditions", "credit",
           "init_params", "make_data", "noise_floor", "oracle_gradients", "system_loss"]
