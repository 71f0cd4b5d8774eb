"""Fixed points of the joint (model, SG) dynamics: the one the dynamics approach from a start, found robustly.

The fixed point a run approaches from its start x_0 is, for small rates, the limit of the gradient flow

    dx/dt = −D G(x),   D = diag(1 on the model's entries θ, r on the SG's entries ψ),  r = β/α

(the sweep's update x ← x − α D G(x) is its explicit Euler step). Deep linear models and the unconditioned
linear SG have manifolds of fixed points, so *which* point is reached depends on x_0 (and on r), and the
flow approaches some of them only along slow modes (curvature 1e-6 of the largest), which no affordable
number of explicit steps resolves. :func:`flow_limit` therefore works in two phases:

1. **the trajectory**: ``flow_steps`` explicit Euler steps x ← x − η D G(x) with η = ``flow_rate``/λ_0,
   λ_0 the largest |eigenvalue| of D DG at the start (run in pieces; a piece that overflows is redone from
   its start with η halved):
   the dynamics themselves at small rates, which settle every fast and medium mode and fix where on a
   manifold the run lands;
2. **the polish**: pseudo-transient continuation (ΨTC; Kelley & Keyes 1998) from the trajectory's end,
   implicit Euler steps of the same flow

       (I/h + D DG(x)) δ = −D G(x),   x ← x + δ,

   whose pseudo-time step h starts at η and grows as the residual falls (h ← h·‖G_old‖/‖G_new‖, at most
   ×10), so the slow modes converge at the rate of Newton's method while directions of (near-)zero
   curvature, the manifold's tangents, move only as the flow moves them (by h times their tiny curvature):
   never the uncontrolled jump of a minimum-norm Newton step along ill-conditioned directions. A step
   that is not finite, multiplies the residual by more than 10 or moves farther than
   ``trust``·max(1, ‖x‖) is refused and h quartered.

The end point is accepted (``converged``) only when ‖G‖ has reached round-off, ``rtol``·‖D DG‖_F·max(1, ‖x‖);
``newton_distance`` records how far the polish moved it from the trajectory's end. Both phases are
contractions at the end, so starts one ulp apart end within round-off of each other (tested).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgtheory.linear.joint import JointField
from sgtheory.linear.theory import svd as _svd

#: Converged when ‖G‖ ≤ RTOL·‖DG‖_F·max(1, ‖x‖): about 100 float64 ulps of the field's terms (G is a sum
#: of products of the state's entries, whose round-off is ε·‖DG‖·‖x‖).
RTOL = 2e-14
TRUST = 0.5  # largest step, relative to max(1, ‖x‖): a longer one is a jump, not a flow step


class FlowLimit(NamedTuple):
    """Per start (C of them): the end points ``x`` (C, n), ``residual`` ‖G‖ (C,), ``converged`` (C,) bool,
    ``flow_time`` (C,) (Σ η of the trajectory's steps plus Σh of the polish), ``iterations`` of the polish (C,),
    ``newton_distance`` (C,): ‖x* − x_T‖/max(1, ‖x*‖), x_T the trajectory's end (how far the fixed point
    lies from the trajectory), and ``eta`` (C,), the trajectory's step."""

    x: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    flow_time: np.ndarray
    iterations: np.ndarray
    newton_distance: np.ndarray
    eta: np.ndarray


def _scaling(mask: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """D per start: (C, n), 1 on the model's entries and r on the SG's."""
    return np.where(mask[None, :], 1.0, np.asarray(ratios, np.float64)[:, None])


CHUNKS = 40  # the trajectory is run in pieces, so that a run that overflows loses one piece, not all


def _trajectory(field: JointField, X: np.ndarray, Dsc: np.ndarray, steps: int, rate: float, jac):
    """Phase 1: (end points (C, n), step η (C,), finite (C,), flow time (C,)) of ``steps`` explicit flow
    steps from each row of X, in :data:`CHUNKS` pieces; a run that overflows in a piece (it sharpened past
    its step on the way) goes back to the piece's start with its step halved."""
    M = Dsc[:, :, None] * jac(X)
    lam = np.array([np.abs(np.linalg.eigvals(m)).max(initial=0.0) for m in M])
    eta = rate / np.maximum(lam, 1e-12)
    piece = max(1, steps // CHUNKS)
    V, ok = X.T.copy(), np.ones(X.shape[0], bool)
    time = np.zeros(X.shape[0])
    for _ in range(-(-steps // piece)):
        new, fine = field.flow(V, eta, Dsc.T, piece)
        bad = ~fine & (eta > 1e-12 * rate / np.maximum(lam, 1e-12))  # at most ~40 halvings
        time = np.where(fine, time + piece * eta, time)
        V = np.where(fine[None, :], new, V)
        eta = np.where(bad, eta / 2, eta)
        ok = fine | bad
    return V.T.copy(), eta, ok, time


def flow_limit(field: JointField, starts, *, ratios=1.0, flow_steps: int = 20000, flow_rate: float = 0.1,
               max_iter: int = 200, rtol: float = RTOL, trust: float = TRUST,
               one_by_one: bool = False) -> FlowLimit:
    """The limits of the gradient flow dx/dt = −D G(x) from each start (module docstring: a trajectory,
    then a ΨTC polish).

    Args:
      field: the system's :class:`~sgtheory.linear.joint.JointField`.
      starts: flat start states (C, n) (or one, (n,)).
      ratios: r = β/α per start (scalar or (C,)): the SG's entries move r times as fast as the model's.
      flow_steps: explicit steps of the trajectory (phase 1, all starts together; 0 skips it).
      flow_rate: the trajectory's step η as a fraction of 1/λ_0 (λ_0: the fastest mode at the start).
      max_iter: polish iterations per start before it is declared not converged.
      rtol: round-off tolerance of the residual (see :data:`RTOL`).
      trust: longest accepted polish step, relative to max(1, ‖x‖).
      one_by_one: polish (and evaluate Jacobians for) one start at a time: on the JAX backend every
        program is then compiled for a single column and shared by all later single evaluations.

    Returns:
      A :class:`FlowLimit` (arrays over the C starts).
    """
    X0 = np.atleast_2d(np.asarray(starts, np.float64))
    C, n = X0.shape
    Dsc = _scaling(field.mask, np.broadcast_to(np.asarray(ratios, np.float64), (C,)))
    jac = (lambda X: np.stack([field.jacobian(x) for x in X])) if one_by_one else (lambda X: field.jacobians(X.T))
    if flow_steps > 0:
        X, eta, finite, time = _trajectory(field, X0, Dsc, int(flow_steps), flow_rate, jac)
    else:
        M = Dsc[:, :, None] * jac(X0)
        eta = flow_rate / np.maximum(np.linalg.norm(M, axis=(1, 2)), 1e-12)
        X, finite, time = X0.copy(), np.ones(C, bool), np.zeros(C)
    X_traj = X.copy()
    groups = [[c] for c in range(C)] if one_by_one else [list(range(C))]
    res, conv, iters = np.full(C, np.inf), np.zeros(C, bool), np.zeros(C, int)
    for cols in groups:
        X[cols], res[cols], conv[cols], iters[cols], spent = _polish(field, X[cols], Dsc[cols], eta[cols],
                                                                     finite[cols], max_iter, rtol, trust)
        time[cols] += spent
    scale = np.maximum(1.0, np.linalg.norm(X, axis=1))
    return FlowLimit(X, res, conv, time, iters, np.linalg.norm(X - X_traj, axis=1) / scale, eta)


def _polish(field: JointField, X, Dsc, eta, finite, max_iter: int, rtol: float, trust: float):
    """Phase 2 (ΨTC) on the rows of X: (X, residual, converged, iterations, pseudo-time spent)."""
    X = X.copy()
    C, n = X.shape
    G = np.array(field.values(X.T).T)
    res = np.where(finite, np.linalg.norm(G, axis=1), np.inf)
    h = eta.copy()
    time, iters = np.zeros(C), np.zeros(C, int)
    done = ~np.isfinite(res)
    converged = np.zeros(C, bool)
    stall = np.zeros(C, int)
    eye = np.eye(n)
    for _ in range(max_iter):
        if done.all():
            break
        # every row is evaluated at every iteration (finished ones too): fixed shapes, one compiled program
        M = Dsc[:, :, None] * field.jacobians(X.T)  # D DG, (C, n, n)
        norm_M = np.linalg.norm(M, axis=(1, 2))
        hit = ~done & (res <= rtol * norm_M * np.maximum(1.0, np.linalg.norm(X, axis=1)))
        converged |= hit
        done |= hit
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        ha = h[active]
        step = np.linalg.solve(eye[None] / ha[:, None, None] + M[active],
                               -(Dsc[active] * G[active])[:, :, None])[:, :, 0]
        trial = X.copy()
        trial[active] += step
        G_new = field.values(trial.T).T[active]
        res_new = np.linalg.norm(G_new, axis=1)
        ok = (np.isfinite(res_new) & (res_new <= 10 * res[active])
              & (np.linalg.norm(step, axis=1) <= trust * np.maximum(1.0, np.linalg.norm(X[active], axis=1))))
        iters[active] += 1
        acc, rej = active[ok], active[~ok]
        h[rej] = ha[~ok] / 4
        time[acc] += ha[ok]
        ratio = res[acc] / np.maximum(res_new[ok], 1e-300)
        # h grows at least 2x per step that did not raise the residual (slow modes barely lower it, so the
        # residual alone would never let h grow), and as fast as the residual falls (SER, at most 10x);
        # it shrinks while the residual rises, never below the trajectory's own step η
        grow = np.where(ratio >= 1.0, np.clip(ratio, 2.0, 10.0), np.maximum(ratio, 0.5))
        h[acc] = np.maximum(ha[ok] * grow, eta[acc])
        large = ha[ok] >= 1e6 * eta[acc]
        stall[acc] = np.where((ratio > 1.001) | ~large, 0, stall[acc] + 1)
        X[acc], G[acc], res[acc] = trial[acc], G_new[ok], res_new[ok]
        # a residual stuck for 20 accepted steps of a large pseudo-time step is at the round-off floor of a
        # hard case, or at no fixed point at all: stop (the tolerance decides which)
        done[acc[stall[acc] >= 20]] = True
    left = np.flatnonzero(~converged & np.isfinite(res))
    if left.size:  # stalled or out of iterations: the last accepted iterates checked against the tolerance
        M = Dsc[:, :, None] * field.jacobians(X.T)
        tol = rtol * np.linalg.norm(M, axis=(1, 2)) * np.maximum(1.0, np.linalg.norm(X, axis=1))
        converged[left] = res[left] <= tol[left]
    return X, res, converged, iters, time


def _project(field: JointField, x, Ur, sr, Vr, iters: int = 6):
    """Chord Newton steps x ← x − V_r Σ_r⁻¹ U_rᵀ G(x) (the non-neutral singular triplets of DG at a nearby
    point); x once ‖G‖ is at round-off, None if it does not get there."""
    x = np.asarray(x, np.float64).copy()
    tol = RTOL * float(np.sqrt(np.sum(sr ** 2))) * max(1.0, float(np.linalg.norm(x)))
    for _ in range(iters):
        g = field.value(x)
        if not np.isfinite(g).all():
            return None
        if np.linalg.norm(g) <= tol:
            return x
        x = x - Vr.T @ ((Ur.T @ g) / sr)
    return x if np.linalg.norm(field.value(x)) <= tol else None


class Flattest(NamedTuple):
    """A flatter fixed point on the manifold through x*: ``x`` (n,), its ``sharpness`` σ_max(DG), the
    ``start_sharpness`` at x*, the descent ``iterations`` taken and ``on_manifold`` (its residual reached
    round-off)."""

    x: np.ndarray
    sharpness: float
    start_sharpness: float
    iterations: int
    on_manifold: bool


def flattest(field: JointField, x_star, *, ratio: float = 1.0, max_iter: int = 30,
             neutral_rtol: float = 1e-8) -> Flattest:
    """A flatter fixed point reachable from the fixed point ``x_star`` along its manifold.

    Deep linear models (and the unconditioned linear SG) have manifolds of fixed points (W_i → W_i Q,
    W_{i+1} → Q⁻¹W_{i+1}, …) along which the curvature of the update map changes, and gradient descent at
    the edge of stability drifts along them towards flatter points (Cohen et al. 2021; Damian et al. 2023,
    self-stabilisation). This descends the sharpness S(x) = σ_max(D_r DG(x)), the largest singular value of
    the rate-scaled Jacobian (D_r = diag(1 on the model, ``ratio`` on the SG), as a run at β = rα sees it),
    along the manifold: a step along its gradient ∇(uᵀD_r DG v) (u, v the top singular pair) projected on
    the tangent space null(DG(x)) (singular values below ``neutral_rtol``·σ_max), then
    back onto the manifold by the polish of :func:`flow_limit` (no trajectory), accepted only if it lowered
    S, with a step length doubled after a success and quartered after a failure; it stops at a (local)
    minimum, after ``max_iter`` steps, or where there is no neutral direction. σ_max stands in for the
    spectral radius the theory needs at each rate: the result is *a* flatter fixed point, not a certified
    flattest one.

    Args:
      field: the system's :class:`~sgtheory.linear.joint.JointField`.
      x_star: a fixed point (n,) (residual at round-off).
      ratio: r = β/α of the runs the flatter point is for.
      max_iter: descent steps at most.
      neutral_rtol: relative singular-value threshold of the neutral directions.

    Returns:
      A :class:`Flattest`.
    """
    x = np.asarray(x_star, np.float64).copy()
    scale = _scaling(field.mask, np.array([ratio]))[0]
    D = field.jacobian(x)
    U, sv, Vt = _svd(scale[:, None] * D)
    S0 = S = float(sv[0])
    t, it = None, 0
    while it < max_iter:  # ``it`` counts the iterations begun, reported in the result
        it += 1
        neutral = sv <= neutral_rtol * max(sv[0], 1e-300)
        N = Vt[neutral].T  # tangent basis (n, m)
        if N.shape[1] == 0:
            break
        u = scale * U[:, 0]
        if field.backend == "numpy":
            gT = N @ field.bilinear_gradient(x, u, Vt[0], N)
        else:
            gT = N @ (N.T @ field.bilinear_gradient(x, u, Vt[0]))
        size = float(np.linalg.norm(gT))
        if size <= 1e-12 * max(1.0, S):
            break
        t = 1e-2 * max(1.0, float(np.linalg.norm(x))) / size if t is None else t
        # back onto the manifold by chord Newton steps in the normal space of the current point (a step
        # along the tangent leaves it only to second order)
        Ur, sr, Vr = _svd(D)
        keep = sr > neutral_rtol * max(sr[0], 1e-300)
        Ur, sr, Vr = Ur[:, keep], sr[keep], Vr[keep]
        for _ in range(8):
            trial = _project(field, x - t * gT, Ur, sr, Vr)
            D_new = field.jacobian(trial) if trial is not None else None
            if D_new is not None and np.isfinite(D_new).all():
                U_new, sv_new, Vt_new = _svd(scale[:, None] * D_new)
                if sv_new[0] < S:
                    x, D, S, U, sv, Vt, t = trial, D_new, float(sv_new[0]), U_new, sv_new, Vt_new, 2 * t
                    break
            t /= 4
        else:
            break
    res = float(np.linalg.norm(field.value(x)))
    tol = RTOL * float(np.linalg.norm(field.jacobian(x))) * max(1.0, float(np.linalg.norm(x)))
    return Flattest(x, S, S0, it, res <= tol)


__all__ = ["RTOL", "TRUST", "FlowLimit", "flow_limit", "Flattest", "flattest"]
