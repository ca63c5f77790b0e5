"""Optimizer paths on three 2-D test surfaces: minireg and torch drawn over each other.

Surfaces (all minimised over ``p = (x, y)``):

* ill-conditioned quadratic ``f = 0.1·x² + 2·y²`` (condition number 20), from (−4, 2);
* Rosenbrock ``f = (1 − x)² + 100·(y − x²)²`` (Rosenbrock, 1960), from (−2, 2);
* Rastrigin ``f = 20 + Σ (p_i² − 10·cos 2πp_i)`` (Rastrigin, 1974), from (−2, 3.5).

minireg gets the gradient from the analytic formula in NumPy; torch from autograd on the
same expression.  Both start from the same float64 point with the same hyperparameters
(the table :data:`HYPERPARAMETERS`, chosen by hand so that each path is readable: the
point is to show each method's character, not to tune it to win).  The small panel under
each contour is ``max_i |p_minireg − p_torch|`` per step on a log scale: float64 rounding
(~1e-16) that the chaotic surfaces amplify.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from plots._style import (
    FigureResult,
    MissingDependency,
    color,
    finish,
    floor_for_log,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = [
    "HYPERPARAMETERS",
    "OPTIMIZERS",
    "SURFACES",
    "draw_overlay",
    "draw_quadratic",
    "draw_rastrigin",
    "draw_rosenbrock",
    "run_path",
]

TOLERANCE = 1e-9  # float64 paths: rounding differences, amplified by Rosenbrock's valley


@dataclass(frozen=True)
class Surface:
    """A 2-D test function with its analytic gradient and a torch twin for autograd."""

    title: str
    formula: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    torch_value: Callable[[Any, Any], Any]  # (torch, p) -> 0-d tensor
    start: tuple[float, float]
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steps: int
    log_levels: bool


def _quadratic_grad(p: np.ndarray) -> np.ndarray:
    return np.array([0.2 * p[0], 4.0 * p[1]])


def _rosenbrock_grad(p: np.ndarray) -> np.ndarray:
    x, y = p
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


def _rastrigin_grad(p: np.ndarray) -> np.ndarray:
    return 2.0 * p + 20.0 * math.pi * np.sin(2.0 * math.pi * p)


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        "ill-conditioned quadratic",
        r"$f=0.1x^2+2y^2$",
        lambda x, y: 0.1 * x**2 + 2.0 * y**2,
        _quadratic_grad,
        lambda torch, p: 0.1 * p[0] ** 2 + 2.0 * p[1] ** 2,
        (-4.0, 2.0),
        (0.0, 0.0),
        (-4.6, 4.6),
        (-2.4, 2.4),
        80,
        False,
    ),
    "rosenbrock": Surface(
        "Rosenbrock",
        r"$f=(1-x)^2+100(y-x^2)^2$",
        lambda x, y: (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2,
        _rosenbrock_grad,
        lambda torch, p: (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2,
        (-2.0, 2.0),
        (1.0, 1.0),
        (-2.4, 2.0),
        (-1.0, 4.2),
        1500,
        True,
    ),
    "rastrigin": Surface(
        "Rastrigin",
        r"$f=20+\sum_i (p_i^2-10\cos 2\pi p_i)$",
        lambda x, y: (
            20.0 + x**2 - 10.0 * np.cos(2 * np.pi * x) + y**2 - 10.0 * np.cos(2 * np.pi * y)
        ),
        _rastrigin_grad,
        lambda torch, p: (
            20.0
            + p[0] ** 2
            - 10.0 * torch.cos(2 * math.pi * p[0])
            + p[1] ** 2
            - 10.0 * torch.cos(2 * math.pi * p[1])
        ),
        (-2.0, 3.5),
        (0.0, 0.0),
        (-3.0, 3.0),
        (-1.5, 4.5),
        300,
        False,
    ),
}

# (label, class name in minireg.optim / torch.optim, fixed kwargs shared by every surface)
OPTIMIZERS: list[tuple[str, str, dict[str, Any]]] = [
    ("SGD", "SGD", {}),
    ("SGD momentum", "SGD", {"momentum": 0.9}),
    ("Nesterov", "SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adagrad", "Adagrad", {}),
    ("Adadelta", "Adadelta", {}),
    ("RMSprop", "RMSprop", {}),
    ("Adam", "Adam", {}),
    ("AdamW", "AdamW", {"weight_decay": 0.1}),
    ("NAdam", "NAdam", {}),
    ("RAdam", "RAdam", {}),
]

# Learning rate of each optimizer on each surface (everything else at torch's defaults
# plus OPTIMIZERS' kwargs).  Rosenbrock's gradient is ~1600 at the start, so plain SGD
# needs a tiny step; RAdam's first five steps are un-rectified SGD-with-momentum steps,
# which is why it needs a small lr there too.  On Rosenbrock the adaptive methods are kept
# at learning rates where the path is not chaotic: at RMSprop lr=0.01 (or Adadelta lr=15)
# both libraries agree to 1e-16 for ~700 steps, then a near-zero running average in a
# denominator amplifies last-bit rounding differences to 1e-1 within 50 steps.  That is
# float64 rounding meeting an unstable iteration, not a disagreement of the algorithms.
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    "quadratic": {
        "SGD": 0.4, "SGD momentum": 0.05, "Nesterov": 0.05, "Adagrad": 1.0, "Adadelta": 5.0,
        "RMSprop": 0.05, "Adam": 0.3, "AdamW": 0.3, "NAdam": 0.3, "RAdam": 0.5,
    },
    "rosenbrock": {
        "SGD": 2e-4, "SGD momentum": 2e-4, "Nesterov": 2e-4, "Adagrad": 1.0, "Adadelta": 5.0,
        "RMSprop": 3e-3, "Adam": 0.05, "AdamW": 0.05, "NAdam": 0.05, "RAdam": 1e-3,
    },
    "rastrigin": {
        "SGD": 2e-3, "SGD momentum": 4e-3, "Nesterov": 4e-3, "Adagrad": 0.5, "Adadelta": 20.0,
        "RMSprop": 0.05, "Adam": 0.5, "AdamW": 0.5, "NAdam": 0.1, "RAdam": 0.1,
    },
}  # fmt: skip


def _kwargs(label: str, surface: str) -> tuple[str, dict[str, Any]]:
    class_name, extra = next((c, k) for name, c, k in OPTIMIZERS if name == label)
    return class_name, {"lr": HYPERPARAMETERS[surface][label], **extra}


def _steps(surface: str, quick: bool) -> int:
    steps = SURFACES[surface].steps
    return max(10, steps // 10) if quick else steps


def run_path(label: str, surface: str, steps: int, library: str) -> np.ndarray:
    """The ``(steps + 1, 2)`` float64 path of optimizer ``label`` on ``surface``.

    ``library`` is ``"minireg"`` (analytic gradient) or ``"torch"`` (autograd).
    """
    spec = SURFACES[surface]
    class_name, kwargs = _kwargs(label, surface)
    path = np.empty((steps + 1, 2))
    path[0] = spec.start
    if library == "minireg":
        import minireg

        cls = require(f"minireg.optim.{class_name}")
        p = minireg.Parameter(np.array(spec.start, dtype=np.float64))
        opt = cls([p], **kwargs)
        for t in range(1, steps + 1):
            p.grad = spec.gradient(p.data)
            opt.step()
            path[t] = p.data
        return path
    torch = optional_torch()
    assert torch is not None
    q = torch.nn.Parameter(torch.tensor(spec.start, dtype=torch.float64))
    opt = getattr(torch.optim, class_name)([q], **kwargs)
    for t in range(1, steps + 1):
        opt.zero_grad()
        spec.torch_value(torch, q).backward()
        opt.step()
        path[t] = q.detach().numpy()
    return path


@lru_cache(maxsize=8)
def _all_paths(
    surface: str, quick: bool
) -> dict[str, tuple[np.ndarray | None, np.ndarray | None, str]]:
    """label -> (minireg path or None, torch path or None, note) for every optimizer."""
    torch = optional_torch()
    steps = _steps(surface, quick)
    out: dict[str, tuple[np.ndarray | None, np.ndarray | None, str]] = {}
    for label, _, _ in OPTIMIZERS:
        note = ""
        try:
            ours = run_path(label, surface, steps, "minireg")
        except MissingDependency as exc:
            ours, note = None, str(exc).split(" (")[0]
        theirs = run_path(label, surface, steps, "torch") if torch is not None else None
        out[label] = (ours, theirs, note)
    return out


def _contour(ax: Any, surface: str, quick: bool) -> None:
    spec = SURFACES[surface]
    n = 120 if quick else 240
    xs = np.linspace(*spec.xlim, n)
    ys = np.linspace(*spec.ylim, n)
    X, Y = np.meshgrid(xs, ys)
    Z = spec.value(X, Y)
    if spec.log_levels:
        ax.contour(X, Y, np.log10(Z + 1e-3), levels=18, cmap="Greys", linewidths=0.6, alpha=0.8)
    else:
        ax.contour(X, Y, Z, levels=18, cmap="Greys", linewidths=0.6, alpha=0.8)
    ax.plot(*spec.minimum, marker="*", color="gold", markersize=11, markeredgecolor="k", zorder=5)
    ax.plot(*spec.start, marker="s", color="k", markersize=4, zorder=5)
    ax.set_xlim(*spec.xlim)
    ax.set_ylim(*spec.ylim)


def _path_gap(ours: np.ndarray | None, theirs: np.ndarray | None) -> np.ndarray | None:
    if ours is None or theirs is None:
        return None
    return np.abs(ours - theirs).max(axis=1)


def _draw_grid(surface: str, out_dir: Path, quick: bool) -> FigureResult:
    result = FigureResult(f"trajectories_{surface}", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        spec = SURFACES[surface]
        paths = _all_paths(surface, quick)
        fig = plt.figure(figsize=(15.5, 8.4))
        grid = fig.add_gridspec(
            4,
            5,
            height_ratios=[3, 1, 3, 1],
            hspace=0.55,
            wspace=0.28,
            left=0.04,
            right=0.99,
            top=0.90,
            bottom=0.07,
        )
        for index, (label, _, _) in enumerate(OPTIMIZERS):
            row, col = 2 * (index // 5), index % 5
            ax = fig.add_subplot(grid[row, col])
            gax = fig.add_subplot(grid[row + 1, col])
            _contour(ax, surface, quick)
            ours, theirs, note = paths[label]
            c = color(index)
            if ours is not None:
                ax.plot(
                    ours[:, 0],
                    ours[:, 1],
                    color=c,
                    lw=1.4,
                    marker="o",
                    ms=2.5,
                    markevery=max(1, len(ours) // 25),
                    label="minireg",
                )
            if theirs is not None:
                ax.plot(
                    theirs[:, 0],
                    theirs[:, 1],
                    color="k",
                    lw=0.8,
                    ls="--",
                    marker="x",
                    ms=4,
                    markevery=(max(1, len(theirs) // 50), max(1, len(theirs) // 25)),
                    label="torch",
                )
            if ours is None:
                ax.text(
                    0.5,
                    0.5,
                    f"n/a:\n{note}",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="crimson",
                    bbox={"fc": "white", "ec": "crimson"},
                )
            lr = HYPERPARAMETERS[surface][label]
            final = "" if ours is None else f", f={float(spec.value(*ours[-1])):.2g}"
            ax.set_title(f"{label} (lr={lr:g}{final})", fontsize=9)
            ax.set_xlabel("x", labelpad=1)
            ax.set_ylabel("y", labelpad=1)
            ax.legend(loc="lower right", fontsize=6.5)
            gap = _path_gap(ours, theirs)
            if gap is not None:
                result.add_gap(gap.max())
                gax.semilogy(floor_for_log(gap), color=c, lw=1.0, label=f"max {gap.max():.1e}")
                gax.legend(loc="upper left", fontsize=6.5)
            else:
                gax.text(
                    0.5,
                    0.5,
                    "no comparison",
                    transform=gax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=7,
                )
            gax.set_ylim(1e-19, 1e-6)
            gax.set_yticks([1e-18, 1e-14, 1e-10, 1e-6])
            gax.set_xlabel("step", labelpad=1)
            gax.set_ylabel("|Δ|", labelpad=1)
        finish(
            fig,
            result,
            out_dir,
            f"Optimizer paths on the {spec.title} {spec.formula}, {_steps(surface, quick)} "
            f"steps from {spec.start} (float64); lower panels: per-step max |minireg − torch| "
            "(0 drawn at 1e-18)",
            "Technique: first-order optimizers (SGD, heavy-ball/Nesterov momentum, Adagrad, "
            f"Adadelta, RMSprop, Adam, AdamW, NAdam, RAdam); {torch_note(torch)}; "
            "gold star = minimum, square = start.",
        )
        result.notes += [f"{label}: {note}" for label, (_, _, note) in paths.items() if note]
    return result


def draw_quadratic(out_dir: Path, quick: bool = False) -> FigureResult:
    """Every optimizer on the ill-conditioned quadratic, one panel each, with |Δ| panels."""
    return _draw_grid("quadratic", out_dir, quick)


def draw_rosenbrock(out_dir: Path, quick: bool = False) -> FigureResult:
    """Every optimizer on Rosenbrock from (−2, 2), one panel each, with |Δ| panels."""
    return _draw_grid("rosenbrock", out_dir, quick)


def draw_rastrigin(out_dir: Path, quick: bool = False) -> FigureResult:
    """Every optimizer on Rastrigin from (−2, 3.5), one panel each, with |Δ| panels."""
    return _draw_grid("rastrigin", out_dir, quick)


def draw_overlay(out_dir: Path, quick: bool = False) -> FigureResult:
    """All optimizers over each other, one panel per surface."""
    result = FigureResult("trajectories_overlay", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        fig, axes = plt.subplots(1, 3, figsize=(15.5, 5.4))
        fig.subplots_adjust(left=0.04, right=0.88, top=0.80, bottom=0.15, wspace=0.22)
        for ax, surface in zip(axes, SURFACES, strict=True):
            spec = SURFACES[surface]
            _contour(ax, surface, quick)
            for index, (label, (ours, theirs, _)) in enumerate(_all_paths(surface, quick).items()):
                c = color(index)
                if ours is not None:
                    ax.plot(ours[:, 0], ours[:, 1], color=c, lw=1.5, label=label)
                if theirs is not None:
                    ax.plot(
                        theirs[:, 0],
                        theirs[:, 1],
                        color=c,
                        lw=0,
                        marker="x",
                        ms=4,
                        markevery=max(1, len(theirs) // 15),
                    )
                gap = _path_gap(ours, theirs)
                if gap is not None:
                    result.add_gap(gap.max())
            ax.set_title(
                f"{spec.title}: {spec.formula}\n{_steps(surface, quick)} steps from {spec.start}"
            )
            ax.set_xlabel("x")
            ax.set_ylabel("y")
        handles, labels = axes[0].get_legend_handles_labels()
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="k", lw=1.5), Line2D([], [], color="k", lw=0, marker="x")]
        labels += ["minireg path (line)", "torch path (x marks)"]
        axes[-1].legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0
        )
        worst = "n/a" if result.gap is None else f"{result.gap:.1e}"
        finish(
            fig,
            result,
            out_dir,
            "All optimizers on three surfaces (float64); worst |minireg − torch| over all paths: "
            f"{worst}",
            "Technique: first-order optimizers compared on ill-conditioned, curved-valley and "
            f"multimodal surfaces; {torch_note(torch, 'lines', 'x marks')}; "
            "learning rates in plots/trajectories.py.",
        )
    return result
