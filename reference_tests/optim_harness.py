"""Run a minireg optimizer and its torch twin side by side and compare after every step;
plus what the optimizer test modules share: construction errors, state_dict round trips
and resumes in both directions, group and state layouts, and (for the Adam family, see
``test_adam.py``'s docstring) scaled trajectories and the bitwise operation-order check."""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

import minireg
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    assert_same_outcome,
    random_array,
    set_grads,
    shapes,
    to_numpy,
    tolerance,
    twin_parameters,
)

TORCH_ONLY_KEYS = ("foreach", "fused", "capturable", "differentiable")

shape_lists = st.lists(shapes, min_size=1, max_size=3)
grad_scales = st.sampled_from([1e-3, 1.0, 30.0])
invalid_values = st.sampled_from([-1e-3, -1.0, math.nan])  # a hyperparameter torch refuses


def compare_optimizer_state(
    ours: Any, theirs: torch.optim.Optimizer, ours_params, theirs_params, rtol, atol, where
) -> None:
    """Parameters, and every state entry torch holds, must agree (same keys, dtypes, values)."""
    for index, (p, q) in enumerate(zip(ours_params, theirs_params, strict=True)):
        assert_close(p.data, q, rtol, atol, f"{where}: param {index}")
        ours_state, theirs_state = ours.state.get(p, {}), theirs.state.get(q, {})
        assert set(ours_state) == set(theirs_state), f"{where}: state keys of param {index}"
        for key, expected in theirs_state.items():
            assert_close(
                ours_state[key], expected, rtol, atol, f"{where}: state[{key!r}] of param {index}"
            )


def run_trajectory(
    minireg_cls: type,
    torch_cls: type,
    kwargs: dict[str, Any],
    shapes: list[tuple[int, ...]],
    dtype: type,
    device: str,
    seed: int,
    steps: int = 20,
    tolerance_scale: float = 1.0,
    grad_scale: float = 1.0,
) -> tuple[Any, torch.optim.Optimizer, list, list]:
    """``steps`` steps of both optimizers on the same params and gradients.

    Along the way: the learning rate is changed between steps (both sides), some
    parameters get no gradient at some steps (they must be skipped and get no state), and
    ``.grad`` must be left untouched by ``step()``.  Everything is compared after each step.
    Returns both optimizers and both parameter lists for further checks.
    """
    rng = np.random.default_rng(seed)
    rtol, atol = tolerance(dtype, device)
    rtol, atol = rtol * tolerance_scale, atol * tolerance_scale
    ours_params, theirs_params = twin_parameters(
        [random_array(rng, s, dtype) for s in shapes], device
    )
    ours = minireg_cls(ours_params, **kwargs)
    theirs = torch_cls(theirs_params, **kwargs)
    # One parameter never gets a gradient: compare_optimizer_state then checks that neither
    # side created state for it (Adagrad creates state at construction, on both sides).
    never = rng.integers(len(shapes)) if len(shapes) > 1 else -1
    for step in range(steps):
        if step % 7 == 6:  # change the learning rate between steps, identically on both sides
            for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups, strict=True):
                g_ours["lr"] = g_theirs["lr"] = g_ours["lr"] * 0.5
        grads = [
            None if (i == never or rng.random() < 0.15) else random_array(rng, s, dtype, grad_scale)
            for i, s in enumerate(shapes)
        ]
        set_grads(ours_params, theirs_params, grads, device)
        before = [None if g is None else g.copy() for g in grads]
        ours.step()
        theirs.step()
        for p, g in zip(ours_params, before, strict=True):
            if g is None:
                assert p.grad is None
            else:
                np.testing.assert_array_equal(p.grad, g, err_msg="step() modified .grad")
                assert p.grad.dtype == g.dtype
        compare_optimizer_state(
            ours, theirs, ours_params, theirs_params, rtol, atol, f"step {step}"
        )
    return ours, theirs, ours_params, theirs_params


def torch_state_dict_as_numpy(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A torch optimizer state_dict with every tensor turned into an ndarray."""
    state = {
        pid: {k: (to_numpy(v) if isinstance(v, torch.Tensor) else v) for k, v in entry.items()}
        for pid, entry in state_dict["state"].items()
    }
    return {"state": state, "param_groups": [dict(g) for g in state_dict["param_groups"]]}


def continue_from_torch_state(
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
    """Train torch alone, load its state_dict (as ndarrays) into a fresh minireg optimizer,
    then continue both and compare: minireg must pick up exactly where torch left off.

    The torch side continues from a fresh torch optimizer that loaded the same state_dict,
    so both sides apply torch's load-time casts (NAdam's ``mu_product`` takes the param
    dtype on load, unlike in the optimizer that saved it)."""
    rng = np.random.default_rng(seed)
    rtol, atol = tolerance(dtype, device)
    arrays = [random_array(rng, s, dtype) for s in shapes]
    ours_params, theirs_params = twin_parameters(arrays, device)
    theirs = torch_cls(theirs_params, **kwargs)
    for _ in range(steps_before):
        for q, s in zip(theirs_params, shapes, strict=True):
            q.grad = torch.from_numpy(random_array(rng, s, dtype)).to(device)
        theirs.step()
    for p, q in zip(ours_params, theirs_params, strict=True):
        p.data[...] = to_numpy(q)
    ours = minireg_cls(ours_params, **kwargs)
    ours.load_state_dict(torch_state_dict_as_numpy(theirs.state_dict()))
    theirs_params = [torch.nn.Parameter(q.detach().clone()) for q in theirs_params]
    loaded = torch_cls(theirs_params, **kwargs)
    loaded.load_state_dict(theirs.state_dict())
    theirs = loaded
    for step in range(steps_after):
        grads = [random_array(rng, s, dtype) for s in shapes]
        set_grads(ours_params, theirs_params, grads, device)
        ours.step()
        theirs.step()
        compare_optimizer_state(
            ours, theirs, ours_params, theirs_params, rtol, atol, f"resumed step {step}"
        )


def run_scaled_trajectory(
    minireg_cls: type,
    torch_cls: type,
    kwargs: dict[str, Any],
    shape_list: list[tuple[int, ...]],
    dtype: type,
    device: str,
    seed: int,
    grad_scale: float,
) -> None:
    """20 steps of ``run_trajectory`` with gradients of size ``grad_scale`` and the tolerance
    scaled by ``max(1, grad_scale)`` (moments of size 30 round at that scale; test_adam.py)."""
    run_trajectory(
        minireg_cls,
        torch_cls,
        kwargs,
        shape_list,
        dtype,
        device,
        seed,
        steps=20,
        grad_scale=grad_scale,
        tolerance_scale=max(1.0, grad_scale),
    )


def run_fixed_trajectory(
    minireg_cls: type,
    torch_cls: type,
    kwargs: dict[str, Any],
    dtype: type,
    device: str,
    shape_list: Sequence[tuple[int, ...]] = ((5, 3), (), (0,)),
    seed: int = 7,
) -> None:
    """20 steps of ``run_trajectory`` on fixed parameters (by default a matrix, a 0-d and an
    empty one) and a fixed seed: for parametrised option combinations."""
    run_trajectory(
        minireg_cls, torch_cls, kwargs, list(shape_list), dtype, device, seed=seed, steps=20
    )


# ---------------------------------------------------------------------------- construction
def construct_on_one_parameter(
    minireg_cls: type, torch_cls: type, kwargs: dict[str, Any]
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Calls that build torch's and minireg's optimizer with ``kwargs`` on a zero parameter."""
    return (
        lambda: torch_cls([torch.nn.Parameter(torch.zeros(1))], **kwargs),
        lambda: minireg_cls([minireg.Parameter(np.zeros(1))], **kwargs),
    )


def assert_constructs_like_torch(
    minireg_cls: type, torch_cls: type, kwargs: dict[str, Any]
) -> None:
    """Both accept ``kwargs``, or both raise the same exception type with the same message
    (the first error in torch's check order)."""
    builds = construct_on_one_parameter(minireg_cls, torch_cls, kwargs)
    assert_same_outcome(*builds, what=repr(kwargs))


def assert_construction_error_like_torch(
    minireg_cls: type,
    torch_cls: type,
    kwargs: dict[str, Any],
    expected: type[Exception] = Exception,
    match: str | None = None,
) -> None:
    """Constructing with ``kwargs`` raises on both sides the same type (an ``expected``) with
    the same message (torch's matching the regular expression ``match``, when given)."""
    builds = construct_on_one_parameter(minireg_cls, torch_cls, kwargs)
    theirs, _ = assert_same_error(*builds, what=repr(kwargs))
    assert isinstance(theirs, expected), repr(theirs)
    if match is not None:
        assert re.search(match, str(theirs)), f"{match!r} not in {theirs}"


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


# ---------------------------------------------------------------------------- state_dict
def draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """``random_array`` as an ndarray also for shape ``()`` (where it returns a NumPy scalar)."""
    return np.asarray(random_array(rng, shape, dtype))


def loaded_dtype(param_dtype: type, key: str, saved: np.ndarray) -> np.dtype:
    """torch's dtype for a loaded state entry: ``step`` as saved, the rest the param's dtype."""
    return saved.dtype if key == "step" else np.dtype(param_dtype)


def check_state_dict_round_trip(
    minireg_cls: type,
    kwargs: dict[str, Any],
    dtype: type,
    shape_list: Sequence[tuple[int, ...]] = ((3, 2), (2,), ()),
    steps_before: int = 7,
    steps_after: int = 7,
    state_keys: Sequence[str] = (),
) -> None:
    """Save mid-training and load into a fresh optimizer, which must then go on alike.

    Loaded entries get torch's dtypes (``loaded_dtype``).  Where that changes no dtype (all
    but a float64 NAdam, whose float32 ``mu_product`` becomes float64 as in torch), the
    clone must continue bit-identically; otherwise within the dtype's tolerance.  Each of
    ``state_keys`` must be in the state, and a ``step`` is float32 and counts every step.
    """
    rng = np.random.default_rng(0)
    params = [minireg.Parameter(draw(rng, s, dtype)) for s in shape_list]
    opt = minireg_cls(params, **kwargs)
    grads = [[draw(rng, s, dtype) for s in shape_list] for _ in range(steps_before + steps_after)]
    for step in grads[:steps_before]:
        for p, g in zip(params, step, strict=True):
            p.grad = g
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    clone_params = [minireg.Parameter(p.data.copy()) for p in params]
    clone = minireg_cls(clone_params, lr=0.123)
    clone.load_state_dict(saved)
    assert clone.param_groups[0] == {**opt.param_groups[0], "params": clone_params}
    exact = True
    for p, q in zip(params, clone_params, strict=True):
        assert list(clone.state[q]) == list(opt.state[p])
        for key, value in opt.state[p].items():
            assert clone.state[q][key].dtype == loaded_dtype(dtype, key, value), key
            np.testing.assert_array_equal(clone.state[q][key], value)
            exact &= clone.state[q][key].dtype == value.dtype
    for step in grads[steps_before:]:
        for p, q, g in zip(params, clone_params, step, strict=True):
            p.grad, q.grad = g, g.copy()
        opt.step()
        clone.step()
    rtol, atol = (0.0, 0.0) if exact else tolerance(dtype, "cpu")
    for p, q in zip(params, clone_params, strict=True):
        assert q.dtype == np.dtype(dtype)
        assert_close(q.data, p.data, rtol, atol, "param")
        for key in state_keys:
            assert key in clone.state[q], key
        if "step" in clone.state[q]:
            assert clone.state[q]["step"].dtype == np.float32
            assert float(clone.state[q]["step"]) == steps_before + steps_after
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


# ---------------------------------------------------------------------------- Adam family
def no_cancelling_denominator(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop L2 weight decay when ``beta2 == 0`` (the ill-conditioned corner, test_adam.py)."""
    if kwargs["betas"][1] == 0 and not kwargs.get("decoupled_weight_decay", False):
        return {**kwargs, "weight_decay": 0.0}
    return kwargs


def torch_sqrt(x: Any, out: np.ndarray | None = None) -> np.ndarray:
    """torch's CPU sqrt of an array or NumPy scalar, as an ndarray (written into ``out``)."""
    result = torch.sqrt(torch.from_numpy(np.array(x))).numpy()
    if out is None:
        return result
    out[...] = result
    return out


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
        for (index, (name, kwargs)), foreach, dtype in itertools.product(
            enumerate(cases), (None, False), (np.float32, np.float64)
        ):  # foreach=False: minireg's textbook kernels; None: its engine
            rng = np.random.default_rng(index)
            shape_list = [(7, 5), (3,), ()]
            ours_params, theirs_params = twin_parameters(
                [draw(rng, s, dtype) for s in shape_list], "cpu"
            )
            ours = getattr(minireg.optim, name)(ours_params, foreach=foreach, **kwargs)
            theirs = getattr(torch.optim, name)(theirs_params, **kwargs)
            for step in range(steps):
                if step % 7 == 6:
                    for g_ours, g_theirs in zip(
                        ours.param_groups, theirs.param_groups, strict=True
                    ):
                        g_ours["lr"] = g_theirs["lr"] = g_ours["lr"] * 0.5
                set_grads(
                    ours_params, theirs_params, [draw(rng, s, dtype) for s in shape_list], "cpu"
                )
                ours.step()
                theirs.step()
                for i, (p, q) in enumerate(zip(ours_params, theirs_params, strict=True)):
                    pairs = [("param", p.data, q)] + [
                        (k, ours.state[p][k], v) for k, v in theirs.state[q].items()
                    ]
                    for what, mine, torchs in pairs:
                        if not np.array_equal(mine, to_numpy(torchs)):
                            mismatches.append(
                                f"{name} {kwargs} foreach={foreach} {dtype.__name__} "
                                f"step {step} param {i} {what}"
                            )
    finally:
        np.sqrt = real_sqrt
    return mismatches


def assert_bitwise_without_fma(cases: list[tuple[str, dict[str, Any]]], device: str) -> None:
    """``bitwise_trajectory_mismatches`` in a fresh process without FMA; there must be none.
    The check is about torch's CPU kernels: on any other ``device`` the test skips."""
    if device != "cpu":
        pytest.skip("the operation-order check is about torch's CPU kernels")
    root = Path(__file__).resolve().parents[1]
    code = (
        "import json, sys; "
        "from reference_tests.optim_harness import bitwise_trajectory_mismatches as f; "
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
