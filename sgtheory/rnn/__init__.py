"""Recurrent DNI: truncated BPTT with synthetic gradients at window boundaries (Jaderberg et al. 2017, §3.1).

- :mod:`sgtheory.rnn.cores` — LSTM and tanh cores as pure functions (:class:`CoreSpec`, :func:`init_core`)
- :mod:`sgtheory.rnn.window` — the window algorithm (:func:`run_sequence`): one VJP per window, the SG's
  bootstrapped target, separate optimisers and clips for core and SG
- :mod:`sgtheory.rnn.methods` — ``bptt``, ``tbptt``, ``dni``, ``cdni``, ``dni-aux`` with declared properties
  (``methods.get(name)``, ``methods.unified_table()``)
- :mod:`sgtheory.rnn.tasks` — Copy and Repeat Copy with a curriculum; text streams for character LMs
- :func:`train` — several seeds as one vmapped program; :func:`save_checkpoint` / :func:`load_checkpoint`
- :mod:`sgtheory.rnn.reference` — slow references (full and truncated BPTT, true future gradients)
"""

from sgtheory.rnn import methods
from sgtheory.rnn.cores import CORES, CoreSpec, init_core
from sgtheory.rnn.metrics import bits_per_character, sg_cosine
from sgtheory.rnn.tasks import TASKS, CopyTask, TextTask
from sgtheory.rnn.train import RNNResult, Settings, solved_level, train
from sgtheory.rnn.window import Batch, Numbers, Params, Rule, run_sequence

__all__ = [
    "CORES", "TASKS", "Batch", "CopyTask", "CoreSpec", "Numbers", "Params", "RNNResult", "Rule", "Settings",
    "TextTask", "bits_per_character", "init_core", "methods", "run_sequence", "sg_cosine", "solved_level", "train",
]
