"""Populations: many training runs of one net in one compiled program, with error bars.

:func:`train_population` trains every combination of seeds × learning rates × SG learning rates (× SG
mix weights) as one population: the single-run program of :mod:`sgtheory.nets.program` ``vmap``-ped
over a leading member axis and split over every device JAX sees (:mod:`sgtheory.nets.sharding`: CPU
devices, several GPUs, several processes under ``jax.distributed``). Members never interact: each is
the run :func:`sgtheory.nets.train` would give for its seed and rates alone (bit-identical on the
CPU), and a member that diverges leaves the others untouched (its ``status`` says ``diverged``).

The SG mix weight is a method option read as a Python number by the methods, so each distinct value
is its own program (run one after the other); seeds and rates share one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.data import Dataset
from sgtheory.errors import InputError
from sgtheory.nets import memory
from sgtheory.nets.methods import Method, MethodState, get
from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.program import Hyper
from sgtheory.nets.runner import data_arrays, execute
from sgtheory.nets.train import TrainResult, _nbytes, plan, seed_value, settings_info
from sgtheory.validate import int_in_range, positive

METRICS = ("train_loss", "test_error", "sg_loss", "cosine")


class PopulationResult(NamedTuple):
    """A trained population of ``P`` members.

    ``params``, ``bn_state``, ``method_state``: numpy pytrees with a leading member axis ``(P, ...)``;
    ``metrics``: ``step`` ``(E,)``, ``train_loss`` / ``test_error`` / ``sg_loss`` ``(P, E)``, ``cosine``
    ``(P, E, depth)``; ``members``: per member a dict of its ``seed``, ``lr``, ``sg_lr`` (and ``mix``);
    ``status``: per member ``"ok"`` or ``"diverged"``; ``config``; ``methods``: per member;
    ``info``: shared settings and timings (JSON-able).
    """

    params: Any
    bn_state: Any
    method_state: MethodState
    metrics: dict
    members: tuple
    status: tuple
    config: MLPConfig
    methods: tuple
    info: dict

    @property
    def size(self) -> int:
        return len(self.members)

    def member(self, i: int) -> TrainResult:
        """Member ``i`` as the :class:`TrainResult` of a single run (its own settings in ``info``)."""
        if not 0 <= i < self.size:
            raise InputError(f"member: {i} is outside the population (0..{self.size - 1})")
        pick = lambda tree: jax.tree_util.tree_map(lambda a: a[i], tree)
        metrics = {"step": self.metrics["step"], **{k: self.metrics[k][i] for k in METRICS}}
        info = {**self.info, **self.members[i], "status": self.status[i], "member": i}
        return TrainResult(pick(self.params), pick(self.bn_state), pick(self.method_state), metrics, self.config,
                           self.methods[i], info)

    def summary(self, metric: str = "test_error", members=None) -> dict:
        """Mean ± sd (:func:`mean_sd`) of the final ``metric`` over ``members`` (default all) that did not diverge."""
        final = self.metrics[metric][:, -1]
        idx = range(self.size) if members is None else members
        return mean_sd([float(final[i]) for i in idx if self.status[i] == "ok"])

    def groups(self) -> list[dict]:
        """The members grouped by their settings (all but the seed): per group its settings, ``seeds``,
        ``members`` (indices) and the mean ± sd over its seeds of each final metric (cosine aside)."""
        keys = [k for k in ("lr", "sg_lr", "mix") if k in self.members[0]]
        found: dict = {}
        for i, m in enumerate(self.members):
            found.setdefault(tuple(m[k] for k in keys), []).append(i)
        return [{**dict(zip(keys, key)), "seeds": [self.members[i]["seed"] for i in idx], "members": idx,
                 **{k: self.summary(k, idx) for k in METRICS if k != "cosine"}} for key, idx in found.items()]


def mean_sd(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation of the finite ``values`` (NaN/inf, e.g. diverged runs, left out).

    Args:
      values: numbers, one per seed.

    Returns:
      ``{"n", "mean", "sd"}``: ``sd`` with ddof 1, None with fewer than two values; ``mean`` None when there
      is no finite value.
    """
    v = np.asarray([x for x in values if math.isfinite(x)], float)
    mean = float(v.mean()) if v.size else None
    sd = float(v.std(ddof=1)) if v.size > 1 else None
    return {"n": int(v.size), "mean": mean, "sd": sd}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """``a − b`` paired by seed: its mean ± sd over seeds and whether it lies beyond that spread.

    Args:
      a, b: one final value per seed, in the same seed order (e.g. SG's and BP's test errors).

    Returns:
      ``{"n", "mean", "sd", "beyond_spread"}`` over the seeds where both are finite; ``beyond_spread`` is
      ``|mean| > sd`` with at least two seeds (a difference smaller than its own seed-to-seed spread is
      not counted as an effect), else False.
    """
    d = [x - y for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    out = mean_sd(d)
    out["beyond_spread"] = bool(out["sd"] is not None and abs(out["mean"]) > out["sd"])
    return out


def _numbers(value, name: str, *, allow_none: bool = False) -> list:
    if value is None and allow_none:
        return [None]
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not values:
        raise InputError(f"{name}: empty list")
    return [positive(v, name) for v in values]


def seed_list(seeds) -> list[int]:
    """The seeds of a population.

    Args:
        seeds: a count ``N`` (seeds 0..N-1) or a sequence of distinct seeds.

    Returns:
        The seeds as a list of ints.

    Raises:
        InputError: an empty list, a repeated or bad seed, or a count below 1.
    """
    if isinstance(seeds, (list, tuple, np.ndarray, range)):
        out = [seed_value(s) for s in seeds]
        if not out:
            raise InputError("seeds: empty list")
        if len(set(out)) != len(out):
            raise InputError(f"seeds: repeated seeds in {out}")
        return out
    n = int_in_range(seeds, "seeds", 1)
    return list(range(n))


def _mix(value) -> float:
    try:
        m = float(value)
    except (TypeError, ValueError):
        raise InputError(f"mix: expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= m <= 1.0:
        raise InputError(f"mix: must be in [0, 1], got {value!r}")
    return m


def members_grid(seeds, lr, sg_lr=None, mix=None) -> list[dict]:
    """Every combination, mix-major then ``lr``, ``sg_lr`` and seed fastest.

    Args:
        seeds: a count or a sequence of seeds (:func:`seed_list`).
        lr: a rate or a list of rates (> 0).
        sg_lr: the same for the method state (None follows ``lr``).
        mix: SG mixing weights in [0, 1] (None: the method's own).

    Returns:
        One dict per member: ``seed``, ``lr``, ``sg_lr`` (and ``mix`` when given).

    Raises:
        InputError: an empty list or a bad value.
    """
    mixes = [None] if mix is None else [_mix(m) for m in (mix if isinstance(mix, (list, tuple)) else [mix])]
    if not mixes:
        raise InputError("mix: empty list")
    out = []
    for m, r, s_r, s in itertools.product(mixes, _numbers(lr, "lr"), _numbers(sg_lr, "sg_lr", allow_none=True),
                                          seed_list(seeds)):
        member = {"seed": s, "lr": r, "sg_lr": r if s_r is None else s_r}
        if m is not None:
            member["mix"] = m
        out.append(member)
    return out


def train_population(data: Dataset, config: MLPConfig, method: Method | str, *, seeds=1, lr=1e-3, sg_lr=None,
                     mix=None, steps: int, batch_size: int = 128, optimizer="adam", schedule: str = "constant",
                     eval_every: int = 500, dtype=jnp.float32, devices=None, show_progress: bool | None = None,
                     checkpoint_dir=None, checkpoint_every: int | None = None) -> PopulationResult:
    """Train one member per combination of ``seeds`` × ``lr`` × ``sg_lr`` × ``mix``, in one program per ``mix``.

    Args:
      data, config, method, steps, batch_size, optimizer, schedule, eval_every, dtype: as
        :func:`sgtheory.nets.train` (an optimiser factory is called with each member's rate as data).
      seeds: a count ``N`` (seeds 0..N-1) or a sequence of distinct seeds (0 .. 2**32 - 1).
      lr, sg_lr: a rate or a sequence of rates (> 0); ``sg_lr`` None: each member's ``lr``.
      mix: None, or SG mix weights in [0, 1] (SG methods only; one program per value).
      devices: the devices to split the members over (default: every device JAX sees).
      show_progress: a progress bar (None: only on a terminal).
      checkpoint_dir, checkpoint_every: write :func:`sgtheory.nets.save_population` there at the first
        evaluation at or after each multiple of ``checkpoint_every`` steps.

    Returns:
      A :class:`PopulationResult`; member ``i`` equals ``train(...)`` with ``members[i]``'s settings.
    """
    from sgtheory.nets.train import checkpointer

    method = get(method) if isinstance(method, str) else method
    members = members_grid(seeds, lr, sg_lr, mix)
    if mix is not None and "mix" not in getattr(method, "options", {}):
        raise InputError(f"mix: {method.name} has no SG mix weight")
    groups = {}
    for i, m in enumerate(members):
        groups.setdefault(m.get("mix"), []).append(i)
    methods = {k: method if k is None else get(method.name, **{**method.options, "mix": k}) for k in groups}
    plans = {k: plan(data, config, methods[k], steps=steps, batch_size=batch_size, optimizer=optimizer,
                     schedule=schedule, eval_every=eval_every, dtype=dtype) for k in groups}
    checkpointer(checkpoint_dir, checkpoint_every)  # validates before any training
    arrays = data_arrays(data, config.n_out, next(iter(plans.values())).dtype)
    devs = list(jax.devices() if devices is None else devices)
    for k, idx in groups.items():
        memory.check_fits(plans[k], n_members=len(idx), n_test=arrays.x_test.shape[0],
                          data_bytes=_nbytes(arrays), devices=devs)
    info = {**settings_info(next(iter(plans.values())), data), "population": len(members)}

    parts = []
    for k, idx in groups.items():
        sub = [members[i] for i in idx]
        hyper = Hyper(*(np.asarray([m[f] for m in sub], plans[k].dtype) for f in ("lr", "sg_lr")))
        save = _population_saver(checkpoint_dir, checkpoint_every, len(groups), plans[k], sub, info)
        raw = execute(plans[k], arrays, [m["seed"] for m in sub], hyper, batched=True, devices=devs,
                      show_progress=show_progress, desc=f"train {len(sub)} x {methods[k].name}",
                      checkpoint_every=checkpoint_every, on_checkpoint=save)
        parts.append((plans[k], sub, raw))
    return _combine(parts, info)


def _population_saver(checkpoint_dir, checkpoint_every, n_groups: int, p, sub, info):
    if checkpoint_dir is None or checkpoint_every is None:
        return None
    if n_groups > 1:
        raise InputError("checkpoint every: not with several mix values (one program each); checkpoint at the end")
    from sgtheory.nets.checkpoint import save_population

    return lambda _, raw: save_population(checkpoint_dir, _combine([(p, sub, raw)], info))


def _combine(parts, info: dict) -> PopulationResult:
    cat = lambda *xs: np.concatenate(xs)
    states = [raw.state for _, _, raw in parts]
    fixed = [raw.member.fixed for _, _, raw in parts]
    rows = [raw.rows for _, _, raw in parts]
    status = tuple("ok" if bool(np.all(f)) else "diverged" for r in rows for f in r["finite"])
    metrics = {"step": rows[0]["step"], **{k: cat(*(r[k] for r in rows)) for k in METRICS}}
    tree = lambda get_: jax.tree_util.tree_map(cat, *[get_(s) for s in states])
    timing = {k: [raw.info[k] for _, _, raw in parts] for k in ("compile_seconds", "train_seconds")}
    total = sum(timing["train_seconds"])
    steps = parts[0][0].steps
    run_info = {**info, **{k: round(sum(v), 3) for k, v in timing.items()},
                "steps_per_second": round(steps * len(parts) / max(total, 1e-9), 2),
                "member_steps_per_second": round(steps * len(status) / max(total, 1e-9), 2),
                "programs": len(parts),
                **{k: parts[0][2].info[k] for k in ("backend", "devices", "processes", "padded_members",
                                                    "bitwise_options")}}
    members = tuple(m for _, sub, _ in parts for m in sub)
    methods = tuple(p.method for p, sub, _ in parts for _ in sub)
    return PopulationResult(tree(lambda s: s.params), tree(lambda s: s.bn),
                            MethodState(tree(lambda s: s.learned), jax.tree_util.tree_map(cat, *fixed)),
                            metrics, members, status, parts[0][0].config, methods, run_info)


__all__ = ["PopulationResult", "mean_sd", "members_grid", "paired_difference", "seed_list",
           "train_population"]
