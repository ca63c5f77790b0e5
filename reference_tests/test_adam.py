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

The helpers at the top (errors, group layout, round trips) are shared with
``test_nadam.py`` and ``test_radam.py``.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import (
    assert_close,
    dtypes,
    random_array,
    set_grads,
    shapes,
    to_numpy,
    to_torch,
    tolerance,
    twin_parameters,
)
from reference_tests.optim_harness import (
    compare_optimizer_state,
    continue_from_torch_state,
    run_trajectory,
    torch_state_dict_as_numpy,
)

TORCH_ONLY_KEYS = ("foreach", "fused", "capturable", "differentiable")

shape_lists = st.lists(shapes, min_size=1, max_size=3)
grad_scales = st.sampled_from([1e-3, 1.0, 30.0])


# ---------------------------------------------------------------------------- shared helpers
def assert_same_error(minireg_cls: type, torch_cls: type, kwargs: dict[str, Any]) -> None:
    """Constructing with ``kwargs`` raises the same exception type and message on both sides."""
    with pytest.raises(Exception) as theirs:
        torch_cls([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    with pytest.raises(Exception) as ours:
        minireg_cls([minireg.Parameter(np.zeros(1))], **kwargs)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def assert_groups_match_torch(minireg_cls: type, torch_cls: type, kwargs: dict[str, Any]) -> None:
    """Same group keys in the same order with the same values (torch-only keys aside)."""
    ours = minireg_cls([minireg.Parameter(np.zeros(2))], **kwargs)
    theirs = torch_cls([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    (ours_group,) = ours.state_dict()["param_groups"]
    (theirs_group,) = theirs.state_dict()["param_groups"]
    expected = {k: v for k, v in theirs_group.items() if k not in TORCH_ONLY_KEYS}
    assert list(ours_group) == list(expected)
    assert ours_group == expected
    assert type(ours_group["betas"]) is type(expected["betas"])


def assert_state_layout_matches_torch(
    minireg_cls: type, torch_cls: type, kwargs: dict[str, Any]
) -> None:
    """After one step: the same state keys in torch's order, with torch's dtypes and shapes."""
    for dtype in (np.float32, np.float64):
        ours_params, theirs_params = twin_parameters([np.ones((2, 3), dtype)], "cpu")
        ours, theirs = minireg_cls(ours_params, **kwargs), torch_cls(theirs_params, **kwargs)
        set_grads(ours_params, theirs_params, [np.full((2, 3), 0.5, dtype)], "cpu")
        ours.step()
        theirs.step()
        ours_state, theirs_state = ours.state[ours_params[0]], theirs.state[theirs_params[0]]
        assert list(ours_state) == list(theirs_state)
        for key, value in theirs_state.items():
            assert isinstance(ours_state[key], np.ndarray), key
            assert ours_state[key].shape == tuple(value.shape), key
            assert ours_state[key].dtype == value.numpy().dtype, key


def draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``random_array`` as an ndarray also for shape ``()`` (where it returns a NumPy scalar)."""
    return np.asarray(random_array(rng, shape, dtype))


def loaded_dtype(param_dtype: type, key: str, saved: np.ndarray) -> np.dtype:
    """torch's dtype for a loaded state entry: ``step`` as saved, the rest the param's dtype."""
    return saved.dtype if key == "step" else np.dtype(param_dtype)


def check_state_dict_round_trip(minireg_cls: type, kwargs: dict[str, Any], dtype: type) -> None:
    """Save mid-training and load into a fresh optimizer, which must then go on alike.

    Loaded entries get torch's dtypes (``loaded_dtype``).  Where that changes no dtype (all
    but a float64 NAdam, whose float32 ``mu_product`` becomes float64 as in torch), the
    clone must continue bit-identically; otherwise within the dtype's tolerance.
    """
    rng = np.random.default_rng(0)
    shape_list = [(3, 2), (2,), ()]
    params = [minireg.Parameter(draw(rng, s, dtype)) for s in shape_list]
    opt = minireg_cls(params, **kwargs)
    grads = [[draw(rng, s, dtype) for s in shape_list] for _ in range(14)]
    for step in grads[:7]:
        for p, g in zip(params, step):
            p.grad = g
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    clone_params = [minireg.Parameter(p.data.copy()) for p in params]
    clone = minireg_cls(clone_params, lr=0.123)
    clone.load_state_dict(saved)
    assert clone.param_groups[0] == {**opt.param_groups[0], "params": clone_params}
    exact = True
    for p, q in zip(params, clone_params):
        assert list(clone.state[q]) == list(opt.state[p])
        for key, value in opt.state[p].items():
            assert clone.state[q][key].dtype == loaded_dtype(dtype, key, value), key
            np.testing.assert_array_equal(clone.state[q][key], value)
            exact &= clone.state[q][key].dtype == value.dtype
    for step in grads[7:]:
        for p, q, g in zip(params, clone_params, step):
            p.grad, q.grad = g, g.copy()
        opt.step()
        clone.step()
    rtol, atol = (0.0, 0.0) if exact else tolerance(dtype, "cpu")
    for p, q in zip(params, clone_params):
        assert_close(q.data, p.data, rtol, atol, "param")
        for key, value in opt.state[p].items():
            assert clone.state[q][key].dtype == loaded_dtype(dtype, key, value), key
            assert_close(clone.state[q][key], value, rtol, atol, key, check_dtype=False)


def check_torch_continues_from_minireg_state(
    minireg_cls: type, torch_cls: type, kwargs: dict[str, Any], dtype: type, device: str
) -> None:
    """minireg's state_dict, saved mid-training, loads into torch (arrays turned into tensors)
    and into a fresh minireg optimizer; both then go on alike.  (Both sides load, so both
    apply their load-time casts, e.g. NAdam's ``mu_product`` to the param dtype.)"""
    rng = np.random.default_rng(3)
    rtol, atol = tolerance(dtype, device)
    shape_list = [(4, 3), (3,), ()]
    trained = [minireg.Parameter(draw(rng, s, dtype)) for s in shape_list]
    first = minireg_cls(trained, **kwargs)
    for _ in range(7):
        for p in trained:
            p.grad = draw(rng, p.shape, dtype)
        first.step()
    saved = first.state_dict()
    as_torch = {
        "state": {
            i: {k: torch.from_numpy(np.array(v)) for k, v in s.items()}
            for i, s in saved["state"].items()
        },
        "param_groups": copy.deepcopy(saved["param_groups"]),
    }
    ours_params, theirs_params = twin_parameters([p.data for p in trained], device)
    ours, theirs = minireg_cls(ours_params, **kwargs), torch_cls(theirs_params, **kwargs)
    ours.load_state_dict(copy.deepcopy(saved))
    theirs.load_state_dict(as_torch)
    for step in range(7):
        set_grads(ours_params, theirs_params, [draw(rng, s, dtype) for s in shape_list], device)
        ours.step()
        theirs.step()
        compare_optimizer_state(
            ours, theirs, ours_params, theirs_params, rtol, atol, f"torch resumed step {step}"
        )


def resume_both_from_torch_state(
    minireg_cls: type,
    torch_cls: type,
    kwargs: dict[str, Any],
    shapes: list[tuple[int, ...]],
    dtype: type,
    device: str,
    seed: int,
    steps_before: int = 5,
    steps_after: int = 10,
) -> None:
    """Like ``continue_from_torch_state``, but the torch side also resumes from the saved
    state_dict (a fresh torch optimizer loads it), so both sides apply torch's load-time
    casts; needed where those casts change a dtype (NAdam's ``mu_product``)."""
    rng = np.random.default_rng(seed)
    rtol, atol = tolerance(dtype, device)
    trained = [torch.nn.Parameter(to_torch(draw(rng, s, dtype), device)) for s in shapes]
    first = torch_cls(trained, **kwargs)
    for _ in range(steps_before):
        for q in trained:
            q.grad = to_torch(draw(rng, tuple(q.shape), dtype), device)
        first.step()
    ours_params, theirs_params = twin_parameters([to_numpy(q) for q in trained], device)
    ours, theirs = minireg_cls(ours_params, **kwargs), torch_cls(theirs_params, **kwargs)
    ours.load_state_dict(torch_state_dict_as_numpy(first.state_dict()))
    theirs.load_state_dict(first.state_dict())
    for step in range(steps_after):
        set_grads(ours_params, theirs_params, [draw(rng, s, dtype) for s in shapes], device)
        ours.step()
        theirs.step()
        compare_optimizer_state(
            ours, theirs, ours_params, theirs_params, rtol, atol, f"resumed step {step}"
        )


def torch_sqrt(x: Any) -> np.ndarray:
    """torch's CPU sqrt of an array or NumPy scalar, as an ndarray."""
    return torch.sqrt(torch.from_numpy(np.array(x))).numpy()


def bitwise_trajectory_mismatches(
    cases: list[tuple[str, dict[str, Any]]], steps: int = 25
) -> list[str]:
    """Run each ``(optimizer name, kwargs)`` case beside torch and list every inexact value.

    Meant for a process started with ``ATEN_CPU_CAPABILITY=default``, where torch's CPU
    kernels round each operation separately as NumPy does (no fused multiply-add), and with
    ``np.sqrt`` temporarily swapped for torch's sqrt (the one operation NumPy cannot match,
    TORCH_NOTES §0).  What remains is the order of the operations: any difference in it,
    even a mathematically equivalent one, shows up as a mismatch.
    """
    real_sqrt = np.sqrt
    np.sqrt = torch_sqrt  # type: ignore[assignment]
    mismatches = []
    try:
        for index, (name, kwargs) in enumerate(cases):
            for dtype in (np.float32, np.float64):
                rng = np.random.default_rng(index)
                shape_list = [(7, 5), (3,), ()]
                ours_params, theirs_params = twin_parameters(
                    [draw(rng, s, dtype) for s in shape_list], "cpu"
                )
                ours = getattr(minireg.optim, name)(ours_params, **kwargs)
                theirs = getattr(torch.optim, name)(theirs_params, **kwargs)
                for step in range(steps):
                    if step % 7 == 6:
                        for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups):
                            g_ours["lr"] = g_theirs["lr"] = g_ours["lr"] * 0.5
                    set_grads(
                        ours_params, theirs_params, [draw(rng, s, dtype) for s in shape_list], "cpu"
                    )
                    ours.step()
                    theirs.step()
                    for i, (p, q) in enumerate(zip(ours_params, theirs_params)):
                        pairs = [("param", p.data, q)] + [
                            (k, ours.state[p][k], v) for k, v in theirs.state[q].items()
                        ]
                        for what, mine, torchs in pairs:
                            if not np.array_equal(mine, to_numpy(torchs)):
                                mismatches.append(
                                    f"{name} {kwargs} {dtype.__name__} step {step} param {i} {what}"
                                )
    finally:
        np.sqrt = real_sqrt
    return mismatches


def assert_bitwise_without_fma(cases: list[tuple[str, dict[str, Any]]]) -> None:
    """``bitwise_trajectory_mismatches`` in a fresh process without FMA; there must be none."""
    root = Path(__file__).resolve().parents[1]
    code = (
        "import json, sys; "
        "from reference_tests.test_adam import bitwise_trajectory_mismatches as f; "
        "print(json.dumps(f(json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    mismatches = json.loads(result.stdout.strip().splitlines()[-1])
    assert mismatches == [], f"{len(mismatches)} inexact values, first: {mismatches[:5]}"


def no_cancelling_denominator(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop L2 weight decay when ``beta2 == 0`` (the ill-conditioned corner, module docstring)."""
    if kwargs["betas"][1] == 0 and not kwargs.get("decoupled_weight_decay", False):
        return {**kwargs, "weight_decay": 0.0}
    return kwargs


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
    run_trajectory(
        minireg.optim.Adam,
        torch.optim.Adam,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=20,
        grad_scale=grad_scale,
        tolerance_scale=max(1.0, grad_scale),
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
    run_trajectory(
        minireg.optim.AdamW,
        torch.optim.AdamW,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=20,
        grad_scale=grad_scale,
        tolerance_scale=max(1.0, grad_scale),
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
    run_trajectory(
        minireg.optim.Adam,
        torch.optim.Adam,
        kwargs,
        [(5, 3), (), (0,)],
        dtype,
        device,
        seed=7,
        steps=20,
    )
    kwargs = dict(lr=0.05, weight_decay=0.1, amsgrad=amsgrad, maximize=maximize)
    run_trajectory(
        minireg.optim.AdamW,
        torch.optim.AdamW,
        kwargs,
        [(5, 3), ()],
        dtype,
        device,
        seed=8,
        steps=20,
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
    assert_same_error(getattr(minireg.optim, cls_name), getattr(torch.optim, cls_name), kwargs)


def test_adamw_rejects_decoupled_weight_decay_like_torch():
    assert_same_error(minireg.optim.AdamW, torch.optim.AdamW, dict(decoupled_weight_decay=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=1e-2)),
        ("AdamW", dict(lr=0.05, betas=(0.5, 0.9), maximize=True)),
    ],
)
def test_adam_state_dict_round_trip_continues_bit_identically(dtype, cls_name, kwargs):
    check_state_dict_round_trip(getattr(minireg.optim, cls_name), kwargs, dtype)


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
    # Without FMA and with torch's sqrt (see bitwise_trajectory_mismatches), minireg and torch
    # must agree exactly: this pins the order of operations (lerp's two formulas, where eps
    # and the bias corrections enter), which tolerances cannot see.
    if device != "cpu":
        pytest.skip("the operation-order check is about torch's CPU kernels")
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
        ]
    )
