"""k-fold cross-validation choosing a weight-decay strength, checked against held-out data.

Data: 30 noisy points of ``sin(2x) + 0.3x`` (noise σ = 0.3; the same function as
:mod:`plots.mlp_regression`) and 1000 test points drawn the same way, never used for
the choice.  Model: ``1 → 32 → 32 → 1`` with tanh (float64), MSE,
``Adam(lr=0.02, weight_decay=λ)`` (the L2 penalty ``λ/2·‖θ‖²`` added to the gradient, as
torch's ``weight_decay``), 150 full-batch steps, torch's default init (seed 0) for every
run.  ``minireg.training.kfold_indices(30, 5, shuffle=True)`` splits the points into
five folds of six; for each λ the model is trained on four folds and scored on the
fifth, five times.  The CV curve is the mean ± standard deviation over the folds; the
chosen λ is its minimum.  The test curve is the model trained on all 30 points at each
λ, scored on the 1000 test points: what the choice should have minimised.

torch trains a twin of every one of those models from the same weights on the same
folds, independently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._data import wave
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

__all__ = ["LAMBDAS", "draw", "fit"]

TOLERANCE = 1e-9  # float64 independent runs of 150 full-batch Adam steps
SIZES = (1, 32, 32, 1)
LR, N_TRAIN, NOISE, FOLDS = 0.02, 30, 0.3, 5
LAMBDAS = (0.0, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)
ZERO_AT = 3e-4  # where λ = 0 sits on the log axis
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 5, "ls": "none"}


def fit(lam: float, x: np.ndarray, y: np.ndarray, steps: int, torch: Any) -> Twins:
    """The model trained full-batch on ``(x, y)`` with weight decay ``lam``."""
    pair = Twins.mlp(
        SIZES, "Tanh", torch, ("Adam", {"lr": LR, "weight_decay": lam}), ("MSELoss", {})
    )
    for _ in range(steps):
        pair.step(x, y)
    pair.compare_weights()
    return pair


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """CV mean ± std and per-fold errors against λ, the test error, and the chosen fits."""
    result = FigureResult("cross_validation", tolerance=TOLERANCE)
    with timed(result):
        kfold_indices = require("minireg.training.kfold_indices")
        torch = optional_torch()
        steps = 25 if quick else 150
        lambdas = (LAMBDAS[0], LAMBDAS[2], LAMBDAS[-1]) if quick else LAMBDAS
        x, y = wave(N_TRAIN, seed=0, noise=NOISE)
        xt, yt = wave(1000, seed=1, noise=NOISE)
        folds = list(
            kfold_indices(N_TRAIN, FOLDS, shuffle=True, generator=np.random.default_rng(1))
        )
        cv = np.full((len(lambdas), FOLDS, 2), np.nan)  # [λ, fold, minireg/torch]
        test = np.full((len(lambdas), 2), np.nan)
        train = np.full(len(lambdas), np.nan)
        grid = np.linspace(-3.2, 3.2, 200)[:, None]
        fits = {}
        for i, lam in enumerate(lambdas):
            for k, (tr, va) in enumerate(folds):
                pair = fit(lam, x[tr], y[tr], steps, torch)
                cv[i, k] = pair.loss(x[va], y[va])
                if pair.gap is not None:
                    result.add_gap(pair.gap)
            pair = fit(lam, x, y, steps, torch)
            test[i] = pair.loss(xt, yt)
            train[i] = pair.loss(x, y)[0]
            fits[lam] = pair.outputs(grid)[0][:, 0]
            if pair.gap is not None:
                result.add_gap(pair.gap)
        where = np.array([lam if lam > 0 else ZERO_AT for lam in lambdas])
        mean, std = cv[:, :, 0].mean(axis=1), cv[:, :, 0].std(axis=1)
        chosen = int(np.argmin(mean))
        best = int(np.argmin(test[:, 0]))

        fig, (cv_ax, fold_ax, fit_ax) = plt.subplots(1, 3, figsize=(16, 5.4))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.83, bottom=0.15, wspace=0.24)
        cv_ax.fill_between(
            where,
            mean - std,
            mean + std,
            color=color(0),
            alpha=0.18,
            label="CV: ± 1 std over folds",
        )
        cv_ax.plot(
            where,
            mean,
            color=color(0),
            marker="o",
            label=f"{FOLDS}-fold CV: mean validation MSE",
            **MINIREG,
        )
        cv_ax.plot(
            where,
            test[:, 0],
            color=color(3),
            marker="s",
            label="trained on all 30: test MSE (1000 points)",
            **MINIREG,
        )
        cv_ax.plot(
            where,
            train,
            color=color(2),
            marker="^",
            lw=1.0,
            ls=":",
            label="trained on all 30: training MSE",
        )
        if torch is not None:
            cv_ax.plot(where, cv[:, :, 1].mean(axis=1), **TORCH_MARKS, label="torch twins")
            cv_ax.plot(where, test[:, 1], **TORCH_MARKS)
        star = {"marker": "*", "markeredgecolor": "k", "ls": "none"}
        cv_ax.plot(
            where[chosen], mean[chosen], ms=16, color="gold", **star,
            label=f"CV's choice λ = {lambdas[chosen]:g}: test MSE {test[chosen, 0]:.3f}",
        )  # fmt: skip
        cv_ax.plot(
            where[best], test[best, 0], ms=12, color=color(3), **star,
            label=f"best on test: λ = {lambdas[best]:g}, {test[best, 0]:.3f}",
        )  # fmt: skip
        cv_ax.axhline(
            NOISE**2, color="0.4", ls="-.", lw=0.9, label=f"noise floor σ² = {NOISE**2:.2f}"
        )
        cv_ax.set_title("choosing the weight decay λ by cross-validation", fontsize=9)
        cv_ax.set_ylabel("MSE")

        for k in range(FOLDS):
            fold_ax.plot(
                where,
                cv[:, k, 0],
                color=color(4 + k),
                marker="o",
                ms=3,
                lw=1.0,
                label=f"fold {k + 1} held out",
            )
            if torch is not None:
                fold_ax.plot(where, cv[:, k, 1], **dict(TORCH_MARKS, ms=3.5))
        fold_ax.set_title(
            f"each fold's validation MSE ({N_TRAIN // FOLDS} points each):\n"
            "the spread behind the CV band",
            fontsize=9,
        )
        fold_ax.set_ylabel("validation MSE")
        for ax in (cv_ax, fold_ax):
            ax.set_xscale("log")
            ax.set_xticks(where, ["0"] + [f"{lam:g}" for lam in lambdas[1:]])
            ax.minorticks_off()
            ax.set_xlabel("weight decay λ (Adam's weight_decay)")
            ax.legend(loc="upper left", fontsize=7)

        fit_ax.scatter(
            x[:, 0], y[:, 0], s=14, color="k", zorder=3, label=f"{N_TRAIN} training points"
        )
        fit_ax.plot(
            grid[:, 0],
            np.sin(2 * grid[:, 0]) + 0.3 * grid[:, 0],
            color="0.4",
            ls=":",
            label="true function",
        )
        for j, index in enumerate(sorted({0, chosen, len(lambdas) - 1})):
            lam = lambdas[index]
            tag = " (CV's choice)" if index == chosen else ""
            fit_ax.plot(
                grid[:, 0],
                fits[lam],
                color=color(j),
                label=f"λ = {lam:g}{tag}: test {test[index, 0]:.3f}",
                **MINIREG,
            )
        fit_ax.set_ylim(-2.4, 2.4)
        fit_ax.set_title("fits trained on all 30 points", fontsize=9)
        fit_ax.set_xlabel("x")
        fit_ax.set_ylabel("y")
        fit_ax.legend(loc="lower right", fontsize=7)
        result.data = {
            "lambdas": list(lambdas),
            "cv mean": mean.tolist(),
            "cv std": std.tolist(),
            "test": test[:, 0].tolist(),
            "chosen": lambdas[chosen],
            "best on test": lambdas[best],
        }
        gap = gap_clause(result, "worst |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Cross-validation: MLP {'→'.join(map(str, SIZES))} (tanh, float64), Adam(lr={LR}, "
            f"weight_decay=λ), {steps} full-batch steps, {FOLDS} folds of {N_TRAIN} points{gap}",
            "Technique: k-fold cross-validation (minireg.training.kfold_indices) for choosing a "
            "regulariser; notice the wide spread between folds, and how close CV's choice comes to "
            f"the test-optimal λ; {clause}.",
        )
    return result
