"""The three-way convergence rule: from the linearised quantities of a cell to converges / diverges / undetermined.

Written down once, here, before it was scored on held-out suite seeds (``benchmarks/theory_robustness.py``).
Per (seed, init scale, α, β) cell it reads

- ρ*: the spectral radius of the update map's Jacobian at the fixed point the gradient flow reaches from the
  run's start with the cell's ratio β/α (neutral directions factored out);
- ρ♭: the same at a flatter fixed point of the same manifold (:func:`sgtheory.linear.fixedpoints.flattest`;
  only where the fixed point lies on a manifold, i.e. has neutral directions);
- at the start x_0 (SG modules zero): g_SG, the overshoot |1 − βμ| of the SG's own regression (μ the
  eigenvalues of its block of DG: the least-squares problem the SG solves while the model has not moved),
  g_model, the same for the model's block with α (the layers trained by backprop above the SG), and g_0,
  the overshoot radius of the whole start Jacobian (:func:`sgtheory.linear.theory.overshoot_radius`);

and decides:

1. **the start is past the catapult bound**: max(g_model, g_0) ≥ 3, i.e. α·λ ≥ 4 for a real mode, beyond
   which large-rate gradient descent no longer catapults to a flatter region but diverges (Lewkowycz et al.
   2020, the catapult mechanism): **diverges** ("the run dies before any fixed point is near").
2. **the fixed point is stable**, ρ* < ρ_c: **converges** (does not diverge within the budget), unless the
   SG's own regression overshoots at the start (g_SG > 1: gradient descent on its least-squares loss, whose
   curvature E[ffᵀ] is that of the start's features, diverges at a rate above 2/curvature) — then the two
   linearisations disagree (the run may die before the model has moved the features to the fixed point's,
   or survive because it did): **undetermined**. ρ_c = 2^(2/T): a mode that grows by less than 2× over
   the second half of T steps cannot make the sweep call a run diverged (its test: r_T > 2·r_{T/2}), so
   slightly unstable, near-neutral modes are no prediction of divergence.
3. **the fixed point is unstable and isolated** (no neutral direction: nowhere flatter to move):
   **diverges**.
4. **the fixed point is unstable on a manifold** of fixed points (deep linear models, the unconditioned
   linear SG), where gradient descent at the edge of stability drifts towards flatter points (Cohen et al.
   2021; Damian et al. 2023, self-stabilisation): with g_SG > 1 as well (nothing stable at either end):
   **diverges**; else ρ♭ < ρ_c (a flatter point is stable) and a stable start (g_0 ≤ 1 and g_model ≤ 1:
   the run reaches the edge of stability by sharpening on its way, the setting of self-stabilisation):
   **converges**; otherwise **undetermined** ("edge of stability"): from a start in the catapult range
   (1 < g < 3) whether the catapult lands near the flatter point is not a linear question, and where the
   flatter point is unstable too the run may oscillate about it (period-two orbits past the edge of
   stability) — and a local descent finds *a* flatter point, an upper bound on the flattest: it can show
   that a stable point exists, never that none does.
5. **no fixed point found** (the flow did not reach an attracting one at round-off), no flatter point
   found where rule 4 needs one, or a config outside the theory: **undetermined**.

The thresholds are the theory's own: 1 (linear stability), 2^(2/T) (the sweep's growth test), 3 (the
catapult bound); none was tuned on the runs.
"""

from __future__ import annotations

import numpy as np

from sgtheory.verdicts import PREDICTIONS

CONVERGES, DIVERGES, UNDETERMINED = range(3)
CATAPULT = 3.0  # |1 − αλ| at α·λ = 4, the largest rate at which large-rate GD still catapults

#: Why a cell got its verdict (index = the ``basis`` array of a prediction).
BASES = (
    "fixed point stable",
    "fixed point unstable (isolated)",
    "flatter fixed point stable",
    "edge of stability",
    "start: SG regression unstable",
    "start: beyond the catapult bound",
    "start unstable, fixed point stable",
    "no fixed point found",
    "no flatter fixed point found",
    "no claim",
)
(FP_STABLE, FP_UNSTABLE, FLAT_STABLE, EDGE, START_SG, START_CATAPULT, START_VS_END, NO_FIXED_POINT,
 NO_FLAT_POINT, NO_CLAIM) = range(len(BASES))


def growth_threshold(steps: int) -> float:
    """ρ_c = 2^(2/T): the smallest spectral radius whose growth over T/2 steps reaches the sweep's factor 2.

    Args:
        steps: the sweep's steps T.

    Returns:
        ρ_c.
    """
    return float(2.0 ** (2.0 / steps))


def decide(rho, rho_flat, manifold, g_sg, g_model, g_start, found, *, steps: int):
    """Apply the rule (module docstring) cell by cell.

    Args:
      rho: ρ* per cell.
      rho_flat: ρ♭ per cell (read only where ``manifold``).
      manifold: bool per cell: the cell's fixed point has neutral directions.
      g_sg, g_model, g_start: the start's overshoots per cell.
      found: bool per cell: a fixed point was found (residual at round-off).
      steps: the step budget T.

    Returns:
      ``(verdict, basis, rho_eff)``: int8 arrays (indices into :data:`sgtheory.verdicts.PREDICTIONS` and
      :data:`BASES`) and the spectral radius the verdict rests on (ρ*, or ρ♭ where rule 4 decided).
    """
    rho, rho_flat = np.asarray(rho, np.float64), np.asarray(rho_flat, np.float64)
    shape = rho.shape
    rc = growth_threshold(steps)
    manifold = np.broadcast_to(manifold, shape)
    verdict = np.full(shape, UNDETERMINED, np.int8)
    basis = np.full(shape, NO_FIXED_POINT, np.int8)
    rho_eff = rho.copy()
    found = np.broadcast_to(found, shape)

    def put(mask, v, b):
        verdict[mask], basis[mask] = v, b

    stable = rho < rc
    sg_start = np.asarray(g_sg) > 1.0
    put(found & stable, CONVERGES, FP_STABLE)
    put(found & stable & sg_start, UNDETERMINED, START_VS_END)
    put(found & ~stable & ~manifold, DIVERGES, FP_UNSTABLE)
    eos = found & ~stable & manifold
    rho_eff[eos] = rho_flat[eos]
    start_stable = (np.asarray(g_start) <= 1.0) & (np.asarray(g_model) <= 1.0)
    put(eos & (rho_flat < rc) & start_stable, CONVERGES, FLAT_STABLE)
    put(eos & (rho_flat < rc) & ~start_stable, UNDETERMINED, EDGE)
    put(eos & (rho_flat >= rc), UNDETERMINED, EDGE)
    put(eos & np.isnan(rho_flat), UNDETERMINED, NO_FLAT_POINT)
    put(eos & sg_start, DIVERGES, START_SG)
    put(np.maximum(g_model, g_start) >= CATAPULT, DIVERGES, START_CATAPULT)
    return verdict, basis, rho_eff


__all__ = ["PREDICTIONS", "CONVERGES", "DIVERGES", "UNDETERMINED", "CATAPULT", "BASES", "growth_threshold",
           "decide"]
