"""Why weights start random, and not too large: symmetry and scale at initialisation.

Model: ``2 → 32 → 32 → 3`` with tanh (float64) on the three-spiral task (600 training
points, batches of 32), ``SGD(lr=0.05, momentum=0.9)``, cross-entropy.  Four starts, each
filled by ``minireg.nn.init`` and copied into the torch twin (biases zero):

* ``zeros_``: every weight 0.  The hidden units output 0 and receive no gradient (the
  weights after them are 0): only the output bias can learn, and the loss stays at ln 3;
* ``constant_(W, 0.2)``: all hidden units of a layer compute the same function, get the
  same gradient and take the same step, so they stay identical: the spread between units
  (below) never leaves the rounding floor, and the net learns like one with a single
  unit per layer;
* ``xavier_normal_`` (Glorot & Bengio, 2010): random, scaled to the fan-in and fan-out;
* ``normal_(W, 0, 10)``: random but far too large: tanh saturates, the logits are huge,
  the first losses and gradients explode and the loss jumps around before it settles.

The *spread* of a hidden layer is ``max_j std_i W[i, j]``: how much its units' incoming
weights differ (0 when all units are copies).  Under constant init matrix products round
identical columns at different positions of NumPy's and torch's GEMM kernels a little
differently, so the spread is ~1e-17 rather than 0: symmetry is broken only at the
rounding level, which SGD does not amplify (Adam, which divides by √v, does).  Runs at
σ = 10 are chaotic, so the twin runs in lockstep: the gap is per step.  The bottom row
shows each trained net's class regions, minireg and torch (same weights), with the data.
"""

from __future__ import annotations

from collections.abc import Callable
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
    floor_for_log,
    gap_clause,
    moving_average,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = ["INITS", "draw", "train"]

TOLERANCE = 1e-10  # float64, lockstep: one SGD step at a time
SIZES = (2, 32, 32, 3)
LR, MOMENTUM, BATCH = 0.05, 0.9, 32
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 3.0, "ls": "none"}

# label -> fill(init module, weight, generator)
INITS: dict[str, Callable[[Any, Any, np.random.Generator], Any]] = {
    "zeros": lambda init, w, g: init.zeros_(w),
    "constant 0.2": lambda init, w, g: init.constant_(w, 0.2),
    "Xavier normal": lambda init, w, g: init.xavier_normal_(w, generator=g),
    "normal σ=10 (too large)": lambda init, w, g: init.normal_(w, 0.0, 10.0, generator=g),
}


def spread(model: Any) -> float:
    """``max_j std_i W[i, j]`` over the hidden layers' weights (0: all units identical)."""
    weights = [
        layer.weight.detach().numpy() if hasattr(layer.weight, "detach") else layer.weight.data
        for layer in model
        if hasattr(layer, "weight")
    ][:-1]  # not the readout
    return max(float(np.max(np.std(w, axis=0))) for w in weights)


def train(label: str, steps: int, torch: Any) -> dict[str, Any]:
    """Train from init ``label``; losses, gradient norms, spreads, and the class regions."""
    init = require("minireg.nn.init")
    fill = INITS[label]

    def initialise(model: Any) -> None:
        generator = np.random.default_rng(0)
        for layer in model:
            if hasattr(layer, "weight"):
                fill(init, layer.weight, generator)
                init.zeros_(layer.bias)

    x, y = spirals(600, seed=0)
    pair = Twins.mlp(
        SIZES,
        "Tanh",
        torch,
        ("SGD", {"lr": LR, "momentum": MOMENTUM}),
        ("CrossEntropyLoss", {}),
        init=initialise,
        lockstep=True,
    )
    losses, norms = np.empty(steps), np.empty(steps)
    spreads = np.empty((steps + 1, 2))
    spreads[0] = spread(pair.model), np.nan if pair.twin is None else spread(pair.twin)
    for t, idx in enumerate(batches(len(x), BATCH, steps, seed=2)):
        losses[t] = pair.step(x[idx], y[idx])
        norms[t] = np.sqrt(sum(float(np.sum(p.grad**2)) for p in pair.model.parameters()))
        spreads[t + 1] = spread(pair.model), np.nan if pair.twin is None else spread(pair.twin)
    grid = np.stack(np.meshgrid(np.linspace(-2.2, 2.2, 90), np.linspace(-2.2, 2.2, 90)), -1)
    ours, theirs = pair.outputs(grid.reshape(-1, 2))
    accuracy = float(np.mean(pair.outputs(x)[0].argmax(1) == y))
    return {
        "accuracy": accuracy,
        "losses": losses,
        "norms": norms,
        "spreads": spreads,
        "regions": ours.argmax(1).reshape(grid.shape[:2]),
        "torch_regions": None if theirs is None else theirs.argmax(1).reshape(grid.shape[:2]),
        "x": x,
        "y": y,
        "gap": pair.gap,
    }


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Spread between hidden units, loss and gradient norm per step; class regions."""
    result = FigureResult("symmetry", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 50 if quick else 400
        fig = plt.figure(figsize=(16, 9.4))
        grid = fig.add_gridspec(
            2, 4, height_ratios=[1.0, 1.0], hspace=0.42, wspace=0.28,
            left=0.05, right=0.98, top=0.9, bottom=0.08,
        )  # fmt: skip
        spread_ax = fig.add_subplot(grid[0, 0:2])
        loss_ax = fig.add_subplot(grid[0, 2])
        norm_ax = fig.add_subplot(grid[0, 3])
        steps_axis = np.arange(0, steps + 1)
        from matplotlib.colors import ListedColormap

        regions_cmap = ListedColormap(["#c6dbef", "#fdd0a2", "#c7e9c0"])
        for index, label in enumerate(INITS):
            c = color(index)
            with np.errstate(over="ignore"):
                run = train(label, steps, torch)
            if run["gap"] is not None:
                result.add_gap(run["gap"])
            spread_ax.semilogy(
                steps_axis, floor_for_log(run["spreads"][:, 0]), color=c, label=label, **MINIREG
            )
            if torch is not None:
                every = max(1, steps // 30)
                spread_ax.semilogy(
                    steps_axis[::every], floor_for_log(run["spreads"][::every, 1]), **TORCH_MARKS
                )
            loss_ax.semilogy(
                np.arange(1, steps + 1),
                moving_average(run["losses"], 10),
                color=c,
                label=label,
                **MINIREG,
            )
            norm_ax.semilogy(np.arange(1, steps + 1), run["norms"], color=c, lw=0.9, label=label)
            ax = fig.add_subplot(grid[1, index])
            ax.contourf(
                np.linspace(-2.2, 2.2, 90), np.linspace(-2.2, 2.2, 90), run["regions"],
                levels=[-0.5, 0.5, 1.5, 2.5], cmap=regions_cmap,
            )  # fmt: skip
            if run["torch_regions"] is not None:
                ax.contour(
                    np.linspace(-2.2, 2.2, 90), np.linspace(-2.2, 2.2, 90), run["torch_regions"],
                    levels=[0.5, 1.5], colors="k", linewidths=0.8, linestyles="--",
                )  # fmt: skip
            x, y = run["x"], run["y"]
            for k, marker_color in enumerate(["#08519c", "#d94801", "#238b45"]):
                ax.scatter(*x[y == k].T, s=4, color=marker_color, alpha=0.6)
            accuracy = run["accuracy"]
            ax.set_title(
                f"{label}: class regions after {steps} steps\n(training accuracy {accuracy:.0%})",
                fontsize=9,
            )
            ax.set_xlabel("x₁")
            ax.set_ylabel("x₂")
            ax.set_aspect("equal")
            ax.grid(False)
            result.data[label] = {
                "final spread": float(run["spreads"][-1, 0]),
                "final loss (last 20 steps)": float(np.mean(run["losses"][-20:])),
                "max gradient norm": float(np.max(run["norms"])),
                "training accuracy": accuracy,
            }
        spread_ax.set_title(
            "spread between the hidden units' incoming weights, max_j std_i W[i, j]\n"
            "(zeros: exactly 0, drawn at 1e-18; constant: rounding level, never grows)",
            fontsize=9,
        )
        spread_ax.set_xlabel("step")
        spread_ax.set_ylabel("spread")
        loss_ax.set_title("training loss (moving average, 10 steps)", fontsize=9)
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("cross-entropy")
        loss_ax.axhline(np.log(3), color="0.5", ls=":", lw=1)
        loss_ax.text(steps, np.log(3) * 1.15, "ln 3: chance", ha="right", fontsize=7, color="0.4")
        norm_ax.set_title("gradient norm per step (all parameters)", fontsize=9)
        norm_ax.set_xlabel("step")
        norm_ax.set_ylabel("‖g‖₂")
        from matplotlib.lines import Line2D

        handles, labels = spread_ax.get_legend_handles_labels()
        if torch is not None:
            handles.append(Line2D([], [], **TORCH_MARKS))
            labels.append("torch twin (lockstep, same weights)")
        spread_ax.legend(handles, labels, loc="center right", fontsize=7.5)
        loss_ax.legend(loc="lower left", fontsize=7)
        norm_ax.legend(loc="lower left", fontsize=7)
        gap = gap_clause(result, "worst one-step |minireg − torch|")
        clause = torch_note(torch, "lines and filled regions", "x marks and dashed boundaries")
        finish(
            fig,
            result,
            out_dir,
            f"Initialisation: symmetry and scale. MLP {'→'.join(map(str, SIZES))} (tanh, float64), "
            f"SGD(lr={LR}, momentum={MOMENTUM}), batch {BATCH}, {steps} steps{gap}",
            "Technique: random weight initialisation (symmetry breaking) at the right scale; "
            "notice the spread stuck at 0 under zero/constant init, and the loss spikes of "
            f"too-large weights; {clause}.",
        )
    return result
