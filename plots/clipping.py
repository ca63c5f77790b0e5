"""Gradient-norm clipping on a network trained with too high a learning rate.

Model: ``1 → 64 → 64 → 64 → 1`` with ReLU (float64), MSE on the noisy 1-D data of
:mod:`plots.mlp_regression`, ``SGD(lr=0.2, momentum=0.9)`` (too high for this net: the
gradient norm spikes and the loss jumps by two orders of magnitude), batches of 64.  The
same run with ``clip_grad_norm_(model.parameters(), max_norm=1.0)`` between the backward
pass and the step stays smooth.  The gradient norm plotted is the total norm before
clipping, which is what ``clip_grad_norm_`` returns.

As in :mod:`plots.batchnorm`, independent runs of a training this unstable drift apart
from last-bit differences, so the gap is measured in lockstep: before every step torch's
twin is loaded with minireg's weights and momentum buffers, both take the step, and the
worst difference of loss, total norm, weights and buffers is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plots._models import Lockstep, batches, minireg_mlp, minireg_step, torch_mlp, torch_step
from plots._style import (
    MINIREG,
    TORCH,
    FigureResult,
    color,
    finish,
    floor_for_log,
    gap_clause,
    moving_average,
    optional_torch,
    plt,
    require,
    timed,
    torch_note,
)

__all__ = ["draw", "train"]

TOLERANCE = 1e-10  # float64, one step at a time (lockstep)
SIZES = (1, 64, 64, 64, 1)
LR, MOMENTUM, MAX_NORM, BATCH = 0.2, 0.9, 1.0, 64


def train(clip: bool, steps: int, library: str, lockstep: bool = False) -> dict[str, Any]:
    """Losses and pre-clipping total gradient norms per step (and lockstep gaps)."""
    import minireg
    from plots.mlp_regression import make_data

    x, y = make_data()
    torch = optional_torch()
    index_batches = batches(len(x), BATCH, steps, seed=1)
    losses, norms, gaps = np.empty(steps), np.empty(steps), np.zeros(steps)
    if library == "minireg":
        clip_grad_norm_ = require("minireg.nn.utils.clip_grad_norm_")
        get_total_norm = require("minireg.nn.utils.get_total_norm")
        model = minireg_mlp(SIZES, "ReLU", torch)
        opt = minireg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        loss_fn = minireg.nn.MSELoss()

        def before_step() -> float:
            params = list(model.parameters())
            if clip:
                return float(clip_grad_norm_(params, MAX_NORM))
            return float(get_total_norm([p.grad for p in params]))

        if lockstep:
            twin = torch_mlp(torch, SIZES, "ReLU")
            twin_opt = torch.optim.SGD(twin.parameters(), lr=LR, momentum=MOMENTUM)
            sync = Lockstep(
                twin, twin_opt, torch.nn.MSELoss(), _torch_before_step(torch, twin, clip)
            )
        for t, idx in enumerate(index_batches):
            if lockstep:
                losses[t], norms[t], gaps[t] = sync.step(
                    model, opt, loss_fn, x, y, idx, before_step
                )
            else:
                losses[t], norms[t] = minireg_step(model, loss_fn, opt, x[idx], y[idx], before_step)
    else:
        model = torch_mlp(torch, SIZES, "ReLU")
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        loss_fn = torch.nn.MSELoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        before = _torch_before_step(torch, model, clip)
        for t, idx in enumerate(index_batches):
            tidx = torch.from_numpy(idx)
            losses[t], norms[t] = torch_step(model, loss_fn, opt, tx[tidx], ty[tidx], before)
    return {"losses": losses, "norms": norms, "lockstep": gaps}


def _torch_before_step(torch: Any, model: Any, clip: bool) -> Any:
    def before_step() -> float:
        params = list(model.parameters())
        if clip:
            return float(torch.nn.utils.clip_grad_norm_(params, MAX_NORM))
        return float(torch.nn.utils.get_total_norm([p.grad for p in params]))

    return before_step


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Gradient norm and loss per step with and without clipping, and the lockstep gap."""
    result = FigureResult("clipping", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 80 if quick else 400
        fig, (norm_ax, loss_ax, gap_ax) = plt.subplots(1, 3, figsize=(16, 5.2))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.84, bottom=0.17, wspace=0.25)
        steps_axis = np.arange(1, steps + 1)
        for _index, clip in enumerate([False, True]):
            label = f"clip_grad_norm_(max_norm={MAX_NORM})" if clip else "no clipping"
            c = color(3 if not clip else 2)
            with np.errstate(
                over="ignore", invalid="ignore"
            ):  # without clipping, a run may blow up
                ours = train(clip, steps, "minireg", lockstep=torch is not None)
            norm_ax.semilogy(
                steps_axis, ours["norms"], color=c, label=f"{label} (minireg)", **MINIREG
            )
            loss_ax.semilogy(
                steps_axis,
                moving_average(ours["losses"], 10),
                color=c,
                label=f"{label} (minireg)",
                **MINIREG,
            )
            if torch is not None:
                theirs = train(clip, steps, "torch")
                norm_ax.semilogy(
                    steps_axis, theirs["norms"], color="k", label=f"{label} (torch)", **TORCH
                )
                loss_ax.semilogy(
                    steps_axis,
                    moving_average(theirs["losses"], 10),
                    color="k",
                    label=f"{label} (torch)",
                    **TORCH,
                )
                result.add_gap(ours["lockstep"].max())
                gap_ax.semilogy(
                    steps_axis,
                    floor_for_log(ours["lockstep"]),
                    color=c,
                    lw=1.0,
                    label=f"{label} (max {ours['lockstep'].max():.0e})",
                )
            result.data[label] = {
                "final loss": float(np.mean(ours["losses"][-20:])),
                "max norm": float(ours["norms"].max()),
            }
        norm_ax.axhline(MAX_NORM, color="gray", ls=":", lw=1.2, label=f"max_norm = {MAX_NORM}")
        norm_ax.set_title("total gradient norm before clipping")
        norm_ax.set_ylabel("‖g‖₂ (all parameters)")
        loss_ax.set_title("training loss (moving average, 10 steps)")
        loss_ax.set_ylabel("MSE")
        gap_ax.set_title(
            "lockstep: torch re-synced to minireg before each step\n"
            "max |Δ| over loss, norm, weights, momentum",
            fontsize=9,
        )
        gap_ax.set_ylabel("|Δ| (0 drawn at 1e-18)")
        if torch is None:
            gap_ax.text(0.5, 0.5, "torch not installed", transform=gap_ax.transAxes, ha="center")
        for ax in (norm_ax, loss_ax, gap_ax):
            ax.set_xlabel("step")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper right", fontsize=7)
        gap = gap_clause(result, "worst one-step |minireg − torch|")
        finish(
            fig,
            result,
            out_dir,
            f"Gradient clipping: MLP {'→'.join(map(str, SIZES))} (ReLU, float64), SGD(lr={LR}, "
            f"momentum={MOMENTUM}) — too high a learning rate{gap}",
            "Technique: gradient-norm clipping, g ← g·min(1, max_norm/(‖g‖+1e-6)) "
            "(Pascanu et al. 2013); "
            f"{torch_note(torch)} (black, independent runs).",
        )
    return result
