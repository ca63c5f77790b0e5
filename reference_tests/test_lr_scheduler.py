"""LR schedulers against torch.optim.lr_scheduler: lr (and momentum) traces over hundreds of
steps, chaining, resuming from state_dicts, external lr changes, errors and warnings.

Schedulers are pure Python: both sides do the same float operations in the same order, so
the traces agree bit for bit.  The comparison still allows ``RTOL = 1e-12`` relative (what
the project asks of schedulers) rather than demanding equality, so that a harmless
reassociation would not fail; any wrong rule is off by far more.  An lr held as a 0-d
array (torch: a Tensor lr) is compared in its own dtype with the same budget: float32 lrs
also agree bitwise, since both libraries round a Python-float operand to float32 first.

Both sides run through ``run_both``: every call is made on minireg and on torch, and the
outcome must match: same warnings (category and text), and if torch raises, minireg raises
the same exception type with the same message.  The torch optimizer's params live on the
``device`` fixture's device (schedulers themselves never touch tensors).
"""

from __future__ import annotations

import copy
import functools
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.optim.lr_scheduler as T
from hypothesis import assume, given
from hypothesis import strategies as st

import minireg
import minireg.optim.lr_scheduler as M
from reference_tests.conftest import assert_same_outcome, recorded_warnings

RTOL = 1e-12
NAN = float("nan")

lr_lists = st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=3)


# ---------------------------------------------------------------- harness
def twin_optimizers(device: str, lrs: list[Any], kind: str = "sgd", **kwargs: Any):
    """A minireg and a torch optimizer with one param group per lr (one small param each)."""
    classes = {
        "sgd": (minireg.optim.SGD, torch.optim.SGD),
        "adam": (minireg.optim.Adam, torch.optim.Adam),
    }
    ours_cls, theirs_cls = classes[kind]
    ours = ours_cls(
        [{"params": [minireg.Parameter(np.zeros(2))], "lr": _ours_value(lr)} for lr in lrs],
        **kwargs,
    )
    theirs = theirs_cls(
        [
            {"params": [torch.nn.Parameter(torch.zeros(2, device=device))], "lr": _theirs_value(lr)}
            for lr in lrs
        ],
        **kwargs,
    )
    return ours, theirs


def _ours_value(value: Any) -> Any:
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _theirs_value(value: Any) -> Any:
    return torch.from_numpy(np.array(value, copy=True)) if isinstance(value, np.ndarray) else value


def assert_lr_close(actual: Any, expected: Any, what: str) -> None:
    """Same structure and types (float stays float, Tensor <-> ndarray of the same dtype),
    values within RTOL relative (NaNs and infinities must match exactly)."""
    if isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected), (
            f"{what}: {actual!r} != {expected!r}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_lr_close(a, e, f"{what}[{i}]")
        return
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, np.ndarray), f"{what}: {type(actual)} is not an ndarray"
        expected_np = expected.detach().cpu().numpy()
        assert actual.dtype == expected_np.dtype and actual.shape == expected_np.shape, what
        actual, expected = float(actual), float(expected_np)
    else:
        assert type(actual) is type(expected), f"{what}: type {type(actual)} != {type(expected)}"
    if isinstance(expected, (bool, str)) or expected is None:
        assert actual == expected, f"{what}: {actual!r} != {expected!r}"
        return
    if math.isnan(expected) or math.isinf(expected):
        assert (math.isnan(actual) and math.isnan(expected)) or actual == expected, (
            f"{what}: {actual} != {expected}"
        )
        return
    assert abs(actual - expected) <= RTOL * abs(expected), f"{what}: {actual!r} != {expected!r}"


def compare_groups(ours_opt, theirs_opt, keys: tuple[str, ...], what: str) -> None:
    for i, (g, h) in enumerate(zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True)):
        for key in keys:
            assert_lr_close(g[key], h[key], f"{what}: group {i} {key!r}")


def compare_schedulers(
    ours: list, theirs: list, ours_opt, theirs_opt, keys: tuple[str, ...], what: str
) -> None:
    """get_last_lr() and last_epoch of every scheduler, and the group values, must agree."""
    for i, (s, t) in enumerate(zip(ours, theirs, strict=True)):
        assert_lr_close(s.get_last_lr(), t.get_last_lr(), f"{what}: scheduler {i} get_last_lr()")
        if hasattr(t, "last_epoch"):
            assert s.last_epoch == t.last_epoch, f"{what}: scheduler {i} last_epoch"
    compare_groups(ours_opt, theirs_opt, keys, what)


def run_both(ours_call: Callable[[], Any], theirs_call: Callable[[], Any], what: str) -> bool:
    """``conftest.assert_same_outcome`` with warnings compared and optimizer reprs
    normalised: warnings must match, and an exception from torch must be matched by minireg
    (type and message).  Returns True if both raised."""
    return (
        assert_same_outcome(
            theirs_call, ours_call, what=what, normalise=_normalise, compare_warnings=True
        )
        is None
    )


def _normalise(message: str) -> str:
    """Messages that print the optimizer itself differ only in the two libraries' reprs."""
    return re.sub(
        r" has .*, which is different",
        " has <optimizer>, which is different",
        message,
        flags=re.DOTALL,
    )


def _step_all(schedulers: list, args: tuple) -> None:
    for scheduler in schedulers:
        scheduler.step(*args)


def _as_list(schedulers: Any) -> list:
    return list(schedulers) if isinstance(schedulers, (list, tuple)) else [schedulers]


Build = Callable[[Any, Any], Any]  # (scheduler module, optimizer) -> scheduler or list of them


def run_trace(
    build: Build,
    lrs: list[Any],
    device: str,
    steps: int,
    *,
    kind: str = "sgd",
    opt_kwargs: dict[str, Any] | None = None,
    keys: tuple[str, ...] = ("lr",),
    step_args: Callable[[int], tuple] | None = None,
    before_step: Callable[[int, Any, Any], None] | None = None,
    allow_errors: bool = False,
) -> int:
    """Build the scheduler(s) on twin optimizers and step both sides ``steps`` times, each
    time ``optimizer.step()`` then every ``scheduler.step()``, comparing after each step.

    ``before_step(i, ours_opt, theirs_opt)`` may change the optimizers between steps.
    Unless ``allow_errors``, torch must not raise.  Returns the number of steps completed,
    or -1 if construction raised (identically on both sides).
    """
    ours_opt, theirs_opt = twin_optimizers(device, lrs, kind, **(opt_kwargs or {}))
    built: dict[str, list] = {}
    if run_both(
        lambda: built.__setitem__("ours", _as_list(build(M, ours_opt))),
        lambda: built.__setitem__("theirs", _as_list(build(T, theirs_opt))),
        "construction",
    ):
        assert allow_errors, "construction raised (identically on both sides)"
        return -1
    ours, theirs = built["ours"], built["theirs"]
    compare_schedulers(ours, theirs, ours_opt, theirs_opt, keys, "after construction")
    for i in range(steps):
        args = step_args(i) if step_args else ()
        if before_step:
            before_step(i, ours_opt, theirs_opt)
        ours_opt.step()
        theirs_opt.step()
        if run_both(
            functools.partial(_step_all, ours, args),
            functools.partial(_step_all, theirs, args),
            f"step {i + 1}",
        ):
            assert allow_errors, f"step {i + 1} raised (identically on both sides)"
            return i
        compare_schedulers(ours, theirs, ours_opt, theirs_opt, keys, f"step {i + 1}")
    return steps


# ---------------------------------------------------------------- one trace per scheduler
def _lambda(kind: str, a: float) -> Callable[[int], float]:
    """A few lr-lambda shapes: exponential, inverse-time, linear warm-up, periodic."""
    if kind == "power":
        return lambda e: a**e
    if kind == "inverse":
        return lambda e: 1.0 / (1.0 + a * e)
    if kind == "warmup":
        return lambda e: min(1.0, (e + 1) * a)
    return lambda e: 1.0 + 0.5 * a * math.sin(e)


lambdas = st.tuples(
    st.sampled_from(["power", "inverse", "warmup", "periodic"]), st.floats(0.9, 0.999)
).map(lambda t: _lambda(*t))


@given(lrs=lr_lists, data=st.data())
def test_lambda_lr(device, lrs, data):
    fns = data.draw(st.one_of(lambdas, st.lists(lambdas, min_size=len(lrs), max_size=len(lrs))))
    run_trace(lambda m, o: m.LambdaLR(o, fns), lrs, device, 200)


@given(lrs=lr_lists, data=st.data())
def test_multiplicative_lr(device, lrs, data):
    fns = data.draw(
        st.one_of(lambdas, st.lists(lambdas, min_size=len(lrs), max_size=len(lrs)).map(tuple))
    )
    run_trace(lambda m, o: m.MultiplicativeLR(o, fns), lrs, device, 200)


@given(lrs=lr_lists, step_size=st.integers(1, 40), gamma=st.floats(0.05, 1.0))
def test_step_lr(device, lrs, step_size, gamma):
    run_trace(lambda m, o: m.StepLR(o, step_size, gamma), lrs, device, 250)


@given(
    lrs=lr_lists, milestones=st.lists(st.integers(0, 220), max_size=8), gamma=st.floats(0.05, 1.0)
)
def test_multistep_lr_with_repeated_and_zero_milestones(device, lrs, milestones, gamma):
    run_trace(lambda m, o: m.MultiStepLR(o, milestones, gamma), lrs, device, 250)


@given(lrs=lr_lists, factor=st.floats(0.01, 1.0), total_iters=st.integers(0, 100))
def test_constant_lr(device, lrs, factor, total_iters):
    run_trace(lambda m, o: m.ConstantLR(o, factor, total_iters), lrs, device, 200)


@given(
    lrs=lr_lists,
    start=st.floats(0.01, 1.0),
    end=st.floats(0.0, 1.0),
    total_iters=st.integers(1, 150),
)
def test_linear_lr(device, lrs, start, end, total_iters):
    run_trace(lambda m, o: m.LinearLR(o, start, end, total_iters), lrs, device, 200)


@given(lrs=lr_lists, gamma=st.floats(0.5, 1.05))
def test_exponential_lr(device, lrs, gamma):
    run_trace(lambda m, o: m.ExponentialLR(o, gamma), lrs, device, 250)


@given(lrs=lr_lists, total_iters=st.integers(1, 150), power=st.floats(0.1, 4.0))
def test_polynomial_lr(device, lrs, total_iters, power):
    run_trace(lambda m, o: m.PolynomialLR(o, total_iters, power), lrs, device, 200)


@given(lrs=lr_lists, T_max=st.integers(1, 60), eta_min=st.sampled_from([0.0, 1e-5, 1e-3]))
def test_cosine_annealing_lr_recursive_form_beyond_t_max(device, lrs, T_max, eta_min):
    # 300 steps run through several periods of 2*T_max: the lr climbs back up after T_max.
    run_trace(lambda m, o: m.CosineAnnealingLR(o, T_max, eta_min), lrs, device, 300)


@given(
    lrs=lr_lists,
    T_0=st.integers(1, 20),
    T_mult=st.integers(1, 3),
    eta_min=st.sampled_from([0, 0.0, 1e-4]),
)
def test_cosine_annealing_warm_restarts(device, lrs, T_0, T_mult, eta_min):
    run_trace(lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0, T_mult, eta_min), lrs, device, 300)


@given(
    lrs=lr_lists,
    T_0=st.integers(1, 20),
    T_mult=st.integers(1, 3),
    epochs=st.lists(
        st.one_of(st.none(), st.floats(0, 300), st.integers(0, 300)), min_size=1, max_size=80
    ),
)
def test_cosine_annealing_warm_restarts_with_float_epochs(device, lrs, T_0, T_mult, epochs):
    # step(epoch) with fractional epochs (epoch + batch/n_batches), in any order, mixed with step().
    def build(m, o):
        return m.CosineAnnealingWarmRestarts(o, T_0, T_mult, 1e-4)

    ours_opt, theirs_opt = twin_optimizers(device, lrs)
    ours, theirs = build(M, ours_opt), build(T, theirs_opt)
    for i, epoch in enumerate(epochs):
        assert not run_both(
            functools.partial(ours.step, epoch), functools.partial(theirs.step, epoch), f"{epoch}"
        )
        compare_schedulers([ours], [theirs], ours_opt, theirs_opt, ("lr",), f"step {i} ({epoch})")
        assert_lr_close(
            [ours.T_cur, ours.T_i], [theirs.T_cur, theirs.T_i], f"T_cur, T_i at step {i}"
        )


@given(
    lrs=lr_lists,
    data=st.data(),
    schedule=st.one_of(
        st.tuples(st.integers(8, 300), st.none(), st.none()),
        st.tuples(st.none(), st.integers(1, 10), st.integers(2, 30)),
    ),
    pct_start=st.floats(0.1, 0.9),
    anneal_strategy=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
    cycle_momentum=st.booleans(),
    div_factor=st.sampled_from([25.0, 10.0, 3.0]),
    final_div_factor=st.sampled_from([1e4, 100.0]),
    kind=st.sampled_from(["sgd", "adam"]),
    momentum=st.sampled_from([0.0, 0.9]),
)
def test_one_cycle_lr_lr_and_momentum(
    device,
    lrs,
    data,
    schedule,
    pct_start,
    anneal_strategy,
    three_phase,
    cycle_momentum,
    div_factor,
    final_div_factor,
    kind,
    momentum,
):
    n = len(lrs)
    max_lr = data.draw(
        st.one_of(st.floats(0.01, 2.0), st.lists(st.floats(0.01, 2.0), min_size=n, max_size=n))
    )
    max_momentum = data.draw(
        st.one_of(st.floats(0.9, 0.99), st.lists(st.floats(0.9, 0.99), min_size=n, max_size=n))
    )
    base_momentum = data.draw(
        st.one_of(st.floats(0.5, 0.85), st.lists(st.floats(0.5, 0.85), min_size=n, max_size=n))
    )
    total_steps, epochs, steps_per_epoch = schedule
    total = total_steps or epochs * steps_per_epoch

    def build(m, o):
        return m.OneCycleLR(
            o,
            max_lr,
            total_steps=total_steps,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
        )

    # cycle_momentum overwrites the group's momentum (turning it on for SGD(momentum=0)).
    keys = (
        ("lr", "betas", "initial_lr", "max_lr", "min_lr")
        if kind == "adam"
        else ("lr", "momentum", "initial_lr")
    )
    opt_kwargs = {} if kind == "adam" else {"momentum": momentum}
    # The total_steps-th step is allowed (it extrapolates); the one after raises in both.
    done = run_trace(
        build,
        lrs,
        device,
        total + 1,
        kind=kind,
        opt_kwargs=opt_kwargs,
        keys=keys,
        allow_errors=True,
    )
    assume(done != -1)  # degenerate phases (zero length) raise identically at construction
    assert done == total


scale_fns = {
    "inverse": lambda x: 1 / (1 + 0.05 * x),
    "cosine": lambda x: 0.5 * (1 + math.cos(x)),
}


@given(
    lrs=lr_lists,
    data=st.data(),
    step_size_up=st.integers(1, 25),
    step_size_down=st.one_of(st.none(), st.integers(1, 25)),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    gamma=st.floats(0.95, 1.0),
    scale=st.one_of(
        st.none(),
        st.tuples(st.sampled_from(sorted(scale_fns)), st.sampled_from(["cycle", "iterations"])),
    ),
    cycle_momentum=st.booleans(),
    kind=st.sampled_from(["sgd", "adam"]),
)
def test_cyclic_lr_lr_and_momentum(
    device, lrs, data, step_size_up, step_size_down, mode, gamma, scale, cycle_momentum, kind
):
    n = len(lrs)
    base_lr = data.draw(
        st.one_of(st.floats(1e-4, 0.05), st.lists(st.floats(1e-4, 0.05), min_size=n, max_size=n))
    )
    max_lr = data.draw(
        st.one_of(st.floats(0.05, 1.0), st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n))
    )
    base_momentum = data.draw(
        st.one_of(st.floats(0.5, 0.85), st.lists(st.floats(0.5, 0.85), min_size=n, max_size=n))
    )
    max_momentum = data.draw(
        st.one_of(st.floats(0.85, 0.99), st.lists(st.floats(0.85, 0.99), min_size=n, max_size=n))
    )
    scale_fn, scale_mode = (scale_fns[scale[0]], scale[1]) if scale else (None, "cycle")

    def build(m, o):
        return m.CyclicLR(
            o,
            base_lr,
            max_lr,
            step_size_up,
            step_size_down,
            mode,
            gamma,
            scale_fn,
            scale_mode,
            cycle_momentum,
            base_momentum,
            max_momentum,
        )

    keys = ("lr", "betas") if kind == "adam" else ("lr", "momentum")
    opt_kwargs = {} if kind == "adam" else {"momentum": 0.9}
    run_trace(build, lrs, device, 300, kind=kind, opt_kwargs=opt_kwargs, keys=keys)


# ---------------------------------------------------------------- combinations
@given(
    lrs=lr_lists, warmup=st.integers(1, 30), T_max=st.integers(1, 80), start=st.floats(0.01, 1.0)
)
def test_sequential_lr_warmup_into_cosine(device, lrs, warmup, T_max, start):
    def build(m, o):
        return m.SequentialLR(
            o,
            [m.LinearLR(o, start, 1.0, warmup), m.CosineAnnealingLR(o, T_max, 1e-4)],
            milestones=[warmup],
        )

    run_trace(build, lrs, device, 250)


# Sub-schedulers for SequentialLR: with a closed form (restart from base lr at a milestone)
# and without (LambdaLR, MultiplicativeLR, OneCycleLR, CyclicLR run get_lr at epoch 0).
SUBSCHEDULERS: dict[str, Build] = {
    "constant": lambda m, o: m.ConstantLR(o, 0.1, 4),
    "linear": lambda m, o: m.LinearLR(o, 0.2, 0.8, 10),
    "exponential": lambda m, o: m.ExponentialLR(o, 0.95),
    "step": lambda m, o: m.StepLR(o, 6, 0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, [0, 3, 3, 17], 0.7),
    "polynomial": lambda m, o: m.PolynomialLR(o, 12, 2.0),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, 9, 1e-3),
    "restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, 4, 2),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.9**e),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.97),
    "one_cycle": lambda m, o: m.OneCycleLR(o, 0.5, total_steps=400, cycle_momentum=False),
    "cyclic": lambda m, o: m.CyclicLR(o, 0.01, 0.2, 5, cycle_momentum=False),
}


@given(
    lrs=lr_lists,
    names=st.lists(st.sampled_from(sorted(SUBSCHEDULERS)), min_size=1, max_size=4),
    gaps=st.lists(st.integers(1, 40), min_size=3, max_size=3),
)
def test_sequential_lr_of_any_schedulers(device, lrs, names, gaps):
    milestones = list(np.cumsum(gaps[: len(names) - 1]).tolist())

    def build(m, o):
        return m.SequentialLR(o, [SUBSCHEDULERS[name](m, o) for name in names], milestones)

    run_trace(build, lrs, device, 200)


CHAINABLE = [
    "constant",
    "linear",
    "exponential",
    "step",
    "multistep",
    "polynomial",
    "cosine",
    "multiplicative",
]


@given(
    lrs=lr_lists,
    names=st.lists(st.sampled_from(CHAINABLE + ["cyclic", "lambda"]), min_size=2, max_size=3),
)
def test_schedulers_stepped_together_on_one_optimizer(device, lrs, names):
    # e.g. StepLR + ExponentialLR: the chainable rules multiply; a closed-form one overrides.
    run_trace(lambda m, o: [SUBSCHEDULERS[name](m, o) for name in names], lrs, device, 200)


@pytest.mark.parametrize("name", sorted(SUBSCHEDULERS))
def test_scheduler_built_after_another_keeps_its_initial_lr(device, name):
    # group["initial_lr"] is set only once (setdefault), so a scheduler built later on the
    # same optimizer takes its base_lrs from the first one's initial_lr; OneCycleLR
    # overwrites it, and CyclicLR uses it only for its constructor's step (torch's order).
    def build(m, o):
        first = m.ExponentialLR(o, 0.9)
        for _ in range(3):
            o.step()
            first.step()
        return [first, SUBSCHEDULERS[name](m, o)]

    run_trace(build, LRS, device, 40, keys=("lr", "initial_lr"))


@given(lrs=lr_lists, names=st.lists(st.sampled_from(CHAINABLE), min_size=1, max_size=3))
def test_chained_scheduler(device, lrs, names):
    run_trace(
        lambda m, o: m.ChainedScheduler([SUBSCHEDULERS[name](m, o) for name in names]),
        lrs,
        device,
        200,
    )


# ---------------------------------------------------------------- ReduceLROnPlateau
metric_values = st.one_of(
    st.sampled_from([3.0, 2.0, 1.5, 1.0, 0.9999, 0.5, 0.0, -0.5, -1.0, NAN]),
    st.floats(-5.0, 5.0),
)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
@given(
    lrs=lr_lists,
    data=st.data(),
    threshold=st.sampled_from([0.0, 1e-4, 0.01, 0.2]),
    factor=st.floats(0.05, 0.9),
    patience=st.integers(0, 5),
    cooldown=st.integers(0, 4),
    eps=st.sampled_from([1e-8, 1e-3, 0.05]),
    metrics=st.lists(metric_values, min_size=1, max_size=200),
    change_lr_at=st.one_of(st.none(), st.integers(0, 199)),
)
def test_reduce_lr_on_plateau(
    device,
    lrs,
    data,
    mode,
    threshold_mode,
    threshold,
    factor,
    patience,
    cooldown,
    eps,
    metrics,
    change_lr_at,
):
    n = len(lrs)
    min_lr = data.draw(
        st.one_of(
            st.sampled_from([0, 1e-3, 0.05]), st.lists(st.floats(0, 0.05), min_size=n, max_size=n)
        )
    )

    def build(m, o):
        return m.ReduceLROnPlateau(
            o, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps
        )

    ours_opt, theirs_opt = twin_optimizers(device, lrs)
    ours, theirs = build(M, ours_opt), build(T, theirs_opt)
    for i, metric in enumerate(metrics):
        if i == change_lr_at:  # an lr written by hand is where the next cut starts from
            for g, h in zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True):
                g["lr"] = h["lr"] = 0.7
        # Metrics arrive as Python floats, or as float32/float64 0-d arrays vs 0-d tensors.
        if i % 3 == 0:
            ours.step(metric), theirs.step(metric)
        else:
            dtype = np.float32 if i % 3 == 1 else np.float64
            ours.step(np.array(metric, dtype=dtype))
            theirs.step(torch.from_numpy(np.array(metric, dtype=dtype)).to(device))
        compare_schedulers([ours], [theirs], ours_opt, theirs_opt, ("lr",), f"metric {i}")
        assert_lr_close(
            [ours.best, ours.num_bad_epochs, ours.cooldown_counter],
            [theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter],
            f"best, num_bad_epochs, cooldown_counter after metric {i}",
        )


def test_reduce_lr_on_plateau_worked_example():
    # By hand: patience 2, cooldown 1, factor 0.5, min_lr 0.1.  Epoch 1 sets best=1; epochs
    # 2-4 are bad, and 3 > patience cuts to 0.5 at epoch 4; epoch 5 is swallowed by the
    # cooldown, 6 is bad; 7 improves (best=0.5); 8-10 bad -> 0.25 at 10; cooldown at 11;
    # 12-14 bad -> 0.125 at 14; cooldown at 15; 16, 17 bad.  (torch gives the same list.)
    opt = minireg.optim.SGD([minireg.Parameter(np.zeros(1))], lr=1.0)
    sched = M.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5, min_lr=0.1)
    trace = []
    for metric in [1.0] * 6 + [0.5] * 11:
        sched.step(metric)
        trace.append(opt.param_groups[0]["lr"])
    assert trace == [
        1,
        1,
        1,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.25,
        0.25,
        0.25,
        0.25,
        0.125,
        0.125,
        0.125,
        0.125,
    ]


def test_reduce_lr_on_plateau_skips_cuts_of_at_most_eps(device):
    # By hand, factor 0.5 and eps 0.05 (all exact in binary): 0.2 -> 0.1 is a cut of 0.1 > eps;
    # 0.1 -> 0.05 would be a cut of exactly eps, which is not more than eps, so 0.1 stays.
    ours_opt, theirs_opt = twin_optimizers(device, [0.2])
    ours = M.ReduceLROnPlateau(ours_opt, factor=0.5, patience=0, eps=0.05)
    theirs = T.ReduceLROnPlateau(theirs_opt, factor=0.5, patience=0, eps=0.05)
    trace = []
    for metric in [1.0, 2.0, 3.0, 4.0]:
        ours.step(metric), theirs.step(metric)
        compare_schedulers([ours], [theirs], ours_opt, theirs_opt, ("lr",), f"metric {metric}")
        trace.append(ours_opt.param_groups[0]["lr"])
    assert trace == [0.2, 0.1, 0.1, 0.1]


# ---------------------------------------------------------------- resuming
BUILDERS: dict[str, Build] = {
    "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 0.97**e, lambda e: 1 / (1 + 0.1 * e)]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.98),
    "StepLR": lambda m, o: m.StepLR(o, 7, 0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, [0, 10, 10, 25, 60], 0.5),
    "ConstantLR": lambda m, o: m.ConstantLR(o, 0.25, 15),
    "LinearLR": lambda m, o: m.LinearLR(o, 0.1, 0.9, 20),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.97),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, 40, 2.0),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, 13, 1e-3),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, 5, 2, 1e-3),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, [1.0, 0.5], total_steps=80, three_phase=True),
    "CyclicLR": lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2], 6, 4, mode="exp_range", gamma=0.99),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, 0.1, total_iters=5), m.CosineAnnealingLR(o, 20), m.ExponentialLR(o, 0.9)],
        [5, 30],
    ),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.StepLR(o, 5, 0.5), m.ExponentialLR(o, 0.98)]
    ),
    "ReduceLROnPlateau": lambda m, o: m.ReduceLROnPlateau(
        o, patience=1, cooldown=2, min_lr=[0.01, 0.02]
    ),
}
LRS = [0.1, 0.05]
STEPS = 80
KEYS = ("lr", "momentum")
PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.8, 0.7] * 8


def _step(scheduler: Any, i: int) -> None:
    if isinstance(scheduler, (M.ReduceLROnPlateau, T.ReduceLROnPlateau)):
        scheduler.step(PLATEAU_METRICS[i])
    else:
        scheduler.step()


def _torch_state_to_minireg(state: Any) -> Any:
    """A torch state_dict with every tensor turned into an ndarray."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu().numpy()
    if isinstance(state, dict):
        return type(state)({k: _torch_state_to_minireg(v) for k, v in state.items()})
    if isinstance(state, (list, tuple)):
        return type(state)(_torch_state_to_minireg(v) for v in state)
    return state


def assert_state_dicts_close(ours: dict, theirs: dict, what: str) -> None:
    """Same keys in the same order; values equal (floats within RTOL), recursively."""
    assert list(ours) == list(theirs), f"{what}: keys {list(ours)} != {list(theirs)}"
    for key, expected in theirs.items():
        actual = ours[key]
        if isinstance(expected, dict):
            assert_state_dicts_close(actual, expected, f"{what}[{key!r}]")
        elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
            for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
                assert_state_dicts_close(a, e, f"{what}[{key!r}][{i}]")
        elif isinstance(expected, Counter):
            assert actual == expected, f"{what}[{key!r}]"
        else:
            assert_lr_close(actual, expected, f"{what}[{key!r}]")


@pytest.mark.parametrize("source", ["minireg", "torch"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_resume_from_state_dict_mid_run(device, name, source):
    """Save optimizer + scheduler state mid-run (from minireg, or from torch), load it into a
    fresh minireg optimizer and scheduler, and continue: the rest of the run equals torch's
    uninterrupted run, and the state_dicts (same keys, same order) agree throughout."""
    build = BUILDERS[name]
    for stop in (0, 23):
        ours_opt, theirs_opt = twin_optimizers(device, LRS, momentum=0.5)
        ours, theirs = build(M, ours_opt), build(T, theirs_opt)
        assert_state_dicts_close(
            ours.state_dict(), theirs.state_dict(), f"{name} state_dict at construction"
        )
        for i in range(stop):
            ours_opt.step(), theirs_opt.step()
            _step(ours, i), _step(theirs, i)
        if source == "minireg":
            opt_state, sched_state = (
                copy.deepcopy(ours_opt.state_dict()),
                copy.deepcopy(ours.state_dict()),
            )
        else:
            opt_state = _torch_state_to_minireg(copy.deepcopy(theirs_opt.state_dict()))
            sched_state = copy.deepcopy(theirs.state_dict())

        # torch's recipe: build the scheduler first, then load the optimizer, then the scheduler.
        fresh_opt, _ = twin_optimizers(device, [1.0, 1.0], momentum=0.0)
        fresh = build(M, fresh_opt)
        fresh_opt.load_state_dict(opt_state)
        fresh.load_state_dict(sched_state)
        compare_schedulers(
            [fresh], [theirs], fresh_opt, theirs_opt, KEYS, f"{name} resumed at {stop}"
        )
        for i in range(stop, STEPS):
            fresh_opt.step(), theirs_opt.step()
            _step(fresh, i), _step(theirs, i)
            compare_schedulers(
                [fresh], [theirs], fresh_opt, theirs_opt, KEYS, f"{name} resumed, step {i + 1}"
            )
        assert_state_dicts_close(
            fresh.state_dict(), theirs.state_dict(), f"{name} state_dict at the end"
        )


def test_lambda_state_dict_saves_callable_objects_only(device):
    class Warmup:
        def __init__(self, length: int) -> None:
            self.length = length

        def __call__(self, epoch: int) -> float:
            return min(1.0, (epoch + 1) / self.length)

    ours_opt, theirs_opt = twin_optimizers(device, LRS)
    ours = M.LambdaLR(ours_opt, [Warmup(5), lambda e: 0.9**e])
    theirs = T.LambdaLR(theirs_opt, [Warmup(5), lambda e: 0.9**e])
    assert (
        ours.state_dict()["lr_lambdas"]
        == theirs.state_dict()["lr_lambdas"]
        == [{"length": 5}, None]
    )
    saved = theirs.state_dict()
    saved["lr_lambdas"] = [{"length": 9}, None]
    fresh_opt, _ = twin_optimizers(device, LRS)
    fresh = M.LambdaLR(fresh_opt, [Warmup(5), lambda e: 0.9**e])
    fresh.load_state_dict(saved)
    assert fresh.lr_lambdas[0].length == 9 and "lr_lambdas" in saved


def test_resume_with_last_epoch_continues_like_torch(device):
    # torch's other resume path: pass last_epoch=k to a scheduler on an optimizer whose groups
    # already hold initial_lr and the epoch-k lr (chainable rules continue from group["lr"]).
    for name in [
        "StepLR",
        "ExponentialLR",
        "CosineAnnealingLR",
        "LambdaLR",
        "CosineAnnealingWarmRestarts",
    ]:
        ours_opt, theirs_opt = twin_optimizers(device, LRS)
        for g, h in zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True):
            g["initial_lr"] = h["initial_lr"] = 0.3
        kwargs = {
            "StepLR": {"step_size": 4},
            "ExponentialLR": {"gamma": 0.9},
            "CosineAnnealingLR": {"T_max": 9},
            "LambdaLR": {"lr_lambda": lambda e: 0.95**e},
            "CosineAnnealingWarmRestarts": {"T_0": 4, "T_mult": 2},
        }[name]
        ours = getattr(M, name)(ours_opt, last_epoch=10, **kwargs)
        theirs = getattr(T, name)(theirs_opt, last_epoch=10, **kwargs)
        compare_schedulers(
            [ours], [theirs], ours_opt, theirs_opt, ("lr",), f"{name} constructed at 10"
        )
        for i in range(40):
            ours_opt.step(), theirs_opt.step()
            ours.step(), theirs.step()
            compare_schedulers(
                [ours], [theirs], ours_opt, theirs_opt, ("lr",), f"{name} step {i + 1}"
            )


# ---------------------------------------------------------------- lr set by hand
@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"ReduceLROnPlateau"}))
def test_external_lr_change_mid_run(device, name):
    """Writing group["lr"] between steps: chainable rules continue from the new value,
    closed-form ones overwrite it, and get_last_lr() stays stale until the next step."""

    def change(i, ours_opt, theirs_opt):
        if i in (9, 31):
            for k, (g, h) in enumerate(
                zip(ours_opt.param_groups, theirs_opt.param_groups, strict=True)
            ):
                g["lr"] = h["lr"] = 0.25 * (k + 1)

    run_trace(BUILDERS[name], LRS, device, STEPS, before_step=change, opt_kwargs={"momentum": 0.5})


def test_get_last_lr_is_stale_after_external_change(device):
    ours_opt, theirs_opt = twin_optimizers(device, LRS)
    ours, theirs = M.StepLR(ours_opt, 2, 0.5), T.StepLR(theirs_opt, 2, 0.5)
    for opt in (ours_opt, theirs_opt):
        opt.param_groups[0]["lr"] = 1.0
    assert ours.get_last_lr() == theirs.get_last_lr() == LRS
    ours_opt.step(), theirs_opt.step()
    ours.step(), theirs.step()
    ours_opt.step(), theirs_opt.step()
    ours.step(), theirs.step()  # epoch 2: the decay multiplies the hand-set 1.0
    assert ours.get_last_lr() == theirs.get_last_lr() == [0.5, 0.025]


# ---------------------------------------------------------------- lr held as a 0-d array
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "ExponentialLR",
        "LinearLR",
        "CosineAnnealingLR",
        "CyclicLR",
        "LambdaLR",
        "SequentialLR",
    ],
)
def test_array_lr_is_updated_in_place_like_torch_tensor_lr(device, name, dtype):
    # torch accepts a Tensor lr and fill_s it in place; minireg's counterpart is a 0-d array.
    lrs = [np.array(0.1, dtype=dtype), np.array(0.05, dtype=dtype)]
    ours_opt, _ = twin_optimizers(device, lrs, momentum=0.5)
    held = [g["lr"] for g in ours_opt.param_groups]
    run_trace(BUILDERS[name], lrs, device, 60, opt_kwargs={"momentum": 0.5})
    ours = BUILDERS[name](M, ours_opt)
    for _ in range(5):
        ours_opt.step()
        ours.step()
    assert all(g["lr"] is h for g, h in zip(ours_opt.param_groups, held, strict=True)), (
        "lr arrays must be filled in place"
    )
    assert all(
        lr is not g["lr"] and lr.dtype == dtype
        for lr, g in zip(ours.get_last_lr(), ours_opt.param_groups, strict=True)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_lr_with_reduce_lr_on_plateau(device, dtype):
    lrs = [np.array(0.1, dtype=dtype), np.array(0.05, dtype=dtype)]
    ours_opt, theirs_opt = twin_optimizers(device, lrs)
    ours, theirs = (
        M.ReduceLROnPlateau(ours_opt, patience=0, factor=0.3),
        T.ReduceLROnPlateau(theirs_opt, patience=0, factor=0.3),
    )
    for i, metric in enumerate([1.0, 1.0, 0.5, 0.7, 0.7, 0.2, 0.3]):
        ours.step(metric), theirs.step(metric)
        compare_schedulers([ours], [theirs], ours_opt, theirs_opt, ("lr",), f"metric {i}")


# ---------------------------------------------------------------- step(epoch), closed forms
CLOSED_FORM = [
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
]


@pytest.mark.parametrize(
    "name", CLOSED_FORM + ["LambdaLR", "MultiplicativeLR", "CyclicLR", "OneCycleLR"]
)
@given(epochs=st.lists(st.one_of(st.none(), st.integers(0, 79)), min_size=1, max_size=40))
def test_step_with_epoch_uses_closed_form_and_warns(device, name, epochs):
    # step(epoch) jumps to `epoch` (closed form where there is one, else get_lr) and warns
    # with torch's deprecation text; run_both compares both.
    # (Stepping OneCycleLR past its total_steps raises, identically.)
    run_trace(
        BUILDERS[name],
        LRS,
        device,
        len(epochs),
        step_args=lambda i: (epochs[i],) if epochs[i] is not None else (),
        allow_errors=name == "OneCycleLR",
    )


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_closed_form_matches_recursion(name):
    # Without external changes the chainable recursion and the closed form describe the same
    # schedule: stepping normally vs jumping with step(epoch) agree to rounding.
    opt_a, _ = twin_optimizers("cpu", LRS)
    opt_b, _ = twin_optimizers("cpu", LRS)
    a, b = BUILDERS[name](M, opt_a), BUILDERS[name](M, opt_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(1, 100):
            opt_a.step(), opt_b.step()
            a.step()
            b.step(epoch)
            np.testing.assert_allclose(a.get_last_lr(), b.get_last_lr(), rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- warnings
def test_warns_when_scheduler_steps_before_optimizer(device):
    ours_opt, theirs_opt = twin_optimizers(device, LRS)
    ours, theirs = M.StepLR(ours_opt, 3), T.StepLR(theirs_opt, 3)
    ours_warnings, theirs_warnings = recorded_warnings(ours.step), recorded_warnings(theirs.step)
    assert ours_warnings == theirs_warnings and len(theirs_warnings) == 1
    assert "before `optimizer.step()`" in theirs_warnings[0][1]
    # only the first step is checked
    assert recorded_warnings(ours.step) == recorded_warnings(theirs.step) == []


def test_no_warning_in_the_right_order_with_two_schedulers(device):
    # The optimizer's step is wrapped once, however many schedulers watch it.
    ours_opt, _ = twin_optimizers(device, LRS)
    first, second = M.StepLR(ours_opt, 3), M.ExponentialLR(ours_opt, 0.9)
    assert not hasattr(ours_opt.step.__wrapped__, "_wrapped_by_lr_sched")
    ours_opt.step()
    assert recorded_warnings(first.step) == recorded_warnings(second.step) == []


def test_warns_when_optimizer_step_is_overridden(device):
    ours_opt, theirs_opt = twin_optimizers(device, LRS)
    ours, theirs = M.ExponentialLR(ours_opt, 0.9), T.ExponentialLR(theirs_opt, 0.9)
    ours_opt.step = lambda closure=None: None
    theirs_opt.step = lambda closure=None: None
    ours_warnings, theirs_warnings = recorded_warnings(ours.step), recorded_warnings(theirs.step)
    assert ours_warnings == theirs_warnings and "overridden" in theirs_warnings[0][1]


def test_warns_when_get_lr_is_called_outside_step(device):
    ours_opt, theirs_opt = twin_optimizers(device, LRS)
    ours, theirs = M.CosineAnnealingLR(ours_opt, 5), T.CosineAnnealingLR(theirs_opt, 5)
    ours_opt.step(), theirs_opt.step()
    results: dict[str, Any] = {}
    assert (
        recorded_warnings(lambda: results.setdefault("ours", ours.get_lr()))
        == recorded_warnings(lambda: results.setdefault("theirs", theirs.get_lr()))
        != []
    )
    assert_lr_close(results["ours"], results["theirs"], "get_lr()")


# ---------------------------------------------------------------- errors
def _base_optimizers(device):
    """An optimizer with neither momentum nor betas (the bare base class on both sides)."""
    ours = minireg.optim.Optimizer([minireg.Parameter(np.zeros(1))], {"lr": 0.1})
    theirs = torch.optim.Optimizer([torch.nn.Parameter(torch.zeros(1, device=device))], {"lr": 0.1})
    return ours, theirs


ERROR_CASES: dict[str, Build] = {
    "not an optimizer": lambda m, o: m.StepLR("sgd", 3),
    "LambdaLR on a non-optimizer": lambda m, o: m.LambdaLR("sgd", lambda e: 1.0),
    "resume without initial_lr": lambda m, o: m.StepLR(o, 3, last_epoch=4),
    "LambdaLR list length": lambda m, o: m.LambdaLR(o, [lambda e: 1.0]),
    "MultiplicativeLR list length": lambda m, o: m.MultiplicativeLR(o, [lambda e: 1.0] * 3),
    "MultiplicativeLR not callable": lambda m, o: m.MultiplicativeLR(o, 0.9),
    "StepLR step_size 0": lambda m, o: (o.step(), m.StepLR(o, 0).step()),
    "ConstantLR factor > 1": lambda m, o: m.ConstantLR(o, factor=1.5),
    "ConstantLR factor < 0": lambda m, o: m.ConstantLR(o, factor=-0.1),
    "ConstantLR factor 0 undone": lambda m, o: [
        (o.step(), s.step()) for s in [m.ConstantLR(o, 0.0, 2)] for _ in range(3)
    ],
    "LinearLR start 0": lambda m, o: m.LinearLR(o, start_factor=0),
    "LinearLR start > 1": lambda m, o: m.LinearLR(o, start_factor=1.5),
    "LinearLR end < 0": lambda m, o: m.LinearLR(o, end_factor=-0.5),
    "LinearLR end > 1": lambda m, o: m.LinearLR(o, end_factor=2.0),
    "CosineAnnealingLR T_max 0": lambda m, o: (o.step(), m.CosineAnnealingLR(o, 0).step()),
    "T_0 zero": lambda m, o: m.CosineAnnealingWarmRestarts(o, 0),
    "T_0 float": lambda m, o: m.CosineAnnealingWarmRestarts(o, 2.5),
    "T_mult zero": lambda m, o: m.CosineAnnealingWarmRestarts(o, 3, 0),
    "T_mult float": lambda m, o: m.CosineAnnealingWarmRestarts(o, 3, 1.5),
    "eta_min string": lambda m, o: m.CosineAnnealingWarmRestarts(o, 3, 1, "0"),
    "negative epoch": lambda m, o: m.CosineAnnealingWarmRestarts(o, 3).step(-1),
    "OneCycleLR total_steps 0": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=0),
    "OneCycleLR total_steps float": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10.0),
    "OneCycleLR epochs": lambda m, o: m.OneCycleLR(o, 1.0, epochs=0, steps_per_epoch=10),
    "OneCycleLR steps_per_epoch": lambda m, o: m.OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=2.5),
    "OneCycleLR no length": lambda m, o: m.OneCycleLR(o, 1.0, epochs=3),
    "OneCycleLR pct_start int": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, pct_start=1),
    "OneCycleLR pct_start > 1": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5),
    "OneCycleLR pct_start < 0": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, pct_start=-0.1),
    "OneCycleLR anneal": lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"),
    "OneCycleLR max_lr length": lambda m, o: m.OneCycleLR(o, [1.0], total_steps=10),
    "OneCycleLR max_momentum length": lambda m, o: m.OneCycleLR(
        o, 1.0, total_steps=10, max_momentum=[0.9] * 3
    ),
    "OneCycleLR base_momentum length": lambda m, o: m.OneCycleLR(
        o, 1.0, total_steps=10, base_momentum=(0.8,)
    ),
    "OneCycleLR past total_steps": lambda m, o: [
        (o.step(), s.step()) for s in [m.OneCycleLR(o, 1.0, total_steps=4)] for _ in range(5)
    ],
    "OneCycleLR zero-length phase": lambda m, o: m.OneCycleLR(
        o, 1.0, total_steps=10, pct_start=0.1
    ),
    "CyclicLR mode": lambda m, o: m.CyclicLR(o, 0.01, 0.1, mode="triangle"),
    "CyclicLR base_lr length": lambda m, o: m.CyclicLR(o, [0.01], 0.1),
    "CyclicLR max_lr length": lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]),
    "CyclicLR momentum length": lambda m, o: m.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8]),
    "CyclicLR not an optimizer": lambda m, o: m.CyclicLR(None, 0.01, 0.1),
    "SequentialLR empty": lambda m, o: m.SequentialLR(o, [], []),
    "SequentialLR not a scheduler": lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), object()], [3]),
    "SequentialLR plateau": lambda m, o: m.SequentialLR(
        o, [m.StepLR(o, 2), m.ReduceLROnPlateau(o)], [3]
    ),
    "SequentialLR milestones": lambda m, o: m.SequentialLR(
        o, [m.StepLR(o, 2), m.StepLR(o, 3)], [3, 6]
    ),
    "ChainedScheduler empty": lambda m, o: m.ChainedScheduler([]),
    "ChainedScheduler not a scheduler": lambda m, o: m.ChainedScheduler(
        [m.StepLR(o, 2), object()], o
    ),
    "ChainedScheduler plateau": lambda m, o: m.ChainedScheduler([m.ReduceLROnPlateau(o)]),
    "ChainedScheduler without optimizer attribute": lambda m, o: m.ChainedScheduler([object()]),
    "ReduceLROnPlateau factor": lambda m, o: m.ReduceLROnPlateau(o, factor=1.0),
    "ReduceLROnPlateau not an optimizer": lambda m, o: m.ReduceLROnPlateau([1, 2]),
    "ReduceLROnPlateau min_lr length": lambda m, o: m.ReduceLROnPlateau(o, min_lr=[0.1]),
    "ReduceLROnPlateau mode": lambda m, o: m.ReduceLROnPlateau(o, mode="avg"),
    "ReduceLROnPlateau threshold mode": lambda m, o: m.ReduceLROnPlateau(o, threshold_mode="pct"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_match_torch(device, case):
    ours_opt, theirs_opt = twin_optimizers(device, LRS, momentum=0.9)
    assert run_both(
        lambda: ERROR_CASES[case](M, ours_opt), lambda: ERROR_CASES[case](T, theirs_opt), case
    )


@pytest.mark.parametrize("name", ["CyclicLR", "OneCycleLR"])
def test_cycle_momentum_needs_momentum_or_betas(device, name):
    def build(m, o, cycle_momentum):
        if name == "CyclicLR":
            return m.CyclicLR(o, 0.01, 0.1, cycle_momentum=cycle_momentum)
        return m.OneCycleLR(o, 1.0, total_steps=10, cycle_momentum=cycle_momentum)

    ours_opt, theirs_opt = _base_optimizers(device)
    assert run_both(lambda: build(M, ours_opt, True), lambda: build(T, theirs_opt, True), name)
    ours_opt, theirs_opt = _base_optimizers(device)
    assert not run_both(
        lambda: build(M, ours_opt, False), lambda: build(T, theirs_opt, False), name
    )


@pytest.mark.parametrize("name", ["SequentialLR", "ChainedScheduler"])
def test_schedulers_of_different_optimizers_are_rejected(device, name):
    def combine(m, o, other):
        if name == "SequentialLR":
            return m.SequentialLR(o, [m.StepLR(o, 2), m.StepLR(other, 2)], [3])
        return m.ChainedScheduler([m.StepLR(o, 2), m.StepLR(other, 2)])

    ours, theirs = twin_optimizers(device, LRS)
    ours_other, theirs_other = twin_optimizers(device, LRS)
    assert run_both(
        lambda: combine(M, ours, ours_other), lambda: combine(T, theirs, theirs_other), name
    )


def test_plateau_min_lr_list_after_a_new_param_group(device):
    # A list of min_lrs no longer matches once a group is added: torch's RuntimeError at the
    # next cut; a single min_lr just extends to the new group.
    for min_lr in ([0.0, 0.0], 0.001):
        ours_opt, theirs_opt = twin_optimizers(device, LRS)
        ours = M.ReduceLROnPlateau(ours_opt, patience=0, min_lr=min_lr)
        theirs = T.ReduceLROnPlateau(theirs_opt, patience=0, min_lr=min_lr)
        ours_opt.add_param_group({"params": [minireg.Parameter(np.zeros(1))], "lr": 0.3})
        theirs_opt.add_param_group(
            {"params": [torch.nn.Parameter(torch.zeros(1, device=device))], "lr": 0.3}
        )
        raised = [
            run_both(
                functools.partial(ours.step, m), functools.partial(theirs.step, m), f"{min_lr}"
            )
            for m in (1.0, 2.0, 3.0)
        ]
        assert any(raised) == isinstance(min_lr, list)
        compare_groups(ours_opt, theirs_opt, ("lr",), f"min_lr={min_lr}")
