"""The minireg gallery: figures that show each technique, minireg and torch side by side.

``python -m plots`` draws every figure in :data:`FIGURES` into ``figures/``; see
``python -m plots --help``.  The figures in :data:`OPT_IN` (benchmarks: slow, and their
numbers depend on the machine) are drawn only when named, e.g. ``python -m plots speed``.
Each figure is a function ``draw(out_dir, quick=False) -> FigureResult`` in its own module,
registered here by name with a one-line description.  Figure modules are imported only
when drawn, so one figure's missing dependency never stops the others.
"""

from __future__ import annotations

__all__ = ["FIGURES", "GROUPS", "OPT_IN", "resolve_names"]

# name -> (module, function, one-line description), in drawing order.
FIGURES: dict[str, tuple[str, str, str]] = {
    "trajectories_quadratic": (
        "plots.trajectories", "draw_quadratic",
        "every optimizer on the ill-conditioned quadratic 0.1x²+2y², minireg vs torch paths",
    ),
    "trajectories_rosenbrock": (
        "plots.trajectories", "draw_rosenbrock",
        "every optimizer on Rosenbrock from (-2, 2), minireg vs torch paths",
    ),
    "trajectories_rastrigin": (
        "plots.trajectories", "draw_rastrigin",
        "every optimizer on Rastrigin from (-2, 3.5), minireg vs torch paths",
    ),
    "trajectories_overlay": (
        "plots.trajectories", "draw_overlay",
        "all optimizers overlaid on each of the three surfaces",
    ),
    "mlp_regression": (
        "plots.mlp_regression", "draw",
        "MLP 1-64-64-1 on a noisy 1-D function: SGD vs momentum vs Adam, fits and loss curves",
    ),
    "lr_schedules": (
        "plots.lr_schedules", "draw",
        "StepLR, cosine, warm restarts, OneCycle, warm-up+cosine, ReduceLROnPlateau",
    ),
    "init_depth": (
        "plots.init_depth", "draw",
        "10-layer tanh/ReLU nets: activations and gradient norms per layer under each init",
    ),
    "batchnorm": (
        "plots.batchnorm", "draw",
        "the same MLP with and without BatchNorm (and at a high lr): losses, pre-activations",
    ),
    "regularization": (
        "plots.regularization", "draw",
        "L1 vs L2 vs elastic net weights, dropout on a wide net, early stopping",
    ),
    "clipping": (
        "plots.clipping", "draw",
        "gradient norm and loss with and without clip_grad_norm_ at a too-high lr",
    ),
    "activations": (
        "plots.activations", "draw",
        "gradient norm per layer at depth 10-20 for sigmoid/tanh/ReLU/LeakyReLU; dead ReLU units",
    ),
    "symmetry": (
        "plots.symmetry", "draw",
        "zero and constant vs random vs too-large init: spread between hidden units, loss",
    ),
    "norm_batch_size": (
        "plots.norm_batch_size", "draw",
        "BatchNorm vs LayerNorm vs GroupNorm vs none at batch sizes 2, 4, 16, 64",
    ),
    "batch_size": (
        "plots.batch_size", "draw",
        "small vs large batch at equal epochs: train/validation gap, loss along random directions",
    ),
    "label_smoothing_mixup": (
        "plots.label_smoothing_mixup", "draw",
        "plain cross-entropy vs label smoothing 0.1 vs mixup: reliability, confidence, val NLL",
    ),
    "bagging": (
        "plots.bagging", "draw",
        "bootstrap ensemble of MLPs vs one: prediction variance, ensemble and out-of-bag error, "
        "vote",
    ),
    "cross_validation": (
        "plots.cross_validation", "draw",
        "5-fold CV (mean ± std over folds) choosing Adam's weight decay, against the test error",
    ),
    "noise_robustness": (
        "plots.noise_robustness", "draw",
        "gaussian input noise and rotation augmentation vs none on 16 points: boundary, robustness",
    ),
    "fidelity": (
        "plots.fidelity", "draw",
        "agreement dashboard: worst error vs torch per kernel, float32/float64, in ULPs",
    ),
}  # fmt: skip

# Opt-in figures: same layout as FIGURES, drawn only when named (never by a bare run).
OPT_IN: dict[str, tuple[str, str, str]] = {
    "speed": (
        "plots.speed", "draw",
        "benchmark: minireg vs torch default/foreach/fused step times, clipping, norms, dropout",
    ),
}  # fmt: skip

# Family names that stand for several figures on the command line.
GROUPS: dict[str, list[str]] = {
    "trajectories": [name for name in FIGURES if name.startswith("trajectories_")],
}


def resolve_names(names: list[str]) -> tuple[list[str], list[str]]:
    """Expand group names; returns ``(figure names in drawing order, unknown names)``.

    Opt-in figures are accepted by name and drawn after the default ones.
    """
    wanted: set[str] = set()
    unknown: list[str] = []
    for name in names:
        if name in FIGURES or name in OPT_IN:
            wanted.add(name)
        elif name in GROUPS:
            wanted.update(GROUPS[name])
        else:
            unknown.append(name)
    return [name for name in [*FIGURES, *OPT_IN] if name in wanted], unknown
