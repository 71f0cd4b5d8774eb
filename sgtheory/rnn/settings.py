"""Settings of a recurrent run: everything but the method and the seeds (:class:`Settings`).

Defaults are ours (the paper's are unknown; see ``paper_repro.md``). Numbers that are data in the
compiled program (rates, clips) and fields read only on the host can change without recompiling
(:func:`sgtheory.rnn.program.static_key`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.rnn.cores import CORES
from sgtheory.rnn.tasks import TASKS
from sgtheory.rnn.window import UPDATES
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


__all__ = ["DTYPES", "Settings"]
