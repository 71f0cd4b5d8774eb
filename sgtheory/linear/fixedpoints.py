"""Fixed points of the joint (model, SG) dynamics: the one the dynamics approach from a start, found robustly.

The fixed point a run approaches from its start x_0 is, for small rates, the limit of the gradient flow

    dx/dt = −D G(x),   D = diag(1 on the model's entries θ, r on the SG's entries ψ),  r = β/α

(the sweep's update x ← x − α D G(x) is its explicit Euler step). Deep linear models and the unconditioned
linear SG have manifolds of fixed points, so *which* point is reached depends on x_0 (and on r), and the
flow approaches some of them only along slow modes (curvature 1e-6 of the largest). :func:`flow_limit`
integrates the flow by pseudo-transient continuation (ΨTC; Kelley & Keyes 1998): implicit Euler steps

    (I/h + D DG(x)) δ = −D G(x),   x ← x + δ,

whose pseudo-time step h starts small (h‖D DG‖ = 1/2: the iterates follow the flow) and grows as the
residual falls (h ← h·‖G_old‖/‖G_new‖, at most doubling), so that the slow modes converge at the rate of
Newton's method while directions of (near-)zero curvature, the manifold's tangents, move only as the flow
moves them (by h times their tiny curvature), never by the uncontrolled jump of a minimum-norm Newton
step. A step that is not finite, multiplies the residual by more than 10, or moves farther than
``trust``·max(1, ‖x‖) is refused and h quartered. The end point is accepted only when ‖G‖ has reached
round-off (``rtol``·‖DG‖_F·max(1, ‖x‖)); otherwise the result says it did not converge.

Independent of round-off: the iteration is a contraction at its end, so starts one ulp apart end within
round-off of each other (tested).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgtheory.linear.joint import JointField

#: Converged when ‖G‖ ≤ RTOL·‖DG‖_F·max(1, ‖x‖): about 100 float64 ulps of the field's terms (G is a sum
#: of products of the state's entries, whose round-off is ε·‖DG‖·‖x‖).
RTOL = 2e-14
TRUST = 0.5  # largest step, relative to max(1, ‖x‖): a longer one is a jump, not a flow step


class FlowLimit(NamedTuple):
    """Per start (C of them): the end points ``x`` (C, n), ``residual`` ‖G‖ (C,), ``converged`` (C,) bool,
    ``flow_time`` Σh (C,), ``iterations`` (C,) int, and ``newton_distance`` (C,): ‖x* − x_j‖/max(1, ‖x*‖),
    x_j the last iterate taken with h‖D DG‖ ≤ 1 (where the iterates still follow the flow's own path):
    how far the end point lies from the flow's trajectory."""

    x: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    flow_time: np.ndarray
    iterations: np.ndarray
    newton_distance: np.ndarray


def _scaling(mask: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """D per start: (C, n), 1 on the model's entries and r on the SG's."""
    return np.where(mask[None, :], 1.0, np.asarray(ratios, np.float64)[:, None])


def flow_limit(field: JointField, starts, *, ratios=1.0, max_iter: int = 400, rtol: float = RTOL,
               trust: float = TRUST) -> FlowLimit:
    """The limits of the gradient flow dx/dt = −D G(x) from each start (module docstring: ΨTC).

    Args:
      field: the system's :class:`~sgtheory.linear.joint.JointField`.
      starts: flat start states (C, n) (or one, (n,)).
      ratios: r = β/α per start (scalar or (C,)): the SG's entries move r times as fast as the model's.
      max_iter: iterations per start before it is declared not converged.
      rtol: round-off tolerance of the residual (see :data:`RTOL`).
      trust: longest accepted step, relative to max(1, ‖x‖).

    Returns:
      A :class:`FlowLimit` (arrays over the C starts).
    """
    X = np.atleast_2d(np.asarray(starts, np.float64)).copy()
    C, n = X.shape
    Dsc = _scaling(field.mask, np.broadcast_to(np.asarray(ratios, np.float64), (C,)))
    G = np.array(field.values(X.T).T)
    res = np.linalg.norm(G, axis=1)
    h = np.full(C, np.nan)
    time, iters = np.zeros(C), np.zeros(C, int)
    last_flow = X.copy()
    done = ~np.isfinite(res)
    converged = np.zeros(C, bool)
    stall = np.zeros(C, int)
    eye = np.eye(n)
    for _ in range(max_iter):
        if done.all():
            break
        # every start is evaluated at every iteration (finished ones too): fixed shapes, one compiled program
        M = Dsc[:, :, None] * field.jacobians(X.T)  # D DG, (C, n, n)
        norm_M = np.maximum(np.linalg.norm(M, axis=(1, 2)), 1e-300)
        hit = ~done & (res <= rtol * norm_M * np.maximum(1.0, np.linalg.norm(X, axis=1)))
        converged |= hit
        done |= hit
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        ha = np.where(np.isnan(h[active]), 0.5 / norm_M[active], h[active])
        step = np.linalg.solve(eye[None] / ha[:, None, None] + M[active],
                               -(Dsc[active] * G[active])[:, :, None])[:, :, 0]
        trial = X.copy()
        trial[active] += step
        G_all = field.values(trial.T).T
        G_new = G_all[active]
        res_new = np.linalg.norm(G_new, axis=1)
        size = np.linalg.norm(step, axis=1)
        ok = (np.isfinite(res_new) & (res_new <= 10 * res[active])
              & (size <= trust * np.maximum(1.0, np.linalg.norm(X[active], axis=1))))
        iters[active] += 1
        acc, rej = active[ok], active[~ok]
        h[rej] = ha[~ok] / 4
        flowlike = ha[ok] * norm_M[acc] <= 1.0
        last_flow[acc[flowlike]] = trial[acc[flowlike]]
        time[acc] += ha[ok]
        improved = (res_new[ok] < 0.999 * res[acc]) | flowlike  # a flow may raise ‖G‖ for a while
        stall[acc] = np.where(improved, 0, stall[acc] + 1)
        # never below the flow's own step 1/(2‖D DG‖): a flow that raises ‖G‖ for a while (an SG still
        # learning) would otherwise shrink h without end
        h[acc] = np.maximum(ha[ok] * np.clip(res[acc] / np.maximum(res_new[ok], 1e-300), 0.5, 2.0),
                            0.5 / norm_M[acc])
        X[acc], G[acc], res[acc] = trial[acc], G_new[ok], res_new[ok]
        # a residual stuck for 25 accepted steps is at the round-off floor of a hard case, or at no fixed
        # point at all: stop (the tolerance decides which)
        done[acc[stall[acc] >= 25]] = True
    left = np.flatnonzero(~converged & np.isfinite(res))
    if left.size:  # stalled or out of iterations: the last accepted iterates checked against the tolerance
        M = Dsc[:, :, None] * field.jacobians(X.T)
        tol = rtol * np.linalg.norm(M, axis=(1, 2)) * np.maximum(1.0, np.linalg.norm(X, axis=1))
        converged[left] = res[left] <= tol[left]
    scale = np.maximum(1.0, np.linalg.norm(X, axis=1))
    return FlowLimit(X, res, converged, time, iters, np.linalg.norm(X - last_flow, axis=1) / scale)


__all__ = ["RTOL", "TRUST", "FlowLimit", "flow_limit"]
