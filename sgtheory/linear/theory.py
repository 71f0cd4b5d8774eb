"""Linear stability theory of the joint (model, SG) dynamics.

Flatten the state to x = (θ, ψ). A full-batch fixed-rate step is x' = F(x) = x − S(α, β) G(x), where G
stacks the model's (synthetic) gradients and the SG modules' regression gradients
(:func:`sgtheory.linear.rules.gradients`) and S = diag(α on θ, β on ψ). At a fixed point x* (G(x*) = 0)
the Jacobian of the update map is

    J(α, β) = I − α M_θ − β M_ψ,   M_θ = diag(1_θ) DG(x*),  M_ψ = diag(1_ψ) DG(x*),

and the run converges locally iff the spectral radius ρ(J) < 1. Fixed points of deep linear models come in
manifolds (W_i → W_i Q, W_{i+1} → Q⁻¹W_{i+1}, unused SG directions); along them DG v = 0 and J v = v for
every (α, β). Those neutral directions N = null(DG) are factored out: in an orthonormal basis (Q⊥, N) J is
block triangular, so ρ is taken over the eigenvalues of Q⊥ᵀ J Q⊥ = I − α P_θ − β P_ψ only
(:class:`Linearisation`). Two r×r matrices give ρ for any (α, β) without re-linearising.

Closed form (:func:`scalar_boundary`): scalar linear regression p = w x (no bias) with a cond-linear SG
s = a p + b y + c, zero-mean data with E[x²] = sxx, E[xy] = sxy, E[y²] = syy. The fixed point is
w* = sxy/sxx, a = 1, b = −1, c = 0. With q = sxy²/sxx the Jacobian in (w, a, b, c) is block triangular:

    [[1 − α sxx, −α sxy, −α sxy, 0], [0, 1 − βq, −βq, 0], [0, −βq, 1 − β syy, 0], [0, 0, 0, 1 − β]]

(the SG is exact at x*, so model perturbations do not move the SG gradient to first order). Hence it
converges iff α < 2/sxx and β < 2/max(1, λ_max([[q, q], [q, syy]])): a rectangle in (α, β).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from threadpoolctl import threadpool_limits

from sgtheory.errors import InputError
from sgtheory.hostdevices import cores
from sgtheory.linear import field as _field
from sgtheory.linear.config import Config
from sgtheory.linear.dynamics import trajectory
from sgtheory.linear.optimum import optimum
from sgtheory.linear.precision import mm
from sgtheory.linear.rules import State, full_batch, gradients, step


def _check(config: Config):
    if config.batch_size is not None or config.sg_step != "fixed":
        raise InputError("theory: needs full-batch updates with a fixed-rate SG step (no minibatch, no line search)")


def _flat(config: Config, problem, state: State):
    """(x, G): the flattened state and the function x ↦ flattened G(x) (traceable)."""
    x, unravel = ravel_pytree(state)
    return x, lambda v: ravel_pytree(gradients(config, problem, unravel(v)))[0]


# Each theory step is one compiled program (static config), not a chain of eagerly dispatched operations:
# a fresh process traces and lowers each program once, and every eager operation is a program of its own.
# The whole-grid case (linear model, MSE, backprop or a linear SG at the output) runs none: :mod:`sgtheory.linear.field`
# evaluates its field and exact Jacobian in numpy.
@functools.partial(jax.jit, static_argnums=0)
def _residual_jit(config: Config, problem, state: State):
    x, G = _flat(config, problem, state)
    return jnp.linalg.norm(G(x))


@functools.partial(jax.jit, static_argnums=0)
def _newton_jit(config: Config, problem, state: State):
    x, G = _flat(config, problem, state)
    new = ravel_pytree(state)[1](x - mm(jnp.linalg.pinv(jax.jacfwd(G)(x), rtol=1e-10), G(x)))
    return new, _residual_jit(config, problem, new)


@functools.partial(jax.jit, static_argnums=0)
def _flat_jacobian_jit(config: Config, problem, state: State):
    x, G = _flat(config, problem, state)
    return jax.jacfwd(G)(x)


def _residual(config: Config, problem, state: State) -> float:
    """‖G(x)‖ at ``state``."""
    if _field.applicable(config):
        return _field.residual(config, problem, state)
    return float(_residual_jit(config, problem, state))


def _newton(config: Config, problem, state: State):
    """One minimum-norm Newton step x ← x − DG⁺G (stays on a manifold of fixed points) and ‖G‖ after it."""
    if _field.applicable(config):
        return _field.newton(config, problem, state)
    new, res = _newton_jit(config, problem, state)
    return new, float(res)


def _flat_jacobian(config: Config, problem, state: State) -> np.ndarray:
    """DG at ``state``, (n, n) float64, in the flattened coordinates (forward-mode autodiff, or the
    complex step of :mod:`sgtheory.linear.field` in its case)."""
    if _field.applicable(config):
        return _field.jacobian(config, problem, state)
    return np.asarray(_flat_jacobian_jit(config, problem, state), dtype=np.float64)


def _norm(state) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(v, np.float64))) for v in jax.tree_util.tree_leaves(state))))


def jacobian(config: Config, problem, state: State, alpha, beta):
    """The Jacobian of the flattened update map x ↦ step(x) at ``state`` (forward-mode autodiff).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: where to differentiate.
        alpha, beta: the step's rates.

    Returns:
        The Jacobian (n, n), n the number of entries of ``state`` in ``ravel_pytree`` order.
    """
    _check(config)
    x, unravel = ravel_pytree(state)
    F = lambda v: ravel_pytree(step(config, problem, unravel(v), alpha, beta))[0]
    return jax.jacfwd(F)(x)


def _model_mask(state: State) -> np.ndarray:
    """Boolean (n,): True on the model's entries of the flattened state (ravel order: net, then sg)."""
    leaves = jax.tree_util.tree_leaves
    return np.concatenate([np.ones(np.size(v), bool) for v in leaves(state.net)]
                          + [np.zeros(np.size(v), bool) for v in leaves(state.sg)])


def exact_fixed_point(config: Config) -> bool:
    """Whether :func:`fixed_point` finds ``config``'s fixed point in closed form (linear model, MSE): then
    it reads only the shapes of the start's SG modules, so an abstract start (``jax.eval_shape``) will do.

    Args:
        config: the model and its rule.

    Returns:
        True for the closed-form case.
    """
    return config.model == "linear" and config.loss == "mse"


def fixed_point(config: Config, problem, state: State, *, alpha=None, beta=None, steps: int = 20000,
                newton_iters: int = 8):
    """A fixed point x* of the joint dynamics and its residual ‖G(x*)‖.

    Linear model with MSE: the optimum (OLS) with every SG refitted by least squares (Czarnecki et al.
    2017, C1). Otherwise: run ``steps`` updates from ``state`` at rates (``alpha``, ``beta``) (default
    0.1/λ_max(E[zᵀz]) each, halved while the run overflows), so the point is the one the dynamics reach
    from that start. Either way the point is polished by minimum-norm Newton steps x ← x − DG⁺G (which
    stay on a manifold of fixed points).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the start of the run (its structure is the point's).
        alpha, beta: the run's rates (default as above).
        steps: updates of the run.
        newton_iters: Newton polishing steps at most.

    Returns:
        ``(State, residual)``; a residual that is not small (or NaN) means no fixed point was found.
    """
    _check(config)
    if exact_fixed_point(config):
        state = least_squares_point(config, problem, state)
        res = _residual(config, problem, state)
    else:
        scale = float(np.linalg.eigvalsh(np.asarray(_szz(problem), np.float64)).max())
        a = 0.1 / scale if alpha is None else alpha
        b = 0.1 / scale if beta is None else beta
        run = jax.jit(lambda s, a, b: trajectory(config, problem, s, a, b, steps, every=steps).final)
        for _ in range(6):  # default rates: halve both until the run stays finite
            end = run(state, a, b)
            if np.isfinite(_norm(end)) or (alpha is not None and beta is not None):
                break
            a, b = a / 2 if alpha is None else a, b / 2 if beta is None else b
        state = end
        res = _residual(config, problem, state)
    res = float(res)
    best = (res, state)
    for _ in range(newton_iters):  # Newton may not decrease ‖G‖ monotonically: keep the best iterate
        if res < 1e-14 * max(1.0, _norm(state)):
            break
        state, res = _newton(config, problem, state)
        res = float(res)
        if not np.isfinite(res):
            break
        best = min(best, (res, state), key=lambda rs: rs[0])
    return best[1], best[0]


def unique_fixed_point(config: Config) -> bool:
    """Whether ``config``'s joint dynamics have one fixed point, known in closed form.

    That is (:func:`least_squares_point`) a linear model with MSE trained by backprop or with a
    label-conditioned linear SG at the output, whose fit is exact there (Czarnecki et al. 2017). (The
    unconditioned linear SG has two families of fixed points, and deep models manifolds: the flow decides
    which is reached.)

    Args:
        config: the model and its rule.

    Returns:
        True for the unique, closed-form case.
    """
    return exact_fixed_point(config) and config.sg in ("none", "cond-linear")


def least_squares_point(config: Config, problem, like: State) -> State:
    """The least-squares optimum (OLS on the moments) with every SG refitted there by least squares.

    For a linear model with MSE.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        like: gives the SG modules' shapes only (an abstract start will do).

    Returns:
        The fixed point, a :class:`~sgtheory.linear.rules.State`.
    """
    opt = optimum(config, problem)
    dtype = np.dtype(problem.dtype)
    layer = {"W": opt.W.astype(dtype)}
    if config.bias:
        layer["b"] = opt.b.astype(dtype)
    sg = jax.tree_util.tree_map(lambda v: np.zeros(v.shape, v.dtype), like.sg)
    if config.sg in ("linear", "cond-linear"):
        sg = (_fit_output_sg(config, problem, layer, dtype),)
    return State((layer,), sg)


def _fit_output_sg(config: Config, problem, layer: dict, dtype) -> dict:
    """:func:`fit_sg` for a linear model's one (output) SG module, in numpy float64: least squares of its
    features (p, y, 1) (cond-linear) or (p, 1) (linear) onto the MSE output gradient p − y over the
    full-batch rows. (No LAPACK program to lower in JAX, and no SciPy import behind it: a tenth of a
    command's second.) Tested against :func:`fit_sg`."""
    batch = full_batch(config, problem)
    x, y, u = (np.asarray(a, np.float64) for a in (batch.x, batch.y, batch.u))
    p = x @ np.asarray(layer["W"], np.float64)
    if "b" in layer:
        p = p + u[:, None] * np.asarray(layer["b"], np.float64)
    feats = [p, y, u[:, None]] if config.sg == "cond-linear" else [p, u[:, None]]
    coef = np.linalg.lstsq(np.concatenate(feats, axis=1), p - y, rcond=None)[0].astype(dtype)
    k = p.shape[1]
    out = {"A": coef[:k], "C": coef[-1]}
    if config.sg == "cond-linear":
        out["B"] = coef[k:-1]
    return out


def _szz(problem):
    from sgtheory.linear.problems import augmented_moments

    return augmented_moments(problem.Sxx, problem.Sxy, problem.Syy, problem.mx, problem.my)


class Linearisation(NamedTuple):
    """J(α, β) restricted to the non-neutral directions: I − α ``P_model`` − β ``P_sg`` (r, r), with
    ``n_neutral`` neutral directions factored out and the fixed point's ``residual`` ‖G(x*)‖.

    ``model_rows``: when there is no neutral direction the matrices stay in the state's own coordinates
    and this boolean (r,) marks the model's entries (None otherwise); :func:`spectral_radius` uses it to
    spot a block-triangular J."""

    P_model: np.ndarray
    P_sg: np.ndarray
    n_neutral: int
    residual: float
    model_rows: np.ndarray | None = None


def linearise(config: Config, problem, fixed: State, *, residual: float = 0.0,
              neutral_rtol: float = 1e-8, jacobian=None) -> Linearisation:
    """Linearise the update map at the fixed point ``fixed`` (see the module docstring).

    Singular values of DG below ``neutral_rtol``·σ_max span the neutral directions N = null(DG).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        fixed: the fixed point (from :func:`fixed_point`).
        residual: its residual ‖G‖, kept in the result.
        neutral_rtol: the relative threshold of a neutral direction.
        jacobian: DG at ``fixed`` (n, n) if already computed (else it is computed here).

    Returns:
        The :class:`Linearisation`.
    """
    _check(config)
    D = _flat_jacobian(config, problem, fixed) if jacobian is None else jacobian
    return linearise_matrix(np.asarray(D, np.float64), _model_mask(fixed), residual=residual,
                            neutral_rtol=neutral_rtol)


def svd(D: np.ndarray):
    """``np.linalg.svd(D)``, falling back to LAPACK's slower but more robust gesvd where the default
    divide-and-conquer driver does not converge (it can fail on badly scaled matrices).

    Args:
        D: a matrix.

    Returns:
        ``(U, s, Vt)`` as ``np.linalg.svd``.
    """
    try:
        return np.linalg.svd(D)
    except np.linalg.LinAlgError:
        from scipy.linalg import svd as scipy_svd

        return scipy_svd(D, lapack_driver="gesvd")


def linearise_matrix(D: np.ndarray, mask: np.ndarray, *, residual: float = 0.0,
                     neutral_rtol: float = 1e-8) -> Linearisation:
    """:func:`linearise` from DG and the model mask in flat coordinates.

    Args:
        D: DG (n, n).
        mask: bool (n,), True on the model's entries.
        residual: the fixed point's residual ‖G‖, kept in the result.
        neutral_rtol: the relative threshold of a neutral direction.

    Returns:
        The :class:`Linearisation`.
    """
    _, s, Vt = svd(D)
    keep = s > neutral_rtol * max(s.max(initial=0.0), 1e-300)
    if keep.all():  # nothing to factor out: keep the state's coordinates (and with them the block structure)
        return Linearisation(D * mask[:, None], D * ~mask[:, None], 0, residual, mask)
    Q = Vt[keep].T
    P_model = (Q.T @ (D * mask[:, None])) @ Q  # numpy float64 (the host's LAPACK/BLAS at full precision)
    P_sg = (Q.T @ (D * ~mask[:, None])) @ Q
    return Linearisation(P_model, P_sg, int(D.shape[0] - keep.sum()), residual)


BLOCK_RTOL = 1e-12


def _triangular_blocks(lin: Linearisation):
    """(model block of P_model, SG block of P_sg) when J is block triangular in the state's coordinates
    (an off-diagonal block is zero to ``BLOCK_RTOL``·max|P|, e.g. a linear model with MSE, whose fitted
    SG is exact: model perturbations do not move the SG's gradient to first order), else None."""
    m = lin.model_rows
    if m is None or m.all() or not m.any():
        return None
    scale = BLOCK_RTOL * max(np.abs(lin.P_model).max(), np.abs(lin.P_sg).max(), 1e-300)
    if np.abs(lin.P_sg[np.ix_(~m, m)]).max() > scale and np.abs(lin.P_model[np.ix_(m, ~m)]).max() > scale:
        return None
    return lin.P_model[np.ix_(m, m)], lin.P_sg[np.ix_(~m, ~m)]


def _radii(P: np.ndarray, rates: np.ndarray, chunk: int) -> np.ndarray:
    """ρ(I − t·P) for each rate t in the 1-D ``rates``."""
    eye, out = np.eye(P.shape[0]), np.empty(rates.size)
    for i in range(0, rates.size, chunk):
        out[i:i + chunk] = np.abs(np.linalg.eigvals(eye - rates[i:i + chunk, None, None] * P)).max(axis=-1)
    return out


#: Rate pairs whose ratios β/α agree to this relative tolerance share one eigenproblem (a log-spaced grid's
#: diagonals agree to a few ulps; the eigenvalues move by about this much times their condition number).
RATIO_RTOL = 1e-12


def _ratio_classes(a: np.ndarray, b: np.ndarray):
    """Group rate pairs by their ratio r = β/α: (representative ratios (K,), class index per pair (N,))."""
    lr = np.log(b) - np.log(a)
    order = np.argsort(lr, kind="stable")
    new = np.ones(lr.size, bool)
    new[1:] = np.diff(lr[order]) > RATIO_RTOL
    label = np.empty(lr.size, int)
    label[order] = np.cumsum(new) - 1
    return np.exp(lr[order][new]), label


def rate_eigenvalues(lin: Linearisation, alpha, beta, *, chunk: int = 512):
    """The eigenvalues λ of S·DG = α P_model + β P_sg (non-neutral part) at every rate pair.

    J = I − αP_model − βP_sg = I − α (P_model + r P_sg) with r = β/α, so one eigenproblem per distinct ratio
    serves every pair on that ray (a square log-spaced grid with equal ranges has 2N − 1 ratios, not N²).

    Args:
      lin: a :class:`Linearisation`.
      alpha, beta: broadcastable arrays of positive rates.

    Returns:
      ``(shape, lam)``: the broadcast shape of the rates and lam (prod(shape), r) complex, the eigenvalues of
      α P_model + β P_sg per pair (row-major); r = 0 when every direction is neutral.
    """
    a, b = np.broadcast_arrays(np.asarray(alpha, np.float64), np.asarray(beta, np.float64))
    fa, fb = a.ravel(), b.ravel()
    r = lin.P_model.shape[0]
    if r == 0:
        return a.shape, np.zeros((fa.size, 0), complex)
    ratios, label = _ratio_classes(fa, fb)
    mu = np.empty((ratios.size, r), complex)
    with threadpool_limits(1):  # many small eigenproblems: BLAS threads only contend
        def part(i):
            mu[i:i + chunk] = np.linalg.eigvals(lin.P_model[None] + ratios[i:i + chunk, None, None] * lin.P_sg)

        # LAPACK releases the GIL: one single-threaded eigensolver per core, on disjoint slices
        workers = min(cores(), max(1, ratios.size // 8))
        chunk = max(1, min(chunk, -(-ratios.size // workers)))
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(part, range(0, ratios.size, chunk)))
    return a.shape, fa[:, None] * mu[label]


def spectral_radius(lin: Linearisation, alpha, beta, *, chunk: int = 512) -> np.ndarray:
    """ρ(J(α, β)) over broadcast arrays ``alpha`` and ``beta`` (1 where no direction is left).

    When J is block triangular (:func:`_triangular_blocks`) its eigenvalues are those of I − αP_θθ and of
    I − βP_ψψ, so ρ = max(ρ_model(α), ρ_SG(β)) is computed once per distinct α and per distinct β;
    otherwise once per distinct ratio β/α (:func:`rate_eigenvalues`).

    Args:
        lin: the :class:`Linearisation`.
        alpha, beta: rates, broadcast against each other.
        chunk: rates per batched eigenvalue call.

    Returns:
        ρ, float64, of the broadcast shape.
    """
    a, b = np.broadcast_arrays(np.asarray(alpha, np.float64), np.asarray(beta, np.float64))
    if lin.P_model.shape[0] == 0:
        return np.ones(a.shape)
    blocks = _triangular_blocks(lin)
    if blocks is not None:
        with threadpool_limits(1):
            ua, ia = np.unique(a.ravel(), return_inverse=True)
            ub, ib = np.unique(b.ravel(), return_inverse=True)
            rho = np.maximum(_radii(blocks[0], ua, chunk)[ia], _radii(blocks[1], ub, chunk)[ib])
        return rho.reshape(a.shape)
    shape, lam = rate_eigenvalues(lin, a, b, chunk=chunk)
    return np.abs(1.0 - lam).max(axis=1).reshape(shape)


def overshoot_radius(lin: Linearisation, alpha, beta, *, chunk: int = 512) -> np.ndarray:
    """max |1 − λ| over the eigenvalues λ of α P_model + β P_sg with Re λ > 0 (0 where there is none).

    At a point that is not a fixed point (a run's start) J still says how a step treats small
    perturbations: modes with Re λ > 0 are ones the flow contracts, and |1 − λ| > 1 means the step
    *overshoots* them (a rate too large for the local curvature, the instability of gradient descent
    above 2/sharpness); modes with Re λ ≤ 0 grow under the flow itself (a saddle being left) whatever the
    rate, and are no sign of a step too large.

    Args:
        lin: the :class:`Linearisation` at the point.
        alpha, beta: rates, broadcast against each other.
        chunk: rates per batched eigenvalue call.

    Returns:
        The radius, float64, of the broadcast shape.
    """
    shape, lam = rate_eigenvalues(lin, alpha, beta, chunk=chunk)
    if lam.shape[1] == 0:
        return np.zeros(shape)
    return np.where(lam.real > 0, np.abs(1.0 - lam), 0.0).max(axis=1).reshape(shape)


def scalar_boundary(sxx: float, sxy: float, syy: float) -> tuple[float, float]:
    """(α_max, β_max) of scalar regression with a cond-linear SG (module docstring).

    It converges locally iff α < α_max = 2/sxx and β < β_max = 2/max(1, λ_max([[q, q], [q, syy]])),
    q = sxy²/sxx.

    Args:
        sxx, sxy, syy: the moments E[x²], E[xy], E[y²].

    Returns:
        ``(alpha_max, beta_max)``.

    Raises:
        InputError: unless sxx > 0, syy > 0 and sxx·syy > sxy² (noisy targets).
    """
    if not (sxx > 0 and syy > 0 and sxx * syy > sxy ** 2):
        raise InputError("scalar_boundary: needs sxx > 0, syy > 0 and sxx·syy > sxy² (noisy targets)")
    q = sxy ** 2 / sxx
    lam = 0.5 * (q + syy + np.sqrt((q - syy) ** 2 + 4 * q * q))
    return 2.0 / sxx, 2.0 / max(1.0, lam)


__all__ = ["jacobian", "fixed_point", "exact_fixed_point", "unique_fixed_point", "least_squares_point",
           "Linearisation", "linearise", "linearise_matrix", "spectral_radius", "rate_eigenvalues", "overshoot_radius",
           "scalar_boundary", "svd"]
