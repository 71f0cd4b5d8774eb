"""Training recurrent nets with any method of :mod:`sgtheory.rnn.methods`, several seeds as one program.

:func:`train` runs one (task, method, settings) for a list of seeds: the single-run step (sample a
batch on the device, run the window algorithm, update the curriculum or the stream position) is
``vmap``-ped over seeds and ``lax.scan``-ned over a chunk of steps, so the seeds share one compiled
program and no host round-trip happens inside a chunk. Learning rates, clip norms, the SG scale and
discount and the aux weight are data (:class:`sgtheory.rnn.window.Numbers`).

Copy and Repeat Copy sequences grow with the curriculum; every seed's batch is padded to one length
(:mod:`sgtheory.rnn.program`). A chunk runs at most as many steps as the curriculum
can rise without outgrowing that length (one rise per step at most), so no rise is ever held back.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.progress import progress
from sgtheory.rnn import methods as rnn_methods
from sgtheory.rnn.program import (
    Program,
    RunState,
    grow_length,
    init_run,
    init_states,
    make_rule,
    make_task,
    numbers,
    padded_length,
    rises_that_fit,
    static_key,
)
from sgtheory.rnn.settings import DTYPES, Settings
from sgtheory.rnn.summary import evaluators, run_summary, solved_level
from sgtheory.validate import seeds as _seeds


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


def _select(which, new, old):
    """Per seed (leading axis), ``new`` where ``which`` else ``old``."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(which.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _as_method(method):
    return rnn_methods.get(method) if isinstance(method, str) else method


def train(settings: Settings, method, seeds=(0,), *, corpus=None, show_progress: bool | None = None,
          diagnostics: bool = False) -> RNNResult:
    """Train ``method`` on ``settings.task`` for every seed in ``seeds`` at once (one vmapped program).

    Args:
        settings: :class:`Settings` (validated here).
        method: a :class:`sgtheory.rnn.methods.RecurrentMethod` or a name in ``METHODS``.
        seeds: integer seeds; run ``i`` derives everything random from ``PRNGKey(seeds[i])``.
        corpus: a :class:`sgtheory.data.text.Corpus` (charlm only).
        show_progress: progress bar on stderr (None: only on a terminal).
        diagnostics: record the stability numbers of :func:`sgtheory.rnn.diagnostics.diagnose`
            at every evaluation, as ``metrics["diag_<name>"]`` ``(seeds, E)``.

    Returns:
        :class:`RNNResult`. Copy tasks: ``summary["solved_n"]`` etc. per seed (the level solved within
        ``steps`` batches); charlm: best validation BPC per seed (early stopping) and the test BPC there.
    """
    settings = settings.check()
    method = _as_method(method)
    seeds = tuple(_seeds(seeds, "seeds"))
    if (settings.task == "charlm") != (corpus is not None):
        raise InputError("corpus: needed for charlm, and only for charlm")
    task = make_task(settings, corpus.vocab_size if corpus is not None else None)
    prog = Program(settings, method, task)
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
    state = init_states(static_key(settings), method, task, keys)
    if corpus is not None:  # each seed starts its streams at its own random phase
        stream = task.stream_length(corpus.train.size, settings.batch)
        room = max(1, stream - 2 * (settings.seq_len + prog.lookahead + 1))
        phases = [np.random.default_rng([s, 1]).integers(room) for s in seeds]
        state = state._replace(phase=jnp.asarray(phases, jnp.int32))
    nums = numbers(settings, method, len(seeds), dtype)
    n_seeds = len(seeds)

    spec_t = 1 if method.full_sequence else settings.truncation
    evaluate = evaluators(settings, method, task, prog, corpus, diagnostics)
    rows: list = []
    evals: dict = {"eval_step": []}
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
                fit = rises_that_fit(task, levels, length, settings.chunk)
                if fit == 0 or task.length(*top) > length:
                    length = grow_length(task, top, spec_t, settings.max_length)
                    fit = rises_that_fit(task, levels, length, settings.chunk)
                n_active = min(n_active, fit + 1)
            t0, c0 = time.perf_counter(), prog.compile_seconds
            state, rec = prog.run_chunk(length, state, nums, text, n_active)
            rec = [np.asarray(r)[:, :n_active] for r in rec]
            train_s += time.perf_counter() - t0 - (prog.compile_seconds - c0)
            rows.append(rec)
            done += n_active
            bar.update(n_active)
            if done % settings.eval_every == 0 or done == settings.steps:
                ev = evaluate(state, nums, text, length)
                evals["eval_step"].append(done)
                for name, value in ev.items():
                    evals.setdefault(name, []).append(value)
                bpc = ev.get("val_bpc")
                if bpc is not None:
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
    metrics["eval_step"] = np.asarray(evals.pop("eval_step"), np.int64)
    for name in ("cosine", "val_bpc") if prog.text_task else ("cosine",):
        metrics[name] = np.zeros((n_seeds, 0))
    metrics.update({name: np.stack(values, axis=1) for name, values in evals.items()})
    final = state.params
    if prog.text_task:
        final = best_params if best_params is not None else state.params
    summary = run_summary(task, prog, metrics, final, corpus, settings)
    steps_run = int(metrics["loss_bits"].shape[1])
    info = {"backend": jax.default_backend(), "steps_run": steps_run, "compile_seconds": round(prog.compile_seconds, 3),
            "train_seconds": round(train_s, 3), "programs": len(prog.compiled),
            "sequences_per_second": round(steps_run * settings.batch * n_seeds / max(train_s, 1e-9), 2)}
    to_np = lambda tree: jax.tree_util.tree_map(np.asarray, tree)
    return RNNResult(to_np(final), metrics, summary, settings, method, seeds, info)


__all__ = ["DTYPES", "RNNResult", "RunState", "Settings", "init_run", "make_rule", "make_task", "numbers",
           "padded_length", "solved_level", "train"]
