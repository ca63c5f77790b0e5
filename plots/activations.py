"""Vanishing gradients through depth, and dying ReLUs against LeakyReLU.

Top row.  Deep MLPs of width 64 with 10 to 20 hidden layers of sigmoid, tanh, ReLU or
LeakyReLU(0.01), fed 128 standard-normal inputs; the loss is the MSE of a 10-wide readout
against a standard-normal target.  Every weight is ``kaiming_normal_`` with the gain of
its activation (``calculate_gain``: 1 for sigmoid, 5/3 for tanh, √2 for ReLU), biases
zero, so each activation gets its best standard init; the panels show ``‖∂L/∂W_l‖`` per
layer.  The sigmoid's derivative is at most 1/4 and its output is not centred, so its
gradient still shrinks by orders of magnitude on the way back to the first layer, more
with every layer added; tanh, ReLU and LeakyReLU keep their scale.  torch gets the very
same weights and batch: the gap is that of one forward and backward pass.

Bottom row.  ``2 → 32 → 32 → 32 → 3`` nets on the three-spiral task (600 points, batches
of 32) trained with ``Adam`` at a moderate (1e-2) and a high (1e-1) learning rate, ReLU
against LeakyReLU, from the same torch default init.  A unit is *dead* when its
pre-activation is negative on every training input: a ReLU unit then passes no gradient
back to its weights, which stay where they are (a dead first-layer unit is dead for
good).  A LeakyReLU unit passes ``0.01×`` the gradient for negative inputs, so none of its
weight gradients vanish and units can come back.  High-lr Adam is chaotic, so the twin
runs in lockstep (:class:`plots._models.Lockstep`): the gap is per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._data import spirals
from plots._models import Twins, batches
from plots._style import (
    MINIREG,
    FigureResult,
    color,
    finish,
    gap_clause,
    moving_average,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = ["ACTIVATIONS", "draw", "gradient_norms", "train_dead_units"]

TOLERANCE = 1e-10  # float64: one pass through 20 layers, and single Adam steps in lockstep
WIDTH, BATCH_DEPTH, OUT = 64, 128, 10
# activation class -> (nonlinearity name for calculate_gain, extra kwargs for kaiming_normal_)
ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "ReLU": ("relu", {}),
    "LeakyReLU": ("leaky_relu", {"a": 0.01}),
}
DEAD_SIZES = (2, 32, 32, 32, 3)
DEAD_BATCH = 32
DEAD_LRS = (1e-2, 1e-1)
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 3.5, "ls": "none"}
# ReLU and LeakyReLU nearly coincide in the top row: different line styles keep both visible
LOOKS: dict[str, dict[str, Any]] = {
    "Sigmoid": dict(MINIREG, marker="o", ms=3),
    "Tanh": dict(MINIREG, marker="s", ms=3),
    "ReLU": dict(MINIREG, marker="^", ms=4, linewidth=2.6, alpha=0.8),
    "LeakyReLU": dict(MINIREG, marker="v", ms=3, linestyle=":"),
}


def gradient_norms(activation: str, depth: int, torch: Any) -> dict[str, Any]:
    """``‖∂L/∂W_l‖`` for each of the ``depth`` hidden layers (and torch's, same weights)."""
    init = require("minireg.nn.init")
    nonlinearity, extra = ACTIVATIONS[activation]
    rng = np.random.default_rng(depth)
    x = rng.standard_normal((BATCH_DEPTH, WIDTH))
    target = rng.standard_normal((BATCH_DEPTH, OUT))
    generator = np.random.default_rng(100 + depth)

    def kaiming(model: Any) -> None:
        for layer in model:
            if hasattr(layer, "weight"):
                init.kaiming_normal_(
                    layer.weight, nonlinearity=nonlinearity, generator=generator, **extra
                )
                init.zeros_(layer.bias)

    sizes = [WIDTH] * (depth + 1) + [OUT]
    pair = Twins.mlp(sizes, activation, torch, ("SGD", {"lr": 0.0}), ("MSELoss", {}), init=kaiming)
    ours, theirs = pair.gradients(x, target)
    names = [name for name, _ in pair.model.named_parameters()]
    hidden = [i for i, name in enumerate(names) if name.endswith("weight")][:-1]  # not the readout
    result = {"ours": np.array([np.linalg.norm(ours[i]) for i in hidden]), "gap": pair.gap}
    if theirs is not None:
        result["theirs"] = np.array([np.linalg.norm(theirs[i]) for i in hidden])
    return result


def train_dead_units(
    activation: str, lr: float, steps: int, every: int, torch: Any
) -> dict[str, Any]:
    """Adam on the spirals; per check: dead fraction, zero-gradient fraction (hidden units)."""
    x, y = spirals(600, seed=0)
    pair = Twins.mlp(
        DEAD_SIZES, activation, torch, ("Adam", {"lr": lr}), ("CrossEntropyLoss", {}), lockstep=True
    )
    linear_ends = [i + 1 for i, layer in enumerate(pair.model) if hasattr(layer, "weight")][:-1]
    losses, dead, zero_grad, checks = np.empty(steps), [], [], []
    for t, idx in enumerate(batches(len(x), DEAD_BATCH, steps, seed=2)):
        if t % every == 0 or t == steps - 1:
            checks.append(t)
            pre = [pair.outputs(x, upto=end) for end in linear_ends]  # hidden pre-activations
            grads = pair.gradients(x, y)  # over the whole training set
            dead.append(
                [
                    _dead_fraction([p[side] for p in pre])
                    for side in (0, 1)
                    if pre[0][side] is not None
                ]
            )
            zero_grad.append([_zero_grad_fraction(pair, g) for g in grads if g is not None])
        losses[t] = pair.step(x[idx], y[idx])
    return {
        "losses": losses,
        "dead": np.array(dead),
        "zero_grad": np.array(zero_grad),
        "checks": np.array(checks),
        "gap": pair.gap,
    }


def _torch_clause(torch: Any) -> str:
    if torch is None:
        return torch_note(torch)
    return f"minireg lines, torch {torch.__version__.split('+')[0]} x marks"


def _dead_fraction(pre_activations: list[np.ndarray]) -> float:
    """Fraction of hidden units whose pre-activation is ≤ 0 on every input."""
    return float(np.mean(np.concatenate([np.all(p <= 0, axis=0) for p in pre_activations])))


def _zero_grad_fraction(pair: Twins, grads: list[np.ndarray]) -> float:
    """Fraction of hidden units whose incoming weights all have gradient exactly 0."""
    names = [name for name, _ in pair.model.named_parameters()]
    weights = [g for g, name in zip(grads, names, strict=True) if name.endswith("weight")][:-1]
    return float(np.mean(np.concatenate([np.all(g == 0, axis=1) for g in weights])))


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Gradient norms per layer (depth 10 and 20), their decay with depth, dead units."""
    result = FigureResult("activations", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        depths = [10, 20] if quick else list(range(10, 21, 2))
        steps, every = (40, 10) if quick else (400, 20)
        fig, axes = plt.subplots(2, 3, figsize=(16, 9.2))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.91, bottom=0.09, hspace=0.38, wspace=0.24)
        (d10_ax, d20_ax, ratio_ax), (dead_ax, zero_ax, loss_ax) = axes

        for index, activation in enumerate(ACTIVATIONS):
            c = color(index)
            ratios, their_ratios = [], []
            for depth in depths:
                run = gradient_norms(activation, depth, torch)
                if run["gap"] is not None:
                    result.add_gap(run["gap"])
                ratios.append(run["ours"][0] / run["ours"][-1])
                if "theirs" in run:
                    their_ratios.append(run["theirs"][0] / run["theirs"][-1])
                ax = {depths[0]: d10_ax, depths[-1]: d20_ax}.get(depth)
                if ax is None:
                    continue
                layers = np.arange(1, depth + 1)
                ax.semilogy(layers, run["ours"], color=c, label=activation, **LOOKS[activation])
                if "theirs" in run:
                    ax.semilogy(layers, run["theirs"], **TORCH_MARKS)
            ratio_ax.semilogy(depths, ratios, color=c, label=activation, **LOOKS[activation])
            if their_ratios:
                ratio_ax.semilogy(depths, their_ratios, **TORCH_MARKS)
            result.data[activation] = {"first/last layer gradient, depth 20": float(ratios[-1])}
        for ax, depth in ((d10_ax, depths[0]), (d20_ax, depths[-1])):
            ax.set_title(
                f"{depth} hidden layers: ‖∂L/∂W‖ per layer\n"
                "(Kaiming init with each activation's gain)",
                fontsize=9,
            )
            ax.set_xlabel("layer (1 = next to the input)")
            ax.set_ylabel("gradient norm")
        ratio_ax.set_title(
            "first-layer / last-layer gradient norm vs depth\n(1 = no vanishing)", fontsize=9
        )
        ratio_ax.set_xlabel("hidden layers")
        ratio_ax.set_ylabel("‖∂L/∂W₁‖ / ‖∂L/∂W_L‖")
        ratio_ax.axhline(1.0, color="0.5", lw=0.8, ls=":")

        for index, activation in enumerate(["ReLU", "LeakyReLU"]):
            for k, lr in enumerate(DEAD_LRS):
                with np.errstate(over="ignore", invalid="ignore"):
                    run = train_dead_units(activation, lr, steps, every, torch)
                if run["gap"] is not None:
                    result.add_gap(run["gap"])
                c = color(2 + index)
                style = dict(MINIREG, linestyle="-" if k else ":")
                label = f"{activation}, Adam lr {lr:g}"
                for ax, key in ((dead_ax, "dead"), (zero_ax, "zero_grad")):
                    ax.plot(run["checks"], 100 * run[key][:, 0], color=c, label=label, **style)
                    if run[key].shape[1] > 1:
                        ax.plot(run["checks"], 100 * run[key][:, 1], **TORCH_MARKS)
                loss_ax.semilogy(
                    np.arange(1, steps + 1),
                    moving_average(run["losses"]),
                    color=c,
                    label=label,
                    **style,
                )
                result.data[label] = {
                    "dead %": float(100 * run["dead"][-1, 0]),
                    "zero-gradient %": float(100 * run["zero_grad"][-1, 0]),
                }
        dead_ax.set_title("hidden units negative on every training input (%)", fontsize=9)
        dead_ax.set_ylabel("% of the 96 hidden units")
        zero_ax.set_title(
            "hidden units whose weight gradient is exactly 0 (%)\n"
            "(ReLU: the dead ones; LeakyReLU: none)",
            fontsize=9,
        )
        zero_ax.set_ylabel("% of the 96 hidden units")
        loss_ax.set_title("training loss (moving average, 20 steps)", fontsize=9)
        loss_ax.set_ylabel("cross-entropy")
        for ax in (dead_ax, zero_ax, loss_ax):
            ax.set_xlabel("step")
        from matplotlib.lines import Line2D

        for ax in axes.flat:
            handles, labels = ax.get_legend_handles_labels()
            if torch is not None and ax is not loss_ax:
                handles = [*handles, Line2D([], [], **TORCH_MARKS)]
                labels = [*labels, "torch (same weights; lockstep below)"]
            ax.legend(
                handles,
                labels,
                loc="upper center" if ax in (dead_ax, zero_ax) else "best",
                ncol=2 if ax in (dead_ax, zero_ax) else 1,
                fontsize=7,
            )
        for ax in (dead_ax, zero_ax):
            ax.set_ylim(-2, 75)
        gap = gap_clause(result, "worst |minireg − torch| (gradients; one Adam step)")
        finish(
            fig,
            result,
            out_dir,
            f"Activations: vanishing gradients through depth (width {WIDTH}, float64) and dying "
            f"ReLUs (MLP {'→'.join(map(str, DEAD_SIZES))}, {steps} Adam steps){gap}",
            "Technique: sigmoid vs tanh vs ReLU vs LeakyReLU (Maas et al. 2013) hidden layers; "
            "notice the sigmoid's gradient vanishing with depth, and dead ReLU units whose "
            f"gradient is exactly 0; {_torch_clause(torch)}.",
        )
    return result
