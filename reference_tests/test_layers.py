"""Linear, the activations, log-softmax, Flatten, Identity and Sequential against torch autograd.

Every kernel's forward and backward (with a random upstream gradient) is compared with
torch's on hypothesis-drawn shapes (0-d, empty and batched), dtypes and data, including
special values (0, ±inf, NaN: NaNs must sit in the same places) where the kernel is
element-wise.  Tolerances come from ``tolerance(dtype, device)``: these kernels are one
or two roundings per element (a matrix product sums at most 7 terms here), far inside
the budget.

Linear's initialisation cannot be compared draw by draw (NumPy cannot replay torch's
stream), so it is tested in law: every value lies in torch's bound, the largest
magnitudes reach it, and the Kolmogorov–Smirnov distance to the uniform law is below
its critical value at level ALPHA = 1e-6.

Error messages are compared with torch's text, after writing torch's ``torch.Size([a])``
as NumPy's ``(a,)``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn as mnn
import minireg.nn.functional as F
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    assert_same_warnings,
    dtypes,
    random_array,
    shapes,
    to_numpy,
    to_torch,
    tolerance,
)

ALPHA = 1e-6
KS_CRITICAL = math.sqrt(-0.5 * math.log(ALPHA / 2))  # Kolmogorov: P(sqrt(n) D > c) <= 2 exp(-2 c^2)
seeds = st.integers(0, 2**31 - 1)


def torch_backward(fn, inputs: list[np.ndarray], grad_output: np.ndarray | None, device: str):
    """torch's ``fn(*inputs)`` and the gradients of all inputs for the upstream ``grad_output``."""
    tensors = [to_torch(a, device, requires_grad=True) for a in inputs]
    output = fn(*tensors)
    if grad_output is None:
        grad_output = np.ones(tuple(output.shape), to_numpy(output).dtype)
    output.backward(to_torch(grad_output, device))
    return output, [t.grad for t in tensors]


def with_specials(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """``x`` with some entries set to 0, -0, ±inf and NaN."""
    x = x.copy()
    if x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, x.size, size=min(x.size, 5))
        flat[picks] = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]), size=picks.size)
    return x


# ============================================================================ linear
@given(
    batch=st.lists(st.integers(0, 4), max_size=2).map(tuple),
    in_features=st.integers(0, 7),
    out_features=st.integers(0, 5),
    bias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
)
def test_linear_kernel_matches_torch(device, batch, in_features, out_features, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, batch + (in_features,), dtype)
    w = random_array(rng, (out_features, in_features), dtype)
    b = random_array(rng, (out_features,), dtype) if bias else None
    g = random_array(rng, batch + (out_features,), dtype)
    rtol, atol = tolerance(dtype, device)
    inputs = [x, w] + ([b] if bias else [])
    output, grads = torch_backward(TF.linear, inputs, g, device)
    assert_close(F.linear(x, w, b), output, rtol, atol, "output")
    grad_x, grad_w, grad_b = F.linear_backward(g, x, w)
    assert_close(grad_x, grads[0], rtol, atol, "grad input")
    assert_close(grad_w, grads[1], rtol, atol, "grad weight")
    if bias:
        assert_close(grad_b, grads[2], rtol, atol, "grad bias")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_accumulates_grads_like_torch(device, dtype, bias):
    rng = np.random.default_rng(3)
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    theirs = torch.nn.Linear(5, 3, bias=bias, dtype=torch_dtype).to(device)
    ours = mnn.Linear(5, 3, bias=bias, dtype=dtype)
    ours.load_state_dict({k: to_numpy(v) for k, v in theirs.state_dict().items()})
    rtol, atol = tolerance(dtype, device)
    for step, batch in enumerate([(4,), (2, 3), ()]):  # three backward calls: grads add up
        x = random_array(rng, batch + (5,), dtype)
        g = random_array(rng, batch + (3,), dtype)
        x_torch = to_torch(x, device, requires_grad=True)
        out = theirs(x_torch)
        out.backward(to_torch(g, device))
        assert_close(ours(x), out, rtol, atol, f"output {step}")
        assert_close(ours.backward(g), x_torch.grad, rtol, atol, f"grad input {step}")
        assert_close(
            ours.weight.grad, theirs.weight.grad, rtol, atol, f"accumulated weight grad {step}"
        )
        if bias:
            assert_close(
                ours.bias.grad, theirs.bias.grad, rtol, atol, f"accumulated bias grad {step}"
            )
    assert ours.bias is None if not bias else ours.bias.grad.dtype == dtype


@pytest.mark.parametrize("bias_dtype", [None, np.float32, np.float64])
@pytest.mark.parametrize(
    "input_shape, weight_shape, input_dtype",
    [
        ((3, 4), (5, 3), np.float32),  # feature mismatch
        ((3,), (5, 4), np.float32),  # 1-D input
        ((2, 7, 3), (5, 4), np.float32),  # leading dimensions fold into one
        ((0, 3), (5, 4), np.float32),
        ((), (5, 4), np.float32),  # 0-d input
        ((2, 3), (5, 3), np.float64),  # dtype mismatch: no silent upcast
        ((2, 4), (5, 3), np.float64),  # both: the dtype is checked first
        ((2, 3), (5, 3), np.int64),
    ],
)
def test_linear_errors_match_torch(input_shape, weight_shape, input_dtype, bias_dtype):
    x = np.ones(input_shape, input_dtype)
    w = np.ones(weight_shape, np.float32)
    b = None if bias_dtype is None else np.ones(weight_shape[0], bias_dtype)
    b_torch = None if b is None else torch.from_numpy(b)
    assert_same_error(
        lambda: TF.linear(torch.from_numpy(x), torch.from_numpy(w), b_torch),
        lambda: F.linear(x, w, b),
    )


def uniform_ks_distance(values: np.ndarray, low: float, high: float) -> float:
    """Kolmogorov–Smirnov distance between the sample and the uniform law on [low, high)."""
    x = np.sort(values.ravel())
    cdf = (x - low) / (high - low)
    n = x.size
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


@pytest.mark.parametrize("dtype", [None, np.float32])
@pytest.mark.parametrize("in_features, out_features", [(256, 64), (3, 4096)])
def test_linear_init_follows_torchs_law(in_features, out_features, dtype):
    # torch's bound: kaiming_uniform_(a=sqrt(5)): sqrt(3) * gain / sqrt(fan_in), gain from torch
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(in_features))
    bias_bound = 1 / math.sqrt(in_features)
    layer = mnn.Linear(in_features, out_features, dtype=dtype, generator=np.random.default_rng(4))
    theirs = torch.nn.Linear(in_features, out_features)
    expected_dtype = np.float64 if dtype is None else dtype
    assert layer.weight.dtype == expected_dtype and layer.bias.dtype == expected_dtype
    for values, bound, reference in [
        (layer.weight.data, weight_bound, theirs.weight),
        (layer.bias.data, bias_bound, theirs.bias),
    ]:
        reference = to_numpy(reference)
        for sample in (values, reference):  # the same checks hold for torch's own draw
            assert np.all(np.abs(sample) <= bound)
            n = sample.size
            # the largest magnitude of n uniform draws is within 4e-3 of the bound unless
            # (1 - 4e-3)^n
            if n >= 4096:
                assert np.max(np.abs(sample)) > bound * (1 - 4e-3)
            assert math.sqrt(n) * uniform_ks_distance(sample, -bound, bound) < KS_CRITICAL


def test_linear_init_uses_the_generator_and_reset_parameters_redraws():
    a = mnn.Linear(6, 5, generator=np.random.default_rng(7))
    b = mnn.Linear(6, 5, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    weight = a.weight
    a.reset_parameters()
    assert a.weight is weight and not np.array_equal(a.weight.data, b.weight.data)
    minireg.manual_seed(11)
    c = mnn.Linear(6, 5)
    minireg.manual_seed(11)
    np.testing.assert_array_equal(mnn.Linear(6, 5).weight.data, c.weight.data)


def test_linear_without_inputs_features_warns_and_zeroes_bias_like_torch():
    theirs, ours = assert_same_warnings(lambda: torch.nn.Linear(0, 3), lambda: mnn.Linear(0, 3))
    np.testing.assert_array_equal(ours.bias.data, to_numpy(theirs.bias).astype(np.float64))
    assert ours.weight.shape == (3, 0)
    assert repr(ours) == repr(theirs)


# ============================================================================ activations
ACTIVATIONS = {
    "relu": (F.relu, lambda g, x, y: F.relu_backward(g, y), TF.relu, mnn.ReLU, torch.nn.ReLU),
    "sigmoid": (
        F.sigmoid,
        lambda g, x, y: F.sigmoid_backward(g, y),
        torch.sigmoid,
        mnn.Sigmoid,
        torch.nn.Sigmoid,
    ),
    "tanh": (F.tanh, lambda g, x, y: F.tanh_backward(g, y), torch.tanh, mnn.Tanh, torch.nn.Tanh),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(
    shape=shapes,
    dtype=dtypes,
    seed=seeds,
    scale=st.sampled_from([1.0, 30.0]),
    specials=st.booleans(),
)
def test_activation_kernels_and_modules_match_torch(
    device, name, shape, dtype, seed, scale, specials
):
    forward, backward, torch_fn, module, torch_module = ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, scale)
    if specials:
        x = with_specials(rng, x)
    g = random_array(rng, shape, dtype)
    rtol, atol = tolerance(dtype, device)
    output, (grad,) = torch_backward(torch_fn, [x], g, device)
    y = forward(x)
    assert_close(y, output, rtol, atol, "output")
    assert_close(backward(g, x, y), grad, rtol, atol, "grad input")
    layer = module()
    assert_close(layer(x), output, rtol, atol, "module output")
    assert_close(layer.backward(g), grad, rtol, atol, "module grad input")
    assert repr(layer) == repr(torch_module())


@given(
    shape=shapes,
    dtype=dtypes,
    seed=seeds,
    slope=st.one_of(st.just(0.01), st.floats(-2.0, 2.0)),
    specials=st.booleans(),
)
def test_leaky_relu_kernel_and_module_match_torch(device, shape, dtype, seed, slope, specials):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, 3.0)
    if specials:
        x = with_specials(rng, x)
    g = random_array(rng, shape, dtype)
    rtol, atol = tolerance(dtype, device)
    output, (grad,) = torch_backward(lambda t: TF.leaky_relu(t, slope), [x], g, device)
    assert_close(F.leaky_relu(x, slope), output, rtol, atol, "output")
    assert_close(F.leaky_relu_backward(g, x, slope), grad, rtol, atol, "grad input")
    layer = mnn.LeakyReLU(slope)
    assert_close(layer(x), output, rtol, atol, "module output")
    assert_close(layer.backward(g), grad, rtol, atol, "module grad input")
    assert repr(layer) == repr(torch.nn.LeakyReLU(slope))
    assert repr(mnn.LeakyReLU()) == repr(torch.nn.LeakyReLU())


def test_relu_passes_the_gradient_of_nan_and_blocks_it_at_zero():
    # torch's threshold_backward zeroes where y <= 0: at 0 the gradient is 0, at NaN it passes.
    x = np.array([0.0, -0.0, np.nan, 2.0, -1.0])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    _, (expected,) = torch_backward(TF.relu, [x], g, "cpu")
    np.testing.assert_array_equal(F.relu_backward(g, F.relu(x)), to_numpy(expected))


@pytest.mark.parametrize("module", [mnn.ReLU, mnn.LeakyReLU, mnn.Sigmoid, mnn.Tanh, mnn.Linear])
def test_backward_before_forward_is_an_error(module):
    layer = module(2, 2) if module is mnn.Linear else module()
    with pytest.raises(RuntimeError, match="called before forward"):
        layer.backward(np.ones(2))


# ============================================================================ log-softmax
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple),
    dim_pick=st.integers(0, 5),
    negative_dim=st.booleans(),
    dtype=dtypes,
    seed=seeds,
    scale=st.sampled_from([1.0, 50.0]),
)
def test_log_softmax_matches_torch(device, shape, dim_pick, negative_dim, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    dim = dim_pick % len(shape) - (len(shape) if negative_dim else 0)
    x = random_array(rng, shape, dtype, scale)
    g = random_array(rng, shape, dtype)
    rtol, atol = tolerance(dtype, device)
    output, (grad,) = torch_backward(lambda t: torch.log_softmax(t, dim), [x], g, device)
    y = F.log_softmax(x, dim)
    assert_close(y, output, rtol, atol, "output")
    assert_close(F.log_softmax_backward(g, y, dim), grad, rtol, atol, "grad input")


# ============================================================================ Flatten, Identity
@given(
    shape=st.lists(st.integers(0, 4), max_size=4).map(tuple),
    start=st.integers(-5, 4),
    end=st.integers(-5, 4),
    dtype=dtypes,
    seed=seeds,
)
def test_flatten_matches_torch(device, shape, start, end, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    layer, theirs = mnn.Flatten(start, end), torch.nn.Flatten(start, end)
    assert repr(layer) == repr(theirs)
    try:
        expected = theirs(to_torch(x, device))
    except (IndexError, RuntimeError):
        assert_same_error(lambda: theirs(to_torch(x, device)), lambda: layer(x))
        return
    g = random_array(rng, tuple(expected.shape), dtype)
    output, (grad,) = torch_backward(theirs, [x], g, device)
    assert_close(layer(x), output, 0.0, 0.0, "output")
    assert_close(layer.backward(g), grad, 0.0, 0.0, "grad input")


def test_flatten_default_keeps_the_batch_dimension():
    x = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    assert mnn.Flatten()(x).shape == tuple(torch.nn.Flatten()(torch.from_numpy(x)).shape) == (2, 60)


@given(shape=shapes, dtype=dtypes, seed=seeds)
def test_identity_matches_torch(device, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x, g = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    output, (grad,) = torch_backward(torch.nn.Identity(54, unused="argument"), [x], g, device)
    layer = mnn.Identity(54, unused="argument")  # arguments are accepted and ignored, as torch
    assert_close(layer(x), output, 0.0, 0.0, "output")
    assert_close(layer.backward(g), grad, 0.0, 0.0, "grad input")
    assert repr(layer) == repr(torch.nn.Identity())


# ============================================================================ Sequential
def stack(nn):
    return nn.Sequential(
        nn.Linear(4, 6),
        nn.ReLU(),
        nn.Linear(6, 5),
        nn.Tanh(),
        nn.Sequential(nn.Linear(5, 5), nn.LeakyReLU(0.1)),
        nn.Identity(),
        nn.Linear(5, 3),
        nn.Sigmoid(),
        nn.Flatten(0),
    )


@given(batch=st.integers(0, 5), dtype=dtypes, seed=seeds)
def test_sequential_forward_backward_matches_torch(device, batch, dtype, seed):
    rng = np.random.default_rng(seed)
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    theirs = stack(torch.nn).to(device=device, dtype=torch_dtype)
    ours = stack(mnn).to(dtype)
    ours.load_state_dict({k: to_numpy(v) for k, v in theirs.state_dict().items()})
    rtol, atol = tolerance(dtype, device)
    for step in range(2):  # parameter gradients accumulate over the two passes
        x = random_array(rng, (batch, 4), dtype)
        g = random_array(rng, (batch * 3,), dtype)
        output, (grad,) = torch_backward(theirs, [x], g, device)
        assert_close(ours(x), output, rtol, atol, f"output {step}")
        assert_close(ours.backward(g), grad, rtol, atol, f"grad input {step}")
        for (name, p), (_, q) in zip(
            ours.named_parameters(), theirs.named_parameters(), strict=True
        ):
            assert_close(p.grad, q.grad, rtol, atol, f"grad of {name} after {step + 1} passes")


def test_sequential_backward_runs_the_children_in_reverse():
    calls: list[str] = []

    class Recorder(mnn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append("forward " + self.name)
            return x + 1

        def backward(self, g):
            calls.append("backward " + self.name)
            return g * 2

    model = mnn.Sequential(Recorder("a"), Recorder("b"), Recorder("c"))
    assert model(np.zeros(1))[0] == 3
    assert model.backward(np.ones(1))[0] == 8
    assert calls == [
        "forward a",
        "forward b",
        "forward c",
        "backward c",
        "backward b",
        "backward a",
    ]


def test_sequential_indexing_matches_torch():
    ours, theirs = stack(mnn), stack(torch.nn)
    assert len(ours) == len(theirs)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    for index in range(-len(theirs), len(theirs)):
        assert type(ours[index]).__name__ == type(theirs[index]).__name__
    assert ours[4][0] is list(ours.children())[4][0]
    for index in [
        slice(1, 4),
        slice(None, None, 2),
        slice(-3, None),
        slice(5, 2),
        slice(None, None, -1),
    ]:
        part, expected = ours[index], theirs[index]
        assert isinstance(part, mnn.Sequential)
        assert [n for n, _ in part.named_children()] == [n for n, _ in expected.named_children()]
        assert [n for n, _ in part.named_parameters()] == [
            n for n, _ in expected.named_parameters()
        ]
        assert all(m is ours[int(n)] for n, m in part.named_children())  # shared, not copied
        assert repr(part) == repr(expected)
    for index in [len(theirs), -len(theirs) - 1, "1", 1.0]:
        assert_same_error(lambda i=index: theirs[i], lambda i=index: ours[i])
    ours.append(mnn.ReLU())
    theirs.append(torch.nn.ReLU())
    assert repr(ours) == repr(theirs)
    assert repr(mnn.Sequential()) == repr(torch.nn.Sequential())


def test_sequential_from_an_ordered_dict_keeps_the_names():
    from collections import OrderedDict

    ours = mnn.Sequential(OrderedDict([("hidden", mnn.Linear(2, 3)), ("act", mnn.Tanh())]))
    theirs = torch.nn.Sequential(
        OrderedDict([("hidden", torch.nn.Linear(2, 3)), ("act", torch.nn.Tanh())])
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the way
        assert ours(np.zeros((1, 2))).shape == (1, 3)
