"""Nonlinear MLPs, the unified credit-assignment family, training and checkpoints.

- :class:`MLPConfig`, :func:`init_mlp`, :func:`forward` — nets as pure functions over pytrees
- :mod:`sgtheory.nets.methods` — ``bp``, ``sg``, ``csg``, ``sg-every``, ``csg-every``, ``sg-unlock``,
  ``csg-unlock``, ``fa``, ``dfa``, ``kickback`` behind one interface (``methods.get(name)``,
  ``methods.unified_table()``); synthetic inputs (forward unlocking) in :mod:`sgtheory.nets.input_model`
- :func:`train` — jit-compiled optax training with periodic evaluation
- :func:`async_sweep` — asynchronous layer updates (DNI's complete-unlock experiment), seeds × ``p_update``
  as one vmapped program (:mod:`sgtheory.nets.async_train`)
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`activations` — ``.npz`` + JSON checkpoints
"""

from sgtheory.nets import methods
from sgtheory.nets.async_train import async_sweep
from sgtheory.nets.checkpoint import Checkpoint, activations, load_checkpoint, save_checkpoint
from sgtheory.nets.mlp import ACTIVATIONS, MAX_DEPTH, MLPConfig, forward, forward_with_state, init_bn_state, init_mlp
from sgtheory.nets.tape import Tape, record
from sgtheory.nets.train import OPTIMIZERS, TrainResult, train

__all__ = [
    "ACTIVATIONS", "MAX_DEPTH", "OPTIMIZERS", "Checkpoint", "MLPConfig", "Tape", "TrainResult", "activations",
    "async_sweep",
    "forward", "forward_with_state", "init_bn_state", "init_mlp", "load_checkpoint", "methods", "record",
    "save_checkpoint", "train",
]
