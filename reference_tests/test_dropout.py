"""Dropout, Dropout1d/2d/3d against torch.

NumPy cannot replay torch's random stream, so the mask is tested in two halves:

* **given torch's mask, the numbers are torch's bit for bit** (on CPU).  An input with no
  zero entry makes the mask visible (``out != 0``); minireg, fed that mask, must give
  torch's output exactly, and torch autograd's gradient exactly.  This pins the scale
  ``fl(1/fl(1-p))``: ``x/(1-p)`` differs from it by an ULP for 10-25 % of float32 inputs
  when ``p != 0.5``.  On CUDA torch uses a fused kernel whose scale may round differently
  (TORCH_NOTES §8), so there the comparison uses ``tolerance(dtype, device)``.
* **minireg's own masks follow the law**: the number of kept units is Binomial(n, 1-p),
  checked with a two-sided normal-approximation test at level ALPHA = 1e-6 (n = 20 000
  draws and p in [0.01, 0.99], so n·q·(1-q) >= 198 and the approximation is good at that
  level); channel masks are constant over each channel.  The mask is drawn from a random
  byte per unit plus 32 more bits on a tie with 1-p's first byte (1 in 256 units), so two
  more tests aim at that draw: the keep rate over 2**23 units for awkward p, which tells
  1-p from its 8-bit roundings (dropping every tie puts all four p 15 or more standard
  deviations off, keeping every tie three of them 8 or more), and independence of units
  1, 7, 8 and 9 apart (within and across the 64-bit words the bytes come from).

Errors and warnings are compared with torch's (type and text).
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as F
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    dtypes,
    recorded_warnings,
    to_numpy,
    to_torch,
    tolerance,
)

ALPHA = 1e-6  # level of the two-sided binomial tests
Z = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)

probabilities = st.one_of(st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.9]), st.floats(0.01, 0.99))
seeds = st.integers(0, 2**31 - 1)
small_shapes = st.lists(st.integers(1, 7), min_size=0, max_size=4).map(tuple)


def nonzero_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Data with |x| >= 0.1 everywhere, so a dropped unit is the only way to get 0."""
    x = rng.standard_normal(shape)
    return (np.sign(x + (x == 0)) * (0.1 + np.abs(x))).astype(dtype)


def assert_same(actual: np.ndarray, expected: torch.Tensor, device: str, what: str) -> None:
    """Bitwise on CPU (values, dtype, signs of zeros, nan positions); tolerance on CUDA."""
    expected_np = to_numpy(expected)
    if device == "cpu":
        assert actual.dtype == expected_np.dtype, what
        np.testing.assert_array_equal(actual, expected_np, err_msg=what)
        np.testing.assert_array_equal(
            np.signbit(actual), np.signbit(expected_np), err_msg=what + " (sign)"
        )
    else:
        assert_close(actual, expected, *tolerance(actual.dtype, device), what=what)


def binomial_ok(kept: int, n: int, q: float) -> bool:
    """Two-sided test at level ALPHA that ``kept`` ~ Binomial(n, q)."""
    return abs(kept - n * q) <= Z * np.sqrt(n * q * (1 - q))


# ---------------------------------------------------------------- values given torch's mask
@given(dtype=dtypes, p=probabilities, shape=small_shapes, seed=seeds)
def test_output_and_grad_match_torch_given_torchs_mask(device, dtype, p, shape, seed):
    rng = np.random.default_rng(seed)
    x = nonzero_array(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    torch.manual_seed(seed)
    xt = to_torch(x, device, requires_grad=True)
    out_t = TF.dropout(xt, p)
    out_t.backward(to_torch(g, device))
    mask = to_numpy(out_t) != 0

    ours = F.dropout_with_mask(x, mask, p)
    assert_same(ours, out_t, device, f"forward p={p}")
    assert_same(F.dropout_backward(g, mask, p), xt.grad, device, f"backward p={p}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.2, 0.3, 0.6, 0.9, 0.999])  # not 0.5, where both agree
def test_kept_values_are_x_times_the_rounded_reciprocal(dtype, p):
    # By hand: torch divides the 0/1 mask by (1-p) rounded to the dtype, then multiplies.
    x = nonzero_array(np.random.default_rng(0), (400,), dtype)
    mask = np.ones(x.shape, dtype=bool)
    reciprocal = dtype(1) / dtype(1 - p)
    out = F.dropout_with_mask(x, mask, p)
    np.testing.assert_array_equal(out, x * reciprocal)
    assert out.dtype == dtype
    if dtype == np.float32:  # the trap is real: dividing by (1-p) gives other numbers
        assert np.any(out != x / dtype(1 - p))


# ---------------------------------------------------------------------------- minireg's own masks
@given(dtype=dtypes, p=probabilities, seed=seeds)
def test_kept_fraction_is_binomial(dtype, p, seed):
    n = 20_000
    x = np.ones(n, dtype)
    out, mask = F.dropout(x, p, generator=np.random.default_rng(seed), return_mask=True)
    kept = int(np.count_nonzero(out))
    assert kept == int(mask.sum())
    assert binomial_ok(kept, n, 1 - p), (kept, n, p)
    # torch's masks obey the same law (this checks the test as much as torch).
    torch.manual_seed(seed)
    assert binomial_ok(int(TF.dropout(torch.ones(n), p).count_nonzero()), n, 1 - p)


def test_binomial_test_has_power():
    # The test above must be able to fail: 20 000 Bernoulli(0.7) draws pass for q = 0.7 and
    # are rejected for q = 0.68 (6 standard deviations away) and for q = 0.3 (p for 1-p).
    kept = int(np.count_nonzero(np.random.default_rng(1).random(20_000) < 0.7))
    assert binomial_ok(kept, 20_000, 0.7)
    assert not binomial_ok(kept, 20_000, 0.68) and not binomial_ok(kept, 20_000, 0.3)


@given(p=probabilities, seed=seeds)
def test_channel_mask_kept_fraction_is_binomial(p, seed):
    x = np.ones((200, 100, 3), np.float32)
    out, mask = F.dropout1d(x, p, generator=np.random.default_rng(seed), return_mask=True)
    assert mask.shape == (200, 100, 1)
    assert binomial_ok(int(mask.sum()), mask.size, 1 - p)
    assert np.array_equal(out != 0, np.broadcast_to(mask, x.shape))


@pytest.mark.parametrize("p", [0.1, 1 / 3, 0.7, 0.999])
def test_keep_rate_resolves_awkward_p(p):
    # 1-p is not a multiple of 1/256 here, so the 32 tie-breaking bits matter: dropping
    # (or keeping) every tie moves the keep rate by up to 1/256, far outside these bounds.
    # At p = 0.999 every kept unit comes through a tie.
    n = 2**23
    mask = F.dropout_mask((n,), p, np.random.default_rng(12))
    assert mask.dtype == bool and mask.shape == (n,)
    assert binomial_ok(int(mask.sum()), n, 1 - p), (int(mask.sum()) / n, 1 - p)


@pytest.mark.parametrize("p", [0.5, 1 / 3])
@pytest.mark.parametrize("lag", [1, 7, 8, 9])
def test_units_lag_apart_are_independent(p, lag):
    # Disjoint pairs (i, i + lag): both kept ~ Binomial(pairs, (1-p)^2) if units are independent.
    n = 2 * lag * 50_000
    blocks = F.dropout_mask((n,), p, np.random.default_rng(lag)).reshape(-1, 2, lag)
    both = int(np.count_nonzero(blocks[:, 0] & blocks[:, 1]))
    assert binomial_ok(both, n // 2, (1 - p) ** 2), (both / (n // 2), (1 - p) ** 2)


# ---------------------------------------------------------------------------- channel-wise dropout
CHANNEL_CASES = [
    # (minireg function, torch function, input shape, mask shape)
    (F.dropout1d, TF.dropout1d, (4, 5, 7), (4, 5, 1)),
    (F.dropout1d, TF.dropout1d, (5, 7), (5, 1)),
    (F.dropout2d, TF.dropout2d, (3, 4, 5, 6), (3, 4, 1, 1)),
    (F.dropout2d, TF.dropout2d, (3, 4, 5), (3, 4, 1)),  # torch reads 3-D as (N, C, L)
    (F.dropout3d, TF.dropout3d, (2, 3, 4, 2, 3), (2, 3, 1, 1, 1)),
    (F.dropout3d, TF.dropout3d, (3, 4, 2, 3), (3, 1, 1, 1)),  # unbatched (C, D, H, W)
    (
        F.dropout3d,
        TF.dropout3d,
        (4, 2, 3),
        (4, 1, 1),
    ),  # torch adds a batch dim to any non-5-D input
]


@pytest.mark.filterwarnings("ignore:dropout[23]d")
@pytest.mark.parametrize("ours_fn, torch_fn, shape, mask_shape", CHANNEL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(p=probabilities, seed=seeds)
def test_channel_dropout_matches_torch_given_torchs_mask(
    device, dtype, ours_fn, torch_fn, shape, mask_shape, p, seed
):
    rng = np.random.default_rng(seed)
    x = nonzero_array(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    torch.manual_seed(seed)
    xt = to_torch(x, device, requires_grad=True)
    out_t = torch_fn(xt, p)
    out_t.backward(to_torch(g, device))
    spatial = tuple(axis for axis, size in enumerate(mask_shape) if size == 1)
    torch_kept = to_numpy(out_t) != 0
    torch_mask = torch_kept.any(axis=spatial, keepdims=True)
    assert np.array_equal(torch_kept, np.broadcast_to(torch_mask, shape)), (
        "torch zeroes whole channels"
    )

    out, mask = ours_fn(x, p, generator=rng, return_mask=True)
    assert mask.shape == mask_shape
    assert np.array_equal(out != 0, np.broadcast_to(mask, shape)), "minireg zeroes whole channels"
    assert_same(
        F.dropout_with_mask(x, torch_mask, p), out_t, device, "forward with torch's channel mask"
    )
    assert_same(
        F.dropout_backward(g, torch_mask, p), xt.grad, device, "backward with torch's channel mask"
    )


# ---------------------------------------------------------------------------- modules
MODULES = [
    (minireg.nn.Dropout, torch.nn.Dropout, (6, 9)),
    (minireg.nn.Dropout1d, torch.nn.Dropout1d, (3, 4, 5)),
    (minireg.nn.Dropout2d, torch.nn.Dropout2d, (3, 4, 5, 2)),
    (minireg.nn.Dropout3d, torch.nn.Dropout3d, (2, 3, 4, 2, 3)),
]


@pytest.mark.parametrize("ours_cls, torch_cls, shape", MODULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(p=probabilities, seed=seeds)
def test_module_backward_uses_the_forward_mask(device, dtype, ours_cls, torch_cls, shape, p, seed):
    # torch's algorithm given a mask m: noise = m.div(1-p); out = x * noise; autograd through it.
    rng = np.random.default_rng(seed)
    x = nonzero_array(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    layer = ours_cls(p, generator=np.random.default_rng(seed + 1))
    out = layer(x)
    grad = layer.backward(g)
    mask = out != 0
    xt = to_torch(x, device, requires_grad=True)
    out_t = xt * to_torch(mask, device).to(xt.dtype).div(1 - p)
    out_t.backward(to_torch(g, device))
    assert_same(out, out_t, device, "forward")
    assert_same(grad, xt.grad, device, "backward")
    assert repr(layer) == repr(torch_cls(p))


@pytest.mark.parametrize("ours_cls, torch_cls, shape", MODULES)
def test_module_eval_is_identity_forward_and_backward(ours_cls, torch_cls, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer = ours_cls(0.5).eval()
    assert layer(x) is x
    g = np.ones(shape)
    assert layer.backward(g) is g
    assert torch_cls(0.5).eval()(to_torch(x)).equal(to_torch(x))


def test_module_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        minireg.nn.Dropout(0.5).backward(np.ones(3))


# ---------------------------------------------------------------- limits p = 0, eval, p = 1
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_cases_return_the_input_itself_as_torch(dtype):
    x = np.arange(1, 7, dtype=dtype).reshape(2, 3)
    xt = to_torch(x)
    for kwargs in [dict(p=0.0), dict(p=0.5, training=False), dict(p=1.0, training=False)]:
        assert F.dropout(x, **kwargs) is x
        assert TF.dropout(xt, **kwargs) is xt
    empty = np.zeros((0, 3), dtype)
    assert F.dropout(empty, 0.5) is empty
    out, mask = F.dropout(x, 0.0, return_mask=True)
    assert out is x and mask is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "ours_fn, torch_fn, shape",
    [
        (F.dropout, TF.dropout, (8,)),
        (F.dropout2d, TF.dropout2d, (2, 4)),
        (F.dropout3d, TF.dropout3d, (8,)),
    ],
)
@pytest.mark.filterwarnings("ignore:dropout[23]d")
def test_p_one_multiplies_by_zero_as_torch(device, dtype, ours_fn, torch_fn, shape):
    # -x -> -0.0, inf and nan -> nan; channel dropout builds no mask, so any rank is accepted.
    x = np.array([-1.5, 2.0, np.inf, -np.inf, np.nan, 0.0, -0.0, 3.0], dtype).reshape(shape)
    xt = to_torch(x, device, requires_grad=True)
    out_t = torch_fn(xt, 1.0)
    out_t.backward(torch.ones_like(out_t))
    out, mask = ours_fn(x, 1.0, return_mask=True)
    assert_same(out, out_t, device, "p=1 forward")
    assert_same(F.dropout_backward(np.ones_like(x), mask, 1.0), xt.grad, device, "p=1 backward")


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropped_inf_becomes_nan_as_torch(device, p):
    x = np.full(64, np.inf, np.float32)
    torch.manual_seed(3)
    out_t = TF.dropout(to_torch(x, device), p)
    mask = to_numpy(out_t) == np.inf
    assert_same(F.dropout_with_mask(x, mask, p), out_t, device, "inf input")
    assert np.isnan(F.dropout_with_mask(x, mask, p)[~mask]).all()


# ---------------------------------------------------------------- in-place, dtypes, generators
@pytest.mark.parametrize(
    "fn, shape", [(F.dropout, (4, 6)), (F.dropout2d, (2, 3, 4, 5)), (F.dropout1d, (3, 7))]
)
def test_inplace_writes_into_the_input(fn, shape):
    x = nonzero_array(np.random.default_rng(2), shape, np.float32)
    before = x.copy()
    out, mask = fn(x, 0.4, inplace=True, generator=np.random.default_rng(5), return_mask=True)
    assert out is x
    np.testing.assert_array_equal(x, F.dropout_with_mask(before, mask, 0.4))


@given(
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (2, 3, 1, 5)]),
    p=st.sampled_from([0.1, 1 / 3, 0.5, 0.7, 0.999, 1.0]),
    channel=st.booleans(),
    special=st.lists(st.sampled_from([np.nan, np.inf, -np.inf, -0.0]), max_size=3),
    seed=seeds,
)
def test_inplace_gives_the_bits_of_the_new_array(dtype, shape, p, channel, special, seed):
    """dropout_with_mask's two forms -- x * m * s into a new array, and x *= m, x *= s in
    place -- agree bit for bit: 0-d, empty and odd shapes, channel masks, NaN, inf, -0."""
    rng = np.random.default_rng(seed)
    x = np.asarray((rng.standard_normal(shape) * 3).astype(dtype))
    for value in special:
        if x.size:
            x.flat[rng.integers(x.size)] = value
    mask_shape = shape[:2] + (1,) * (len(shape) - 2) if channel and len(shape) >= 2 else shape
    mask = rng.random(mask_shape) < 0.5
    expected = F.dropout_with_mask(x, mask, p)
    inplace = x.copy()
    out = F.dropout_with_mask(inplace, mask, p, inplace=True)
    assert out is inplace and type(expected) is np.ndarray
    assert (expected.dtype, expected.shape) == (out.dtype, out.shape) == (x.dtype, x.shape)
    assert expected.tobytes() == out.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_dtype_and_shape_preserved(dtype, shape):
    out = F.dropout(np.ones(shape, dtype), 0.5)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == shape


def test_manual_seed_and_generator_reproduce_masks():
    x = np.ones((50, 4))
    minireg.manual_seed(7)
    first = F.dropout(x, 0.5)
    minireg.manual_seed(7)
    assert np.array_equal(F.dropout(x, 0.5), first)
    a = minireg.nn.Dropout2d(0.5, generator=np.random.default_rng(11))
    b = minireg.nn.Dropout2d(0.5, generator=np.random.default_rng(11))
    y = np.ones((8, 6, 2, 2))
    assert np.array_equal(a(y), b(y)) and np.array_equal(a(y), b(y))
    minireg.manual_seed(7)
    assert np.array_equal(
        minireg.nn.Dropout(0.5)(x), first
    )  # modules use the default generator too


# ---------------------------------------------------------------------------- errors and warnings
ERROR_CASES = [
    ("dropout", (5,), dict(p=-0.1)),
    ("dropout", (5,), dict(p=1.5, training=False)),
    ("dropout", (5,), dict(p=2)),
    ("dropout", (5,), dict(p=float("nan"))),  # passes torch's Python check, fails its C++ one
    ("dropout1d", (5,), dict(p=0.5)),
    ("dropout1d", (2, 3, 4, 5), dict(p=0.5, training=False)),
    ("dropout1d", (2, 3), dict(p=-1.0)),
    ("dropout2d", (5,), dict(p=0.5)),
    ("dropout2d", (), dict(p=0.5)),
    ("dropout3d", (), dict(p=0.5)),
    ("dropout3d", (2, 3, 4, 5, 6), dict(p=1.01)),
]


@pytest.mark.filterwarnings("ignore:dropout[23]d")
@pytest.mark.parametrize("name, shape, kwargs", ERROR_CASES)
def test_errors_match_torch(name, shape, kwargs):
    x = np.ones(shape, np.float32)
    assert_same_error(
        lambda: getattr(TF, name)(to_torch(x), **kwargs), lambda: getattr(F, name)(x, **kwargs)
    )


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_input_errors_match_torch(dtype):
    x = np.ones(4, dtype)
    assert_same_error(lambda: TF.dropout(torch.from_numpy(x), 0.5), lambda: F.dropout(x, 0.5))
    assert F.dropout(x, 1.0).dtype == dtype  # p = 1 multiplies by a zero of the input's dtype


@pytest.mark.parametrize("p", [-0.5, 1.5])
@pytest.mark.parametrize("name", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"])
def test_module_constructor_errors_match_torch(name, p):
    assert_same_error(lambda: getattr(torch.nn, name)(p), lambda: getattr(minireg.nn, name)(p))


@pytest.mark.parametrize(
    "name, shape",
    [
        ("dropout2d", (2, 3, 4)),
        ("dropout2d", (2, 3)),
        ("dropout2d", (1, 2, 3, 4, 5)),
        ("dropout3d", (2, 3, 4)),
        ("dropout3d", (2, 3)),
        ("dropout2d", (2, 3, 4, 5)),
        ("dropout3d", (2, 3, 4, 5)),
    ],
)
def test_warnings_match_torch(name, shape):
    x = np.ones(shape, np.float32)
    ours = recorded_warnings(lambda: getattr(F, name)(x, 0.5))
    theirs = recorded_warnings(lambda: getattr(TF, name)(to_torch(x), 0.5))
    assert ours == theirs
