"""Synthetic gradients: a learned module predicts a layer's gradient (DNI, Jaderberg et al. 2017).

``sg`` / ``csg``: one SG module at hidden layer ``k`` (default ``max(1, D // 2)``, the middle of
the hidden stack). Layers above ``k`` and the output learn by backprop, which also yields the SG's
regression target, the true ``∂ℓ/∂h_k``. Layers ``1..k`` learn by the chain rule from
``δ_k = mix·SG(h_k[, y]) + (1 − mix)·∂ℓ/∂h_k`` (``mix = 1``, the default, is pure SG; ``mix = 0`` is BP).

``sg-every`` / ``csg-every``: a module at every hidden layer. The top module regresses onto the
true ``∂ℓ/∂h_D``; module ``k < D`` onto the bootstrapped target ``δa_{k+1} W_{k+1}ᵀ``, i.e. the
signal used at layer ``k+1`` carried down one layer (Czarnecki et al. 2017, §2). Each layer learns
from ``δ_k = mix·SG_k + (1 − mix)·target_k``. Cost: one forward pass, the modules, and one local vjp
per layer — no second backward pass.

``c`` variants condition the module on the one-hot label (cDNI). SG losses ``½ mean_n ‖SG − target‖²``
(:func:`sgtheory.sg.sg_loss`) are summed over modules (SG loss weight 1).

Forward unlocking (option ``input_model``; the ``sg-unlock`` / ``csg-unlock`` rows are the ``-every``
variants with linear input models, DNI's "complete unlock" with ``I + M``): every SG interface ``k``
also gets a synthetic-input model ``I_{k+1}(x)`` (:mod:`sgtheory.nets.input_model`, trained by
``½ mean_n ‖I_{k+1}(x) − h_k‖²`` toward the real input of layer ``k + 1``), and every rule above runs on
the net cut at the interfaces (:func:`sgtheory.nets.methods.unlock.record_synthetic`): the part above
``k`` runs from ``I_{k+1}(x)``, learns from ``SG`` or, at the top, the true error of the cut net, and
``SG_k`` regresses onto the gradient at ``I_{k+1}(x)`` — at that point (``fit_at = "input"``, the default,
as koz4k/dni-pytorch's ``BidirectionalInterface``) or at layer ``k``'s output, where its signal is applied
(``fit_at = "output"``). Evaluation always runs the real composed net. With exact input models this is the method
without them, exactly (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.nets.input_model import INPUT_MODELS, apply_input_model, init_input_model, input_loss
from sgtheory.nets.methods.base import Credit, Method, MethodState, Properties, assemble, chain
from sgtheory.nets.methods.unlock import SyntheticInputTape, record_synthetic
from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.tape import Tape
from sgtheory.sg import SG_KINDS, apply_sg, init_sg, sg_loss
from sgtheory.validate import choice, int_in_range

_sg_value_and_grad = jax.value_and_grad(sg_loss, has_aux=True)
FIT_AT = ("input", "output")
_input_value_and_grad = jax.value_and_grad(input_loss, has_aux=True)


class SyntheticGradient(Method):
    """SG at one layer (``every=False``) or at every hidden layer; see the module docstring.

    Options: ``layer`` (1..D, single-module variants only), ``module`` ("linear" | "mlp"),
    ``hidden`` (MLP module width, default 1024), ``mix`` in [0, 1] (weight of the SG in the signal),
    ``input_model`` (None, "linear" or "mlp": synthetic inputs above every SG interface; needs
    ``mix = 1``), ``input_hidden`` (MLP input-model width, default 256), ``fit_at`` (with input models:
    where each SG module regresses, ``"input"`` — at ``I_{k+1}(x)``, where its target is computed, as in
    koz4k/dni-pytorch — or ``"output"`` — at layer ``k``'s output, where it is applied).
    """

    def __init__(self, *, conditioned: bool, every: bool, layer: int | None = None, module: str = "linear",
                 hidden: int = 1024, mix: float = 1.0, input_model: str | None = None, input_hidden: int = 256,
                 fit_at: str = "input"):
        choice(module, "sg module", SG_KINDS)
        int_in_range(hidden, "sg hidden units", 1)
        mix = float(mix)
        if not 0.0 <= mix <= 1.0:
            raise InputError(f"mix: must be in [0, 1], got {mix}")
        if every and layer is not None:
            raise InputError("sg layer: not an option of the -every methods (they use every hidden layer)")
        if layer is not None:
            int_in_range(layer, "sg layer", 1)
        if input_model is not None:
            choice(input_model, "input model", INPUT_MODELS)
            int_in_range(input_hidden, "input-model hidden units", 1)
            if mix != 1.0:
                raise InputError(f"input model: synthetic inputs need a decoupled layer (mix = 1), got mix = {mix}")
        choice(fit_at, "fit at", FIT_AT)
        if fit_at != "input" and input_model is None:
            raise InputError("fit at: only methods with synthetic inputs (input_model) choose where the SG is fitted")
        self.conditioned, self.every = conditioned, every
        self.layer, self.module, self.hidden, self.mix = layer, module, int(hidden), mix
        self.input_model, self.input_hidden, self.fit_at = input_model, int(input_hidden), fit_at
        opts = {"module": module, "mix": mix}
        if module == "mlp":
            opts["hidden"] = int(hidden)
        if not every:
            opts["layer"] = layer
        if input_model is not None:
            opts["input_model"] = input_model
            if input_model == "mlp":
                opts["input_hidden"] = int(input_hidden)
            opts["fit_at"] = fit_at
        self.options = opts

    @property
    def name(self) -> str:
        c = "c" if self.conditioned else ""
        if self.every and self.input_model is not None:
            return f"{c}sg-unlock"
        return f"{c}sg" + ("-every" if self.every else "")

    @property
    def summary(self) -> str:
        where = "at every hidden layer, bootstrapped targets" if self.every else "at one hidden layer"
        text = f"{'label-conditioned ' if self.conditioned else ''}synthetic gradient {where}"
        return text + (" and synthetic inputs I(x) (complete unlock)" if self.input_model is not None else "")

    @property
    def properties(self) -> Properties:
        inputs = "h_i,y" if self.conditioned else "h_i"
        if self.every:
            signal = f"SG_i({inputs}); target δa_{{i+1}} W_{{i+1}}ᵀ from SG_{{i+1}}"
        else:
            signal = f"i ≤ k: chain rule from SG({inputs.replace('_i', '_k')}); i > k: BP"
        unlocked = self.mix == 1.0
        if not unlocked:
            signal = f"mix·{signal.split(';')[0]} + (1−mix)·target"
            inputs += ",L" if not self.every else ",e"
        if self.input_model is not None:  # mix = 1 here
            y = ",y" if self.conditioned else ""
            if self.every:
                where = "I_{i+1}(x)" if self.fit_at == "input" else "h_i"
                signal = f"SG_i(h_i{y}), h_i from I_i(x) (i > 1); SG_i fitted at {where}"
                inputs = f"I_i(x){y}"
            else:
                signal = f"i ≤ k: chain rule from SG(h_k{y}); i > k: BP, layer k+1 runs from I_{{k+1}}(x)"
        return Properties(signal, inputs, learned=True, update_locked=not unlocked, backward_locked=not unlocked,
                          forward_locked=self.input_model is None)

    def sg_layers(self, depth: int) -> list[int]:
        """The hidden layers carrying an SG module, top first."""
        if self.every:
            return list(range(depth, 0, -1))
        k = self.layer if self.layer is not None else max(1, depth // 2)
        if k > depth:
            raise InputError(f"sg layer {k} is outside the net (hidden layers 1..{depth})")
        return [k]

    def input_layers(self, depth: int) -> list[int]:
        """The layers that run from a synthetic input ``I_j(x)`` (``j = k + 1`` for every SG layer ``k``;
        ``D + 1`` is the output layer), bottom first; empty without ``input_model``."""
        return [] if self.input_model is None else sorted(k + 1 for k in self.sg_layers(depth))

    def init(self, config: MLPConfig, *, key, dtype=jnp.float32) -> MethodState:
        """SG modules keyed ``"k"`` (hidden layer ``k``) and input models keyed ``"I{j}"`` (layer ``j``)."""
        layers = self.sg_layers(config.depth)
        keys = jax.random.split(key, len(layers))
        learned = {str(k): init_sg(self.module, config.width, config.n_out, conditioned=self.conditioned,
                                   key=kk, hidden=self.hidden, dtype=dtype) for k, kk in zip(layers, keys)}
        for j in self.input_layers(config.depth):
            learned[f"I{j}"] = init_input_model(self.input_model, config.n_in, config.width, hidden=self.input_hidden,
                                                key=jax.random.fold_in(key, 1000 + j), dtype=dtype)
        return MethodState(learned, {})

    def _signal(self, sg_params, tape: Tape, k: int, target):
        """``δ_k`` (the SG applied at ``h_k``, mixed with ``target``), the SG loss and its gradient.

        The module regresses at ``tape.sg_input(k)`` on a cut net (:mod:`sgtheory.nets.methods.unlock`)
        with ``fit_at = "input"``, at ``h_k`` otherwise."""
        cut = isinstance(tape, SyntheticInputTape) and self.fit_at == "input"
        at = tape.sg_input(k) if cut else tape.hiddens[k]
        (loss, out), g = _sg_value_and_grad(sg_params, jax.lax.stop_gradient(at), tape.onehot,
                                            jax.lax.stop_gradient(target))
        if at is not tape.hiddens[k]:
            out = apply_sg(sg_params, jax.lax.stop_gradient(tape.hiddens[k]), tape.onehot)
        delta = out if self.mix == 1.0 else self.mix * out + (1.0 - self.mix) * target
        return delta, loss, g

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        if self.input_model is not None:
            return self._credit_unlocked(state, tape)
        if self.every and self.module == "linear" and self.mix == 1.0 and tape.depth >= 2:
            # batched on accelerators, where a step is a chain of small kernels and fewer launches win; on a
            # CPU the per-layer loop is the faster one (paper_repro.md, train throughput), so it is compiled there
            return jax.lax.platform_dependent(cpu=lambda: self._credit_loop(state, tape),
                                              default=lambda: self._credit_every_batched(state, tape))
        return self._credit_loop(state, tape)

    def _credit_loop(self, state: MethodState, tape: Tape) -> Credit:
        """:meth:`credit` layer by layer, top down (every case; the reference for the batched one)."""
        return self.credit_with_targets(state, tape)[0]

    def credit_with_targets(self, state: MethodState, tape: Tape) -> tuple[Credit, dict, dict]:
        """:meth:`credit` without input models, on any tape, with what each SG module regressed onto.

        Args:
            state: the method state (input models in it are ignored).
            tape: a :class:`Tape` of the real net or a cut net (:func:`record_synthetic`).

        Returns:
            ``(credit, targets, losses)``: dicts hidden layer ``k`` → the SG module's regression target
            ``(n, width)`` and its loss ``½ mean_n ‖SG_k − target‖²``.
        """
        d = tape.depth
        target = tape.back(tape.error, tape.params[-1]["W"])  # true ∂ℓ/∂h_D
        layers = self.sg_layers(d)
        grads, signals, sg_grads, targets, losses = {}, {}, {}, {}, {}
        if self.every:
            for k in layers:
                targets[k] = target
                delta, losses[k], sg_grads[str(k)] = self._signal(state.learned[str(k)], tape, k, target)
                g, s, target = chain(tape, delta, k, k)
                grads.update(g), signals.update(s)
        else:
            (k,) = layers
            if k < d:
                g, s, target = chain(tape, target, d, k + 1)
                grads.update(g), signals.update(s)
            targets[k] = target
            delta, losses[k], sg_grads[str(k)] = self._signal(state.learned[str(k)], tape, k, target)
            g, s, _ = chain(tape, delta, k, 1)
            grads.update(g), signals.update(s)
        total = sum(losses[k] for k in layers)
        return assemble(tape, grads, signals, sg_grads, total), targets, losses

    def synthetic_inputs(self, state: MethodState, x, depth: int) -> dict:
        """Layer ``j`` → ``I_j(x)`` ``(n, width)`` for every layer in :meth:`input_layers` of a depth-``depth`` net."""
        return {j: apply_input_model(state.learned[f"I{j}"], x) for j in self.input_layers(depth)}

    def _credit_unlocked(self, state: MethodState, tape: Tape) -> Credit:
        """:meth:`credit` with synthetic inputs: the SG rule on the cut net, the input models on the real one."""
        x, d = tape.hiddens[0], tape.depth
        synthetic, in_grads, in_total = {}, {}, 0.0
        for j in self.input_layers(d):
            (loss, synthetic[j]), in_grads[f"I{j}"] = _input_value_and_grad(
                state.learned[f"I{j}"], x, jax.lax.stop_gradient(tape.hiddens[j - 1]))
            in_total = in_total + loss
        synthetic = {j: jax.lax.stop_gradient(v) for j, v in synthetic.items()}
        cut = record_synthetic(tape.params, x, tape.onehot, tape.config, synthetic)
        cr = self._credit_loop(state, cut)
        return cr._replace(state_grads={**cr.state_grads, **in_grads}, input_loss=in_total)

    def _credit_every_batched(self, state: MethodState, tape: Tape) -> Credit:
        """:meth:`credit` for linear modules at every layer with ``mix = 1``, layers batched.

        With pure SG signals nothing is sequential: every ``δ_k = SG_k(h_k)`` reads only the forward
        pass, and so does every bootstrapped target ``δa_{k+1} W_{k+1}ᵀ``. All hidden layers have the
        same width, so the modules, the targets and the weight gradients of layers 2..D are each one
        batched matrix product over the layer axis instead of D products (this is the layer-parallelism
        that decoupling buys; on a GPU it also cuts kernel launches). Same numbers as
        :meth:`_credit_loop` (tested against it)."""
        d, n = tape.depth, tape.n
        sg = [state.learned[str(k)] for k in range(1, d + 1)]
        H = jax.lax.stop_gradient(jnp.stack(tape.hiddens[1:]))  # (D, n, w): h_1..h_D
        A, C = jnp.stack([p["A"] for p in sg]), jnp.stack([p["C"] for p in sg])
        S = jnp.einsum("lni,lij->lnj", H, A) + C[:, None, :]
        if self.conditioned:
            B = jnp.stack([p["B"] for p in sg])
            S = S + jnp.einsum("nc,lcj->lnj", tape.onehot, B)
        locs = [tape.local(k, S[k - 1]) for k in range(1, d + 1)]
        Da = jnp.stack([loc.delta_pre for loc in locs[1:]])  # δa_2..δa_D
        W_up = jnp.stack([tape.params[k]["W"] for k in range(1, d)])  # W_2..W_D, (D-1, w, w)
        top = tape.back(tape.error, tape.params[-1]["W"])  # true ∂ℓ/∂h_D
        T = jnp.concatenate([jnp.einsum("lnj,lij->lni", Da, W_up), top[None]])  # targets for SG_1..SG_D
        T = jax.lax.stop_gradient(T)
        dW = jnp.einsum("lni,lnj->lij", H[:-1], Da) / n  # layers 2..D
        grads = {1: locs[0].grads}
        for k in range(2, d + 1):
            grads[k] = {**locs[k - 1].grads, "W": dW[k - 2]}
        R = S - T
        sg_loss_k = 0.5 * jnp.mean(jnp.sum(R * R, axis=2), axis=1)  # the ½ convention of sgtheory.sg
        Rn = R / n  # ∂L_SG/∂SG
        gA, gC = jnp.einsum("lni,lnj->lij", H, Rn), jnp.sum(Rn, axis=1)
        gB = jnp.einsum("nc,lnj->lcj", tape.onehot, Rn) if self.conditioned else None
        sg_grads = {}
        for k in range(1, d + 1):
            g = {"A": gA[k - 1], "C": gC[k - 1]}
            if self.conditioned:
                g["B"] = gB[k - 1]
            sg_grads[str(k)] = g
        signals = {k: S[k - 1] for k in range(1, d + 1)}
        return assemble(tape, grads, signals, sg_grads, jnp.sum(sg_loss_k))

