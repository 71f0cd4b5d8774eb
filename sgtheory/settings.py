"""Settings declared once: one table per analysis or command; parser, quick/full values and checks follow.

An analysis (or a subcommand) lists its options as :class:`Setting` rows::

    SETTINGS = (
        Setting("steps", "int", full=3000, quick=300, lo=1, help="training steps per run"),
        Setting("depths", "ints", full=(5, 10, 20, 50), quick=(4, 12), lo=1, hi=50, help="hidden layers"),
        Setting("activation", "str", full="relu", choices=("relu", "sigmoid", "tanh"), help="non-linearity"),
        *TRAINING.pick("dataset", "data_root", lr=3e-4),
    )

:func:`add_settings` turns the rows into ``--steps``, ``--depths`` … options (their help says the full and
the quick value); :func:`resolve` replaces every option the user did not give by its full or quick value and
checks every value (given or default) against its kind and bounds, raising :class:`sgtheory.InputError`
with one line that names the option. Nothing is silently replaced: ``--steps 0`` is an error, not "default".

Kinds: ``int``, ``float``, ``str``, ``flag`` (``--x`` / ``--no-x``), ``path`` (a string; no check beyond
non-empty) and the comma lists ``ints``, ``floats``, ``strs`` (non-empty; every element checked; duplicates
refused). ``lo``/``hi`` bound numbers inclusively, ``above`` exclusively (e.g. ``above=0`` for rates),
``choices`` restricts strings (a tuple, or a zero-argument function for lists that need an import).
``optional=True`` admits ``None`` (e.g. "computed from other settings", or "no file").

Shared groups (:data:`TRAINING`, :data:`SEED`) hold the options that many commands have in common; a
command takes rows from them with :meth:`Group.pick`, overriding defaults by keyword.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sgtheory.errors import InputError
from sgtheory.validate import SEED_LIMIT

_SAME = object()  # the quick value of a setting whose quick value is its full value
KINDS = ("int", "float", "str", "flag", "path", "ints", "floats", "strs")
_LIST_ITEM = {"ints": "int", "floats": "float", "strs": "str"}
SEED_MAX = SEED_LIMIT - 1  # JAX's PRNGKey and numpy's Generator both accept 0 ≤ seed < 2**32


@dataclass(frozen=True)
class Setting:
    """One option of an analysis or command: its kind, full and quick values, bounds and help.

    Args:
        name: Python name (``sg_layer``); the option is ``--sg-layer``.
        kind: one of :data:`KINDS`.
        full: the value in full mode (for lists: a tuple).
        quick: the value with ``--quick`` (default: ``full``).
        help: one phrase; the defaults are appended to it.
        lo, hi: inclusive bounds of numbers (and of each list element).
        above: exclusive lower bound of numbers (``above=0``: positive).
        choices: allowed strings (a tuple, or a function returning one).
        optional: whether ``None`` is a valid value.
    """

    name: str
    kind: str = "str"
    full: Any = None
    quick: Any = _SAME
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    above: float | None = None
    choices: tuple | Callable[[], Iterable[str]] | None = None
    optional: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: unknown kind {self.kind!r}")

    @property
    def option(self) -> str:
        """The command-line spelling, ``--sg-layer``."""
        return "--" + self.name.replace("_", "-")

    def default(self, quick: bool) -> Any:
        """The value used when the option is not given."""
        return self.full if (not quick or self.quick is _SAME) else self.quick

    def with_(self, **changes) -> Setting:
        """A copy with some fields changed (``full``, ``quick``, ``help``, bounds …)."""
        return replace(self, **changes)

    def check(self, value: Any) -> Any:
        """``value`` (a command-line string, or a Python value) parsed and validated.

        Returns:
            the typed value (tuples for list kinds).

        Raises:
            InputError: one line naming the option, what was expected and what was given.
        """
        if value is None:
            if self.optional:
                return None
            raise InputError(f"{self.option}: a value is required")
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise InputError(f"{self.option}: expected true or false, got {value!r}")
            return value
        if self.kind in _LIST_ITEM:
            items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
            if isinstance(value, str) and any(v == "" for v in items):
                raise InputError(f"{self.option}: expected a comma-separated list without empty items, got {value!r}")
            if not items:
                raise InputError(f"{self.option}: empty list")
            parsed = tuple(self._scalar(v, _LIST_ITEM[self.kind]) for v in items)
            if len(set(parsed)) != len(parsed):
                raise InputError(f"{self.option}: duplicate values in {value!r}")
            return parsed
        return self._scalar(value, self.kind)

    def _scalar(self, value: Any, kind: str) -> Any:
        if kind in ("str", "path"):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{self.option}: expected a non-empty string, got {value!r}")
            choices = self.choices() if callable(self.choices) else self.choices
            if choices is not None and value not in choices:
                raise InputError(f"{self.option}: unknown value {value!r}; choose from {', '.join(choices)}")
            return value
        if kind == "int":
            v = _as_int(value, self.option)
        else:
            v = _as_float(value, self.option)
        if self.lo is not None and v < self.lo:
            raise InputError(f"{self.option}: must be >= {_fmt(self.lo)}, got {_fmt(v)}")
        if self.hi is not None and v > self.hi:
            raise InputError(f"{self.option}: must be <= {_fmt(self.hi)}, got {_fmt(v)}")
        if self.above is not None and not v > self.above:
            raise InputError(f"{self.option}: must be > {_fmt(self.above)}, got {_fmt(v)}")
        return v


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _as_int(value, option: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{option}: expected an integer, got {value!r}")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InputError(f"{option}: expected an integer, got {value!r}") from None
    try:
        v = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{option}: expected an integer, got {value!r}") from None
    if v != value:
        raise InputError(f"{option}: expected an integer, got {value!r}")
    return v


def _as_float(value, option: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{option}: expected a number, got {value!r}")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InputError(f"{option}: expected a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{option}: must be a finite number, got {value!r}")
    return v


def _show(value) -> str:
    if isinstance(value, tuple):
        return ",".join(_fmt(v) for v in value)
    if value is None:
        return "none"
    return _fmt(value)


def add_settings(parser: argparse.ArgumentParser, settings: Iterable[Setting]) -> None:
    """Add one option per setting to ``parser`` (default ``None``: "not given").

    Args:
        parser: the parser to extend.
        settings: the rows; their help ends with "(default FULL; quick QUICK)".
    """
    for s in settings:
        default = f"default {_show(s.full)}" + ("" if s.quick is _SAME else f"; quick {_show(s.quick)}")
        one_of = f"; one of {', '.join(s.choices)}" if isinstance(s.choices, tuple) else ""
        text = f"{s.help}{one_of} ({default})".replace("%", "%%")  # argparse %-formats help strings
        if s.kind == "flag":
            parser.add_argument(s.option, dest=s.name, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(s.option, dest=s.name, default=None, metavar=s.name.upper(), help=text)


def resolve(args: argparse.Namespace, settings: Iterable[Setting], *, quick: bool = False) -> argparse.Namespace:
    """Fill in and check every setting on ``args`` (in place).

    Args:
        args: parsed options; a ``None`` value means "not given".
        settings: the rows used to build the parser.
        quick: take quick values for options not given.

    Returns:
        ``args``, each setting now holding its checked value.

    Raises:
        InputError: the first invalid value, naming its option.
    """
    for s in settings:
        given = getattr(args, s.name, None)
        setattr(args, s.name, s.check(s.default(quick) if given is None else given))
    return args


class Group(tuple):
    """A named collection of :class:`Setting` rows shared by several commands."""

    def pick(self, *names: str, **defaults) -> tuple[Setting, ...]:
        """Rows of the group, in the group's order, with ``full`` values overridden by keyword.

        Args:
            names: the rows to take (none named: all rows); an overridden row is taken too.
            defaults: new values by name; a ``(full, quick)`` pair sets both (for a list setting, a pair
                of tuples); use :meth:`Setting.with_` for anything else.

        Returns:
            the chosen rows.
        """
        by_name = {s.name: s for s in self}
        unknown = [n for n in list(names) + list(defaults) if n not in by_name]
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; the group has {', '.join(by_name)}")
        wanted = set(names or by_name) | set(defaults)
        rows = []
        for s in self:
            if s.name not in wanted:
                continue
            if s.name in defaults:
                v = defaults[s.name]
                s = s.with_(full=v[0], quick=v[1]) if _is_pair(v, s) else s.with_(full=v, quick=_SAME)
            rows.append(s)
        return tuple(rows)


def _is_pair(v, s: Setting) -> bool:
    """Whether an override is a (full, quick) pair rather than a list setting's own tuple value."""
    if not isinstance(v, tuple) or len(v) != 2:
        return False
    return s.kind not in _LIST_ITEM or all(isinstance(x, (tuple, type(None))) for x in v)


#: The seed every analysis and command takes.
SEED = Setting("seed", "int", full=0, lo=0, hi=SEED_MAX,
               help="random seed: initialisation, data order, data split")

#: Options of training a net (``sgtheory train`` and the nets analyses).
TRAINING = Group((
    Setting("dataset", "str", full="mnist5k", help="data set (mnist5k, digits, fashion-mnist, mnist, cifar10)"),
    Setting("data_root", "path", full=None, optional=True, help="folder holding the data set's files"),
    Setting("depth", "int", full=4, lo=1, hi=50, help="hidden layers"),
    Setting("width", "int", full=256, lo=1, hi=65536, help="units per hidden layer"),
    Setting("activation", "str", full="relu", choices=("relu", "sigmoid", "tanh"), help="non-linearity"),
    Setting("batchnorm", "flag", full=False, help="batch-normalise every hidden layer"),
    Setting("steps", "int", full=3000, lo=1, help="training steps"),
    Setting("batch_size", "int", full=128, lo=1, help="minibatch size"),
    Setting("optimizer", "str", full="adam", choices=("adam", "sgd"), help="optimiser"),
    Setting("lr", "float", full=1e-3, above=0, help="learning rate"),
    Setting("sg_lr", "float", full=None, above=0, optional=True, help="learning rate of the SG modules (none: --lr)"),
    Setting("evals", "int", full=10, lo=1, help="evaluations along each run"),
    Setting("seeds", "int", full=1, lo=1, hi=4096,
            help="population size: seeds --seed .. --seed + N - 1 trained together in one program"),
))

#: Options of the recurrent-DNI analyses (core, optimisers, SG, character LM); ``pick`` sets each script's sizes.
RECURRENT = Group((
    Setting("hidden", "int", full=128, quick=64, lo=1, hi=8192, help="LSTM units"),
    Setting("batch_size", "int", full=32, lo=1, hi=4096, help="sequences per batch"),
    Setting("lr", "float", full=3e-3, above=0, help="Adam learning rate of the core"),
    Setting("sg_lr", "float", full=1e-3, above=0, help="Adam learning rate of the SG"),
    Setting("clip", "float", full=0.0, lo=0, help="global-norm clip of core and SG gradients (0 = none)"),
    Setting("inject_scale", "float", full=0.1, lo=0, help="scale s of the injected SG (the paper's 0.1)"),
    Setting("target_discount", "float", full=1.0, lo=0, hi=1,
            help="Copy tasks: discount γ of the SG in its own target (episodes end, so γ = 1 is bounded)"),
    Setting("lm_target_discount", "float", full=0.1, lo=0, hi=1,
            help="char LM: discount γ (an unending stream needs γ < 1 for a bounded target)"),
    Setting("lm_sg_input", "str", full="rms", choices=("raw", "rms"),
            help="char LM: how the SG reads the state (rms: divided by its RMS over units; the raw cell state of an "
                 "unending stream grows and the bootstrapped SG diverged at T >= 4, see dni_rnn_stability)"),
    Setting("aux_weight", "float", full=0.1, lo=0, help="weight λ of the DNI + Aux loss"),
    Setting("seq_len", "int", full=120, lo=1, help="char LM: characters per training sequence (a multiple of every T)"),
    Setting("eval_every", "int", full=100, quick=50, lo=1, help="char LM: batches between validations"),
    Setting("eval_chars", "int", full=100_000, quick=20_000, lo=0, help="char LM: validation characters (0 = all)"),
    Setting("corpus", "str", full="kjv", choices=("kjv", "ptb", "text"), help="char LM corpus"),
    Setting("data_root", "path", full=None, optional=True, help="ptb folder or text file"),
))

__all__ = ["KINDS", "RECURRENT", "SEED", "SEED_MAX", "Group", "Setting", "TRAINING", "add_settings", "resolve"]
