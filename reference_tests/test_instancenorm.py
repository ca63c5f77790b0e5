"""InstanceNorm1d/2d/3d and F.instance_norm against torch: outputs, gradients, running stats.

Tolerances and data follow test_batchnorm.py's module docstring (``tolerance()`` with the
absolute part scaled by the magnitude torch's rounding acts on); running statistics use
``tolerance()`` as is.  torch's running-statistics behaviour is checked step by step:
the batch average of per-instance means and unbiased variances, ``momentum=None`` frozen
(passed as 0), ``num_batches_tracked`` never counted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as F
from reference_tests.conftest import assert_close, assert_same_warnings, dtypes, to_torch, tolerance
from reference_tests.norm_harness import (
    Scales,
    assert_functional_error_like_torch,
    assert_module_error_like_torch,
    copy_affine,
    distribution,
    make_twins,
    max_invstd,
    run_train_eval_sequence,
    scaled_tolerance,
    well_conditioned,
)

SPATIAL_RANKS = {"InstanceNorm1d": 1, "InstanceNorm2d": 2, "InstanceNorm3d": 3}


@st.composite
def instance_norm_configs(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(SPATIAL_RANKS)))
    spatial = [draw(st.integers(1, 4)) for _ in range(SPATIAL_RANKS[name])]
    if np.prod(spatial) == 1:  # torch needs more than one spatial value to normalise with
        spatial[0] = 2
    batch = (draw(st.integers(1, 4)),) if draw(st.booleans()) else ()  # unbatched input too
    return dict(
        name=name,
        shape=(*batch, draw(st.integers(1, 4)), *spatial),
        kwargs=dict(
            eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
            momentum=draw(st.sampled_from([0.1, 0.5, 1.0, None])),
            affine=draw(st.booleans()),
            track_running_stats=draw(st.booleans()),
            bias=draw(st.booleans()),
        ),
        modes=draw(st.lists(st.booleans(), min_size=3, max_size=6)),  # True = training step
    )


@given(config=instance_norm_configs(), dtype=dtypes, seed=st.integers(0, 2**31))
def test_instance_norm_train_eval_sequence_matches_torch(device, config, dtype, seed):
    rng = np.random.default_rng(seed)
    name, shape, kwargs = config["name"], config["shape"], config["kwargs"]
    channel_axis = len(shape) - SPATIAL_RANKS[name] - 1
    ours, theirs = make_twins(name, (shape[channel_axis],), dtype, device, **kwargs)
    copy_affine(ours, theirs, rng, device)
    # one distribution per channel, the same at every step
    loc_sigma = distribution(rng, shape[: channel_axis + 1] + (1,) * SPATIAL_RANKS[name])
    spatial_axes = tuple(range(channel_axis + 1, len(shape)))
    run_train_eval_sequence(
        ours,
        theirs,
        rng,
        shape,
        loc_sigma,
        spatial_axes,
        config["modes"],
        kwargs["eps"],
        dtype,
        device,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_stats_are_batch_averages_of_unbiased_instance_stats(dtype):
    # By hand from the equations (TORCH_NOTES §5), independently of torch.
    rng = np.random.default_rng(11)
    x = well_conditioned(rng, (4, 3, 6), dtype, (1, 3, 1))
    module = minireg.nn.InstanceNorm1d(3, momentum=0.25, track_running_stats=True, dtype=dtype)
    module(x)
    mean = x.astype(np.float64).mean(axis=2).mean(axis=0)
    var = x.astype(np.float64).var(axis=2, ddof=1).mean(axis=0)
    rtol, atol = tolerance(dtype, "cpu")
    np.testing.assert_allclose(module.running_mean, 0.25 * mean, rtol=rtol, atol=atol)
    np.testing.assert_allclose(module.running_var, 0.25 * var + 0.75, rtol=rtol, atol=atol)
    assert module.num_batches_tracked == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instance_norm_functional_matches_torch(device, dtype):
    # F.instance_norm without a module, with the input's statistics (updating the running
    # ones) and with the running ones; the backward takes the forward's own arguments.
    rng = np.random.default_rng(13)
    x = well_conditioned(rng, (3, 2, 5), dtype, (3, 2, 1))
    dy = rng.standard_normal(x.shape).astype(dtype)
    weight = rng.uniform(-2, 2, 2).astype(dtype)
    for use_input_stats in (True, False):
        running = [np.array([0.5, -1.0], dtype), np.array([2.0, 0.5], dtype)]
        running_t = [to_torch(r, device) for r in running]
        x_t, w_t = (
            to_torch(x, device, requires_grad=True),
            to_torch(weight, device, requires_grad=True),
        )
        y_t = torch.nn.functional.instance_norm(x_t, *running_t, w_t, None, use_input_stats, 0.3)
        y_t.backward(to_torch(dy, device))
        y = F.instance_norm(x, *running, weight, None, use_input_stats, 0.3)
        grad_input, grad_weight, _ = F.instance_norm_backward(
            dy, x, *running, weight, use_input_stats
        )
        invstd = (
            max_invstd(x, (2,), 1e-5)
            if use_input_stats
            else float(np.max(1 / np.sqrt(running[1] + 1e-5)))
        )
        scales = Scales(x, dy, invstd, weight, None)
        where = f"use_input_stats={use_input_stats}"
        assert_close(y, y_t, *scaled_tolerance(dtype, device, scales.output), f"{where}: output")
        assert_close(
            grad_input,
            x_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_input),
            f"{where}: grad input",
        )
        assert_close(
            grad_weight,
            w_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_weight),
            f"{where}: grad weight",
        )
        for r, r_t in zip(running, running_t, strict=True):
            assert_close(r, r_t, *tolerance(dtype, device), f"{where}: running stats")


# (module name, constructor kwargs, input shape, training)
MODULE_ERRORS = [
    ("InstanceNorm1d", {}, (4,), True),
    ("InstanceNorm1d", {}, (2, 3, 4, 5), True),
    ("InstanceNorm2d", {}, (3, 4), True),
    ("InstanceNorm3d", {}, (2, 3, 4, 5, 6, 7), True),
    ("InstanceNorm1d", {}, (2, 3, 1), True),  # one spatial value
    ("InstanceNorm1d", {}, (3, 1), True),  # the same, unbatched
    (
        "InstanceNorm1d",
        {"track_running_stats": True},
        (2, 3, 1),
        False,
    ),  # eval normalises with running stats ...
    ("InstanceNorm1d", {}, (2, 3, 1), False),  # ... but without them it needs the input's
    ("InstanceNorm1d", {"affine": True}, (2, 4, 5), True),  # channels: dim=1 ...
    ("InstanceNorm2d", {"affine": True}, (4, 5, 5), True),  # ... dim=0 unbatched
]


@pytest.mark.parametrize("name, kwargs, shape, training", MODULE_ERRORS)
def test_module_errors_match_torch(device, name, kwargs, shape, training):
    ours, theirs = make_twins(name, (3,), np.float64, device, **kwargs)
    ours.train(training)
    theirs.train(training)
    x = np.ones(shape)
    if (
        kwargs.get("track_running_stats") and not training
    ):  # not an error: the running statistics normalise
        assert_close(
            ours(x),
            theirs(to_torch(x, device)),
            *tolerance(np.float64, device),
            "eval, one spatial value",
        )
        return
    assert_module_error_like_torch(ours, theirs, x, device)


def test_channel_mismatch_without_affine_warns_like_torch_then_uses_running_stats_sizes(device):
    # without affine, num_features is only checked by a warning ...
    for shape in [(2, 4, 5), (4, 5)]:
        ours, theirs = make_twins("InstanceNorm1d", (3,), np.float64, device)
        x = well_conditioned(np.random.default_rng(0), shape, np.float64, (1,))
        expected, actual = assert_same_warnings(
            lambda theirs=theirs, x=x: theirs(to_torch(x, device)),
            lambda ours=ours, x=x: ours(x),
        )
        assert_close(actual, expected, 1e-10, 1e-10, f"{shape}")
    # ... until running statistics of the wrong size meet the input (sizes repeated N times)
    ours, theirs = make_twins("InstanceNorm1d", (3,), np.float64, device, track_running_stats=True)
    x = np.ones((2, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_module_error_like_torch(ours, theirs, x, device)


@pytest.mark.parametrize(
    "shape, running, weight, use_input_stats",
    [
        ((2, 3, 4), (None, None), None, False),  # no running statistics to use
        ((2, 3, 4), (3, None), None, False),
        ((2, 3, 4), (3, None), None, True),  # both or neither
        ((2, 3, 4), (4, 3), None, True),  # sizes are reported repeated N times
        ((2, 3, 4), (3, 4), None, True),
        ((2, 3, 4), (None, None), 4, True),
        ((3, 4), (None, None), None, True),  # a 2-D input has no spatial values
        ((2, 3, 1), (3, 4), None, True),  # the spatial check comes first
    ],
)
def test_functional_errors_match_torch(device, shape, running, weight, use_input_stats):
    def call(module: Any, convert: Any) -> Any:
        stats = [None if n is None else convert(np.ones(n)) for n in running]
        w = None if weight is None else convert(np.ones(weight))
        return module.instance_norm(convert(np.ones(shape)), *stats, w, None, use_input_stats)

    assert_functional_error_like_torch(call, device)


@pytest.mark.parametrize(
    "kwargs",
    [{}, dict(affine=True, track_running_stats=True, momentum=None), dict(affine=True, bias=False)],
)
def test_repr_and_state_dict_match_torch(device, kwargs):
    ours, theirs = make_twins("InstanceNorm2d", (3,), np.float32, device, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value, 0, 0, key)


def test_backward_before_forward_raises():
    with pytest.raises(
        RuntimeError, match=r"InstanceNorm1d.backward\(\) called before forward\(\)"
    ):
        minireg.nn.InstanceNorm1d(2).backward(np.ones((2, 2, 3)))
