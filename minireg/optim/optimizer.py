"""`Optimizer`: what every optimizer shares -- param groups, state, ``step``, state_dict.

Read this second, after ``minireg/optim/sgd.py``.  The maths lives in each optimizer's
module, as a plain kernel function on ndarrays (``sgd``, ``adam``, ...).  This file
organises parameters and their state the way ``torch.optim.Optimizer`` does, so that a
state_dict moves between minireg and torch unchanged, and :meth:`Optimizer.step` calls
the kernel once per parameter.  Next: ``minireg/optim/adam.py``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from minireg._engine import in_textbook_mode
from minireg._engine import optim as engine
from minireg.parameter import Parameter

# torch keys that only steer torch's execution machinery; minireg drops them on load.
TORCH_ONLY_KEYS = ("foreach", "fused", "capturable", "differentiable")


class _RequiredParameter:
    """Marks a hyperparameter with no default (torch's ``optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

ParamsT = Iterable[Parameter] | Iterable[dict[str, Any]]


def check_nonnegative(value: float, message: str) -> None:
    """Raise torch's ``ValueError(message.format(value))`` when ``value < 0``."""
    if value < 0:
        raise ValueError(message.format(value))


def new_step_counter() -> np.ndarray:
    """A 0-d float32 step counter, as torch keeps ``state["step"]`` (it saturates at 2**24)."""
    return np.zeros((), dtype=np.float32)


def increment(counter: np.ndarray) -> float:
    """``counter += 1`` in the counter's own dtype; returns the new value as a Python float."""
    counter += np.float32(1) if counter.dtype == np.float32 else 1
    return float(counter)


class Optimizer:
    """Base class: holds ``param_groups`` and per-parameter ``state`` like torch.

    A subclass declares:

    - ``kernel``: its textbook kernel, called as
      ``kernel(param, grad, *state arrays, **hyperparameters)``;
    - ``state_arrays``: the state entries the kernel takes, in its order (``None`` where a
      parameter has no such entry, e.g. ``max_exp_avg_sq`` without AMSGrad);
    - ``_init_state(param, group)``: the state torch creates on a parameter's first step;
    - ``_prepare_step(param, state, group)``: the once-per-step bookkeeping (count the
      step, ...); it returns the kernel's keyword arguments that are not group entries.

    Every other keyword argument of the kernel is the group's entry of that name.
    ``foreach=False`` (torch's flag), or a step inside ``with minireg.textbook():``, runs
    the textbook kernel one parameter at a time, the code a student reads; otherwise the
    step goes to the speed engine (:mod:`minireg._engine.optim`), which gives the same bits.
    """

    kernel: Callable[..., None]
    state_arrays: tuple[str, ...] = ()
    # State entries that are one number per parameter (a 0-d array), not one per element.
    scalar_state: tuple[str, ...] = ("step",)

    def __init__(
        self, params: ParamsT, defaults: dict[str, Any], *, foreach: bool | None = None
    ) -> None:
        self.defaults = defaults
        self.foreach = foreach
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors "
                "or dicts, but got " + _typename(params)
            )
        self.state: defaultdict[Parameter, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []

        param_groups: list[Any] = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle/copy without a scheduler's wrapper around ``step`` (torch leaves it out too)."""
        skipped = ("step", "_opt_called")
        return {k: v for k, v in self.__dict__.items() if k not in skipped}

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for index, group in enumerate(self.param_groups):
            if index:
                lines.append("")  # torch separates groups by a blank line
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"

    # ---------------------------------------------------------------- param groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, filling unspecified hyperparameters from defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Parameter):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. "
                "Please use a list instead."
            )
        else:
            param_group["params"] = list(params)

        names, tensors = [], []
        for item in param_group["params"]:
            if isinstance(item, tuple):
                names.append(item[0])
                tensors.append(item[1])
            else:
                tensors.append(item)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. "
                    "Some param names are missing"
                )
            param_group["param_names"] = names

        for param in param_group["params"]:
            if not isinstance(param, Parameter):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is "
                    + _typename(param)
                )

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)
        _squeeze_lr(param_group)

        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )

        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not seen.isdisjoint(id(p) for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ---------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every gradient: to ``None`` (default, as torch) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.

        Parameters whose ``.grad`` is ``None`` are skipped and get no state.  ``.grad`` is
        only read.  All gradients are checked before any parameter moves, so a bad one
        raises without leaving the optimizer half-stepped.
        """
        loss = None
        if closure is not None:
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    _check_grad(p)
        for group in self.param_groups:
            if self.foreach is False or in_textbook_mode():  # the textbook kernel, one by one
                for p in group["params"]:
                    if p.grad is not None:
                        self._step_param(p, group, self.kernel)
            else:  # the same steps, by the speed engine
                engine.step_group(self, group)
        return loss

    def _step_param(
        self,
        param: Parameter,
        group: dict[str, Any],
        kernel: Callable[..., None],
        state: dict[str, Any] | None = None,
    ) -> None:
        """One kernel call: ``param``'s state arrays, then its hyperparameters."""
        if state is None:
            state = self.state[param]
            if not state:  # the parameter's first step: torch makes its state now
                state.update(self._init_state(param, group))
        per_step = self._prepare_step(param, state, group)
        hyperparameters = {
            name: _number(group[name])
            for name in _keyword_names(self.kernel)
            if name not in per_step
        }
        arrays = [state.get(name) for name in self.state_arrays]
        kernel(param.data, param.grad, *arrays, **hyperparameters, **per_step)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        """The state torch creates the first time ``param`` is stepped."""
        raise NotImplementedError

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        """Once-per-step bookkeeping; returns the kernel's arguments that are not in the group."""
        return {}

    def _init_group_state(self, group: dict[str, Any]) -> None:
        """Make every parameter's state now, not at its first step (Adagrad, as torch)."""
        if self.foreach is False or in_textbook_mode():
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)
        else:  # the engine makes a flat group's state flat too
            engine.init_group_state(self, group)

    # ---------------------------------------------------------------- state_dict
    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {id: {...}}, "param_groups": [{..., "params": [ids]}]}``.

        Ids number the parameters in order of first appearance over the groups.  As in
        torch, the state arrays are the live objects: deep-copy the result to snapshot it.
        """
        index: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {index[id(p)]: value for p, value in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict from :meth:`state_dict`, or a torch optimizer's as it is.

        Its torch tensors (state entries, a tensor lr) become ndarrays, as in
        ``Module.load_state_dict``.  Checks group and parameter counts (torch's errors) and
        state shapes, casts floating state to each parameter's dtype except ``step`` (as
        torch does), drops torch-only keys (``foreach``, ``fused``, ``capturable``,
        ``differentiable``), and only then replaces anything, so a rejected state_dict
        leaves the optimizer as it was.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(
            len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups, strict=True)
        ):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )
        id_map = {
            saved_id: p
            for g, s in zip(groups, saved_groups, strict=True)
            for saved_id, p in zip(s["params"], g["params"], strict=True)
        }

        new_state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                p = id_map[key]
                new_state[p] = {name: _cast_state(p, name, v) for name, v in value.items()}
            else:
                new_state[key] = copy.deepcopy(value)

        new_groups = []
        for group, saved in zip(groups, saved_groups, strict=True):
            merged = {k: _from_torch(v) for k, v in saved.items() if k not in TORCH_ONLY_KEYS}
            merged["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                merged["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                merged.setdefault(name, default)
            _squeeze_lr(merged)
            new_groups.append(merged)

        self.state = new_state
        self.param_groups = new_groups


def _typename(obj: Any) -> str:
    cls = type(obj)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _keyword_names(kernel: Callable[..., None]) -> tuple[str, ...]:
    """A kernel's keyword-only parameters: its hyperparameters and per-step numbers."""
    parameters = inspect.signature(kernel).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def _number(value: Any) -> Any:
    """A hyperparameter as the kernel takes it: flags as they are, numbers as Python floats."""
    return value if isinstance(value, bool) else float(value)


def _check_grad(p: Parameter) -> None:
    grad, data = p.grad, p.data
    if not isinstance(grad, np.ndarray) or grad.shape != data.shape:
        shape = getattr(grad, "shape", None)
        raise RuntimeError(f"grad of shape {shape} does not match parameter of shape {p.shape}")
    if grad.dtype != data.dtype:
        raise RuntimeError(f"grad dtype {grad.dtype} does not match parameter dtype {p.dtype}")


def _cast_state(p: Parameter, name: str, value: Any) -> Any:
    """One loaded state entry, copied and cast the way torch's ``load_state_dict`` does."""
    value = _from_torch(value)
    if isinstance(value, bool) or not isinstance(value, (np.ndarray, np.generic, float, int)):
        return copy.deepcopy(value)
    array = np.array(value)  # always a copy: loaded state never aliases the caller's dict
    if name == "step":
        # torch keeps the step counter as saved (a float32 0-d tensor); a bare Python
        # number becomes that same 0-d float32 counter so it can be incremented in place.
        return array if isinstance(value, np.ndarray) else array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating) and isinstance(value, np.ndarray):
        return array
    if array.ndim > 0 and array.shape != p.shape:
        raise ValueError(
            f"loaded state {name!r} has shape {array.shape}, but its parameter has shape {p.shape}"
        )
    return array.astype(p.dtype)


def _from_torch(value: Any) -> Any:
    """A torch tensor (on any device) as an ndarray copy, also inside a tuple or list (betas);
    anything else as it is.  Duck-typed, so that minireg never imports torch."""
    if isinstance(value, (tuple, list)):
        return type(value)(_from_torch(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)) or not hasattr(value, "__array__"):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, maybe on a GPU
        value = value.detach().cpu().numpy()
    return np.array(value)


def check_lr(lr: Any) -> None:
    """torch's check of a tensor learning rate, made before the value checks: an array (or
    tensor) lr must hold one element.  A 0-d or one-element array lr is accepted."""
    if hasattr(lr, "shape") and math.prod(lr.shape) != 1:
        raise ValueError("Tensor lr must be 1-element")


def _squeeze_lr(group: dict[str, Any]) -> None:
    """A one-element array lr of any shape becomes 0-d, which every step can read as a
    number (torch squeezes such a tensor lr when it steps, in ``_to_scalar``)."""
    lr = group.get("lr")
    if isinstance(lr, np.ndarray) and lr.ndim > 0 and lr.size == 1:
        group["lr"] = lr.reshape(())
