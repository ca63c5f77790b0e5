"""The same MLP with and without BatchNorm, at a moderate and at a deliberately high lr.

Data: three interleaved spirals in 2-D (600 training, 300 validation points, seed 0),
whose two input features are badly scaled and shifted (``x·(4, 0.25) + (3, −2)``).
Model: ``2 → 64 → 64 → 64 → 3`` with ReLU, optionally ``BatchNorm1d`` between each
``Linear`` and its ReLU; cross-entropy loss; plain ``SGD`` at ``lr=0.05`` and ``lr=2.0``;
batches of 64; float64.  torch builds each model (``torch.manual_seed(0)``) and minireg
loads its ``state_dict``, so the twin runs share weights and batches.  Validation runs in
``eval()`` mode, i.e. on BatchNorm's running statistics.  The histograms show the inputs
of the last ReLU (the "pre-activations") after training at ``lr=0.05``.

Training is chaotic: two torch runs whose initial weights differ by one ULP drift apart
exponentially (at ``lr=2.0`` with BatchNorm, to 1e-1 within tens of steps), and independent
minireg and torch runs drift apart exactly as fast (top-right panel).  So the figure's
gap is measured in *lockstep*: before every step a torch twin is loaded with minireg's
weights and running statistics, both take the step, and the worst difference of loss,
weights and buffers is recorded (bottom-right panel).  Nothing accumulates there, so it
is the implementation gap alone.
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

__all__ = ["CONFIGS", "draw", "spirals", "train"]

TOLERANCE = 1e-10  # float64, one step at a time (lockstep): rounding only
SIZES = (2, 64, 64, 64, 3)
BATCH = 64
CONFIGS: list[tuple[str, bool, float]] = [
    ("no BN, lr 0.05", False, 0.05),
    ("BN, lr 0.05", True, 0.05),
    ("no BN, lr 2.0", False, 2.0),
    ("BN, lr 2.0", True, 2.0),
]


def spirals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of three noisy spiral arms, badly scaled; labels are int64."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 2 * np.pi * labels / 3 + 3.0 * radius + 0.25 * rng.standard_normal(n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x * np.array([4.0, 0.25]) + np.array([3.0, -2.0]), labels.astype(np.int64)


def train(
    batchnorm: bool,
    lr: float,
    steps: int,
    library: str,
    eval_every: int,
    *,
    lockstep: bool = False,
    perturb: bool = False,
) -> dict[str, Any]:
    """Train one configuration; return train losses, validation losses and pre-activations.

    minireg with ``lockstep``: a torch twin is re-synchronised to minireg's weights and
    running statistics before every step and takes the same step; ``"lockstep"`` is then
    the per-step ``max |Δ|`` over the loss and every parameter and buffer (nothing
    accumulates).  torch with ``perturb``: every initial weight is multiplied by
    ``1 + 2⁻⁵²`` (one ULP), to show how fast training itself amplifies rounding.
    """
    import minireg

    x, y = spirals(600, seed=0)
    xv, yv = spirals(300, seed=1)
    torch = optional_torch()
    index_batches = batches(len(x), BATCH, steps, seed=2)
    losses, val_losses, lockstep_gaps = np.empty(steps), [], np.zeros(steps)

    if library == "minireg":
        for name in ("Linear", "ReLU", "BatchNorm1d", "Sequential", "CrossEntropyLoss"):
            require(f"minireg.nn.{name}")
        model = minireg_mlp(SIZES, "ReLU", torch, batchnorm=batchnorm)
        opt = minireg.optim.SGD(model.parameters(), lr=lr)
        loss_fn = minireg.nn.CrossEntropyLoss()
        if lockstep:
            twin = torch_mlp(torch, SIZES, "ReLU", batchnorm=batchnorm)
            sync = Lockstep(
                twin, torch.optim.SGD(twin.parameters(), lr=lr), torch.nn.CrossEntropyLoss()
            )

        def validate() -> float:
            model.eval()
            value = float(minireg.nn.CrossEntropyLoss()(model(xv), yv))
            model.train()
            return value

        for t, idx in enumerate(index_batches):
            if t % eval_every == 0:
                val_losses.append(validate())
            if lockstep:
                losses[t], _, lockstep_gaps[t] = sync.step(model, opt, loss_fn, x, y, idx)
            else:
                losses[t], _ = minireg_step(model, loss_fn, opt, x[idx], y[idx])
        val_losses.append(validate())
        model.eval()
        pre = model[:-2](xv)  # everything up to (not including) the last ReLU
    else:
        model = torch_mlp(torch, SIZES, "ReLU", batchnorm=batchnorm)
        if perturb:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1 + 2.0**-52)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        tx, ty, txv, tyv = (torch.from_numpy(a) for a in (x, y, xv, yv))

        def validate() -> float:
            model.eval()
            with torch.no_grad():
                value = float(loss_fn(model(txv), tyv))
            model.train()
            return value

        for t, idx in enumerate(index_batches):
            if t % eval_every == 0:
                val_losses.append(validate())
            tidx = torch.from_numpy(idx)
            losses[t], _ = torch_step(model, loss_fn, opt, tx[tidx], ty[tidx])
        val_losses.append(validate())
        model.eval()
        with torch.no_grad():
            pre = model[:-2](txv).numpy()
    return {
        "losses": losses,
        "val_losses": np.array(val_losses),
        "pre": np.asarray(pre),
        "lockstep": lockstep_gaps,
    }


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Loss curves, sensitivity to rounding, pre-activation histograms, lockstep gaps."""
    result = FigureResult("batchnorm", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        steps = 60 if quick else 300
        eval_every = 10 if quick else 20
        fig, axes = plt.subplots(2, 3, figsize=(16, 8.8))
        fig.subplots_adjust(left=0.05, right=0.98, top=0.91, bottom=0.09, hspace=0.34, wspace=0.24)
        (train_ax, val_ax, chaos_ax), (hist_ax, hist_bn_ax, lock_ax) = axes
        bins = np.linspace(-6, 6, 61)
        steps_axis = np.arange(1, steps + 1)
        for index, (label, batchnorm, lr) in enumerate(CONFIGS):
            ours = train(batchnorm, lr, steps, "minireg", eval_every, lockstep=torch is not None)
            theirs = train(batchnorm, lr, steps, "torch", eval_every) if torch is not None else None
            c = color(index)
            style = dict(MINIREG, linestyle="-" if lr < 0.1 else "-.")
            eval_steps = np.arange(len(ours["val_losses"])) * eval_every
            train_ax.semilogy(
                steps_axis,
                moving_average(ours["losses"]),
                color=c,
                label=f"{label} (minireg)",
                **style,
            )
            val_ax.semilogy(
                eval_steps,
                ours["val_losses"],
                color=c,
                marker="o",
                ms=3,
                label=f"{label} (minireg)",
                **style,
            )
            if theirs is not None:
                train_ax.semilogy(steps_axis, moving_average(theirs["losses"]), color="k", **TORCH)
                val_ax.semilogy(eval_steps, theirs["val_losses"], color="k", **TORCH)
                result.add_gap(ours["lockstep"].max())
                lock_ax.semilogy(
                    steps_axis,
                    floor_for_log(ours["lockstep"]),
                    color=c,
                    lw=1.0,
                    label=f"{label} (max {ours['lockstep'].max():.0e})",
                )
                if batchnorm:
                    nudged = train(batchnorm, lr, steps, "torch", eval_every, perturb=True)
                    chaos_ax.semilogy(
                        steps_axis,
                        floor_for_log(np.abs(ours["losses"] - theirs["losses"])),
                        color=c,
                        label=f"{label}: minireg vs torch",
                    )
                    chaos_ax.semilogy(
                        steps_axis,
                        floor_for_log(np.abs(nudged["losses"] - theirs["losses"])),
                        color=c,
                        ls=":",
                        lw=1.6,
                        label=f"{label}: torch vs torch (1 ulp)",
                    )
            if lr < 0.1:
                ax = hist_bn_ax if batchnorm else hist_ax
                ax.hist(ours["pre"].ravel(), bins=bins, color=c, alpha=0.6, label="minireg")
                if theirs is not None:
                    ax.hist(
                        theirs["pre"].ravel(),
                        bins=bins,
                        histtype="step",
                        color="k",
                        ls="--",
                        label="torch",
                    )
                pre = ours["pre"]
                ax.set_title(
                    f"{'with' if batchnorm else 'without'} BatchNorm: inputs of the last ReLU\n"
                    f"(lr 0.05, mean {pre.mean():.2f}, std {pre.std():.2f})",
                    fontsize=9,
                )
                ax.set_xlabel("pre-activation value (validation set, eval mode)")
                ax.set_ylabel("count")
                ax.legend(loc="upper right")
        for ax, what in (
            (train_ax, "training loss (moving average, 20 steps)"),
            (val_ax, "validation loss (eval mode)"),
        ):
            ax.set_title(what)
            ax.set_xlabel("step")
            ax.set_ylabel("cross-entropy")
            ax.legend(loc="lower left", fontsize=7)
        chaos_ax.set_title(
            "independent runs: |Δ training loss|\n(training amplifies 1-ulp differences)",
            fontsize=9,
        )
        lock_ax.set_title(
            "lockstep: torch re-synced to minireg before each step\n"
            "max |Δ| over loss, weights, buffers",
            fontsize=9,
        )
        for ax in (chaos_ax, lock_ax):
            ax.set_xlabel("step")
            ax.set_ylabel("|Δ| (0 drawn at 1e-18)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="lower right" if ax is chaos_ax else "upper left", fontsize=6.5)
        if torch is None:
            for ax in (chaos_ax, lock_ax):
                ax.text(0.5, 0.5, "torch not installed", transform=ax.transAxes, ha="center")
        gap = gap_clause(result, "worst one-step |minireg − torch|")
        finish(
            fig,
            result,
            out_dir,
            f"BatchNorm: MLP {'→'.join(map(str, SIZES))} (ReLU, float64) on badly scaled spirals, "
            f"SGD, batch {BATCH}, {steps} steps{gap}",
            "Technique: batch normalisation (Ioffe & Szegedy 2015), "
            "train mode = batch statistics, "
            f"eval mode = running statistics; {torch_note(torch)} (black).",
        )
    return result
