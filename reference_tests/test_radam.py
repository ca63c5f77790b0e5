"""RAdam against torch.optim.RAdam: trajectories over every option (through the switch from
unrectified to rectified steps, and with betas that never rectify), resuming from torch's
state_dict, errors and state_dict round trips.

Tolerances are the shared ones (``conftest.tolerance``); the worst measured gap to torch is
about 0.2 of the tolerance in float32 and below 1e-3 of it in float64 (FMA and torch's sqrt,
TORCH_NOTES §0), and the exact order of operations is checked bit for bit as in
``test_adam.py``.  The ``beta2 = 0`` with L2 decay corner is left out of the random draws
for the reason given in ``test_adam.py`` (with ``beta2 = 0`` RAdam never rectifies, so it
is in fact harmless here, but the draws are kept alike).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import dtypes, set_grads, tolerance, twin_parameters
from reference_tests.optim_harness import (
    assert_bitwise_without_fma,
    assert_construction_error_like_torch,
    assert_groups_match_torch,
    assert_state_layout_matches_torch,
    check_state_dict_round_trip,
    check_torch_continues_from_minireg_state,
    compare_optimizer_state,
    continue_from_torch_state,
    grad_scales,
    no_cancelling_denominator,
    run_fixed_trajectory,
    run_scaled_trajectory,
    shape_lists,
)

radam_kwargs = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-4, 0.3),
        # ints are accepted by RAdam (unlike Adam); beta2 <= 0.6 never rectifies (rho_inf <= 4)
        "betas": st.tuples(
            st.sampled_from([0, 0.0, 0.1, 0.3, 0.5, 0.9, 0.99]),
            st.sampled_from([0, 0.5, 0.8, 0.9, 0.999]),
        ),
        "eps": st.sampled_from([1e-8, 1e-3, 0.1]),
        "weight_decay": st.sampled_from([0.0, 1e-2, 0.3]),
        "decoupled_weight_decay": st.booleans(),
        "maximize": st.booleans(),
    }
).map(no_cancelling_denominator)


def rho(t: int, beta2: float) -> float:
    """The SMA length rho_t of Liu et al. (2020), from its definition."""
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2**t / (1 - beta2**t)


@given(
    kwargs=radam_kwargs,
    shape_list=shape_lists,
    dtype=dtypes,
    seed=st.integers(0, 2**31),
    grad_scale=grad_scales,
)
def test_radam_trajectory_matches_torch(device, kwargs, shape_list, dtype, seed, grad_scale):
    run_scaled_trajectory(
        minireg.optim.RAdam, torch.optim.RAdam, kwargs, shape_list, dtype, device, seed, grad_scale
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("maximize, decoupled", list(itertools.product([False, True], repeat=2)))
def test_radam_every_option_combination_matches_torch(device, dtype, maximize, decoupled):
    kwargs = dict(lr=0.05, weight_decay=0.1, maximize=maximize, decoupled_weight_decay=decoupled)
    run_fixed_trajectory(minireg.optim.RAdam, torch.optim.RAdam, kwargs, dtype, device)


def unrectified(
    p0: np.ndarray, grads: list[np.ndarray], lr: float, beta1: float
) -> list[np.ndarray]:
    """Bias-corrected momentum SGD, p -= lr * m_t / (1 - beta1^t), from the equations."""
    p, m, out = p0.copy(), np.zeros_like(p0), []
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        p = p - lr * m / (1 - beta1**t)
        out.append(p)
    return out


def beside_torch(
    device: str,
    dtype: type,
    seed: int,
    shape: tuple[int, ...] | int,
    steps: int,
    lr: float,
    betas: tuple[float, float] | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """RAdam beside torch's from the same random start and gradients (torch's default betas
    unless given), compared after every step; yields ``(t, minireg's parameter, the
    unrectified update's parameter)`` for the caller's check of step ``t``."""
    rng = np.random.default_rng(seed)
    rtol, atol = tolerance(dtype, device)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]
    kwargs = dict(lr=lr) if betas is None else dict(lr=lr, betas=betas)
    ours_params, theirs_params = twin_parameters([p0], device)
    ours = minireg.optim.RAdam(ours_params, **kwargs)
    theirs = torch.optim.RAdam(theirs_params, **kwargs)
    beta1 = 0.9 if betas is None else betas[0]
    plain = unrectified(p0.astype(np.float64), [g.astype(np.float64) for g in grads], lr, beta1)
    for t, g in enumerate(grads, start=1):
        set_grads(ours_params, theirs_params, [g], device)
        ours.step()
        theirs.step()
        compare_optimizer_state(ours, theirs, ours_params, theirs_params, rtol, atol, f"step {t}")
        yield t, ours_params[0].data, plain[t - 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radam_switches_to_rectified_steps_after_step_5(device, dtype):
    # Default betas: rho_t is 1.0, 2.0, 3.0, 4.0, 4.996 for t = 1..5 and 5.994 at t = 6.
    assert max(rho(t, 0.999) for t in range(1, 6)) <= 5 < rho(6, 0.999)
    rtol, atol = tolerance(dtype, device)
    for t, param, plain in beside_torch(device, dtype, 5, (4, 3), 10, lr=0.1):
        if t <= 5:
            np.testing.assert_allclose(param, plain, rtol=rtol, atol=atol)
        else:  # rectified: the adaptive step leaves plain momentum SGD far beyond tolerance
            assert np.abs(param - plain).max() > 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("betas", [(0.9, 0.5), (0.9, 0.6), (0.3, 0)])
def test_radam_never_rectifies_when_rho_stays_at_most_5(device, dtype, betas):
    # beta2 <= 0.6 gives rho_inf = 2/(1-beta2) - 1 <= 4 (rho_t < rho_inf): no adaptive step ever.
    assert max(rho(t, betas[1]) for t in range(1, 31)) <= 5
    rtol, atol = tolerance(dtype, device)
    for _, param, plain in beside_torch(device, dtype, 6, 5, 30, lr=0.05, betas=betas):
        np.testing.assert_allclose(param, plain, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radam_threshold_is_strict(device, dtype):
    # With this beta2, rho_6 computes to exactly 5.0 (in Python floats, as torch computes it),
    # so step 6 must still be unrectified (rho_t > 5 is strict) and step 7 rectified.
    betas = (0.9, 0.8397685748659791)
    assert rho(6, betas[1]) == 5.0 and rho(7, betas[1]) > 5
    rtol, atol = tolerance(dtype, device)
    for t, param, plain in beside_torch(device, dtype, 9, 6, 8, lr=0.1, betas=betas):
        if t <= 6:
            np.testing.assert_allclose(param, plain, rtol=rtol, atol=atol)
    assert t == 8 and np.abs(param - plain).max() > 1e-3


def test_radam_steps_by_hand_across_the_switch():
    # beta2 = 0.8: rho_inf = 9 and rho_t rises past 5 at t = 6; each step is checked against
    # the branch the definition picks, computed here from the equations in float64.
    beta1, beta2, lr, eps = 0.9, 0.8, 0.1, 1e-8
    p = minireg.Parameter(np.zeros(1))
    opt = minireg.optim.RAdam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    m = v = 0.0
    crossed = False
    for t in range(1, 15):
        g = 1.0 + 0.1 * t
        before = p.data.copy()
        p.grad = np.array([g])
        opt.step()
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step = lr * m / (1 - beta1**t)
        r = rho(t, beta2)
        if r > 5:
            rho_inf = 2 / (1 - beta2) - 1
            rect = np.sqrt((r - 4) * (r - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * r))
            step = step * np.sqrt(1 - beta2**t) / (np.sqrt(v) + eps) * rect
            crossed = True
        np.testing.assert_allclose(before - p.data, [step], rtol=1e-13)
    assert crossed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.05),
        dict(lr=0.05, weight_decay=0.1, maximize=True),
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    ],
)
def test_radam_resumes_from_torch_state_dict(device, dtype, kwargs):
    # 3 steps in torch, 10 in minireg: the resumed run crosses the rectification switch.
    continue_from_torch_state(
        minireg.optim.RAdam,
        torch.optim.RAdam,
        kwargs,
        [(4, 3), (3,)],
        dtype,
        device,
        seed=1,
        steps_before=3,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_continues_from_radam_state_dict(device, dtype):
    check_torch_continues_from_minireg_state(
        minireg.optim.RAdam, torch.optim.RAdam, dict(lr=0.05, weight_decay=0.1), dtype, device
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(
            lr=0.5,
            betas=[0, 0.5],
            eps=1e-6,
            weight_decay=0.2,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ],
)
def test_radam_param_groups_match_torch(kwargs):
    assert_groups_match_torch(minireg.optim.RAdam, torch.optim.RAdam, kwargs)


def test_radam_state_layout_matches_torch():
    assert_state_layout_matches_torch(minireg.optim.RAdam, torch.optim.RAdam, {})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1e-3),
        dict(lr=float("nan")),
        dict(eps=-1e-8),
        dict(eps=float("nan")),
        dict(betas=(1.0, 0.999)),
        dict(betas=(1, 0.999)),
        dict(betas=(0.9, 1.0)),
        dict(betas=(0.9, -1)),
        dict(weight_decay=-0.1),
        dict(lr=-1.0, eps=-1.0, betas=(2.0, 2.0), weight_decay=-1.0),
        dict(eps=-1.0, betas=(2.0, 2.0)),
        dict(betas=(0.5, 2.0), weight_decay=-1.0),
    ],
)
def test_radam_errors_match_torch(kwargs):
    assert_construction_error_like_torch(minireg.optim.RAdam, torch.optim.RAdam, kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.05, weight_decay=1e-2),
        dict(lr=0.05, betas=(0, 0.9), decoupled_weight_decay=True, weight_decay=0.1),
    ],
)
def test_radam_state_dict_round_trip_continues_bit_identically(dtype, kwargs):
    keys = ("step", "exp_avg", "exp_avg_sq")
    check_state_dict_round_trip(minireg.optim.RAdam, kwargs, dtype, state_keys=keys)


def test_radam_operation_order_is_torchs_bit_for_bit(device):
    # See optim_harness.bitwise_trajectory_mismatches: exact agreement without FMA pins the
    # order of operations, e.g. torch's `scalar / tensor` = reciprocal(tensor) * scalar.
    assert_bitwise_without_fma(
        [
            ("RAdam", dict(lr=0.05)),
            ("RAdam", dict(lr=0.05, betas=(0.3, 0.8), weight_decay=0.1, maximize=True)),
            (
                "RAdam",
                dict(
                    lr=0.05,
                    betas=(0.1, 0.999),
                    eps=1e-3,
                    weight_decay=0.1,
                    decoupled_weight_decay=True,
                ),
            ),
        ],
        device,
    )
