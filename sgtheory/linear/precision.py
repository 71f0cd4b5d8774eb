"""Full-precision matrix products for the linear laboratory.

On GPUs JAX's default float32 matrix product uses TF32 (about 3 significant digits), which is enough for
training nets but not for the convergence verdicts here: a residual cannot fall to ``tol`` = 1e-5 of its
start, and fixed points, Jacobians and distances to the optimum are off in the fourth digit. Every
product in :mod:`sgtheory.linear` therefore goes through :func:`mm` / :func:`einsum` at ``"highest"``
precision (true float32 or float64; on a CPU this changes nothing).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

HIGHEST = "highest"

mm = functools.partial(jnp.matmul, precision=HIGHEST)
einsum = functools.partial(jnp.einsum, precision=HIGHEST)

__all__ = ["mm", "einsum", "HIGHEST"]
