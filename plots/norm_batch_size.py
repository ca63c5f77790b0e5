"""BatchNorm's dependence on the mini-batch, against LayerNorm, GroupNorm and no norm.

Model: ``2 → 32 → 32 → 3`` with ReLU, a normalisation layer between each hidden
``Linear`` and its ReLU (``BatchNorm1d(32)``, ``LayerNorm(32)``, ``GroupNorm(4, 32)``, or
none), cross-entropy, ``Adam(lr=1e-2)``, float64.  The same task at every batch size:
the three spirals (600 training, 300 validation points), the same number of steps at
batch sizes 2, 4, 16 and 64, from torch's default init (``torch.manual_seed(0)``).

BatchNorm normalises each feature over the batch: over two samples the normalised values
are ±1 whatever the inputs, so the net only sees which of the two is larger, and the
running statistics it uses in ``eval()`` mode are averages of very noisy batch
statistics.  LayerNorm and GroupNorm normalise each sample over its own features, so
they behave the same at every batch size, in training and in evaluation.  The losses
are measured in eval mode on the whole training and validation sets; the right panel
compares a trained BatchNorm net's outputs on validation batches of its own batch size
in train mode (batch statistics) and eval mode (running statistics).

As usual, the ``Linear`` before a ``BatchNorm1d`` has no bias: the batch mean subtraction
cancels it, its exact gradient is 0, and what both libraries compute instead is rounding
noise (~1e-15), which Adam divides by its own tiny √v into steps of 1e-9 to 1e-7 that
differ between minireg and torch.  BatchNorm training at batch 2 is chaotic, so the
BatchNorm twins run in lockstep (the gap is that of one step); the others train
independently from the same weights on the same batches.
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
    timed,
    torch_note,
)

__all__ = ["BATCH_SIZES", "NORMS", "draw", "train"]

TOLERANCE = 1e-9  # float64: independent runs of 300 Adam steps; BatchNorm: lockstep
SIZES = (2, 32, 32, 3)
LR = 1e-2
BATCH_SIZES = (2, 4, 16, 64)
NORMS: dict[str, str | None] = {
    "no norm": None,
    "BatchNorm1d": "BatchNorm1d",
    "LayerNorm": "LayerNorm",
    "GroupNorm(4 groups)": "GroupNorm",
}
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 5, "ls": "none"}


def train(norm: str | None, batch: int, steps: int, torch: Any) -> dict[str, Any]:
    """Train at batch size ``batch``; final eval-mode losses, and BN's train/eval gap."""
    x, y = spirals(600, seed=0)
    xv, yv = spirals(300, seed=1)
    batchnorm = norm == "BatchNorm1d"
    pair = Twins.mlp(
        SIZES, "ReLU", torch, ("Adam", {"lr": LR}), ("CrossEntropyLoss", {}), norm=norm,
        hidden_bias=not batchnorm, lockstep=batchnorm,
    )  # fmt: skip
    losses = np.array([pair.step(x[idx], y[idx]) for idx in batches(len(x), batch, steps, seed=3)])
    pair.compare_weights()
    train_loss, val_loss = pair.loss(x, y), pair.loss(xv, yv)
    mode_gaps = {}
    if batchnorm and batch == max(BATCH_SIZES):
        mode_gaps = train_eval_disagreement(pair, xv)
    return {
        "losses": losses,
        "train": train_loss,
        "val": val_loss,
        "mode_gaps": mode_gaps,
        "gap": pair.gap,
    }


def train_eval_disagreement(pair: Twins, xv: np.ndarray) -> dict[int, tuple[float, ...]]:
    """Per batch size b: how a BatchNorm net's train-mode outputs on batches of b differ
    from its eval-mode outputs, as ``(% of points classified differently, mean |Δ logit| /
    mean |logit|, the same percentage for torch)``.

    Train-mode forwards move the running statistics, so the eval-mode outputs come first.
    """
    eval_ours, eval_theirs = pair.outputs(xv)
    out: dict[int, tuple[float, ...]] = {}
    for b in BATCH_SIZES:
        chunks = [pair.outputs(xv[i : i + b], train=True) for i in range(0, len(xv) - b + 1, b)]
        ours = np.concatenate([c[0] for c in chunks])
        m = len(ours)
        differ = 100 * np.mean(ours.argmax(1) != eval_ours[:m].argmax(1))
        relative = np.mean(np.abs(ours - eval_ours[:m])) / np.mean(np.abs(eval_ours[:m]))
        row = (float(differ), float(relative))
        if eval_theirs is not None:
            theirs = np.concatenate([c[1] for c in chunks])
            row += (float(100 * np.mean(theirs.argmax(1) != eval_theirs[:m].argmax(1))),)
        out[b] = row
    return out


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Final train/validation loss per batch size and norm; BN's train-vs-eval gap."""
    result = FigureResult("norm_batch_size", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 25 if quick else 250
        fig, axes = plt.subplots(1, 4, figsize=(17, 5.4))
        fig.subplots_adjust(left=0.045, right=0.985, top=0.83, bottom=0.15, wspace=0.27)
        train_ax, val_ax, mode_ax, curve_ax = axes
        for index, (label, norm) in enumerate(NORMS.items()):
            c = color(index)
            runs = [train(norm, batch, steps, torch) for batch in BATCH_SIZES]
            for run in runs:
                if run["gap"] is not None:
                    result.add_gap(run["gap"])
            for ax, key in ((train_ax, "train"), (val_ax, "val")):
                ax.semilogx(
                    BATCH_SIZES, [run[key][0] for run in runs], color=c, marker="o", label=label,
                    **MINIREG,
                )  # fmt: skip
                if torch is not None:
                    ax.semilogx(BATCH_SIZES, [run[key][1] for run in runs], **TORCH_MARKS)
            if norm == "BatchNorm1d":
                gaps = runs[-1]["mode_gaps"]
                mode_ax.semilogx(
                    BATCH_SIZES, [gaps[b][0] for b in BATCH_SIZES], color=c, marker="o",
                    label="BatchNorm1d (trained at batch 64)", **MINIREG,
                )  # fmt: skip
                if torch is not None:
                    mode_ax.semilogx(BATCH_SIZES, [gaps[b][2] for b in BATCH_SIZES], **TORCH_MARKS)
                for b in BATCH_SIZES:
                    mode_ax.annotate(
                        f"relative |Δ logit|\n{100 * gaps[b][1]:.0f}%", (b, gaps[b][0]),
                        textcoords="offset points", xytext=(6, 6), fontsize=7, va="bottom",
                    )  # fmt: skip
                result.data["BN train vs eval mode"] = {
                    f"batch {b}": {
                        "% classified differently": gaps[b][0],
                        "relative |Δ logit|": gaps[b][1],
                    }
                    for b in BATCH_SIZES
                }
            smallest = runs[0]["losses"]
            curve_ax.semilogy(
                np.arange(1, steps + 1), moving_average(smallest, 20), color=c, label=label,
                **MINIREG,
            )  # fmt: skip
            result.data[label] = {
                f"batch {b}": {"train": run["train"][0], "val": run["val"][0]}
                for b, run in zip(BATCH_SIZES, runs, strict=True)
            }
        mode_ax.axhline(
            0.0,
            color=color(2),
            lw=1.4,
            ls="--",
            label="LayerNorm, GroupNorm: 0 (no batch statistics)",
        )
        for ax, what in (
            (train_ax, f"training loss after {steps} steps\n(eval mode, all 600 training points)"),
            (val_ax, f"validation loss after {steps} steps\n(eval mode, 300 points)"),
            (mode_ax, "the same trained net in train mode (batch statistics over\n"
                      "validation batches of this size) vs eval mode (running statistics)"),
        ):  # fmt: skip
            ax.set_title(what, fontsize=9)
            ax.set_xlabel("batch size")
            ax.set_xticks(BATCH_SIZES, [str(b) for b in BATCH_SIZES])
            ax.minorticks_off()
        train_ax.set_ylabel("cross-entropy")
        val_ax.set_ylabel("cross-entropy")
        mode_ax.set_ylabel("% of validation points classified differently")
        mode_ax.set_xlabel("batch size at evaluation")
        mode_ax.set_ylim(-2, 65)
        mode_ax.set_xlim(1.6, 110)
        curve_ax.set_title("training loss at batch size 2\n(moving average, 20 steps)", fontsize=9)
        curve_ax.set_xlabel("step")
        curve_ax.set_ylabel("cross-entropy")
        from matplotlib.lines import Line2D

        handles, labels = train_ax.get_legend_handles_labels()
        if torch is not None:
            handles.append(Line2D([], [], **TORCH_MARKS))
            labels.append("torch twin (same weights and batches)")
        for ax in (train_ax, val_ax):
            ax.legend(handles, labels, loc="upper right", fontsize=7.5)
        mode_ax.legend(loc="upper right", fontsize=7.5)
        curve_ax.legend(loc="lower left", fontsize=7.5)
        gap = gap_clause(result, "worst one-step |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Normalisation vs batch size: MLP {'→'.join(map(str, SIZES))} (ReLU, float64) on "
            f"spirals, Adam(lr={LR}), {steps} steps at each batch size{gap}",
            "Technique: BatchNorm (Ioffe & Szegedy 2015) vs LayerNorm (Ba et al. 2016) vs "
            "GroupNorm (Wu & He 2018); notice BatchNorm failing at batch 2 and 4, where its train "
            f"and eval outputs disagree, while LayerNorm and GroupNorm do not care; {clause}.",
        )
    return result
