"""Linear and deep linear models trained with synthetic gradients: problems, rules, theory, sweeps.

- :mod:`~sgtheory.linear.problems`  problems as population moments (and optional samples)
- :mod:`~sgtheory.linear.datasets`  four basic artificial data sets, any dimension
- :mod:`~sgtheory.linear.config`    the static experiment description (:class:`Config`)
- :mod:`~sgtheory.linear.sg`        synthetic-gradient modules and the exact line search
- :mod:`~sgtheory.linear.rules`     backprop / SG learning rules: ``init``, ``step``, ``loss``, ``sg_loss``
- :mod:`~sgtheory.linear.optimum`   the global optimum of the original problem
- :mod:`~sgtheory.linear.dynamics`  recorded runs (discrete steps) and the gradient-flow limit
- :mod:`~sgtheory.linear.theory`    Jacobians, linearisation, spectral radius, the scalar closed form
- :mod:`~sgtheory.linear.joint`     the joint field G and its Jacobian, one backend per config
- :mod:`~sgtheory.linear.fixedpoints` the fixed point the flow reaches from a start; flatter points on manifolds
- :mod:`~sgtheory.linear.rule`      the three-way rule (converges / diverges / undetermined), written down once
- :mod:`~sgtheory.linear.predict`   the prediction for a whole grid in one call
- :mod:`~sgtheory.linear.sweep`     vmapped, chunked convergence sweeps with verdicts
- :mod:`~sgtheory.linear.grid`      the whole-grid update behind the fast sweep path
- :mod:`~sgtheory.linear.field`     that case's joint field and exact Jacobian in numpy (the theory's fast path)
- :mod:`~sgtheory.linear.agreement` theory vs simulation on a grid: the boundary band, agreement, coverage
- :mod:`~sgtheory.linear.plots`     the (α, β) phase diagram
"""

from sgtheory.linear import datasets
from sgtheory.linear.agreement import score, theory_agreement
from sgtheory.linear.config import Config, make_config
from sgtheory.linear.dynamics import Trajectory, flow, trajectory
from sgtheory.linear.fixedpoints import flattest, flow_limit
from sgtheory.linear.joint import joint_field
from sgtheory.linear.optimum import Optimum, optimum
from sgtheory.linear.plots import plot_phase_diagram
from sgtheory.linear.predict import Prediction, predict
from sgtheory.linear.problems import Problem, from_moments, from_samples
from sgtheory.linear.rules import (
    State,
    effective,
    fit_sg,
    gradients,
    init,
    loss,
    sg_loss,
    signals,
    step,
)
from sgtheory.linear.sweep import STATUS, SweepResult, sweep
from sgtheory.linear.theory import (
    Linearisation,
    fixed_point,
    jacobian,
    linearise,
    scalar_boundary,
    spectral_radius,
)

__all__ = [
    "datasets",
    "Config",
    "make_config",
    "Problem",
    "from_moments",
    "from_samples",
    "State",
    "init",
    "step",
    "gradients",
    "loss",
    "sg_loss",
    "signals",
    "effective",
    "fit_sg",
    "Optimum",
    "optimum",
    "Trajectory",
    "trajectory",
    "flow",
    "fixed_point",
    "jacobian",
    "Linearisation",
    "linearise",
    "spectral_radius",
    "scalar_boundary",
    "joint_field",
    "flow_limit",
    "flattest",
    "Prediction",
    "predict",
    "score",
    "STATUS",
    "SweepResult",
    "sweep",
    "theory_agreement",
    "plot_phase_diagram",
]

# Theory checks (C1–C3): the implied loss of a linear SG, the ε-tracking condition, critical points.
from sgtheory.linear import critical, surrogate, tracking

__all__ += ["surrogate", "tracking", "critical"]
