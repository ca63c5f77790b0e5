"""Softer targets against overconfidence: plain cross-entropy, label smoothing and mixup.

Data: 150 training points of the three spirals with 10 % of the labels replaced at
random, and 2000 validation points drawn the same way (so no classifier can be right on
more than about 93 % of them).  Model: ``2 → 64 → 64 → 3`` with ReLU (float64),
``Adam(lr=5e-3)``, batches of 32, the same torch default init for every run.  Targets:

* plain ``CrossEntropyLoss()``: one-hot targets, which a net that can memorise the noisy
  labels fits by pushing its logits apart without end;
* ``CrossEntropyLoss(label_smoothing=0.1)`` (Szegedy et al., 2016): the target puts
  ``1 − 0.1 + 0.1/3`` on the label and ``0.1/3`` on the others, so the optimal logits stay finite;
* mixup (Zhang et al., 2018; ``minireg.regularization.mixup(x, y, alpha=0.4,
  num_classes=3)``): each batch is mixed with a shuffled copy of itself, inputs and
  one-hot targets alike, and trained on those soft targets.

Validation: the negative log-likelihood of the true (noisy) label, the distribution of
the confidence ``max_k p_k``, and a reliability diagram (accuracy against confidence in
ten bins; on the diagonal a model is *calibrated*) with the expected calibration error
``ECE = Σ_b (n_b / n) |acc_b − conf_b|`` (Guo et al., 2017).  torch trains a twin from
the same weights on the same (mixed) batches, independently.
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
    require,
    timed,
    torch_note,
)

__all__ = ["METHODS", "calibration", "draw", "train"]

TOLERANCE = 1e-9  # float64 independent runs of up to 600 Adam steps
SIZES = (2, 64, 64, 3)
LR, BATCH, N_TRAIN, LABEL_NOISE, ALPHA = 5e-3, 32, 150, 0.1, 0.4
METHODS: dict[str, dict[str, Any]] = {
    "plain cross-entropy": {},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    f"mixup (α={ALPHA})": {},
}
BINS = np.linspace(0.0, 1.0, 11)
MIN_BIN = 20  # the reliability diagram skips bins with fewer validation points
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 4, "ls": "none"}


def calibration(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """NLL, accuracy, confidences, per-bin accuracy and confidence, and the ECE."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    confidence = np.exp(log_p.max(axis=1))
    correct = log_p.argmax(axis=1) == labels
    which = np.clip(np.digitize(confidence, BINS) - 1, 0, len(BINS) - 2)
    counts = np.bincount(which, minlength=len(BINS) - 1)
    filled = np.maximum(counts, 1)
    shown = counts >= MIN_BIN  # a bin of a few points says nothing
    bin_acc = np.bincount(which, weights=correct, minlength=len(BINS) - 1) / filled
    bin_conf = np.bincount(which, weights=confidence, minlength=len(BINS) - 1) / filled
    return {
        "nll": float(-np.mean(log_p[np.arange(len(labels)), labels])),
        "accuracy": float(np.mean(correct)),
        "confidence": confidence,
        "bin_acc": np.where(shown, bin_acc, np.nan),
        "bin_conf": np.where(shown, bin_conf, np.nan),
        "ece": float(np.sum(counts / len(labels) * np.abs(bin_acc - bin_conf))),
    }


def train(method: str, steps: int, every: int, torch: Any) -> dict[str, Any]:
    """Train with ``method``'s targets; validation NLL per ``every`` steps, final calibration."""
    mixup = require("minireg.regularization.mixup")
    x, y = spirals(N_TRAIN, seed=0, label_noise=LABEL_NOISE)
    xv, yv = spirals(2000, seed=1, label_noise=LABEL_NOISE)
    pair = Twins.mlp(
        SIZES, "ReLU", torch, ("Adam", {"lr": LR}), ("CrossEntropyLoss", METHODS[method])
    )
    generator = np.random.default_rng(5)
    curve: list[tuple[int, float, float]] = []

    def validate(t: int) -> None:
        ours, theirs = pair.outputs(xv)
        their_nll = np.nan if theirs is None else calibration(theirs, yv)["nll"]
        curve.append((t, calibration(ours, yv)["nll"], their_nll))

    for t, idx in enumerate(batches(N_TRAIN, BATCH, steps, seed=3)):
        if t % every == 0:
            validate(t)
        xb, yb = x[idx], y[idx]
        if method.startswith("mixup"):  # soft targets: mixed one-hot rows
            xb, yb = mixup(xb, yb, ALPHA, generator=generator, num_classes=3)
        pair.step(xb, yb)
    validate(steps)
    pair.compare_weights()
    ours, theirs = pair.outputs(xv)
    return {
        "curve": np.array(curve),
        "ours": calibration(ours, yv),
        "theirs": None if theirs is None else calibration(theirs, yv),
        "gap": pair.gap,
    }


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Reliability diagram, confidence histogram and validation NLL per target scheme."""
    result = FigureResult("label_smoothing_mixup", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps, every = (60, 20) if quick else (600, 25)
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.83, bottom=0.15, wspace=0.24)
        reliability_ax, hist_ax, nll_ax = axes
        reliability_ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="calibrated")
        for index, method in enumerate(METHODS):
            c = color(index)
            run = train(method, steps, every, torch)
            if run["gap"] is not None:
                result.add_gap(run["gap"])
            ours, theirs = run["ours"], run["theirs"]
            over = ours["confidence"].mean() - ours["accuracy"]
            reliability_ax.plot(
                ours["bin_conf"], ours["bin_acc"], color=c, marker="o", ms=4,
                label=f"{method}: ECE {ours['ece']:.3f}, conf − acc {over:+.3f}", **MINIREG,
            )  # fmt: skip
            hist_ax.hist(
                ours["confidence"], bins=np.linspace(1 / 3, 1, 41), histtype="step", lw=1.6,
                color=c, label=f"{method}: mean {ours['confidence'].mean():.3f}, "
                f"accuracy {ours['accuracy']:.3f}",
            )  # fmt: skip
            curve = run["curve"]
            nll_ax.plot(
                curve[:, 0], curve[:, 1], color=c, label=f"{method}: {ours['nll']:.3f}", **MINIREG
            )
            if theirs is not None:
                reliability_ax.plot(theirs["bin_conf"], theirs["bin_acc"], **TORCH_MARKS)
                nll_ax.plot(curve[:, 0], curve[:, 2], **TORCH_MARKS)
                result.add_gap(abs(ours["ece"] - theirs["ece"]))
            result.data[method] = {
                "validation NLL": ours["nll"],
                "accuracy": ours["accuracy"],
                "mean confidence": float(ours["confidence"].mean()),
                "ECE": ours["ece"],
            }
        reliability_ax.set_title(
            f"reliability diagram (validation): accuracy per confidence bin\n"
            f"(below the diagonal: overconfident; bins of ≥ {MIN_BIN} points)",
            fontsize=9,
        )
        reliability_ax.set_xlabel("mean confidence in the bin (max softmax probability)")
        reliability_ax.set_ylabel("accuracy in the bin")
        reliability_ax.set_xlim(0.4, 1.01)
        reliability_ax.set_ylim(0.4, 1.01)
        from matplotlib.lines import Line2D

        handles, labels = reliability_ax.get_legend_handles_labels()
        if torch is not None:
            handles.append(Line2D([], [], **TORCH_MARKS))
            labels.append("torch twin (same weights and batches)")
        reliability_ax.legend(handles, labels, loc="lower right", fontsize=7)
        hist_ax.set_title("confidence on the 2000 validation points", fontsize=9)
        hist_ax.set_xlabel("max softmax probability")
        hist_ax.set_ylabel("count")
        hist_ax.set_yscale("log")
        hist_ax.legend(loc="upper left", fontsize=7.5)
        nll_ax.set_title(
            "validation negative log-likelihood (plain, of the true label)", fontsize=9
        )
        nll_ax.set_xlabel("step")
        nll_ax.set_ylabel("NLL")
        nll_ax.legend(loc="upper left", fontsize=7.5, title="final NLL", title_fontsize=7.5)
        gap = gap_clause(result, "worst |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Label smoothing and mixup: MLP {'→'.join(map(str, SIZES))} (ReLU, float64), "
            f"{N_TRAIN} spiral points ({LABEL_NOISE:.0%} noisy labels), Adam(lr={LR}), "
            f"{steps} steps{gap}",
            "Technique: label smoothing (Szegedy et al. 2016), mixup (Zhang et al. 2018); notice "
            "plain cross-entropy's confidence above its accuracy and its validation NLL climbing; "
            f"{clause}.",
        )
    return result
