"""The quadratic loss implied by a linear synthetic gradient.

A linear (label-conditioned) SG maps an activation row vector ``h`` (1, d) and a label row vector
``y`` (1, k) to a gradient estimate

    SG(h, y) = h A + y B + C,        A: (d, d), B: (k, d), C: (d,).

Split ``A`` into its symmetric part ``A_s = (A + Aᵀ)/2`` and antisymmetric part ``A_a = (A − Aᵀ)/2``.
The symmetric part is the Hessian of the *implied loss*

    L_SG(h, y) = ½ h A_s hᵀ + (y B + C) hᵀ          (+ a constant per label),

whose gradient ``h A_s + y B + C`` equals ``SG(h, y)`` exactly when ``A`` is symmetric. The
antisymmetric part ``h A_a`` is a rotational field that no loss produces; its relative size
``‖A_a‖_F / ‖A‖_F`` (the *non-gradient share*, in [0, 1]) says how far the SG is from being the
gradient of any loss. The network below a linear SG descends ``L_SG`` (Czarnecki et al. 2017,
arXiv 1703.00522, section 3: "SG approximates a quadratic loss"; claim C8 of the project notes).

Per label, ``L_SG`` is stationary where ``h A_s = −(y B + C)``; :func:`minimiser` solves this with
a least-squares solve (the minimum-norm stationary point) whenever ``A_s`` is singular, and reports it.
It is a minimum only where ``A_s`` is positive semi-definite (see :func:`curvature`).

Arrays may be numpy or JAX; batches are rows: ``h`` (n, d), ``y`` (n, k). ``B`` may be ``None`` for the
unconditioned SG ``hA + C``. Everything is plain ``jax.numpy`` so it runs under ``jit``/``vmap``
except :func:`minimiser`, which reports singularity on the host.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.linear.precision import einsum, mm

__all__ = [
    "Surrogate", "split", "non_gradient_share", "sg_field", "implied_grad",
    "implied_loss", "curvature", "minimiser",
]


class Surrogate(NamedTuple):
    """Decomposition of a linear SG ``hA + yB + C`` into a gradient part and a rotational part.

    ``A_s`` (d, d) symmetric Hessian of the implied loss; ``A_a`` (d, d) antisymmetric remainder;
    ``B`` (k, d) or ``None``; ``C`` (d,); ``share`` = ‖A_a‖_F / ‖A‖_F (0 for A = 0).
    """

    A_s: jnp.ndarray
    A_a: jnp.ndarray
    B: jnp.ndarray | None
    C: jnp.ndarray
    share: jnp.ndarray


def split(A, B=None, C=None) -> Surrogate:
    """Split SG parameters into the implied quadratic loss (``A_s``, ``B``, ``C``) and ``A_a``.

    Args:
        A: (d, d).
        B: (k, d), or None (an unconditioned SG).
        C: (d,), or None (zero).

    Returns:
        The :class:`Surrogate`.
    """
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"SG matrix A: expected a square (d, d) array, got shape {A.shape}")
    d = A.shape[0]
    C = jnp.zeros((d,), A.dtype) if C is None else jnp.reshape(jnp.asarray(C), (d,))
    if B is not None:
        B = jnp.asarray(B)
        if B.ndim != 2 or B.shape[1] != d:
            raise InputError(f"SG matrix B: expected shape (k, {d}), got {B.shape}")
    A_s = 0.5 * (A + A.T)
    A_a = 0.5 * (A - A.T)
    return Surrogate(A_s, A_a, B, C, non_gradient_share(A))


def non_gradient_share(A) -> jnp.ndarray:
    """‖A_a‖_F / ‖A‖_F in [0, 1]: 0 for a symmetric A (a gradient field), 1 for a purely rotational one.

    Defined as 0 when A = 0 (the zero field is the gradient of a constant).

    Args:
        A: the SG's (d, d) matrix.

    Returns:
        The share, a scalar array.
    """
    A = jnp.asarray(A)
    na = jnp.linalg.norm(0.5 * (A - A.T))
    n = jnp.linalg.norm(A)
    return jnp.where(n > 0, na / jnp.where(n > 0, n, 1.0), 0.0)


def _offset(y, B, C, n, dtype):
    """Rows ``y B + C`` (n, d); ``y`` (n, k) is ignored when ``B`` is None."""
    off = jnp.broadcast_to(jnp.asarray(C, dtype), (n, C.shape[-1]))
    if B is not None:
        if y is None:
            raise InputError("label-conditioned SG (B given) needs labels y")
        y = jnp.asarray(y, dtype)
        y = y.reshape(n, -1)
        if y.shape[1] != B.shape[0]:
            raise InputError(f"labels y: expected {B.shape[0]} columns for B of shape {B.shape}, got {y.shape[1]}")
        off = off + mm(y, B)
    return off


def _rows(h):
    h = jnp.asarray(h)
    return h.reshape(1, -1) if h.ndim == 1 else h


def sg_field(h, y, A, B=None, C=None) -> jnp.ndarray:
    """The SG output ``h A + y B + C``.

    Args:
        h: rows (n, d).
        y: labels (n, k) (ignored if ``B`` is None).
        A: (d, d).
        B: (k, d), or None (an unconditioned SG).
        C: (d,), or None (zero).

    Returns:
        SG (n, d).
    """
    s = split(A, B, C)
    h = _rows(h)
    return mm(h, jnp.asarray(A)) + _offset(y, s.B, s.C, h.shape[0], h.dtype)


def implied_grad(h, y, A, B=None, C=None) -> jnp.ndarray:
    """∇_h L_SG = ``h A_s + y B + C``: the gradient part of the SG (equals SG iff A is symmetric).

    Args:
        h: rows (n, d).
        y: labels (n, k) (ignored if ``B`` is None).
        A: (d, d).
        B: (k, d), or None (an unconditioned SG).
        C: (d,), or None (zero).

    Returns:
        The gradient (n, d).
    """
    s = split(A, B, C)
    h = _rows(h)
    return mm(h, s.A_s) + _offset(y, s.B, s.C, h.shape[0], h.dtype)


def implied_loss(h, y, A, B=None, C=None) -> jnp.ndarray:
    """L_SG(h, y) = ½ h A_s hᵀ + (y B + C) hᵀ per row.

    The additive constant per label is fixed to 0, so values are comparable along a trajectory
    for the same labels but not across labels.

    Args:
        h: rows (n, d).
        y: labels (n, k) (ignored if ``B`` is None).
        A: (d, d).
        B: (k, d), or None (an unconditioned SG).
        C: (d,), or None (zero).

    Returns:
        The loss per row (n,).
    """
    s = split(A, B, C)
    h = _rows(h)
    off = _offset(y, s.B, s.C, h.shape[0], h.dtype)
    return 0.5 * einsum("nd,de,ne->n", h, s.A_s, h) + jnp.sum(off * h, axis=1)


def curvature(A) -> jnp.ndarray:
    """Eigenvalues of ``A_s`` in ascending order: the curvature of the implied loss.

    All ≥ 0: L_SG is convex and :func:`minimiser` gives minima; some < 0: saddles or maxima.

    Args:
        A: the SG's (d, d) matrix.

    Returns:
        The eigenvalues (d,).
    """
    return jnp.linalg.eigvalsh(split(A).A_s)


def minimiser(y, A, B=None, C=None, *, rcond: float = 1e-10) -> tuple[np.ndarray, bool]:
    """Stationary points ``h*(y)`` of the implied loss: rows solving ``h A_s = −(y B + C)``.

    When ``A_s`` is singular (condition number above 1/rcond) the minimum-norm least-squares solution
    (``numpy.linalg.lstsq``) is returned and ``singular`` is True: then the stationary set is an affine
    subspace (or empty, in which case the result is the least-squares best fit), and h* is one
    representative.

    Args:
        y: labels (n, k) (ignored if ``B`` is None; pass ``n`` rows anyway, or None for one row).
        A: (d, d).
        B: (k, d), or None (an unconditioned SG).
        C: (d,), or None (zero).
        rcond: the condition threshold of a singular ``A_s``.

    Returns:
        ``(h_star (n, d), singular)``.
    """
    s = split(A, B, C)
    A_s = np.asarray(s.A_s, dtype=float)
    n = 1 if y is None else np.asarray(y).reshape(np.asarray(y).shape[0], -1).shape[0]
    rhs = -np.asarray(_offset(None if y is None else jnp.asarray(y), s.B, s.C, n, jnp.asarray(A_s).dtype))
    svals = np.linalg.svd(A_s, compute_uv=False)
    singular = bool(svals[-1] <= rcond * max(svals[0], np.finfo(float).tiny))
    if singular:
        # A_s symmetric: h A_s = r  <=>  A_s hᵀ = rᵀ.
        h_star = np.linalg.lstsq(A_s, rhs.T, rcond=rcond)[0].T
    else:
        h_star = np.linalg.solve(A_s, rhs.T).T
    return h_star, singular
