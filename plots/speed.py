"""How fast minireg is next to torch on the CPU: the measuring tool of the speed work.

An opt-in figure: ``python -m plots speed`` draws it, ``python -m plots`` does not.  Every
benchmark runs minireg and torch in this one process, float32 throughout:

* optimizer steps -- Adam, AdamW, SGD(momentum=0.9), RMSprop and Adagrad on one tensor of
  1e5, 1e6 and 1e7 elements and on 1000 tensors of 1e4 elements; minireg against torch's
  default (a for-loop over the tensors on the CPU), ``foreach=True`` and, where torch
  has it on the CPU (SGD, Adam, AdamW, Adagrad), ``fused=True``.  For the 1000 tensors
  minireg runs twice: separate arrays ("minireg") and the same tensors held in one flat
  buffer by ``minireg.nn.utils.flatten_parameters`` ("minireg flat"); the flat step is
  also compared with the single 1e7-element step (``data["flat_over_single"]``);
* the peak memory allocated during one Adam step on the largest single tensor
  (``tracemalloc``, untimed), against params + grads + state;
* ``clip_grad_norm_`` over 1000 × 1e4 gradients, separate and flat (torch's default is
  its foreach path on the CPU), each call with a max_norm 0.999 times the last one so that
  it always scales, and the relative error of the total norm each side returns against a
  float64 reference;
* BatchNorm2d on (32, 64, 56, 56) and BatchNorm1d on (1024, 4096), training mode,
  forward + backward: minireg's module forward and ``backward(grad)``, torch's forward
  and autograd backward of a random upstream gradient (the input gradient included);
* Dropout(p=0.5) forward + backward on 1e7 elements.

How it measures: each side is warmed up, then calibrated to repeat its call often enough
that one timing is at least :data:`TARGET_SECONDS` long; then :data:`ROUNDS` rounds (fewer,
but at least 15, for the 1e7-element cases) time every side once, in an order that is
reversed every other round so that neither side always runs first (caches, turbo, a busy
neighbour), each timing right after one untimed call of the same side (torch's OpenMP
threads spin for milliseconds after a call and would slow whatever runs next).  The
result is the median per-call time over the rounds, and the spread is
the interquartile range over the median.  The garbage collector is off while timing.

Threads: ``python -m plots`` gives torch's intra-op work and minireg's optimizer steps
(``minireg.set_num_threads``) the same ``--threads`` (default 1; ``--threads 2`` uses both
cores of the dev machine), and BLAS, through ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``,
one thread.  minireg's gradient clipping shares large scalings and a flat buffer's norms
among its threads too; its normalisation layers and dropout run in the calling thread.
The printout and ``data["environment"]`` say what was in force: the thread counts,
NumPy's BLAS and its CPU kernel, ``OPENBLAS_CORETYPE`` and the load average before and
after (another process on the 2 cores skews everything).

The printed table is a Markdown table of median milliseconds and the ratios
``minireg / torch`` (default) and ``minireg / torch fused``: above 1, minireg is slower.
Where a flat-buffer time exists, the ratios use it.  ``--json`` writes the same numbers
(``data["benchmarks"]``).
"""

from __future__ import annotations

import ctypes
import gc
import glob
import math
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

import minireg
from plots._style import (
    FigureResult,
    NeedsTorch,
    color,
    finish,
    legend_outside,
    optional_torch,
    plt,
    require,
    timed,
)

__all__ = ["Benchmark", "draw", "environment", "markdown_table", "measure"]

VARIANTS = ("minireg", "minireg flat", "torch", "torch foreach", "torch fused")
STYLE: dict[str, dict[str, Any]] = {
    "minireg": {"color": color(0), "linestyle": "-", "linewidth": 1.8, "marker": "o"},
    "minireg flat": {"color": color(4), "linestyle": "-", "linewidth": 1.8, "marker": "D"},
    "torch": {"color": color(1), "linestyle": "--", "linewidth": 1.3, "marker": "o"},
    "torch foreach": {"color": color(2), "linestyle": "--", "linewidth": 1.3, "marker": "^"},
    "torch fused": {"color": color(3), "linestyle": ":", "linewidth": 1.5, "marker": "s"},
}

# name -> keyword arguments (the same on both sides).  torch 2.13 has fused=True on the
# CPU for SGD, Adam, AdamW and Adagrad; RMSprop's fused is tried anyway and left out if
# torch refuses it.
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "Adam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3},
    "SGD": {"lr": 1e-3, "momentum": 0.9},
    "RMSprop": {"lr": 1e-3},
    "Adagrad": {"lr": 1e-3},
}

ROUNDS = 31  # rounds per benchmark ...
ROUNDS_LARGE = 21  # ... and for those of 1e7 elements or more (≥ 15 either way)
LARGE = 10**7
WARMUP = 2  # untimed calls per side before calibrating
TARGET_SECONDS = 0.02  # one timing repeats a call until it lasts at least this long
MAX_REPEATS = 1000
ENVIRONMENT_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


@dataclass
class Scale:
    """The sizes of one run (full, or ``--quick``)."""

    sizes: tuple[int, ...]  # one tensor of each size, per optimizer
    many: tuple[int, int]  # (tensors, elements each) for the many-tensor optimizer case
    clip: tuple[int, int]  # (tensors, elements each) for clip_grad_norm_
    bn2d: tuple[int, int, int, int]
    bn1d: tuple[int, int]
    dropout: int
    rounds: int
    rounds_large: int
    warmup: int
    target: float


FULL = Scale(
    sizes=(10**5, 10**6, 10**7),
    many=(1000, 10**4),
    clip=(1000, 10**4),
    bn2d=(32, 64, 56, 56),
    bn1d=(1024, 4096),
    dropout=10**7,
    rounds=ROUNDS,
    rounds_large=ROUNDS_LARGE,
    warmup=WARMUP,
    target=TARGET_SECONDS,
)
QUICK = Scale(
    sizes=(10**3, 10**4),
    many=(10, 10**3),
    clip=(10, 10**3),
    bn2d=(4, 8, 8, 8),
    bn1d=(64, 32),
    dropout=10**4,
    rounds=3,
    rounds_large=3,
    warmup=1,
    target=0.0,
)


@dataclass
class Benchmark:
    """One benchmark: a call per side, and what ``measure`` found."""

    name: str
    family: str  # "optimizer" or the kernel's own name
    elements: int
    tensors: int = 1
    optimizer: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # median per call
    spread: dict[str, float] = field(default_factory=dict)  # IQR / median
    repeats: dict[str, int] = field(default_factory=dict)  # calls per timing
    rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def ours(self) -> float | None:
        """minireg's time: with flat buffers where that was measured, else the plain one."""
        return self.seconds.get("minireg flat", self.seconds.get("minireg"))

    def ratio(self, variant: str) -> float | None:
        """``minireg / variant`` of the median times (``None`` where torch has no such path).

        minireg's side is :meth:`ours`: the flat-buffer time where there is one.
        """
        ours = self.ours()
        if variant not in self.seconds or ours is None:
            return None
        return ours / self.seconds[variant]

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "optimizer": self.optimizer,
            "elements": self.elements,
            "tensors": self.tensors,
            "rounds": self.rounds,
            "seconds": self.seconds,
            "spread": self.spread,
            "repeats": self.repeats,
            "ratios": {
                f"minireg/{variant}": self.ratio(variant)
                for variant in ("torch", "torch fused")
                if self.ratio(variant) is not None
            },
            **self.extra,
        }


# ------------------------------------------------------------------------------ timing
def measure(
    calls: dict[str, Callable[[], Any]], rounds: int, warmup: int, target: float
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Median seconds per call of each side, interleaved: ``(medians, spreads, repeats)``.

    After ``warmup`` untimed calls each side is calibrated: one timing repeats the call
    ``ceil(target / one call)`` times.  Then every round times each side once, the order
    reversed every other round, and each timing follows one untimed call of the same
    side.  That lead-in keeps one side from paying for the other: torch's OpenMP threads
    spin for several milliseconds after a parallel region (libgomp's wait policy) and
    take the second core from whatever runs next -- minireg's two-thread SGD step on
    1e7 elements measured 9.9 ms straight after a torch call and 7.7 ms after 10 ms of
    other work.  Each side is timed in its own steady state, as in a loop of its calls.
    """
    names = list(calls)
    repeats: dict[str, int] = {}
    for name in names:
        for _ in range(warmup):
            calls[name]()
        began = time.perf_counter()
        calls[name]()
        once = time.perf_counter() - began
        repeats[name] = max(1, min(MAX_REPEATS, math.ceil(target / max(once, 1e-9))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for index in range(rounds):
            for name in names if index % 2 == 0 else reversed(names):
                call, n = calls[name], repeats[name]
                call()  # the lead-in (see the docstring)
                began = time.perf_counter()
                for _ in range(n):
                    call()
                samples[name].append((time.perf_counter() - began) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    medians = {name: statistics.median(samples[name]) for name in names}
    spreads: dict[str, float] = {}
    for name in names:
        if len(samples[name]) >= 4:
            q1, _, q3 = statistics.quantiles(samples[name], n=4)
            spreads[name] = (q3 - q1) / medians[name]
        else:
            spreads[name] = (max(samples[name]) - min(samples[name])) / medians[name]
    return medians, spreads, repeats


def _run(bench: Benchmark, calls: dict[str, Callable[[], Any]], scale: Scale) -> Benchmark:
    rounds = scale.rounds_large if bench.elements >= LARGE else scale.rounds
    bench.seconds, bench.spread, bench.repeats = measure(calls, rounds, scale.warmup, scale.target)
    bench.rounds = rounds
    return bench


def _label(n: int) -> str:
    """``100000 -> "1e5"`` (exact powers of ten), else the number."""
    exponent = round(math.log10(n)) if n > 0 else 0
    return f"1e{exponent}" if 10**exponent == n else str(n)


def _case(tensors: int, each: int) -> str:
    return _label(each) if tensors == 1 else f"{tensors}×{_label(each)}"


# ------------------------------------------------------------------------------ benchmarks
def _optimizer(torch: ModuleType, name: str, tensors: int, each: int, scale: Scale) -> Benchmark:
    """``optimizer.step()`` on ``tensors`` float32 tensors of ``each`` elements, gradients set."""
    Parameter = require("minireg.parameter.Parameter")
    flatten_parameters = require("minireg.nn.utils.flatten_parameters")
    minireg_class = require(f"minireg.optim.{name}")
    options = OPTIMIZERS[name]
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(each, dtype=np.float32) for _ in range(tensors)]
    grads = [rng.standard_normal(each, dtype=np.float32) for _ in range(tensors)]

    params = []
    for d, g in zip(data, grads, strict=True):
        p = Parameter(d.copy())
        p.grad = g.copy()
        params.append(p)
    calls: dict[str, Callable[[], Any]] = {"minireg": minireg_class(params, **options).step}
    if tensors > 1:  # the same tensors held as views of one buffer: one kernel call per step
        flat = [Parameter(d.copy()) for d in data]
        for p, g in zip(flat, grads, strict=True):
            p.grad = g.copy()
        flatten_parameters(flat)
        calls["minireg flat"] = minireg_class(flat, **options).step
    for variant, flags in (
        ("torch", {}),
        ("torch foreach", {"foreach": True}),
        ("torch fused", {"fused": True}),
    ):
        tparams = []
        for d, g in zip(data, grads, strict=True):
            t = torch.nn.Parameter(torch.from_numpy(d.copy()))
            t.grad = torch.from_numpy(g.copy())
            tparams.append(t)
        try:
            optimizer = getattr(torch.optim, name)(tparams, **options, **flags)
            optimizer.step()  # refuses an unsupported path here, not while timing
        except (TypeError, RuntimeError, ValueError):
            continue
        calls[variant] = optimizer.step
    bench = Benchmark(
        f"{name} {_case(tensors, each)}", "optimizer", tensors * each, tensors, optimizer=name
    )
    return _run(bench, calls, scale)


def _clip(torch: ModuleType, tensors: int, each: int, scale: Scale) -> Benchmark:
    """``clip_grad_norm_`` that always scales, and the total norm's error against float64."""
    Parameter = require("minireg.parameter.Parameter")
    flatten_parameters = require("minireg.nn.utils.flatten_parameters")
    clip_grad_norm_ = require("minireg.nn.utils.clip_grad_norm_")
    get_total_norm = require("minireg.nn.utils.get_total_norm")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(each, dtype=np.float32) for _ in range(tensors)]
    reference = math.sqrt(
        sum(float(np.dot(g.astype(np.float64), g.astype(np.float64))) for g in grads)
    )

    params, flat = [], []
    for g in grads:
        for group in (params, flat):
            p = Parameter(np.zeros(each, dtype=np.float32))
            p.grad = g.copy()
            group.append(p)
    flatten_parameters(flat)

    def torch_params() -> list[Any]:
        out = []
        for g in grads:
            t = torch.nn.Parameter(torch.zeros(each, dtype=torch.float32))
            t.grad = torch.from_numpy(g.copy())
            out.append(t)
        return out

    default, foreach = torch_params(), torch_params()
    # The norms before any clipping, for the accuracy check.
    ours = float(get_total_norm([p.grad for p in params]))
    theirs = float(torch.nn.utils.get_total_norm([t.grad for t in default]))

    def shrinking(clip: Callable[[float], Any]) -> Callable[[], Any]:
        """Each call clips to 0.999 of the previous call's max_norm, so every timed call
        really scales the gradients.  (A fixed max_norm would settle where the clip
        coefficient is exactly 1, and minireg skips that multiplication.)"""
        max_norm = [reference]

        def call() -> Any:
            max_norm[0] *= 0.999
            return clip(max_norm[0])

        return call

    calls = {
        "minireg": shrinking(lambda m: clip_grad_norm_(params, m)),
        "minireg flat": shrinking(lambda m: clip_grad_norm_(flat, m)),
        "torch": shrinking(lambda m: torch.nn.utils.clip_grad_norm_(default, m)),
        "torch foreach": shrinking(
            lambda m: torch.nn.utils.clip_grad_norm_(foreach, m, foreach=True)
        ),
    }
    bench = Benchmark(
        f"clip_grad_norm_ {_case(tensors, each)}", "clip_grad_norm_", tensors * each, tensors
    )
    bench.extra["norm_rel_error"] = {
        "minireg": abs(ours - reference) / reference,
        "torch": abs(theirs - reference) / reference,
    }
    return _run(bench, calls, scale)


def adam_step_peak(elements: int) -> dict[str, float]:
    """Peak memory allocated during one minireg Adam step (the second: state exists).

    Measured with ``tracemalloc``, which NumPy reports its array buffers to.  Returned in
    bytes and as a fraction of params + grads + state (4 float32 arrays of ``elements``).
    """
    Parameter = require("minireg.parameter.Parameter")
    adam = require("minireg.optim.Adam")
    rng = np.random.default_rng(3)
    param = Parameter(rng.standard_normal(elements, dtype=np.float32))
    param.grad = rng.standard_normal(elements, dtype=np.float32)
    optimizer = adam([param], lr=1e-3)
    optimizer.step()
    tracemalloc.start()
    try:
        optimizer.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    held = 4 * param.data.nbytes  # params, grads, exp_avg, exp_avg_sq
    return {"peak_bytes": peak, "held_bytes": held, "total_over_held": (held + peak) / held}


def _module(
    torch: ModuleType, layer: str, shape: tuple[int, ...], scale: Scale, **options: Any
) -> Benchmark:
    """A layer's training-mode forward + backward of a random upstream gradient."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape, dtype=np.float32)
    grad = rng.standard_normal(shape, dtype=np.float32)
    minireg_nn = require("minireg.nn")
    factory: dict[str, Any] = {"dtype": np.float32} if "BatchNorm" in layer else {}
    args = (shape[1],) if "BatchNorm" in layer else ()
    ours = getattr(minireg_nn, layer)(*args, **options, **factory)
    theirs = getattr(torch.nn, layer)(*args, **options)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tgrad = torch.from_numpy(grad.copy())

    def minireg_call() -> Any:
        ours(x)
        return ours.backward(grad)

    def torch_call() -> None:
        tx.grad = None  # no accumulation into the input's gradient (minireg returns a new one)
        theirs(tx).backward(tgrad)

    elements = int(np.prod(shape))
    shape_text = "×".join(map(str, shape)) if len(shape) > 1 else _label(elements)
    bench = Benchmark(f"{layer} {shape_text}", layer, elements)
    return _run(bench, {"minireg": minireg_call, "torch": torch_call}, scale)


def benchmarks(torch: ModuleType, scale: Scale, progress: Callable[[str], None]) -> list[Benchmark]:
    """Every benchmark, in order, ``progress`` told of each as it finishes."""
    done: list[Benchmark] = []

    def add(bench: Benchmark) -> None:
        done.append(bench)
        gc.collect()  # the 1e7-element cases hold hundreds of MB per side
        progress(_row(bench))

    for name in OPTIMIZERS:
        for size in scale.sizes:
            bench = _optimizer(torch, name, 1, size, scale)
            if name == "Adam" and size == max(scale.sizes):
                bench.extra["memory"] = adam_step_peak(size)
            add(bench)
        add(_optimizer(torch, name, *scale.many, scale))
    add(_clip(torch, *scale.clip, scale))
    add(_module(torch, "BatchNorm2d", scale.bn2d, scale))
    add(_module(torch, "BatchNorm1d", scale.bn1d, scale))
    add(_module(torch, "Dropout", (scale.dropout,), scale, p=0.5))
    return done


# ------------------------------------------------------------------------------ environment
def _openblas_core() -> str | None:
    """The CPU kernel NumPy's bundled OpenBLAS picked (best effort, ``None`` if unknown)."""
    libs_dir = os.path.dirname(np.__file__) + ".libs"
    for path in glob.glob(os.path.join(libs_dir, "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
                       "scipy_openblas_get_corename", "openblas_get_corename"):  # fmt: skip
            function = getattr(lib, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return None


def environment(torch: ModuleType) -> dict[str, Any]:
    """What the numbers depend on: versions, threads, BLAS, and the relevant variables."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_text = f"{blas.get('name')} {blas.get('version')}"
    except (KeyError, TypeError, AttributeError, ValueError):  # not a stable layout
        blas_text = "unknown"
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "minireg_num_threads": minireg.get_num_threads(),
        "numpy_blas": blas_text,
        "openblas_core": _openblas_core(),
        "variables": {name: os.environ.get(name) for name in ENVIRONMENT_VARIABLES},
    }


def _environment_lines(env: dict[str, Any]) -> list[str]:
    variables = ", ".join(
        f"{k}={v if v is not None else 'unset'}" for k, v in env["variables"].items()
    )
    return [
        (
            f"python {env['python']}, numpy {env['numpy']}, torch {env['torch']}, "
            f"{env['cpu_count']} CPUs, threads: torch {env['torch_num_threads']}, "
            f"minireg {env['minireg_num_threads']}"
        ),
        f"numpy BLAS {env['numpy_blas']} (kernel {env['openblas_core'] or 'unknown'})",
        variables,
    ]


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every platform
        return []


# ------------------------------------------------------------------------------ the table
def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}"


HEADER = (
    "| benchmark | minireg ms | flat ms | torch ms | foreach ms | fused ms "
    "| minireg/torch | minireg/fused | spread |"
)


def _row(bench: Benchmark) -> str:
    spread = max(bench.spread.values()) if bench.spread else float("nan")
    return (
        f"| {bench.name} | {_ms(bench.seconds.get('minireg'))} "
        f"| {_ms(bench.seconds.get('minireg flat'))} | {_ms(bench.seconds.get('torch'))} "
        f"| {_ms(bench.seconds.get('torch foreach'))} | {_ms(bench.seconds.get('torch fused'))} "
        f"| {_times(bench.ratio('torch'))} | {_times(bench.ratio('torch fused'))} "
        f"| {spread:.0%} |"
    )


def flat_over_single(benches: list[Benchmark]) -> dict[str, float]:
    """Per optimizer: the flat many-tensor step over the single tensor of as many elements."""
    out = {}
    for many in benches:
        if many.optimizer and "minireg flat" in many.seconds:
            key = (many.optimizer, 1, many.elements)
            for single in benches:
                if (single.optimizer, single.tensors, single.elements) == key:
                    out[many.optimizer] = many.seconds["minireg flat"] / single.seconds["minireg"]
    return out


def markdown_table(benches: list[Benchmark]) -> str:
    """The results as a Markdown table (median ms per call; spread: worst IQR/median)."""
    separator = "|" + "|".join("---" for _ in range(HEADER.count("|") - 1)) + "|"
    return "\n".join([HEADER, separator, *(_row(b) for b in benches)])


# ------------------------------------------------------------------------------ the figure
def _plot_optimizers(fig: Any, grid: Any, benches: list[Benchmark], scale: Scale) -> None:
    many_elements = scale.many[0] * scale.many[1]
    for index, name in enumerate(OPTIMIZERS):
        ax = fig.add_subplot(grid[index // 3, index % 3])
        ours = [b for b in benches if b.optimizer == name]
        single = sorted((b for b in ours if b.tensors == 1), key=lambda b: b.elements)
        many = [b for b in ours if b.tensors > 1]
        for variant in VARIANTS:
            points = [(b.elements, b.seconds[variant]) for b in single if variant in b.seconds]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, np.array(ys) * 1e3, label=variant, markersize=4, **STYLE[variant])
            for b in many:
                if variant in b.seconds:
                    ax.plot(
                        [b.elements * 1.25], [b.seconds[variant] * 1e3],
                        marker=STYLE[variant]["marker"], markersize=7, linestyle="none",
                        markerfacecolor="none", markeredgecolor=STYLE[variant]["color"],
                        markeredgewidth=1.4,
                    )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("elements (float32)")
        ax.set_ylabel("ms per step (median)")
        fused = "" if any("torch fused" in b.seconds for b in ours) else " (torch: no fused on CPU)"
        ax.set_title(f"{name}{fused}")
        ax.set_xlim(min(scale.sizes) / 2.5, many_elements * 2.5)
        _plain_log_ticks(ax)
        if index == 2:
            hollow = Line2D(
                [], [], marker="o", linestyle="none", markerfacecolor="none",
                markeredgecolor="0.3",
                label=f"hollow: {_case(*scale.many)} tensors\n(x = total elements)",
            )  # fmt: skip
            variants = [Line2D([], [], label=v, markersize=4, **STYLE[v]) for v in VARIANTS]
            legend_outside(ax, handles=[*variants, hollow])


def _plain_log_ticks(ax: Any, x: bool = False) -> None:
    """Log-axis tick labels as plain numbers (0.05, 2, 30) rather than powers of ten."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in [ax.yaxis, *([ax.xaxis] if x else [])]:
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(
            lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else ""
        ))  # fmt: skip


def _plot_ratios(ax: Any, benches: list[Benchmark]) -> None:
    rest = [b for b in benches if b.family != "optimizer"]
    ratios = [b.ratio("torch") or float("nan") for b in rest]
    positions = np.arange(len(rest))
    colors = [color(0) if r <= 1 else color(3) for r in ratios]
    ax.bar(positions, ratios, color=colors, width=0.6)
    ax.axhline(1.0, color="0.2", linewidth=1.0)
    ax.set_yscale("log")
    ax.set_xticks(positions, [b.name.replace(" ", "\n", 1) for b in rest], fontsize=7)
    ax.set_ylabel("minireg / torch default (median time)")
    ax.set_title("other kernels (above 1: minireg slower)")
    low, high = min(ratios + [1.0]), max(ratios + [1.0])
    ax.set_ylim(low / 2, high * 2)
    _plain_log_ticks(ax)
    for x, r, b in zip(positions, ratios, rest, strict=True):
        text = f"{r:.2f}×"
        error = b.extra.get("norm_rel_error")
        if error:
            text += f"\nnorm rel. err\nminireg {error['minireg']:.0e}\ntorch {error['torch']:.0e}"
        ax.annotate(text, (x, r), xytext=(0, 3), textcoords="offset points", ha="center",
                    va="bottom", fontsize=7)  # fmt: skip


def draw(out_dir: Path, quick: bool = False) -> FigureResult:
    """Time every benchmark, print the table, draw time-vs-size and ratio panels."""
    result = FigureResult("speed")
    with timed(result):
        torch = optional_torch()
        if torch is None:
            raise NeedsTorch("the speed benchmark compares minireg with torch")
        scale = QUICK if quick else FULL
        env = environment(torch)
        load_before = _load()
        print(f"speed: load average before {load_before} (1, 5, 15 min)", flush=True)
        for line in _environment_lines(env):
            print(f"speed: {line}", flush=True)
        print(HEADER, flush=True)
        print("|" + "|".join("---" for _ in range(HEADER.count("|") - 1)) + "|", flush=True)
        benches = benchmarks(torch, scale, lambda row: print(row, flush=True))
        load_after = _load()
        print(f"speed: load average after {load_after}", flush=True)
        env.update(load_before=load_before, load_after=load_after, quick=quick)
        for bench in benches:
            error = bench.extra.get("norm_rel_error")
            if error:
                print(
                    f"speed: {bench.name} total norm relative error vs float64: "
                    f"minireg {error['minireg']:.2e}, torch {error['torch']:.2e}",
                    flush=True,
                )
        flat = flat_over_single(benches)
        if flat:
            shown = ", ".join(f"{name} {ratio:.2f}" for name, ratio in flat.items())
            print(f"speed: flat {_case(*scale.many)} step / single-tensor step: {shown}")
        memory = next((b.extra["memory"] for b in benches if "memory" in b.extra), None)
        if memory:
            print(
                f"speed: Adam step peak allocation {memory['peak_bytes'] / 2**20:.2f} MiB; "
                f"params + grads + state + peak = {memory['total_over_held']:.3f}x "
                "params + grads + state",
                flush=True,
            )
        result.data = {
            "environment": env,
            "benchmarks": [b.record() for b in benches],
            "flat_over_single": flat,
            "table": markdown_table(benches),
        }

        fig = plt.figure(figsize=(14, 8.5))
        grid = fig.add_gridspec(
            2, 3, hspace=0.42, wspace=0.32, left=0.06, right=0.86, top=0.89, bottom=0.13
        )
        _plot_optimizers(fig, grid, benches, scale)
        _plot_ratios(fig.add_subplot(grid[1, 2]), benches)
        rounds = sorted({b.rounds for b in benches})
        title = (
            f"minireg vs torch {env['torch'].split('+')[0]} on the CPU, float32: "
            "median time per call"
            f"{' (--quick)' if quick else ''}"
        )
        load = " → ".join(f"{values[0]:.2f}" for values in (load_before, load_after) if values)
        text = (
            f"One process, sides interleaved (order reversed every other round, each timing "
            f"after an untimed call of the same side); median of "
            f"{'/'.join(map(str, rounds))} rounds.  torch's default optimizer path on the CPU "
            "is a for-loop over the tensors; clip_grad_norm_'s is foreach.\n"
            f"threads: torch {env['torch_num_threads']}, minireg {env['minireg_num_threads']}; "
            f"NumPy BLAS {env['numpy_blas']} "
            f"({env['openblas_core'] or '?'} kernel), "
            f"OPENBLAS_CORETYPE={env['variables']['OPENBLAS_CORETYPE'] or 'unset'}, "
            f"1-min load average {load or '?'}."
        )
        finish(fig, result, out_dir, title, text)
    return result
