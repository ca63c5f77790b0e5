"""Bagging: a bootstrap ensemble of small MLPs against a single one (Breiman, 1996).

Regression (left three panels).  40 noisy points of ``sin(2x) + 0.3x`` (noise 0.3) and
500 test points drawn the same way.  Each of the ``M`` members is a ``1 → 32 → 32 → 1``
tanh MLP (float64, its own torch default init, seed ``m``) trained full-batch with
``Adam(lr=1e-2)`` on its own bootstrap resample of the 40 points
(``minireg.training.bootstrap_indices``: 40 draws with replacement, about 63 % of the
points, some several times).  The ensemble predicts ``bagging_average`` of the members;
the single model is the same MLP trained on all 40 points.  The *out-of-bag* estimate
(``out_of_bag``) predicts each training point with only the members that never saw it,
averaged, and takes the MSE over the points that have such members: an estimate of the
test error that costs no held-out data.

Classification (right panel).  The three spirals (150 training points, 10 % noisy
labels, 2000 test points); members ``2 → 32 → 32 → 3`` ReLU nets, each on its bootstrap
resample, combined by ``bagging_vote`` (majority of the predicted classes; ties to the
smallest class), with the out-of-bag vote accuracy beside the test accuracy.

torch trains every member's twin from the same weights on the same resample; the gap
covers their predictions and weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._data import spirals, wave
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

__all__ = ["draw", "ensemble", "out_of_bag_error"]

# float64 independent full-batch Adam runs: the twins drift apart as training goes on
# (1e-11 after 200 steps here, 1e-8 after 250 for the classifiers), so the runs stay short
TOLERANCE = 1e-9
REG_SIZES, CLS_SIZES = (1, 32, 32, 1), (2, 32, 32, 3)
LR, N_REG, N_CLS, NOISE = 1e-2, 40, 150, 0.3
TORCH_MARKS: dict[str, Any] = {"color": "k", "marker": "x", "ms": 4, "ls": "none"}


def _member(
    sizes: tuple[int, ...], activation: str, loss: str, seed: int, x: np.ndarray, y: np.ndarray,
    steps: int, torch: Any,
) -> Twins:  # fmt: skip
    pair = Twins.mlp(sizes, activation, torch, ("Adam", {"lr": LR}), (loss, {}), seed=seed)
    for _ in range(steps):
        pair.step(x, y)
    pair.compare_weights()
    return pair


def ensemble(task: str, members: int, steps: int, torch: Any) -> dict[str, Any]:
    """Train the single model and ``members`` bagged ones; their test and OOB predictions.

    ``task`` is ``"regression"`` or ``"classification"``.  Returns the members' outputs on
    the test inputs and on the training inputs (minireg; torch's too when present), the
    single model's, each member's bootstrap indices, and the worst twin gap.
    """
    training = require("minireg.training")
    if task == "regression":
        x, y = wave(N_REG, seed=0, noise=NOISE)
        xt, yt = wave(500, seed=1, noise=NOISE)
        spec: tuple[Any, ...] = (REG_SIZES, "Tanh", "MSELoss")
    else:
        x, y = spirals(N_CLS, seed=0, label_noise=0.1)
        xt, yt = spirals(2000, seed=1, label_noise=0.1)
        spec = (CLS_SIZES, "ReLU", "CrossEntropyLoss")
    generator = np.random.default_rng(11)
    gap = 0.0
    test, train, test_t, drawn = [], [], [], []
    single = _member(*spec, 0, x, y, steps, torch)
    single_test = single.outputs(xt)[0]
    for m in range(members):
        idx = training.bootstrap_indices(len(x), generator=generator)
        pair = _member(*spec, 100 + m, x[idx], y[idx], steps, torch)
        ours, theirs = pair.outputs(xt)
        test.append(ours)
        test_t.append(theirs)
        train.append(pair.outputs(x)[0])
        drawn.append(idx)
        gap = max(gap, pair.gap or 0.0)
    return {
        "x": x, "y": y, "xt": xt, "yt": yt, "single": single_test, "test": np.stack(test),
        "test_torch": None if torch is None else np.stack(test_t), "train": np.stack(train),
        "drawn": drawn, "gap": None if torch is None else max(gap, single.gap or 0.0),
    }  # fmt: skip


def out_of_bag_error(run: dict[str, Any], upto: int, task: str) -> float:
    """MSE (regression) or error rate (classification) of the out-of-bag prediction of the
    first ``upto`` members, over the training points that some of them never drew."""
    training = require("minireg.training")
    n = len(run["x"])
    mask = np.zeros((upto, n), dtype=bool)  # mask[m, i]: point i is out of member m's bag
    for m in range(upto):
        mask[m, training.out_of_bag(run["drawn"][m], n)] = True
    covered = mask.any(axis=0)
    if not covered.any():
        return float("nan")
    if task == "regression":
        weights = mask[..., None] / np.maximum(mask.sum(axis=0), 1)[None, :, None]
        prediction = np.sum(weights * run["train"][:upto], axis=0)
        return float(np.mean((prediction[covered] - run["y"][covered]) ** 2))
    labels = run["train"][:upto].argmax(axis=-1)
    votes = (labels[..., None] == np.arange(3)) & mask[..., None]
    prediction = np.argmax(votes.sum(axis=0), axis=-1)  # the vote of the out-of-bag members
    return float(np.mean(prediction[covered] != run["y"][covered]))


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Member fits, prediction variance, ensemble and OOB error vs members; the vote."""
    result = FigureResult("bagging", tolerance=TOLERANCE)
    with timed(result):
        training = require("minireg.training")
        torch = optional_torch()
        members, steps = (3, 40) if quick else (10, 200)
        fig, axes = plt.subplots(1, 4, figsize=(18, 5.4))
        fig.subplots_adjust(left=0.04, right=0.99, top=0.83, bottom=0.15, wspace=0.24)
        fit_ax, var_ax, error_ax, vote_ax = axes

        reg = ensemble("regression", members, steps, torch)
        if reg["gap"] is not None:
            result.add_gap(reg["gap"])
            result.add_gap(np.max(np.abs(reg["test"] - reg["test_torch"])))
        order = np.argsort(reg["xt"][:, 0])
        grid, preds = reg["xt"][order, 0], reg["test"][:, order, 0]
        mean = training.bagging_average(preds)
        spread = preds.std(axis=0)
        for m, p in enumerate(preds):
            fit_ax.plot(
                grid, p, color=color(0), lw=0.6, alpha=0.35, label="members" if m == 0 else None
            )
        fit_ax.fill_between(
            grid,
            mean - 2 * spread,
            mean + 2 * spread,
            color=color(0),
            alpha=0.15,
            label="±2 std across members",
        )
        fit_ax.plot(grid, mean, color=color(0), label=f"bagged mean of {members}", **MINIREG)
        fit_ax.plot(
            grid,
            reg["single"][order, 0],
            color=color(3),
            label="single MLP (all points)",
            **MINIREG,
        )
        if reg["test_torch"] is not None:
            torch_mean = training.bagging_average(reg["test_torch"][:, order, 0])
            fit_ax.plot(
                grid[::12], torch_mean[::12], **TORCH_MARKS, label="torch twins' bagged mean"
            )
        fit_ax.plot(
            grid, np.sin(2 * grid) + 0.3 * grid, color="0.4", ls=":", lw=1.2, label="true function"
        )
        fit_ax.scatter(
            reg["x"][:, 0],
            reg["y"][:, 0],
            s=14,
            color="k",
            zorder=3,
            label=f"{N_REG} training points",
        )
        fit_ax.set_ylim(-2.6, 2.6)
        fit_ax.set_title(
            f"bootstrap members (thin) and their average; noise σ = {NOISE}", fontsize=9
        )
        fit_ax.set_xlabel("x")
        fit_ax.set_ylabel("y")
        fit_ax.legend(loc="lower right", fontsize=6.8)

        var_ax.plot(
            grid, spread, color=color(0), label="std of the members' predictions", **MINIREG
        )
        if reg["test_torch"] is not None:
            torch_spread = reg["test_torch"][:, order, 0].std(axis=0)
            var_ax.plot(grid[::12], torch_spread[::12], **TORCH_MARKS, label="torch twins")
        var_ax.plot(reg["x"][:, 0], np.zeros(N_REG), "|", color="k", ms=14, label="training inputs")
        var_ax.set_title(
            "prediction spread across the bootstrap members\n(largest where the data are sparse)",
            fontsize=9,
        )
        var_ax.set_xlabel("x")
        var_ax.set_ylabel("standard deviation across members")
        var_ax.set_ylim(-0.01, 1.4 * float(spread.max()))
        var_ax.legend(loc="upper center", fontsize=6.8)

        sizes = np.arange(1, members + 1)
        test_mse = [
            np.mean((training.bagging_average(reg["test"][:k]) - reg["yt"]) ** 2) for k in sizes
        ]
        oob_mse = [out_of_bag_error(reg, k, "regression") for k in sizes]
        member_mse = np.mean((reg["test"] - reg["yt"][None]) ** 2, axis=(1, 2))
        single_mse = float(np.mean((reg["single"] - reg["yt"]) ** 2))
        error_ax.plot(
            sizes,
            test_mse,
            color=color(0),
            marker="o",
            ms=3,
            label="bagged ensemble: test MSE",
            **MINIREG,
        )
        error_ax.plot(
            sizes,
            oob_mse,
            color=color(1),
            marker="s",
            ms=3,
            label="bagged ensemble: out-of-bag estimate",
            **MINIREG,
        )
        if reg["test_torch"] is not None:
            test_mse_t = [
                np.mean((training.bagging_average(reg["test_torch"][:k]) - reg["yt"]) ** 2)
                for k in sizes
            ]
            error_ax.plot(sizes, test_mse_t, **TORCH_MARKS, label="torch twins: test MSE")
        error_ax.axhline(
            single_mse,
            color=color(3),
            ls="--",
            lw=1.2,
            label=f"single MLP: test MSE {single_mse:.3f}",
        )
        error_ax.axhline(
            float(np.mean(member_mse)),
            color="0.5",
            ls=":",
            lw=1.2,
            label=f"average member: {np.mean(member_mse):.3f}",
        )
        error_ax.axhline(
            NOISE**2, color="0.3", ls="-.", lw=0.9, label=f"noise floor σ² = {NOISE**2:.2f}"
        )
        error_ax.set_title(
            "test error and its out-of-bag estimate\nvs number of bagged members", fontsize=9
        )
        error_ax.set_xlabel("members averaged")
        error_ax.set_ylabel("MSE")
        error_ax.legend(loc="upper right", fontsize=6.8)
        result.data["regression"] = {
            "single test MSE": single_mse,
            "ensemble test MSE": float(test_mse[-1]),
            "OOB estimate": float(oob_mse[-1]),
            "average member test MSE": float(np.mean(member_mse)),
        }

        cls = ensemble("classification", members, steps * 3 // 4, torch)
        if cls["gap"] is not None:
            result.add_gap(cls["gap"])
            result.add_gap(np.max(np.abs(cls["test"] - cls["test_torch"])))
        labels = cls["test"].argmax(axis=-1)
        vote_acc = [np.mean(training.bagging_vote(labels[:k], 3) == cls["yt"]) for k in sizes]
        oob_acc = [1 - out_of_bag_error(cls, k, "classification") for k in sizes]
        single_acc = float(np.mean(cls["single"].argmax(-1) == cls["yt"]))
        vote_ax.plot(
            sizes,
            vote_acc,
            color=color(0),
            marker="o",
            ms=3,
            label="bagging_vote: test accuracy",
            **MINIREG,
        )
        vote_ax.plot(
            sizes,
            oob_acc,
            color=color(1),
            marker="s",
            ms=3,
            label="out-of-bag vote accuracy",
            **MINIREG,
        )
        if cls["test_torch"] is not None:
            labels_t = cls["test_torch"].argmax(axis=-1)
            vote_t = [np.mean(training.bagging_vote(labels_t[:k], 3) == cls["yt"]) for k in sizes]
            vote_ax.plot(sizes, vote_t, **TORCH_MARKS, label="torch twins: test accuracy")
        vote_ax.axhline(
            single_acc, color=color(3), ls="--", lw=1.2, label=f"single MLP: {single_acc:.3f}"
        )
        vote_ax.axhline(
            float(np.mean(labels == cls["yt"][None])),
            color="0.5",
            ls=":",
            lw=1.2,
            label="average member",
        )
        vote_ax.set_title(
            "classification: majority vote of bootstrap members\n"
            f"(spirals, {N_CLS} points, 10 % noisy labels)",
            fontsize=9,
        )
        vote_ax.set_xlabel("members voting")
        vote_ax.set_ylabel("accuracy")
        vote_ax.legend(loc="lower right", fontsize=6.8)
        result.data["classification"] = {
            "single accuracy": single_acc,
            "vote accuracy": float(vote_acc[-1]),
            "OOB accuracy": float(oob_acc[-1]),
        }
        gap = gap_clause(result, "worst |minireg − torch|")
        clause = torch_note(torch, "lines", "x marks")
        finish(
            fig,
            result,
            out_dir,
            f"Bagging: {members} MLPs on bootstrap resamples vs one MLP (float64, full-batch "
            f"Adam(lr={LR}), {steps} steps each){gap}",
            "Technique: bootstrap aggregating (Breiman 1996) with minireg.training's "
            "bootstrap_indices, bagging_average, bagging_vote, out_of_bag; notice the ensemble "
            f"beating one MLP (test MSE {test_mse[-1]:.3f} vs {single_mse:.3f}) and the out-of-bag "
            f"estimate ({oob_mse[-1]:.3f}) erring high; {clause}.",
        )
    return result
