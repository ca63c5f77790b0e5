"""RMSprop against torch.optim.RMSprop: trajectories over every option, errors, state_dict.

Tolerance: the shared ``tolerance(dtype, device)`` (float32 1e-5/1e-6, float64
1e-10/1e-12), except float32 with momentum, where it is scaled by ``MOMENTUM_F32_SCALE``.
Why: the momentum buffer sums terms ``g/(sqrt(v~) + eps)`` of size 10 and more (the
centered ``v~ = v - gbar^2`` cancels when the gradient is steady) while the buffer itself
may sit near zero, so its per-step rounding differences (torch fuses multiply-adds and
its sqrt is not correctly rounded, TORCH_NOTES §0) stay absolute at the terms' scale,
about 1e-6 per term, and outgrow the 1e-6 floor.  Measured over 1500 random draws of
this battery's configurations (25 steps each): float32 with momentum, worst 1.45 of the
shared budget (8.6e-6 absolute), hence the scale of 5; float32 without momentum, 0.23;
float64, 2e-3 (5e-14 absolute).  Every wrong operation we tried (eps inside the sqrt, no
centering, lr inside the buffer, a buffer not starting at zero, ...) still fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import assert_close, dtypes, shapes, tolerance
from reference_tests.optim_harness import (
    assert_bitwise_without_fma,
    assert_construction_error_like_torch,
    assert_constructs_like_torch,
    check_state_dict_round_trip,
    continue_from_torch_state,
    invalid_values,
    run_trajectory,
)

MOMENTUM_F32_SCALE = 5.0

rmsprop_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.1),
        "alpha": st.sampled_from([0.5, 0.9, 0.99]),
        "eps": st.sampled_from([1e-8, 1e-6]),
        "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "centered": st.booleans(),
        "maximize": st.booleans(),
    }
)


def scale_for(kwargs, dtype):
    return MOMENTUM_F32_SCALE if (kwargs.get("momentum", 0) > 0 and dtype == np.float32) else 1.0


@given(
    kwargs=rmsprop_kwargs,
    shape_list=st.lists(shapes, min_size=1, max_size=3),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_rmsprop_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed):
    run_trajectory(
        minireg.optim.RMSprop,
        torch.optim.RMSprop,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=25,
        tolerance_scale=scale_for(kwargs, dtype),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.01),
        dict(lr=0.01, alpha=0.9, weight_decay=0.01, momentum=0.5, centered=True, maximize=True),
    ],
)
def test_rmsprop_resumes_from_torch_state_dict(device, dtype, kwargs):
    continue_from_torch_state(
        minireg.optim.RMSprop, torch.optim.RMSprop, kwargs, [(4, 3), (3,)], dtype, device, seed=1
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_grad_avg_lerp_is_exact_at_weight_one(device, dtype):
    # alpha = 0 gives lerp weight 1, where torch's lerp returns the gradient exactly (it
    # anchors at the nearer end); a one-formula lerp gbar + 1*(g - gbar) is often an ULP off.
    # (The parameters are not compared: torch then computes v - gbar^2 = g^2 - g^2 with a
    # fused multiply-add, which leaves the rounding residue of g^2, negative half the time.)
    rng = np.random.default_rng(3)
    ours_p = [minireg.Parameter(np.zeros(64, dtype))]
    theirs_p = [
        torch.nn.Parameter(torch.zeros(64, dtype=getattr(torch, np.dtype(dtype).name)).to(device))
    ]
    ours = minireg.optim.RMSprop(ours_p, lr=1e-3, alpha=0.0, centered=True)
    theirs = torch.optim.RMSprop(theirs_p, lr=1e-3, alpha=0.0, centered=True)
    for _ in range(3):
        grad = rng.standard_normal(64).astype(dtype)
        ours_p[0].grad, theirs_p[0].grad = grad.copy(), torch.from_numpy(grad.copy()).to(device)
        ours.step()
        theirs.step()
        np.testing.assert_array_equal(ours.state[ours_p[0]]["grad_avg"], grad)
        np.testing.assert_array_equal(theirs.state[theirs_p[0]]["grad_avg"].cpu().numpy(), grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_state_keys_and_zero_momentum_buffer(device, dtype):
    # momentum_buffer and grad_avg exist only when asked for, and the buffer starts at zeros
    # (unlike SGD's, which starts as the first gradient): after one step it is g/(sqrt(v)+eps).
    rtol, atol = tolerance(dtype, device)
    for kwargs in (
        dict(),
        dict(momentum=0.9),
        dict(centered=True),
        dict(momentum=0.9, centered=True),
    ):
        arrays = [np.linspace(-1, 1, 6).astype(dtype).reshape(2, 3)]
        ours_p = [minireg.Parameter(a.copy()) for a in arrays]
        theirs_p = [torch.nn.Parameter(torch.from_numpy(a.copy()).to(device)) for a in arrays]
        ours, theirs = (
            minireg.optim.RMSprop(ours_p, **kwargs),
            torch.optim.RMSprop(theirs_p, **kwargs),
        )
        grad = np.linspace(0.5, -2, 6).astype(dtype).reshape(2, 3)
        ours_p[0].grad, theirs_p[0].grad = grad.copy(), torch.from_numpy(grad.copy()).to(device)
        ours.step()
        theirs.step()
        state, expected = ours.state[ours_p[0]], theirs.state[theirs_p[0]]
        assert list(state) == list(expected)
        for key in expected:
            assert_close(state[key], expected[key], rtol, atol, key)
        if "momentum_buffer" in state:
            v = 0.01 * grad.astype(np.float64) ** 2
            if "grad_avg" in state:
                v -= (0.01 * grad.astype(np.float64)) ** 2
            np.testing.assert_allclose(
                state["momentum_buffer"], grad / (np.sqrt(v) + 1e-8), rtol=1e-5
            )


# Each hyperparameter valid or invalid: both libraries must agree on whether construction
# fails and, if so, on the first error in torch's check order (alpha > 1 is accepted).
rmsprop_maybe_invalid = st.fixed_dictionaries(
    {
        "lr": st.one_of(st.just(0.01), invalid_values),
        "alpha": st.one_of(st.sampled_from([0.0, 0.99, 1.5]), invalid_values),
        "eps": st.one_of(st.just(1e-8), invalid_values),
        "weight_decay": st.one_of(st.just(0.0), invalid_values),
        "momentum": st.one_of(st.just(0.0), invalid_values),
    }
)


@given(kwargs=rmsprop_maybe_invalid)
def test_rmsprop_errors_match_torch(kwargs):
    assert_constructs_like_torch(minireg.optim.RMSprop, torch.optim.RMSprop, kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(lr=math.nan), "Invalid learning rate: nan"),
        (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (dict(momentum=-0.1), "Invalid momentum value: -0.1"),
        (dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
        (dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    ],
)
def test_rmsprop_each_error_matches_torch(kwargs, message):
    assert_construction_error_like_torch(
        minireg.optim.RMSprop, torch.optim.RMSprop, kwargs, ValueError, match=message
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_state_dict_round_trip_continues_bit_identically(dtype):
    check_state_dict_round_trip(
        minireg.optim.RMSprop,
        dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-3),
        dtype,
        steps_before=4,
        steps_after=4,
        state_keys=("step", "square_avg", "momentum_buffer", "grad_avg"),
    )


def test_rmsprop_operation_order_is_torchs_bit_for_bit(device):
    # Without FMA and with torch's sqrt (see optim_harness.bitwise_trajectory_mismatches),
    # minireg and torch must agree exactly.  alpha = 0.1 puts the centered average's lerp
    # weight 1 - alpha on its second branch, end - (end - start) * (1 - w), with 1 - w
    # taken in float32 as torch does.
    assert_bitwise_without_fma(
        [
            ("RMSprop", dict(lr=0.01)),
            ("RMSprop", dict(lr=0.01, alpha=0.1, centered=True, momentum=0.9, weight_decay=0.1)),
            ("RMSprop", dict(lr=0.01, alpha=0.7, centered=True, maximize=True, eps=1e-3)),
        ],
        device,
    )
