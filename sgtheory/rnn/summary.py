"""Evaluation during training and the task metric of a finished run.

- the evaluators: the cosine between the injected SG and the true future gradient on the next
  training batch, and (char LM) bits per character on validation text, every seed at once;
- :func:`run_summary`: Copy tasks — the level solved within the budget and the sequences needed for
  each level; char LM — the best validation BPC and the test BPC of the parameters kept there;
- :func:`solved_level`: the last level solved in one run's per-step history.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.rnn.diagnostics import diagnose
from sgtheory.rnn.metrics import bits_per_character, sg_cosine
from sgtheory.rnn.program import COMPILED, Program, static_key
from sgtheory.rnn.settings import Settings
from sgtheory.rnn.tasks import CopyTask


def evaluators(settings: Settings, method, task, prog: Program, corpus, diagnostics: bool = False):
    """The evaluation run every ``settings.eval_every`` steps, every seed at once.

    Args:
        settings, method, task, prog: the run's.
        corpus: the char-LM corpus (None for Copy tasks).
        diagnostics: also record :func:`sgtheory.rnn.diagnostics.diagnose` (its SG terms are 0 without an SG).

    Returns:
        ``evaluate(state, nums, text, length) -> {"cosine": (seeds,), ["val_bpc": (seeds,)],
        ["diag_<name>": (seeds,)]}`` (numpy); cosine and diagnostics are taken on the batch the next
        step trains on (fresh patterns for Copy tasks).
    """

    def on_next_batch(name, fn, state, nums, text, length):
        key = (name, static_key(settings), method, task, length, state.step.shape, text.shape)
        if key not in COMPILED:
            def one(st, nm, text):
                batch, s0 = prog.next_batch(st, length, text, salt=2)
                return fn(prog.rule(length), st, s0, batch, nm)

            COMPILED[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
        return jax.tree_util.tree_map(np.asarray, COMPILED[key](state, nums, text))

    def cosine(rule, st, s0, batch, nm):
        return sg_cosine(rule, st.params, s0, batch, nm)[0]

    def diag(rule, st, s0, batch, nm):
        return diagnose(rule, st.params, s0, batch, nm, key=jax.random.fold_in(st.key, st.step))

    valid_dev = None
    if corpus is not None:
        valid = corpus.valid[: settings.eval_chars] if settings.eval_chars else corpus.valid
        valid_dev = jnp.asarray(valid, jnp.int32)

    def evaluate(state, nums, text, length):
        out = {"cosine": on_next_batch("cosine", cosine, state, nums, text, length) if method.uses_sg
               else np.full(state.step.shape, np.nan)}
        if valid_dev is not None:
            out["val_bpc"] = np.asarray(_bpc_seeds(settings.core, task.vocab, settings.eval_streams, prog.dtype,
                                                   state.params.core, valid_dev))
        if diagnostics:
            d = on_next_batch("diagnose", diag, state, nums, text, length)
            out.update({f"diag_{k}": v for k, v in d.items()})
        return out

    return evaluate


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _bpc_seeds(core_kind: str, vocab: int, streams: int, dtype, cores, text):
    return jax.vmap(lambda core: bits_per_character(core_kind, core, text, vocab, streams, dtype))(cores)


def run_summary(task, prog: Program, metrics: dict, final, corpus, settings: Settings) -> dict:
    """The task metric per seed (JSON-able) from a run's ``metrics`` and ``final`` parameters.

    Args:
        task: the task object.
        prog: the run's compiled :class:`~sgtheory.rnn.program.Program`.
        metrics: the recorded metrics.
        final: the final parameters (charlm's test BPC is measured on them).
        corpus: the corpus (charlm only).
        settings: the run's settings.

    Returns:
        Copy tasks: ``solved_n``, ``solved_r``, ``solved_length`` and ``sequences_to_level`` (sequences
        trained until each level was solved); char LM: best ``val_bpc``, the ``test_bpc`` of ``final`` and
        the ``best_step``.
    """
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


__all__ = ["evaluators", "run_summary", "solved_level"]
