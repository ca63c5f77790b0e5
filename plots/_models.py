"""Small models and training loops written once and run on both minireg and torch.

``build_mlp(nn, ...)`` takes either ``minireg.nn`` or ``torch.nn`` as its first argument
(the same layer names exist in both), so the two models have the same architecture and
the same ``state_dict`` keys; :func:`copy_weights` then gives them the same weights
(:func:`torch_mlp` and :func:`minireg_mlp` build such a twin pair).  Training steps mirror
each other line for line: minireg's ``model.backward`` where torch has ``loss.backward()``.
:class:`Lockstep` runs a torch twin one step at a time beside a minireg model, to measure
the gap of each step alone.  :class:`Twins` bundles a twin pair with its two optimizers
and losses, so a figure trains both on the same batches with one call per step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "NORMS",
    "Lockstep",
    "Twins",
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


GROUP_NORM_GROUPS = 4  # GroupNorm's groups in build_mlp (hidden widths must be multiples)

# norm name -> the layer for n features, with the factory kwargs; the same in both libraries.
NORMS: dict[str, Callable[[ModuleType, int, dict[str, Any]], Any]] = {
    "BatchNorm1d": lambda nn, n, factory: nn.BatchNorm1d(n, **factory),
    "LayerNorm": lambda nn, n, factory: nn.LayerNorm(n, **factory),
    "GroupNorm": lambda nn, n, factory: nn.GroupNorm(GROUP_NORM_GROUPS, n, **factory),
}


def build_mlp(
    nn: ModuleType,
    sizes: Sequence[int],
    activation: str = "Tanh",
    *,
    batchnorm: bool = False,
    norm: str | None = None,
    dropout: float = 0.0,
    hidden_bias: bool = True,
    dtype: Any = None,
) -> Any:
    """``Linear → [norm] → act → [Dropout]`` per hidden layer, then a last Linear.

    ``nn`` is ``minireg.nn`` or ``torch.nn``; ``dtype`` is passed to every layer that
    holds parameters (a NumPy dtype for minireg, a torch dtype for torch).  ``norm`` is a
    key of :data:`NORMS` (``batchnorm=True`` is short for ``norm="BatchNorm1d"``);
    ``activation`` names the layer class (``"Tanh"``, ``"ReLU"``, ``"LeakyReLU"``, ...).
    ``hidden_bias=False`` drops the hidden Linears' biases (usual before BatchNorm, whose
    mean subtraction cancels them).
    """
    factory = {} if dtype is None else {"dtype": dtype}
    norm = "BatchNorm1d" if batchnorm else norm
    layers: list[Any] = []
    for n_in, n_out in itertools.pairwise(sizes[:-1]):
        layers.append(nn.Linear(n_in, n_out, bias=hidden_bias, **factory))
        if norm is not None:
            layers.append(NORMS[norm](nn, n_out, factory))
        layers.append(getattr(nn, activation)())
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1], **factory))
    return nn.Sequential(*layers)


def torch_mlp(
    torch: ModuleType, sizes: Sequence[int], activation: str, *, seed: int = 0, **options: Any
) -> Any:
    """The torch side of a twin pair: :func:`build_mlp`, float64, after ``torch.manual_seed(seed)``.

    ``options`` are :func:`build_mlp`'s (``batchnorm``, ``norm``, ``dropout``).  The
    weights are torch's default init, the same on every call with the same ``seed``.
    """
    torch.manual_seed(seed)
    return build_mlp(torch.nn, sizes, activation, dtype=torch.float64, **options)


def minireg_mlp(
    sizes: Sequence[int],
    activation: str,
    torch: ModuleType | None,
    *,
    seed: int = 0,
    **options: Any,
) -> Any:
    """The minireg side of a twin pair, float64, starting from :func:`torch_mlp`'s weights.

    Without torch (``torch=None``) it keeps minireg's own init, drawn after
    ``minireg.manual_seed(seed)``, so the figure still draws.
    """
    import minireg

    minireg.manual_seed(seed)
    model = build_mlp(minireg.nn, sizes, activation, dtype=np.float64, **options)
    if torch is not None:
        copy_weights(torch_mlp(torch, sizes, activation, seed=seed, **options), model)
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

    for p, q in zip(_flat_params(source), _flat_params(target), strict=True):
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
    for p, q in zip(_flat_params(ours), _flat_params(theirs), strict=True):
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


class Twins:
    """A minireg model and its torch twin (same weights), trained on the same batches.

    ``optimizer`` and ``loss`` are ``(class name, kwargs)`` pairs, looked up in
    ``minireg.optim`` / ``torch.optim`` and ``minireg.nn`` / ``torch.nn``.  Each
    :meth:`step` takes one minireg step (:func:`minireg_step`) and the same torch step
    (:func:`torch_step`) on the same batch.  By default the two train independently, and
    :attr:`gap` is the worst ``|Δ|`` seen so far over the losses, everything compared by
    :meth:`outputs` and :meth:`gradients`, and the weights (:meth:`compare_weights`).  With
    ``lockstep=True`` the twin is re-synchronised to minireg before every step
    (:class:`Lockstep`), for trainings chaotic enough to amplify last-bit rounding.
    Without torch (``twin=None``) minireg trains alone and :attr:`gap` stays ``None``.
    """

    def __init__(
        self,
        model: Any,
        twin: Any,
        optimizer: tuple[str, dict[str, Any]],
        loss: tuple[str, dict[str, Any]],
        *,
        lockstep: bool = False,
    ) -> None:
        import minireg

        (opt_name, opt_kwargs), (loss_name, loss_kwargs) = optimizer, loss
        self.model, self.twin, self.lockstep = model, twin, lockstep
        self.optimizer = getattr(minireg.optim, opt_name)(model.parameters(), **opt_kwargs)
        self.loss_fn = getattr(minireg.nn, loss_name)(**loss_kwargs)
        self._loss_name, self._loss_kwargs = loss_name, loss_kwargs
        self.gap: float | None = None
        if twin is not None:
            import torch

            self.twin_optimizer = getattr(torch.optim, opt_name)(twin.parameters(), **opt_kwargs)
            self.twin_loss_fn = getattr(torch.nn, loss_name)(**loss_kwargs)
            self._sync = Lockstep(twin, self.twin_optimizer, self.twin_loss_fn)
            self.gap = 0.0

    @classmethod
    def mlp(
        cls,
        sizes: Sequence[int],
        activation: str,
        torch: ModuleType | None,
        optimizer: tuple[str, dict[str, Any]],
        loss: tuple[str, dict[str, Any]],
        *,
        seed: int = 0,
        init: Callable[[Any], Any] | None = None,
        lockstep: bool = False,
        **options: Any,
    ) -> Twins:
        """A :func:`build_mlp` twin pair (float64).

        Weights: torch's default init after ``torch.manual_seed(seed)``, loaded into
        minireg; or, with ``init``, ``init(minireg_model)`` (e.g. with ``minireg.nn.init``)
        copied into torch.  ``options`` are :func:`build_mlp`'s.
        """
        if init is None:
            model = minireg_mlp(sizes, activation, torch, seed=seed, **options)
            twin = (
                None if torch is None else torch_mlp(torch, sizes, activation, seed=seed, **options)
            )
        else:
            model = minireg_mlp(sizes, activation, None, seed=seed, **options)
            init(model)
            twin = None
            if torch is not None:
                twin = torch_mlp(torch, sizes, activation, seed=seed, **options)
                copy_weights(model, twin)
        return cls(model, twin, optimizer, loss, lockstep=lockstep)

    def _add(self, value: float) -> None:
        if self.gap is not None:
            self.gap = max(self.gap, float(value)) if value == value else float("nan")

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One training step of both models on the batch ``(x, y)``; returns minireg's loss."""
        if self.twin is None:
            return minireg_step(self.model, self.loss_fn, self.optimizer, x, y)[0]
        if self.lockstep:
            loss, _, gap = self._sync.step(
                self.model, self.optimizer, self.loss_fn, x, y, np.arange(len(x))
            )
            self._add(gap)
            return loss
        import torch

        loss, _ = minireg_step(self.model, self.loss_fn, self.optimizer, x, y)
        theirs, _ = torch_step(
            self.twin,
            self.twin_loss_fn,
            self.twin_optimizer,
            torch.from_numpy(x),
            torch.from_numpy(y),
        )
        self._add(abs(loss - theirs))
        return loss

    def outputs(
        self, x: np.ndarray, *, train: bool = False, upto: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Both models' outputs on ``x`` (in eval mode unless ``train``), without training.

        ``upto`` stops after that many layers (``model[:upto]``), e.g. to read hidden
        pre-activations.  The difference is folded into :attr:`gap` (in lockstep too: the
        twin took the last step from minireg's state).  Both models are left in train mode.
        A train-mode forward updates BatchNorm's running statistics in both.
        """
        model = self.model if upto is None else self.model[:upto]
        model.train(train)
        ours = np.array(model(x), copy=True)
        self.model.train()
        if self.twin is None:
            return ours, None
        import torch

        twin = self.twin if upto is None else self.twin[:upto]
        twin.train(train)
        with torch.no_grad():
            theirs = twin(torch.from_numpy(x)).numpy().copy()
        self.twin.train()
        self._add(float(np.max(np.abs(ours - theirs), initial=0.0)))
        return ours, theirs

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
        """Both models' eval-mode loss on ``(x, y)`` (a fresh loss object: no state kept)."""
        import minireg

        ours, theirs = self.outputs(x)
        name, options = self._loss_name, self._loss_kwargs
        value = float(getattr(minireg.nn, name)(**options)(ours, y))
        if theirs is None:
            return value, None
        import torch

        loss_fn = getattr(torch.nn, name)(**options)
        their_value = float(loss_fn(torch.from_numpy(theirs), torch.from_numpy(y)))
        self._add(abs(value - their_value))
        return value, their_value

    def gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Each parameter's gradient of the loss on ``(x, y)`` in both models (no step taken).

        The gradients are left in ``.grad`` (zeroed first); the differences go into :attr:`gap`.
        """
        self.optimizer.zero_grad()
        self.loss_fn(self.model(x), y)
        self.model.backward(self.loss_fn.backward())
        ours = [np.array(p.grad, copy=True) for p in self.model.parameters()]
        if self.twin is None:
            return ours, None
        import torch

        self.twin_optimizer.zero_grad()
        self.twin_loss_fn(self.twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        theirs = [p.grad.detach().numpy().copy() for p in self.twin.parameters()]
        for a, b in zip(ours, theirs, strict=True):
            self._add(float(np.max(np.abs(a - b), initial=0.0)))
        return ours, theirs

    def compare_weights(self) -> float | None:
        """``max |Δ|`` over the two models' weights and buffers now, folded into :attr:`gap`."""
        if self.twin is None:
            return None
        value = state_gap(self.model, self.twin)
        self._add(value)
        return value
