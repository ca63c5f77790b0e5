"""Learning-rate schedules over 200 epochs, minireg and torch overlaid.

Each schedule drives ``SGD(lr=0.1, momentum=0.9)`` on one dummy parameter; every epoch
records ``group["lr"]`` (what the optimizer will use), then calls ``optimizer.step()`` and
``scheduler.step()`` in that order, on both sides.  ReduceLROnPlateau watches a synthetic,
seeded validation loss that improves and then plateaus.  The bottom panel shows the
per-epoch ``|lr_minireg − lr_torch|`` of every schedule (schedulers are Python-float
arithmetic in torch's order, so the expected gap is exactly 0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from plots._style import (
    MINIREG,
    TORCH,
    FigureResult,
    color,
    finish,
    floor_for_log,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = ["SCHEDULES", "draw", "lr_sequence", "synthetic_loss"]

TOLERANCE = 1e-12  # pure float64 Python arithmetic on both sides
BASE_LR = 0.1


def synthetic_loss(epochs: int, seed: int = 0) -> np.ndarray:
    """A validation loss that improves fast, slows, then plateaus with noise (seeded)."""
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    return 0.3 + 0.7 * np.exp(-e / 25.0) + 0.02 * rng.standard_normal(epochs)


# name -> (title, factory(lr_scheduler_module, optimizer, epochs) -> scheduler)
SCHEDULES: dict[str, tuple[str, Callable[[Any, Any, int], Any]]] = {
    "step": (
        "StepLR(step_size=30, gamma=0.5)",
        lambda m, opt, n: m.StepLR(opt, step_size=30, gamma=0.5),
    ),
    "cosine": (
        "CosineAnnealingLR(T_max=10, eta_min=1e-5)",
        lambda m, opt, n: m.CosineAnnealingLR(opt, T_max=10, eta_min=1e-5),
    ),
    "cosine_long": (
        "CosineAnnealingLR(T_max=epochs, eta_min=1e-5)",
        lambda m, opt, n: m.CosineAnnealingLR(opt, T_max=n, eta_min=1e-5),
    ),
    "restarts": (
        "CosineAnnealingWarmRestarts(T_0=20, T_mult=2, eta_min=1e-5)",
        lambda m, opt, n: m.CosineAnnealingWarmRestarts(opt, T_0=20, T_mult=2, eta_min=1e-5),
    ),
    "onecycle": (
        "OneCycleLR(max_lr=0.1, total_steps=epochs)",
        lambda m, opt, n: m.OneCycleLR(opt, max_lr=0.1, total_steps=n),
    ),
    "warmup_cosine": (
        "SequentialLR(LinearLR(0.01, 10) → Cosine(T_max=epochs−10))",
        lambda m, opt, n: m.SequentialLR(
            opt,
            [
                m.LinearLR(opt, start_factor=0.01, total_iters=10),
                m.CosineAnnealingLR(opt, T_max=n - 10, eta_min=1e-5),
            ],
            milestones=[10],
        ),
    ),
    "plateau": (
        "ReduceLROnPlateau(factor=0.5, patience=10)",
        lambda m, opt, n: m.ReduceLROnPlateau(opt, factor=0.5, patience=10),
    ),
}


def lr_sequence(name: str, epochs: int, library: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lr per epoch, momentum per epoch)`` of schedule ``name`` from ``library``."""
    loss = synthetic_loss(epochs)
    if library == "minireg":
        import minireg

        module = require("minireg.optim.lr_scheduler")
        require("minireg.optim.lr_scheduler.ReduceLROnPlateau")  # the last one torch lists
        p = minireg.Parameter(np.zeros(1))
        opt = minireg.optim.SGD([p], lr=BASE_LR, momentum=0.9)

        def set_grad() -> None:
            p.grad = np.zeros(1)
    else:
        torch: ModuleType = optional_torch()  # type: ignore[assignment]
        module = torch.optim.lr_scheduler
        q = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = torch.optim.SGD([q], lr=BASE_LR, momentum=0.9)

        def set_grad() -> None:
            q.grad = torch.zeros(1, dtype=torch.float64)

    scheduler = SCHEDULES[name][1](module, opt, epochs)
    lrs, momenta = np.empty(epochs), np.empty(epochs)
    for epoch in range(epochs):
        lrs[epoch] = opt.param_groups[0]["lr"]
        momenta[epoch] = opt.param_groups[0]["momentum"]
        set_grad()
        opt.step()
        if name == "plateau":
            scheduler.step(float(loss[epoch]))
        elif name == "onecycle" and epoch == epochs - 1:
            pass  # the total_steps-th step would extrapolate past the schedule (torch allows one)
        else:
            scheduler.step()
    return lrs, momenta


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Six schedule panels (minireg solid, torch dashed) and one |Δlr| panel."""
    result = FigureResult("lr_schedules", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        epochs = 60 if quick else 200
        fig = plt.figure(figsize=(14, 9))
        grid = fig.add_gridspec(
            3,
            3,
            height_ratios=[1, 1, 0.8],
            hspace=0.5,
            wspace=0.4,
            left=0.06,
            right=0.95,
            top=0.91,
            bottom=0.08,
        )
        panels = [
            ("step",),
            ("cosine", "cosine_long"),
            ("restarts",),
            ("onecycle",),
            ("warmup_cosine",),
            ("plateau",),
        ]
        gap_ax = fig.add_subplot(grid[2, :])
        epochs_axis = np.arange(epochs)
        for index, names in enumerate(panels):
            ax = fig.add_subplot(grid[index // 3, index % 3])
            for k, name in enumerate(names):
                title = SCHEDULES[name][0]
                ours, our_momenta = lr_sequence(name, epochs, "minireg")
                c = color(2 * index + k)
                ax.plot(
                    epochs_axis,
                    ours,
                    color=c,
                    label={
                        "cosine": "minireg, T_max=10",
                        "cosine_long": "minireg, T_max=epochs",
                    }.get(name, f"minireg {title.split('(')[0]}"),
                    **MINIREG,
                )
                if torch is not None:
                    theirs, their_momenta = lr_sequence(name, epochs, "torch")
                    ax.plot(
                        epochs_axis, theirs, color="k", label="torch" if k == 0 else None, **TORCH
                    )
                    gap = np.abs(ours - theirs)
                    result.add_gap(gap.max())
                    result.add_gap(np.abs(our_momenta - their_momenta).max())
                    gap_ax.semilogy(
                        epochs_axis,
                        floor_for_log(gap),
                        color=c,
                        lw=1.0,
                        label=f"{name} (max {gap.max():.0e})",
                    )
                if name == "onecycle":
                    _gray_twin(
                        ax, epochs_axis, our_momenta, "momentum", lw=1.0, label="momentum (minireg)"
                    )
                if name == "plateau":
                    _gray_twin(
                        ax,
                        epochs_axis,
                        synthetic_loss(epochs),
                        "val. loss",
                        lw=0.8,
                        alpha=0.7,
                        label="synthetic val. loss",
                    )
            ax.set_title(
                " / ".join(SCHEDULES[n][0] for n in names)
                if len(names) == 1
                else "CosineAnnealingLR: T_max=10 (periodic) and T_max=epochs",
                fontsize=9,
            )
            ax.set_xlabel("epoch")
            ax.set_ylabel("learning rate")
            ax.legend(loc="best")
        gap_ax.set_title(
            "|lr_minireg − lr_torch| per epoch (exact agreement drawn at 1e-18)", fontsize=9
        )
        gap_ax.set_xlabel("epoch")
        gap_ax.set_ylabel("|Δ lr|")
        gap_ax.set_ylim(1e-19, 1e-10)
        if torch is not None:
            gap_ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6.5)
            gap_ax.set_position((0.06, 0.08, 0.80, gap_ax.get_position().height))
        else:
            gap_ax.text(
                0.5,
                0.5,
                "torch not installed: nothing to compare",
                transform=gap_ax.transAxes,
                ha="center",
                va="center",
            )
        finish(
            fig,
            result,
            out_dir,
            f"Learning-rate schedules on SGD(lr={BASE_LR}, momentum=0.9), {epochs} epochs",
            "Technique: learning-rate scheduling (step decay; cosine annealing, "
            "Loshchilov & Hutter 2017; "
            f"1cycle, Smith & Topin 2019; warm-up; reduce-on-plateau); {torch_note(torch)}.",
            title_size=12,
        )
    return result


def _gray_twin(ax: Any, x: np.ndarray, y: np.ndarray, ylabel: str, **style: Any) -> None:
    """A gray curve, with its own legend, on a second y-axis at the right of ``ax``."""
    twin = ax.twinx()
    twin.plot(x, y, color="gray", **style)
    twin.set_ylabel(ylabel, color="gray")
    twin.grid(False)
    twin.legend(loc="center right")
