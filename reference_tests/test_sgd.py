"""SGD against torch.optim.SGD: trajectories over every option, errors, state_dict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import dtypes, shapes
from reference_tests.optim_harness import (
    assert_construction_error_like_torch,
    check_state_dict_round_trip,
    continue_from_torch_state,
    run_trajectory,
)

sgd_kwargs = (
    st.fixed_dictionaries(
        {
            "lr": st.floats(1e-4, 0.5),
            "momentum": st.sampled_from([0.0, 0.5, 0.9, 0.99]),
            "dampening": st.sampled_from([0.0, 0.1, 0.5]),
            "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
            "nesterov": st.booleans(),
            "maximize": st.booleans(),
        }
    )
    .map(lambda k: {**k, "dampening": 0.0} if k["nesterov"] else k)
    .map(lambda k: {**k, "momentum": k["momentum"] or 0.9} if k["nesterov"] else k)
)


@given(
    kwargs=sgd_kwargs,
    shape_list=st.lists(shapes, min_size=1, max_size=3),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_sgd_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed):
    run_trajectory(
        minireg.optim.SGD, torch.optim.SGD, kwargs, shape_list, dtype, device, seed, steps=25
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)],
)
def test_sgd_resumes_from_torch_state_dict(device, dtype, kwargs):
    continue_from_torch_state(
        minireg.optim.SGD, torch.optim.SGD, kwargs, [(4, 3), (3,)], dtype, device, seed=1
    )


def test_first_momentum_step_is_the_raw_gradient():
    # torch's subtlety: on the first step the buffer is g itself, with no (1 - dampening).
    p = minireg.Parameter(np.zeros(2))
    p.grad = np.array([1.0, -2.0])
    minireg.optim.SGD([p], lr=1.0, momentum=0.9, dampening=0.5).step()
    np.testing.assert_array_equal(p.data, [-1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(momentum=-0.1), "Invalid momentum value: -0.1"),
        (dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
        (dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (
            dict(nesterov=True, momentum=0.9, dampening=0.1),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
    ],
)
def test_sgd_errors_match_torch(kwargs, message):
    assert_construction_error_like_torch(
        minireg.optim.SGD, torch.optim.SGD, kwargs, ValueError, match=message
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_state_dict_round_trip_continues_bit_identically(dtype):
    check_state_dict_round_trip(
        minireg.optim.SGD,
        dict(lr=0.05, momentum=0.9, weight_decay=1e-3),
        dtype,
        shape_list=[(3, 2), (2,)],
        steps_before=4,
        steps_after=4,
        state_keys=("momentum_buffer",),
    )
