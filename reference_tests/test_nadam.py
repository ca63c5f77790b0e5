"""NAdam against torch.optim.NAdam: trajectories over every option, the float32
``mu_product``, resuming from torch's state_dict, errors and state_dict round trips.

Tolerances are the shared ones (``conftest.tolerance``); the worst measured gap to torch is
about 0.2 of the tolerance in float32 and below 1e-3 of it in float64 (FMA and torch's sqrt,
TORCH_NOTES §0), and the exact order of operations is checked bit for bit as in
``test_adam.py``.  ``mu_product`` is also compared bit for bit under torch's default
build: it is a float32 product that both sides must round identically every step.  The
``beta2 = 0`` with L2 decay corner is left out of the random draws for the reason given in
``test_adam.py``.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import dtypes, set_grads, twin_parameters
from reference_tests.optim_harness import (
    assert_bitwise_without_fma,
    assert_construction_error_like_torch,
    assert_groups_match_torch,
    assert_state_layout_matches_torch,
    check_state_dict_round_trip,
    check_torch_continues_from_minireg_state,
    continue_from_torch_state,
    grad_scales,
    no_cancelling_denominator,
    run_fixed_trajectory,
    run_scaled_trajectory,
    shape_lists,
)

nadam_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.3),
        # ints are accepted by NAdam (unlike Adam)
        "betas": st.tuples(
            st.sampled_from([0, 0.0, 0.1, 0.3, 0.5, 0.9, 0.99]),
            st.sampled_from([0, 0.5, 0.9, 0.999]),
        ),
        "eps": st.sampled_from([1e-8, 1e-3, 0.1]),
        "weight_decay": st.sampled_from([0.0, 1e-2, 0.3]),
        "momentum_decay": st.sampled_from([0.0, 4e-3, 0.1, 2.0]),
        "decoupled_weight_decay": st.booleans(),
        "maximize": st.booleans(),
    }
).map(no_cancelling_denominator)


@given(
    kwargs=nadam_kwargs,
    shape_list=shape_lists,
    dtype=dtypes,
    seed=st.integers(0, 2**31),
    grad_scale=grad_scales,
)
def test_nadam_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed, grad_scale):
    run_scaled_trajectory(
        minireg.optim.NAdam, torch.optim.NAdam, kwargs, shape_list, dtype, device, seed, grad_scale
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("maximize, decoupled", list(itertools.product([False, True], repeat=2)))
def test_nadam_every_option_combination_matches_torch(device, dtype, maximize, decoupled):
    kwargs = dict(lr=0.05, weight_decay=0.1, maximize=maximize, decoupled_weight_decay=decoupled)
    run_fixed_trajectory(minireg.optim.NAdam, torch.optim.NAdam, kwargs, dtype, device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mu_product_is_torchs_float32_product_bit_for_bit(device, dtype):
    # 60 steps with a large momentum_decay, so mu changes every step: any product kept in
    # float64, or mu not rounded to float32 before multiplying, drifts off by ULPs.
    ours_params, theirs_params = twin_parameters([np.ones(3, dtype)], device)
    ours = minireg.optim.NAdam(ours_params, lr=1e-3, momentum_decay=0.05)
    theirs = torch.optim.NAdam(theirs_params, lr=1e-3, momentum_decay=0.05)
    for _ in range(60):
        set_grads(ours_params, theirs_params, [np.full(3, 0.1, dtype)], device)
        ours.step()
        theirs.step()
        ours_mu, theirs_mu = (
            ours.state[ours_params[0]]["mu_product"],
            theirs.state[theirs_params[0]]["mu_product"],
        )
        assert ours_mu.dtype == np.float32 and ours_mu.shape == ()
        np.testing.assert_array_equal(ours_mu, theirs_mu.cpu().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.05),
        dict(lr=0.05, weight_decay=0.1, maximize=True),
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.1),
    ],
)
def test_nadam_resumes_from_torch_state_dict(device, dtype, kwargs):
    # torch casts every floating state entry but `step` to the param's dtype on load, so a
    # resumed float64 NAdam carries mu_product in float64 from then on, unlike the torch
    # optimizer that saved it: the harness compares with a torch optimizer that resumed too.
    continue_from_torch_state(
        minireg.optim.NAdam, torch.optim.NAdam, kwargs, [(4, 3), (3,), ()], dtype, device, seed=1
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resumed_mu_product_takes_the_param_dtype_like_torch(dtype):
    theirs = torch.optim.NAdam([torch.nn.Parameter(torch.ones(2, dtype=torch.float32))])
    theirs.param_groups[0]["params"][0].grad = torch.ones(2)
    theirs.step()
    saved = {
        "state": {0: {k: v.numpy() for k, v in theirs.state_dict()["state"][0].items()}},
        "param_groups": copy.deepcopy(theirs.state_dict()["param_groups"]),
    }
    q = torch.nn.Parameter(
        torch.ones(2, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    )
    loaded = torch.optim.NAdam([q])
    loaded.load_state_dict(theirs.state_dict())
    ours = minireg.optim.NAdam([minireg.Parameter(np.ones(2, dtype))])
    ours.load_state_dict(saved)
    (ours_state,) = ours.state.values()
    for key in ("step", "mu_product"):
        assert ours_state[key].dtype == loaded.state[q][key].numpy().dtype, key
        np.testing.assert_array_equal(ours_state[key], loaded.state[q][key].numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_continues_from_nadam_state_dict(device, dtype):
    kwargs = dict(lr=0.05, weight_decay=0.1, momentum_decay=0.1)
    check_torch_continues_from_minireg_state(
        minireg.optim.NAdam, torch.optim.NAdam, kwargs, dtype, device
    )


def test_nadam_first_step_by_hand():
    # t = 1, from the equations in float64 (mu_product = mu_1 rounded to float32).
    lr, b1, b2, eps, psi = 0.1, 0.9, 0.999, 1e-3, 4e-3
    g = np.array([0.5, -2.0, 1e-4])
    p = minireg.Parameter(np.ones(3))
    p.grad = g.copy()
    minireg.optim.NAdam([p], lr=lr, betas=(b1, b2), eps=eps).step()
    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    prod = float(np.float32(mu1))
    m, v = (1 - b1) * g, (1 - b2) * g * g
    denom = np.sqrt(v / (1 - b2)) + eps
    expected = (
        1.0 - lr * (1 - mu1) / (1 - prod) * g / denom - lr * mu2 / (1 - prod * mu2) * m / denom
    )
    np.testing.assert_allclose(p.data, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(
            lr=0.5,
            betas=[0, 0.5],
            eps=1e-6,
            weight_decay=0.2,
            momentum_decay=0.1,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ],
)
def test_nadam_param_groups_match_torch(kwargs):
    assert_groups_match_torch(minireg.optim.NAdam, torch.optim.NAdam, kwargs)


def test_nadam_state_layout_matches_torch():
    assert_state_layout_matches_torch(minireg.optim.NAdam, torch.optim.NAdam, {})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1e-3),
        dict(lr=float("nan")),
        dict(eps=-1e-8),
        dict(betas=(1.0, 0.999)),
        dict(betas=(1, 0.999)),
        dict(betas=(0.9, 1.0)),
        dict(betas=(0.9, -1)),
        dict(weight_decay=-0.1),
        dict(momentum_decay=-1e-3),
        dict(momentum_decay=float("nan")),
        dict(lr=-1.0, eps=-1.0, betas=(2.0, 2.0), weight_decay=-1.0, momentum_decay=-1.0),
        dict(eps=-1.0, betas=(2.0, 2.0)),
        dict(betas=(0.5, 2.0), weight_decay=-1.0),
        dict(weight_decay=-1.0, momentum_decay=-1.0),
    ],
)
def test_nadam_errors_match_torch(kwargs):
    assert_construction_error_like_torch(minireg.optim.NAdam, torch.optim.NAdam, kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.05, weight_decay=1e-2, momentum_decay=0.1),
        dict(lr=0.05, betas=(0, 0.9), maximize=True),
    ],
)
def test_nadam_state_dict_round_trip_continues_bit_identically(dtype, kwargs):
    keys = ("step", "mu_product", "exp_avg", "exp_avg_sq")
    check_state_dict_round_trip(minireg.optim.NAdam, kwargs, dtype, state_keys=keys)


def test_nadam_operation_order_is_torchs_bit_for_bit(device):
    # See optim_harness.bitwise_trajectory_mismatches: exact agreement without FMA pins the
    # order of operations, e.g. the division by (1 - beta2^t) inside the sqrt.
    assert_bitwise_without_fma(
        [
            ("NAdam", dict(lr=0.05, betas=(0.1, 0.999), momentum_decay=0.1, weight_decay=0.1)),
            (
                "NAdam",
                dict(
                    lr=0.05,
                    betas=(0, 0.5),
                    eps=1e-3,
                    weight_decay=0.1,
                    decoupled_weight_decay=True,
                    maximize=True,
                ),
            ),
        ],
        device,
    )
