"""The credit-assignment family as one interface (Czarnecki et al. 2017, §5, the unified view, claim C10).

``get(name, **options) -> Method`` for ``name`` in :data:`METHODS`; each method declares its
:class:`Properties` and turns the forward record (:class:`sgtheory.nets.tape.Tape`) and its own
state into a learning signal for every hidden layer. :func:`unified_table` renders the
declarations as the paper's table.

=============  ======================================================================
``bp``         backpropagation
``sg``         synthetic gradient ``SG(h_k)`` at one layer (options ``layer``, ``module``, ``hidden``, ``mix``)
``csg``        label-conditioned ``SG(h_k, y)`` at one layer (cDNI)
``sg-every``   ``SG_i(h_i)`` at every hidden layer, bootstrapped targets (``module``, ``hidden``, ``mix``)
``csg-every``  ``SG_i(h_i, y)`` at every hidden layer, bootstrapped targets
``sg-unlock``  ``sg-every`` with a synthetic input ``I_i(x)`` for every layer above the first (complete
               unlock, DNI's ``I + M``; options as ``sg-every`` plus ``input_model``, ``input_hidden``)
``csg-unlock`` ``csg-every`` with synthetic inputs (cDNI, complete unlock)
``fa``         feedback alignment
``dfa``        direct feedback alignment
``kickback``   kickback (multi-class generalisation in :mod:`sgtheory.nets.methods.direct`)
=============  ======================================================================
"""

from __future__ import annotations

from functools import partial

from sgtheory.errors import InputError
from sgtheory.nets.methods.base import Credit, Method, MethodState, Properties, chain
from sgtheory.nets.methods.chain_rule import Backprop, FeedbackAlignment
from sgtheory.nets.methods.direct import DirectFeedbackAlignment, Kickback
from sgtheory.nets.methods.synthetic import SyntheticGradient
from sgtheory.tables import render, yes_no
from sgtheory.validate import choice

_FACTORIES = {
    "bp": Backprop,
    "sg": partial(SyntheticGradient, conditioned=False, every=False),
    "csg": partial(SyntheticGradient, conditioned=True, every=False),
    "sg-every": partial(SyntheticGradient, conditioned=False, every=True),
    "csg-every": partial(SyntheticGradient, conditioned=True, every=True),
    "sg-unlock": partial(SyntheticGradient, conditioned=False, every=True, input_model="linear"),
    "csg-unlock": partial(SyntheticGradient, conditioned=True, every=True, input_model="linear"),
    "fa": FeedbackAlignment,
    "dfa": DirectFeedbackAlignment,
    "kickback": Kickback,
}

#: Names accepted by :func:`get`.
METHODS: tuple[str, ...] = tuple(_FACTORIES)

#: The methods with a decoupled layer (an SG interface), the only ones that can take synthetic inputs.
DECOUPLED: tuple[str, ...] = tuple(n for n in METHODS if "sg" in n)
_INPUT_OPTIONS = ("input_model", "input_hidden", "fit_at")


def get(name: str, **options) -> Method:
    """The method ``name`` with ``options`` (unknown options raise :class:`sgtheory.InputError`).

    Args:
        name: one of :data:`METHODS`.
        **options: the method's constructor options (see the module docstring).

    Returns:
        The :class:`Method`.
    """
    choice(name, "method", METHODS)
    given = [o for o in _INPUT_OPTIONS if o in options]
    if given and name not in DECOUPLED:
        raise InputError(f"method {name}: has no decoupled layer, so it takes no synthetic inputs ({given[0]}); "
                         f"use one of {', '.join(DECOUPLED)}")
    try:
        return _FACTORIES[name](**options)
    except TypeError:
        raise InputError(f"method {name}: unknown option(s) {', '.join(sorted(options))}") from None


_COLUMNS = ("method", "signal for hidden layer i", "conditioned on", "learned", "update-locked", "backward-locked",
            "forward-locked")


def unified_table(format: str = "markdown") -> str:
    """The unified-view table (claim C10), one row per method, generated from each method's declarations.

    Args:
        format: ``"markdown"`` (a GitHub table) or ``"text"`` (aligned columns).

    Returns:
        The table as one string.
    """
    rows = []
    for name in METHODS:
        p = get(name).properties
        rows.append((name, p.signal, p.conditioned_on, yes_no(p.learned), yes_no(p.update_locked),
                     yes_no(p.backward_locked), yes_no(p.forward_locked)))
    return render(_COLUMNS, rows, format)


__all__ = ["DECOUPLED", "METHODS", "Credit", "Method", "MethodState", "Properties", "chain", "get", "unified_table"]
