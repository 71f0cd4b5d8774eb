"""What is trained and how: the static description of a linear SG experiment.

A :class:`Config` is hashable and holds no arrays, so it is a static argument of jitted functions;
learning rates, data and parameters are traced data. Layer numbering: h_0 = x, h_i = h_{i-1} W_i + b_i
for i = 1..L with L = depth + 1, and the prediction p = h_L. An SG "at layer i" predicts ∂L/∂h_i, so
``sg_layer = L`` (or ``"output"``) is the SG between the output and the loss, and ``1 ≤ sg_layer < L``
one at a hidden layer. ``sg_layer = "all"`` puts an SG at every h_1..h_L with bootstrapped targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sgtheory.errors import InputError
from sgtheory.validate import choice, int_in_range

MODELS = ("linear", "deep-linear")
LOSSES = ("mse", "log")
SG_VARIANTS = ("none", "linear", "cond-linear", "mlp")
SG_STEPS = ("fixed", "line-search")
DATA_SOURCES = ("auto", "moments", "samples")


@dataclass(frozen=True)
class Config:
    """A linear or deep linear model, its loss and its learning rule.

    - ``model``: ``"linear"`` (p = xW + b) or ``"deep-linear"`` (hidden ``widths``, no non-linearity).
    - ``widths``: hidden widths, ``()`` for the linear model; ``len(widths)`` is the depth.
    - ``loss``: ``"mse"`` (½‖p − y‖²) or ``"log"`` (sigmoid cross-entropy for one output, softmax
      cross-entropy for several).
    - ``sg``: ``"none"`` (backprop), ``"linear"`` (SG(h) = hA + C), ``"cond-linear"``
      (SG(h, y) = hA + yB + C) or ``"mlp"`` (one ReLU hidden layer of ``sg_hidden`` units, fed (h, y)).
    - ``sg_layer``: activation index 1..L, ``"output"`` (= L) or ``"all"`` (bootstrapped).
    - ``sg_step``: ``"fixed"`` (rate β) or ``"line-search"`` (exact minimiser of the SG loss along its
      gradient; linear SG variants only, where the SG loss is quadratic in the step).
    - ``batch_size``: ``None`` for full-batch gradient descent, else minibatch SGD (needs samples).
    - ``data``: where full-batch expectations come from: ``"moments"`` (square-root rows of the
      population moments; cost independent of n; exact for MSE with a linear SG), ``"samples"``, or
      ``"auto"`` (moments whenever exact, i.e. MSE loss and a non-MLP SG).
    - ``bias``: whether each layer has a bias.
    """

    model: str = "linear"
    widths: tuple = field(default=())
    loss: str = "mse"
    sg: str = "cond-linear"
    sg_layer: object = "output"
    sg_hidden: int = 16
    sg_step: str = "fixed"
    batch_size: object = None
    data: str = "auto"
    bias: bool = True

    def __post_init__(self):
        choice(self.model, "model", MODELS)
        choice(self.loss, "loss", LOSSES)
        choice(self.sg, "sg", SG_VARIANTS)
        choice(self.sg_step, "sg_step", SG_STEPS)
        choice(self.data, "data", DATA_SOURCES)
        widths = tuple(int_in_range(w, "width", lo=1) for w in self.widths)
        object.__setattr__(self, "widths", widths)
        if self.model == "linear" and widths:
            raise InputError("model linear: has no hidden layers (use model deep-linear)")
        if self.sg != "none":
            layer = self.sg_layer
            if layer == "output":
                layer = self.n_layers
            if layer != "all":
                layer = int_in_range(layer, "sg_layer", lo=1, hi=self.n_layers)
            object.__setattr__(self, "sg_layer", layer)
        int_in_range(self.sg_hidden, "sg_hidden", lo=1)
        if self.batch_size is not None:
            int_in_range(self.batch_size, "batch_size", lo=1)
        if self.data == "moments" and (self.loss != "mse" or self.sg == "mlp"):
            raise InputError("data moments: only exact for MSE with a linear SG; log loss and an MLP SG need samples")
        if self.sg_step == "line-search" and self.sg not in ("linear", "cond-linear"):
            raise InputError(f"sg_step line-search: needs a linear SG (linear or cond-linear), not {self.sg!r}")

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.widths)

    @property
    def n_layers(self) -> int:
        """Number of weight layers L = depth + 1."""
        return len(self.widths) + 1

    @property
    def sg_layers(self) -> tuple:
        """Activation indices (1..L) that carry an SG module, bottom to top."""
        if self.sg == "none":
            return ()
        if self.sg_layer == "all":
            return tuple(range(1, self.n_layers + 1))
        return (self.sg_layer,)

    @property
    def uses_samples(self) -> bool:
        """Whether full-batch expectations are taken over the samples rather than the moment rows."""
        if self.data != "auto":
            return self.data == "samples"
        return self.loss != "mse" or self.sg == "mlp"


def make_config(model: str = "linear", *, depth: int = 0, width: int = 10, **kwargs) -> Config:
    """A :class:`Config` with ``depth`` hidden layers of equal ``width``.

    Args:
        model: ``"linear"`` (``depth`` must be 0) or ``"deep-linear"``.
        depth: hidden layers, ≥ 0.
        width: units of every hidden layer, ≥ 1.
        **kwargs: the other :class:`Config` fields (``loss``, ``sg``, ``sg_layer``, ``bias``, ...).

    Returns:
        The :class:`Config`.

    Raises:
        InputError: a bad depth or width, or hidden layers asked of the linear model.
    """
    depth = int_in_range(depth, "depth", lo=0)
    if model == "linear" and depth:
        raise InputError(f"depth {depth}: model linear has no hidden layers (use model deep-linear)")
    return Config(model=model, widths=(int_in_range(width, "width", lo=1),) * depth, **kwargs)


__all__ = ["Config", "make_config", "MODELS", "LOSSES", "SG_VARIANTS", "SG_STEPS", "DATA_SOURCES"]
