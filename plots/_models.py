"""Small models and training loops written once and run on both minireg and torch.

``build_mlp(nn, ...)`` takes either ``minireg.nn`` or ``torch.nn`` as its first argument
(the same layer names exist in both), so the two models have the same architecture and
the same ``state_dict`` keys; :func:`copy_weights` then gives them the same weights.
Training steps mirror each other line for line: minireg's ``model.backward`` where torch
has ``loss.backward()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "batches",
    "build_mlp",
    "copy_optimizer_state",
    "copy_weights",
    "minireg_step",
    "optimizer_state_gap",
    "state_gap",
    "torch_dtype",
    "torch_step",
]


def torch_dtype(torch: ModuleType, dtype: Any) -> Any:
    """torch's dtype for a NumPy one."""
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]


def build_mlp(
    nn: ModuleType,
    sizes: Sequence[int],
    activation: str = "Tanh",
    *,
    batchnorm: bool = False,
    dropout: float = 0.0,
    dtype: Any = None,
) -> Any:
    """``Linear → [BatchNorm1d] → act → [Dropout]`` per hidden layer, then a last Linear.

    ``nn`` is ``minireg.nn`` or ``torch.nn``; ``dtype`` is passed to every layer that
    holds parameters (a NumPy dtype for minireg, a torch dtype for torch).
    """
    factory = {} if dtype is None else {"dtype": dtype}
    layers: list[Any] = []
    for n_in, n_out in itertools.pairwise(sizes[:-1]):
        layers.append(nn.Linear(n_in, n_out, **factory))
        if batchnorm:
            layers.append(nn.BatchNorm1d(n_out, **factory))
        layers.append(getattr(nn, activation)())
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1], **factory))
    return nn.Sequential(*layers)


def copy_weights(source: Any, target: Any) -> None:
    """Load ``source``'s state_dict (torch or minireg) into ``target`` (minireg or torch)."""
    state = source.state_dict()
    if hasattr(target, "load_state_dict") and type(target).__module__.startswith("torch"):
        import torch

        target.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    else:
        target.load_state_dict({k: _to_numpy(v) for k, v in state.items()})


def _to_numpy(value: Any) -> np.ndarray:
    """A copy of a torch tensor or array-like as an ndarray."""
    return value.detach().cpu().numpy().copy() if hasattr(value, "detach") else np.array(value)


def _flat_params(optimizer: Any) -> list[Any]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def copy_optimizer_state(source: Any, target: Any) -> None:
    """Give torch optimizer ``target`` the per-parameter state of minireg optimizer ``source``.

    Parameters are matched by position; ndarrays become tensors (the 0-d float32 ``step``
    stays 0-d float32, as torch keeps it).
    """
    import torch

    for p, q in zip(_flat_params(source), _flat_params(target)):
        state = source.state.get(p, {})
        target.state[q] = {
            key: torch.from_numpy(np.array(value, copy=True))
            if isinstance(value, np.ndarray)
            else value
            for key, value in state.items()
        }


def optimizer_state_gap(ours: Any, theirs: Any) -> float:
    """``max |Δ|`` over every state entry that a minireg and a torch optimizer hold."""
    worst = 0.0
    for p, q in zip(_flat_params(ours), _flat_params(theirs)):
        for key, value in theirs.state.get(q, {}).items():
            if hasattr(value, "detach"):
                diff = np.abs(
                    np.asarray(ours.state[p][key], dtype=np.float64) - value.detach().cpu().numpy()
                )
                worst = max(worst, float(np.max(diff, initial=0.0)))
    return worst


def state_gap(ours: Any, theirs: Any) -> float:
    """``max |Δ|`` over every parameter and floating buffer of two twin models."""
    a, b = ours.state_dict(), theirs.state_dict()
    worst = 0.0
    for key, value in a.items():
        other = b[key].detach().cpu().numpy() if hasattr(b[key], "detach") else np.asarray(b[key])
        worst = max(
            worst, float(np.max(np.abs(np.asarray(value, dtype=np.float64) - other), initial=0.0))
        )
    return worst


def batches(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """``steps`` index arrays: reshuffled epochs of ``range(n)`` cut into mini-batches."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < steps:
        order = rng.permutation(n)
        out += [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return out[:steps]


def minireg_step(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
    x: np.ndarray,
    y: np.ndarray,
    before_step: Callable[[], Any] | None = None,
) -> tuple[float, Any]:
    """One minireg training step; returns ``(loss, before_step())``."""
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    extra = before_step() if before_step is not None else None
    optimizer.step()
    return float(loss), extra


def torch_step(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
    x: Any,
    y: Any,
    before_step: Callable[[], Any] | None = None,
) -> tuple[float, Any]:
    """The same step in torch; returns ``(loss, before_step())``."""
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    extra = before_step() if before_step is not None else None
    optimizer.step()
    return float(loss.detach()), extra
