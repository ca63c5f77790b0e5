"""How initialisation shapes signals through depth: 10-layer tanh and ReLU networks.

Each net is ten ``Linear(128, 128)`` layers, each followed by the activation, fed a batch
of 256 standard-normal inputs; the loss is the MSE between the last activation and a
standard-normal target.  Weights come from ``minireg.nn.init`` (biases zero) under five
schemes:

* ``constant_(W, 0.01)``: every unit identical (symmetry is never broken);
* ``normal_(W, 0, 0.01)``: "small random numbers";
* ``xavier_uniform_(W)`` (Glorot & Bengio, 2010; gain 1);
* ``kaiming_normal_(W, nonlinearity=...)`` (He et al., 2015; fan_in, gain of the activation);
* ``orthogonal_(W, gain=calculate_gain(...))`` (Saxe et al., 2014).

The heatmaps are per-layer histograms of the activations (columns: layers 1..10).  The
bottom panels are the Frobenius norm of each layer's weight gradient.  torch gets the
very same weights (``load_state_dict``) and the same batch, so the comparison checks
minireg's forward and backward passes; initialisers draw from NumPy's generator, whose
stream torch cannot reproduce.  The gap is relative, ``max|Δ| / max|torch|`` per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from plots._models import build_mlp, copy_weights
from plots._style import (
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

__all__ = ["SCHEMES", "draw", "run"]

TOLERANCE = 1e-10  # relative, float64 forward/backward through ten layers
DEPTH = 10


def _schemes(
    init: Any, activation: str
) -> dict[str, Callable[[np.ndarray, np.random.Generator], Any]]:
    nonlinearity = activation.lower()
    gain = init.calculate_gain(nonlinearity)
    return {
        "constant 0.01": lambda w, g: init.constant_(w, 0.01),
        "normal σ=0.01": lambda w, g: init.normal_(w, 0.0, 0.01, generator=g),
        "Xavier uniform": lambda w, g: init.xavier_uniform_(w, generator=g),
        "Kaiming normal": lambda w, g: init.kaiming_normal_(
            w, nonlinearity=nonlinearity, generator=g
        ),
        f"orthogonal (gain {gain:.2f})": lambda w, g: init.orthogonal_(w, gain=gain, generator=g),
    }


SCHEMES = ["constant 0.01", "normal σ=0.01", "Xavier uniform", "Kaiming normal", "orthogonal"]


def run(
    activation: str, scheme_index: int, width: int, batch: int, library: str, weights: Any = None
) -> dict[str, Any]:
    """Activations per layer and gradient norm per layer for one (activation, init) pair.

    ``library="minireg"`` initialises with minireg; ``"torch"`` copies ``weights`` (the
    minireg model) into a torch twin.
    """
    import minireg

    init = require("minireg.nn.init")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, width))
    target = rng.standard_normal((batch, width))
    sizes = [width] * (DEPTH + 1) + [width]
    if library == "minireg":
        model = build_mlp(minireg.nn, sizes, activation, dtype=np.float64)[:-1]  # drop the readout
        generator = np.random.default_rng(1 + scheme_index)
        scheme = list(_schemes(init, activation).values())[scheme_index]
        for layer in model:
            if hasattr(layer, "weight"):
                scheme(layer.weight, generator)
                init.zeros_(layer.bias)
        activations, h = [], x
        for layer in model:
            h = layer(h)
            if not hasattr(layer, "weight"):
                activations.append(h)
        loss_fn = minireg.nn.MSELoss()
        loss_fn(h, target)
        model.backward(loss_fn.backward())
        grads = [
            float(np.linalg.norm(p.grad))
            for name, p in model.named_parameters()
            if name.endswith("weight")
        ]
        return {"model": model, "activations": activations, "grad_norms": np.array(grads)}
    torch = optional_torch()
    assert torch is not None
    model = build_mlp(torch.nn, sizes, activation, dtype=torch.float64)[:-1]
    copy_weights(weights, model)
    activations, h = [], torch.from_numpy(x)
    for layer in model:
        h = layer(h)
        if not isinstance(layer, torch.nn.Linear):
            h.retain_grad()
            activations.append(h)
    torch.nn.functional.mse_loss(h, torch.from_numpy(target)).backward()
    grads = [
        float(torch.linalg.norm(p.grad))
        for name, p in model.named_parameters()
        if name.endswith("weight")
    ]
    return {"activations": [a.detach().numpy() for a in activations], "grad_norms": np.array(grads)}


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Activation heatmaps per (activation, init) and gradient norms per layer."""
    result = FigureResult("init_depth", tolerance=TOLERANCE)
    with timed(result):
        torch = optional_torch()
        init = require("minireg.nn.init")
        width, batch = (32, 64) if quick else (128, 256)
        fig = plt.figure(figsize=(16, 10))
        grid = fig.add_gridspec(
            3,
            5,
            height_ratios=[1, 1, 1.1],
            hspace=0.55,
            wspace=0.3,
            left=0.05,
            right=0.94,
            top=0.91,
            bottom=0.07,
        )
        for row, activation in enumerate(["Tanh", "ReLU"]):
            names = list(_schemes(init, activation))
            bins = np.linspace(-1, 1, 41) if activation == "Tanh" else np.linspace(0, 3, 41)
            grad_ax = fig.add_subplot(grid[2, slice(0, 2) if row == 0 else slice(2, 4)])
            for index, name in enumerate(names):
                ours = run(activation, index, width, batch, "minireg")
                ax = fig.add_subplot(grid[row, index])
                density = np.stack(
                    [
                        np.histogram(np.clip(a, bins[0], bins[-1]), bins=bins)[0] / a.size
                        for a in ours["activations"]
                    ],
                    axis=1,
                )
                image = ax.imshow(
                    np.log10(density + 1e-4),
                    origin="lower",
                    aspect="auto",
                    cmap="magma",
                    extent=(0.5, DEPTH + 0.5, bins[0], bins[-1]),
                    vmin=-4,
                    vmax=0,
                )
                stds = [a.std() for a in ours["activations"]]
                ax.set_title(
                    f"{activation}: {name}\nstd layer 1 → 10: {stds[0]:.2g} → {stds[-1]:.2g}",
                    fontsize=8.5,
                )
                ax.set_xlabel("layer")
                ax.set_ylabel("activation" + (" (clipped at 3)" if activation == "ReLU" else ""))
                ax.grid(False)
                c = color(index)
                layers = np.arange(1, DEPTH + 1)
                grad_ax.semilogy(
                    layers,
                    np.maximum(ours["grad_norms"], 1e-30),
                    color=c,
                    marker="o",
                    ms=3,
                    label=SCHEMES[index],
                    lw=1.6,
                )
                if torch is not None:
                    theirs = run(activation, index, width, batch, "torch", weights=ours["model"])
                    grad_ax.semilogy(
                        layers,
                        np.maximum(theirs["grad_norms"], 1e-30),
                        color="k",
                        ls="--",
                        lw=0.9,
                        marker="x",
                        ms=4,
                    )
                    for a, b in zip(ours["activations"], theirs["activations"], strict=True):
                        result.add_gap(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
                    result.add_gap(
                        np.max(
                            np.abs(ours["grad_norms"] - theirs["grad_norms"])
                            / np.maximum(theirs["grad_norms"], 1e-300)
                        )
                    )
            grad_ax.set_title(
                f"{activation} net: ‖∂L/∂W‖ per layer (same weights in torch)", fontsize=9
            )
            grad_ax.set_xlabel("layer")
            grad_ax.set_ylabel("gradient norm")
        from matplotlib.lines import Line2D

        handles, labels = grad_ax.get_legend_handles_labels()
        handles += [
            Line2D([], [], color="k", lw=1.6, marker="o", ms=3),
            Line2D([], [], color="k", ls="--", marker="x"),
        ]
        labels += ["minireg (solid, o)", "torch, same weights (dashed, x)"]
        legend_ax = fig.add_subplot(grid[2, 4])
        legend_ax.axis("off")
        legend_ax.legend(
            handles, labels, loc="center", fontsize=8, title="init scheme (gain of the activation)"
        )
        cbar = fig.colorbar(image, cax=fig.add_axes((0.955, 0.42, 0.007, 0.49)))
        cbar.set_label("log10 fraction of units")
        gap = gap_clause(result, "worst relative |minireg − torch|")
        finish(
            fig,
            result,
            out_dir,
            f"Initialisation and depth: {DEPTH} layers of width {width}, batch {batch} (float64); "
            f"heatmaps = per-layer activation histograms{gap}",
            "Technique: weight initialisation (constant, small normal, Xavier/Glorot, Kaiming/He, "
            f"orthogonal); {torch_note(torch)} (torch runs the same weights).",
        )
    return result
