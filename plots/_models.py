"""Small models and training loops written once and run on both minireg and torch.

``build_mlp(nn, ...)`` takes either ``minireg.nn`` or ``torch.nn`` as its first argument
(the same layer names exist in both), so the two models have the same architecture and
the same ``state_dict`` keys; :func:`copy_weights` then gives them the same weights
(:func:`torch_mlp` and :func:`minireg_mlp` build such a twin pair).  Training steps mirror
each other line for line: minireg's ``model.backward`` where torch has ``loss.backward()``.
:class:`Lockstep` runs a torch twin one step at a time beside a minireg model, to measure
the gap of each step alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "Lockstep",
    "batches",
    "build_mlp",
    "copy_optimizer_state",
    "copy_weights",
    "minireg_mlp",
    "minireg_step",
    "optimizer_state_gap",
    "state_gap",
    "torch_dtype",
    "torch_mlp",
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


def torch_mlp(torch: ModuleType, sizes: Sequence[int], activation: str, **options: Any) -> Any:
    """The torch side of a twin pair: :func:`build_mlp` in float64 after ``torch.manual_seed(0)``.

    ``options`` are :func:`build_mlp`'s (``batchnorm``, ``dropout``).  The weights are
    torch's default init, the same on every call.
    """
    torch.manual_seed(0)
    return build_mlp(torch.nn, sizes, activation, dtype=torch.float64, **options)


def minireg_mlp(
    sizes: Sequence[int], activation: str, torch: ModuleType | None, **options: Any
) -> Any:
    """The minireg side of a twin pair, float64, starting from :func:`torch_mlp`'s weights.

    Without torch (``torch=None``) it keeps minireg's own init, drawn after
    ``minireg.manual_seed(0)``, so the figure still draws.
    """
    import minireg

    minireg.manual_seed(0)
    model = build_mlp(minireg.nn, sizes, activation, dtype=np.float64, **options)
    if torch is not None:
        copy_weights(torch_mlp(torch, sizes, activation, **options), model)
    return model


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


@dataclass
class Lockstep:
    """A torch twin that takes every training step beside a minireg model, from its state.

    Training at a high learning rate (or through BatchNorm) amplifies last-bit rounding,
    so two independent runs drift apart however well each step agrees.  In lockstep
    nothing accumulates: before every step the twin is loaded with minireg's weights,
    buffers and optimizer state, both take the same step on the same batch, and the
    worst difference afterwards is the gap of that one step alone.
    """

    model: Any  # the torch model, same architecture as minireg's
    optimizer: Any  # a torch optimizer over model's parameters, same settings as minireg's
    loss_fn: Any
    before_step: Callable[[], Any] | None = None  # as in torch_step

    def step(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        x: np.ndarray,
        y: np.ndarray,
        idx: np.ndarray,
        before_step: Callable[[], Any] | None = None,
    ) -> tuple[float, Any, float]:
        """minireg's :func:`minireg_step` on batch ``idx``, the twin's same step, and their gap.

        Returns ``(loss, before_step(), gap)``: minireg's loss and extra value, and the
        worst ``|Δ|`` over the loss, the extra value (when there is one), every parameter
        and buffer, and every optimizer state entry.
        """
        import torch

        copy_weights(model, self.model)
        copy_optimizer_state(optimizer, self.optimizer)
        tx, ty = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
        their_loss, their_extra = torch_step(
            self.model, self.loss_fn, self.optimizer, tx, ty, self.before_step
        )
        loss, extra = minireg_step(model, loss_fn, optimizer, x[idx], y[idx], before_step)
        gaps = [abs(loss - their_loss)]
        if extra is not None:
            gaps.append(abs(extra - their_extra))
        gaps += [state_gap(model, self.model), optimizer_state_gap(optimizer, self.optimizer)]
        return loss, extra, max(gaps)
