"""The global optimum of the original (backprop) problem, for distances and excess losses.

For MSE it is ordinary least squares on the moments (θ = (W, b), G = E[(x,1)ᵀ(x,1)], R = E[(x,1)ᵀy]):
Gθ* = R, loss ½(tr Syy − tr θ*ᵀR). For log loss it is found numerically on the samples (L-BFGS, float64);
on separable data the log-loss optimum is at infinity and the returned point only approximates the
direction. A deep linear model (no bottleneck narrower than min(d, k)) has the same optimal end-to-end map.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.linear.config import Config
from sgtheory.linear.precision import mm


class Optimum(NamedTuple):
    """End-to-end optimum: ``W`` (d, k), ``b`` (k,) (zeros without bias) and its ``loss``."""

    W: np.ndarray
    b: np.ndarray
    loss: float


def _ols(problem, bias: bool) -> Optimum:
    Sxx, Sxy, Syy = (np.asarray(a, np.float64) for a in (problem.Sxx, problem.Sxy, problem.Syy))
    mx, my = np.asarray(problem.mx, np.float64), np.asarray(problem.my, np.float64)
    d, k = Sxy.shape
    if bias:
        G = np.block([[Sxx, mx[:, None]], [mx[None, :], np.ones((1, 1))]])
        R = np.vstack([Sxy, my[None, :]])
    else:
        G, R = Sxx, Sxy
    theta = np.linalg.lstsq(G, R, rcond=None)[0]
    loss = 0.5 * (np.trace(Syy) - np.sum(theta * R))
    W, b = theta[:d], (theta[d] if bias else np.zeros(k))
    return Optimum(W, b, float(max(loss, 0.0)))


def _logistic(problem, bias: bool) -> Optimum:
    from scipy.optimize import minimize
    from scipy.special import log_softmax, softmax

    if not problem.has_samples:
        raise InputError("optimum for log loss needs samples: build the problem with from_samples(X, Y)")
    X, Y = np.asarray(problem.X, np.float64), np.asarray(problem.Y, np.float64)
    n, d = X.shape
    k = Y.shape[1]
    Xa = np.hstack([X, np.ones((n, 1))]) if bias else X

    def fun(t):
        P = mm(Xa, t.reshape(Xa.shape[1], k))
        if k == 1:
            val = np.mean(np.logaddexp(0.0, P) - Y * P)
            G = 1.0 / (1.0 + np.exp(-P)) - Y
        else:
            val = -np.mean(np.sum(Y * log_softmax(P, axis=1), axis=1))
            G = softmax(P, axis=1) - Y
        return val, (mm(Xa.T, G) / n).ravel()

    res = minimize(fun, np.zeros(Xa.shape[1] * k), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15})
    theta = res.x.reshape(Xa.shape[1], k)
    return Optimum(theta[:d], theta[d] if bias else np.zeros(k), float(res.fun))


def optimum(config: Config, problem) -> Optimum:
    """The optimum of the original problem for ``config``'s loss and bias (end-to-end map; see module doc).

    Args:
        config: the model (its loss, bias and hidden widths).
        problem: the :class:`~sgtheory.linear.problems.Problem` (samples needed for log loss).

    Returns:
        The :class:`Optimum`.

    Raises:
        InputError: a hidden layer narrower than min(d, k) (the end-to-end optimum does not apply).
    """
    if config.widths and min(config.widths) < min(problem.d, problem.k):
        raise InputError(f"optimum: hidden width {min(config.widths)} is a bottleneck narrower than "
                         f"min(d, k) = {min(problem.d, problem.k)}; the end-to-end optimum does not apply")
    return _ols(problem, config.bias) if config.loss == "mse" else _logistic(problem, config.bias)


__all__ = ["Optimum", "optimum"]
