"""A fused GPU kernel (Pallas / Triton) for the whole-grid sweep case of :mod:`sgtheory.linear.grid`.

The XLA sweep launches a handful of kernels per step and moves every configuration's state through GPU
memory each time. Here one kernel runs *all* steps: each program owns ``block`` configurations, loads
their state once, keeps it in registers through a ``fori_loop`` over the steps, and writes the final
state and the run's bookkeeping once. A configuration's state is a few scalars per configuration (13 at
d = 10 with one output and a label-conditioned SG), held as separate length-``block`` vectors (one per
scalar), and every product of the update is unrolled into scalar-times-vector terms whose scalars (the
problem's moments Σ, R, m, Σyy, m_y) are loaded from memory once per program. The arithmetic is that
of :func:`sgtheory.linear.grid.gradients` and the freezing / bookkeeping that of the sweep's scan
(tests check both against the XLA path). Unrolling makes the program grow as d'²·k, so the kernel is
used only for small problems (:func:`applicable`); larger ones are matrix-product bound and stay on XLA.

``mode="interpret"`` runs the same kernel through Pallas' interpreter (any backend; slow), which is how
the CPU test suite checks it; the compiled kernel is tested on a GPU by the same tests.

Keeping the state in registers removes the per-step memory traffic that bounds the XLA scan on a GPU;
the block size and warp count matter little (``benchmarks/sweep_throughput.py`` and its GPU results).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sgtheory.linear import grid as _grid
from sgtheory.linear.config import Config

MAX_ROWS = 32  # d' (inputs, with the bias row) at most; the unrolled update has d'²·k terms
MAX_OUTPUTS = 4
BLOCK = 256  # configurations per program (a power of two)
NUM_WARPS = 4


def available() -> bool:
    """Whether this JAX has Pallas' Triton backend (deprecated in JAX 0.11 in favour of Mosaic GPU; when
    it is gone, ``kernel="auto"`` falls back to XLA).

    Returns:
        True if the kernel can be built.
    """
    import importlib.util

    try:
        return importlib.util.find_spec("jax.experimental.pallas.triton") is not None
    except ImportError:
        return False


def applicable(config: Config, d_rows: int, k: int) -> bool:
    """Whether the fused kernel implements ``config`` on a problem of this size.

    Args:
        config: the model and its rule.
        d_rows: rows of θ (inputs, plus one for the bias).
        k: outputs.

    Returns:
        True where :func:`scan` applies.
    """
    return _grid.applicable(config) and d_rows <= MAX_ROWS and k <= MAX_OUTPUTS


def _layout(config: Config, d: int, k: int):
    """Names and shapes of the grid state's leaves, in kernel order."""
    names = [("theta", (d, k))]
    if config.sg != "none":
        names.append(("A", (k, k)))
        if config.sg == "cond-linear":
            names.append(("B", (k, k)))
        names.append(("C", (k,)))
    return names


def _moment_vector(mom: dict):
    """The moments flattened into one vector (padded to a power of two, as Triton blocks must be) and
    the offset of each in it."""
    parts, offsets, at = [], {}, 0
    for name in ("Sig", "R", "m", "Syy", "my"):
        v = jnp.ravel(mom[name])
        offsets[name] = at
        parts.append(v)
        at += v.size
    flat = jnp.concatenate(parts)
    size = 1 << max(0, (at - 1).bit_length())
    return jnp.pad(flat, (0, size - at)), offsets


def _update(config: Config, d: int, k: int, M, S, alpha, beta):
    """One step for vectors of configurations: state rows ``S`` (name -> nested lists of vectors) and
    scalar moments ``M`` (name -> nested lists of scalars). Returns the new state (name -> flat list of
    vectors, row-major) and r², the squared norm of the update direction at ``S``."""
    th = S["theta"]
    Sig, R, m = M["Sig"], M["R"], M["m"]
    Q = [[sum(Sig[i][j] * th[j][q] for j in range(d)) for q in range(k)] for i in range(d)]
    if config.sg == "none":
        g = {"theta": [[Q[i][q] - R[i][q] for q in range(k)] for i in range(d)]}
    else:
        A, Cc = S["A"], S["C"]
        cond = config.sg == "cond-linear"
        Epp = [[sum(th[i][o] * Q[i][q] for i in range(d)) for q in range(k)] for o in range(k)]
        Epy = [[sum(th[i][o] * R[i][q] for i in range(d)) for q in range(k)] for o in range(k)]
        Ep = [sum(m[i] * th[i][o] for i in range(d)) for o in range(k)]
        Abar = [[A[o][q] - 1.0 if o == q else A[o][q] for q in range(k)] for o in range(k)]
        if cond:
            B = S["B"]
            ytail = [[B[o][q] + 1.0 if o == q else B[o][q] for q in range(k)] for o in range(k)]
        else:
            ytail = [[1.0 if o == q else 0.0 for q in range(k)] for o in range(k)]

        def dth(i, q):
            v = sum(Q[i][o] * A[o][q] for o in range(k)) + m[i] * Cc[q]
            return v + sum(R[i][o] * B[o][q] for o in range(k)) if cond else v

        g = {"theta": [[dth(i, q) for q in range(k)] for i in range(d)],
             "A": [[sum(Epp[o][l] * Abar[l][q] + Epy[o][l] * ytail[l][q] for l in range(k)) + Ep[o] * Cc[q]
                    for q in range(k)] for o in range(k)]}
        if cond:
            g["B"] = [[sum(Epy[l][o] * Abar[l][q] + M["Syy"][o][l] * ytail[l][q] for l in range(k))
                       + M["my"][o] * Cc[q] for q in range(k)] for o in range(k)]
        g["C"] = [sum(Ep[l] * Abar[l][q] + M["my"][l] * ytail[l][q] for l in range(k)) + Cc[q] for q in range(k)]
    r2 = 0.0
    new = {}
    for name, rows in S.items():
        rate = alpha if name == "theta" else beta
        flat_g, flat_s = _flatten(g[name]), _flatten(rows)
        r2 = r2 + sum(v * v for v in flat_g)
        new[name] = [s - rate * v for s, v in zip(flat_s, flat_g)]
    return new, r2


def _flatten(rows):
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        return [v for row in rows for v in row]
    return list(rows)


def _nest(flat, shape):
    if len(shape) == 1:
        return list(flat)
    return [list(flat[i * shape[1]:(i + 1) * shape[1]]) for i in range(shape[0])]


def _rows_loop(config, d, k, layout, M, alpha, beta, flat0, *, steps, tol, blowup):
    """All ``steps`` + 1 passes of the sweep's scan (see :func:`sgtheory.linear.sweep._scan`) over
    state rows ``flat0`` (one vector per state scalar, in ``layout`` order) with scalar moments ``M``.
    Returns (final rows, frozen, r_0, r_{T/2}, r_T, steps to tolerance, frozen-at step)."""
    zero = jnp.zeros_like(alpha)
    minus = jnp.full(alpha.shape, -1, jnp.int32)
    half = steps // 2

    def unflatten(flat):
        S, at = {}, 0
        for name, shape in layout:
            S[name] = _nest(flat[at:at + _size(shape)], shape)
            at += _size(shape)
        return S

    def body(t, carry):
        flat, frozen, r0, hit, div_at, r_half, _ = carry
        new, r2 = _update(config, d, k, M, unflatten(list(flat)), alpha, beta)
        new_flat = [v for name, _ in layout for v in new[name]]
        r = jnp.sqrt(r2)
        r0 = jnp.where(t == 0, r, r0)
        ok = jnp.isfinite(r) & jnp.isfinite(sum(new_flat)) & (r <= blowup * r0)
        last = t == steps
        stop = (frozen != 0) | (~ok & ~last)
        keep = stop | last
        flat = tuple(jnp.where(keep, s, n) for s, n in zip(flat, new_flat))
        hit = jnp.where((hit < 0) & ~stop & (r <= tol * r0), t, hit)
        div_at = jnp.where(stop & (frozen == 0), t, div_at)
        r_half = jnp.where(t == half, r, r_half)
        return flat, stop.astype(jnp.int32), r0, hit, div_at, r_half, r

    carry = (tuple(flat0), jnp.zeros(alpha.shape, jnp.int32), zero, minus, minus, zero, zero)
    return jax.lax.fori_loop(0, steps + 1, body, carry)


def _moments_as_scalars(d, k, offsets, get):
    """Nested lists of the moments' scalars, ``get(i)`` reading entry ``i`` of the moment vector."""
    def load(name, shape):
        base = offsets[name]
        return _nest([get(base + i) for i in range(_size(shape))], shape)

    return {"Sig": load("Sig", (d, d)), "R": load("R", (d, k)), "m": load("m", (d,)),
            "Syy": load("Syy", (k, k)), "my": load("my", (k,))}


def _kernel(config, d, k, layout, offsets, steps, tol, blowup, mom_ref, alpha_ref, beta_ref, *refs):
    n_state = sum(_size(s) for _, s in layout)
    state_in, state_out = refs[:n_state], refs[n_state:2 * n_state]
    M = _moments_as_scalars(d, k, offsets, lambda i: mom_ref[i])
    flat, *book = _rows_loop(config, d, k, layout, M, alpha_ref[...], beta_ref[...], [r[...] for r in state_in],
                             steps=steps, tol=tol, blowup=blowup)
    for ref, v in zip(state_out, flat):
        ref[...] = v
    for ref, v in zip(refs[2 * n_state:], book):
        ref[...] = v


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def scan(config: Config, mom: dict, g0: dict, alphas, betas, *, steps: int, tol: float, blowup: float,
         mode: str = "pallas", block: int = BLOCK, num_warps: int = NUM_WARPS):
    """All ``steps`` + 1 passes of the sweep's scan for C configurations in one kernel.

    (The same row-wise loop written as ordinary XLA operations is no use on a CPU: it compiles and runs
    slower than the grid path, see ``benchmarks/sweep_throughput.py``.)

    Args:
        config: the model and its rule (:func:`applicable`).
        mom: the problem's moments (:func:`sgtheory.linear.grid.moments`).
        g0: the start grid state, configuration axis last (:mod:`sgtheory.linear.grid`).
        alphas, betas: the rates (C,).
        steps, tol, blowup: as in :func:`sgtheory.linear.sweep.run_grid`.
        mode: ``"pallas"`` (compiled for the GPU) or ``"interpret"`` (Pallas' interpreter, any backend).
        block, num_warps: configurations per program and warps per program.

    Returns:
        The final grid state and (frozen, r_0, r_{T/2}, r_T, steps to tolerance, frozen-at step), each (C,).
    """
    d, k = mom["R"].shape
    layout = _layout(config, d, k)
    n = alphas.shape[0]
    mvec, offsets = _moment_vector(mom)
    outs = _pallas_rows(config, d, k, layout, mvec, offsets, g0, alphas, betas, steps=steps, tol=tol,
                        blowup=blowup, interpret=mode == "interpret", block=block, num_warps=num_warps)
    g, at = {}, 0
    for name, shape in layout:
        g[name] = jnp.stack(outs[at:at + _size(shape)]).reshape(*shape, n)
        at += _size(shape)
    frozen, r0, hit, div_at, r_half, r_end = outs[at:]
    return g, (frozen != 0, r0, r_half, r_end, hit, div_at)


def _pallas_rows(config, d, k, layout, mvec, offsets, g0, alphas, betas, *, steps, tol, blowup, interpret,
                 block, num_warps):
    """The Pallas kernel over configurations padded to a multiple of ``block``: output rows (state rows,
    then frozen, r_0, hit, frozen-at, r_{T/2}, r_T), each (C,)."""
    n = alphas.shape[0]
    n_pad = -(-n // block) * block
    pad = lambda v: jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, n_pad - n)], mode="edge")
    rows = [r for name, shape in layout for r in pad(g0[name].reshape(_size(shape), n))]
    vec = jax.ShapeDtypeStruct((n_pad,), alphas.dtype)
    ivec = jax.ShapeDtypeStruct((n_pad,), jnp.int32)
    spec = _block_spec(block)
    kernel = functools.partial(_kernel, config, d, k, layout, offsets, steps, tol, blowup)
    params = {} if interpret else {"compiler_params": _triton_params(num_warps)}
    outs = _pallas().pallas_call(
        kernel,
        out_shape=[vec] * len(rows) + [ivec, vec, ivec, ivec, vec, vec],
        grid=(n_pad // block,),
        in_specs=[_full_spec(mvec.shape[0])] + [spec] * (2 + len(rows)),
        out_specs=[spec] * (len(rows) + 6),
        interpret=interpret,
        **params,
    )(mvec, pad(alphas), pad(betas), *rows)
    return [o[:n] for o in outs]


def _pallas():
    from jax.experimental import pallas

    return pallas


def _block_spec(block):
    pl = _pallas()
    return pl.BlockSpec((block,), lambda i: (i,))


def _full_spec(size):
    pl = _pallas()
    return pl.BlockSpec((size,), lambda i: (0,))


def _triton_params(num_warps):
    from jax.experimental.pallas import triton as plgpu

    return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)


__all__ = ["available", "applicable", "scan", "MAX_ROWS", "MAX_OUTPUTS", "BLOCK"]
