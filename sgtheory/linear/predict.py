"""The theory's prediction for an (α, β) grid in one call: per cell converges / diverges / undetermined, and why.

:func:`predict` takes what :func:`sgtheory.linear.sweep` takes (config, problem, rates, seeds, init scales,
steps) and, without simulating, says for every (seed, init scale, α, β) cell whether the run will diverge:

1. **fixed points** the dynamics approach: for each seed and init scale the run's own start
   (``init(config, problem, key=PRNGKey(seed))`` scaled by the init scale, as the sweep draws it), and for
   each ratio r = β/α of the grid the limit of the flow dx/dt = −D_r G(x) from it
   (:func:`sgtheory.linear.fixedpoints.flow_limit`; a linear model with MSE and backprop or a cond-linear SG
   has one fixed point, in closed form). More than ``max_ratios`` distinct ratios (fewer for large states,
   see :data:`RATIO_BUDGET`) are represented by that many log-spaced ones (each cell takes the nearest);
2. their **linearisation** (neutral directions factored out) gives ρ* per cell
   (:mod:`sgtheory.linear.theory`); where the fixed point lies on a manifold, a flatter point of it
   (:func:`sgtheory.linear.fixedpoints.flattest`, one per start, from the ratio-1 limit) gives ρ♭;
3. the **start**'s Jacobian gives the overshoots of the SG's regression, of the model and of the whole;
4. the **rule** of :mod:`sgtheory.linear.rule` turns them into the verdict and its basis.

``method="single-point"`` is the prediction before issue 12, kept for comparison: ρ < 1 at one fixed point
(the first seed and init scale's, found by :func:`sgtheory.linear.theory.fixed_point`), two-way.
Configurations outside the theory (an MLP SG, line-search SG steps, minibatches) get no claim: every cell
undetermined, with the reason in ``claim``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import numpy as np
from threadpoolctl import threadpool_limits

from sgtheory.errors import InputError
from sgtheory.linear import rule as _rule
from sgtheory.linear import theory as _theory
from sgtheory.linear.config import Config
from sgtheory.linear.fixedpoints import flattest, flow_limit
from sgtheory.linear.joint import joint_field
from sgtheory.linear.optimum import optimum
from sgtheory.linear.rules import init
from sgtheory.linear.sweep import _initial_states, scaled
from sgtheory.validate import choice, int_in_range, positive_list
from sgtheory.validate import seeds as _seeds

METHODS = ("three-way", "single-point")
FLOW_STEPS = 20000  # the trajectory of each flow limit (flow_limit's default)
#: What a fixed point is, by its end-to-end map: the original problem's optimum, a constant predictor
#: (W_eff = 0, the unconditioned linear SG's second family), or another point.
KINDS = ("optimum", "constant predictor", "other")
MAX_RATIOS = 32
#: Per start, at most max(MIN_RATIOS, RATIO_BUDGET / n²) flow limits for a state of n entries (their polish
#: solves n×n systems): all 32 below about 250 entries, 4 for the README's deep net (461).
RATIO_BUDGET, MIN_RATIOS = 2_000_000, 4
#: A fixed point counts only if it attracts the flow: every non-neutral eigenvalue μ of D DG has
#: Re μ ≥ −this·max|μ| (a saddle the polish converged to repels the flow that was to reach it).
ATTRACT_RTOL = 1e-6


def _linearise(field, x, residual):
    """:func:`sgtheory.linear.theory.linearise_matrix` at x, or an empty linearisation (no claim at all:
    never found, never attracting) where the Jacobian is not finite or LAPACK fails on it."""
    D = field.jacobian(x)
    if np.isfinite(D).all():
        try:
            return _theory.linearise_matrix(D, field.mask, residual=float(residual))
        except np.linalg.LinAlgError:
            pass
    return _theory.Linearisation(np.zeros((0, 0)), np.zeros((0, 0)), -1, float("nan"))


def _attracting(lin, ratio: float) -> bool:
    """Whether the flow dx/dt = −D_r G(x) is attracted to the point of ``lin`` (no eigenvalue of
    P_model + r P_sg with a negative real part beyond round-off)."""
    if lin.n_neutral < 0:  # no linearisation (see _linearise)
        return False
    if lin.P_model.shape[0] == 0:
        return True
    mu = np.linalg.eigvals(lin.P_model + ratio * lin.P_sg)
    return bool(mu.real.min() >= -ATTRACT_RTOL * np.abs(mu).max())


class Prediction(NamedTuple):
    """The theory's verdict per cell. Coordinates ``alphas`` (A,), ``betas`` (B,), ``seeds`` (S,),
    ``init_scales`` (I,); per cell (S, I, A, B): ``verdict`` (int8, index into
    :data:`sgtheory.verdicts.PREDICTIONS`), ``basis`` (int8, index into :data:`sgtheory.linear.rule.BASES`),
    ``rho`` (ρ* at the cell's fixed point, NaN without one), ``rho_eff`` (the radius the verdict rests on:
    ρ*, or ρ♭ where a flatter point decided), ``rho_flat`` (ρ♭, NaN off manifolds), ``start_overshoot``
    (g_0 at the start) and ``fixed_point`` (int32, row of ``table``; −1 none). ``table``: name -> array
    over the fixed points sought (``seed``, ``init_scale``, ``ratio``, ``kind`` (index into :data:`KINDS`),
    ``residual``, ``converged`` (residual at round-off), ``attracting`` (the flow is attracted to it),
    ``found`` (converged and attracting: the cells that use it are decided), ``neutral``,
    ``newton_distance`` (how far the polish moved it from the trajectory's end), ``loss``,
    ``flat_sharpness`` (σ_max(DG) of the
    flatter point over that of the point; NaN where none was sought)). ``method``, ``steps``, and
    ``claim``: None where the theory applies, else why it makes no claim."""

    alphas: np.ndarray
    betas: np.ndarray
    seeds: np.ndarray
    init_scales: np.ndarray
    verdict: np.ndarray
    basis: np.ndarray
    rho: np.ndarray
    rho_eff: np.ndarray
    rho_flat: np.ndarray
    start_overshoot: np.ndarray
    fixed_point: np.ndarray
    table: dict
    method: str
    steps: int
    claim: str | None

    def arrays(self) -> dict:
        """Per-cell and table arrays for :func:`sgtheory.io.savez` (table columns prefixed ``fp_``)."""
        cells = {k: getattr(self, k) for k in ("verdict", "basis", "rho", "rho_eff", "rho_flat", "start_overshoot",
                                               "fixed_point")}
        return {**cells, **{f"fp_{k}": np.asarray(v) for k, v in self.table.items()}}

    def counts(self) -> dict:
        """How many cells got each verdict, and each basis."""
        from sgtheory.verdicts import PREDICTIONS

        return {"verdicts": {p: int(np.sum(self.verdict == i)) for i, p in enumerate(PREDICTIONS)},
                "bases": {b: int(np.sum(self.basis == i)) for i, b in enumerate(_rule.BASES)
                          if np.any(self.basis == i)}}


def no_claim(config: Config) -> str | None:
    """Why the theory makes no claim about ``config``.

    Args:
        config: the model and its rule.

    Returns:
        The reason, or None where the theory does make a claim.
    """
    if config.sg == "mlp":
        return "no claim: an MLP SG (ReLU) has no smooth linearisation the rule could read"
    if config.sg_step != "fixed":
        return "no claim: needs a fixed-rate SG step (line-search steps are not a map with a fixed Jacobian)"
    if config.batch_size is not None:
        return "no claim: needs full-batch updates"
    return None


def _empty(shape, fill, dtype=np.float64):
    return np.full(shape, fill, dtype)


def _grid(alphas, betas, seeds, init_scales, steps, method):
    alphas = positive_list(np.atleast_1d(np.asarray(alphas, dtype=float)).tolist(), "alphas")
    betas = positive_list(np.atleast_1d(np.asarray(betas, dtype=float)).tolist(), "betas")
    seeds = np.asarray(_seeds(seeds, "seeds"), np.int64)
    scales = positive_list(np.atleast_1d(np.asarray(init_scales, dtype=float)).tolist(), "init_scales")
    return alphas, betas, seeds, scales, int_in_range(steps, "steps", lo=1), choice(method, "method", METHODS)


def _abstain(alphas, betas, seeds, scales, steps, method, why) -> Prediction:
    shape = (seeds.size, scales.size, alphas.size, betas.size)
    return Prediction(alphas, betas, seeds, scales, _empty(shape, _rule.UNDETERMINED, np.int8),
                      _empty(shape, _rule.NO_CLAIM, np.int8), _empty(shape, np.nan), _empty(shape, np.nan),
                      _empty(shape, np.nan), _empty(shape, np.nan), _empty(shape, -1, np.int32), {}, method, steps,
                      why)


def _check_float64(problem):
    if np.dtype(problem.dtype) != np.float64:
        raise InputError(f"predict: needs a float64 problem (got {np.dtype(problem.dtype).name}): enable JAX's "
                         "64-bit mode (jax.config.update('jax_enable_x64', True)) and build it with dtype=float64")


def ratio_classes(alphas, betas, max_ratios: int = MAX_RATIOS):
    """Representative ratios r = β/α of an (A, B) grid and each cell's class.

    The classes are the distinct ratios (:func:`sgtheory.linear.theory.rate_eigenvalues` groups them the
    same way) or, when there are more than ``max_ratios``, ``max_ratios`` log-spaced ones with each cell in
    the nearest.

    Args:
        alphas, betas: the grid's rates (A,) and (B,).
        max_ratios: the most representatives.

    Returns:
        ``(ratios, label)``: the representative ratios and each cell's index into them (A, B).
    """
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    ratios, label = _theory._ratio_classes(A.ravel(), B.ravel())
    if ratios.size > max_ratios:
        logs = np.linspace(np.log(ratios[0]), np.log(ratios[-1]), max_ratios)
        label = np.abs(np.log(B / A).ravel()[:, None] - logs[None, :]).argmin(axis=1)
        ratios = np.exp(logs)
    return ratios, label.reshape(A.shape)


def _end_to_end(state):
    """(W_eff, b_eff) of a (deep) linear model in numpy (no JAX program per shape)."""
    W = np.asarray(state.net[0]["W"], np.float64)
    b = np.asarray(state.net[0].get("b", np.zeros(W.shape[1])), np.float64)
    for layer in state.net[1:]:
        Wl = np.asarray(layer["W"], np.float64)
        b = b @ Wl + np.asarray(layer.get("b", 0.0), np.float64)
        W = W @ Wl
    return W, b


def _kind_and_loss(config, problem, state, opt) -> tuple[int, float]:
    """(index into :data:`KINDS`, the model's true loss) of a fixed point, in numpy: MSE from the moments,
    log loss from the samples."""
    W, b = _end_to_end(state)
    scale = 1.0 + float(np.linalg.norm(opt.W)) + float(np.linalg.norm(opt.b))
    if np.linalg.norm(W - opt.W) + np.linalg.norm(b - opt.b) <= 1e-6 * scale:
        kind = 0
    else:
        kind = 1 if np.linalg.norm(W) <= 1e-8 * scale else 2
    if config.loss == "mse":
        Sxx, Sxy, Syy = (np.asarray(a, np.float64) for a in (problem.Sxx, problem.Sxy, problem.Syy))
        mx, my = np.asarray(problem.mx, np.float64), np.asarray(problem.my, np.float64)
        Epp = W.T @ Sxx @ W + np.outer(b, mx @ W) + np.outer(mx @ W, b) + np.outer(b, b)
        Epy = W.T @ Sxy + np.outer(b, my)
        value = 0.5 * (np.trace(Epp) - 2 * np.trace(Epy) + np.trace(Syy))
    else:
        X, Y = np.asarray(problem.X, np.float64), np.asarray(problem.Y, np.float64)
        P = X @ W + b
        if P.shape[1] == 1:
            value = float(np.mean(np.logaddexp(0.0, P) - Y * P))
        else:
            Pm = P.max(axis=1, keepdims=True)
            value = float(np.mean(np.log(np.exp(P - Pm).sum(axis=1)) + Pm[:, 0] - np.sum(Y * P, axis=1)))
    return kind, float(value)


def _start_overshoots(field, x0, A, B):
    """(g_SG, g_model, g_0) per cell (A, B) at the start x0 (see :mod:`sgtheory.linear.rule`)."""
    D = field.jacobian(x0)
    m = field.mask

    def block(mu, rates):
        if mu.size == 0:
            return np.zeros(rates.shape)
        z = rates[..., None] * mu
        return np.where(z.real > 0, np.abs(1 - z), 0.0).max(axis=-1)

    g_sg = block(np.linalg.eigvals(D[np.ix_(~m, ~m)]) if (~m).any() else np.zeros(0), B)
    g_model = block(np.linalg.eigvals(D[np.ix_(m, m)]), A)
    g0 = _theory.overshoot_radius(_theory.linearise_matrix(D, m), A, B)
    return g_sg, g_model, g0


def predict(config: Config, problem, alphas, betas, *, seeds=(0,), init_scales=(1.0,), steps: int = 1000,
            method: str = "three-way", max_ratios: int = MAX_RATIOS, start_dtype=None) -> Prediction:
    """Predict, cell by cell, whether :func:`sgtheory.linear.sweep` runs converge (module docstring).

    Args:
      config: the experiment (:class:`~sgtheory.linear.config.Config`).
      problem: a float64 :class:`~sgtheory.linear.problems.Problem` (the theory runs in float64 whatever
        dtype the sweep simulates in; needs JAX's 64-bit mode).
      alphas, betas: the grid's rates (1-D, positive).
      seeds, init_scales: the sweep's initialisation seeds and scales.
      steps: the sweep's step budget T (the rule's growth threshold 2^(2/T) depends on it).
      method: ``"three-way"`` (default) or ``"single-point"`` (the pre-issue-12 prediction).
      max_ratios: most flow limits per start (distinct ratios β/α beyond it share the nearest).
      start_dtype: the dtype the sweep simulates in (default the problem's): its starts are drawn in it, as
        the sweep draws them, then the theory continues in float64.

    Returns:
      A :class:`Prediction`.
    """
    alphas, betas, seeds, scales, steps, method = _grid(alphas, betas, seeds, init_scales, steps, method)
    why = no_claim(config)
    if why is not None:
        return _abstain(alphas, betas, seeds, scales, steps, method, why)
    _check_float64(problem)
    max_ratios = int_in_range(max_ratios, "max_ratios", lo=1)
    with threadpool_limits(1):  # many small dense problems: BLAS threads only contend for the cores
        if method == "single-point":
            return _single_point(config, problem, alphas, betas, seeds, scales, steps)
        return _three_way(config, problem, alphas, betas, seeds, scales, steps, max_ratios,
                          np.dtype(problem.dtype if start_dtype is None else start_dtype))


class _Points(NamedTuple):
    """The fixed points sought: flat states ``x`` (P, n) and per point its ``residual``, ``converged``,
    ``newton_distance``, linearisation ``lins``, ``attracting`` and owner (``seed``, ``scale``, ``ratio``);
    ``index`` (starts, ratio classes): the point each start uses for each class."""

    x: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    newton_distance: np.ndarray
    lins: list
    attracting: np.ndarray
    seed: np.ndarray
    scale: np.ndarray
    ratio: np.ndarray
    index: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """Converged and attracting: the cells that use it are decided."""
        return self.converged & self.attracting


def _starts(config, problem, seeds, scales, start_dtype):
    """[(seed, scale, State)]: the sweep's own starts, drawn in the dtype it simulates in (float32 draws
    other numbers than float64), in float64."""
    stacked = _initial_states(config, problem.astype(start_dtype), seeds.astype(np.uint32))
    stacked = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), stacked)
    bases = {s: jax.tree_util.tree_map(lambda v, i=i: v[i], stacked) for i, s in enumerate(seeds.tolist())}
    return [(s, c, scaled(bases[s], c)) for s, c in itertools.product(seeds.tolist(), scales.tolist())]


def _fixed_points(config, problem, field, starts, X0, ratios) -> _Points:
    """The fixed point every start reaches with every ratio class (module docstring, step 1)."""
    if _theory.unique_fixed_point(config):  # one fixed point for every start and ratio
        x = field.flatten(_theory.least_squares_point(config, problem, starts[0][2]))[None]
        res = np.array([np.linalg.norm(field.value(x[0]))])
        conv = res <= 1e-10 * max(1.0, float(np.linalg.norm(x[0])))
        lins = [_linearise(field, x[0], res[0])]
        return _Points(x, res, conv, np.zeros(1), lins, np.array([_attracting(lins[0], 1.0)]),
                       np.array([starts[0][0]]), np.array([starts[0][1]]), np.array([np.nan]),
                       np.zeros((len(starts), ratios.size), int))
    cols = [(i, r) for i in range(len(starts)) for r in ratios.tolist()]
    which, rs = np.array([i for i, _ in cols]), np.array([r for _, r in cols])
    # the trajectories all together; on the JAX backend the polish one start at a time, so that each program
    # of the field is compiled for one column and shared with the single evaluations that follow
    lim = flow_limit(field, X0[which], ratios=rs, one_by_one=field.backend == "jax")
    x, res, conv, nd = lim.x, lim.residual, lim.converged, lim.newton_distance
    lins = [_linearise(field, xj, rj) for xj, rj in zip(x, res)]
    attracting = np.array([_attracting(lin, r) for lin, r in zip(lins, rs)])
    redo = np.flatnonzero(~(conv & attracting))
    if redo.size:  # a flow still near a saddle or on a plateau after its trajectory: once more, 4x longer
        again = flow_limit(field, X0[which[redo]], ratios=rs[redo], flow_steps=4 * FLOW_STEPS, one_by_one=True)
        for m, j in enumerate(redo):
            lins[j] = _linearise(field, again.x[m], again.residual[m])
            x[j], res[j], conv[j], nd[j] = again.x[m], again.residual[m], again.converged[m], again.newton_distance[m]
            attracting[j] = _attracting(lins[j], rs[j])
    return _Points(x, res, conv, nd, lins, attracting, np.array([starts[i][0] for i in which]),
                   np.array([starts[i][1] for i in which], np.float64), rs,
                   np.arange(len(cols)).reshape(len(starts), ratios.size))


def _three_way(config, problem, alphas, betas, seeds, scales, steps, max_ratios, start_dtype) -> Prediction:
    shape = (seeds.size, scales.size, alphas.size, betas.size)
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    starts = _starts(config, problem, seeds, scales, start_dtype)
    field = joint_field(config, problem, starts[0][2])
    X0 = np.stack([field.flatten(st) for _, _, st in starts])
    # each flow limit costs O(n³) per polish step: at most RATIO_BUDGET / n² of them per start
    budget = max(MIN_RATIOS, RATIO_BUDGET // max(field.n, 1) ** 2)
    ratios, label = ratio_classes(alphas, betas, min(max_ratios, budget))
    pts = _fixed_points(config, problem, field, starts, X0, ratios)
    rho, rho_flat = _empty(shape, np.nan), _empty(shape, np.nan)
    g_sg, g_model, g0 = (_empty(shape, np.nan) for _ in range(3))
    fp = pts.index[:, label].reshape(shape).astype(np.int32)  # the point each cell uses
    found, manifold = pts.found[fp], np.array([lin.n_neutral > 0 for lin in pts.lins])[fp]
    flat_ratio = np.full(len(pts.x), np.nan)
    rc = _rule.growth_threshold(steps)
    for i, (s_i, c_i) in enumerate(itertools.product(range(seeds.size), range(scales.size))):
        g_sg[s_i, c_i], g_model[s_i, c_i], g0[s_i, c_i] = _start_overshoots(field, X0[i], A, B)
        here = fp[s_i, c_i]
        for j in np.unique(pts.index[i]):  # one call per fixed point (the unique case: one for the grid)
            cells = here == j
            rho[s_i, c_i][cells] = _theory.spectral_radius(pts.lins[j], A[cells], B[cells])
        # the flatter point, for the cells whose verdict it can decide (rule 4 of sgtheory.linear.rule: an
        # unstable fixed point on a manifold, a stable start)
        need = (found[s_i, c_i] & manifold[s_i, c_i] & (rho[s_i, c_i] >= rc) & (g_sg[s_i, c_i] <= 1.0)
                & (g_model[s_i, c_i] <= 1.0) & (g0[s_i, c_i] <= 1.0))
        for j in np.unique(here[need]):
            flat = flattest(field, pts.x[j], ratio=float(pts.ratio[j]))
            lin_flat = _linearise(field, flat.x, 0.0)
            if flat.on_manifold and lin_flat.n_neutral >= 0:  # else no flatter point: its cells undetermined
                cells = here == j
                flat_ratio[j] = flat.sharpness / max(flat.start_sharpness, 1e-300)
                rho_flat[s_i, c_i][cells] = _theory.spectral_radius(lin_flat, A[cells], B[cells])
    verdict, basis, rho_eff = _rule.decide(rho, rho_flat, manifold, g_sg, g_model, g0, found, steps=steps)
    opt = optimum(config, problem)
    kinds = [_kind_and_loss(config, problem, field.unflatten(x), opt) for x in pts.x]
    table = {"seed": pts.seed.astype(np.int64), "init_scale": pts.scale, "ratio": pts.ratio,
             "kind": np.array([k for k, _ in kinds], np.int8), "residual": np.asarray(pts.residual, np.float64),
             "converged": np.asarray(pts.converged, bool), "attracting": pts.attracting, "found": pts.found,
             "neutral": np.array([lin.n_neutral for lin in pts.lins], np.int32),
             "newton_distance": np.asarray(pts.newton_distance, np.float64),
             "loss": np.array([v for _, v in kinds], np.float64), "flat_sharpness": flat_ratio}
    return Prediction(alphas, betas, seeds, scales, verdict, basis, rho, rho_eff, rho_flat, g0, fp, table,
                      "three-way", steps, None)


def _single_point(config, problem, alphas, betas, seeds, scales, steps) -> Prediction:
    """The pre-issue-12 prediction: ρ < 1 at the first seed and init scale's fixed point, for every cell."""
    shape = (seeds.size, scales.size, alphas.size, betas.size)
    start = scaled(init(config, problem, key=jax.random.PRNGKey(int(seeds[0]))), float(scales[0]))
    fixed, residual = _theory.fixed_point(config, problem, start)
    if not residual < 1e-8:
        return _abstain(alphas, betas, seeds, scales, steps, "single-point",
                        f"no fixed point found from seed {seeds[0]}, scale {scales[0]:g} (residual {residual:.3g})")
    lin = _theory.linearise(config, problem, fixed, residual=residual)
    rho2 = _theory.spectral_radius(lin, alphas[:, None], betas[None, :])
    rho = np.broadcast_to(rho2, shape).copy()
    verdict = np.where(rho < 1.0, _rule.CONVERGES, _rule.DIVERGES).astype(np.int8)
    basis = np.where(rho < 1.0, _rule.FP_STABLE, _rule.FP_UNSTABLE).astype(np.int8)
    table = {"seed": np.array([seeds[0]]), "init_scale": np.array([scales[0]]), "ratio": np.array([np.nan]),
             "residual": np.array([residual]), "converged": np.array([True]), "attracting": np.array([True]),
             "found": np.array([True]), "neutral": np.array([lin.n_neutral], np.int32),
             "newton_distance": np.array([np.nan]),
             "flat_sharpness": np.array([np.nan])}
    kind, value = _kind_and_loss(config, problem, fixed, optimum(config, problem))
    table.update(kind=np.array([kind], np.int8), loss=np.array([value]))
    return Prediction(alphas, betas, seeds, scales, verdict, basis, rho, rho.copy(), _empty(shape, np.nan),
                      _empty(shape, np.nan), np.zeros(shape, np.int32), table, "single-point", steps, None)


__all__ = ["METHODS", "KINDS", "MAX_RATIOS", "RATIO_BUDGET", "MIN_RATIOS", "ATTRACT_RTOL", "Prediction", "no_claim",
           "ratio_classes", "predict"]
