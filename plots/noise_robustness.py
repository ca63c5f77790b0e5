"""Input noise and data augmentation on a small data set, against plain training.

Data: 16 training points of two noisy concentric rings (radius 1: class 0, radius 2:
class 1, radial noise 0.3), 2000 test points drawn the same way.  Model: ``2 → 64 → 64
→ 2`` with ReLU (float64), cross-entropy, full-batch ``Adam(lr=1e-2)``, torch's default
init (seed 0) for every run.  Each step trains on a fresh copy of the 16 points:

* unchanged (plain training, which fits the 16 points with whatever boundary is handy);
* with Gaussian input noise, ``minireg.regularization.gaussian_noise(x, σ)`` for σ =
  0.1, 0.2, 0.4 (Bishop, 1995: for small σ, training with input noise amounts to a
  smoothness (Tikhonov) penalty of order σ²);
* augmented: every point rotated about the origin by its own uniformly drawn angle, a
  transformation that keeps the label for this task (the simplest kind of augmentation:
  new training inputs from a symmetry of the problem).

Robustness: test accuracy when the *test* inputs are corrupted by Gaussian noise of
growing σ.  The noise and the rotations are drawn in NumPy and given to both libraries,
so torch trains its twin from the same weights on the same perturbed batches.  Full-batch
Adam on 16 points is chaotic enough that independent twins drift to 1e-7 by the end, so
the twins run in lockstep (:class:`plots._models.Lockstep`): the gap is that of one step,
and of the final test outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._data import rings
from plots._models import Twins
from plots._style import (
    MINIREG,
    FigureResult,
    color,
    finish,
    gap_clause,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = ["METHODS", "draw", "rotate", "train"]

TOLERANCE = 1e-10  # float64, lockstep: one Adam step at a time
SIZES = (2, 64, 64, 2)
LR, N_TRAIN, RING_NOISE = 1e-2, 16, 0.3
METHODS: dict[str, tuple[str, float]] = {
    "no noise, no augmentation": ("none", 0.0),
    "input noise σ=0.1": ("noise", 0.1),
    "input noise σ=0.2": ("noise", 0.2),
    "input noise σ=0.4": ("noise", 0.4),
    "augmentation: random rotation": ("rotate", 0.0),
}
BOUNDARIES = ("no noise, no augmentation", "input noise σ=0.2", "augmentation: random rotation")
TEST_NOISE = np.linspace(0.0, 0.8, 9)
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 4, "ls": "none"}


def rotate(x: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Each point rotated about the origin by its own angle drawn from U(0, 2π)."""
    angle = generator.uniform(0.0, 2 * np.pi, len(x))
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * x[:, 0] - s * x[:, 1], s * x[:, 0] + c * x[:, 1]], axis=1)


def _accuracy(logits: np.ndarray | None, labels: np.ndarray) -> float:
    return np.nan if logits is None else float(np.mean(logits.argmax(axis=1) == labels))


def train(method: str, steps: int, every: int, torch: Any) -> dict[str, Any]:
    """Train with ``method``; test loss per ``every`` steps, robustness, class probabilities."""
    gaussian_noise = require("minireg.regularization.gaussian_noise")
    kind, sigma = METHODS[method]
    x, y = rings(N_TRAIN, seed=0, noise=RING_NOISE)
    xt, yt = rings(2000, seed=1, noise=RING_NOISE)
    pair = Twins.mlp(
        SIZES, "ReLU", torch, ("Adam", {"lr": LR}), ("CrossEntropyLoss", {}), lockstep=True
    )
    generator = np.random.default_rng(3)
    curve = []
    for t in range(steps):
        if t % every == 0:
            curve.append((t, *pair.loss(xt, yt)))
        xb = x
        if kind == "noise":
            xb = gaussian_noise(x, sigma, generator=generator)
        elif kind == "rotate":
            xb = rotate(x, generator)
        pair.step(xb, y)
    curve.append((steps, *pair.loss(xt, yt)))
    pair.compare_weights()
    robust = []
    for k, sigma_test in enumerate(TEST_NOISE):
        noisy = gaussian_noise(xt, float(sigma_test), generator=np.random.default_rng(100 + k))
        ours, theirs = pair.outputs(noisy)
        robust.append((_accuracy(ours, yt), _accuracy(theirs, yt)))
    xs, ys = np.linspace(-3.2, 3.2, 121), np.linspace(-3.2, 4.9, 151)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    logits = pair.outputs(grid)[0]
    return {
        "curve": np.array(curve, dtype=float),
        "robust": np.array(robust),
        "margin": (logits[:, 1] - logits[:, 0]).reshape(len(ys), len(xs)),
        "axes": (xs, ys),
        "x": x,
        "y": y,
        "gap": pair.gap,
    }


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Decision boundaries, test loss over training, and accuracy under test-time noise."""
    result = FigureResult("noise_robustness", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps, every = (40, 10) if quick else (300, 10)
        methods = [m for m in METHODS if quick is False or "0.1" not in m and "0.4" not in m]
        fig, (region_ax, loss_ax, robust_ax) = plt.subplots(1, 3, figsize=(16, 5.6))
        fig.subplots_adjust(left=0.04, right=0.98, top=0.84, bottom=0.14, wspace=0.22)
        boundary_handles = []
        from matplotlib.lines import Line2D

        for index, method in enumerate(methods):
            c = color(index)
            run = train(method, steps, every, torch)
            if run["gap"] is not None:
                result.add_gap(run["gap"])
            curve, robust = run["curve"], run["robust"]
            final = curve[-1, 1]
            loss_ax.semilogy(
                curve[:, 0], curve[:, 1], color=c, label=f"{method}: {final:.3f}", **MINIREG
            )
            robust_ax.plot(
                TEST_NOISE, robust[:, 0], color=c, marker="o", ms=3,
                label=f"{method}: {robust[0, 0]:.3f} → {robust[-1, 0]:.3f}", **MINIREG,
            )  # fmt: skip
            if torch is not None:
                loss_ax.semilogy(curve[::3, 0], curve[::3, 2], **TORCH_MARKS)
                robust_ax.plot(TEST_NOISE, robust[:, 1], **TORCH_MARKS)
            if method in BOUNDARIES:
                region_ax.contour(
                    *run["axes"],
                    run["margin"],
                    levels=[0.0],
                    colors=[c],
                    linewidths=1.8,
                )
                boundary_handles.append(Line2D([], [], color=c, lw=1.8, label=method))
            result.data[method] = {
                "test loss": float(final),
                "test accuracy": float(robust[0, 0]),
                f"accuracy at test noise σ={TEST_NOISE[-1]:.1f}": float(robust[-1, 0]),
            }
        x, y = run["x"], run["y"]
        circle = np.linspace(0, 2 * np.pi, 200)
        region_ax.plot(1.5 * np.cos(circle), 1.5 * np.sin(circle), color="0.5", ls=":", lw=1.2)
        boundary_handles.append(
            Line2D([], [], color="0.5", ls=":", label="ideal boundary, radius 1.5")
        )
        for k, (mark, name) in enumerate(
            (("o", "class 0 (radius 1)"), ("s", "class 1 (radius 2)"))
        ):
            region_ax.scatter(
                *x[y == k].T,
                marker=mark,
                s=28,
                color="k" if k else "w",
                edgecolor="k",
                zorder=3,
                label=name,
            )
            boundary_handles.append(
                Line2D(
                    [],
                    [],
                    marker=mark,
                    ls="none",
                    color="k" if k else "w",
                    markeredgecolor="k",
                    label=name,
                )
            )
        region_ax.set_aspect("equal")
        region_ax.set_xlim(-3.2, 3.2)
        region_ax.set_ylim(-3.2, 4.9)  # room for the legend above the data
        region_ax.set_title(
            f"decision boundaries learnt from {N_TRAIN} points (minireg)", fontsize=9
        )
        region_ax.set_xlabel("x₁")
        region_ax.set_ylabel("x₂")
        region_ax.legend(
            handles=boundary_handles, loc="upper center", ncol=2, fontsize=6.8, framealpha=0.9
        )
        loss_ax.set_title("test cross-entropy (2000 points) during training", fontsize=9)
        loss_ax.set_xlabel("step (full batch)")
        loss_ax.set_ylabel("cross-entropy")
        loss_ax.legend(loc="upper left", fontsize=7, title="final test loss", title_fontsize=7)
        robust_ax.set_title(
            "robustness: test accuracy when the test inputs get noise σ", fontsize=9
        )
        robust_ax.set_xlabel("σ of the Gaussian noise added to the test inputs")
        robust_ax.set_ylabel("test accuracy")
        handles, labels = robust_ax.get_legend_handles_labels()
        if torch is not None:
            handles.append(Line2D([], [], **TORCH_MARKS))
            labels.append("torch twins (same weights and perturbed batches)")
        robust_ax.legend(handles, labels, loc="lower left", fontsize=7)
        gap = gap_clause(result, "worst |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Noise and augmentation on {N_TRAIN} points: MLP {'→'.join(map(str, SIZES))} "
            f"(ReLU, float64), full-batch Adam(lr={LR}), {steps} steps{gap}",
            "Technique: input-noise injection (Bishop 1995) and data augmentation by a "
            "label-preserving symmetry; notice the rounder boundaries and lower test loss, and "
            f"which model keeps its accuracy under test-time noise; {clause}.",
        )
    return result
