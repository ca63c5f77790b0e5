"""Weight initialisation against torch.nn.init.

NumPy cannot reproduce torch's random stream, so the tests split each initialiser in two:

* **Deterministic parts, compared with torch exactly**: gains, fans, constant/eye/dirac
  fills, and the bounds and standard deviations.  For those, torch's ``uniform_`` /
  ``normal_`` are intercepted to record the arguments torch passes, and minireg is fed a
  stub generator whose uniform draws are all 0 and whose normal draws are all 1, so that
  its output *is* its lower bound (``a + (b-a)*0``) or its standard deviation
  (``0 + std*1``): these must equal torch's to the last bit.  ``orthogonal_`` is fed the
  very Gaussian matrix torch draws (same torch generator seed) and compared with torch's
  result.  Its tolerance is ``100 * eps(dtype) * cond(A) * max(1, |gain|)``: both sides
  run Householder QR in LAPACK (different builds, NumPy in double for float32 input), and
  the Q factor's forward error is bounded by about cond(A) * eps (Higham, "Accuracy and
  Stability of Numerical Algorithms", ch. 19); a wrong sign fix or transpose errs by O(1).
* **Laws, tested statistically**: a one-sample Kolmogorov-Smirnov test of minireg's
  samples against the exact CDF (uniform; normal and truncated normal through
  ``math.erf``; the Haar law of an entry of a random orthogonal matrix), a one-sample
  test of torch's samples against the same CDF (so the expected law is torch's), and a
  two-sample test between minireg's and torch's samples; plus bounds and moments.
  Hypothesis draws the seeds, so every example is a fresh experiment: the critical value
  is c/sqrt(n) with c = 2.7 (two-sample: c*sqrt(2/n)), a level of about 1e-6 per test,
  conservative enough that random seeds do not flake, while every realistic mistake
  (a bound off by sqrt(2), fan_in for fan_out, a missing sign fix) moves the statistic
  far beyond it.  Moments use 5 standard errors (about 6e-7 two-sided).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from minireg.nn import init
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    assert_same_outcome,
    assert_same_warnings,
    dtypes,
    shapes,
    to_numpy,
)

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64, np.int64: torch.int64}
KS_C = 2.7  # Kolmogorov-Smirnov critical constant for a level of about 1e-6
N_SAMPLES = 8000

NONLINEARITIES = [
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
]  # fmt: skip

weight_shapes = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)
gains = st.sampled_from([1, 1.0, 0.5, 2.0, math.sqrt(2.0), 5.0 / 3, 0.1])
kaiming_args = st.fixed_dictionaries(
    {
        "a": st.sampled_from([0, 0.01, 0.2, math.sqrt(5), 1, -0.5]),
        "mode": st.sampled_from(["fan_in", "fan_out", "FAN_IN", "Fan_Out"]),
        "nonlinearity": st.sampled_from(NONLINEARITIES),
    }
)


# ----------------------------------------------------------------------------- helpers
class StubGenerator:
    """Stands in for a ``numpy.random.Generator``: uniform draws are 0, normal draws are 1
    (or the rows of a given matrix)."""

    def __init__(self, normal: np.ndarray | None = None) -> None:
        self.normal = normal

    def random(self, size, dtype=np.float64):
        return np.zeros(size, dtype)

    def standard_normal(self, size, dtype=np.float64):
        if self.normal is None:
            return np.ones(size, dtype)
        assert self.normal.shape == tuple(size)
        return self.normal.astype(dtype)


@contextlib.contextmanager
def torch_draw_arguments(monkeypatch):
    """Record the (kind, first, second) arguments of every torch uniform_/normal_ call."""
    calls = []

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        calls.append(("uniform", a, b))
        return self

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        calls.append(("normal", mean, std))
        return self

    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "uniform_", uniform_)
        patch.setattr(torch.Tensor, "normal_", normal_)
        yield calls


_erf = np.frompyfunc(math.erf, 1, 1)


def normal_cdf(x, mean=0.0, std=1.0):
    z = (np.asarray(x, np.float64) - mean) / (std * math.sqrt(2.0))
    return 0.5 * (1.0 + np.asarray(_erf(z), dtype=np.float64))


def uniform_cdf(low, high):
    return lambda x: np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0)


def trunc_normal_cdf(mean, std, a, b):
    lo, hi = normal_cdf(a, mean, std), normal_cdf(b, mean, std)
    return lambda x: np.clip((normal_cdf(np.clip(x, a, b), mean, std) - lo) / (hi - lo), 0.0, 1.0)


def ks_statistic(samples, cdf):
    """sup |F_n - F| of the sample's empirical CDF against ``cdf``."""
    x = np.sort(np.asarray(samples, np.float64).ravel())
    n = x.size
    f = cdf(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def ks_two_sample(x, y):
    x, y = np.sort(np.ravel(x)).astype(np.float64), np.sort(np.ravel(y)).astype(np.float64)
    z = np.concatenate([x, y])
    return np.max(
        np.abs(np.searchsorted(x, z, "right") / x.size - np.searchsorted(y, z, "right") / y.size)
    )


def check_law(ours, theirs, cdf, what):
    """minireg's and torch's samples both follow ``cdf``, and each other."""
    n, m = ours.size, theirs.size
    d = ks_statistic(ours, cdf)
    assert d < KS_C / math.sqrt(n), f"{what}: minireg vs exact law, KS D = {d:.4f} (n = {n})"
    d = ks_statistic(theirs, cdf)
    assert d < KS_C / math.sqrt(m), f"{what}: torch vs exact law, KS D = {d:.4f} (n = {m})"
    d = ks_two_sample(ours, theirs)
    assert d < KS_C * math.sqrt((n + m) / (n * m)), (
        f"{what}: minireg vs torch, two-sample KS D = {d:.4f}"
    )


def many_samples(fill, shape, dtype, n=N_SAMPLES):
    """Concatenate repeated fills of arrays of ``shape`` until there are ``n`` values."""
    reps = math.ceil(n / math.prod(shape))
    out = []
    for _ in range(reps):
        array = np.empty(shape, dtype)
        assert fill(array) is array
        assert array.dtype == dtype
        out.append(array.ravel())
    return np.concatenate(out)


def many_torch_samples(fill, shape, dtype, device, seed, n=N_SAMPLES):
    generator = torch.Generator(device=device).manual_seed(seed)
    reps = math.ceil(n / math.prod(shape))
    tensors = []
    for _ in range(reps):
        tensor = torch.empty(shape, dtype=TORCH_DTYPES[dtype], device=device)
        fill(tensor, generator)
        tensors.append(tensor.reshape(-1))
    return to_numpy(torch.cat(tensors))


def torch_fans(shape):
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


# ----------------------------------------------------------------------------- gains and fans
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0, 0.01, 0.2, 1, -3, 5, math.sqrt(5)])
def test_calculate_gain_equals_torch(nonlinearity, param):
    ours = init.calculate_gain(nonlinearity, param)
    theirs = torch.nn.init.calculate_gain(nonlinearity, param)
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize(
    "args",
    [
        ("ReLU",),
        ("gelu",),
        ("Linear",),
        ("leaky_relu", True),
        ("leaky_relu", False),
        ("leaky_relu", "0.1"),
        ("leaky_relu", [0.1]),
        ("leaky_relu", 1e200),
    ],
)
def test_calculate_gain_errors_match_torch(args):
    assert_same_error(
        lambda: torch.nn.init.calculate_gain(*args), lambda: init.calculate_gain(*args)
    )


@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple))
def test_fans_equal_torch(device, shape):
    array = np.empty(shape)
    result = assert_same_outcome(
        lambda: torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device=device)),
        lambda: init.calculate_fan_in_and_fan_out(array),
    )
    if result is not None:
        theirs, ours = result
        assert ours == theirs
        assert init.calculate_fan_in_and_fan_out(minireg.Parameter(array)) == theirs


# ----------------------------------------------------------------------------- deterministic fills
@given(
    shape=shapes,
    dtype=dtypes,
    val=st.sampled_from([0.0, 1.0, -2.5, 0.1, 1e30, math.inf, math.nan, 3]),
)
def test_constant_ones_zeros_equal_torch(device, shape, dtype, val):
    theirs = torch.empty(shape, dtype=TORCH_DTYPES[dtype], device=device)
    for name, args in [("constant_", (val,)), ("ones_", ()), ("zeros_", ())]:
        ours = np.full(shape, 7, dtype)
        assert getattr(init, name)(ours, *args) is ours
        getattr(torch.nn.init, name)(theirs, *args)
        assert_close(ours, theirs, 0, 0, name)


def test_constant_on_integer_arrays_truncates_like_torch(device):
    for val in (2.7, -2.7, 3):
        ours = init.constant_(np.zeros(4, np.int64), val)
        theirs = torch.nn.init.constant_(torch.zeros(4, dtype=torch.int64, device=device), val)
        assert_close(ours, theirs, 0, 0, f"val={val}")


@given(rows=st.integers(0, 7), cols=st.integers(0, 7), dtype=dtypes)
def test_eye_equals_torch(device, rows, cols, dtype):
    ours = init.eye_(np.full((rows, cols), 5, dtype))
    theirs = torch.nn.init.eye_(torch.empty(rows, cols, dtype=TORCH_DTYPES[dtype], device=device))
    assert_close(ours, theirs, 0, 0, "eye_")


@given(
    per_group=st.integers(1, 4),
    groups=st.integers(1, 3),
    in_channels=st.integers(1, 5),
    kernel=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    dtype=dtypes,
)
def test_dirac_equals_torch(device, per_group, groups, in_channels, kernel, dtype):
    shape = (per_group * groups, in_channels, *kernel)
    ours = init.dirac_(np.full(shape, 3, dtype), groups)
    theirs = torch.nn.init.dirac_(
        torch.empty(shape, dtype=TORCH_DTYPES[dtype], device=device), groups
    )
    assert_close(ours, theirs, 0, 0, f"dirac_ {shape} groups={groups}")


# ------------------------------------------------------------------------ bounds and stds, bitwise
@given(
    shape=weight_shapes,
    dtype=dtypes,
    gain=gains,
    kaiming=kaiming_args,
    low=st.floats(-3, 1),
    width=st.floats(0, 3),
)
def test_bounds_and_stds_equal_torchs_bitwise(
    device, monkeypatch, shape, dtype, gain, kaiming, low, width
):
    high = low + width
    cases = [
        ("uniform_", dict(a=low, b=high)),
        ("normal_", dict(mean=0.0, std=width)),
        ("xavier_uniform_", dict(gain=gain)),
        ("xavier_normal_", dict(gain=gain)),
        ("kaiming_uniform_", kaiming),
        ("kaiming_normal_", kaiming),
    ]
    for name, kwargs in cases:
        with torch_draw_arguments(monkeypatch) as calls:
            getattr(torch.nn.init, name)(
                torch.empty(shape, dtype=TORCH_DTYPES[dtype], device=device), **kwargs
            )
        [(kind, first, second)] = calls
        ours = getattr(init, name)(np.empty(shape, dtype), **kwargs, generator=StubGenerator())
        # uniform draws 0 -> every value is the lower bound; normal draws 1 -> mean 0 + std.
        expected = np.full(shape, first if kind == "uniform" else second, dtype)
        np.testing.assert_array_equal(ours, expected, err_msg=f"{name}({kwargs})")
        assert ours.dtype == dtype


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("a", [0, 0.01, math.sqrt(5), -2])
@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_bounds_every_nonlinearity_bitwise(device, monkeypatch, name, nonlinearity, a):
    # The defaults (a=0, leaky_relu) give a slope of 0, so gain sqrt(2), not the 0.01 default.
    shape = (6, 5, 3)
    with torch_draw_arguments(monkeypatch) as calls:
        getattr(torch.nn.init, name)(
            torch.empty(shape, device=device), a=a, nonlinearity=nonlinearity
        )
    [(kind, first, second)] = calls
    ours = getattr(init, name)(
        np.empty(shape), a=a, nonlinearity=nonlinearity, generator=StubGenerator()
    )
    np.testing.assert_array_equal(ours, np.full(shape, first if kind == "uniform" else second))


@given(shape=weight_shapes, dtype=dtypes, gain=gains, seed=st.integers(0, 2**31))
def test_orthogonal_equals_torch_on_torchs_gaussian(device, shape, dtype, gain, seed):
    # torch's orthogonal_ draws its (rows, cols) Gaussian first: the same generator seed
    # gives us that matrix, and we feed it to minireg through the stub generator.
    rows, cols = shape[0], math.prod(shape[1:])
    torch_dtype = TORCH_DTYPES[dtype]
    gaussian = torch.empty(rows, cols, dtype=torch_dtype, device=device).normal_(
        0, 1, generator=torch.Generator(device=device).manual_seed(seed)
    )
    theirs = torch.nn.init.orthogonal_(
        torch.empty(shape, dtype=torch_dtype, device=device),
        gain,
        generator=torch.Generator(device=device).manual_seed(seed),
    )
    a = to_numpy(gaussian)
    ours = init.orthogonal_(np.empty(shape, dtype), gain, generator=StubGenerator(a))
    atol = 100 * np.finfo(dtype).eps * np.linalg.cond(a.astype(np.float64)) * max(1.0, abs(gain))
    assert_close(ours, theirs, 0.0, atol, f"orthogonal_ {shape} gain={gain}")
    # The sign fix: A = Q R with R upper triangular and a positive diagonal (the unique
    # such factorisation, the one that makes Q Haar-distributed).
    q = ours.reshape(rows, cols).astype(np.float64) / gain
    tall_a, tall_q = (a.T, q.T) if rows < cols else (a, q)
    r = tall_q.T @ tall_a.astype(np.float64)
    scale = np.abs(r).max()
    assert np.all(np.diag(r) > 0), "diag(R) must be positive after the sign fix"
    assert np.all(
        np.abs(np.tril(r, -1))
        <= 1e3 * np.finfo(dtype).eps * scale * np.linalg.cond(a.astype(np.float64))
    )


# ----------------------------------------------------------------------------- laws
dist_shapes = st.tuples(
    st.integers(4, 40), st.integers(4, 40), st.lists(st.integers(1, 3), max_size=2)
).map(lambda t: (t[0], t[1], *t[2]))


@given(
    shape=dist_shapes,
    dtype=dtypes,
    gain=gains,
    kaiming=kaiming_args,
    seed=st.integers(0, 2**31),
    which=st.sampled_from(["xavier", "kaiming"]),
)
def test_uniform_schemes_law(device, shape, dtype, gain, kaiming, seed, which):
    fan_in, fan_out = torch_fans(shape)
    if which == "xavier":
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))  # Glorot & Bengio's formula
        ours_fill, theirs_fill, kwargs = (
            init.xavier_uniform_,
            torch.nn.init.xavier_uniform_,
            dict(gain=gain),
        )
    else:
        fan = fan_in if kaiming["mode"].lower() == "fan_in" else fan_out
        bound = torch.nn.init.calculate_gain(kaiming["nonlinearity"], kaiming["a"]) * math.sqrt(
            3.0 / fan
        )
        ours_fill, theirs_fill, kwargs = (
            init.kaiming_uniform_,
            torch.nn.init.kaiming_uniform_,
            kaiming,
        )
    rng = np.random.default_rng(seed)
    ours = many_samples(lambda x: ours_fill(x, **kwargs, generator=rng), shape, dtype)
    theirs = many_torch_samples(
        lambda t, g: theirs_fill(t, **kwargs, generator=g), shape, dtype, device, seed
    )
    assert np.all(ours >= dtype(-bound)) and np.all(ours <= dtype(bound))
    check_law(ours, theirs, uniform_cdf(-bound, bound), f"{which}_uniform_ {shape} {kwargs}")


@given(
    shape=dist_shapes,
    dtype=dtypes,
    gain=gains,
    kaiming=kaiming_args,
    seed=st.integers(0, 2**31),
    which=st.sampled_from(["xavier", "kaiming"]),
)
def test_normal_schemes_law(device, shape, dtype, gain, kaiming, seed, which):
    fan_in, fan_out = torch_fans(shape)
    if which == "xavier":
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        ours_fill, theirs_fill, kwargs = (
            init.xavier_normal_,
            torch.nn.init.xavier_normal_,
            dict(gain=gain),
        )
    else:
        fan = fan_in if kaiming["mode"].lower() == "fan_in" else fan_out
        std = torch.nn.init.calculate_gain(kaiming["nonlinearity"], kaiming["a"]) / math.sqrt(fan)
        ours_fill, theirs_fill, kwargs = (
            init.kaiming_normal_,
            torch.nn.init.kaiming_normal_,
            kaiming,
        )
    rng = np.random.default_rng(seed)
    ours = many_samples(lambda x: ours_fill(x, **kwargs, generator=rng), shape, dtype)
    theirs = many_torch_samples(
        lambda t, g: theirs_fill(t, **kwargs, generator=g), shape, dtype, device, seed
    )
    check_law(ours, theirs, lambda x: normal_cdf(x, 0.0, std), f"{which}_normal_ {shape} {kwargs}")


@given(
    dtype=dtypes,
    low=st.floats(-5, 5),
    width=st.floats(1e-3, 10),
    mean=st.floats(-5, 5),
    std=st.floats(1e-3, 10),
    seed=st.integers(0, 2**31),
)
def test_uniform_and_normal_law(device, dtype, low, width, mean, std, seed):
    rng = np.random.default_rng(seed)
    high = low + width
    ours = many_samples(lambda x: init.uniform_(x, low, high, generator=rng), (40, 50), dtype)
    theirs = many_torch_samples(
        lambda t, g: torch.nn.init.uniform_(t, low, high, generator=g),
        (40, 50),
        dtype,
        device,
        seed,
    )
    assert np.all(ours >= dtype(low)) and np.all(ours <= dtype(high))
    check_law(ours, theirs, uniform_cdf(low, high), f"uniform_({low}, {high})")
    ours = many_samples(lambda x: init.normal_(x, mean, std, generator=rng), (N_SAMPLES,), dtype)
    theirs = many_torch_samples(
        lambda t, g: torch.nn.init.normal_(t, mean, std, generator=g),
        (N_SAMPLES,),
        dtype,
        device,
        seed,
    )
    check_law(ours, theirs, lambda x: normal_cdf(x, mean, std), f"normal_({mean}, {std})")


def trunc_normal_moments(mean, std, a, b):
    """Exact mean and variance of N(mean, std^2) truncated to [a, b]."""
    alpha, beta = (a - mean) / std, (b - mean) / std

    def phi(z):
        return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    z = float(normal_cdf(beta) - normal_cdf(alpha))
    m = mean + std * (phi(alpha) - phi(beta)) / z
    v = std**2 * (
        1 + (alpha * phi(alpha) - beta * phi(beta)) / z - ((phi(alpha) - phi(beta)) / z) ** 2
    )
    return m, v


@given(
    dtype=dtypes,
    mean=st.floats(-1, 1),
    std=st.floats(0.1, 3),
    alpha=st.floats(-3, 2),
    width=st.floats(0.05, 5),
    seed=st.integers(0, 2**31),
)
def test_trunc_normal_law(device, dtype, mean, std, alpha, width, seed):
    # a and b are absolute bounds; the window's mass decides torch's branch (above 0.3:
    # redraw normals, else uniform proposals): alpha and width cover both.
    a = mean + alpha * std
    b = a + width * std
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "mean is more than 2 std from [a, b]"
        ours = many_samples(
            lambda x: init.trunc_normal_(x, mean, std, a, b, generator=rng), (N_SAMPLES,), dtype
        )
        theirs = many_torch_samples(
            lambda t, g: torch.nn.init.trunc_normal_(t, mean, std, a, b, generator=g),
            (N_SAMPLES,),
            dtype,
            device,
            seed,
        )
    assert np.all(ours >= dtype(a)) and np.all(ours <= dtype(b)), "outside [a, b]"
    what = f"trunc_normal_(mean={mean}, std={std}, a={a}, b={b})"
    check_law(ours, theirs, trunc_normal_cdf(mean, std, a, b), what)
    m, v = trunc_normal_moments(mean, std, a, b)
    sample = ours.astype(np.float64)
    assert abs(sample.mean() - m) < 5 * math.sqrt(v / sample.size), f"{what}: mean"
    # standard error of the sample variance: sqrt((mu4 - v^2) / n) <= sqrt(mu4 / n) with
    # mu4 <= (b - a)^2 v on a bounded window.
    assert abs(sample.var() - v) < 5 * math.sqrt((b - a) ** 2 * v / sample.size) + 1e-12, (
        f"{what}: variance"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(std=0.02),
        dict(),
        dict(mean=0.0, std=1.0, a=-0.1, b=0.1),
        dict(mean=0.0, std=1.0, a=2.0, b=3.0),
        dict(mean=1.0, std=0.5, a=1.0, b=1.0),
    ],
)
def test_trunc_normal_classic_settings(device, dtype, kwargs):
    # std=0.02 with the default absolute bounds [-2, 2]: practically an untruncated
    # N(0, 0.02^2) (bounds are not multiples of std); a == b: a constant fill.
    full = dict(mean=0.0, std=1.0, a=-2.0, b=2.0) | kwargs
    rng = np.random.default_rng(0)
    ours = many_samples(
        lambda x: init.trunc_normal_(x, **kwargs, generator=rng), (N_SAMPLES,), dtype
    )
    theirs = many_torch_samples(
        lambda t, g: torch.nn.init.trunc_normal_(t, **kwargs, generator=g),
        (N_SAMPLES,),
        dtype,
        device,
        0,
    )
    if full["a"] == full["b"]:
        assert np.all(ours == dtype(full["a"])) and np.all(theirs == dtype(full["a"]))
        return
    check_law(
        ours, theirs, trunc_normal_cdf(full["mean"], full["std"], full["a"], full["b"]), str(kwargs)
    )


def test_trunc_normal_wide_window_keeps_the_normal_draws():
    # In the redrawing branch the values already inside [a, b] are the plain normal_ draws
    # of the same generator (as in torch), the others are redrawn.
    for seed in range(3):
        plain = init.normal_(np.empty(2000), 0.0, 1.0, generator=np.random.default_rng(seed))
        truncated = init.trunc_normal_(
            np.empty(2000), 0.0, 1.0, -1.5, 1.5, generator=np.random.default_rng(seed)
        )
        inside = (plain >= -1.5) & (plain <= 1.5)
        np.testing.assert_array_equal(truncated[inside], plain[inside])
        assert np.all(truncated[~inside] != plain[~inside]) and np.all(np.abs(truncated) <= 1.5)


def test_trunc_normal_warning_matches_torch():
    _, out = assert_same_warnings(
        lambda: torch.nn.init.trunc_normal_(torch.empty(10), mean=5.0, std=1.0, a=-2.0, b=2.0),
        lambda: init.trunc_normal_(
            np.empty(10), mean=5.0, std=1.0, a=-2.0, b=2.0, generator=np.random.default_rng(0)
        ),
    )
    assert np.all((out >= -2.0) & (out <= 2.0))


# ----------------------------------------------------------------------------- orthogonal_
@given(
    shape=st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple),
    dtype=dtypes,
    gain=gains,
    seed=st.integers(0, 2**31),
)
def test_orthogonal_rows_or_columns_are_orthonormal(shape, dtype, gain, seed):
    ours = init.orthogonal_(np.empty(shape, dtype), gain, generator=np.random.default_rng(seed))
    assert ours.dtype == dtype
    rows, cols = shape[0], math.prod(shape[1:])
    q = ours.reshape(rows, cols).astype(np.float64)
    gram = q @ q.T if rows <= cols else q.T @ q
    tol = 50 * np.finfo(dtype).eps * max(rows, cols) * gain**2
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), rtol=0, atol=tol)


def haar_entry_cdf(n):
    """CDF of one coordinate of a uniform unit vector in R^n (n = 3: uniform on [-1, 1],
    Archimedes; n = 5: density 3/4 (1 - x^2))."""
    if n == 3:
        return uniform_cdf(-1.0, 1.0)
    assert n == 5
    return lambda x: (2.0 + 3.0 * np.asarray(x) - np.asarray(x) ** 3) / 4.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, n", [((3, 3), 3), ((5, 3), 5), ((3, 5), 5), ((3, 1, 5), 5)])
def test_orthogonal_is_haar_distributed(shape, n, dtype):
    # Each column (tall) or row (wide) of a Haar matrix is a uniform unit vector, so every
    # entry follows haar_entry_cdf(n).  Without the sign fix LAPACK's Householder QR makes
    # the diagonal entries of Q negative: they are the ones tested.
    rng = np.random.default_rng(123)
    draws = np.stack(
        [
            init.orthogonal_(np.empty(shape, dtype), generator=rng).reshape(shape[0], -1)
            for _ in range(3000)
        ]
    )
    for k in range(3):
        entry = draws[:, k, k]
        d = ks_statistic(entry, haar_entry_cdf(n))
        assert d < KS_C / math.sqrt(entry.size), f"entry ({k},{k}): KS D = {d:.4f}"
        # mean 0, variance 1/n (standard error of the mean sqrt(1/(n N)))
        assert abs(entry.mean()) < 5 / math.sqrt(n * entry.size)


# ----------------------------------------------------------------------------- sparse_
@given(
    rows=st.integers(0, 12),
    cols=st.integers(0, 6),
    sparsity=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.99, 1.0, 1.5, -0.3]),
    dtype=dtypes,
)
def test_sparse_zero_counts_equal_torch(device, rows, cols, sparsity, dtype):
    ours = init.sparse_(
        np.empty((rows, cols), dtype), sparsity, generator=np.random.default_rng(rows * 7 + cols)
    )
    theirs = torch.nn.init.sparse_(
        torch.empty(rows, cols, dtype=TORCH_DTYPES[dtype], device=device), sparsity
    )
    assert ours.dtype == dtype
    np.testing.assert_array_equal((ours == 0).sum(axis=0), to_numpy((theirs == 0).sum(dim=0)))
    if sparsity >= 0:  # ceil(sparsity * rows) zeros per column (all of them past 1)
        assert np.all((ours == 0).sum(axis=0) == min(math.ceil(sparsity * rows), rows))


@given(
    std=st.sampled_from([0.01, 0.5, 2.0]),
    sparsity=st.sampled_from([0.1, 0.4, 0.75]),
    seed=st.integers(0, 2**31),
)
def test_sparse_law(device, std, sparsity, seed):
    rows, cols = 8, 2000
    rng = np.random.default_rng(seed)
    ours = init.sparse_(np.empty((rows, cols)), sparsity, std, generator=rng)
    theirs = to_numpy(
        torch.nn.init.sparse_(
            torch.empty(rows, cols, dtype=torch.float64, device=device),
            sparsity,
            std,
            generator=torch.Generator(device=device).manual_seed(seed),
        )
    )
    check_law(
        ours[ours != 0],
        theirs[theirs != 0],
        lambda x: normal_cdf(x, 0.0, std),
        f"sparse_ std={std}",
    )
    # zeroed rows: each row is chosen in a column with probability k / rows
    p = math.ceil(sparsity * rows) / rows
    frequency = (ours == 0).mean(axis=1)
    assert np.all(np.abs(frequency - p) < 5 * math.sqrt(p * (1 - p) / cols)), frequency


# --------------------------------------------------------------------- generator, Parameter, dtype
RANDOM_INITS = [
    ("uniform_", (3, 4), dict(a=-1.0, b=2.0)),
    ("normal_", (3, 4), dict(mean=1.0, std=2.0)),
    ("trunc_normal_", (50,), dict(std=1.0)),
    ("trunc_normal_", (50,), dict(a=0.0, b=0.05)),
    ("xavier_uniform_", (3, 4, 2), dict(gain=2.0)),
    ("xavier_normal_", (3, 4, 2), dict()),
    ("kaiming_uniform_", (5, 4), dict(a=math.sqrt(5))),
    ("kaiming_normal_", (5, 4), dict(mode="fan_out", nonlinearity="relu")),
    ("orthogonal_", (3, 6), dict(gain=2.0)),
    ("sparse_", (6, 5), dict(sparsity=0.5)),
]


@pytest.mark.parametrize("name, shape, kwargs", RANDOM_INITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generator_none_is_reproducible_under_manual_seed(name, shape, kwargs, dtype):
    fill = getattr(init, name)
    minireg.manual_seed(42)
    first = fill(np.empty(shape, dtype), **kwargs)
    minireg.manual_seed(42)
    second = fill(np.empty(shape, dtype), **kwargs)
    explicit = fill(np.empty(shape, dtype), **kwargs, generator=np.random.default_rng(42))
    minireg.manual_seed(43)
    other = fill(np.empty(shape, dtype), **kwargs)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, explicit)  # None means the default generator
    assert not np.array_equal(first, other)
    assert first.dtype == dtype


ALL_FILLS = [
    *RANDOM_INITS,
    ("constant_", (3, 4), dict(val=0.5)),
    ("ones_", (2,), {}),
    ("zeros_", (2,), {}),
    ("eye_", (3, 4), {}),
    ("dirac_", (4, 2, 3), dict(groups=2)),
]


@pytest.mark.parametrize("name, shape, kwargs", ALL_FILLS)
def test_parameter_is_filled_in_place_and_returned(name, shape, kwargs):
    p = minireg.Parameter(np.full(shape, 9.0, np.float32))
    data = p.data
    assert getattr(init, name)(p, **kwargs) is p
    assert p.data is data and p.dtype == np.float32
    assert not np.any(p.data == 9.0)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0,)])
def test_kaiming_zero_element_warning_matches_torch(name, shape):
    array = np.empty(shape)
    _, filled = assert_same_warnings(
        lambda: getattr(torch.nn.init, name)(torch.empty(shape)), lambda: getattr(init, name)(array)
    )
    assert filled is array


@pytest.mark.parametrize(
    "name, shape",
    [
        ("uniform_", ()),
        ("normal_", (0,)),
        ("trunc_normal_", ()),
        ("trunc_normal_", (0, 3)),
        ("xavier_uniform_", (0, 3)),
        ("orthogonal_", (0, 4)),
        ("sparse_", (0, 3)),
    ],
)
def test_zero_d_and_empty_arrays(name, shape):
    array = np.full(shape, 9.0, np.float32)
    assert getattr(init, name)(array, *([0.5] if name == "sparse_" else [])) is array
    assert array.dtype == np.float32 and (array.size == 0 or array != 9.0)


# ----------------------------------------------------------------------------- errors
ERRORS = [
    ("uniform_", (3,), np.float32, dict(a=1.0, b=0.0)),
    ("uniform_", (3,), np.float32, dict(a=0.1, b=1e-7)),
    ("uniform_", (3,), np.float32, dict(a=-math.inf, b=0.0)),
    ("uniform_", (3,), np.float32, dict(a=0.0, b=math.nan)),
    ("uniform_", (3,), np.float32, dict(a=-1e39, b=0.0)),
    ("uniform_", (3,), np.float32, dict(a=-3e38, b=3e38)),
    ("uniform_", (3,), np.float64, dict(a=-1.7e308, b=1.7e308)),
    ("uniform_", (0,), np.float32, dict(a=1.0, b=0.0)),
    ("uniform_", (3,), np.int64, dict()),
    ("normal_", (3,), np.float32, dict(std=-1.0)),
    ("normal_", (3,), np.float64, dict(std=-0.5)),
    ("normal_", (3,), np.float32, dict(std=math.nan)),
    ("normal_", (0,), np.float32, dict(std=-1.0)),
    ("normal_", (3,), np.int64, dict()),
    ("normal_", (0,), np.int64, dict()),
    ("trunc_normal_", (3,), np.float32, dict(a=2.0, b=1.0)),
    ("trunc_normal_", (3,), np.float32, dict(std=0.0)),
    ("constant_", (3,), np.float32, dict(val=1e300)),
    ("eye_", (3,), np.float32, dict()),
    ("eye_", (3, 4, 1), np.float32, dict()),
    ("dirac_", (3, 4), np.float32, dict()),
    ("dirac_", (3, 4, 1, 1, 1, 1), np.float32, dict()),
    ("dirac_", (3, 4, 1), np.float32, dict(groups=2)),
    ("dirac_", (3, 4, 1), np.float32, dict(groups=0)),
    ("dirac_", (2, 3, 4, 0), np.float32, dict()),
    ("xavier_uniform_", (0, 0), np.float32, dict()),
    ("xavier_uniform_", (3,), np.float32, dict()),
    ("xavier_uniform_", (3, 4), np.float32, dict(gain=-1.0)),
    ("xavier_normal_", (3,), np.float32, dict()),
    ("xavier_normal_", (3, 4), np.float32, dict(gain=-1.0)),
    ("kaiming_uniform_", (3, 4), np.float32, dict(mode="bad", nonlinearity="bad")),
    ("kaiming_uniform_", (3, 4), np.float32, dict(a=True)),
    ("kaiming_uniform_", (3, 4), np.float32, dict(nonlinearity="ReLU")),
    ("kaiming_uniform_", (3,), np.float32, dict()),
    ("kaiming_normal_", (3, 4), np.float32, dict(mode="fan")),
    ("kaiming_normal_", (), np.float32, dict()),
    ("orthogonal_", (3,), np.float32, dict()),
    ("orthogonal_", (), np.float32, dict()),
    ("orthogonal_", (2, 3), np.int64, dict()),
    ("sparse_", (3,), np.float32, dict(sparsity=0.5)),
    ("sparse_", (3, 4, 2), np.float32, dict(sparsity=0.5)),
    ("sparse_", (3, 4), np.float32, dict(sparsity=0.5, std=-1.0)),
    ("sparse_", (3, 4), np.float32, dict(sparsity=math.nan)),
]


@pytest.mark.parametrize("name, shape, dtype, kwargs", ERRORS)
def test_errors_match_torch_and_leave_the_array_alone(device, name, shape, dtype, kwargs):
    array = np.full(shape, 7, dtype)
    tensor = torch.full(shape, 7, dtype=TORCH_DTYPES[dtype], device=device)
    result = assert_same_outcome(
        lambda: getattr(torch.nn.init, name)(tensor, **kwargs),
        lambda: getattr(init, name)(array, **kwargs),
    )
    if result is None:
        np.testing.assert_array_equal(array, np.full(shape, 7, dtype))
    else:  # torch accepts it (an empty array): so do we, leaving it as it is
        assert array.size == 0 and tensor.numel() == 0
