"""MSELoss, L1Loss, BCEWithLogitsLoss and CrossEntropyLoss against torch autograd.

For every reduction, on hypothesis-drawn shapes (0-d, empty, batched, spatial for
cross-entropy), dtypes and data: the loss and the gradient for the input, with a random
upstream gradient, through the functional kernels and through the loss modules.  The
data include large logits (|x| ~ 40, where a naive sigmoid or softmax overflows), ties
(``input == target``, where L1's subgradient is 0), targets of exactly 0 and 1, ignored
targets, label smoothing in [0, 1] (and a negative value, which torch ignores), class
probabilities as targets, mixed dtypes and broadcasting (with torch's warning).

Tolerances come from ``tolerance(dtype, device)``: each loss is a handful of roundings
per element followed by a sum over at most a few hundred terms, far inside the budget.

Errors are compared with torch's type and text (torch's ``torch.Size([a])`` written as
NumPy's ``(a,)``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import minireg.nn as mnn
import minireg.nn.functional as F
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    dtypes,
    random_array,
    shapes,
    to_numpy,
    to_torch,
    tolerance,
    torch_text,
)

reductions = st.sampled_from(["none", "mean", "sum"])
seeds = st.integers(0, 2**31 - 1)


def torch_loss_and_grad(loss_fn, x: np.ndarray, grad_output_of, device: str):
    """torch's loss of ``x`` and the gradient for ``x`` under the upstream gradient
    ``grad_output_of(loss)``."""
    x_torch = to_torch(x, device, requires_grad=True)
    loss = loss_fn(x_torch)
    grad_output = grad_output_of(tuple(loss.shape), to_numpy(loss).dtype)
    loss.backward(to_torch(grad_output, device))
    return loss, x_torch.grad, grad_output


def check_loss(ours_fn, ours_grad_fn, module, theirs_fn, x, device, rng, rtol, atol):
    """The kernel pair and the module against torch, for a random upstream gradient."""
    loss, grad, g = torch_loss_and_grad(
        theirs_fn, x, lambda shape, dt: random_array(rng, shape, dt), device
    )
    assert_close(ours_fn(x), loss, rtol, atol, "loss")
    assert_close(ours_grad_fn(g, x), grad, rtol, atol, "grad input")
    assert_close(module.forward_fn(x), loss, rtol, atol, "module loss")
    assert_close(module.layer.backward(g), grad, rtol, atol, "module grad input")
    # the default upstream gradient is 1 (ones for reduction="none")
    _, grad_of_ones, _ = torch_loss_and_grad(theirs_fn, x, np.ones, device)
    assert_close(
        module.layer.backward(), grad_of_ones, rtol, atol, "module grad input, default upstream"
    )


class Bound:
    """A loss module with its target bound, so ``forward_fn(x)`` = ``layer(x, target)``."""

    def __init__(self, layer, target):
        self.layer, self.target = layer, target

    def forward_fn(self, x):
        return self.layer(x, self.target)


# ============================================================================ MSE, L1, BCE
ELEMENTWISE = {
    "mse": (F.mse_loss, F.mse_loss_backward, TF.mse_loss, mnn.MSELoss, torch.nn.MSELoss),
    "l1": (F.l1_loss, F.l1_loss_backward, TF.l1_loss, mnn.L1Loss, torch.nn.L1Loss),
    "bce": (
        F.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits_backward,
        TF.binary_cross_entropy_with_logits,
        mnn.BCEWithLogitsLoss,
        torch.nn.BCEWithLogitsLoss,
    ),
}


def elementwise_target(
    name: str, rng: np.random.Generator, x: np.ndarray, ties: bool
) -> np.ndarray:
    if name == "bce":  # probabilities, some exactly 0 or 1
        y = rng.random(x.shape)
        if ties and y.size:
            y.reshape(-1)[rng.integers(0, y.size, 3)] = rng.integers(0, 2, 3)
        return y.astype(x.dtype)
    y = random_array(rng, x.shape, x.dtype)
    if ties and y.size:
        picks = rng.integers(0, y.size, 3)
        y.reshape(-1)[picks] = x.reshape(-1)[picks]
    return y


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(
    shape=shapes,
    dtype=dtypes,
    reduction=reductions,
    seed=seeds,
    scale=st.sampled_from([1.0, 40.0]),
    ties=st.booleans(),
)
def test_elementwise_losses_match_torch(device, name, shape, dtype, reduction, seed, scale, ties):
    ours_fn, ours_grad, theirs_fn, module, theirs_module = ELEMENTWISE[name]
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, scale)
    y = elementwise_target(name, rng, x, ties)
    y_torch = to_torch(y, device)
    check_loss(
        lambda a: ours_fn(a, y, reduction=reduction),
        lambda g, a: ours_grad(g, a, y, reduction=reduction),
        Bound(module(reduction=reduction), y),
        lambda t: theirs_fn(t, y_torch, reduction=reduction),
        x,
        device,
        rng,
        *tolerance(dtype, device),
    )
    assert repr(module(reduction=reduction)) == repr(theirs_module(reduction=reduction))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_at_extreme_logits(device, dtype):
    # Confident logits: the loss of a right answer is the tiny e^{-|x|} (log1p keeps it; a
    # naive log(1 + e^{-|x|}) rounds it to 0), and a wrong one is |x| (a naive
    # log(sigmoid(x)) gives -inf once e^{-x} overflows).  Compared relatively (atol only at the
    # subnormal scale).
    x = np.array([20.0, -20.0, 40.0, -40.0, 100.0, -100.0, 1000.0, -1000.0, 0.0], dtype)
    for y in [np.ones_like(x), np.zeros_like(x), np.full_like(x, 0.5)]:
        loss, grad, g = torch_loss_and_grad(
            lambda t, y=y: TF.binary_cross_entropy_with_logits(
                t, to_torch(y, device), reduction="none"
            ),
            x,
            np.ones,
            device,
        )
        rtol = tolerance(dtype, device)[0]
        atol = (
            4 * np.finfo(dtype).smallest_subnormal
        )  # e^{-100} is subnormal in float32: absolute precision there
        assert_close(
            F.binary_cross_entropy_with_logits(x, y, reduction="none"), loss, rtol, atol, "loss"
        )
        assert_close(
            F.binary_cross_entropy_with_logits_backward(g, x, y, reduction="none"),
            grad,
            rtol,
            atol,
            "grad",
        )


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize(
    "input_dtype, target_dtype",
    [
        (np.float32, np.float64),
        (np.float64, np.float32),
        (np.float32, np.int64),
        (np.float64, np.int64),
    ],
)
def test_mixed_dtypes_promote_like_torch(device, name, input_dtype, target_dtype):
    ours_fn, ours_grad, theirs_fn, _, _ = ELEMENTWISE[name]
    rng = np.random.default_rng(5)
    x = random_array(rng, (4, 3), input_dtype, 3.0)
    y = rng.integers(0, 2, (4, 3)).astype(target_dtype)
    if np.issubdtype(target_dtype, np.floating):
        y = (y + rng.random((4, 3)).astype(target_dtype)) / 2
    y_torch = to_torch(y, device)
    for reduction in ["none", "mean", "sum"]:
        try:
            theirs_fn(to_torch(x, device), y_torch, reduction=reduction)
        except (
            RuntimeError
        ):  # BCE refuses an integer target (its loss is computed in the target's dtype)
            assert_same_error(
                lambda r=reduction: theirs_fn(to_torch(x, device), y_torch, reduction=r),
                lambda r=reduction: ours_fn(x, y, reduction=r),
            )
            continue
        loss, grad, g = torch_loss_and_grad(
            lambda t, r=reduction: theirs_fn(t, y_torch, reduction=r),
            x,
            lambda s, dt: random_array(rng, s, dt),
            device,
        )
        rtol, atol = tolerance(np.float32, device)  # float32 rounding is somewhere in each chain
        assert_close(ours_fn(x, y, reduction=reduction), loss, rtol, atol, f"loss, {reduction}")
        assert_close(
            ours_grad(g, x, y, reduction=reduction), grad, rtol, atol, f"grad, {reduction}"
        )


@pytest.mark.parametrize("name", ["mse", "l1"])
@pytest.mark.parametrize(
    "input_shape, target_shape",
    [
        ((3, 4), (4,)),
        ((3, 1), (3, 4)),
        ((4,), (2, 4)),
        ((2, 1, 3), (4, 1)),
        ((), (3,)),
        ((3, 4), (2, 4)),
        ((2, 3), (3, 2, 1)),
    ],
)
def test_broadcast_target_warns_and_matches_torch(device, name, input_shape, target_shape):
    ours_fn, ours_grad, theirs_fn, _, _ = ELEMENTWISE[name]
    rng = np.random.default_rng(6)
    x = random_array(rng, input_shape, np.float64)
    y = random_array(rng, target_shape, np.float64)
    y_torch = to_torch(y, device)
    rtol, atol = tolerance(np.float64, device)
    for reduction in ["none", "mean", "sum"]:
        theirs_error = loss = None
        with warnings.catch_warnings(record=True) as theirs_warnings:
            warnings.simplefilter("always")
            try:
                loss, grad, g = torch_loss_and_grad(
                    lambda t, r=reduction: theirs_fn(t, y_torch, reduction=r),
                    x,
                    lambda s, dt: random_array(rng, s, dt),
                    device,
                )
            except RuntimeError as error:  # shapes that do not broadcast
                theirs_error = error
        with warnings.catch_warnings(record=True) as ours_warnings:
            warnings.simplefilter("always")
            if theirs_error is not None:
                with pytest.raises(RuntimeError) as ours_error:
                    ours_fn(x, y, reduction=reduction)
                assert str(ours_error.value) == str(theirs_error)
            else:
                assert_close(
                    ours_fn(x, y, reduction=reduction), loss, rtol, atol, f"loss, {reduction}"
                )
        assert [str(w.message) for w in ours_warnings] == [
            torch_text(str(w.message)) for w in theirs_warnings
        ]
        assert all(
            w.filename == __file__ for w in ours_warnings
        )  # the warning points at the caller
        if loss is not None:
            assert_close(
                ours_grad(g, x, y, reduction=reduction), grad, rtol, atol, f"grad, {reduction}"
            )


# ============================================================================ cross-entropy
@st.composite
def cross_entropy_cases(draw):
    """(input shape, target shape, number of classes)."""
    ndim = draw(st.integers(1, 4))
    n_classes = draw(st.integers(1, 5))
    if ndim == 1:
        return (n_classes,), (), n_classes
    batch = draw(st.integers(0, 4))
    spatial = tuple(draw(st.lists(st.integers(0, 3), min_size=ndim - 2, max_size=ndim - 2)))
    return (batch, n_classes) + spatial, (batch,) + spatial, n_classes


label_smoothings = st.one_of(st.just(0.0), st.floats(0.0, 1.0), st.sampled_from([1.0, -0.3]))


@given(
    case=cross_entropy_cases(),
    dtype=dtypes,
    reduction=reductions,
    label_smoothing=label_smoothings,
    ignore=st.sampled_from([None, -100, 0, 2]),
    seed=seeds,
    scale=st.sampled_from([1.0, 40.0]),
)
def test_cross_entropy_with_class_indices_matches_torch(
    device, case, dtype, reduction, label_smoothing, ignore, seed, scale
):
    input_shape, target_shape, n_classes = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, input_shape, dtype, scale)
    target = rng.integers(0, n_classes, target_shape)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    if ignore is not None:
        kwargs["ignore_index"] = ignore
        target = np.where(rng.random(target_shape) < 0.3, ignore, target)
    target_torch = to_torch(target, device)
    check_loss(
        lambda a: F.cross_entropy(a, target, **kwargs),
        lambda g, a: F.cross_entropy_backward(g, a, target, **kwargs),
        Bound(mnn.CrossEntropyLoss(**kwargs), target),
        lambda t: TF.cross_entropy(t, target_torch, **kwargs),
        x,
        device,
        rng,
        *tolerance(dtype, device),
    )


@given(
    case=cross_entropy_cases(),
    dtype=dtypes,
    reduction=reductions,
    label_smoothing=label_smoothings,
    seed=seeds,
    scale=st.sampled_from([1.0, 40.0]),
)
def test_cross_entropy_with_class_probabilities_matches_torch(
    device, case, dtype, reduction, label_smoothing, seed, scale
):
    input_shape, _, _ = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, input_shape, dtype, scale)
    class_dim = 0 if x.ndim == 1 else 1
    q = rng.random(input_shape)
    q = (q / q.sum(axis=class_dim, keepdims=True)).astype(dtype)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    q_torch = to_torch(q, device)
    check_loss(
        lambda a: F.cross_entropy(a, q, **kwargs),
        lambda g, a: F.cross_entropy_backward(g, a, q, **kwargs),
        Bound(mnn.CrossEntropyLoss(**kwargs), q),
        lambda t: TF.cross_entropy(t, q_torch, **kwargs),
        x,
        device,
        rng,
        *tolerance(dtype, device),
    )


def test_cross_entropy_byte_targets_and_custom_ignore_index_match_torch(device):
    rng = np.random.default_rng(8)
    x = random_array(rng, (5, 4), np.float64)
    rtol, atol = tolerance(np.float64, device)
    # One sample with a (1,) target: torch's forward takes it (its backward then fails).
    expected = TF.cross_entropy(
        to_torch(x[0], device), to_torch(np.array([2]), device), reduction="none"
    )
    assert_close(
        F.cross_entropy(x[0], np.array([2]), reduction="none"), expected, rtol, atol, "(1,) target"
    )
    for target, kwargs in [
        (np.array([0, 3, 1, 2, 2], np.uint8), {}),
        (np.array([0, -5, 1, -5, 2]), dict(ignore_index=-5)),
        (np.array([-100] * 5), dict(label_smoothing=0.2)),  # nothing left: the mean is NaN
    ]:
        for reduction in ["none", "mean", "sum"]:
            expected = TF.cross_entropy(
                to_torch(x, device), to_torch(target, device), reduction=reduction, **kwargs
            )
            assert_close(
                F.cross_entropy(x, target, reduction=reduction, **kwargs),
                expected,
                rtol,
                atol,
                str(kwargs),
            )


def long_target(*values):
    return np.array(values, dtype=np.int64)


CROSS_ENTROPY_ERRORS = [
    # (input shape, target, kwargs)
    ((3, 4), long_target(0, 4, 1), {}),
    ((3, 4), long_target(0, -1, 1), {}),
    ((3, 4), long_target(0, 7, -1), dict(label_smoothing=0.2)),
    ((3, 4), long_target(0, 1), {}),
    ((3, 4), long_target(0, 1, 2)[None], {}),
    ((3, 4), np.int64(1), {}),
    ((3, 4), np.zeros((3, 1), np.int64), {}),
    ((2, 4, 3), np.array([[0, 1, 5], [0, 0, 0]]), {}),
    ((2, 4, 3, 2), np.zeros((2, 3, 2), np.int64) + 7, {}),
    ((2, 4, 3), np.zeros((2, 4), np.int64), {}),
    ((3, 4, 2), np.zeros(3, np.int64), {}),
    ((2, 4, 2), np.zeros((3, 2), np.int64), {}),
    ((2, 4, 2, 1, 3), np.zeros((2, 2, 3, 1), np.int64), {}),
    ((4,), np.int64(5), {}),
    ((4,), long_target(2, 1), {}),
    ((4,), long_target(), {}),
    ((4,), np.zeros((1, 1), np.int64), {}),
    ((4,), long_target(2, 1, 0, 0), {}),  # same shape as the input: read as probabilities
    ((3, 0), np.zeros(3, np.int64), {}),
    ((), np.int64(0), {}),
    ((), long_target(0), {}),
    ((), np.float32(0.5), {}),
    ((3, 4), np.zeros(3, np.int32), {}),
    ((3, 4), np.zeros(2, np.int32), {}),
    ((3, 4), np.zeros(3, bool), {}),
    ((3, 4), np.zeros(3, np.float32), {}),
    ((3, 4, 2), np.zeros((3, 2), np.uint8), {}),
    ((3, 4, 2), np.zeros((3, 2), np.int32), {}),
    ((3, 4), np.zeros((3, 4), np.int64), {}),
    ((3, 4), long_target(0, 1, 2), dict(label_smoothing=1.5)),
    ((3, 4), long_target(0, 9, 2), dict(label_smoothing=1.5)),
    ((3, 4), long_target(0, 1), dict(label_smoothing=1.5)),
    ((3, 4), np.full((3, 4), 0.25, np.float32), dict(label_smoothing=1.5)),
    ((3, 4), long_target(0, 1, 2), dict(reduction="avg")),
    ((3, 4), long_target(0, 9, 2), dict(reduction="elementwise")),
]


@pytest.mark.parametrize("input_shape, target, kwargs", CROSS_ENTROPY_ERRORS)
def test_cross_entropy_errors_match_torch(input_shape, target, kwargs):
    x = np.zeros(input_shape, np.float32)
    target = np.asarray(target)
    for ours_fn in [
        lambda: F.cross_entropy(x, target, **kwargs),
        lambda: F.cross_entropy_backward(np.ones(()), x, target, **kwargs),
        lambda: mnn.CrossEntropyLoss(**kwargs)(x, target),
    ]:
        assert_same_error(
            lambda: TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(target), **kwargs),
            ours_fn,
        )


@pytest.mark.parametrize(
    "name, input_shape, target, reduction",
    [
        ("bce", (3, 4), np.zeros(3, np.float32), "mean"),
        ("bce", (3, 4), np.zeros((3, 4), np.int64), "mean"),
        ("bce", (3, 4), np.zeros((3, 4), np.float32), "avg"),
        ("bce", (3, 4), np.zeros(3, np.float32), "avg"),
        ("mse", (3, 4), np.zeros((3, 4), np.float32), "avg"),
        ("mse", (3, 4), np.zeros((2, 4), np.float32), "avg"),
        ("l1", (3, 4), np.zeros((3, 4), np.float32), "elementwise"),
    ],
)
def test_elementwise_loss_errors_match_torch(name, input_shape, target, reduction):
    ours_fn, _, theirs_fn, module, _ = ELEMENTWISE[name]
    x = np.zeros(input_shape, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broadcast warning, tested above
        for ours in [
            lambda: ours_fn(x, target, reduction=reduction),
            lambda: module(reduction=reduction)(x, target),
        ]:
            assert_same_error(
                lambda: theirs_fn(
                    torch.from_numpy(x), torch.from_numpy(target), reduction=reduction
                ),
                ours,
            )


# ============================================================================ the loss modules
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (mnn.MSELoss, torch.nn.MSELoss),
        (mnn.L1Loss, torch.nn.L1Loss),
        (mnn.CrossEntropyLoss, torch.nn.CrossEntropyLoss),
        (mnn.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss),
    ],
)
def test_loss_modules_mirror_torchs_attributes(ours, theirs):
    assert repr(ours()) == repr(theirs())
    assert ours().reduction == theirs().reduction == "mean"
    ours(reduction="avg")  # as torch, a bad reduction is only detected when the loss is computed
    theirs(reduction="avg")
    if ours is mnn.CrossEntropyLoss:
        a, b = (
            ours(label_smoothing=0.1, ignore_index=3),
            theirs(label_smoothing=0.1, ignore_index=3),
        )
        assert (a.label_smoothing, a.ignore_index) == (b.label_smoothing, b.ignore_index)
        assert (ours().label_smoothing, ours().ignore_index) == (
            theirs().label_smoothing,
            theirs().ignore_index,
        )
    with pytest.raises(RuntimeError, match="called before forward"):
        ours().backward()


def test_loss_backward_checks_the_upstream_shape():
    layer = mnn.MSELoss(reduction="none")
    layer(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(
        RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of \(3,\)"
    ):
        layer.backward(np.ones(3))
    layer = mnn.CrossEntropyLoss()
    layer(np.zeros((2, 3)), np.array([0, 2]))
    assert layer.backward(2.0).shape == (2, 3)  # a scalar upstream gradient for a reduced loss
