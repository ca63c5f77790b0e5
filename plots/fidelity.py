"""The agreement dashboard: every minireg kernel against torch, in float32 and float64.

Each row runs one kernel (or one option family) over a fixed, seeded battery of inputs on
both sides and collects every output pair (parameters after each of 20 optimizer steps,
clipped gradients and total norms, norm outputs and gradients, ...).  A cell shows the
worst error over the battery:

* in ULPs of the reference: ``max |minireg − torch|`` over an output, divided by the
  ULP (gap between adjacent floats of the cell's dtype) of that output's largest torch
  value -- the norm-wise error, in units of the output's own rounding;
* as an element-wise relative error, ``|minireg − torch| / |torch|``, where values
  smaller than 1e-3 of the output's largest are measured as if they were that large (a
  parameter that cancels to about zero after 20 steps carries the absolute rounding of
  its larger past values, which is no relative error of the kernel).

Rows whose minireg implementation cannot be imported show "n/a"; a row that raises shows
"error" (the CLI lists the exception).  The same numbers are written beside the PNG as
``fidelity.json``, which the documentation's study pages read.

What each row compares:

* optimizers: 20 steps on three parameters ``(10, 5), (10,), (7,)`` with seeded random
  gradients; every parameter after every step;
* schedulers: ``SGD(lr=0.1, momentum=0.9)`` driven for 30 steps; the lr and every
  parameter after every step (so the float32 column shows the lr meeting float32 data);
* clipping: clipped gradients and the returned total norm, for gradients above and below
  ``max_norm``;
* norms: ``torch.nn.functional`` forward and autograd backward against minireg's
  forward and ``*_backward`` kernels (running statistics included);
* dropout: torch's mask (read off its output on an all-non-zero input) is handed to
  ``dropout_with_mask`` / ``dropout_backward``;
* init: torch draws the uniform/normal numbers (``uniform_(0, 1)`` / ``normal_(0, 1)``
  with a seeded generator) and minireg gets the same numbers through a stand-in
  generator, so what is compared is the deterministic part: bounds, standard
  deviations, the QR and sign fix of ``orthogonal_``, gains and fans.

Reading the cells: a few ULPs is rounding (torch fuses multiply-adds and its CPU sqrt is
not correctly rounded; see TORCH_NOTES §0).  The largest float64 cell, ``group_norm``
backward, comes from a ``(3, 6)`` input with two values per group, where the gradient
cancels heavily: there torch's float64 result is ~2e-12 from the exact (long-double)
answer and minireg's ~1e-14, so that cell measures torch's rounding, not minireg's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from plots._models import torch_dtype
from plots._style import (
    FigureResult,
    MissingDependency,
    NeedsTorch,
    finish,
    optional_torch,
    plt,
    require,
    timed,
)

__all__ = ["KERNELS", "draw", "measure", "ulp_error", "write_json"]

DTYPES = (np.float32, np.float64)
# The tests hold the dashboard to these worst element-wise relative errors per dtype.
# float64: the reference tests' 1e-10.  float32: the reference tests allow 1e-5 relative
# plus 1e-6 absolute; as a pure relative bound (values down to 1e-3 of an output's
# largest count at that level) the same budget is 1e-6/1e-3 = 1e-3; 3e-4 is used.  The
# float32 worst is orthogonal_'s QR (7e-5: LAPACK's Householder order vs torch's).
TOLERANCES = {"float32": 3e-4, "float64": 1e-10}
Pairs = list[tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------- metric
def ulp_error(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """``(ULPs, worst relative error)`` of ``ours`` against reference ``theirs``.

    ULPs: ``max|Δ|`` in units of the last place of the largest reference value (a
    norm-wise measure: what a rounding error of the output's scale looks like).
    Relative: ``max |Δ| / |torch|`` element-wise, with values below 1e-3 of the largest
    measured at that level, so that a result cancelling to ~0 is not infinitely off.
    """
    ref = np.asarray(theirs)
    dtype = ref.dtype if np.issubdtype(ref.dtype, np.floating) else np.dtype(np.float64)
    a = np.asarray(ours, dtype=np.float64)
    b = ref.astype(np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf, math.inf
    finite = np.isfinite(b)
    a, b = a[finite], b[finite]
    if b.size == 0:
        return 0.0, 0.0
    largest = float(np.max(np.abs(b)))
    diff = np.abs(a - b)
    ulp = float(np.spacing(dtype.type(max(largest, float(np.finfo(dtype).tiny)))))
    scale = np.maximum(np.maximum(np.abs(b), 1e-3 * largest), np.finfo(dtype).tiny)
    return float(np.max(diff)) / ulp, float(np.max(diff / scale))


def measure(pairs: Pairs) -> tuple[float, float]:
    """Worst ``(ULPs, relative error)`` over a list of ``(minireg, torch)`` pairs."""
    worst_ulp, worst_rel = 0.0, 0.0
    for ours, theirs in pairs:
        ulp, rel = ulp_error(ours, theirs)
        worst_ulp, worst_rel = max(worst_ulp, ulp), max(worst_rel, rel)
    return worst_ulp, worst_rel


def _np(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


# ---------------------------------------------------------------------------- optimizers
OPTIMIZER_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("SGD", "SGD", {"lr": 0.1}),
    ("SGD momentum, dampening", "SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
    ("SGD Nesterov, weight decay", "SGD",
     {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD maximize", "SGD", {"lr": 0.1, "maximize": True, "weight_decay": 0.01}),
    ("Adagrad", "Adagrad", {"lr": 0.1}),
    ("Adagrad lr_decay, wd, init. acc.", "Adagrad",
     {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("Adadelta", "Adadelta", {}),
    ("Adadelta rho, weight decay", "Adadelta", {"lr": 0.5, "rho": 0.95, "weight_decay": 0.01}),
    ("RMSprop", "RMSprop", {"lr": 0.01}),
    ("RMSprop centered, momentum", "RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9}),
    ("RMSprop alpha, weight decay", "RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.01}),
    ("Adam", "Adam", {"lr": 0.01}),
    ("Adam amsgrad", "Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam L2 weight decay, maximize", "Adam",
     {"lr": 0.01, "weight_decay": 0.01, "maximize": True}),
    ("AdamW", "AdamW", {"lr": 0.01}),
    ("AdamW amsgrad", "AdamW", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("NAdam", "NAdam", {"lr": 0.01}),
    ("NAdam decoupled weight decay", "NAdam",
     {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True}),
    ("RAdam", "RAdam", {"lr": 0.01}),
    ("RAdam decoupled weight decay", "RAdam",
     {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True}),
]  # fmt: skip

SHAPES = [(10, 5), (10,), (7,)]


def _twins(torch: ModuleType, dtype: Any, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    import minireg

    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return [minireg.Parameter(a.copy()) for a in arrays], [
        torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays
    ]


def _set_grads(
    ours: list[Any], theirs: list[Any], rng: np.random.Generator, dtype: Any, torch: ModuleType
) -> None:
    for p, q in zip(ours, theirs, strict=True):
        g = rng.standard_normal(p.shape).astype(dtype)
        p.grad = g.copy()
        q.grad = torch.from_numpy(g.copy())


def _optimizer_case(class_name: str, kwargs: dict[str, Any]) -> Callable[[ModuleType, Any], Pairs]:
    def run(torch: ModuleType, dtype: Any) -> Pairs:
        rng = np.random.default_rng(0)
        ours, theirs = _twins(torch, dtype, rng)
        opt = require(f"minireg.optim.{class_name}")(ours, **kwargs)
        ref = getattr(torch.optim, class_name)(theirs, **kwargs)
        pairs: Pairs = []
        for _ in range(20):
            _set_grads(ours, theirs, rng, dtype, torch)
            opt.step()
            ref.step()
            pairs += [(p.data.copy(), _np(q)) for p, q in zip(ours, theirs, strict=True)]
        return pairs

    return run


# ---------------------------------------------------------------------------- schedulers
SCHEDULER_CASES: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("LambdaLR", lambda m, o: m.LambdaLR(o, lambda e: 0.95**e)),
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda e: 0.97)),
    ("StepLR", lambda m, o: m.StepLR(o, step_size=7, gamma=0.5)),
    ("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.5)),
    ("ConstantLR", lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6)),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=12)),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.9)),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, total_iters=25, power=2.0)),
    ("CosineAnnealingLR", lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    ("CosineAnnealingWarmRestarts", lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=4, T_mult=2, eta_min=1e-3)),
    ("OneCycleLR", lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=31)),
    ("OneCycleLR three-phase linear", lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, total_steps=31, anneal_strategy="linear", three_phase=True)),
    ("CyclicLR triangular2", lambda m, o: m.CyclicLR(
        o, base_lr=0.01, max_lr=0.2, step_size_up=4, mode="triangular2")),
    ("SequentialLR (warm-up → cosine)", lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5])),
    ("ChainedScheduler", lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, gamma=0.9)])),
    ("ReduceLROnPlateau", lambda m, o: m.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1)),
]  # fmt: skip


def _scheduler_case(
    factory: Callable[[Any, Any], Any], plateau: bool
) -> Callable[[ModuleType, Any], Pairs]:
    def run(torch: ModuleType, dtype: Any) -> Pairs:
        import minireg

        module = require("minireg.optim.lr_scheduler")
        rng = np.random.default_rng(1)
        ours, theirs = _twins(torch, dtype, rng)
        opt = minireg.optim.SGD(ours, lr=0.1, momentum=0.9)
        ref = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
        schedule, ref_schedule = factory(module, opt), factory(torch.optim.lr_scheduler, ref)
        metrics = 1.0 / (1.0 + np.arange(30)) + np.where(
            np.arange(30) > 8, 0.5, 0.0
        )  # improves, then stalls
        pairs: Pairs = []
        for step in range(30):
            _set_grads(ours, theirs, rng, dtype, torch)
            opt.step()
            ref.step()
            if plateau:
                schedule.step(float(metrics[step]))
                ref_schedule.step(float(metrics[step]))
            else:
                schedule.step()
                ref_schedule.step()
            pairs.append(
                (
                    np.array([g["lr"] for g in opt.param_groups], dtype=np.float64),
                    np.array([g["lr"] for g in ref.param_groups], dtype=np.float64),
                )
            )
            pairs += [(p.data.copy(), _np(q)) for p, q in zip(ours, theirs, strict=True)]
        return pairs

    return run


# ---------------------------------------------------------------------------- clipping
def _clip_case(kind: str, norm_type: float) -> Callable[[ModuleType, Any], Pairs]:
    def run(torch: ModuleType, dtype: Any) -> Pairs:
        import minireg

        utils = require("minireg.nn.utils")
        pairs: Pairs = []
        for seed, scale in ((2, 3.0), (3, 0.01)):  # clipping active, and not
            rng = np.random.default_rng(seed)
            ours, theirs = _twins(torch, dtype, rng)
            for p, q in zip(ours, theirs, strict=True):
                g = (scale * rng.standard_normal(p.shape)).astype(dtype)
                p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
            if kind == "norm":
                total = utils.clip_grad_norm_(ours, max_norm=1.0, norm_type=norm_type)
                ref_total = torch.nn.utils.clip_grad_norm_(
                    theirs, max_norm=1.0, norm_type=norm_type
                )
                pairs.append((np.asarray(total), _np(ref_total)))
            else:
                utils.clip_grad_value_(ours, clip_value=0.5)
                torch.nn.utils.clip_grad_value_(theirs, clip_value=0.5)
            pairs += [(p.grad.copy(), _np(q.grad)) for p, q in zip(ours, theirs, strict=True)]
        del minireg
        return pairs

    return run


# ---------------------------------------------------------------------------- norms
NORM_SHAPES: dict[str, list[tuple[int, ...]]] = {
    "batch_norm": [(16, 5), (6, 5, 7)],
    "batch_norm_eval": [(16, 5), (6, 5, 7)],
    "batch_norm_2d": [(4, 3, 5, 6)],
    "layer_norm": [(8, 6), (4, 5, 6)],
    "group_norm": [(4, 6, 5), (3, 6)],  # (3, 6): two values per group, heavy cancellation
    "instance_norm": [(4, 3, 9), (2, 3, 4, 5)],
}


def _norm_case(kind: str, part: str) -> Callable[[ModuleType, Any], Pairs]:
    """``part``: "forward" (outputs and running stats) or "backward" (input/weight/bias grads)."""

    def run(torch: ModuleType, dtype: Any) -> Pairs:
        F = require("minireg.nn.functional")
        TF = torch.nn.functional
        rng = np.random.default_rng(4)
        pairs: Pairs = []
        shapes = NORM_SHAPES[kind]
        for shape in shapes:
            x = (2.0 * rng.standard_normal(shape) + 0.5).astype(dtype)
            g = rng.standard_normal(shape).astype(dtype)
            channels = shape[1]
            if kind == "layer_norm":
                normalized = shape[1:]
                w = rng.uniform(0.5, 1.5, normalized).astype(dtype)
                b = rng.standard_normal(normalized).astype(dtype)
            else:
                w = rng.uniform(0.5, 1.5, channels).astype(dtype)
                b = rng.standard_normal(channels).astype(dtype)
            rm = rng.standard_normal(channels).astype(dtype)
            rv = rng.uniform(0.5, 2.0, channels).astype(dtype)
            tx = torch.from_numpy(x.copy()).requires_grad_(True)
            tw = torch.from_numpy(w.copy()).requires_grad_(True)
            tb = torch.from_numpy(b.copy()).requires_grad_(True)
            trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
            mrm, mrv = rm.copy(), rv.copy()
            if kind in ("batch_norm", "batch_norm_eval", "batch_norm_2d"):
                training = kind != "batch_norm_eval"
                y = F.batch_norm(x, mrm, mrv, w, b, training, 0.1, 1e-5)
                ty = TF.batch_norm(tx, trm, trv, tw, tb, training, 0.1, 1e-5)
                grads = F.batch_norm_backward(g, x, mrm, mrv, w, training, 1e-5)
                stats = [(mrm, _np(trm)), (mrv, _np(trv))]
            elif kind == "layer_norm":
                y = F.layer_norm(x, normalized, w, b, 1e-5)
                ty = TF.layer_norm(tx, normalized, tw, tb, 1e-5)
                grads = F.layer_norm_backward(g, x, normalized, w, 1e-5)
                stats = []
            elif kind == "group_norm":
                y = F.group_norm(x, 3, w, b, 1e-5)
                ty = TF.group_norm(tx, 3, tw, tb, 1e-5)
                grads = F.group_norm_backward(g, x, 3, w, 1e-5)
                stats = []
            else:
                y = F.instance_norm(x, mrm, mrv, w, b, True, 0.1, 1e-5)
                ty = TF.instance_norm(tx, trm, trv, tw, tb, True, 0.1, 1e-5)
                grads = F.instance_norm_backward(g, x, mrm, mrv, w, True, 1e-5)
                stats = [(mrm, _np(trm)), (mrv, _np(trv))]
            ty.backward(torch.from_numpy(g.copy()))
            if part == "forward":
                pairs += [(y, _np(ty)), *stats]
            else:
                pairs += list(zip(grads, (_np(tx.grad), _np(tw.grad), _np(tb.grad)), strict=True))
        return pairs

    return run


# ---------------------------------------------------------------------------- dropout
def _dropout_case(torch: ModuleType, dtype: Any) -> Pairs:
    F = require("minireg.nn.functional")
    rng = np.random.default_rng(5)
    pairs: Pairs = []
    for p, shape in ((0.3, (64, 33)), (0.5, (10, 7, 3)), (0.9, (200,))):
        x = (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        torch.manual_seed(0)
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = torch.nn.functional.dropout(tx, p=p, training=True)
        ty.backward(torch.from_numpy(g.copy()))
        mask = _np(ty) != 0  # every input is non-zero, so a zero output is a dropped unit
        pairs.append((F.dropout_with_mask(x, mask, p), _np(ty)))
        pairs.append((F.dropout_backward(g, mask, p), _np(tx.grad)))
    return pairs


# ---------------------------------------------------------------------------- init
class _SharedDraws:
    """A stand-in for ``numpy.random.Generator`` that hands out torch's draws.

    ``random`` returns the queued U[0, 1) numbers and ``standard_normal`` the queued
    N(0, 1) numbers, each reshaped and cast as requested.
    """

    def __init__(self, uniform: np.ndarray | None = None, normal: np.ndarray | None = None) -> None:
        self.uniform, self.normal = uniform, normal

    def random(self, size: Any = None, dtype: Any = np.float64) -> np.ndarray:
        assert self.uniform is not None
        return self.uniform.reshape(size).astype(dtype)

    def standard_normal(self, size: Any = None, dtype: Any = np.float64) -> np.ndarray:
        assert self.normal is not None
        return self.normal.reshape(size).astype(dtype)


INIT_SHAPES = [(30, 20), (16, 8, 3), (5, 40)]


def _init_sampled_case(
    name: str, kwargs: dict[str, Any], law: str
) -> Callable[[ModuleType, Any], Pairs]:
    def run(torch: ModuleType, dtype: Any) -> Pairs:
        init = require("minireg.nn.init")
        tdtype = torch_dtype(torch, dtype)
        pairs: Pairs = []
        for seed, shape in enumerate(INIT_SHAPES):
            if name == "orthogonal_":
                rows = shape[0]
                raw_shape: tuple[int, ...] = (rows, int(np.prod(shape)) // rows)
            else:
                raw_shape = shape
            raw = torch.empty(raw_shape, dtype=tdtype)
            gen = torch.Generator().manual_seed(seed)
            raw = (
                raw.uniform_(0.0, 1.0, generator=gen)
                if law == "uniform"
                else raw.normal_(0.0, 1.0, generator=gen)
            )
            theirs = getattr(torch.nn.init, name)(
                torch.empty(shape, dtype=tdtype),
                **kwargs,
                generator=torch.Generator().manual_seed(seed),
            )
            draws = _SharedDraws(**{law if law == "uniform" else "normal": _np(raw)})
            ours = getattr(init, name)(np.empty(shape, dtype=dtype), **kwargs, generator=draws)
            pairs.append((ours, _np(theirs)))
        return pairs

    return run


def _init_exact_case(torch: ModuleType, dtype: Any) -> Pairs:
    init = require("minireg.nn.init")
    pairs: Pairs = []
    for nonlinearity, param in [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
        ("conv2d", None),
    ]:
        pairs.append(
            (
                np.array(init.calculate_gain(nonlinearity, param), dtype=dtype),
                np.array(torch.nn.init.calculate_gain(nonlinearity, param), dtype=dtype),
            )
        )
    for shape in [(3, 4), (6, 2, 3, 3), (5, 7, 2)]:
        pairs.append(
            (
                np.array(init.calculate_fan_in_and_fan_out(np.empty(shape, dtype)), dtype=dtype),
                np.array(
                    torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape)), dtype=dtype
                ),
            )
        )
    tdtype = torch_dtype(torch, dtype)
    pairs.append(
        (
            init.eye_(np.empty((4, 6), dtype)),
            _np(torch.nn.init.eye_(torch.empty(4, 6, dtype=tdtype))),
        )
    )
    pairs.append(
        (
            init.dirac_(np.empty((6, 3, 3, 3), dtype), groups=2),
            _np(torch.nn.init.dirac_(torch.empty(6, 3, 3, 3, dtype=tdtype), groups=2)),
        )
    )
    pairs.append(
        (
            init.constant_(np.empty((3, 3), dtype), 0.3),
            _np(torch.nn.init.constant_(torch.empty(3, 3, dtype=tdtype), 0.3)),
        )
    )
    return pairs


# ---------------------------------------------------------------------------- the battery
KERNELS: list[tuple[str, str, Callable[[ModuleType, Any], Pairs]]] = [
    *[("optimizers", label, _optimizer_case(name, kwargs))
      for label, name, kwargs in OPTIMIZER_CASES],
    *[("schedulers", label, _scheduler_case(factory, label == "ReduceLROnPlateau"))
      for label, factory in SCHEDULER_CASES],
    ("clipping", "clip_grad_norm_ (p=2)", _clip_case("norm", 2.0)),
    ("clipping", "clip_grad_norm_ (p=1)", _clip_case("norm", 1.0)),
    ("clipping", "clip_grad_norm_ (p=inf)", _clip_case("norm", math.inf)),
    ("clipping", "clip_grad_value_", _clip_case("value", 2.0)),
    ("norms", "batch_norm train, forward + running stats", _norm_case("batch_norm", "forward")),
    ("norms", "batch_norm train, backward", _norm_case("batch_norm", "backward")),
    ("norms", "batch_norm eval, forward", _norm_case("batch_norm_eval", "forward")),
    ("norms", "batch_norm eval, backward", _norm_case("batch_norm_eval", "backward")),
    ("norms", "batch_norm 2-D, forward", _norm_case("batch_norm_2d", "forward")),
    ("norms", "batch_norm 2-D, backward", _norm_case("batch_norm_2d", "backward")),
    ("norms", "layer_norm, forward", _norm_case("layer_norm", "forward")),
    ("norms", "layer_norm, backward", _norm_case("layer_norm", "backward")),
    ("norms", "group_norm, forward", _norm_case("group_norm", "forward")),
    ("norms", "group_norm, backward", _norm_case("group_norm", "backward")),
    ("norms", "instance_norm, forward + running stats", _norm_case("instance_norm", "forward")),
    ("norms", "instance_norm, backward", _norm_case("instance_norm", "backward")),
    ("dropout", "dropout, shared mask, fwd + bwd", _dropout_case),
    ("init", "gains, fans, eye_, dirac_, constant_", _init_exact_case),
    ("init", "uniform_(-0.3, 0.7), shared draws",
     _init_sampled_case("uniform_", {"a": -0.3, "b": 0.7}, "uniform")),
    ("init", "xavier_uniform_(gain=2), shared draws",
     _init_sampled_case("xavier_uniform_", {"gain": 2.0}, "uniform")),
    ("init", "kaiming_uniform_(a=√5), shared draws",
     _init_sampled_case("kaiming_uniform_", {"a": math.sqrt(5)}, "uniform")),
    ("init", "normal_(0.5, 2), shared draws",
     _init_sampled_case("normal_", {"mean": 0.5, "std": 2.0}, "normal")),
    ("init", "xavier_normal_, shared draws", _init_sampled_case("xavier_normal_", {}, "normal")),
    ("init", "kaiming_normal_(fan_out, relu), shared draws",
     _init_sampled_case("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, "normal")),
    ("init", "orthogonal_(gain=1.5), shared draws",
     _init_sampled_case("orthogonal_", {"gain": 1.5}, "normal")),
]  # fmt: skip


def run_battery(torch: ModuleType) -> list[dict[str, Any]]:
    """One row per kernel: family, label, and per dtype ``(ulp, rel)`` or a status string."""
    import warnings

    rows = []
    for family, label, case in KERNELS:
        row: dict[str, Any] = {"family": family, "label": label}
        for dtype in DTYPES:
            name = np.dtype(dtype).name
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # e.g. torch's scheduler-order notices
                    row[name] = measure(case(torch, dtype))
            except MissingDependency as exc:
                row[name] = "n/a"
                row["note"] = str(exc)
            except Exception as exc:  # noqa: BLE001 -- a broken kernel must show up, not stop the dashboard
                row[name] = "error"
                row["note"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """The heatmap (kernel × dtype) with the worst ULPs and relative error in each cell."""
    result = FigureResult("fidelity")
    with timed(result):
        torch = optional_torch()
        if torch is None:
            raise NeedsTorch("the fidelity dashboard compares with torch, which is not installed")
        rows = run_battery(torch)  # all of it even when quick: it takes about two seconds
        halves = [rows[: (len(rows) + 1) // 2], rows[(len(rows) + 1) // 2 :]]
        height = max(4.0, 0.3 * len(halves[0]) + 1.6)
        fig, axes = plt.subplots(1, 2, figsize=(15, height))
        fig.subplots_adjust(
            left=0.19, right=0.93, top=1 - 0.9 / height, bottom=0.75 / height, wspace=1.0
        )
        cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="0.8")
        for ax, part in zip(axes, halves, strict=True):
            values = np.full((len(part), len(DTYPES)), np.nan)
            for i, row in enumerate(part):
                for j, dtype in enumerate(DTYPES):
                    cell = row[np.dtype(dtype).name]
                    if isinstance(cell, tuple):
                        values[i, j] = np.log10(1.0 + cell[0])
                        ax.text(
                            j,
                            i,
                            f"{_fmt_ulp(cell[0])} ulp\n{cell[1]:.1e}",
                            ha="center",
                            va="center",
                            fontsize=6.8,
                        )
                    else:
                        ax.text(
                            j,
                            i,
                            cell,
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="crimson" if cell == "error" else "k",
                        )
            image = ax.imshow(
                np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=4, aspect="auto"
            )
            ax.set_xticks(range(len(DTYPES)), [np.dtype(d).name for d in DTYPES])
            ax.xaxis.tick_top()
            ax.set_yticks(
                range(len(part)),
                [f"{row['label']}  [{row['family']}]" for row in part],
                fontsize=7.5,
            )
            ax.grid(False)
            ax.set_xlabel(
                "worst: ULPs of the output's largest torch value / element-wise relative error",
                fontsize=8,
            )
        cbar = fig.colorbar(image, cax=fig.add_axes((0.945, 0.3, 0.01, 0.4)))
        cbar.set_label("log10(1 + ULPs)")
        for name in ("float32", "float64"):
            cells = [row[name] for row in rows if isinstance(row[name], tuple)]
            worst = max((cell[1] for cell in cells), default=0.0)
            result.data[f"worst relative error {name}"] = worst
            result.data[f"worst ulp {name}"] = max((cell[0] for cell in cells), default=0.0)
        result.gap = max(
            result.data["worst relative error float32"], result.data["worst relative error float64"]
        )
        result.tolerance = TOLERANCES["float32"]
        missing = [
            row for row in rows if any(row[np.dtype(d).name] in ("n/a", "error") for d in DTYPES)
        ]
        result.notes += [f"{row['label']}: {row.get('note', '')}" for row in missing]
        result.data["rows"] = rows
        write_json(rows, torch, out_dir / "fidelity.json")
        finish(
            fig,
            result,
            out_dir,
            f"Fidelity: minireg against torch {torch.__version__.split('+')[0]} (CPU), "
            f"{len(rows)} kernels; "
            f"worst relative error float32 {result.data['worst relative error float32']:.1e}, "
            f"float64 {result.data['worst relative error float64']:.1e}",
            "Technique: every kernel of minireg (optimizers, schedulers, clipping, norms, dropout, "
            "init) checked number by number against torch; method in plots/fidelity.py.\n"
            "group_norm backward: on a (3, 6) input (two values per group) torch's float64 "
            "gradient is "
            "~2e-12 from the exact answer and minireg's ~1e-14 -- that cell is torch's rounding.",
            caption_y=0.003,
        )
    return result


def write_json(rows: list[dict[str, Any]], torch: ModuleType, path: Path) -> None:
    """The battery's numbers, as drawn in the figure, for the documentation to read.

    One entry per row: ``family``, ``label`` and, per dtype, ``{"ulp": .., "rel": ..}``
    or the status string ("n/a", "error").  No timestamp, so an unchanged measurement
    rewrites the same file.
    """
    import json

    def number(x: float) -> float | str:
        return x if math.isfinite(x) else str(x)  # "inf": outputs that do not even match in shape

    def cell(value: Any) -> Any:
        if isinstance(value, tuple):
            return {"ulp": number(value[0]), "rel": number(value[1])}
        return value

    document = {
        "about": "worst error of each minireg kernel against torch over the fixed battery "
        "in plots/fidelity.py; ulp: max |minireg - torch| in ULPs of the output's largest "
        "torch value; rel: element-wise relative error (values below 1e-3 of the largest "
        "measured at that level)",
        "torch": torch.__version__.split("+")[0],
        "numpy": np.__version__,
        "tolerances": TOLERANCES,
        "rows": [
            {"family": row["family"], "label": row["label"]}
            | {np.dtype(d).name: cell(row[np.dtype(d).name]) for d in DTYPES}
            for row in rows
        ],
    }
    rows_text = ",\n".join("  " + json.dumps(row, allow_nan=False) for row in document.pop("rows"))
    head = json.dumps(document, indent=1, allow_nan=False)[:-2]  # without the closing "\n}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{head},\n "rows": [\n{rows_text}\n ]\n}}\n')  # one row a line


def _fmt_ulp(value: float) -> str:
    if value == 0:
        return "0"
    if value < 10:
        return f"{value:.2g}"
    return f"{value:.3g}" if value < 1e4 else f"{value:.1e}"
