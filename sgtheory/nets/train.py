"""Training an MLP with any credit-assignment method: validate → plan → run.

:func:`train` checks its inputs, builds a :class:`~sgtheory.nets.program.Plan` (what the compiled
program depends on), estimates the memory it needs, and runs the single-run program of
:mod:`sgtheory.nets.program` (jit-compiled ``lax.scan`` chunks with optax, one evaluation per chunk).
:func:`sgtheory.nets.train_population` runs the same program for many seeds and learning rates at once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sgtheory.data import Dataset
from sgtheory.errors import InputError
from sgtheory.nets import memory
from sgtheory.nets.methods import Method, MethodState, get
from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.program import OPTIMIZERS, SCHEDULES, Hyper, Plan
from sgtheory.nets.program import optimizer as _optimizer
from sgtheory.nets.runner import Raw, data_arrays, execute
from sgtheory.validate import SEED_LIMIT, choice, int_in_range, positive
from sgtheory.validate import seed as _seed


class TrainResult(NamedTuple):
    """``params``, ``bn_state``, ``method_state``; ``metrics``: name → numpy array over evaluations
    (``step``, ``train_loss``, ``test_error``, ``sg_loss`` each ``(E,)``, ``cosine`` ``(E, depth)``);
    ``config``: the :class:`MLPConfig`; ``method``; ``info``: settings, timings and ``status``
    (``"ok"``, or ``"diverged"`` when a loss or parameter stopped being finite) — JSON-able."""

    params: Any
    bn_state: Any
    method_state: MethodState
    metrics: dict
    config: MLPConfig
    method: Method
    info: dict


def learning_rate(lr: float, schedule: str = "constant", steps: int | None = None):
    """``lr`` itself (``constant``) or an optax schedule decaying it to 0 over ``steps`` (``cosine``,
    Loshchilov & Hutter 2017).

    Args:
      lr: the initial rate, > 0.
      schedule: ``"constant"`` or ``"cosine"``.
      steps: decay length (``cosine`` only).

    Returns:
      A number or an optax schedule.
    """
    choice(schedule, "schedule", SCHEDULES)
    rate = positive(lr, "lr")
    return optax.cosine_decay_schedule(rate, int_in_range(steps, "steps", 1)) if schedule == "cosine" else rate


def make_optimizer(name, lr) -> optax.GradientTransformation:
    """``adam`` (optax defaults β = (0.9, 0.999)) or plain ``sgd`` at learning rate ``lr``.

    Args:
      name: ``"adam"``, ``"sgd"``, or a factory ``lr -> optax.GradientTransformation`` (e.g. a
        step-decay schedule, or :func:`sgtheory.nets.async_updates.async_layers` around Adam).
      lr: a number > 0 or an optax schedule (see :func:`learning_rate`).

    Returns:
      The optax transformation.
    """
    if callable(name):
        return name(lr)
    choice(name, "optimizer", OPTIMIZERS)
    return _optimizer(name, lr if callable(lr) else positive(lr, "lr"))


def seed_value(seed, name: str = "seed") -> int:
    """A seed: an integer in 0 .. 2**32 - 1 (see :func:`sgtheory.validate.seed`).

    Args:
        seed: the value.
        name: the name used in the message.

    Returns:
        The seed as an int.

    Raises:
        InputError: a bad seed.
    """
    return _seed(seed, name)


def check_data_fits(data: Dataset, config: MLPConfig, batch_size: int) -> int:
    """Refuse a data set the net cannot read or a batch larger than its training split (one clear line).

    Args:
        data: the data set.
        config: the net.
        batch_size: examples per step.

    Returns:
        ``batch_size`` as an int.
    """
    batch_size = int_in_range(batch_size, "batch size", 1)
    n_train = data.x_train.shape[0]
    if batch_size > n_train:
        raise InputError(f"batch size {batch_size} exceeds the {n_train} training examples of {data.name}")
    if data.x_train.shape[1] != config.n_in or data.n_classes != config.n_out:
        raise InputError(f"net has {config.n_in} inputs / {config.n_out} outputs but {data.name} has "
                         f"{data.x_train.shape[1]} features / {data.n_classes} classes")
    return batch_size


def plan(data: Dataset, config: MLPConfig, method: Method | str, *, steps: int, batch_size: int = 128,
         optimizer="adam", schedule: str = "constant", eval_every: int = 500, dtype=jnp.float32) -> Plan:
    """Validate the settings a compiled training program depends on and return its :class:`Plan`.

    Args:
      data: the data set; config: the net (its inputs and outputs must match ``data``).
      method: a :class:`Method` or a name from :data:`sgtheory.nets.methods.METHODS`.
      steps, batch_size, eval_every: positive integers (``batch_size`` at most the training set).
      optimizer: ``"adam"``, ``"sgd"`` or a factory ``rate -> optax.GradientTransformation``.
      schedule: ``"constant"`` or ``"cosine"`` (built-in optimisers only).
      dtype: ``float32`` (default) or ``float64`` (needs ``jax_enable_x64``).

    Returns:
      The :class:`Plan`.
    """
    method = get(method) if isinstance(method, str) else method
    if not isinstance(method, Method):
        raise InputError(f"method: expected a name or a Method, got {type(method).__name__}")
    steps = int_in_range(steps, "steps", 1)
    batch_size = check_data_fits(data, config, batch_size)
    eval_every = int_in_range(eval_every, "eval every", 1)
    if callable(optimizer):
        if schedule != "constant":
            raise InputError("schedule: a custom optimizer factory brings its own schedule")
    else:
        choice(optimizer, "optimizer", OPTIMIZERS)
    choice(schedule, "schedule", SCHEDULES)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype: float32 or float64, got {dtype}")
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise InputError("dtype float64 needs JAX's x64 mode (jax.config.update('jax_enable_x64', True))")
    if hasattr(method, "sg_layers"):
        method.sg_layers(config.depth)  # an SG layer outside the net fails before anything is built
    return Plan(config, method, optimizer, schedule, steps, batch_size, eval_every, data.x_train.shape[0], dtype.type)


def settings_info(p: Plan, data: Dataset) -> dict:
    """The JSON-able settings of a plan (recorded in results and checkpoints)."""
    return {"dataset": data.name, "steps": p.steps, "batch_size": p.batch_size, "optimizer": p.optimizer_name,
            "schedule": p.schedule, "eval_every": p.eval_every, "dtype": np.dtype(p.dtype).name}


def train(data: Dataset, config: MLPConfig, method: Method | str, *, steps: int, batch_size: int = 128,
          optimizer="adam", lr: float = 1e-3, sg_lr: float | None = None, schedule: str = "constant",
          eval_every: int = 500, seed: int = 0, dtype=jnp.float32, device=None, show_progress: bool | None = None,
          checkpoint_dir=None, checkpoint_every: int | None = None) -> TrainResult:
    """Train ``config``'s MLP on ``data`` with ``method`` for ``steps`` minibatch steps.

    Args:
      data, config, method, steps, batch_size, optimizer, schedule, eval_every, dtype: see :func:`plan`.
      lr: the net's learning rate; sg_lr: the method's learned state's (default ``lr``); both > 0.
      seed: 0 .. 2**32 - 1; everything random derives from ``jax.random.PRNGKey(seed)`` (init, method
        state, minibatch order, probe batch), so the same arguments give the same numbers.
      device: the device to train on (default: the first device JAX sees).
      show_progress: a progress bar (None: only on a terminal).
      checkpoint_dir, checkpoint_every: (over)write a checkpoint in ``checkpoint_dir`` at the first
        evaluation at or after each multiple of ``checkpoint_every`` steps (a positive integer).

    Returns:
      A :class:`TrainResult`; ``info["steps_per_second"]`` counts the compiled chunks (training and
      their evaluations), not compilation.
    """
    p = plan(data, config, method, steps=steps, batch_size=batch_size, optimizer=optimizer, schedule=schedule,
             eval_every=eval_every, dtype=dtype)
    rates = (positive(lr, "lr"), positive(lr if sg_lr is None else sg_lr, "sg_lr"))
    seed = seed_value(seed)
    save = checkpointer(checkpoint_dir, checkpoint_every)
    arrays = data_arrays(data, config.n_out, p.dtype)
    devices = [device] if device is not None else jax.devices()[:1]
    memory.check_fits(p, n_members=1, n_test=arrays.x_test.shape[0], data_bytes=_nbytes(arrays), devices=devices)
    info = {**settings_info(p, data), "lr": rates[0], "sg_lr": rates[1], "seed": seed}
    raw = execute(p, arrays, [seed], Hyper(*rates), batched=False, devices=devices, show_progress=show_progress,
                  desc=f"train {p.method.name}", checkpoint_every=checkpoint_every,
                  on_checkpoint=None if save is None else lambda _, r: save(result(p, r, info)))
    return result(p, raw, {**info, **raw.info})


def checkpointer(checkpoint_dir, checkpoint_every):
    """``save(result)`` writing into ``checkpoint_dir``, or None; validates ``checkpoint_every``."""
    if checkpoint_every is not None:
        int_in_range(checkpoint_every, "checkpoint every", 1)
        if checkpoint_dir is None:
            raise InputError("checkpoint every: needs a checkpoint folder")
    if checkpoint_dir is None or checkpoint_every is None:
        return None
    from sgtheory.nets.checkpoint import save_checkpoint

    return lambda res: save_checkpoint(checkpoint_dir, res)


def result(p: Plan, raw: Raw, info: dict) -> TrainResult:
    """A :class:`TrainResult` from one unbatched run's raw output."""
    rows = raw.rows
    metrics = {"step": rows["step"], **{k: rows[k] for k in ("train_loss", "test_error", "sg_loss", "cosine")}}
    status = "ok" if bool(np.all(rows["finite"])) else "diverged"
    s = raw.state
    return TrainResult(s.params, s.bn, MethodState(s.learned, raw.member.fixed), metrics, p.config, p.method,
                       {**info, "status": status})


def _nbytes(tree) -> int:
    return sum(np.asarray(a).nbytes for a in jax.tree_util.tree_leaves(tree))


__all__ = ["OPTIMIZERS", "SEED_LIMIT", "TrainResult", "check_data_fits", "learning_rate", "make_optimizer", "plan",
           "seed_value", "train"]
