"""Training recurrent nets with any method of :mod:`sgtheory.rnn.methods`, several seeds as one program.

:func:`train` runs one (task, method, settings) for a list of seeds: the single-run step (sample a
batch on the device, run the window algorithm, update the curriculum or the stream position) is
``vmap``-ped over seeds and ``lax.scan``-ned over a chunk of steps, so the seeds share one compiled
program and no host round-trip happens inside a chunk. Learning rates, clip norms, the SG scale and
discount and the aux weight are data (:class:`sgtheory.rnn.window.Numbers`).

Copy and Repeat Copy sequences grow with the curriculum. Every seed's batch is padded to one length
(a multiple of ``T``, rounded up to a few sizes per octave, so a run compiles a handful of programs);
padding is masked and never updates anything. A chunk runs at most as many steps as the curriculum
can rise without outgrowing that length (one rise per step at most), so no rise is ever held back.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.progress import progress
from sgtheory.rnn import methods as rnn_methods
from sgtheory.rnn.cores import CORES, CoreSpec, init_core, zero_state
from sgtheory.rnn.metrics import bits_per_character, sg_cosine
from sgtheory.rnn.sg import init_aux, init_sg
from sgtheory.rnn.tasks import TASKS, CopyTask, Level, TextTask
from sgtheory.rnn.window import UPDATES, Numbers, Params, Rule, cond_size, init_opt_states, run_sequence
from sgtheory.validate import choice, int_in_range, positive

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


@dataclass(frozen=True)
class Settings:
    """Everything but the method and the seeds. Defaults are ours (the paper's are unknown; paper_repro.md).

    ``task`` (copy | repeat-copy | charlm), ``core`` (lstm | tanh), ``hidden`` units, ``truncation`` T,
    ``batch`` sequences per step, ``steps`` (training batches), ``lr``/``sg_lr`` (Adam, core and SG),
    ``clip``/``sg_clip`` (global-norm clips, ``inf`` = none), ``update`` (window | sequence),
    ``threshold`` (curriculum, bits), ``bits`` and ``repeat_norm`` (Copy tasks), ``max_length`` (longest
    padded Copy sequence), ``seq_len`` (charlm: characters per sequence, a multiple of T), ``eval_every``
    (steps between evaluations), ``patience`` (charlm early stopping: evaluations without improvement
    on every seed; 0 = never stop early), ``eval_streams`` and ``eval_chars`` (validation text read as
    that many streams; ``eval_chars`` = 0: all of it), ``chunk`` (steps per compiled scan), ``dtype``.
    """

    task: str = "copy"
    core: str = "lstm"
    hidden: int = 128
    truncation: int = 3
    batch: int = 32
    steps: int = 2000
    lr: float = 1e-3
    sg_lr: float = 1e-3
    clip: float = 1.0
    sg_clip: float = 1.0
    update: str = "window"
    threshold: float = 0.15
    bits: int = 8
    repeat_norm: float = 10.0
    max_length: int = 1024
    seq_len: int = 120
    eval_every: int = 250
    patience: int = 0
    eval_streams: int = 64
    eval_chars: int = 0
    chunk: int = 25
    dtype: str = "float32"

    def check(self) -> Settings:
        """The settings after validation (one :class:`sgtheory.InputError` line for the first bad field)."""
        choice(self.task, "task", TASKS)
        choice(self.core, "core", CORES)
        choice(self.update, "update", UPDATES)
        choice(self.dtype, "dtype", DTYPES)
        for name in ("hidden", "truncation", "batch", "steps", "bits", "max_length", "seq_len", "eval_every",
                     "eval_streams", "chunk"):
            int_in_range(getattr(self, name), name.replace("_", " "), 1)
        int_in_range(self.patience, "patience", 0)
        int_in_range(self.eval_chars, "eval chars", 0)
        for name in ("lr", "sg_lr", "clip", "sg_clip", "repeat_norm"):
            v = float(getattr(self, name))
            if math.isnan(v) or v <= 0 or (name not in ("clip", "sg_clip") and not math.isfinite(v)):
                raise InputError(f"{name.replace('_', ' ')}: must be a finite number > 0, got {v!r}"
                                 + (" (inf = no clipping)" if "clip" in name else ""))
        positive(self.threshold, "threshold")
        if self.task == "charlm":
            if self.truncation > self.seq_len:
                raise InputError(f"truncation: T = {self.truncation} is longer than the sequence ({self.seq_len} "
                                 f"characters; see --seq-len)")
            if self.seq_len % self.truncation:
                raise InputError(f"truncation: T = {self.truncation} must divide the sequence length {self.seq_len}")
        elif self.truncation > self.max_length:
            raise InputError(f"truncation: T = {self.truncation} is longer than the longest sequence "
                             f"(max length {self.max_length})")
        return self

    def to_dict(self) -> dict:
        """JSON-able copy (an infinite clip norm, "no clipping", is written as the string ``"inf"``)."""
        return {k: "inf" if isinstance(v, float) and math.isinf(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Settings:
        """The settings :meth:`to_dict` wrote (validated)."""
        return cls(**{k: float("inf") if v == "inf" else v for k, v in d.items()}).check()


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


class RNNResult(NamedTuple):
    """Output of :func:`train` (numpy; leading axis = seed).

    ``params``: final :class:`Params` (for charlm: the best on validation); ``metrics``: per step
    ``loss_bits``, ``sg_loss``, ``sg_rms``, ``level_n``, ``level_r`` ``(seeds, steps_run)``; per
    evaluation ``eval_step`` ``(E,)``, ``cosine`` and (charlm) ``val_bpc`` ``(seeds, E)``;
    ``summary``: the task metric per seed (JSON-able); ``settings``, ``method``, ``seeds``, ``info``.
    """

    params: Any
    metrics: dict
    summary: dict
    settings: Settings
    method: Any
    seeds: tuple
    info: dict


def make_task(settings: Settings, vocab: int | None = None):
    """The task object for ``settings`` (``vocab``: number of symbols, charlm only)."""
    if settings.task == "charlm":
        if vocab is None:
            raise InputError("charlm: needs a corpus")
        return TextTask(int(vocab), settings.seq_len)
    return CopyTask(settings.task == "repeat-copy", settings.bits, float(settings.threshold),
                    float(settings.repeat_norm))


def make_rule(settings: Settings, method, task, truncation: int | None = None) -> Rule:
    """The static :class:`Rule` of ``method`` on ``task`` (``truncation`` overrides ``settings.truncation``)."""
    return Rule(settings.core, task.loss, task.n_out, int(truncation or settings.truncation), method.uses_sg,
                method.conditioned, method.has_aux, method.two_pass, settings.update)


def numbers(settings: Settings, method, n: int, dtype=jnp.float32) -> Numbers:
    """:class:`Numbers` for ``n`` runs (every field ``(n,)``)."""
    vals = (settings.lr, settings.sg_lr, settings.clip, settings.sg_clip, method.inject_scale,
            method.target_discount, method.aux_weight)
    return Numbers(*(np.full((n,), v, np.dtype(dtype)) for v in vals))


def init_run(settings: Settings, method, task, key) -> RunState:
    """A fresh :class:`RunState` from ``key`` (core, SG and aux head initialised; level 1; phase random)."""
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


def _static(settings: Settings) -> Settings:
    """``settings`` with every field that is data, or read only on the host, set to a constant: the key
    under which compiled programs are shared."""
    return replace(settings, steps=1, lr=1.0, sg_lr=1.0, clip=1.0, sg_clip=1.0, eval_every=1, patience=0,
                   eval_chars=0, max_length=1)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _init_states(settings: Settings, method, task, keys) -> RunState:
    return jax.vmap(lambda k: init_run(settings, method, task, k))(keys)


class _Program:
    """The compiled chunk programs of one run (one per padded length) and the evaluation programs."""

    def __init__(self, settings: Settings, method, task):
        self.settings, self.method, self.task = settings, method, task
        self.dtype = DTYPES[settings.dtype]
        self.text_task = isinstance(task, TextTask)
        self.lookahead = settings.truncation if method.conditioned else 1
        self.compiled: dict = {}
        self.compile_seconds = 0.0

    def rule(self, length: int) -> Rule:
        return make_rule(self.settings, self.method, self.task, length if self.method.full_sequence else None)

    def step(self, state: RunState, nums: Numbers, text, length: int):
        st, task = self.settings, self.task
        key = jax.random.fold_in(state.key, state.step)
        if self.text_task:
            batch = task.sample(text, state.phase, st.batch, self.lookahead, self.dtype)
            s0 = state.s
        else:
            batch = task.sample(key, state.level, length, st.batch, self.dtype, self.lookahead)
            s0 = jnp.zeros_like(state.s)
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

    def chunk_fn(self, length: int):
        def chunk(state, nums, text, n_active):
            def body(st, i):
                empty = tuple(jnp.zeros((), d) for d in (self.dtype,) * 3 + (jnp.int32,) * 2)
                return jax.lax.cond(i < n_active, lambda s: self.step(s, nums, text, length), lambda s: (s, empty), st)

            return jax.lax.scan(body, state, jnp.arange(self.settings.chunk))

        return jax.vmap(chunk, in_axes=(0, 0, None, None))

    def run_chunk(self, length: int, state, nums, text, n_active: int):
        # Programs are shared by every run with the same static settings (numbers are data).
        key = (_static(self.settings), self.method, self.task, length, state.step.shape, text.shape)
        if key not in _COMPILED:
            t0 = time.perf_counter()
            _COMPILED[key] = jax.jit(self.chunk_fn(length)).lower(
                state, nums, text, jnp.asarray(n_active, jnp.int32)).compile()
            self.compile_seconds += time.perf_counter() - t0
        self.compiled[length] = _COMPILED[key]
        return self.compiled[length](state, nums, text, jnp.asarray(n_active, jnp.int32))


_COMPILED: dict = {}


def padded_length(task: CopyTask, level: tuple[int, int], truncation: int) -> int:
    """The padded length for a level: the next size in 1, 1.25, 1.5, 1.75 × 2^k windows of ``T``
    steps at or above the level's length."""
    windows = math.ceil(task.length(*level) / truncation)
    size = 1
    while size < windows:
        octave = 2 ** max(0, int(math.log2(size)) - 2)
        size += octave
    return size * truncation


def _rises_that_fit(task: CopyTask, levels: list[tuple[int, int]], length: int, cap: int) -> int:
    """How many curriculum rises (at most ``cap``) every seed can take before a sequence outgrows ``length``."""
    fit = cap
    for n, r in levels:
        k = 0
        while k < cap and task.length(*task.next_level(n, r)) <= length:
            n, r = task.next_level(n, r)
            k += 1
        fit = min(fit, k)
    return fit


def _select(which, new, old):
    """Per seed (leading axis), ``new`` where ``which`` else ``old``."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(which.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _grow(task: CopyTask, top: tuple[int, int], truncation: int, max_length: int) -> int:
    """A padded length with room for about a quarter more of the most advanced level (at least two rises)."""
    ahead = top
    for _ in range(max(2, top[0] // 4)):
        ahead = task.next_level(*ahead)
    length = padded_length(task, ahead, truncation)
    if length > max_length:  # as much room as the cap allows, still a multiple of T
        length = max(padded_length(task, top, truncation), max_length // truncation * truncation)
    return length


def _as_method(method):
    return rnn_methods.get(method) if isinstance(method, str) else method


def train(settings: Settings, method, seeds=(0,), *, corpus=None, show_progress: bool | None = None) -> RNNResult:
    """Train ``method`` on ``settings.task`` for every seed in ``seeds`` at once (one vmapped program).

    Args:
        settings: :class:`Settings` (validated here).
        method: a :class:`sgtheory.rnn.methods.RecurrentMethod` or a name in ``METHODS``.
        seeds: integer seeds; run ``i`` derives everything random from ``PRNGKey(seeds[i])``.
        corpus: a :class:`sgtheory.data.text.Corpus` (charlm only).
        show_progress: progress bar on stderr (None: only on a terminal).

    Returns:
        :class:`RNNResult`. Copy tasks: ``summary["solved_n"]`` etc. per seed (the level solved within
        ``steps`` batches); charlm: best validation BPC per seed (early stopping) and the test BPC there.
    """
    settings = settings.check()
    method = _as_method(method)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise InputError("seeds: need at least one")
    if (settings.task == "charlm") != (corpus is not None):
        raise InputError("corpus: needed for charlm, and only for charlm")
    task = make_task(settings, corpus.vocab_size if corpus is not None else None)
    prog = _Program(settings, method, task)
    dtype = prog.dtype
    text = jnp.zeros((1,), jnp.int32)
    if corpus is not None:
        task.check(corpus.train.size, settings.batch, prog.lookahead)
        text = jnp.asarray(corpus.train, jnp.int32)
        valid = corpus.valid[: settings.eval_chars] if settings.eval_chars else corpus.valid
        for what, part in (("validation", valid), ("test", corpus.test)):
            if part.size < 2 * settings.eval_streams:
                raise InputError(f"corpus: {part.size} {what} characters are too few for {settings.eval_streams} "
                                 f"evaluation streams")
    keys = np.stack([np.asarray(jax.random.key_data(jax.random.PRNGKey(s))) for s in seeds])
    state = _init_states(_static(settings), method, task, keys)
    if corpus is not None:  # each seed starts its streams at its own random phase
        stream = task.stream_length(corpus.train.size, settings.batch)
        room = max(1, stream - 2 * (settings.seq_len + prog.lookahead + 1))
        phases = [np.random.default_rng([s, 1]).integers(room) for s in seeds]
        state = state._replace(phase=jnp.asarray(phases, jnp.int32))
    nums = numbers(settings, method, len(seeds), dtype)
    n_seeds = len(seeds)

    spec_t = 1 if method.full_sequence else settings.truncation
    evaluate = _evaluators(settings, method, task, prog, corpus)
    rows: list = []
    evals: dict = {"eval_step": [], "cosine": [], "val_bpc": []}
    best, best_params, stale = np.full(len(seeds), np.inf), None, 0
    done, train_s = 0, 0.0
    length = settings.seq_len if prog.text_task else padded_length(task, (1, 1), spec_t)
    with progress(settings.steps, desc=f"rnn {method.name} {settings.task} T={settings.truncation}",
                  enabled=show_progress, unit="batch") as bar:
        while done < settings.steps:
            next_eval = (done // settings.eval_every + 1) * settings.eval_every
            n_active = min(settings.chunk, settings.steps - done, next_eval - done)
            if not prog.text_task:
                levels = list(zip(np.asarray(state.level.n).tolist(), np.asarray(state.level.r).tolist()))
                top = max(levels, key=lambda lv: task.length(*lv))
                if task.length(*top) > settings.max_length:
                    break  # the curriculum has reached the longest sequence allowed
                fit = _rises_that_fit(task, levels, length, settings.chunk)
                if fit == 0 or task.length(*top) > length:
                    length = _grow(task, top, spec_t, settings.max_length)
                    fit = _rises_that_fit(task, levels, length, settings.chunk)
                n_active = min(n_active, fit + 1)
            t0, c0 = time.perf_counter(), prog.compile_seconds
            state, rec = prog.run_chunk(length, state, nums, text, n_active)
            rec = [np.asarray(r)[:, :n_active] for r in rec]
            train_s += time.perf_counter() - t0 - (prog.compile_seconds - c0)
            rows.append(rec)
            done += n_active
            bar.update(n_active)
            if done % settings.eval_every == 0 or done == settings.steps:
                cos, bpc = evaluate(state, nums, text, length)
                evals["eval_step"].append(done)
                evals["cosine"].append(cos)
                if bpc is not None:
                    evals["val_bpc"].append(bpc)
                    improved = bpc < best
                    best = np.where(improved, bpc, best)
                    best_params = state.params if best_params is None else _select(improved, state.params, best_params)
                    stale = 0 if improved.any() else stale + 1
                    bar.set_postfix(val_bpc=f"{float(np.mean(bpc)):.3f}")
                    if settings.patience and stale >= settings.patience:
                        break
                else:
                    bar.set_postfix(level=int(np.max(rec[3][:, -1])))
    metrics = {name: np.concatenate([r[j] for r in rows], axis=1) if rows else np.zeros((n_seeds, 0))
               for j, name in enumerate(("loss_bits", "sg_loss", "sg_rms", "level_n", "level_r"))}
    metrics["eval_step"] = np.asarray(evals["eval_step"], np.int64)
    metrics["cosine"] = np.stack(evals["cosine"], axis=1) if evals["cosine"] else np.zeros((n_seeds, 0))
    final = state.params
    if prog.text_task:
        metrics["val_bpc"] = np.stack(evals["val_bpc"], axis=1) if evals["val_bpc"] else np.zeros((n_seeds, 0))
        final = best_params if best_params is not None else state.params
    summary = _summary(task, prog, state, metrics, final, corpus, settings, evaluate)
    steps_run = int(metrics["loss_bits"].shape[1])
    info = {"backend": jax.default_backend(), "steps_run": steps_run, "compile_seconds": round(prog.compile_seconds, 3),
            "train_seconds": round(train_s, 3), "programs": len(prog.compiled),
            "sequences_per_second": round(steps_run * settings.batch * n_seeds / max(train_s, 1e-9), 2)}
    to_np = lambda tree: jax.tree_util.tree_map(np.asarray, tree)  # noqa: E731
    return RNNResult(to_np(final), metrics, summary, settings, method, seeds, info)


def _evaluators(settings: Settings, method, task, prog: _Program, corpus):
    """``evaluate(state, nums, text, length) -> (cosine per seed, val BPC per seed or None)``."""

    def cosine(state, nums, text, length):
        if not method.uses_sg:
            return np.full(state.step.shape, np.nan)
        key = ("cosine", _static(settings), method, task, length, state.step.shape, text.shape)
        if key not in _COMPILED:
            def one(st, nm, text):
                k = jax.random.fold_in(jax.random.fold_in(st.key, st.step), 2)
                if prog.text_task:
                    batch = task.sample(text, st.phase, settings.batch, prog.lookahead, prog.dtype)
                    s0 = st.s
                else:
                    batch = task.sample(k, st.level, length, settings.batch, prog.dtype, prog.lookahead)
                    s0 = jnp.zeros_like(st.s)
                return sg_cosine(prog.rule(length), st.params, s0, batch, nm)[0]

            _COMPILED[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
        return np.asarray(_COMPILED[key](state, nums, text))

    if corpus is None:
        return lambda state, nums, text, length: (cosine(state, nums, text, length), None)
    valid = corpus.valid[: settings.eval_chars] if settings.eval_chars else corpus.valid
    valid_dev = jnp.asarray(valid, jnp.int32)

    def evaluate(state, nums, text, length):
        bpc = _bpc_seeds(settings.core, task.vocab, settings.eval_streams, prog.dtype, state.params.core, valid_dev)
        return cosine(state, nums, text, length), np.asarray(bpc)

    return evaluate


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _bpc_seeds(core_kind: str, vocab: int, streams: int, dtype, cores, text):
    return jax.vmap(lambda core: bits_per_character(core_kind, core, text, vocab, streams, dtype))(cores)


def _summary(task, prog: _Program, state, metrics: dict, final, corpus, settings: Settings, evaluate) -> dict:
    if prog.text_task:
        val = metrics["val_bpc"]
        best = np.min(val, axis=1) if val.shape[1] else np.full(val.shape[0], np.nan)
        cores = jax.tree_util.tree_map(jnp.asarray, final.core)
        test = np.asarray(_bpc_seeds(settings.core, task.vocab, settings.eval_streams, prog.dtype, cores,
                                     jnp.asarray(corpus.test, jnp.int32)))
        return {"metric": "val_bpc", "val_bpc": best.round(4).tolist(), "test_bpc": test.round(4).tolist(),
                "best_step": [int(metrics["eval_step"][i]) if val.shape[1] else 0
                              for i in np.argmin(val, axis=1)] if val.shape[1] else []}
    solved = [solved_level(task, metrics["level_n"][i], metrics["level_r"][i], metrics["loss_bits"][i])
              for i in range(metrics["level_n"].shape[0])]
    out = {"metric": "solved_n", "solved_n": [s["n"] for s in solved], "solved_r": [s["r"] for s in solved],
           "solved_length": [s["length"] for s in solved], "sequences_to_level": [s["sequences"] for s in solved]}
    out["sequences_to_level"] = [{k: v * settings.batch for k, v in s.items()} for s in out["sequences_to_level"]]
    return out


def solved_level(task: CopyTask, level_n, level_r, loss_bits) -> dict:
    """The last level solved (its batch loss fell below the threshold) in one run's per-step history.

    Args:
        task: the Copy task.
        level_n, level_r: level of each step's batch ``(steps,)``.
        loss_bits: each step's loss in bits per target bit ``(steps,)``.

    Returns:
        ``{"n", "r", "length", "sequences"}``: ``n = r = length = 0`` when nothing was solved;
        ``sequences`` maps each solved level (``"N"``, or ``"N,R"`` for Repeat Copy) to the number of
        batches trained until it was solved.
    """
    solved = np.flatnonzero(np.asarray(loss_bits) < task.threshold)
    first: dict = {}
    for i in solved:
        name = f"{int(level_n[i])},{int(level_r[i])}" if task.repeat else str(int(level_n[i]))
        first.setdefault(name, int(i) + 1)
    if solved.size == 0:
        return {"n": 0, "r": 0, "length": 0, "sequences": {}}
    last = solved[-1]
    n, r = int(level_n[last]), int(level_r[last])
    return {"n": n, "r": r, "length": task.length(n, r), "sequences": first}


__all__ = ["DTYPES", "RNNResult", "RunState", "Settings", "init_run", "make_rule", "make_task", "numbers",
           "padded_length", "solved_level", "train"]
