"""Re-evaluating a saved recurrent run (``sgtheory rnn --evaluate CHECKPOINT``).

Copy tasks: the loss in bits per target bit on fresh sequences at the level each seed solved and at
the next one. charlm: bits per character on the corpus's test text.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.rnn.checkpoint import load_checkpoint
from sgtheory.rnn.metrics import bits_per_character
from sgtheory.rnn.reference import sequence_loss
from sgtheory.rnn.tasks import Level
from sgtheory.rnn.train import DTYPES, make_rule, make_task


def copy_loss_bits(task, rule, core: dict, level: tuple[int, int], *, key, batch: int = 256, dtype=jnp.float32):
    """Mean cross-entropy per target bit (bits) of ``core`` on ``batch`` fresh sequences at ``level``.

    Args:
        task: a :class:`sgtheory.rnn.tasks.CopyTask`.
        rule: a :class:`sgtheory.rnn.window.Rule` (its ``core`` and ``loss`` are used).
        core: core parameters of one run.
        level: ``(n, r)``.
        key: JAX PRNG key for the patterns.
        batch: number of sequences.
        dtype: floating dtype.

    Returns:
        A float.
    """
    return float(_copy_bits(task, rule, int(level[0]), int(level[1]), int(batch), dtype, core, key))


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _copy_bits(task, rule, n: int, r: int, batch: int, dtype, core, key):
    data = task.sample(key, Level(jnp.asarray(n), jnp.asarray(r)), task.length(n, r), batch, dtype)
    state = jnp.zeros((batch, (2 if rule.core == "lstm" else 1) * core["V"].shape[0]), dtype)
    return task.bits_per_target(sequence_loss(rule, core, state, data.xs, data.ys, data.mask), data)


def evaluate_checkpoint(path, *, corpus_root=None) -> dict:
    """Evaluate every seed of a saved run.

    Args:
        path: checkpoint folder or file.
        corpus_root: charlm only: where the corpus is (as ``--data-root`` when it was trained).

    Returns:
        A JSON-able summary with the task metric per seed.
    """
    ck = load_checkpoint(path)
    st = ck.settings
    dtype = DTYPES[st.dtype]
    per_seed = [jax.tree_util.tree_map(lambda a, i=i: jnp.asarray(a[i], dtype), ck.params.core)
                for i in range(len(ck.seeds))]
    out = {"checkpoint": str(path), "task": st.task, "method": ck.method.name, "seeds": list(ck.seeds)}
    if st.task == "charlm":
        from sgtheory.data.text import load_corpus

        corpus = load_corpus(ck.meta.get("run", {}).get("corpus", "kjv"),
                             corpus_root if corpus_root is not None else ck.meta.get("run", {}).get("data_root"))
        if corpus.vocab_size != per_seed[0]["V"].shape[1]:
            raise InputError(f"checkpoint {path}: trained on {per_seed[0]['V'].shape[1]} symbols, corpus "
                             f"{corpus.name} has {corpus.vocab_size}")
        test = jnp.asarray(corpus.test, jnp.int32)
        fn = jax.jit(lambda core: bits_per_character(st.core, core, test, corpus.vocab_size, st.eval_streams, dtype))
        out.update({"metric": "test_bpc", "test_bpc": [round(float(fn(c)), 4) for c in per_seed]})
        return out
    task = make_task(st)
    rule = make_rule(st, ck.method, task)
    solved = ck.meta.get("summary", {})
    rows = []
    for i, (seed, core) in enumerate(zip(ck.seeds, per_seed)):
        n = int(solved.get("solved_n", [0] * len(ck.seeds))[i]) or 1
        r = int(solved.get("solved_r", [1] * len(ck.seeds))[i]) or 1
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 10 ** 6)
        rows.append({"level": [n, r], "bits": round(copy_loss_bits(task, rule, core, (n, r), key=key, dtype=dtype), 4),
                     "next_level": list(task.next_level(n, r)),
                     "next_bits": round(copy_loss_bits(task, rule, core, task.next_level(n, r), key=key,
                                                       dtype=dtype), 4)})
    out.update({"metric": "bits_per_target", "bits_per_target": rows, "threshold": st.threshold})
    return out


__all__ = ["copy_loss_bits", "evaluate_checkpoint"]
