"""Adadelta against torch.optim.Adadelta: trajectories over every option, errors, state_dict.

Tolerance: the shared ``tolerance(dtype, device)`` (float32 1e-5/1e-6, float64
1e-10/1e-12).  Both square roots carry ``eps`` inside, so no denominator gets small.
Measured over 1000 random draws of this battery's configurations (25 steps each): worst
float32 error 0.33 of the budget (max 1.9e-6 absolute), worst float64 4.6e-4 of the
budget (max 3.6e-15 absolute).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import dtypes, shapes
from reference_tests.optim_harness import (
    assert_construction_error_like_torch,
    assert_constructs_like_torch,
    check_state_dict_round_trip,
    continue_from_torch_state,
    invalid_values,
    run_trajectory,
)

adadelta_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(0.01, 1.0),
        "rho": st.sampled_from([0.0, 0.5, 0.9, 0.95, 1.0]),
        "eps": st.sampled_from([1e-6, 1e-4]),
        "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
        "maximize": st.booleans(),
    }
)


@given(
    kwargs=adadelta_kwargs,
    shape_list=st.lists(shapes, min_size=1, max_size=3),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_adadelta_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed):
    run_trajectory(
        minireg.optim.Adadelta,
        torch.optim.Adadelta,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=25,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs", [dict(), dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01, maximize=True)]
)
def test_adadelta_resumes_from_torch_state_dict(device, dtype, kwargs):
    continue_from_torch_state(
        minireg.optim.Adadelta, torch.optim.Adadelta, kwargs, [(4, 3), (3,)], dtype, device, seed=1
    )


def test_adadelta_two_steps_by_hand():
    # v = (1-rho) g^2; delta = sqrt(u_prev + eps) / sqrt(v + eps) * g with the OLD u;
    # u = (1-rho) delta^2; p -= lr * delta.  eps sits inside both square roots.
    rho, eps, lr = 0.5, 0.01, 0.5
    p = minireg.Parameter(np.array([1.0, -1.0]))
    opt = minireg.optim.Adadelta([p], lr=lr, rho=rho, eps=eps)
    expected, v, u = p.data.copy(), np.zeros(2), np.zeros(2)
    for g in (np.array([0.3, -2.0]), np.array([1.0, 0.5])):
        p.grad = g
        opt.step()
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        expected -= lr * delta
    np.testing.assert_allclose(p.data, expected, rtol=1e-14)
    np.testing.assert_allclose(opt.state[p]["acc_delta"], u, rtol=1e-14)


# Each hyperparameter valid or invalid: both libraries must agree on whether construction
# fails and, if so, on the first error in torch's check order.
adadelta_maybe_invalid = st.fixed_dictionaries(
    {
        "lr": st.one_of(st.just(1.0), invalid_values),
        "rho": st.one_of(st.sampled_from([0.0, 1.0]), invalid_values, st.just(1.5)),
        "eps": st.one_of(st.just(1e-6), invalid_values),
        "weight_decay": st.one_of(st.just(0.0), invalid_values),
    }
)


@given(kwargs=adadelta_maybe_invalid)
def test_adadelta_errors_match_torch(kwargs):
    assert_constructs_like_torch(minireg.optim.Adadelta, torch.optim.Adadelta, kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(lr=math.nan), "Invalid learning rate: nan"),
        (dict(rho=1.5), "Invalid rho value: 1.5"),
        (dict(rho=-0.1), "Invalid rho value: -0.1"),
        (dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
        (dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    ],
)
def test_adadelta_each_error_matches_torch(kwargs, message):
    assert_construction_error_like_torch(
        minireg.optim.Adadelta, torch.optim.Adadelta, kwargs, ValueError, match=message
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adadelta_state_dict_round_trip_continues_bit_identically(dtype):
    check_state_dict_round_trip(
        minireg.optim.Adadelta,
        dict(lr=0.5, rho=0.8, weight_decay=1e-3),
        dtype,
        steps_before=4,
        steps_after=4,
        state_keys=("step", "square_avg", "acc_delta"),
    )
