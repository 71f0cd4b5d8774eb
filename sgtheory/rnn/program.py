"""The compiled single-run step of recurrent training, vmapped over seeds and scanned over a chunk of steps.

A run's state is a :class:`RunState`; one step samples a batch on the device (a Copy batch at the run's
curriculum level, or the next sequence of the text streams), runs the window algorithm
(:func:`sgtheory.rnn.window.run_sequence`) and moves the curriculum or the stream position on.
:class:`Program` compiles ``vmap(scan(step))`` once per padded length; programs are shared by every
run whose static settings agree (numbers are data).

Copy sequences grow with the curriculum: every seed's batch is padded to one length, a multiple of
``T`` rounded up to a few sizes per octave (:func:`padded_length`), so a run compiles a handful of
programs; padding is masked and never updates anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.rnn.cores import CoreSpec, init_core, zero_state
from sgtheory.rnn.settings import DTYPES, Settings
from sgtheory.rnn.sg import init_aux, init_sg
from sgtheory.rnn.tasks import CopyTask, Level, TextTask
from sgtheory.rnn.window import Numbers, Params, Rule, cond_size, init_opt_states, run_sequence


class RunState(NamedTuple):
    """One run's state: parameters, Adam states, carried state ``s`` (text streams), curriculum level,
    stream phase, PRNG key and step count."""

    params: Params
    opt: Any
    s: Any
    level: Level
    phase: Any
    key: Any
    step: Any


def make_task(settings: Settings, vocab: int | None = None):
    """The task object for ``settings``.

    Args:
        settings: the run's settings (its ``task``).
        vocab: number of symbols (charlm only).

    Returns:
        A :class:`~sgtheory.rnn.tasks.CopyTask` or :class:`~sgtheory.rnn.tasks.TextTask`.
    """
    if settings.task == "charlm":
        if vocab is None:
            raise InputError("charlm: needs a corpus")
        return TextTask(int(vocab), settings.seq_len)
    return CopyTask(settings.task == "repeat-copy", settings.bits, float(settings.threshold),
                    float(settings.repeat_norm))


def make_rule(settings: Settings, method, task, truncation: int | None = None) -> Rule:
    """The static :class:`Rule` of ``method`` on ``task``.

    Args:
        settings: the run's settings.
        method: the recurrent method.
        task: the task object (:func:`make_task`).
        truncation: overrides ``settings.truncation``.

    Returns:
        The :class:`Rule`.
    """
    return Rule(settings.core, task.loss, task.n_out, int(truncation or settings.truncation), method.uses_sg,
                method.conditioned, method.has_aux, method.two_pass, settings.update, method.sg_input)


def numbers(settings: Settings, method, n: int, dtype=jnp.float32) -> Numbers:
    """:class:`Numbers` for ``n`` runs (every field ``(n,)``).

    Args:
        settings: the run's settings (rates, clips).
        method: the recurrent method (its SG options).
        n: runs.
        dtype: the numbers' dtype.

    Returns:
        The :class:`Numbers`.
    """
    vals = (settings.lr, settings.sg_lr, settings.clip, settings.sg_clip, method.inject_scale,
            method.target_discount, method.aux_weight)
    return Numbers(*(np.full((n,), v, np.dtype(dtype)) for v in vals))


def init_run(settings: Settings, method, task, key) -> RunState:
    """A fresh :class:`RunState` from ``key`` (core, SG and aux head initialised; level 1; phase random).

    Args:
        settings: the run's settings.
        method: the recurrent method.
        task: the task object.
        key: the run's JAX PRNG key.

    Returns:
        The :class:`RunState`.
    """
    dtype = DTYPES[settings.dtype]
    spec = CoreSpec(settings.core, task.n_in, settings.hidden, task.n_out)
    k_core, k_sg, k_phase, k_data = jax.random.split(key, 4)
    rule = make_rule(settings, method, task)
    sg = init_sg(method.module, spec.state_size, cond_size(rule), key=k_sg, hidden=method.hidden, dtype=dtype) \
        if method.uses_sg else {}
    aux = init_aux(spec.state_size, dtype) if method.has_aux else {}
    params = Params(init_core(spec, key=k_core, dtype=dtype), aux, sg)
    phase = jnp.zeros((), jnp.int32)
    return RunState(params, init_opt_states(params), zero_state(spec, settings.batch, dtype),
                    Level(jnp.ones((), jnp.int32), jnp.ones((), jnp.int32)), phase, k_data, jnp.zeros((), jnp.int32))


def static_key(settings: Settings) -> Settings:
    """``settings`` with every field that is data, or read only on the host, set to a constant.

    Args:
        settings: the run's settings.

    Returns:
        The key under which compiled programs are shared.
    """
    return replace(settings, steps=1, lr=1.0, sg_lr=1.0, clip=1.0, sg_clip=1.0, eval_every=1, patience=0,
                   eval_chars=0, max_length=1)


@partial(jax.jit, static_argnums=(0, 1, 2))
def init_states(settings: Settings, method, task, keys) -> RunState:
    """Fresh :class:`RunState` s for a stack of PRNG keys ``(seeds, 2)`` (leading axis = seed)."""
    return jax.vmap(lambda k: init_run(settings, method, task, k))(keys)


class Program:
    """The compiled chunk programs of one run (one per padded length) and the evaluation programs."""

    def __init__(self, settings: Settings, method, task):
        self.settings, self.method, self.task = settings, method, task
        self.dtype = DTYPES[settings.dtype]
        self.text_task = isinstance(task, TextTask)
        self.lookahead = settings.truncation if method.conditioned else 1
        self.compiled: dict = {}
        self.compile_seconds = 0.0

    def rule(self, length: int) -> Rule:
        """The window rule at padded ``length`` (``bptt``: one window spans it)."""
        return make_rule(self.settings, self.method, self.task, length if self.method.full_sequence else None)

    def step(self, state: RunState, nums: Numbers, text, length: int):
        """One training batch of one run: ``(state, nums, text, length) -> (state, record)``.

        ``record`` is ``(loss in bits, SG loss, RMS of the exit SGs, level n, level r)``.
        """
        st, task = self.settings, self.task
        batch, s0 = self.next_batch(state, length, text)
        out = run_sequence(self.rule(length), state.params, state.opt, s0, batch, nums)
        if self.text_task:
            bits = out.loss / (st.seq_len * st.batch) / math.log(2.0)
            s_next = jnp.where(batch.cont, out.s_end, jnp.zeros_like(out.s_end))
            level, phase = state.level, task.advance(state.phase, batch.cont)
        else:
            bits = task.bits_per_target(out.loss, batch)
            s_next, level, phase = state.s, task.raise_level(state.level, bits), state.phase
        rms = jnp.sqrt(jnp.mean(out.exits ** 2))
        rec = (bits, out.sg_loss, rms, state.level.n, state.level.r)
        return RunState(out.params, out.opt_states, s_next, level, phase, state.key, state.step + 1), rec

    def next_batch(self, state: RunState, length: int, text, salt: int = 0):
        """The batch the next step of one run trains on and its entry state (``salt`` > 0: fresh Copy patterns)."""
        if self.text_task:
            return self.task.sample(text, state.phase, self.settings.batch, self.lookahead, self.dtype), state.s
        key = jax.random.fold_in(state.key, state.step)
        key = jax.random.fold_in(key, salt) if salt else key
        batch = self.task.sample(key, state.level, length, self.settings.batch, self.dtype, self.lookahead)
        return batch, jnp.zeros_like(state.s)

    def chunk_fn(self, length: int):
        """``vmap`` over seeds of a ``scan`` over ``settings.chunk`` steps; steps from ``n_active`` on are no-ops."""
        def chunk(state, nums, text, n_active):
            def body(st, i):
                empty = tuple(jnp.zeros((), d) for d in (self.dtype,) * 3 + (jnp.int32,) * 2)
                return jax.lax.cond(i < n_active, lambda s: self.step(s, nums, text, length), lambda s: (s, empty), st)

            return jax.lax.scan(body, state, jnp.arange(self.settings.chunk))

        return jax.vmap(chunk, in_axes=(0, 0, None, None))

    def run_chunk(self, length: int, state, nums, text, n_active: int):
        """Run ``n_active`` steps of every seed (compiling the chunk program on first use)."""
        # Programs are shared by every run with the same static settings (numbers are data).
        key = (static_key(self.settings), self.method, self.task, length, state.step.shape, text.shape)
        if key not in COMPILED:
            t0 = time.perf_counter()
            COMPILED[key] = jax.jit(self.chunk_fn(length)).lower(
                state, nums, text, jnp.asarray(n_active, jnp.int32)).compile()
            self.compile_seconds += time.perf_counter() - t0
        self.compiled[length] = COMPILED[key]
        return self.compiled[length](state, nums, text, jnp.asarray(n_active, jnp.int32))


COMPILED: dict = {}


def padded_length(task: CopyTask, level: tuple[int, int], truncation: int) -> int:
    """The padded length for a level: the next size in 1, 1.25, 1.5, 1.75 × 2^k windows of ``T`` steps at or
    above the level's length.

    Args:
        task: the Copy task.
        level: ``(n, r)``.
        truncation: T.

    Returns:
        The length in steps, a multiple of T.
    """
    windows = math.ceil(task.length(*level) / truncation)
    size = 1
    while size < windows:
        octave = 2 ** max(0, int(math.log2(size)) - 2)
        size += octave
    return size * truncation


def rises_that_fit(task: CopyTask, levels: list[tuple[int, int]], length: int, cap: int) -> int:
    """How many curriculum rises (at most ``cap``) every seed can take before a sequence outgrows ``length``.

    Args:
        task: the Copy task.
        levels: each seed's level ``(n, r)``.
        length: the padded length.
        cap: the most rises counted.

    Returns:
        The count.
    """
    fit = cap
    for n, r in levels:
        k = 0
        while k < cap and task.length(*task.next_level(n, r)) <= length:
            n, r = task.next_level(n, r)
            k += 1
        fit = min(fit, k)
    return fit


def grow_length(task: CopyTask, top: tuple[int, int], truncation: int, max_length: int) -> int:
    """A padded length with room for about a quarter more of the most advanced level (at least two rises).

    Args:
        task: the Copy task.
        top: the most advanced seed's level ``(n, r)``.
        truncation: T.
        max_length: the longest allowed padded sequence.

    Returns:
        The length in steps, a multiple of T.
    """
    ahead = top
    for _ in range(max(2, top[0] // 4)):
        ahead = task.next_level(*ahead)
    length = padded_length(task, ahead, truncation)
    if length > max_length:  # as much room as the cap allows, still a multiple of T
        length = max(padded_length(task, top, truncation), max_length // truncation * truncation)
    return length


__all__ = ["COMPILED", "Program", "RunState", "grow_length", "init_run", "init_states", "make_rule", "make_task",
           "numbers", "padded_length", "rises_that_fit", "static_key"]
