"""BatchNorm1d/2d/3d and F.batch_norm against torch: outputs, gradients, running statistics.

Tolerance.  float64 comparisons use ``tolerance()`` as is.  In float32 the outputs cannot
agree to ``tolerance()``'s absolute floor: torch's CPU kernel evaluates
``y = x*(w*invstd) + (b - mean*w*invstd)``, minireg the textbook ``(x - mean)*invstd*w + b``,
and the two roundings differ by a few units in the last place (ULP) of the *largest term*,
``|x|*|w|*invstd``, which for data at 10 standard deviations from its mean is ~14 times
the output's own size (TORCH_NOTES §5 measured 3.2e-6 against ``1 + |ref|``; for a group
of one value, where ``invstd = 1/sqrt(eps)``, it is ~300 times).  So the absolute part of
the tolerance is ``tolerance()``'s atol (8.4 float32 ULPs at 1) multiplied by the
magnitude that the rounding acts on:

* output: ``max|x| * max(invstd) * max|w| + max|b|`` (torch's two summands);
* input gradient: ``max|w| * max(invstd) * max|dy| * (1 + max|x| * max(invstd))``
  (``w*invstd*dy`` with the error of x_hat, ``~ULP(|x|)*invstd``, fed through);
* weight gradient: ``max|dy| * max|x| * max(invstd) * sqrt(numel)`` and bias gradient
  ``max|dy| * sqrt(numel)`` (sums of ``numel`` rounded terms), summed over the steps
  whose gradients accumulate;
* running statistics: ``tolerance()`` unscaled (they are rounded blends of moments).

each never below 1.  Over the test battery the measured float32 error is at most 1.4
such units (the scaled atol allows 8.4) and float64 agrees to ~1e-15.  Data are
well-conditioned: per-channel mean within 10 standard deviations of zero, standard
deviations from 0.1 to 10.

Error messages: torch prints shapes as ``torch.Size([2, 3])``, minireg the NumPy way,
``(2, 3)``; ``conftest.torch_text`` rewrites the former into the latter before comparing.
The helpers shared with test_instancenorm.py and test_layernorm_groupnorm.py live in
``norm_harness.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as F
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    dtypes,
    to_numpy,
    to_torch,
    tolerance,
)
from reference_tests.norm_harness import (
    Scales,
    affine_values,
    assert_module_error_like_torch,
    compare_buffers,
    compare_step,
    copy_affine,
    distribution,
    make_twins,
    max_invstd,
    run_train_eval_sequence,
    running_invstd,
    scaled_tolerance,
    well_conditioned,
)

# ============================================================================ batch norm
# (module name, input shape without N and C)
LAYOUTS = [
    ("BatchNorm1d", ()),
    ("BatchNorm1d", (st.integers(1, 6),)),
    ("BatchNorm2d", (st.integers(1, 4), st.integers(1, 4))),
    ("BatchNorm3d", (st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))),
]


@st.composite
def batch_norm_configs(draw: st.DrawFn) -> dict[str, Any]:
    name, spatial = draw(st.sampled_from(LAYOUTS))
    return dict(
        name=name,
        shape=(draw(st.integers(2, 5)), draw(st.integers(1, 4)), *(draw(s) for s in spatial)),
        kwargs=dict(
            eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
            momentum=draw(st.sampled_from([0.1, 0.5, 1.0, 0.0, None])),
            affine=draw(st.booleans()),
            track_running_stats=draw(st.booleans()),
            bias=draw(st.booleans()),
        ),
        # True = a training step, False = an evaluation step; state carries across them
        modes=draw(st.lists(st.booleans(), min_size=3, max_size=8)),
    )


@given(config=batch_norm_configs(), dtype=dtypes, seed=st.integers(0, 2**31))
def test_batch_norm_train_eval_sequence_matches_torch(device, config, dtype, seed):
    rng = np.random.default_rng(seed)
    shape, kwargs = config["shape"], config["kwargs"]
    ours, theirs = make_twins(config["name"], (shape[1],), dtype, device, **kwargs)
    copy_affine(ours, theirs, rng, device)
    # one distribution per channel, the same at every step (so running statistics track it)
    loc_sigma = distribution(rng, (1, shape[1]) + (1,) * (len(shape) - 2))
    axes = (0, *range(2, len(shape)))
    run_train_eval_sequence(
        ours, theirs, rng, shape, loc_sigma, axes, config["modes"], kwargs["eps"], dtype, device
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
def test_batch_norm_empty_batch_matches_torch(device, shape, dtype):
    # torch returns an empty output, leaves the running statistics alone, but still counts the batch
    ours, theirs = make_twins("BatchNorm1d", (3,), dtype, device, momentum=None)
    dy = np.zeros(shape, dtype)
    compare_step(ours, theirs, np.zeros(shape, dtype), dy, device, 1.0, {}, "empty batch")
    compare_buffers(ours, theirs, dtype, device, "empty batch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_functional_matches_torch(device, dtype):
    # F.batch_norm without a module: batch statistics with and without running estimates,
    # and evaluation with them; the backward takes the forward's own arguments.
    rng = np.random.default_rng(7)
    x = well_conditioned(rng, (6, 3, 5), dtype, (1, 3, 1))
    weight, bias = affine_values(rng, (3,), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    for training, with_stats in [(True, True), (True, False), (False, True)]:
        running = (
            [np.array(v, dtype) for v in (rng.standard_normal(3), rng.uniform(0.5, 2.0, 3))]
            if with_stats
            else [None, None]
        )
        running_t = [None if r is None else to_torch(r, device) for r in running]
        x_t, w_t, b_t = (to_torch(a, device, requires_grad=True) for a in (x, weight, bias))
        y_t = torch.nn.functional.batch_norm(x_t, *running_t, w_t, b_t, training, 0.3, 1e-4)
        y_t.backward(to_torch(dy, device))
        y = F.batch_norm(x, *running, weight, bias, training, 0.3, 1e-4)
        grads = F.batch_norm_backward(dy, x, *running, weight, training, 1e-4)
        invstd = (
            max_invstd(x, (0, 2), 1e-4)
            if training
            else float(np.max(1 / np.sqrt(running[1] + 1e-4)))
        )
        scales = Scales(x, dy, invstd, weight, bias)
        where = f"training={training}, running stats={with_stats}"
        assert_close(y, y_t, *scaled_tolerance(dtype, device, scales.output), f"{where}: output")
        assert_close(
            grads[0],
            x_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_input),
            f"{where}: grad input",
        )
        assert_close(
            grads[1],
            w_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_weight),
            f"{where}: grad weight",
        )
        assert_close(
            grads[2],
            b_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_bias),
            f"{where}: grad bias",
        )
        for r, r_t in zip(running, running_t, strict=True):
            if r is not None:
                assert_close(r, r_t, *tolerance(dtype, device), f"{where}: running stats")


def test_running_variance_is_unbiased_and_normalisation_biased():
    # By hand from the equations: one channel holding [0, 2], momentum 1.
    module = minireg.nn.BatchNorm1d(1, momentum=1.0, eps=1e-5)
    y = module(np.array([[0.0], [2.0]]))
    np.testing.assert_allclose(module.running_var, [2.0])  # sum (x - 1)^2 / (n - 1) = 2 / 1
    np.testing.assert_allclose(
        y[:, 0], [-1 / np.sqrt(1 + 1e-5), 1 / np.sqrt(1 + 1e-5)]
    )  # var_b = 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("track_running_stats", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_matches_torch_and_torch_state_loads(device, dtype, track_running_stats, bias):
    rng = np.random.default_rng(3)
    kwargs = dict(track_running_stats=track_running_stats, bias=bias, momentum=None)
    ours, theirs = make_twins("BatchNorm2d", (4,), dtype, device, **kwargs)
    copy_affine(ours, theirs, rng, device)
    for _ in range(3):
        x = well_conditioned(rng, (3, 4, 2, 2), dtype, (1, 4, 1, 1))
        ours(x)
        theirs(to_torch(x, device))
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        assert_close(
            ours_sd[key], theirs_sd[key], *tolerance(dtype, device), f"state_dict[{key!r}]"
        )
    # A torch layer's state (as numpy) loads into a fresh minireg layer, which then
    # evaluates like the torch layer.
    fresh = minireg.nn.BatchNorm2d(4, dtype=dtype, **kwargs)
    fresh.load_state_dict({key: to_numpy(value) for key, value in theirs_sd.items()})
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, to_numpy(theirs_sd[key]), err_msg=key)
        assert value.dtype == to_numpy(theirs_sd[key]).dtype, key
    x = well_conditioned(rng, (2, 4, 3, 3), dtype, (1, 4, 1, 1))
    fresh.eval()
    theirs.eval()
    invstd = running_invstd(max_invstd(x, (0, 2, 3), 1e-5), theirs, 1e-5)
    scale = Scales(
        x,
        x,
        invstd,
        to_numpy(theirs.weight),
        None if theirs.bias is None else to_numpy(theirs.bias),
    ).output
    assert_close(
        fresh(x),
        theirs(to_torch(x, device)),
        *scaled_tolerance(dtype, device, scale),
        "eval after load",
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(momentum=None, bias=False),
        dict(affine=False, track_running_stats=False, eps=1e-3),
    ],
)
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
def test_repr_and_parameters_match_torch(device, name, kwargs):
    ours, theirs = make_twins(name, (5,), np.float32, device, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value, 0, 0, key)


# (module name, constructor kwargs, input shape, training)
MODULE_ERRORS = [
    ("BatchNorm1d", {}, (4,), True),
    ("BatchNorm1d", {}, (2, 3, 4, 5), True),
    ("BatchNorm2d", {}, (2, 3, 4), True),
    ("BatchNorm3d", {}, (2, 3, 4, 5), True),
    ("BatchNorm1d", {}, (1, 3), True),
    ("BatchNorm1d", {}, (1, 3, 1), True),
    ("BatchNorm2d", {"track_running_stats": False}, (1, 3, 1, 1), False),  # batch stats in eval
    ("BatchNorm1d", {}, (4, 5), True),  # running_mean's size
    ("BatchNorm1d", {}, (4, 5), False),
    ("BatchNorm1d", {"track_running_stats": False}, (4, 5), True),  # weight's size
    ("BatchNorm1d", {"eps": 0.0}, (4, 3), True),
    ("BatchNorm1d", {"eps": -1}, (4, 3), False),
    ("BatchNorm1d", {"eps": -1}, (1, 3), True),  # the batch check comes first
]


@pytest.mark.parametrize("name, kwargs, shape, training", MODULE_ERRORS)
def test_module_errors_match_torch_and_leave_state_alone(device, name, kwargs, shape, training):
    ours, theirs = make_twins(name, (3,), np.float64, device, **kwargs)
    ours.train(training)
    theirs.train(training)
    x = np.ones(shape)
    before = {key: np.array(value, copy=True) for key, value in ours.state_dict().items()}
    assert_module_error_like_torch(ours, theirs, x, device)
    # minireg validates before it mutates (torch has already counted the batch by then)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_eps_zero_is_allowed_in_evaluation(device):
    ours, theirs = make_twins("BatchNorm1d", (3,), np.float64, device, eps=0.0)
    ours.eval()
    theirs.eval()
    x = np.arange(12.0).reshape(4, 3)
    assert_close(
        ours(x), theirs(to_torch(x, device)), *tolerance(np.float64, device), "eval, eps=0"
    )


def _functional_case(
    shape: tuple[int, ...],
    running: Sequence[int | None],
    weight: int | None,
    bias: int | None,
    training: bool,
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    def arrays(device: str | None) -> list[Any]:
        out = []
        for size in (*running, weight, bias):
            value = None if size is None else np.ones(size)
            out.append(value if device is None or value is None else to_torch(value, device))
        return out

    def theirs(device: str) -> Any:
        return torch.nn.functional.batch_norm(
            to_torch(np.ones(shape), device), *arrays(device), training=training
        )

    def ours() -> Any:
        return F.batch_norm(np.ones(shape), *arrays(None), training=training)

    return theirs, ours


@pytest.mark.parametrize(
    "shape, running, weight, bias, training",
    [
        ((4, 3), (None, None), None, None, False),  # eval needs running statistics
        ((4, 3), (3, None), None, None, False),
        ((4, 3), (3, None), None, None, True),  # both or neither
        ((4, 3), (None, 3), None, None, True),
        ((4, 3), (4, None), None, None, True),  # sizes: running_mean first ...
        ((4, 3), (3, 4), 4, None, True),  # ... then running_var ...
        ((4, 3), (3, 3), 4, 5, True),  # ... then weight ...
        ((4, 3), (None, None), 3, 5, True),  # ... then bias
        ((1, 3), (4, 3), None, None, True),  # the batch check before ATen's
    ],
)
def test_functional_errors_match_torch(device, shape, running, weight, bias, training):
    theirs, ours = _functional_case(shape, running, weight, bias, training)
    assert_same_error(lambda: theirs(device), ours)


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match=r"BatchNorm1d.backward\(\) called before forward\(\)"):
        minireg.nn.BatchNorm1d(2).backward(np.ones((2, 2)))


# ============================================================================ saved statistics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 4), (4, 3, 5, 6), (0, 3), (2, 3, 0)])
@pytest.mark.parametrize("with_weight", [True, False])
def test_backward_with_saved_statistics_is_bit_identical(shape, dtype, with_weight):
    # the forward's (mean, invstd), passed to the backward, give exactly the gradients that
    # recomputing them from the input gives
    rng = np.random.default_rng(11)
    x = well_conditioned(rng, shape, dtype, (1, 3) + (1,) * (len(shape) - 2))
    dy = rng.standard_normal(shape).astype(dtype)
    weight = affine_values(rng, (3,), dtype)[0] if with_weight else None
    running = [np.zeros(3, dtype), np.ones(3, dtype)]
    y, save_mean, save_invstd = F.batch_norm_with_statistics(
        x, *running, weight, None, True, 0.1, 1e-3
    )
    np.testing.assert_array_equal(y, F.batch_norm(x, None, None, weight, None, True, 0.1, 1e-3))
    assert save_mean.shape == save_invstd.shape == (3,)
    assert save_mean.dtype == save_invstd.dtype == np.dtype(dtype)
    recomputed = F.batch_norm_backward(dy, x, *running, weight, True, 1e-3)
    saved = F.batch_norm_backward(
        dy, x, *running, weight, True, 1e-3, save_mean=save_mean, save_invstd=save_invstd
    )
    for ours, reference in zip(saved, recomputed, strict=True):
        assert ours.dtype == reference.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours, reference)


@pytest.fixture
def statistics_spy(monkeypatch):
    """Counts the computations of batch statistics (``channel_mean`` calls) by the batch
    norm kernels and by their in-place twins, which the layers run."""
    from minireg._engine import norm_twins
    from minireg.nn._functional import batch_norm

    calls = []
    original = batch_norm.channel_mean

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    for module in (batch_norm, norm_twins):
        monkeypatch.setattr(module, "channel_mean", spy)
    return calls


@pytest.mark.parametrize(
    "name, shape", [("BatchNorm2d", (4, 3, 5, 6)), ("InstanceNorm1d", (4, 3, 7))]
)
def test_module_backward_uses_the_forward_statistics(statistics_spy, name, shape):
    # the module's forward computes the statistics once; its backward reuses them
    kwargs = {"affine": True} if name.startswith("Instance") else {}
    module = getattr(minireg.nn, name)(3, dtype=np.float32, **kwargs)
    rng = np.random.default_rng(5)
    x = well_conditioned(rng, shape, np.float32, (1, 3) + (1,) * (len(shape) - 2))
    dy = rng.standard_normal(shape).astype(np.float32)
    module(x)
    assert len(statistics_spy) == 1
    grad_input = module.backward(dy)
    assert len(statistics_spy) == 1, "backward recomputed the batch statistics"
    # and gives what the functional backward gives when it recomputes them
    if name.startswith("Batch"):
        expected = F.batch_norm_backward(
            dy, x, module.running_mean, module.running_var, module.weight.data, True
        )
    else:
        expected = F.instance_norm_backward(dy, x, None, None, module.weight.data, True)
    np.testing.assert_array_equal(grad_input, expected[0])
    np.testing.assert_array_equal(module.weight.grad, expected[1])
