"""Convergence sweeps: one run written once, ``vmap``ped over α × β × seed × init scale, streamed in chunks.

Each configuration starts from ``init(config, problem, key=PRNGKey(seed), init_scale=scale)`` (drawn once
per seed, then rescaled: init is linear in the scale) and takes
``steps`` full-batch updates in a ``lax.scan``. Its residual r_t = ‖G(x_t)‖ (the norm of the update
direction, model and SG parts together; rate-free) decides its fate:

- **diverged**: the state or residual became non-finite, the residual exceeded ``blowup``·r_0 (the run is
  then frozen with ``jnp.where``, so nothing overflows), or r_T > ``tol``·r_0 while r_T > ``growth``·r_{T/2};
- **converged**: r_T ≤ ``tol``·r_0 (a fixed point of the joint dynamics);
- **not converged**: neither (still moving, slowly or in a bounded oscillation).

Per configuration it reports the final true loss, the distance ‖(W_eff, b_eff) − (W*, b*)‖ of the
end-to-end map to the global optimum, r_T/r_0, the first step with r_t ≤ ``tol``·r_0 (−1: never) and
the step at which a divergent run was frozen (−1: never). Configurations never interact: each one's
arithmetic touches only its own state, and divergent ones are frozen before they overflow.
Depth and every other :class:`~sgtheory.linear.config.Config` field is static: one compile per config.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.linear import fused as _fused
from sgtheory.linear import grid as _grid
from sgtheory.linear.config import Config
from sgtheory.linear.optimum import optimum
from sgtheory.linear.rules import State, effective, init, loss, step
from sgtheory.validate import choice, int_in_range, positive, positive_list
from sgtheory.validate import seeds as _seeds
from sgtheory.verdicts import CONVERGED, DIVERGED, NOT_CONVERGED, STATUS

KERNELS = ("auto", "xla", "fused")


class SweepResult(NamedTuple):
    """Sweep outcome. Coordinates ``alphas`` (A,), ``betas`` (B,), ``seeds`` (S,), ``init_scales`` (I,);
    every other array has shape (S, I, A, B): ``status`` (int8, index into :data:`STATUS`),
    ``final_loss``, ``distance``, ``residual`` (r_T/r_0), ``steps_to_tol`` and ``diverged_at`` (int32),
    ``tail_ratio`` (r_T/r_{T/2}: below 1 while still contracting)."""

    alphas: np.ndarray
    betas: np.ndarray
    seeds: np.ndarray
    init_scales: np.ndarray
    status: np.ndarray
    final_loss: np.ndarray
    distance: np.ndarray
    residual: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    tail_ratio: np.ndarray

    def arrays(self) -> dict:
        """Name -> array, for :func:`sgtheory.io.savez`."""
        return self._asdict()

    def counts(self) -> dict:
        """How many configurations ended in each status."""
        return {name: int(np.sum(self.status == i)) for i, name in enumerate(STATUS)}


def _scan(update, state0, steps: int, per_config, tol: float, growth: float, blowup: float):
    """Run ``update`` (state -> (new_state, residual at state)) ``steps`` times with freezing and
    bookkeeping, for one configuration (scalar residual) or a whole grid (residual (C,), configuration
    axis last). ``per_config`` sums a leaf to one value per configuration. Returns the final state and
    (status, residual ratio r_T/r_0, steps to tolerance, frozen-at step, tail ratio r_T/r_{T/2}).

    The scan makes ``steps + 1`` passes and the last one only measures r_T, so ``update`` appears once
    in the compiled program (compile time dominates small sweeps)."""
    half = steps // 2
    leaves = jax.tree_util.tree_leaves

    def body(carry, t):
        s, frozen, r0, hit, div_at, r_half, _ = carry
        new, r = update(s)
        r0 = jnp.where(t == 0, r, r0)
        ok = jnp.isfinite(r) & jnp.isfinite(sum(per_config(v) for v in leaves(new))) & (r <= blowup * r0)
        last = t == steps
        stop = frozen | (~ok & ~last)
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(stop | last, a, b), s, new)
        hit = jnp.where((hit < 0) & ~stop & (r <= tol * r0), t, hit)
        div_at = jnp.where(stop & ~frozen, t, div_at)
        r_half = jnp.where(t == half, r, r_half)
        return (s, stop, r0, hit, div_at, r_half, r), None

    shape = jax.eval_shape(lambda x: update(x)[1], state0).shape
    zero, minus = jnp.zeros(shape, per_config(leaves(state0)[0]).dtype), jnp.full(shape, -1, jnp.int32)
    carry = (state0, jnp.zeros(shape, bool), zero, minus, minus, zero, zero)
    (s, frozen, r0, hit, div_at, r_half, r_end), _ = jax.lax.scan(body, carry, jnp.arange(steps + 1, dtype=jnp.int32))
    return s, _verdict(frozen, r0, r_half, r_end, hit, div_at, tol, growth)


def _last_axis(x, ndim: int):
    """``x`` (C,) shaped to broadcast along the last (configuration) axis of an ``ndim``-D grid array."""
    return jnp.reshape(x, (1,) * (ndim - 1) + (-1,))


def _verdict(frozen, r0, r_half, r_end, hit, div_at, tol, growth):
    """(status, r_T/r_0, steps to tolerance, frozen-at step, r_T/r_{T/2}) from a run's bookkeeping."""
    small = r_end <= tol * r0
    diverged = frozen | ~jnp.isfinite(r_end) | (~small & (r_end > growth * r_half))
    status = jnp.where(diverged, DIVERGED, jnp.where(small, CONVERGED, NOT_CONVERGED)).astype(jnp.int8)
    return status, r_end / r0, hit, jnp.where(frozen, div_at, -1), r_end / r_half


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(tree)))


def scaled(state: State, scale) -> State:
    """``state`` with every model weight W_i multiplied by ``scale`` (init is linear in init_scale).

    Args:
        state: a :class:`~sgtheory.linear.rules.State`.
        scale: the factor.

    Returns:
        The scaled state (SG modules and biases unchanged).
    """
    net = tuple({k: (v * scale if k == "W" else v) for k, v in layer.items()} for layer in state.net)
    return State(net, state.sg)


def run_one(config: Config, problem, W_opt, b_opt, alpha, beta, state0: State, *, steps: int,
            tol: float = 1e-5, growth: float = 2.0, blowup: float = 1e8) -> dict:
    """One configuration's run from ``state0`` and its verdict (module docstring).

    Written for one configuration; :func:`sweep` ``vmap``s it.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        W_opt, b_opt: the end-to-end optimum the distance is measured to.
        alpha, beta: the rates.
        state0: the start.
        steps: updates per run.
        tol: converged when r_T ≤ ``tol``·r_0.
        growth: diverging when r_T > ``growth``·r_{T/2} (and r_T > ``tol``·r_0).
        blowup: diverged (and frozen) once the residual exceeds ``blowup``·r_0.

    Returns:
        A dict of scalars: ``status``, ``final_loss``, ``distance``, ``residual`` (r_T/r_0),
        ``steps_to_tol``, ``diverged_at`` and ``tail_ratio``.
    """

    def update(s):
        new, g = step(config, problem, s, alpha, beta, with_gradients=True)
        return new, _norm(g)

    s, verdict = _scan(update, state0, steps, jnp.sum, tol, growth, blowup)
    W, b = effective(s)
    dist = jnp.sqrt(jnp.sum((W - W_opt) ** 2) + jnp.sum((b - b_opt) ** 2))
    return dict(zip(_KEYS, (verdict[0], loss(config, problem, s), dist, *verdict[1:])))


_KEYS = ("status", "final_loss", "distance", "residual", "steps_to_tol", "diverged_at", "tail_ratio")


def run_grid(config: Config, problem, W_opt, b_opt, alphas, betas, states0: State, *, steps: int,
             tol: float = 1e-5, growth: float = 2.0, blowup: float = 1e8, fused=False) -> dict:
    """:func:`run_one` for C configurations at once through :mod:`sgtheory.linear.grid` (its case only).

    The same update and verdicts, with the configuration axis last and shared matrix products.

    Args:
        config: the model and its rule (:func:`sgtheory.linear.grid.applicable`).
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        W_opt, b_opt: the end-to-end optimum the distance is measured to.
        alphas, betas: the rates (C,).
        states0: C States stacked along a leading axis.
        steps: updates per run.
        tol: converged when r_T ≤ ``tol``·r_0.
        growth: diverging when r_T > ``growth``·r_{T/2} (and r_T > ``tol``·r_0).
        blowup: diverged (and frozen) once the residual exceeds ``blowup``·r_0.
        fused: run all steps in the one-kernel GPU version of :mod:`sgtheory.linear.fused` (``True``),
            or that kernel through Pallas' interpreter (``"interpret"``, any backend, for tests).

    Returns:
        The dict of :func:`run_one`, each entry (C,).
    """
    mom = _grid.moments(problem, config.bias, problem.dtype)
    g0 = _grid.to_grid(config, states0)
    if fused:
        g, (frozen, r0, r_half, r_end, hit, div_at) = _fused.scan(
            config, mom, g0, alphas, betas, steps=steps, tol=tol, blowup=blowup,
            mode=fused if isinstance(fused, str) else "pallas")
        verdict = _verdict(frozen, r0, r_half, r_end, hit, div_at, tol, growth)
    else:
        def update(g):
            d = _grid.gradients(config, mom, g)
            r = jnp.sqrt(sum(jnp.sum(v * v, axis=tuple(range(v.ndim - 1))) for v in d.values()))
            new = {k: g[k] - _last_axis(alphas if k == "theta" else betas, d[k].ndim) * d[k] for k in g}
            return new, r

        per_config = lambda v: jnp.sum(v, axis=tuple(range(v.ndim - 1)))
        g, verdict = _scan(update, g0, steps, per_config, tol, growth, blowup)
    theta = g["theta"]
    opt = jnp.concatenate([W_opt, b_opt[None]], axis=0) if config.bias else W_opt
    dist = jnp.sqrt(jnp.sum((theta - opt[:, :, None]) ** 2, axis=(0, 1)))
    return dict(zip(_KEYS, (verdict[0], _grid.loss(mom, theta), dist, *verdict[1:])))


@functools.partial(jax.jit, static_argnames=("config",))
def _initial_states(config: Config, problem, seeds):
    """``init`` for each seed (PRNGKey(seed)), stacked along a leading axis."""
    return jax.vmap(lambda s: init(config, problem, key=jax.random.PRNGKey(s)))(seeds)


def _chunk(config: Config, problem, W_opt, b_opt, base, alphas, betas, scales, lo, *, steps: int, tol: float,
           whole_grid: bool, fused: bool, shape: tuple, chunk: int):
    """Configurations ``lo`` .. ``lo + chunk − 1`` of the (seed, init scale, α, β) grid of ``shape``
    (row-major; past the end, the last one is repeated): each starts from its seed's init in ``base``
    scaled by its init scale and runs at its (α, β). The indices and coordinates are worked out here, on
    the device."""
    flat = jnp.minimum(lo + jnp.arange(chunk, dtype=jnp.int32), math.prod(shape) - 1)
    si, ci, ai, bi = jnp.unravel_index(flat, shape)
    a, b = alphas[ai], betas[bi]
    starts = jax.vmap(lambda i, c: scaled(jax.tree_util.tree_map(lambda v: v[i], base), c))(si, scales[ci])
    if whole_grid:
        return run_grid(config, problem, W_opt, b_opt, a, b, starts, steps=steps, tol=tol, fused=fused)
    one = lambda a, b, s0: run_one(config, problem, W_opt, b_opt, a, b, s0, steps=steps, tol=tol)
    return jax.vmap(one)(a, b, starts)


_STATIC = ("config", "steps", "tol", "whole_grid", "fused", "shape", "chunk")
#: :func:`_chunk` compiled once per config, grid shape and options (the problem is an argument).
_run_chunk = jax.jit(_chunk, static_argnames=_STATIC)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "mesh"))
def _run_split(config: Config, problem, W_opt, b_opt, base, alphas, betas, scales, lo, *, mesh, chunk: int,
               **static):
    """:func:`_chunk` on every device of the 1-D ``mesh`` at once, one program (compiled once): device k
    runs configurations ``lo + k·chunk`` .. ``lo + (k + 1)·chunk − 1``; the results come back
    concatenated along the configuration axis (``chunk`` × devices)."""
    from jax.sharding import PartitionSpec

    def part(*args):
        k = jax.lax.axis_index("configs").astype(jnp.int32)
        return _chunk(config, *args[:-1], args[-1] + k * chunk, chunk=chunk, **static)

    args = (problem, W_opt, b_opt, base, alphas, betas, scales, lo)
    specs = dict(mesh=mesh, in_specs=(PartitionSpec(),) * len(args), out_specs=PartitionSpec("configs"))
    if hasattr(jax, "shard_map"):  # per-device arrays are created inside: skip the replication type checks
        return jax.shard_map(part, check_vma=False, **specs)(*args)
    from jax.experimental.shard_map import shard_map  # JAX < 0.7

    return shard_map(part, check_rep=False, **specs)(*args)


def _mesh(total: int, chunk_size: int | None):
    """A 1-D mesh of the CPU devices to split a ``total``-configuration sweep over, or None for one device.

    Only the CPU backend is split: there, one XLA device per core runs its share single-threaded, which
    beats one device's multi-threaded small kernels (``benchmarks/sweep_throughput.py``; the
    ``sgtheory`` command exposes one device per core, :func:`sgtheory.hostdevices.one_device_per_core`).
    Every device gets at least 256 configurations: sweeps under 512 configurations, or with an explicit
    ``chunk_size`` under 512, stay on one device."""
    if jax.default_backend() != "cpu":
        return None
    devices = jax.devices()
    n = min(len(devices), total // 256)
    if chunk_size is not None:
        n = min(n, chunk_size // 256)
    if n < 2:
        return None
    return jax.sharding.Mesh(np.asarray(devices[:n]), ("configs",))


#: Default state floats per chunk: 2^20 per call (memory stays bounded), except for the CPU's whole-grid
#: update, which gets 2^17 per device (≈ 0.5 MB of float32 state, about a core's L2 cache: with larger
#: chunks the state streams from memory at every step). The ``vmap`` path (deep nets) prefers the large
#: chunks (``benchmarks/sweep_throughput.py``).
CHUNK_FLOATS, CHUNK_FLOATS_CPU_GRID = 2 ** 20, 2 ** 17


def default_chunk(n_state: int, n_devices: int = 1, *, whole_grid: bool = True) -> int:
    """Configurations per compiled call (a power of two per device, at least 256): see :data:`CHUNK_FLOATS`.

    Args:
        n_state: floats of one configuration's state.
        n_devices: devices the chunk is split over.
        whole_grid: the whole-grid update runs (smaller chunks on the CPU).

    Returns:
        The chunk size.
    """
    def pow2(floats):
        return max(256, 2 ** int(math.log2(max(1, floats // max(n_state, 16)))))

    if whole_grid and jax.default_backend() == "cpu":
        return n_devices * pow2(CHUNK_FLOATS_CPU_GRID)
    return pow2(CHUNK_FLOATS)


def devices_used(total: int, chunk_size: int | None = None) -> int:
    """How many devices :func:`sweep` splits a ``total``-configuration sweep over (see :func:`_mesh`).

    Args:
        total: configurations of the sweep.
        chunk_size: an explicit chunk size (under 512: one device), or None.

    Returns:
        The device count (1 without a split).
    """
    mesh = _mesh(total, chunk_size)
    return 1 if mesh is None else mesh.size


def engine(config: Config, problem, *, kernel: str = "auto", fast: bool = True) -> str:
    """Which implementation :func:`sweep` runs for ``config`` on ``problem`` with these options.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        kernel: as in :func:`sweep`.
        fast: as in :func:`sweep`.

    Returns:
        ``"fused"`` (one Pallas kernel for all steps, :mod:`sgtheory.linear.fused`), ``"grid"`` (the XLA
        whole-grid update of :mod:`sgtheory.linear.grid`) or ``"vmap"`` (``vmap`` of :func:`run_one`).

    Raises:
        InputError: ``kernel="fused"`` where the fused kernel cannot run.
    """
    kernel = choice(kernel, "kernel", KERNELS)
    whole = fast and _grid.applicable(config)
    gpu = jax.default_backend() == "gpu" and _fused.available()
    small = whole and _fused.applicable(config, problem.d + int(config.bias), problem.k)
    if kernel == "fused" and not (gpu and small):
        raise InputError("kernel fused: needs a GPU with Pallas' Triton backend and the small whole-grid case "
                         "(linear model, MSE, fixed rates, moments, at most "
                         f"{_fused.MAX_ROWS} inputs and {_fused.MAX_OUTPUTS} outputs)")
    if kernel == "fused" or (kernel == "auto" and gpu and small):
        return "fused"
    return "grid" if whole else "vmap"


def _check_rates(values, name):
    return positive_list(np.atleast_1d(np.asarray(values, dtype=float)).tolist(), name)


def sweep(config: Config, problem, alphas, betas, *, seeds=(0,), init_scales=(1.0,), steps: int = 1000,
          tol: float = 1e-5, chunk_size: int | None = None, progress: bool | None = None,
          fast: bool = True, kernel: str = "auto") -> SweepResult:
    """Run every (seed, init scale, α, β) combination for ``steps`` full-batch updates (see module doc).

    ``problem``'s dtype is the computation dtype (use ``problem.astype(jnp.float32)`` for fast sweeps).
    Configurations are processed ``chunk_size`` at a time, so memory stays bounded for any grid. With
    ``fast`` the case of :mod:`sgtheory.linear.grid` runs through its whole-grid update (same numbers);
    every other config through ``vmap(run_one)``. On the CPU backend with several XLA devices
    (``sgtheory sweep`` asks for one per core, :mod:`sgtheory.hostdevices`) each chunk is split over them
    in one compiled program. Results are reproducible for a given machine and device count; float32
    verdicts of runs at the very edge of stability can differ in round-off between device counts (a
    different kernel per batch shape), as between any two machines. Runs in three steps: validate the
    inputs, plan the engine and chunks, execute.

    Args:
        config: the model and its rule (full batch: ``batch_size`` None).
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        alphas, betas: the model's and the SG modules' learning rates (A,) and (B,), each > 0.
        seeds: initialisation seeds; seed s starts from ``init(config, problem, key=PRNGKey(s))``.
        init_scales: scales of the initial weights, each > 0.
        steps: updates per run.
        tol: a run has converged when its residual falls below ``tol`` times its start.
        chunk_size: configurations per compiled call (default :func:`default_chunk`).
        progress: a progress bar (None: only when stderr is a terminal).
        fast: use the whole-grid update where it applies.
        kernel: how the whole-grid case runs: ``"xla"`` (a scan of XLA kernels), ``"fused"`` (all steps in
            one Pallas kernel, :mod:`sgtheory.linear.fused`; GPU only) or ``"auto"`` (fused on a GPU when
            the problem is small enough, else XLA).

    Returns:
        A :class:`SweepResult` whose arrays have shape (S, I, A, B).

    Raises:
        InputError: any bad input (rates, seeds, scales, steps, tol, chunk size, kernel).
    """
    checked = _validate(config, alphas, betas, seeds, init_scales, steps, tol, chunk_size)
    return _execute(_plan(config, problem, *checked, fast=fast, kernel=kernel), progress)


def _validate(config: Config, alphas, betas, seeds, init_scales, steps, tol, chunk_size):
    """The sweep's inputs checked (an :class:`InputError` for any bad one) and normalised."""
    if config.batch_size is not None:
        raise InputError("sweep: runs full-batch updates; batch_size must be None")
    alphas, betas = _check_rates(alphas, "alphas"), _check_rates(betas, "betas")
    seeds = np.asarray(_seeds(seeds, "seeds"), dtype=np.int64)
    scales = _check_rates(init_scales, "init_scales")
    steps = int_in_range(steps, "steps", lo=1)
    tol = positive(tol, "tol")
    if chunk_size is not None:
        chunk_size = int_in_range(chunk_size, "chunk_size", lo=1)
    total = seeds.size * scales.size * alphas.size * betas.size
    if total >= 2 ** 31:
        raise InputError(f"sweep: {total} configurations; at most 2^31 − 1 in one sweep (split it)")
    return alphas, betas, seeds, scales, steps, tol, chunk_size


class _Plan(NamedTuple):
    """How a sweep runs: its coordinates, grid ``shape`` (S, I, A, B), ``chunk`` (configurations per
    compiled call) and ``run`` (lo -> the results of configurations lo .. lo + chunk − 1)."""

    alphas: np.ndarray
    betas: np.ndarray
    seeds: np.ndarray
    scales: np.ndarray
    shape: tuple
    chunk: int
    run: object


def _plan(config: Config, problem, alphas, betas, seeds, scales, steps, tol, chunk_size, *, fast, kernel) -> _Plan:
    """Pick the engine, the chunking and the device split, and bind the compiled chunk program."""
    path = engine(config, problem, kernel=kernel, fast=fast)
    opt = optimum(config, problem)
    dtype = np.dtype(problem.dtype)
    W_opt, b_opt = np.asarray(opt.W, dtype), np.asarray(opt.b, dtype)
    shape = (seeds.size, scales.size, alphas.size, betas.size)
    total = math.prod(shape)
    base = _initial_states(config, problem, seeds.astype(np.uint32))
    mesh = _mesh(total, chunk_size)
    n_dev = 1 if mesh is None else mesh.size
    if chunk_size is None:
        n_state = sum(math.prod(v.shape[1:]) for v in jax.tree_util.tree_leaves(base))
        chunk_size = default_chunk(n_state, n_dev, whole_grid=path != "vmap")
    per_device = int(min(chunk_size // n_dev, -(-total // n_dev)))
    static = dict(steps=steps, tol=tol, whole_grid=path != "vmap", fused=path == "fused", shape=shape,
                  chunk=per_device)
    args = (config, problem, W_opt, b_opt, base, alphas.astype(dtype), betas.astype(dtype), scales.astype(dtype))
    if mesh is None:
        run = functools.partial(_run_chunk, *args, **static)
    else:
        run = functools.partial(_run_split, *args, mesh=mesh, **static)
    return _Plan(alphas, betas, seeds, scales, shape, per_device * n_dev, run)


def _execute(plan: _Plan, progress) -> SweepResult:
    """Run the plan chunk by chunk and assemble the :class:`SweepResult`."""
    from sgtheory.progress import progress as bar

    total = math.prod(plan.shape)
    out = None
    with bar(total, desc="sweep", unit="cfg", enabled=progress) as pb:
        for lo in range(0, total, plan.chunk):
            hi = min(lo + plan.chunk, total)
            res = {k: np.asarray(v)[: hi - lo] for k, v in plan.run(np.int32(lo)).items()}
            if out is None:
                out = {k: np.empty(total, v.dtype) for k, v in res.items()}
            for k, v in res.items():
                out[k][lo:hi] = v
            pb.update(hi - lo)
    return SweepResult(plan.alphas, plan.betas, plan.seeds, plan.scales,
                       *(out[k].reshape(plan.shape) for k in _KEYS))


__all__ = ["STATUS", "KERNELS", "SweepResult", "default_chunk", "devices_used", "engine", "scaled", "run_one",
           "run_grid", "sweep"]
