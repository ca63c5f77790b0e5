"""An MLP (1 → 64 → 64 → 1, tanh) fitting a noisy 1-D function with three optimizers.

Data: ``y = sin(2x) + 0.3·x + 0.1·ε`` for 512 points ``x ~ U(−3, 3)`` (seed 0).  Model:
``Linear(1,64) → Tanh → Linear(64,64) → Tanh → Linear(64,1)`` in float64, MSE loss,
mini-batches of 64 drawn by one shared seeded shuffle.  torch builds the model
(``torch.manual_seed(0)``, torch's default init) and minireg loads torch's ``state_dict``,
so both start from the same weights and see the same batches; they then train
independently.  Optimizers: ``SGD(lr=1e-2)``, ``SGD(lr=1e-2, momentum=0.9)`` and
``Adam(lr=1e-2)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._models import batches, minireg_mlp, minireg_step, torch_mlp, torch_step
from plots._style import (
    MINIREG,
    TORCH,
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

__all__ = ["OPTIMIZERS", "draw", "train"]

TOLERANCE = 1e-9  # float64 training runs; differences are rounding, amplified mildly by training
SIZES = (1, 64, 64, 1)
BATCH = 64

# label -> (class name, kwargs)
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "SGD": ("SGD", {"lr": 1e-2}),
    "SGD momentum 0.9": ("SGD", {"lr": 1e-2, "momentum": 0.9}),
    "Adam": ("Adam", {"lr": 1e-2}),
}


def make_data(n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` as ``(n, 1)`` float64 columns."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (n, 1))
    y = np.sin(2.0 * x) + 0.3 * x + 0.1 * rng.standard_normal((n, 1))
    return x, y


def train(label: str, steps: int, checkpoints: list[int], library: str) -> dict[str, Any]:
    """Train with optimizer ``label``; return losses per step and predictions at checkpoints."""
    import minireg

    x, y = make_data()
    grid = np.linspace(-3.2, 3.2, 200)[:, None]
    class_name, kwargs = OPTIMIZERS[label]
    torch = optional_torch()
    index_batches = batches(len(x), BATCH, steps, seed=1)
    losses = np.empty(steps)
    fits: dict[int, np.ndarray] = {}

    if library == "minireg":
        for name in ("Linear", "Tanh", "Sequential", "MSELoss"):
            require(f"minireg.nn.{name}")
        model = minireg_mlp(SIZES, "Tanh", torch)
        opt = require(f"minireg.optim.{class_name}")(model.parameters(), **kwargs)
        loss_fn = minireg.nn.MSELoss()
        for t, idx in enumerate(index_batches):
            if t in checkpoints:
                fits[t] = model(grid).copy()
            losses[t], _ = minireg_step(model, loss_fn, opt, x[idx], y[idx])
        fits[steps] = model(grid).copy()
    else:
        model = torch_mlp(torch, SIZES, "Tanh")
        opt = getattr(torch.optim, class_name)(model.parameters(), **kwargs)
        loss_fn = torch.nn.MSELoss()
        tx, ty, tgrid = (torch.from_numpy(a) for a in (x, y, grid))
        for t, idx in enumerate(index_batches):
            if t in checkpoints:
                with torch.no_grad():
                    fits[t] = model(tgrid).numpy().copy()
            tidx = torch.from_numpy(idx)
            losses[t], _ = torch_step(model, loss_fn, opt, tx[tidx], ty[tidx])
        with torch.no_grad():
            fits[steps] = model(tgrid).numpy().copy()
    return {"losses": losses, "fits": fits, "grid": grid[:, 0]}


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Fits at several iterations per optimizer, and all loss curves."""
    result = FigureResult("mlp_regression", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 150 if quick else 1500
        checkpoints = [steps // 30, steps // 6]
        x, y = make_data()
        fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
        fig.subplots_adjust(left=0.07, right=0.98, top=0.91, bottom=0.09, hspace=0.32, wspace=0.18)
        loss_ax = axes[1, 1]
        shades = ["#fdae61", "#2c7fb8", "#253494"]
        for index, label in enumerate(OPTIMIZERS):
            ax = axes.flat[index]
            ours = train(label, steps, checkpoints, "minireg")
            theirs = train(label, steps, checkpoints, "torch") if torch is not None else None
            ax.scatter(x[:, 0], y[:, 0], s=4, color="0.6", alpha=0.5, label="data")
            for shade, t in zip(shades, [*checkpoints, steps], strict=True):
                ax.plot(
                    ours["grid"],
                    ours["fits"][t][:, 0],
                    color=shade,
                    label=f"minireg, step {t}",
                    **MINIREG,
                )
                if theirs is not None:
                    ax.plot(
                        theirs["grid"],
                        theirs["fits"][t][:, 0],
                        color="k",
                        lw=0.9,
                        ls="--",
                        label="torch" if t == steps else None,
                    )
                    result.add_gap(np.abs(ours["fits"][t] - theirs["fits"][t]).max())
            ax.set_title(
                f"{label}: {OPTIMIZERS[label][0]}"
                f"({', '.join(f'{k}={v}' for k, v in OPTIMIZERS[label][1].items())})"
            )
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.set_ylim(-2.2, 2.2)
            ax.legend(loc="upper left", ncol=2)
            c = color(index)
            steps_axis = np.arange(1, steps + 1)
            loss_ax.semilogy(
                steps_axis,
                moving_average(ours["losses"]),
                color=c,
                label=f"{label} (minireg)",
                **MINIREG,
            )
            if theirs is not None:
                loss_ax.semilogy(
                    steps_axis,
                    moving_average(theirs["losses"]),
                    color="k",
                    label=f"{label} (torch)",
                    **TORCH,
                )
                gap = np.abs(ours["losses"] - theirs["losses"]).max()
                result.add_gap(gap)
                result.data[label] = gap
        loss_ax.set_title("training loss per step (moving average over 20 steps)")
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("MSE")
        loss_ax.legend(loc="upper right")
        gap = gap_clause(result, "worst |minireg − torch| over losses and fits")
        finish(
            fig,
            result,
            out_dir,
            f"MLP {'→'.join(map(str, SIZES))} (tanh, float64), batch {BATCH}, {steps} steps, "
            f"same initial weights and batches{gap}",
            f"Technique: mini-batch training of an MLP with SGD, heavy-ball momentum and Adam "
            f"(Kingma & Ba 2015); {torch_note(torch)}.",
        )
    return result
