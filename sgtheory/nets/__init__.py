"""Nonlinear MLPs, the unified credit-assignment family, training (single runs and populations) and checkpoints.

- :class:`MLPConfig`, :func:`init_mlp`, :func:`forward` — nets as pure functions over pytrees
- :mod:`sgtheory.nets.methods` — ``bp``, ``sg``, ``csg``, ``sg-every``, ``csg-every``, ``sg-unlock``,
  ``csg-unlock``, ``fa``, ``dfa``, ``kickback`` behind one interface (``methods.get(name)``,
  ``methods.unified_table()``); synthetic inputs (forward unlocking) in :mod:`sgtheory.nets.input_model`
- :func:`train` — one jit-compiled optax run with periodic evaluation
- :func:`train_population` — many seeds × learning rates in one compiled program, split over every device
- :func:`async_sweep` — asynchronous layer updates (DNI's complete-unlock experiment), seeds × ``p_update``
  as one vmapped program (:mod:`sgtheory.nets.async_train`)
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`activations` — ``.npz`` + JSON checkpoints;
  :func:`save_population`, :func:`load_population` — one checkpoint per member plus an index
"""

from sgtheory.nets import methods
from sgtheory.nets.async_train import async_sweep
from sgtheory.nets.checkpoint import Checkpoint, activations, load_checkpoint, save_checkpoint
from sgtheory.nets.mlp import ACTIVATIONS, MAX_DEPTH, MLPConfig, forward, forward_with_state, init_bn_state, init_mlp
from sgtheory.nets.population import PopulationResult, mean_sd, paired_difference, train_population
from sgtheory.nets.population_io import load_population, read_population, save_population
from sgtheory.nets.tape import Tape, record
from sgtheory.nets.train import OPTIMIZERS, TrainResult, train

__all__ = [
    "ACTIVATIONS", "MAX_DEPTH", "OPTIMIZERS", "Checkpoint", "MLPConfig", "PopulationResult", "Tape", "TrainResult",
    "activations", "async_sweep", "forward", "forward_with_state", "init_bn_state", "init_mlp", "load_checkpoint",
    "load_population", "mean_sd", "methods", "paired_difference", "read_population", "record", "save_checkpoint",
    "save_population", "train", "train_population",
]
