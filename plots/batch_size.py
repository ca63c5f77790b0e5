"""Small against large mini-batches at an equal number of epochs: generalisation and flatness.

Data: 160 training points of the three spirals with 10 % of the labels replaced at
random (so there is noise to overfit), 1000 validation points drawn the same way.
Model: ``2 → 64 → 64 → 3`` with ReLU (float64), cross-entropy, ``SGD(lr=0.2)``, the same
torch default init for every run; batches of 8, 32 and 160 (the full set), for the same
number of epochs, so the small batch takes 20 times as many steps as the full batch.

Flatness.  Keskar et al. (2017) report that large batches converge to sharp minimisers
and small ones to flat minimisers that generalise better.  The right panel draws the
training loss along random directions through each solution, ``L(θ + α d)``, where ``d``
is Gaussian with each row of each weight matrix scaled to the norm of the same row of
``θ`` ("filter normalisation", Li et al. 2018, which makes the picture independent of
the weights' scale; biases are not moved).  A sharp minimum rises quickly with ``|α|``.
The numbers are what this small problem gives; the legend states the rise at ``α = ±0.5``
averaged over the directions, so the claim can be checked rather than taken.  Here it
does not hold: at equal epochs the small batch fits the noisy labels further, with the
larger train/validation gap and the faster-rising loss, while the full batch, with 20
times fewer steps, stays higher and flatter (the caption names the sharpest run).

torch trains a twin from the same weights on the same batches, independently, and is
scanned along the same directions.
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
    optional_torch,
    plt,
    timed,
    torch_note,
)

__all__ = ["BATCH_SIZES", "direction", "draw", "loss_along", "train"]

TOLERANCE = 1e-9  # float64 independent runs of up to 1200 SGD steps
SIZES = (2, 64, 64, 3)
LR, N_TRAIN, LABEL_NOISE = 0.2, 160, 0.1
BATCH_SIZES = (8, 32, 160)
ALPHAS = np.linspace(-1.0, 1.0, 21)
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 4, "ls": "none"}


def _data() -> tuple[np.ndarray, ...]:
    x, y = spirals(N_TRAIN, seed=0, label_noise=LABEL_NOISE)
    xv, yv = spirals(1000, seed=1, label_noise=LABEL_NOISE)
    return x, y, xv, yv


def direction(model: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A filter-normalised Gaussian direction: each weight row scaled to the row's norm."""
    out = {}
    for name, p in model.named_parameters():
        w = p.data
        if name.endswith("weight"):
            d = rng.standard_normal(w.shape)
            d *= np.linalg.norm(w, axis=1, keepdims=True) / np.linalg.norm(d, axis=1, keepdims=True)
        else:
            d = np.zeros_like(w)
        out[name] = d
    return out


def loss_along(
    pair: Twins, d: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """``L(θ + α d)`` on ``(x, y)`` for every α in :data:`ALPHAS`, for both twins."""
    ours0 = {k: np.array(v, copy=True) for k, v in pair.model.state_dict().items()}
    theirs0 = (
        None if pair.twin is None else {k: v.clone() for k, v in pair.twin.state_dict().items()}
    )
    ours, theirs = [], []
    for alpha in ALPHAS:
        pair.model.load_state_dict({k: v + alpha * d[k] for k, v in ours0.items()})
        if theirs0 is not None:
            import torch

            pair.twin.load_state_dict(
                {k: v + alpha * torch.from_numpy(d[k]) for k, v in theirs0.items()}
            )
        a, b = pair.loss(x, y)
        ours.append(a)
        theirs.append(b)
    pair.model.load_state_dict(ours0)
    if theirs0 is not None:
        pair.twin.load_state_dict(theirs0)
    return np.array(ours), None if theirs0 is None else np.array(theirs)


def train(batch: int, epochs: int, every: int, directions: int, torch: Any) -> dict[str, Any]:
    """Train at ``batch`` for ``epochs``; loss curves per ``every`` epochs, direction scans."""
    x, y, xv, yv = _data()
    pair = Twins.mlp(SIZES, "ReLU", torch, ("SGD", {"lr": LR}), ("CrossEntropyLoss", {}))
    per_epoch = N_TRAIN // batch
    curves: dict[str, list[Any]] = {"epoch": [], "train": [], "val": []}
    for t, idx in enumerate(batches(N_TRAIN, batch, epochs * per_epoch, seed=3)):
        if t % (every * per_epoch) == 0:
            curves["epoch"].append(t // per_epoch)
            curves["train"].append(pair.loss(x, y))
            curves["val"].append(pair.loss(xv, yv))
        pair.step(x[idx], y[idx])
    curves["epoch"].append(epochs)
    curves["train"].append(pair.loss(x, y))
    curves["val"].append(pair.loss(xv, yv))
    pair.compare_weights()
    rng = np.random.default_rng(7)
    scans = [loss_along(pair, direction(pair.model, rng), x, y) for _ in range(directions)]
    return {
        "epoch": np.array(curves["epoch"]),
        "train": np.array(curves["train"], dtype=float),
        "val": np.array(curves["val"], dtype=float),
        "scans": scans,
        "steps": epochs * per_epoch,
        "gap": pair.gap,
    }


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Loss curves, train/validation gap and loss along random directions per batch size."""
    result = FigureResult("batch_size", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        epochs, every, directions = (8, 4, 1) if quick else (60, 4, 4)
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.83, bottom=0.15, wspace=0.24)
        curve_ax, gap_ax, flat_ax = axes
        half = np.argmin(np.abs(ALPHAS - 0.5)), np.argmin(np.abs(ALPHAS + 0.5))
        for index, batch in enumerate(BATCH_SIZES):
            c = color(index)
            run = train(batch, epochs, every, directions, torch)
            if run["gap"] is not None:
                result.add_gap(run["gap"])
            name = (
                f"batch {batch}"
                + (" (full)" if batch == N_TRAIN else "")
                + f", {run['steps']} steps"
            )
            curve_ax.plot(
                run["epoch"], run["val"][:, 0], color=c, label=f"{name}: validation", **MINIREG
            )
            curve_ax.plot(
                run["epoch"], run["train"][:, 0], color=c, lw=1.2, ls=":", label=f"{name}: training"
            )
            gap_ax.plot(
                run["epoch"], run["val"][:, 0] - run["train"][:, 0], color=c, label=name, **MINIREG
            )
            if torch is not None:
                curve_ax.plot(run["epoch"], run["val"][:, 1], **TORCH_MARKS)
                gap_ax.plot(run["epoch"], run["val"][:, 1] - run["train"][:, 1], **TORCH_MARKS)
            rises = []
            for k, (ours, theirs) in enumerate(run["scans"]):
                rises.append(np.mean(ours[list(half)]) - ours[len(ALPHAS) // 2])
                flat_ax.plot(ALPHAS, ours, color=c, lw=0.9, alpha=0.45)
                if theirs is not None and k == 0:
                    flat_ax.plot(ALPHAS, theirs, **TORCH_MARKS)
            mean_scan = np.mean([s[0] for s in run["scans"]], axis=0)
            flat_ax.plot(
                ALPHAS, mean_scan, color=c, lw=2.2,
                label=f"batch {batch}: rise at α=±0.5 {np.mean(rises):.2f}",
            )  # fmt: skip
            result.data[f"batch {batch}"] = {
                "steps": run["steps"],
                "final train": float(run["train"][-1, 0]),
                "final val": float(run["val"][-1, 0]),
                "rise at ±0.5": float(np.mean(rises)),
            }
        curve_ax.set_title("training (dotted) and validation (solid) loss, eval mode", fontsize=9)
        curve_ax.set_xlabel("epoch")
        curve_ax.set_ylabel("cross-entropy")
        curve_ax.legend(loc="upper right", fontsize=7)
        gap_ax.set_title("generalisation gap: validation − training loss", fontsize=9)
        gap_ax.set_xlabel("epoch")
        gap_ax.set_ylabel("Δ cross-entropy")
        gap_ax.axhline(0, color="0.5", lw=0.8)
        from matplotlib.lines import Line2D

        handles, labels = gap_ax.get_legend_handles_labels()
        if torch is not None:
            handles.append(Line2D([], [], **TORCH_MARKS))
            labels.append("torch twin (same weights and batches)")
        gap_ax.legend(handles, labels, loc="lower right", fontsize=7.5)
        flat_ax.set_title(
            f"training loss along {directions} random filter-normalised directions\n"
            "through each final solution (thin), and their mean (thick)",
            fontsize=9,
        )
        flat_ax.set_xlabel("α  (θ + α·d)")
        flat_ax.set_ylabel("cross-entropy (training set)")
        flat_ax.legend(loc="upper center", fontsize=7.5)
        rises = {b: result.data[f"batch {b}"]["rise at ±0.5"] for b in BATCH_SIZES}
        sharpest = max(rises, key=rises.__getitem__)
        steps_ratio = BATCH_SIZES[-1] // BATCH_SIZES[0]
        gap = gap_clause(result, "worst |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Batch size at equal epochs: MLP {'→'.join(map(str, SIZES))} (ReLU, float64), "
            f"{N_TRAIN} spiral points ({LABEL_NOISE:.0%} noisy labels), SGD(lr={LR}), {epochs} "
            f"epochs{gap}",
            "Technique: mini-batch size (Keskar et al. 2017: large batch → sharp minimum); notice "
            f"each batch's train/validation gap, and that here batch {sharpest} is the sharpest "
            f"(the full batch takes {steps_ratio}× fewer steps); {clause}.",
        )
    return result
