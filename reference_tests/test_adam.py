"""Adam and AdamW against torch.optim.Adam / torch.optim.AdamW: trajectories over every
option, resuming from torch's state_dict, errors, param groups and state_dict round trips.

Tolerances are the shared ones (``conftest.tolerance``).  The only per-operation gaps to
torch's CPU for-loop are its fused multiply-adds and its not-quite-IEEE ``sqrt``
(TORCH_NOTES §0); over 20-step trajectories like these the worst measured gap is about 0.2
of the tolerance in float32 and below 1e-3 of it in float64.  Since tolerances cannot see
the order of operations, ``test_*_operation_order_is_torchs_bit_for_bit`` removes both gaps
(torch without FMA in a subprocess, torch's sqrt swapped in) and demands exact equality.
The hyperparameter strategies reach
``beta1 <= 0.5`` (torch's ``lerp_`` switches formula at weight 0.5), large ``eps`` with
small gradients (so where eps sits is visible) and ``beta2 = 0``.

One corner is ill-conditioned and kept out of the random draws: ``beta2 = 0`` together
with L2 weight decay.  There the denominator is ``|g + wd*p| + eps``, and ``g + wd*p`` can
cancel to almost nothing; torch computes it with one fused multiply-add, NumPy with two
roundings, and the one-ULP difference then becomes an O(1) relative difference in the step
(seen as 1e-5..2e-4 absolute in float32 after 10-20 steps of tiny gradients, and bitwise
agreement when torch runs with ``ATEN_CPU_CAPABILITY=default``, i.e. without FMA).
``no_cancelling_denominator`` drops the decay in that corner; ``beta2 = 0`` alone and L2
decay alone are both drawn.

Gradients are drawn at three scales (1e-3, 1, 30).  At scale 30 the moments are of size
30 and so are their rounding errors: a moment that cancels to nearly zero (``m.lerp_(g, w)``
with ``w >= 0.5`` computes ``g - (g - m)*(1 - w)``, fused in torch) then differs by an ULP of
30, about 2e-6, which the unit-scale floor ``atol = 1e-6`` would reject.  So trajectories
scale the tolerance by ``max(1, grad_scale)`` (``run_trajectory`` scales rtol and atol
together).

The helpers shared with ``test_nadam.py`` and ``test_radam.py`` (errors, group layout,
round trips, the bitwise check) live in ``optim_harness.py``.
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
from reference_tests.conftest import assert_close, dtypes
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

# ---------------------------------------------------------------------------- Adam / AdamW
adam_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.3),
        "betas": st.tuples(
            st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9, 0.99]),
            st.sampled_from([0.0, 0.5, 0.9, 0.999]),
        ),
        "eps": st.sampled_from([1e-8, 1e-3, 0.1]),
        "weight_decay": st.sampled_from([0.0, 1e-2, 0.3]),
        "amsgrad": st.booleans(),
        "maximize": st.booleans(),
        "decoupled_weight_decay": st.booleans(),
    }
).map(no_cancelling_denominator)


@given(
    kwargs=adam_kwargs,
    shape_list=shape_lists,
    dtype=dtypes,
    seed=st.integers(0, 2**31),
    grad_scale=grad_scales,
)
def test_adam_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed, grad_scale):
    run_scaled_trajectory(
        minireg.optim.Adam, torch.optim.Adam, kwargs, shape_list, dtype, device, seed, grad_scale
    )


@given(
    kwargs=adam_kwargs.map(
        lambda k: {key: v for key, v in k.items() if key != "decoupled_weight_decay"}
    ),  # AdamW: always decoupled
    shape_list=shape_lists,
    dtype=dtypes,
    seed=st.integers(0, 2**31),
    grad_scale=grad_scales,
)
def test_adamw_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed, grad_scale):
    run_scaled_trajectory(
        minireg.optim.AdamW, torch.optim.AdamW, kwargs, shape_list, dtype, device, seed, grad_scale
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "amsgrad, maximize, decoupled", list(itertools.product([False, True], repeat=3))
)
def test_adam_every_option_combination_matches_torch(device, dtype, amsgrad, maximize, decoupled):
    kwargs = dict(
        lr=0.05,
        weight_decay=0.1,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=decoupled,
    )
    run_fixed_trajectory(minireg.optim.Adam, torch.optim.Adam, kwargs, dtype, device)
    kwargs = dict(lr=0.05, weight_decay=0.1, amsgrad=amsgrad, maximize=maximize)
    run_fixed_trajectory(
        minireg.optim.AdamW, torch.optim.AdamW, kwargs, dtype, device, [(5, 3), ()], seed=8
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("Adam", dict(lr=0.05)),
        ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True)),
        ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
        ("AdamW", dict(lr=0.05, amsgrad=True)),
    ],
)
def test_adam_resumes_from_torch_state_dict(device, dtype, cls_name, kwargs):
    continue_from_torch_state(
        getattr(minireg.optim, cls_name),
        getattr(torch.optim, cls_name),
        kwargs,
        [(4, 3), (3,)],
        dtype,
        device,
        seed=1,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
        ("AdamW", dict(lr=0.05, amsgrad=True)),
    ],
)
def test_torch_continues_from_adam_state_dict(device, dtype, cls_name, kwargs):
    check_torch_continues_from_minireg_state(
        getattr(minireg.optim, cls_name), getattr(torch.optim, cls_name), kwargs, dtype, device
    )


def test_amsgrad_keeps_the_max_of_the_uncorrected_second_moment():
    # A large gradient then small ones: v decays, max_exp_avg_sq holds v's peak (not v/bc2).
    p = minireg.Parameter(np.zeros(1))
    opt = minireg.optim.Adam([p], lr=0.1, betas=(0.9, 0.5), amsgrad=True)
    peaks = []
    for g in [4.0, 0.1, 0.1, 0.1]:
        p.grad = np.array([g])
        opt.step()
        peaks.append(float(opt.state[p]["max_exp_avg_sq"][0]))
    assert peaks == [0.5 * 16.0] * 4  # v_1 = (1 - beta2) * g_1**2, never exceeded afterwards
    assert float(opt.state[p]["exp_avg_sq"][0]) < peaks[-1]


def test_adamw_decay_comes_before_the_moments():
    # One step with a zero gradient: the moments stay 0 and only the decay moves p.
    p = minireg.Parameter(np.array([2.0]))
    p.grad = np.array([0.0])
    opt = minireg.optim.AdamW([p], lr=0.1, weight_decay=0.5)
    opt.step()
    np.testing.assert_array_equal(p.data, [2.0 * (1 - 0.1 * 0.5)])
    np.testing.assert_array_equal(opt.state[p]["exp_avg"], [0.0])


@pytest.mark.parametrize("cls_name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(lr=0.5, betas=[0.8, 0.9], eps=1e-6, weight_decay=0.2, amsgrad=True, maximize=True),
    ],
)
def test_adam_param_groups_match_torch(cls_name, kwargs):
    assert_groups_match_torch(
        getattr(minireg.optim, cls_name), getattr(torch.optim, cls_name), kwargs
    )


@pytest.mark.parametrize("kwargs", [dict(), dict(amsgrad=True)])
def test_adam_state_layout_matches_torch(kwargs):
    assert_state_layout_matches_torch(minireg.optim.Adam, torch.optim.Adam, kwargs)
    assert_state_layout_matches_torch(minireg.optim.AdamW, torch.optim.AdamW, kwargs)


def test_adamw_loading_a_state_dict_keeps_decay_decoupled():
    # torch's AdamW forces decoupled_weight_decay back to True whatever the state_dict says.
    saved = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], weight_decay=0.1).state_dict()
    theirs = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    theirs.load_state_dict(saved)
    ours = minireg.optim.AdamW([minireg.Parameter(np.zeros(2))])
    ours.load_state_dict(copy.deepcopy(saved))
    assert theirs.param_groups[0]["decoupled_weight_decay"] is True
    assert ours.param_groups[0]["decoupled_weight_decay"] is True
    assert ours.param_groups[0]["weight_decay"] == theirs.param_groups[0]["weight_decay"] == 0.1


ADAM_ERROR_CASES = [
    dict(lr=-1e-3),
    dict(lr=float("nan")),
    dict(eps=-1e-8),
    dict(betas=(1.0, 0.999)),
    dict(betas=(-0.1, 0.999)),
    dict(betas=(0.9, 1.0)),
    dict(betas=(0.9, float("nan"))),
    dict(weight_decay=-0.1),
    dict(betas=(0, 0.99)),  # ints: torch's Adam wants floats
    dict(betas=(0.9, 0)),
    dict(betas=(1, 0.99)),  # the range check comes first
    # several bad values: torch's check order decides the message
    dict(lr=-1.0, eps=-1.0, betas=(2.0, 2.0), weight_decay=-1.0),
    dict(eps=-1.0, betas=(2.0, 2.0)),
    dict(betas=(0.5, 2.0), weight_decay=-1.0),
    dict(weight_decay=-1.0, betas=(0, 0)),
]


@pytest.mark.parametrize("kwargs", ADAM_ERROR_CASES)
@pytest.mark.parametrize("cls_name", ["Adam", "AdamW"])
def test_adam_errors_match_torch(cls_name, kwargs):
    assert_construction_error_like_torch(
        getattr(minireg.optim, cls_name), getattr(torch.optim, cls_name), kwargs
    )


def test_adamw_rejects_decoupled_weight_decay_like_torch():
    assert_construction_error_like_torch(
        minireg.optim.AdamW, torch.optim.AdamW, dict(decoupled_weight_decay=False)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=1e-2)),
        ("AdamW", dict(lr=0.05, betas=(0.5, 0.9), maximize=True)),
    ],
)
def test_adam_state_dict_round_trip_continues_bit_identically(dtype, cls_name, kwargs):
    keys = ("step", "exp_avg", "exp_avg_sq")
    if kwargs.get("amsgrad"):
        keys += ("max_exp_avg_sq",)
    check_state_dict_round_trip(getattr(minireg.optim, cls_name), kwargs, dtype, state_keys=keys)


def test_adam_first_step_by_hand():
    # t = 1, straight from the equations in float64: eps is added after sqrt(v) is divided
    # by sqrt(1 - b2), so with a large eps the tiny third gradient barely moves its weight.
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-3
    g = np.array([0.5, -2.0, 1e-4])
    p = minireg.Parameter(np.array([1.0, 1.0, 1.0]))
    p.grad = g.copy()
    minireg.optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps).step()
    m, v = (1 - b1) * g, (1 - b2) * g * g
    expected = 1.0 - lr / (1 - b1) * m / (np.sqrt(v) / np.sqrt(1 - b2) + eps)
    assert_close(p.data, expected, 1e-15, 1e-15, "first Adam step")


def test_adam_operation_order_is_torchs_bit_for_bit(device):
    # Without FMA and with torch's sqrt (see optim_harness.bitwise_trajectory_mismatches),
    # minireg and torch must agree exactly: this pins the order of operations (lerp's two
    # formulas, where eps and the bias corrections enter), which tolerances cannot see.
    assert_bitwise_without_fma(
        [
            ("Adam", dict(lr=0.05)),
            (
                "Adam",
                dict(lr=0.05, betas=(0.3, 0.5), amsgrad=True, weight_decay=0.1, maximize=True),
            ),
            (
                "Adam",
                dict(
                    lr=0.05,
                    betas=(0.5, 0.0),
                    eps=1e-3,
                    weight_decay=0.1,
                    decoupled_weight_decay=True,
                ),
            ),
            (
                "AdamW",
                dict(lr=0.05, betas=(0.1, 0.9), amsgrad=True),
            ),  # float32(1 - float32(0.9)) != float32(0.1)
        ],
        device,
    )
