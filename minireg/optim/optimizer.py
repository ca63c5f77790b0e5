"""`Optimizer`: the bookkeeping every optimizer shares (param groups, state, state_dict).

The maths lives elsewhere: each optimizer module has a plain kernel function on ndarrays
(``sgd``, ``adam``, ...) and a small class that feeds it.  This file only organises
parameters and their state the way ``torch.optim.Optimizer`` does, so that a state_dict
moves between minireg and torch unchanged.
"""

from __future__ import annotations

import copy
import math
import operator
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

import numpy as np

from minireg._engine.blocking import contiguous_span
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


def check_betas(betas: tuple[float, float]) -> None:
    """torch's beta checks: each beta in [0, 1)."""
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def new_step_counter() -> np.ndarray:
    """A 0-d float32 step counter, as torch keeps ``state["step"]`` (it saturates at 2**24)."""
    return np.zeros((), dtype=np.float32)


def increment(counter: np.ndarray) -> float:
    """``counter += 1`` in the counter's own dtype; returns the new value as a Python float."""
    counter += np.float32(1) if counter.dtype == np.float32 else 1
    return float(counter)


def regularized_gradient(
    grad: np.ndarray, param: np.ndarray, weight_decay: float, maximize: bool, out: np.ndarray
) -> np.ndarray:
    r"""The gradient a kernel follows, :math:`g = \pm\nabla_\theta f + \lambda\theta`.

    ``-grad`` when ``maximize``, plus ``weight_decay * param`` (L2 decay) when that is not
    0.  Written into ``out`` when there is something to compute; otherwise ``grad`` itself
    is returned (and must not be written to).  ``\lambda\theta - \nabla`` is computed for
    ``-\nabla + \lambda\theta``: floating-point ``+`` commutes, and ``x - y`` *is* ``x + (-y)``.
    """
    if weight_decay == 0:
        return np.negative(grad, out=out) if maximize else grad
    np.multiply(param, weight_decay, out=out)
    if maximize:
        out -= grad
    else:
        out += grad
    return out


def ema_of_squares_(average: np.ndarray, x: np.ndarray, decay: float, tmp: np.ndarray) -> None:
    r"""``average <- decay * average + ((1 - decay) * x) * x`` in place, as torch rounds it.

    The running mean of squares behind Adam's :math:`v_t`, RMSprop's and Adadelta's
    (torch: ``average.mul_(decay).addcmul_(x, x, value=1 - decay)``).  ``tmp``, shaped
    like ``average``, holds the weighted square.
    """
    weighted_square = np.multiply(x, 1 - decay, out=tmp)
    weighted_square *= x
    average *= decay
    average += weighted_square


class Optimizer:
    """Base class: holds ``param_groups`` and per-parameter ``state`` like torch.

    Subclasses implement ``_init_state(param, group)`` (the state torch creates on a
    parameter's first step) and ``_update(param, state, group)`` (one call of the kernel).
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, (Parameter, np.ndarray)):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors "
                "or dicts, but got " + _typename(params)
            )
        self.state: defaultdict[Parameter, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        # id(group) -> (group, its arrays, their flat spans or None): see _flat_layout.
        self._flat_cache: dict[
            int, tuple[dict[str, Any], dict[str, list], dict[str, np.ndarray] | None]
        ] = {}

        param_groups: list[Any] = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle/copy without a scheduler's wrapper around ``step`` (torch leaves it out too)
        and without the cache of flat layouts (it is found again on the next step)."""
        skipped = ("step", "_opt_called", "_flat_cache")
        return {k: v for k, v in self.__dict__.items() if k not in skipped}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._flat_cache = {}

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
                "the ordering of tensors in sets will change between runs. Please use a list instead."
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
                    "all optimizer params should be with/without names. Some param names are missing"
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
            if self._step_flat(group):
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state.update(self._init_state(p, group))
                self._update(p, state, group)
        return loss

    # State entries that are one number per parameter (a 0-d array), not one per element.
    # Subclasses with more (NAdam's mu_product) extend it.
    _scalar_state: tuple[str, ...] = ("step",)

    def _step_flat(self, group: dict[str, Any]) -> bool:
        """Step the whole group with one ``_update`` call when it lies in flat buffers.

        That is the layout :func:`minireg.nn.utils.flatten_parameters` makes: the group's
        data, gradients and every per-element state entry each lie end to end in one
        array, all in group order, every parameter has a gradient, and the per-parameter
        numbers (``step``) agree.  Then ``_update`` runs once on a stand-in Parameter whose
        data and grad span the whole group, with state entries spanning theirs; since the
        kernels are elementwise, every element gets exactly the operations it gets one
        parameter at a time.  Returns ``False`` (nothing done) for any other layout.
        """
        # (map and attrgetter walk the parameters in C: this runs on every step)
        params = group["params"]
        if len(params) < 2 or any(grad is None for grad in map(_grad, params)):
            return False
        owner = params[0].data.base  # cheap test first: all data views of one array?
        if owner is None or not all(map(operator.is_, map(_data_base, params), repeat(owner))):
            return False
        states = list(map(self.state.__getitem__, params))
        keys = list(states[0])
        if not all(map(len(keys).__eq__, map(len, states))):
            return False  # (same number of keys here; a missing one raises KeyError below)
        scalar_keys = [k for k in keys if k in self._scalar_state]
        element_keys = sorted(k for k in keys if k not in self._scalar_state)
        try:
            for key in scalar_keys:  # e.g. all step counters equal
                values = list(map(float, map(operator.itemgetter(key), states)))
                if values.count(values[0]) != len(values):
                    return False
            layout = self._flat_layout(group, params, states, element_keys)
        except KeyError:
            return False
        if layout is None:
            return False
        flat = Parameter(layout["data"])
        flat.grad = layout["grad"]
        state: dict[str, Any] = {key: copy.deepcopy(states[0][key]) for key in scalar_keys}
        state.update({key: layout[key] for key in element_keys})
        if not keys:  # a parameter's first step: make the state once, for the whole group
            state.update(self._init_state(flat, group))
        self._update(flat, state, group)
        self._scatter(params, states, state, layout)
        return True

    def _init_group_state(self, group: dict[str, Any]) -> None:
        """Make every parameter's state now (Adagrad does at construction, as torch).

        For a group in one flat buffer the state is made once for the whole group and
        split into views, so it is flat too and :meth:`_step_flat` applies.
        """
        params = group["params"]
        data = contiguous_span([p.data for p in params]) if len(params) > 1 else None
        if data is None:
            for p in params:
                self.state[p] = self._init_state(p, group)
            return
        states: list[dict[str, Any]] = [{} for _ in params]
        for p, s in zip(params, states):
            self.state[p] = s
        self._scatter(params, states, self._init_state(Parameter(data), group), {})

    def _flat_layout(
        self,
        group: dict[str, Any],
        params: list[Parameter],
        states: list[dict[str, Any]],
        element_keys: list[str],
    ) -> dict[str, np.ndarray] | None:
        """The spans over the group's data, grads and element state, or ``None``.

        Finding them checks every array's address; the answer (also a ``None``) is cached
        per group and reused as long as the very same array objects are in place.
        """
        arrays = {"data": list(map(_data, params)), "grad": list(map(_grad, params))}
        arrays.update({key: list(map(operator.itemgetter(key), states)) for key in element_keys})
        cached = self._flat_cache.get(id(group))
        if (
            cached is not None
            and cached[0] is group
            and cached[1].keys() == arrays.keys()
            and all(all(map(operator.is_, arrays[k], cached[1][k])) for k in arrays)
        ):
            return cached[2]
        layout: dict[str, np.ndarray] | None = {}
        for key, values in arrays.items():
            span = contiguous_span(values)
            if span is None:  # not flat: remembered too, so later steps do not look again
                layout = None
                break
            layout[key] = span
        self._flat_cache[id(group)] = (group, arrays, layout)
        return layout

    def _scatter(
        self,
        params: list[Parameter],
        states: list[dict[str, Any]],
        state: dict[str, Any],
        layout: dict[str, np.ndarray],
    ) -> None:
        """Hand the flat step's state back to each parameter.

        Numbers (``step``) are written into each parameter's own counter; a per-element
        entry made during this step (the state's first step, SGD's momentum buffer) is
        split into views, one per parameter, so the state stays flat for the next step.
        """
        for key, value in state.items():
            if key in self._scalar_state:
                for s in states:
                    counter = s.get(key)
                    if type(counter) is np.ndarray:
                        counter[...] = value
                    else:
                        s[key] = copy.deepcopy(value)
            elif layout.get(key) is not value:
                start = 0
                for p, s in zip(params, states):
                    s[key] = value[start : start + p.size].reshape(p.shape)
                    start += p.size

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        """The state torch creates the first time ``param`` is stepped."""
        raise NotImplementedError

    def _update(self, param: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Apply this optimizer's kernel to one parameter."""
        raise NotImplementedError

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
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group "
                "that doesn't match the size of optimizer's group"
            )
        id_map = {
            saved_id: p
            for g, s in zip(groups, saved_groups)
            for saved_id, p in zip(s["params"], g["params"])
        }

        new_state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                p = id_map[key]
                new_state[p] = {name: _cast_state(p, name, v) for name, v in value.items()}
            else:
                new_state[key] = copy.deepcopy(value)

        new_groups = []
        for group, saved in zip(groups, saved_groups):
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
        self._flat_cache = {}


def _typename(obj: Any) -> str:
    cls = type(obj)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_data = operator.attrgetter("data")
_grad = operator.attrgetter("grad")
_data_base = operator.attrgetter("data.base")


def _check_grad(p: Parameter) -> None:
    grad, data = p.grad, p.data
    if not isinstance(grad, np.ndarray) or grad.shape != data.shape:
        raise RuntimeError(
            f"grad of shape {getattr(grad, 'shape', None)} does not match parameter of shape {p.shape}"
        )
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
