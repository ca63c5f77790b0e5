"""The engine's in-place norm twins give exactly the textbook kernels' results.

The normalisation layers run ``minireg._engine.norm_twins`` (``batch_norm_with_statistics_``,
``layer_norm_``, ...), which write their steps into one or two arrays of their own instead
of fresh temporaries.  Here each twin and its textbook kernel run on the same arguments,
over every option (training or not, running statistics, weight, bias, the forward's saved
statistics or recomputed ones, momentum, eps -- zero and negative included), three
dtypes (and parameters of a wider dtype than the data), and every shape class: 0-d and
1-d inputs (rejected), empty batches, empty channels or rows, one value per channel, odd
sizes, and rows longer than one summation run.  Data carry NaN, infinities, signed zeros
and extreme magnitudes.  Every returned array, the running statistics after the call,
any error and any warning must be the same; arrays are compared by their bytes, NaN's
sign and payload included (the twins keep the textbook's operand order, so even those
agree).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as F
from minireg._engine import norm_twins

SPECIALS = [np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, -1e30, 1e-30]
shape_classes = st.one_of(
    st.sampled_from([(), (3,), (0, 3), (4, 0), (2, 3, 0), (1, 3), (1, 3, 1), (2, 1, 1, 1)]),
    st.tuples(st.integers(1, 6), st.integers(1, 4)),
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 9)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)),
    st.sampled_from([(4099, 2), (2, 3, 4099), (1, 2, 2, 2, 3)]),  # past one summation run
)
float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])


def same_bytes(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def values(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, special: bool
) -> np.ndarray:
    """Normal values at a random scale and offset; with ``special``, a third replaced by
    NaN, infinities, signed zeros or extreme magnitudes."""
    scale, offset = rng.choice([1e-3, 1.0, 1e3]), rng.choice([0.0, 5.0])
    with np.errstate(over="ignore", under="ignore"):
        out = (offset + scale * rng.standard_normal(shape)).astype(dtype)
        if special:
            chosen = rng.random(shape) < 1 / 3
            out = np.where(chosen, np.asarray(rng.choice(SPECIALS, size=shape)).astype(dtype), out)
    return np.asarray(out, dtype)


Outcome = tuple[str, Any, list[str]]


def outcome(call: Any) -> Outcome:
    """``("ok", result, warnings)`` or ``("error", (type, message), warnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", call())
        except Exception as error:  # compared, not swallowed
            result = ("error", (type(error), str(error)))
    return (*result, sorted(str(w.message) for w in caught))


def assert_same_outcome(textbook: Outcome, twin: Outcome) -> None:
    assert textbook[0] == twin[0], (textbook, twin)
    assert textbook[2] == twin[2], "warnings"
    if textbook[0] == "error":
        assert textbook[1] == twin[1]
        return
    assert len(textbook[1]) == len(twin[1])
    for i, (ours, theirs) in enumerate(zip(twin[1], textbook[1], strict=True)):
        assert same_bytes(ours, theirs), f"result [{i}]: {ours!r} vs {theirs!r}"


# Batch and instance norm: (forward, its twin, backward, its twin, momenta, eps values),
# both called as (x, running_mean, running_var, weight, bias, batch_statistics, momentum, eps).
WITH_STATISTICS = {
    "batch_norm": (
        F.batch_norm_with_statistics,
        norm_twins.batch_norm_with_statistics_,
        F.batch_norm_backward,
        norm_twins.batch_norm_backward_,
        [0.1, 0.0, 1.0, 1 / 3],
        [1e-5, 1e-3, 0.0, -1.0],
    ),
    "instance_norm": (
        F.instance_norm_with_statistics,
        norm_twins.instance_norm_with_statistics_,
        F.instance_norm_backward,
        norm_twins.instance_norm_backward_,
        [0.1, 0.0, 1.0],
        [1e-5, 0.0, -1.0],
    ),
}


@pytest.mark.parametrize("name", list(WITH_STATISTICS))
@given(
    data=st.data(),
    shape=shape_classes,
    dtype=float_dtypes,
    special=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_batch_and_instance_norm_twins(name, data, shape, dtype, special, seed):
    forward_, forward_twin, backward_, backward_twin, momenta, eps_values = WITH_STATISTICS[name]
    rng = np.random.default_rng(seed)
    param_dtype = data.draw(st.sampled_from([dtype, dtype, np.float64]), label="param dtype")
    c = shape[1] if len(shape) > 1 else 3
    batch_statistics = data.draw(st.booleans(), label="training / use_input_stats")
    running = data.draw(st.booleans(), label="running statistics")
    with_weight, with_bias = data.draw(st.booleans(), "weight"), data.draw(st.booleans(), "bias")
    weight = values(rng, (c,), param_dtype, special) if with_weight else None
    bias = values(rng, (c,), param_dtype, special) if with_bias else None
    momentum = data.draw(st.sampled_from(momenta), label="momentum")
    eps = data.draw(st.sampled_from(eps_values), label="eps")
    x, dy = values(rng, shape, dtype, special), values(rng, shape, dtype, special)
    mean = values(rng, (c,), param_dtype, special)
    var = np.abs(values(rng, (c,), param_dtype, special))
    buffers: dict[str, list[np.ndarray]] = {}

    def forward(kernel: Any, side: str) -> Any:
        buffers[side] = [mean.copy(), var.copy()] if running else [None, None]  # type: ignore[list-item]
        return kernel(x, *buffers[side], weight, bias, batch_statistics, momentum, eps)

    textbook = outcome(lambda: forward(forward_, "textbook"))
    twin = outcome(lambda: forward(forward_twin, "twin"))
    assert_same_outcome(textbook, twin)
    for ours, theirs in zip(buffers["twin"], buffers["textbook"], strict=True):
        assert (ours is None and theirs is None) or same_bytes(ours, theirs), "running statistics"
    if textbook[0] == "error":
        return
    _, save_mean, save_invstd = textbook[1]
    for saved in ({}, {"save_mean": save_mean, "save_invstd": save_invstd}):
        arguments = (dy, x, *buffers["textbook"], weight, batch_statistics, eps)
        assert_same_outcome(
            outcome(lambda: backward_(*arguments, **saved)),  # noqa: B023
            outcome(lambda: backward_twin(*arguments, **saved)),  # noqa: B023
        )


@given(
    data=st.data(),
    shape=st.one_of(
        shape_classes,
        st.sampled_from([(2, 8193), (3, 2, 4096), (5,)]),  # rows past one summation run; 1-d
    ),
    dtype=float_dtypes,
    special=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_layer_norm_twins(data, shape, dtype, special, seed):
    rng = np.random.default_rng(seed)
    param_dtype = data.draw(st.sampled_from([dtype, dtype, np.float64]), label="param dtype")
    trailing = data.draw(st.integers(0, min(len(shape), 3)), label="normalised dimensions")
    normalized_shape = shape[len(shape) - trailing :]
    if data.draw(st.integers(0, 9), label="wrong parameter shape") == 0:
        normalized_shape = (*normalized_shape, 2)
    with_weight, with_bias = data.draw(st.booleans(), "weight"), data.draw(st.booleans(), "bias")
    weight = values(rng, normalized_shape, param_dtype, special) if with_weight else None
    bias = values(rng, normalized_shape, param_dtype, special) if with_bias else None
    eps = data.draw(st.sampled_from([1e-5, 1.0, 0.0]), label="eps")
    x, dy = values(rng, shape, dtype, special), values(rng, shape, dtype, special)
    forward = (x, normalized_shape, weight, bias, eps)
    textbook = outcome(lambda: (F.layer_norm(*forward),))
    assert_same_outcome(textbook, outcome(lambda: (norm_twins.layer_norm_(*forward),)))
    if textbook[0] == "ok":
        backward = (dy, x, normalized_shape, weight, eps)
        assert_same_outcome(
            outcome(lambda: F.layer_norm_backward(*backward)),
            outcome(lambda: norm_twins.layer_norm_backward_(*backward)),
        )


@given(
    data=st.data(),
    shape=shape_classes,
    dtype=float_dtypes,
    special=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_group_norm_twins(data, shape, dtype, special, seed):
    rng = np.random.default_rng(seed)
    param_dtype = data.draw(st.sampled_from([dtype, dtype, np.float64]), label="param dtype")
    c = shape[1] if len(shape) > 1 else 3
    divisors = [g for g in range(1, c + 1) if c % g == 0] or [1]
    num_groups = data.draw(st.sampled_from([*divisors, c + 1, 0]), label="num_groups")
    with_weight, with_bias = data.draw(st.booleans(), "weight"), data.draw(st.booleans(), "bias")
    weight = values(rng, (c,), param_dtype, special) if with_weight else None
    bias = values(rng, (c,), param_dtype, special) if with_bias else None
    eps = data.draw(st.sampled_from([1e-5, 1.0, 0.0]), label="eps")
    x, dy = values(rng, shape, dtype, special), values(rng, shape, dtype, special)
    forward = (x, num_groups, weight, bias, eps)
    textbook = outcome(lambda: (F.group_norm(*forward),))
    assert_same_outcome(textbook, outcome(lambda: (norm_twins.group_norm_(*forward),)))
    if textbook[0] == "ok":
        backward = (dy, x, num_groups, weight, eps)
        assert_same_outcome(
            outcome(lambda: F.group_norm_backward(*backward)),
            outcome(lambda: norm_twins.group_norm_backward_(*backward)),
        )


def test_twins_leave_their_arguments_alone():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    for a in (x, dy, weight, bias):
        a.flags.writeable = False  # a write into any of them raises
    for forward, backward in [
        (norm_twins.batch_norm_with_statistics_, norm_twins.batch_norm_backward_),
        (norm_twins.instance_norm_with_statistics_, norm_twins.instance_norm_backward_),
    ]:
        _, save_mean, save_invstd = forward(x, None, None, weight, bias, True)
        saved = {"save_mean": save_mean, "save_invstd": save_invstd}
        backward(dy, x, None, None, weight, True, **saved)
        backward(dy, x, np.zeros(3), np.ones(3), weight, False)
    lw, lb = rng.standard_normal(5), rng.standard_normal(5)
    lw.flags.writeable = lb.flags.writeable = False
    norm_twins.layer_norm_(x, (5,), lw, lb)
    norm_twins.layer_norm_backward_(dy, x, (5,), lw)
    norm_twins.group_norm_(x, 3, weight, bias)
    norm_twins.group_norm_backward_(dy, x, 3, weight)


BATCH = ("batchnorm", "batch_norm_with_statistics_", "batch_norm_backward_")
INSTANCE = ("instancenorm", "instance_norm_with_statistics_", "instance_norm_backward_")
LAYERS = {  # name: (arguments, input shape, module, forward twin, backward twin)
    "BatchNorm1d": ((3,), (4, 3), *BATCH),
    "BatchNorm2d": ((3,), (4, 3, 2, 2), *BATCH),
    "InstanceNorm1d": ((3,), (4, 3, 5), *INSTANCE),
    "LayerNorm": ((5,), (4, 3, 5), "normalization", "layer_norm_", "layer_norm_backward_"),
    "GroupNorm": ((3, 6), (4, 6, 5), "normalization", "group_norm_", "group_norm_backward_"),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_the_layers_run_the_twins(name, monkeypatch):
    """Each layer's forward and backward call its twins (never the textbook temporaries)."""
    args, shape, module_name, *twins = LAYERS[name]
    layer_module = importlib.import_module(f"minireg.nn.modules.{module_name}")
    calls: list[str] = []
    for twin in twins:
        original = getattr(layer_module, twin)

        def spy(*a: Any, _original: Any = original, _name: str = twin, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*a, **kwargs)

        monkeypatch.setattr(layer_module, twin, spy)
    layer = getattr(minireg.nn, name)(*args)
    layer(np.ones(shape))
    layer.backward(np.ones(shape))
    assert calls == twins
