"""Credit assignment through time: full BPTT, truncated BPTT and recurrent DNI behind one interface.

``get(name, **options) -> RecurrentMethod`` for ``name`` in :data:`METHODS`; each method declares
:class:`RecurrentProperties` (in the spirit of :mod:`sgtheory.nets.methods`) and carries the
options of the window algorithm (:mod:`sgtheory.rnn.window`). :func:`unified_table` renders the
declarations as a table (``sgtheory methods --recurrent``).

============  ====================================================================================
``bptt``      full backpropagation through time: one window spans the whole sequence
``tbptt``     truncated BPTT: windows of T steps, nothing crosses a window boundary
``dni``       truncated BPTT plus a synthetic gradient ``SG([h; c])`` injected at every window exit
              (Jaderberg et al. 2017, §3.1), its target bootstrapped from the next boundary
``cdni``      ``dni`` with the SG also reading the targets of the window that follows the boundary
``dni-aux``   ``dni`` plus an auxiliary head on every in-window state predicting the SG the window
              will emit at its exit, weight ``aux_weight``; its gradient reaches the core
============  ====================================================================================

Options of the SG methods (the paper's values are unknown except the 0.1 scale, whose reading is
unknown; see ``paper_repro.md``):

- ``inject_scale`` ``s`` (default 0.1): the exit SG enters the window's backward pass as ``s·SG``;
- ``target_discount`` ``γ`` (default 0.1, the reading in which the scaled SG also enters the
  target, as one backward pass computes it): the SG's target is ``∂L_window/∂s_b + γ·(∂s_exit/∂s_b)ᵀ SG``;
- ``module``: ``linear`` (default) or ``mlp`` (two ReLU layers of ``hidden`` units); last layer zero;
- ``sg_input``: the SG reads the state ``raw`` (default) or divided by its RMS over units (``rms``,
  :func:`sgtheory.rnn.sg.sg_features`), which bounds the SG's output whatever the state's scale — use
  ``rms`` on an unending stream (char LM), where a raw-reading SG and the state can run away together
  (``analyses/dni_rnn_stability.py``; ``sgtheory rnn --task charlm`` and the analyses choose it there);
- ``aux_weight`` ``λ`` (``dni-aux`` only, default 0.1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from sgtheory.errors import InputError
from sgtheory.rnn.sg import SG_INPUTS, SG_MODULES
from sgtheory.tables import render, yes_no
from sgtheory.validate import choice, int_in_range


@dataclass(frozen=True)
class RecurrentProperties:
    """What a method sends back across a window boundary, and what it costs.

    ``signal``: the cotangent injected at a window's exit state; ``conditioned_on``: what the signal
    reads; ``learned``: the signal's generator is trained; ``update_locked``: a window's update must
    wait for the rest of the sequence; ``backward_locked``: a window's backward pass must wait for
    later windows' backward passes; ``memory``: steps kept for one backward pass; ``horizon``: how
    far back a loss's credit reaches.
    """

    signal: str
    conditioned_on: str
    learned: bool
    update_locked: bool
    backward_locked: bool
    memory: str
    horizon: str


@dataclass(frozen=True)
class RecurrentMethod:
    """One credit-assignment rule through time; see the module docstring for the names and options."""

    name: str
    inject_scale: float = 0.1
    target_discount: float = 0.1
    module: str = "linear"
    hidden: int = 256
    aux_weight: float = 0.0
    sg_input: str = "raw"
    options: dict = field(default_factory=dict, compare=False, hash=False)

    summaries: ClassVar[dict] = {
        "bptt": "full backpropagation through time (one window = the sequence)",
        "tbptt": "truncated BPTT: windows of T steps, zero gradient across boundaries",
        "dni": "truncated BPTT + synthetic gradient at every window exit (DNI)",
        "cdni": "DNI with the SG also reading the next window's targets (cDNI)",
        "dni-aux": "DNI + an auxiliary head predicting the SG the window will emit (DNI + Aux)",
    }

    @property
    def summary(self) -> str:
        """One line describing the method."""
        return self.summaries[self.name]

    @property
    def uses_sg(self) -> bool:
        """Whether a learned SG is injected at window exits."""
        return self.name in ("dni", "cdni", "dni-aux")

    @property
    def conditioned(self) -> bool:
        """Whether the SG also reads the targets of the window after the boundary."""
        return self.name == "cdni"

    @property
    def has_aux(self) -> bool:
        """Whether the auxiliary SG-prediction head is trained (``dni-aux``)."""
        return self.name == "dni-aux"

    @property
    def full_sequence(self) -> bool:
        """Whether one window spans the whole sequence (``bptt``)."""
        return self.name == "bptt"

    @property
    def two_pass(self) -> bool:
        """Whether the SG's target needs a second pull of the window's VJP.

        One pull with cotangents ``(1, s·SG)`` yields the core's gradient and, when ``γ = s`` and there
        is no auxiliary loss, the SG's target as well.
        """
        return self.uses_sg and (self.has_aux or self.target_discount != self.inject_scale)

    @property
    def properties(self) -> RecurrentProperties:
        """The declared :class:`RecurrentProperties`."""
        if self.name == "bptt":
            return RecurrentProperties("— (no boundary inside a sequence)", "L", False, True, True,
                                       "the whole sequence", "the whole sequence")
        if self.name == "tbptt":
            return RecurrentProperties("0", "—", False, False, False, "T steps", "T steps")
        reads = "[h; c]" + (", targets of the next T steps" if self.conditioned else "")
        signal = "s·SG(s_exit" + (", y_next" if self.conditioned else "") + ")"
        if self.has_aux:
            signal += " + λ·∂aux/∂s (aux head predicts the exit SG from every in-window state)"
        return RecurrentProperties(signal, reads, True, False, False, "T steps",
                                   "unbounded, discounted by γ per window (bootstrapped)")

    def to_dict(self) -> dict:
        """JSON-able ``{"name", "options"}`` (recorded in checkpoints)."""
        return {"name": self.name, "options": dict(self.options)}


def _sg_options(name, *, inject_scale=0.1, target_discount=None, module="linear", hidden=256, aux_weight=None,
                sg_input="raw"):
    s = _finite(inject_scale, "inject_scale", lo=0.0)
    g = s if target_discount is None else _finite(target_discount, "target_discount", lo=0.0, hi=1.0)
    choice(module, "sg module", SG_MODULES)
    choice(sg_input, "sg input", SG_INPUTS)
    h = int_in_range(hidden, "sg hidden units", 1)
    if name == "dni-aux":
        lam = _finite(0.1 if aux_weight is None else aux_weight, "aux_weight", lo=0.0)
    elif aux_weight is not None:
        raise InputError(f"aux_weight: an option of dni-aux only, not {name}")
    else:
        lam = 0.0
    opts = {"inject_scale": s, "target_discount": g, "module": module}
    if module == "mlp":
        opts["hidden"] = h
    if name == "dni-aux":
        opts["aux_weight"] = lam
    if sg_input != "raw":
        opts["sg_input"] = sg_input
    return RecurrentMethod(name, s, g, module, h, lam, sg_input, opts)


def _finite(value, name, *, lo=None, hi=None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise InputError(f"{name}: must be a finite number {bounds}, got {value!r}")
    return v


#: Names accepted by :func:`get`.
METHODS: tuple[str, ...] = ("bptt", "tbptt", "dni", "cdni", "dni-aux")


def get(name: str, **options) -> RecurrentMethod:
    """The method ``name`` with ``options``.

    Args:
        name: one of :data:`METHODS`.
        **options: for ``dni``/``cdni``/``dni-aux``: ``inject_scale``, ``target_discount`` (default:
            ``inject_scale``), ``module``, ``hidden``, ``sg_input``; ``aux_weight`` for ``dni-aux``. ``bptt`` and
            ``tbptt`` take none.

    Returns:
        A :class:`RecurrentMethod`. Unknown names or options raise :class:`sgtheory.InputError`.
    """
    choice(name, "method", METHODS)
    if name in ("bptt", "tbptt"):
        if options:
            raise InputError(f"method {name}: takes no options (got {', '.join(sorted(options))})")
        return RecurrentMethod(name, 0.0, 0.0, "linear", 1, 0.0, "raw", {})
    try:
        return _sg_options(name, **options)
    except TypeError:
        raise InputError(f"method {name}: unknown option(s) {', '.join(sorted(options))}") from None


_COLUMNS = ("method", "signal at a window exit", "reads", "learned", "update-locked", "backward-locked",
            "memory", "credit horizon")


def unified_table(format: str = "markdown") -> str:
    """The recurrent methods' declared properties as a table, one row per method.

    Args:
        format: ``"markdown"`` (a GitHub table) or ``"text"`` (aligned columns).

    Returns:
        The table as one string.
    """
    rows = []
    for name in METHODS:
        p = get(name).properties
        rows.append((name, p.signal, p.conditioned_on, yes_no(p.learned), yes_no(p.update_locked),
                     yes_no(p.backward_locked), p.memory, p.horizon))
    return render(_COLUMNS, rows, format)


def describe(name: str) -> dict:
    """Method ``name`` with default options, described.

    Args:
        name: a method name.

    Returns:
        ``{"summary", **properties}`` (JSON-able).
    """
    m = get(name)
    return {"summary": m.summary, **asdict(m.properties)}


__all__ = ["METHODS", "RecurrentMethod", "RecurrentProperties", "describe", "get", "unified_table"]
