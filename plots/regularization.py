"""Weight penalties, dropout and early stopping.

Penalties (top row).  Data: 200 training and 500 validation points with 20 standard-normal
features of which only three matter, ``y = sin(2x₀) + 0.5x₁ − 0.3x₂² + 0.1ε``.  Model:
``20 → 64 → 1`` with tanh (float64), MSE plus a penalty on both weight matrices (not the
biases), ``SGD(lr=0.1)``, batches of 50.  Penalties, as ``minireg.regularization``
defines them: ``L1(3e-3)`` = 3e-3·Σ|w|, ``L2(1e-2)`` = 1e-2·Σw² (no ½) and
``ElasticNet(5e-3, alpha=0.5)``.  L1 through its subgradient (``sign(w)``, 0 at 0) never
makes a weight exactly zero: a weight near 0 jumps across it by ``lr·λ`` each step.  The
proximal variant (ISTA; Daubechies et al., 2004) replaces the penalty's gradient by a
soft-threshold after each step, ``w ← sign(w)·max(|w| − lr·λ, 0)``, which does produce
exact zeros.  torch runs the same losses (autograd of the same penalty expression) from
the same initial weights on the same batches.

Dropout and early stopping (bottom row).  An over-parameterised ``1 → 256 → 256 → 1``
ReLU net fits 40 noisy points of ``sin(2x)`` with ``Adam(lr=3e-3)``, full batch, with and
without ``Dropout(0.5)`` after each hidden layer.  Dropout masks come from NumPy's
generator, which torch cannot reproduce, so this part is minireg alone (the fidelity
dashboard checks dropout against torch with a shared mask).  ``EarlyStopping(patience=
20)`` watches the validation loss of the run without dropout every 10 steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._models import batches, build_mlp, minireg_mlp, torch_mlp
from plots._style import (
    MINIREG,
    TORCH,
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

__all__ = ["PENALTIES", "draw", "train_dropout", "train_penalty"]

TOLERANCE = 1e-9  # float64 independent runs of a tame (tanh, small lr) training
LR, BATCH = 0.1, 50
SIZES = (20, 64, 1)  # the penalised net of the top row

# label -> (penalty kind, lam, alpha)
PENALTIES: dict[str, tuple[str, float, float]] = {
    "no penalty": ("none", 0.0, 0.0),
    "L1(3e-3), subgradient": ("l1", 3e-3, 1.0),
    "L1(3e-3), proximal": ("l1_prox", 3e-3, 1.0),
    "L2(1e-2)": ("l2", 1e-2, 0.0),
    "ElasticNet(5e-3, α=0.5)": ("elastic", 5e-3, 0.5),
}


def sparse_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """20 features, 3 relevant."""
    x = rng.standard_normal((n, 20))
    y = (
        np.sin(2 * x[:, :1])
        + 0.5 * x[:, 1:2]
        - 0.3 * x[:, 2:3] ** 2
        + 0.1 * rng.standard_normal((n, 1))
    )
    return x, y


def _penalty_data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x, y = sparse_data(200, rng)
    xv, yv = sparse_data(500, rng)
    return x, y, xv, yv


def train_penalty(label: str, steps: int, library: str, eval_every: int) -> dict[str, Any]:
    """Train with penalty ``label``; return loss curves and the final first-layer weights."""
    import minireg

    kind, lam, alpha = PENALTIES[label]
    x, y, xv, yv = _penalty_data()
    torch = optional_torch()
    index_batches = batches(len(x), BATCH, steps, seed=1)
    train_curve, val_curve = [], []
    if library == "minireg":
        reg = require("minireg.regularization")
        model = minireg_mlp(SIZES, "Tanh", torch)
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        penalty = {"l1": reg.L1(lam), "l2": reg.L2(lam), "elastic": reg.ElasticNet(lam, alpha)}.get(
            kind
        )
        opt = minireg.optim.SGD(model.parameters(), lr=LR)
        loss_fn = minireg.nn.MSELoss()
        for t, idx in enumerate(index_batches):
            if t % eval_every == 0:
                train_curve.append(float(minireg.nn.MSELoss()(model(x), y)))
                val_curve.append(float(minireg.nn.MSELoss()(model(xv), yv)))
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx])
            model.backward(loss_fn.backward())
            if penalty is not None:
                penalty.backward(weights)
            opt.step()
            if kind == "l1_prox":
                for w in weights:  # soft-threshold: the proximal step of lr·λ·Σ|w|
                    np.copyto(w.data, np.sign(w.data) * np.maximum(np.abs(w.data) - LR * lam, 0.0))
        first = model[0].weight.data.copy()
        train_curve.append(float(minireg.nn.MSELoss()(model(x), y)))
        val_curve.append(float(minireg.nn.MSELoss()(model(xv), yv)))
    else:
        model = torch_mlp(torch, SIZES, "Tanh")
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        mse = torch.nn.functional.mse_loss
        tx, ty, txv, tyv = (torch.from_numpy(a) for a in (x, y, xv, yv))
        for t, idx in enumerate(index_batches):
            if t % eval_every == 0:
                with torch.no_grad():
                    train_curve.append(float(mse(model(tx), ty)))
                    val_curve.append(float(mse(model(txv), tyv)))
            opt.zero_grad()
            tidx = torch.from_numpy(idx)
            loss = mse(model(tx[tidx]), ty[tidx])
            l1 = sum(w.abs().sum() for w in weights)
            l2 = sum((w * w).sum() for w in weights)
            if kind == "l1":
                loss = loss + lam * l1
            elif kind == "l2":
                loss = loss + lam * l2
            elif kind == "elastic":
                loss = loss + alpha * (lam * l1) + (1 - alpha) * (lam * l2)
            loss.backward()
            opt.step()
            if kind == "l1_prox":
                with torch.no_grad():
                    for w in weights:
                        w.copy_(torch.sign(w) * torch.clamp(w.abs() - LR * lam, min=0.0))
        first = model[0].weight.detach().numpy().copy()
        with torch.no_grad():
            train_curve.append(float(mse(model(tx), ty)))
            val_curve.append(float(mse(model(txv), tyv)))
    return {"train": np.array(train_curve), "val": np.array(val_curve), "first_weights": first}


def train_dropout(p: float, steps: int, eval_every: int, patience: int) -> dict[str, Any]:
    """minireg alone: the wide net with/without dropout, and early stopping on its val loss."""
    import minireg

    rng = np.random.default_rng(3)
    x = rng.uniform(-2.5, 2.5, (40, 1))
    y = np.sin(2 * x) + 0.3 * rng.standard_normal((40, 1))
    xv = np.linspace(-2.5, 2.5, 400)[:, None]
    yv = np.sin(2 * xv) + 0.3 * rng.standard_normal((400, 1))
    minireg.manual_seed(4)
    model = build_mlp(minireg.nn, (1, 256, 256, 1), "ReLU", dropout=p, dtype=np.float64)
    for layer in model:
        if hasattr(layer, "generator"):
            layer.generator = np.random.default_rng(5)
    opt = minireg.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = minireg.nn.MSELoss()
    stopper = require("minireg.training.EarlyStopping")(patience=patience)
    stop_at, train_curve, val_curve = None, [], []
    for t in range(steps):
        if t % eval_every == 0:
            model.eval()
            train_curve.append(float(minireg.nn.MSELoss()(model(x), y)))
            val = float(minireg.nn.MSELoss()(model(xv), yv))
            val_curve.append(val)
            model.train()
            if stopper.step(val, model) and stop_at is None:
                stop_at = t  # keep training past the stop, to show what early stopping avoided
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()
    model.eval()
    fit = model(xv)
    stopper.restore(model)
    return {
        "x": x, "y": y, "grid": xv[:, 0], "fit": fit[:, 0], "best_fit": model(xv)[:, 0],
        "train": np.array(train_curve), "val": np.array(val_curve),
        "stop_at": stop_at, "best_at": stopper.best_epoch * eval_every,
        "best_val": stopper.best_metric,
    }  # fmt: skip


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Penalised weights and curves (top), dropout and early stopping (bottom)."""
    result = FigureResult("regularization", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 150 if quick else 1200
        eval_every = 10 if quick else 40
        fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.91, bottom=0.08, hspace=0.38, wspace=0.24)
        (hist_ax, curve_ax, col_ax), (fit_ax, drop_ax, stop_ax) = axes
        width = 0.8 / len(PENALTIES)
        for index, label in enumerate(PENALTIES):
            c = color(index)
            ours = train_penalty(label, steps, "minireg", eval_every)
            w = np.abs(ours["first_weights"]).ravel()
            zeros = int(np.count_nonzero(w == 0))
            hist_ax.hist(
                np.maximum(w, 1e-9),
                bins=np.logspace(-9, 1, 41),
                histtype="step",
                lw=1.6,
                color=c,
                label=f"{label}: {zeros} exact zeros",
            )
            evals = np.minimum(np.arange(len(ours["val"])) * eval_every, steps)
            curve_ax.semilogy(evals, ours["val"], color=c, label=f"{label} (val)", **MINIREG)
            curve_ax.semilogy(evals, ours["train"], color=c, lw=0.9, ls=":")
            columns = np.linalg.norm(ours["first_weights"], axis=0)
            col_ax.bar(
                np.arange(20) + (index - 2) * width, columns, width=width, color=c, label=label
            )
            if torch is not None:
                theirs = train_penalty(label, steps, "torch", eval_every)
                curve_ax.semilogy(evals, theirs["val"], color="k", **TORCH)
                for key in ("train", "val", "first_weights"):
                    result.add_gap(np.abs(ours[key] - theirs[key]).max())
                result.data[label] = {
                    "zeros (torch)": int(np.count_nonzero(theirs["first_weights"] == 0)),
                    "zeros (minireg)": zeros,
                }
        hist_ax.set_xscale("log")
        hist_ax.set_title(
            "|first-layer weight| after training (1280 weights;\nexact zeros drawn at 1e-9)",
            fontsize=9,
        )
        hist_ax.set_xlabel("|w|")
        hist_ax.set_ylabel("count")
        hist_ax.legend(loc="upper left", fontsize=6.5)
        curve_ax.set_title("validation (solid) and training (dotted) MSE; torch dashed", fontsize=9)
        curve_ax.set_xlabel("step")
        curve_ax.set_ylabel("MSE")
        curve_ax.legend(loc="lower left", fontsize=6.5)
        col_ax.set_title(
            "norm of each input's first-layer weights\n(only inputs 0, 1, 2 matter)", fontsize=9
        )
        col_ax.set_xlabel("input feature")
        col_ax.set_ylabel("‖W[:, j]‖₂")
        col_ax.set_xticks(range(20))
        col_ax.legend(loc="upper right", fontsize=6.5)

        drop_steps = 200 if quick else 1500
        drop_every = 10
        runs = {p: train_dropout(p, drop_steps, drop_every, patience=20) for p in (0.0, 0.5)}
        plain = runs[0.0]
        fit_ax.scatter(
            plain["x"][:, 0],
            plain["y"][:, 0],
            s=12,
            color="0.3",
            zorder=3,
            label="40 training points",
        )
        fit_ax.plot(
            plain["grid"], np.sin(2 * plain["grid"]), color="0.6", lw=1, ls=":", label="sin(2x)"
        )
        for k, (p, run) in enumerate(runs.items()):
            name = "no dropout" if p == 0 else f"Dropout({p})"
            c = color(5 + k)
            fit_ax.plot(
                run["grid"], run["fit"], color=c, label=f"{name}, step {drop_steps}", **MINIREG
            )
            evals = np.arange(len(run["val"])) * drop_every
            drop_ax.semilogy(evals, run["val"], color=c, label=f"{name} (val)", **MINIREG)
            drop_ax.semilogy(
                evals, run["train"], color=c, lw=0.9, ls=":", label=f"{name} (train, eval mode)"
            )
        fit_ax.plot(
            plain["grid"],
            plain["best_fit"],
            color="k",
            lw=1.2,
            ls="--",
            label=f"no dropout, early-stopped (step {plain['best_at']})",
        )
        fit_ax.set_ylim(-2.0, 2.0)
        fit_ax.set_title("over-parameterised 1→256→256→1 ReLU net, Adam(3e-3)", fontsize=9)
        fit_ax.set_xlabel("x")
        fit_ax.set_ylabel("y")
        fit_ax.legend(loc="lower left", fontsize=6.5)
        drop_ax.set_title("dropout: training and validation MSE (minireg)", fontsize=9)
        drop_ax.set_xlabel("step")
        drop_ax.set_ylabel("MSE")
        drop_ax.legend(loc="lower left", fontsize=6.5)
        evals = np.arange(len(plain["val"])) * drop_every
        stop_ax.semilogy(
            evals, plain["val"], color=color(5), label="validation MSE, no dropout", **MINIREG
        )
        stop_ax.axvline(
            plain["best_at"],
            color="green",
            ls="--",
            label=f"best (restored): step {plain['best_at']}",
        )
        if plain["stop_at"] is not None:
            stop_ax.axvline(
                plain["stop_at"], color="crimson", ls="-.", label=f"stop: step {plain['stop_at']}"
            )
            stop_ax.axvspan(
                plain["stop_at"], evals[-1], color="0.85", alpha=0.6, label="not needed"
            )
        stop_ax.plot(
            plain["best_at"],
            plain["best_val"],
            marker="*",
            ms=12,
            color="gold",
            markeredgecolor="k",
        )
        stop_ax.set_title(
            f"EarlyStopping(patience=20), checked every {drop_every} steps", fontsize=9
        )
        stop_ax.set_xlabel("step")
        stop_ax.set_ylabel("MSE")
        stop_ax.legend(loc="upper right", fontsize=7)
        result.data["early stopping"] = {"best": plain["best_at"], "stop": plain["stop_at"]}

        gap = gap_clause(result, "worst |minireg − torch| (top row)")
        finish(
            fig,
            result,
            out_dir,
            f"Regularisation: weight penalties (20→64→1 tanh, SGD lr {LR}, {steps} steps), "
            f"dropout and early stopping (float64){gap}",
            "Technique: L1/lasso (Tibshirani 1996), L2/ridge, elastic net (Zou & Hastie 2005), "
            "dropout (Srivastava et al. 2014), early stopping (Prechelt 1998); "
            f"top row {torch_note(torch)}.",
        )
    return result
