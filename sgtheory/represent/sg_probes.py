"""SG loss-approximation probes (claim C8 of Czarnecki et al. 2017, arXiv 1703.00522, section 3).

The layers below a synthetic-gradient module follow ``SG(h, y)`` instead of ``∂L/∂h``. If the SG field
is a gradient field, ``SG = ∇_h L_SG``, they descend an implied loss ``L_SG``; how well ``L_SG`` tracks
the true loss ``L`` is what these probes measure.

- Any SG module (a callable ``sg(h, y) -> ŝ`` with ``ŝ.shape == h.shape``): the line integral of the
  SG along the straight path from ``h0`` to ``h1``,

      I(h0, h1; y) = ∫₀¹ ⟨SG(h0 + t·(h1 − h0), y), h1 − h0⟩ dt,

  equals ``L_SG(h1, y) − L_SG(h0, y)`` when the field is a gradient, and is compared with the true loss
  difference ``L(h1, y) − L(h0, y)`` (:func:`sg_line_integral`, :func:`compare_line_integral`).
- Along a training run: the change of the implied loss over each step (the line integral of the SG in
  use at that step, from ``h_t`` to ``h_{t+1}``) against the change of the true loss
  (:func:`trajectory_loss_changes`, :func:`loss_change_correlation`).
- Linear (c)SG ``SG(h, y) = hA + yB + C``: the implied quadratic loss, its symmetric / antisymmetric
  split and the per-class minimiser ``h*(y)`` come from :mod:`sgtheory.linear.surrogate`
  (collected here by :func:`linear_sg_probe`; :func:`linear_sg_fn` and :func:`implied_loss_fn` turn a
  linear SG into the callables the generic probes take).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.validate import finite_array

SGFn = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
LossFn = Callable[[np.ndarray, np.ndarray | None], np.ndarray]

RULES = ("gauss", "trapezoid")


def quadrature(n_points: int, rule: str = "gauss") -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``t`` in [0, 1] and weights ``w`` (summing to 1) for ``∫₀¹ f(t) dt ≈ Σ w f(t)``.

    Args:
      n_points: the number of nodes (≥ 1; ≥ 2 for ``"trapezoid"``).
      rule: ``"gauss"``: Gauss–Legendre, exact for polynomials in ``t`` of degree ≤ 2·n_points − 1 (so one
        node is exact for a linear SG); ``"trapezoid"``: equally spaced nodes, exact for degree ≤ 1.

    Returns:
      ``(t, w)``, two ``(n_points,)`` arrays.
    """
    if rule not in RULES:
        raise InputError(f"rule: unknown value {rule!r}; choose from {', '.join(RULES)}")
    if int(n_points) != n_points or n_points < (2 if rule == "trapezoid" else 1):
        raise InputError(f"n_points: need an integer >= {2 if rule == 'trapezoid' else 1}, got {n_points!r}")
    n = int(n_points)
    if rule == "gauss":
        x, w = np.polynomial.legendre.leggauss(n)
        return (x + 1.0) / 2.0, w / 2.0
    t = np.linspace(0.0, 1.0, n)
    w = np.full(n, 1.0 / (n - 1))
    w[[0, -1]] /= 2.0
    return t, w


def sg_line_integral(sg: SGFn, h0, h1, y=None, *, n_points: int = 16, rule: str = "gauss") -> np.ndarray:
    """Per-sample line integral of an SG field along the straight path ``h0 → h1``.

    Args:
      sg: ``sg(h, y) -> ŝ``, vectorised over rows: ``h`` is ``(m, d)``, ``y`` is ``(m, c)`` (or ``None``).
      h0, h1: ``(n, d)`` start and end activations.
      y: ``(n, c)`` conditioning (e.g. one-hot labels), or ``None`` for an unconditioned SG.
      n_points, rule: the quadrature (see :func:`quadrature`).

    Returns:
      ``(n,)`` array ``I_i = Σ_q w_q ⟨sg(h0_i + t_q (h1_i − h0_i), y_i), h1_i − h0_i⟩``. The SG is called once,
      on all ``n_points · n`` points stacked.
    """
    h0 = finite_array(h0, "h0", ndim=2)
    h1 = finite_array(h1, "h1", ndim=2)
    if h0.shape != h1.shape:
        raise InputError(f"h1: shape {h1.shape} differs from h0's {h0.shape}")
    t, w = quadrature(n_points, rule)
    n, d = h0.shape
    dh = h1 - h0
    points = (h0[None] + t[:, None, None] * dh[None]).reshape(len(t) * n, d)
    ys = None
    if y is not None:
        y = finite_array(y, "y", min_rows=n)
        if y.shape[0] != n:
            raise InputError(f"y: {y.shape[0]} rows for {n} activations")
        ys = np.broadcast_to(y[None], (len(t),) + y.shape).reshape((len(t) * n,) + y.shape[1:])
    s = np.asarray(sg(points, ys), dtype=np.float64)
    if s.shape != points.shape:
        raise InputError(f"sg: returned shape {s.shape} for activations of shape {points.shape}")
    s = s.reshape(len(t), n, d)
    return np.einsum("q,qnd,nd->n", w, s, dh)


@dataclass(frozen=True)
class LossApproximation:
    """How well SG-implied loss changes track true loss changes.

    Attributes:
      implied: ``(m,)`` implied-loss changes (SG line integrals).
      true: ``(m,)`` true-loss changes.
      correlation: Pearson correlation of ``implied`` and ``true`` (NaN if either is constant).
      sign_agreement: share of pairs where both changes have the same sign.
      relative_error: ``‖implied − true‖ / ‖true‖``.
      slope: least-squares slope of ``implied`` on ``true`` (1 for a perfect match).
      rank_correlation: Spearman correlation (Pearson of average ranks), robust to a few large changes.
    """

    implied: np.ndarray
    true: np.ndarray
    correlation: float
    sign_agreement: float
    relative_error: float
    slope: float
    rank_correlation: float

    def summary(self) -> dict:
        """The scalar fields, for JSON."""
        return {"correlation": self.correlation, "rank_correlation": self.rank_correlation,
                "sign_agreement": self.sign_agreement, "relative_error": self.relative_error, "slope": self.slope,
                "n": int(self.true.size)}


def loss_change_correlation(implied, true) -> LossApproximation:
    """Compare implied-loss changes with true-loss changes.

    Args:
      implied: ``(m,)`` implied-loss changes (SG line integrals), ``m ≥ 2``.
      true: ``(m,)`` true-loss changes.

    Returns:
      A :class:`LossApproximation`.
    """
    a = finite_array(implied, "implied", ndim=1, min_rows=2).astype(np.float64)
    b = finite_array(true, "true", ndim=1, min_rows=2).astype(np.float64)
    if a.shape != b.shape:
        raise InputError(f"implied: {a.size} changes but true has {b.size}")
    from scipy.stats import rankdata

    corr = _pearson(a, b)
    bb = float(b @ b)
    return LossApproximation(
        implied=a, true=b, correlation=corr,
        sign_agreement=float(np.mean(np.sign(a) == np.sign(b))),
        relative_error=float(np.linalg.norm(a - b) / np.sqrt(bb)) if bb > 0 else float("inf"),
        slope=float(a @ b / bb) if bb > 0 else float("nan"),
        rank_correlation=_pearson(rankdata(a), rankdata(b)),
    )


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ac, bc = a - a.mean(), b - b.mean()
    denom = np.sqrt((ac @ ac) * (bc @ bc))
    return float(ac @ bc / denom) if denom > 0 else float("nan")


def compare_line_integral(sg: SGFn, loss: LossFn, h0, h1, y=None, *, n_points: int = 16,
                          rule: str = "gauss") -> LossApproximation:
    """SG line integral ``h0 → h1`` against the true loss difference, per sample.

    Args:
      sg: the SG module ``sg(h, y) -> ŝ`` (see :func:`sg_line_integral`).
      loss: ``loss(h, y) -> (n,)``, the per-sample true loss as a function of the activation ``h`` at the
        SG's layer (the layers above held fixed).
      h0, h1: ``(n, d)`` start and end activations.
      y: ``(n, c)`` conditioning, or ``None``.
      n_points, rule: the quadrature (see :func:`quadrature`).

    Returns:
      A :class:`LossApproximation` over the ``n`` samples.
    """
    implied = sg_line_integral(sg, h0, h1, y, n_points=n_points, rule=rule)
    true = _per_sample_loss(loss, h1, y) - _per_sample_loss(loss, h0, y)
    return loss_change_correlation(implied, true)


def trajectory_loss_changes(sg: SGFn | Sequence[SGFn], loss: LossFn | Sequence[LossFn], hs, y=None, *,
                            n_points: int = 16, rule: str = "gauss") -> LossApproximation:
    """Implied vs true loss changes over each step of a training run.

    Args:
      sg: the SG module, or a sequence of ``T − 1`` modules (the one in use at each step ``t``).
      loss: the per-sample true loss ``loss(h, y) -> (n,)``, or ``T − 1`` of them (the layers above at step t).
      hs: ``(T, n, d)`` activations at the SG's layer after each step (T ≥ 3).
      y: ``(n, c)`` conditioning shared by all steps, or ``None``.
      n_points, rule: the quadrature (see :func:`quadrature`).

    Returns:
      A :class:`LossApproximation` over the ``T − 1`` steps: step ``t`` contributes the sample-mean implied
      change ``mean_i I(h_t, h_{t+1}; y)_i`` (using ``sg[t]``) and the true change
      ``mean_i [L_t(h_{t+1}) − L_t(h_t)]_i``.
    """
    hs = finite_array(hs, "hs", ndim=3, min_rows=3)
    steps = hs.shape[0] - 1
    sgs = _per_step(sg, steps, "sg")
    losses = _per_step(loss, steps, "loss")
    implied = np.empty(steps)
    true = np.empty(steps)
    for t in range(steps):
        implied[t] = sg_line_integral(sgs[t], hs[t], hs[t + 1], y, n_points=n_points, rule=rule).mean()
        true[t] = np.mean(_per_sample_loss(losses[t], hs[t + 1], y) - _per_sample_loss(losses[t], hs[t], y))
    return loss_change_correlation(implied, true)


def _per_step(fn, steps: int, name: str) -> list:
    if callable(fn):
        return [fn] * steps
    fns = list(fn)
    if len(fns) != steps:
        raise InputError(f"{name}: {len(fns)} functions for {steps} steps")
    return fns


def _per_sample_loss(loss: LossFn, h: np.ndarray, y) -> np.ndarray:
    v = np.asarray(loss(h, y), dtype=np.float64)
    if v.shape != (h.shape[0],):
        raise InputError(f"loss: returned shape {v.shape}; expected per-sample losses ({h.shape[0]},)")
    return v


@dataclass(frozen=True)
class LinearSGProbe:
    """The implied quadratic loss of a linear (c)SG ``SG(h, y) = hA + yB + C`` (float64 numpy).

    Attributes:
      A_s, A_a: ``(d, d)`` symmetric part (Hessian of ``L_SG``) and antisymmetric (rotational) part of ``A``.
      share: ``‖A_a‖_F / ‖A‖_F`` in [0, 1], the non-gradient share of the SG field.
      curvature: ``(d,)`` eigenvalues of ``A_s``, ascending; all ≥ 0 means ``L_SG`` is convex.
      h_star: ``(k, d)`` per-class stationary point of ``L_SG`` (row c for the one-hot label e_c), or
        ``(1, d)`` for an unconditioned SG.
      singular: whether ``A_s`` is singular (then ``h_star`` is the minimum-norm least-squares point).
    """

    A_s: np.ndarray
    A_a: np.ndarray
    share: float
    curvature: np.ndarray
    h_star: np.ndarray
    singular: bool

    @property
    def convex(self) -> bool:
        """``A_s`` positive semi-definite (up to round-off): every ``h_star`` row is a minimum."""
        scale = max(float(np.abs(self.curvature).max()), np.finfo(float).tiny)
        return bool(self.curvature[0] >= -1e-10 * scale)


def linear_sg_probe(A, B=None, C=None) -> LinearSGProbe:
    """Implied loss, sym/antisym split and per-class minimisers of ``hA + yB + C``.

    Built on :mod:`sgtheory.linear.surrogate`.

    Args:
      A: ``(d, d)``.
      B: ``(k, d)`` or ``None``; with ``B`` the labels are taken one-hot, ``y = e_c`` for each class ``c < k``.
      C: ``(d,)`` or ``None``.

    Returns:
      A :class:`LinearSGProbe`.
    """
    from sgtheory.linear import surrogate

    s = surrogate.split(A, B, C)
    y = None if B is None else np.eye(np.asarray(B).shape[0])
    h_star, singular = surrogate.minimiser(y, A, B, C)
    return LinearSGProbe(A_s=np.asarray(s.A_s, dtype=np.float64), A_a=np.asarray(s.A_a, dtype=np.float64),
                         share=float(s.share), curvature=np.asarray(surrogate.curvature(A), dtype=np.float64),
                         h_star=np.asarray(h_star, dtype=np.float64), singular=bool(singular))


def linear_sg_fn(A, B=None, C=None) -> SGFn:
    """The linear SG as a callable, for :func:`sg_line_integral`.

    Args:
      A, B, C: as for :func:`linear_sg_probe`.

    Returns:
      ``sg(h, y) -> hA + yB + C`` (numpy out).
    """
    from sgtheory.linear import surrogate

    return lambda h, y: np.asarray(surrogate.sg_field(h, y, A, B, C))


def implied_loss_fn(A, B=None, C=None) -> LossFn:
    """The implied loss of a linear SG as a callable (see :func:`sgtheory.linear.surrogate.implied_loss`).

    Args:
      A, B, C: as for :func:`linear_sg_probe`.

    Returns:
      ``loss(h, y) -> (n,)``, ``L_SG`` per sample (numpy out).
    """
    from sgtheory.linear import surrogate

    return lambda h, y: np.asarray(surrogate.implied_loss(h, y, A, B, C))


class NetSGProbe(NamedTuple):
    """An SG module of a nonlinear net and the true loss at its layer, as callables of ``(h, y_onehot)``.

    ``sg(h, y)`` ``(n, width)``: the module's output; ``loss(h, y)`` ``(n,)``: the per-sample cross-entropy of
    the layers above (batch-norm in evaluation mode) fed ``h``; ``grad(h, y)``: its exact gradient ``∂ℓ/∂h``
    (the BP oracle; the SG's regression target). Per-sample scale, as the SG modules of :mod:`sgtheory.nets`.
    """

    sg: SGFn
    loss: LossFn
    grad: SGFn
    layer: int


def net_sg_probe(params, config, sg_params: dict, layer: int, *, bn_state=None) -> NetSGProbe:
    """Probe callables for an SG module at a hidden layer of an sgtheory MLP.

    Args:
      params: the net's parameter pytree (:mod:`sgtheory.nets`).
      config: its :class:`~sgtheory.nets.MLPConfig`.
      sg_params: the SG module's parameters.
      layer: the hidden layer (1..D) the module serves.
      bn_state: the batch-norm statistics pytree, or ``None``.

    Returns:
      A :class:`NetSGProbe` (callables with float64 numpy outputs).
    """
    import jax
    import jax.numpy as jnp

    from sgtheory.nets.mlp import norm_act
    from sgtheory.sg import apply_sg

    if not 1 <= int(layer) <= config.depth:
        raise InputError(f"layer: {layer} is outside the net's hidden layers 1..{config.depth}")
    up = [{k: jnp.asarray(v) for k, v in p.items()} for p in params[layer:]]
    if bn_state:
        stats = [{k: jnp.asarray(v) for k, v in s.items()} for s in bn_state[layer:]]
    else:
        stats = [None] * (config.depth - layer)
    sgp = jax.tree_util.tree_map(jnp.asarray, sg_params)

    def loss_j(h, y):
        for p, s in zip(up[:-1], stats):
            h, _ = norm_act(p, h @ p["W"] + p["b"][None, :], config, s, s is None)
        logits = h @ up[-1]["W"] + up[-1]["b"][None, :]
        return jax.nn.logsumexp(logits, axis=1) - jnp.sum(y * logits, axis=1)

    grad_j = jax.jit(jax.grad(lambda h, y: jnp.sum(loss_j(h, y))))
    loss_jit, sg_jit = jax.jit(loss_j), jax.jit(lambda h, y: apply_sg(sgp, h, y))

    def wrap(f):
        return lambda h, y: np.asarray(f(jnp.asarray(h), jnp.asarray(y)), dtype=np.float64)

    return NetSGProbe(wrap(sg_jit), wrap(loss_jit), wrap(grad_j), int(layer))


def checkpoint_sg_probe(checkpoint, layer: int | None = None) -> NetSGProbe:
    """:func:`net_sg_probe` for an sgtheory checkpoint of an ``sg``/``csg`` run.

    Args:
      checkpoint: a path accepted by :func:`sgtheory.nets.load_checkpoint`, or a loaded checkpoint.
      layer: which SG module (default: the lowest one the checkpoint has).

    Returns:
      A :class:`NetSGProbe`.
    """
    from sgtheory.nets import Checkpoint, load_checkpoint

    ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    modules = {int(k): v for k, v in (ck.method_state.learned or {}).items()}
    if not modules:
        raise InputError(f"checkpoint: method {ck.method.name!r} has no SG module to probe")
    layer = min(modules) if layer is None else int(layer)
    if layer not in modules:
        raise InputError(f"checkpoint: no SG module at layer {layer} (it has {sorted(modules)})")
    return net_sg_probe(ck.params, ck.config, modules[layer], layer, bn_state=ck.bn_state or None)
