"""Gradient clipping against torch.nn.utils: every norm type, dtypes, non-finite gradients, errors.

Tolerances: ``tolerance(dtype, device)`` for norms and clipped gradients.  torch sums a
float32 norm naively in float32 while NumPy sums pairwise, and both round each power and
the final root; over the few hundred elements drawn here that stays far below 1e-5
relative.  ``p = 0`` norms are counts and compare exactly under the same tolerance.
``clip_grad_value_`` is a clamp (no rounding), so it is compared bit for bit.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg._engine.blocking
import minireg._engine.clip
from minireg.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    flatten_parameters,
    get_total_norm,
)
from minireg.numerics import sum_of_squares
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    assert_same_outcome,
    assert_same_warnings,
    dtypes,
    random_array,
    set_grads,
    shapes,
    to_torch,
    tolerance,
    twin_parameters,
)
from reference_tests.test_blocking import bits, block_bytes

NORM_TYPES = [1, 2, 2.0, 3, 0.5, 2.5, math.inf, "inf", 0, -1, -0.5, -math.inf]


def make_twins(rng, shape_list, dtype, device, scale=1.0, none_every=0):
    """Parameters on both sides, with gradients (every ``none_every``-th one gets none)."""
    arrays = [random_array(rng, s, dtype) for s in shape_list]
    ours, theirs = twin_parameters(arrays, device)
    grads = [
        None
        if none_every and i % none_every == none_every - 1
        else random_array(rng, s, dtype, scale)
        for i, s in enumerate(shape_list)
    ]
    set_grads(ours, theirs, grads, device)
    return ours, theirs


def compare_grads(ours, theirs, rtol, atol, what):
    for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        if q.grad is None:
            assert p.grad is None, f"{what}: grad {i} should stay None"
        else:
            assert_close(p.grad, q.grad, rtol, atol, f"{what}: grad {i}")


def clip_both(ours, theirs, max_norm_factor, norm_type, rtol, atol, what, error_if_nonfinite=False):
    """Clip with max_norm = factor * (torch's total norm); compare the totals and the grads."""
    grads = [q.grad for q in theirs if q.grad is not None]
    try:
        reference = torch.nn.utils.get_total_norm(grads, norm_type)
        max_norm = max_norm_factor * float(reference)
    except RuntimeError:
        max_norm = 1.0  # torch cannot take this norm: the error itself gets compared below
    result = assert_same_outcome(
        lambda: torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, error_if_nonfinite),
        lambda: clip_grad_norm_(ours, max_norm, norm_type, error_if_nonfinite),
    )
    if result is not None:
        total_theirs, total_ours = result
        assert isinstance(total_ours, np.ndarray) and total_ours.shape == ()
        assert_close(total_ours, total_theirs, rtol, atol, f"{what}: total norm")
    compare_grads(ours, theirs, rtol, atol, what)


# ------------------------------------------------------------------------ clip_grad_norm_
@given(
    shape_list=st.lists(shapes, min_size=1, max_size=5),
    dtype=dtypes,
    norm_type=st.sampled_from(NORM_TYPES),
    factors=st.lists(
        st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 10.0, -0.5]), min_size=1, max_size=4
    ),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]),
    none_every=st.sampled_from([0, 2, 3]),
    seed=st.integers(0, 2**31),
)
def test_clip_grad_norm_trajectory_matches_torch(
    device, shape_list, dtype, norm_type, factors, scale, none_every, seed
):
    # Clip the same gradients again and again with different max_norm (below, at, above the
    # current total, zero, negative): each round starts from the previous round's result.
    rng = np.random.default_rng(seed)
    ours, theirs = make_twins(rng, shape_list, dtype, device, scale, none_every)
    rtol, atol = tolerance(dtype, device)
    for round_, factor in enumerate(factors):
        clip_both(ours, theirs, factor, norm_type, rtol, atol, f"round {round_} (factor {factor})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("factor", [0.25, 1.0, 4.0])
def test_clip_grad_norm_every_norm_type(device, dtype, norm_type, factor):
    # A fixed battery that always contains a 0-d gradient, a vector, a matrix, a 3-d
    # gradient, a parameter without gradient and a zero gradient.
    rng = np.random.default_rng(7)
    shape_list = [(), (5,), (3, 4), (2, 3, 2), (4,), (6,)]
    ours, theirs = make_twins(rng, shape_list, dtype, device, scale=3.0)
    for p, q in zip(ours[4:5], theirs[4:5], strict=True):
        p.grad = q.grad = None
    ours[5].grad[...] = 0
    theirs[5].grad.zero_()
    rtol, atol = tolerance(dtype, device)
    clip_both(ours, theirs, factor, norm_type, rtol, atol, f"p={norm_type!r}")


@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_empty_gradients_norms_and_errors_match_torch(device, norm_type):
    # An empty gradient: fine for p >= 0 except inf, an error for inf and negative p.
    rng = np.random.default_rng(3)
    ours, theirs = make_twins(rng, [(0,), (3,), (0, 2)], np.float32, device)
    rtol, atol = tolerance(np.float32, device)
    clip_both(ours, theirs, 0.5, norm_type, rtol, atol, f"p={norm_type!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_norm_exactly_at_the_total_still_scales(device, dtype):
    # The 1e-6 in the denominator: at max_norm == total the factor is total/(total+1e-6) < 1.
    ours, theirs = twin_parameters([np.zeros(3, dtype)], device)
    set_grads(ours, theirs, [np.array([0.3, -0.4, 0.0], dtype)], device)
    total = float(np.sqrt(np.float64(dtype(0.3)) ** 2 + np.float64(dtype(0.4)) ** 2))
    ours_total = clip_grad_norm_(ours, float(np.asarray(total, dtype)))
    theirs_total = torch.nn.utils.clip_grad_norm_(theirs, float(np.asarray(total, dtype)))
    rtol, atol = tolerance(dtype, device)
    assert_close(ours_total, theirs_total, rtol, atol, "total")
    assert_close(ours[0].grad, theirs[0].grad, rtol, atol, "grad")
    assert ours[0].grad[0] < dtype(0.3), "the gradient must be scaled by slightly less than 1"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2, 1, math.inf, 0.5, 0])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_gradients(device, dtype, norm_type, bad):
    rng = np.random.default_rng(11)
    ours, theirs = make_twins(rng, [(4,), (2, 3), ()], dtype, device)
    ours[1].grad[0, 1] = bad
    theirs[1].grad[0, 1] = bad
    before = [p.grad.copy() for p in ours]
    rtol, atol = tolerance(dtype, device)
    # With error_if_nonfinite the error is torch's, and no gradient has been touched.  (For
    # p = 0 the total stays finite: torch then clips without raising, and so do we.)
    clip_both(
        ours, theirs, 0.5, norm_type, rtol, atol, "error_if_nonfinite", error_if_nonfinite=True
    )
    total_nonfinite = not math.isfinite(
        float(torch.nn.utils.get_total_norm([q.grad for q in theirs], norm_type))
    )
    if total_nonfinite:
        for p, b in zip(ours, before, strict=True):
            np.testing.assert_array_equal(p.grad, b)
    # Without it the gradients are scaled by the non-finite norm (NaN or 0), as torch does.
    clip_both(ours, theirs, 0.5, norm_type, rtol, atol, "scaled anyway")


def test_mixed_dtypes_promote_the_total(device):
    # Per-tensor norms in their own dtype, the total in the promoted dtype, each gradient
    # multiplied in its own dtype.
    rng = np.random.default_rng(5)
    arrays = [random_array(rng, (6,), np.float32), random_array(rng, (3, 2), np.float64)]
    ours, theirs = twin_parameters(arrays, device)
    set_grads(ours, theirs, [random_array(rng, a.shape, a.dtype, 5.0) for a in arrays], device)
    total_ours = clip_grad_norm_(ours, 1.0)
    total_theirs = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total_ours.dtype == np.float64
    assert_close(total_ours, total_theirs, *tolerance(np.float32, device), "total")
    compare_grads(ours, theirs, *tolerance(np.float32, device), "grads")


def test_single_parameter_and_iterables(device):
    rng = np.random.default_rng(2)
    ours, theirs = make_twins(rng, [(3, 3)], np.float32, device, scale=4.0)
    rtol, atol = tolerance(np.float32, device)
    # a bare Parameter, then a generator, then a tuple
    assert_close(
        clip_grad_norm_(ours[0], 2.0),
        torch.nn.utils.clip_grad_norm_(theirs[0], 2.0),
        rtol,
        atol,
        "single",
    )
    assert_close(
        clip_grad_norm_((p for p in ours), 1.0),
        torch.nn.utils.clip_grad_norm_((q for q in theirs), 1.0),
        rtol,
        atol,
        "generator",
    )
    assert_close(
        clip_grad_norm_(tuple(ours), 0.5, 1),
        torch.nn.utils.clip_grad_norm_(tuple(theirs), 0.5, 1),
        rtol,
        atol,
        "tuple",
    )
    compare_grads(ours, theirs, rtol, atol, "after three clips")


def test_no_gradients_returns_float32_zero():
    params = [minireg.Parameter(np.ones(3)), minireg.Parameter(np.ones(2))]
    total = clip_grad_norm_(params, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(
        [torch.nn.Parameter(torch.ones(3, dtype=torch.float64))], 1.0
    )
    assert_close(total, expected, 0, 0, "no grads")
    assert all(p.grad is None for p in params)
    assert_close(get_total_norm([]), torch.nn.utils.get_total_norm([]), 0, 0, "get_total_norm([])")


def test_empty_generator_warns_like_torch():
    _, total = assert_same_warnings(
        lambda: torch.nn.utils.clip_grad_norm_((p for p in []), 1.0),
        lambda: clip_grad_norm_((p for p in []), 1.0),
    )
    assert total.dtype == np.float32 and total == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clip_grad_norm_([], 1.0)  # an empty list is not a generator: no warning
        clip_grad_norm_(iter([]), 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_norm=1.0, norm_type="fro"),
        dict(max_norm=1.0, norm_type=None),
        dict(max_norm="x"),
        dict(max_norm=None),
    ],
)
def test_bad_arguments_raise_like_torch(kwargs):
    p = minireg.Parameter(np.ones(2))
    p.grad = np.array([3.0, 4.0])
    q = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    q.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert_same_error(
        lambda: torch.nn.utils.clip_grad_norm_([q], **kwargs),
        lambda: clip_grad_norm_([p], **kwargs),
    )
    np.testing.assert_array_equal(p.grad, [3.0, 4.0])  # an argument error touches no gradient


# ------------------------------------------------------------------------ the two halves
@given(
    shape_list=st.lists(shapes, min_size=0, max_size=4),
    dtype=dtypes,
    norm_type=st.sampled_from(NORM_TYPES),
    nonfinite=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_get_total_norm_matches_torch(device, shape_list, dtype, norm_type, nonfinite, seed):
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(random_array(rng, s, dtype, 2.0)) for s in shape_list]
    if nonfinite and arrays and arrays[0].size:
        arrays[0].reshape(-1)[0] = np.inf
    tensors = [to_torch(a, device) for a in arrays]
    rtol, atol = tolerance(dtype, device)
    for error_if_nonfinite in (False, True):
        result = assert_same_outcome(
            lambda e=error_if_nonfinite: torch.nn.utils.get_total_norm(tensors, norm_type, e),
            lambda e=error_if_nonfinite: get_total_norm(arrays, norm_type, e),
        )
        if result is not None:
            assert_close(result[1], result[0], rtol, atol, f"p={norm_type!r}")
    if arrays:  # a single array is one tensor, not an iterable of rows
        result = assert_same_outcome(
            lambda: torch.nn.utils.get_total_norm(tensors[-1], norm_type),
            lambda: get_total_norm(arrays[-1], norm_type),
        )
        if result is not None:
            assert_close(result[1], result[0], rtol, atol, "single array")


@given(
    shape_list=st.lists(shapes, min_size=1, max_size=4),
    dtype=dtypes,
    total_dtype=dtypes,
    total=st.sampled_from([0.0, 0.5, 3.0, 1e3, math.inf, math.nan]),
    max_norm=st.sampled_from([0.0, 1.0, 2.5, -1.0]),
    seed=st.integers(0, 2**31),
)
def test_clip_grads_with_norm_matches_torch(
    device, shape_list, dtype, total_dtype, total, max_norm, seed
):
    # A given total norm, possibly in another dtype than the gradients (the coefficient is
    # computed in the total's dtype, then rounded to each gradient's).
    rng = np.random.default_rng(seed)
    ours, theirs = make_twins(rng, shape_list, dtype, device, none_every=3)
    total_np = np.asarray(total, dtype=total_dtype)
    assert clip_grads_with_norm_(ours, max_norm, total_np) is None
    torch.nn.utils.clip_grads_with_norm_(theirs, max_norm, to_torch(total_np, device))
    compare_grads(ours, theirs, *tolerance(dtype, device), "clip_grads_with_norm_")


# ------------------------------------------------------------------------ clip_grad_value_
@given(
    shape_list=st.lists(shapes, min_size=1, max_size=4),
    dtype=dtypes,
    clip_values=st.lists(
        st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, -1.0, math.inf, "0.7", 2]), min_size=1, max_size=3
    ),
    with_nan=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_clip_grad_value_matches_torch_bitwise(
    device, shape_list, dtype, clip_values, with_nan, seed
):
    # Negative clip values are not rejected: every element becomes clip_value.  NaN stays.
    rng = np.random.default_rng(seed)
    ours, theirs = make_twins(rng, shape_list, dtype, device, scale=2.0, none_every=3)
    if with_nan and ours[0].grad is not None and ours[0].grad.size:
        ours[0].grad.reshape(-1)[-1] = np.nan
        theirs[0].grad.view(-1)[-1] = math.nan
    for clip_value in clip_values:
        assert clip_grad_value_(ours, clip_value) is None
        torch.nn.utils.clip_grad_value_(theirs, clip_value)
        compare_grads(ours, theirs, 0.0, 0.0, f"clip_value={clip_value!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip_value", [-1.0, -0.25, 0.0, 0.25])
def test_clip_grad_value_small_and_negative_values(device, dtype, clip_value):
    # A negative clip_value is accepted and sets every element (NaN aside) to clip_value:
    # the clamp order (max with -v first, then min with v) decides that.
    rng = np.random.default_rng(1)
    ours, theirs = make_twins(rng, [(5,), (2, 3), ()], dtype, device)
    ours[0].grad[2] = np.nan
    theirs[0].grad[2] = math.nan
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    compare_grads(ours, theirs, 0.0, 0.0, f"clip_value={clip_value}")


def test_clip_grad_value_single_parameter_and_errors(device):
    p, q = (x[0] for x in twin_parameters([np.zeros(4, np.float32)], device))
    p.grad = np.array([-3.0, -0.5, 0.5, 3.0], np.float32)
    q.grad = to_torch(p.grad, device)
    clip_grad_value_(p, 1.0)
    torch.nn.utils.clip_grad_value_(q, 1.0)
    assert_close(p.grad, q.grad, 0, 0, "single Parameter")
    for bad in (None, "x"):
        assert_same_error(
            lambda b=bad: torch.nn.utils.clip_grad_value_(q, b),
            lambda b=bad: clip_grad_value_(p, b),
        )


@pytest.mark.parametrize("loc", [0.0, 3.0])
def test_sum_of_squares_is_accurate_for_1e7_float32(loc):
    """≤ 1e-6 relative to float64 (issue 5); a single float32 dot drifts further."""
    x = np.random.default_rng(5).normal(loc, 1.0, 10**7).astype(np.float32)
    reference = float(np.dot(x.astype(np.float64), x.astype(np.float64)))
    assert abs(sum_of_squares(x) - reference) / reference <= 1e-6
    norm = minireg.nn.utils.get_total_norm([x])
    assert norm.dtype == np.float32
    assert abs(float(norm) - reference**0.5) / reference**0.5 <= 1e-6


def test_unclipped_gradients_are_not_written():
    """A coefficient of exactly 1 skips the multiply: g * 1 == g bit for bit, so the result
    is torch's, and the gradients (-0.0 and NaN payloads included) are untouched."""
    grad = np.array([-0.0, 1e-45, 3.0, np.nan], dtype=np.float32)
    grad.flags.writeable = False  # any write would raise
    p = minireg.Parameter(np.zeros(4, dtype=np.float32))
    p.grad = grad
    norm = clip_grads_with_norm_([p], 1e6, np.array(3.0, dtype=np.float32))
    assert norm is None and p.grad is grad
    with pytest.raises(ValueError, match="read-only"):  # a coefficient below 1 does write
        clip_grads_with_norm_([p], 1.0, np.array(3.0, dtype=np.float32))


def test_clip_grads_with_norm_takes_a_generator():
    """A generator is read once, in the one pass that takes the gradients; the result is
    the list's, bit for bit."""
    results = []
    for as_generator in (True, False):
        params = [minireg.Parameter(np.zeros(3, dtype=np.float32)) for _ in range(2)]
        for p in params:
            p.grad = np.arange(3, dtype=np.float32) - 1.5
        given = (p for p in params) if as_generator else params
        clip_grads_with_norm_(given, 1.0, np.array(10.0, dtype=np.float32))
        results.append([p.grad.tobytes() for p in params])
    assert results[0] == results[1]
    assert results[1] != [(np.arange(3, dtype=np.float32) - 1.5).tobytes()] * 2  # it scaled


# ---------------------------------------------------------------- foreach: textbook and engine
FOREACH_NORM_TYPES = [2, 1, math.inf, 0.5, 3, -math.inf, 0, -1]
FOREACH_SHAPES = [(), (0,), (1,), (7,), (3, 5), (16,), (17,), (40,), (70,), (2, 0)]


def foreach_params(rng, shape_list, dtype, flat, nonfinite, none_every):
    """Parameters with gradients (float16, float32, float64 or both of the last two),
    flattened into one buffer when ``flat`` (one dtype only), a non-finite value in the
    first non-empty gradient, and every ``none_every``-th gradient removed."""
    dtypes_ = [np.float32, np.float64] if dtype == "mixed" else [dtype]
    params = []
    for i, shape in enumerate(shape_list):
        p = minireg.Parameter(random_array(rng, shape, dtypes_[i % len(dtypes_)]))
        p.grad = random_array(rng, shape, p.dtype, scale=10.0)
        params.append(p)
    if flat and params and dtype != "mixed":
        flatten_parameters(params)
    grads = [p.grad for p in params if p.grad.size]
    if nonfinite is not None and grads:
        grads[0].reshape(-1)[-1] = nonfinite
    for i, p in enumerate(params):
        if none_every and i % none_every == none_every - 1:
            p.grad = None
    return params


def run_all(params, given_order, max_norm, norm_type, foreach):
    """clip_grad_norm_, then clip_grads_with_norm_ with a float64 total: results or errors."""
    given_params = params[::-1] if given_order == "reversed" else params
    try:
        norm = bits(clip_grad_norm_(given_params, max_norm, norm_type, foreach=foreach))
    except RuntimeError as error:  # the inf-norm of an empty gradient
        norm = type(error)
    clip_grads_with_norm_(given_params, max_norm, np.array(2.5), foreach=foreach)
    return norm, [None if p.grad is None else bits(p.grad) for p in params]


@pytest.mark.parametrize("blocks", ["default", "tiny, 2 threads"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "mixed"])
@given(
    norm_type=st.sampled_from(FOREACH_NORM_TYPES),  # 2 first: the engine's case
    shape_list=st.lists(st.sampled_from(FOREACH_SHAPES), min_size=0, max_size=6),
    max_norm=st.sampled_from([0.0, 0.1, 1.0, 1e6, -1.0]),
    flat=st.booleans(),
    given_order=st.sampled_from(["as flattened", "reversed"]),
    nonfinite=st.sampled_from([None, math.nan, math.inf, -math.inf]),
    none_every=st.sampled_from([0, 3]),
    seed=st.integers(0, 2**31),
)
def test_foreach_false_and_the_engine_agree_bit_for_bit(
    blocks, dtype, norm_type, shape_list, max_norm, flat, given_order, nonfinite, none_every, seed
):
    """``foreach=False`` runs the textbook loop, ``None`` and ``True`` the engine where it
    applies (a flat buffer's norms in runs of equal sizes and its scaling in one
    multiplication, threads with tiny blocks): the same total norm and gradients, bit
    for bit.  Errors: the same type (torch words one of them per path, tested below)."""
    results = []
    for foreach in (False, None, True):
        rng = np.random.default_rng(seed)
        params = foreach_params(rng, shape_list, dtype, flat, nonfinite, none_every)
        with block_bytes(64, threads=2) if blocks != "default" else contextlib.nullcontext():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # overflow in float16 squares
                results.append(run_all(params, given_order, max_norm, norm_type, foreach))
    assert results[0] == results[1] == results[2]


@given(
    shape=st.sampled_from([(), (0,), (1,), (7,), (3, 5), (40,), (70,), (5, 33)]),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    layout=st.sampled_from(["c", "fortran", "strided"]),
    nonfinite=st.sampled_from([None, math.nan, math.inf]),
    block=st.sampled_from([None, 16, 64]),
    seed=st.integers(0, 2**31),
)
def test_engine_sum_of_squares_is_the_textbook_one(shape, dtype, layout, nonfinite, block, seed):
    """The engine's twin of ``numerics.sum_of_squares`` (one block without a loop) gives
    the same float64 number for every dtype, layout and block size."""
    x = random_array(np.random.default_rng(seed), shape, dtype, scale=30.0)
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "strided" and x.ndim:
        x = x[..., ::2]
    if nonfinite is not None and x.size:
        x.flat[0] = nonfinite
    with block_bytes(block) if block else contextlib.nullcontext():
        with np.errstate(over="ignore"):
            expected = sum_of_squares(x)
            actual = minireg._engine.clip.sum_of_squares(x)
    assert bits(np.float64(actual)) == bits(np.float64(expected))


def test_foreach_false_runs_no_engine_code(monkeypatch):
    """With ``foreach=False`` the three functions never reach the engine, even on a flat
    buffer; with the default they do (so the trap below is live)."""

    def trap(*args, **kwargs):
        raise AssertionError("the engine ran")

    for name in ("two_norms", "scale_", "sums_of_squares_in_buffer", "sum_of_squares"):
        monkeypatch.setattr(minireg._engine.clip, name, trap)
    for name in ("apply_blocked", "run_in_threads"):
        monkeypatch.setattr(minireg._engine.blocking, name, trap)
    params = [minireg.Parameter(np.ones(n, dtype=np.float32)) for n in (3, 4, 5)]
    for p in params:
        p.grad = np.full(p.shape, 2.0, dtype=np.float32)
    flatten_parameters(params)
    total = get_total_norm([p.grad for p in params], foreach=False)
    clip_grads_with_norm_(params, 1.0, total, foreach=False)
    assert abs(clip_grad_norm_(params, 0.5, foreach=False) - 1.0) <= 1e-6  # clipped to 1, then 0.5
    with pytest.raises(AssertionError, match="the engine ran"):
        clip_grad_norm_(params, 0.5)


@pytest.mark.parametrize("foreach", [None, False, True])
def test_foreach_keyword_and_its_error_wording_match_torch(device, foreach):
    """torch 2.13's signatures (``foreach`` last), and the inf-norm of an empty gradient:
    ``_foreach_norm`` words the error on the foreach path, ``linalg.vector_norm`` on the
    loop."""
    for ours, theirs in [
        (clip_grad_norm_, torch.nn.utils.clip_grad_norm_),
        (get_total_norm, torch.nn.utils.get_total_norm),
        (clip_grads_with_norm_, torch.nn.utils.clip_grads_with_norm_),
    ]:
        ours_params = inspect.signature(ours).parameters
        theirs_params = inspect.signature(theirs).parameters
        assert list(ours_params) == list(theirs_params)
        defaults = [p.default for p in ours_params.values()]
        assert defaults == [p.default for p in theirs_params.values()]
    rng = np.random.default_rng(4)
    ours, theirs = make_twins(rng, [(3,), (0,)], np.float32, device)
    assert_same_error(
        lambda: torch.nn.utils.clip_grad_norm_(theirs, 1.0, math.inf, foreach=foreach),
        lambda: clip_grad_norm_(ours, 1.0, math.inf, foreach=foreach),
    )
    result = assert_same_outcome(
        lambda: torch.nn.utils.clip_grad_norm_(theirs, 1.0, 2.0, foreach=foreach),
        lambda: clip_grad_norm_(ours, 1.0, 2.0, foreach=foreach),
    )
    assert_close(result[1], result[0], *tolerance(np.float32, device), f"foreach={foreach}")
