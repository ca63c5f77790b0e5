"""Run a minireg optimizer and its torch twin side by side and compare after every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from reference_tests.conftest import (
    assert_close,
    random_array,
    set_grads,
    to_numpy,
    tolerance,
    twin_parameters,
)


def compare_optimizer_state(ours: Any, theirs: torch.optim.Optimizer, ours_params, theirs_params, rtol, atol, where) -> None:
    """Parameters, and every state entry torch holds, must agree (same keys, dtypes, values)."""
    for index, (p, q) in enumerate(zip(ours_params, theirs_params)):
        assert_close(p.data, q, rtol, atol, f"{where}: param {index}")
        ours_state, theirs_state = ours.state.get(p, {}), theirs.state.get(q, {})
        assert set(ours_state) == set(theirs_state), f"{where}: state keys of param {index}"
        for key, expected in theirs_state.items():
            assert_close(ours_state[key], expected, rtol, atol, f"{where}: state[{key!r}] of param {index}")


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
    ours_params, theirs_params = twin_parameters([random_array(rng, s, dtype) for s in shapes], device)
    ours = minireg_cls(ours_params, **kwargs)
    theirs = torch_cls(theirs_params, **kwargs)
    # One parameter never gets a gradient: compare_optimizer_state then checks that neither
    # side created state for it (Adagrad creates state at construction, on both sides).
    never = rng.integers(len(shapes)) if len(shapes) > 1 else -1
    for step in range(steps):
        if step % 7 == 6:  # change the learning rate between steps, identically on both sides
            for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups):
                g_ours["lr"] = g_theirs["lr"] = g_ours["lr"] * 0.5
        grads = [
            None if (i == never or rng.random() < 0.15) else random_array(rng, s, dtype, grad_scale)
            for i, s in enumerate(shapes)
        ]
        set_grads(ours_params, theirs_params, grads, device)
        before = [None if g is None else g.copy() for g in grads]
        ours.step()
        theirs.step()
        for p, g in zip(ours_params, before):
            if g is None:
                assert p.grad is None
            else:
                np.testing.assert_array_equal(p.grad, g, err_msg="step() modified .grad")
                assert p.grad.dtype == g.dtype
        compare_optimizer_state(ours, theirs, ours_params, theirs_params, rtol, atol, f"step {step}")
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
    configure: Callable[[Any], None] | None = None,
) -> None:
    """Train torch alone, load its state_dict (as ndarrays) into a fresh minireg optimizer,
    then continue both and compare: minireg must pick up exactly where torch left off."""
    rng = np.random.default_rng(seed)
    rtol, atol = tolerance(dtype, device)
    arrays = [random_array(rng, s, dtype) for s in shapes]
    ours_params, theirs_params = twin_parameters(arrays, device)
    theirs = torch_cls(theirs_params, **kwargs)
    for _ in range(steps_before):
        for q, s in zip(theirs_params, shapes):
            q.grad = torch.from_numpy(random_array(rng, s, dtype)).to(device)
        theirs.step()
    for p, q in zip(ours_params, theirs_params):
        p.data[...] = to_numpy(q)
    ours = minireg_cls(ours_params, **kwargs)
    ours.load_state_dict(torch_state_dict_as_numpy(theirs.state_dict()))
    # Like for like: torch's load_state_dict also casts state (e.g. NAdam's mu_product
    # becomes the param dtype), so the torch side continues from a loaded copy too.
    theirs_params = [torch.nn.Parameter(q.detach().clone()) for q in theirs_params]
    loaded = torch_cls(theirs_params, **kwargs)
    loaded.load_state_dict(theirs.state_dict())
    theirs = loaded
    for step in range(steps_after):
        grads = [random_array(rng, s, dtype) for s in shapes]
        set_grads(ours_params, theirs_params, grads, device)
        ours.step()
        theirs.step()
        compare_optimizer_state(ours, theirs, ours_params, theirs_params, rtol, atol, f"resumed step {step}")
