"""Nonlinear MLPs, the unified credit-assignment family, training and checkpoints.

- :class:`MLPConfig`, :func:`init_mlp`, :func:`forward` — nets as pure functions over pytrees
- :mod:`sgtheory.nets.methods` — ``bp``, ``sg``, ``csg``, ``sg-every``, ``csg-every``, ``fa``, ``dfa``,
  ``kickback`` behind one interface (``methods.get(name)``, ``methods.unified_table()``)
- :func:`train` — jit-compiled optax training with periodic evaluation
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`activations` — ``.npz`` + JSON checkpoints
"""

from sgtheory.nets import methods
from sgtheory.nets.checkpoint import Checkpoint, activations, load_checkpoint, save_checkpoint
from sgtheory.nets.mlp import ACTIVATIONS, MAX_DEPTH, MLPConfig, forward, forward_with_state, init_bn_state, init_mlp
from sgtheory.nets.tape import Tape, record
from sgtheory.nets.train import OPTIMIZERS, TrainResult, train

__all__ = [
    "ACTIVATIONS", "MAX_DEPTH", "OPTIMIZERS", "Checkpoint", "MLPConfig", "Tape", "TrainResult", "activations",
    "forward", "forward_with_state", "init_bn_state", "init_mlp", "load_checkpoint", "methods", "record",
    "save_checkpoint", "train",
]
