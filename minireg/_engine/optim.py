"""The optimizers' fast path: blocked, threaded twins, and one call per flat group.

``Optimizer.step`` (``minireg/optim/optimizer.py``) calls :func:`step_group` unless the
optimizer was built with ``foreach=False``.  Two things make that step fast without
changing any bit of its result:

- **Blocked twins.**  Each parameter is stepped by the kernel's in-place twin
  (:mod:`minireg._engine.optim_twins`) through :func:`minireg._engine.blocking.apply_blocked`:
  cache-sized slices, shared among threads, intermediates in per-thread scratch arrays.
- **Flat groups.**  When a group's data, gradients and per-element state each lie end to
  end in one buffer (the layout :func:`minireg.nn.utils.flatten_parameters` makes), the
  whole group is stepped by a single kernel call on stand-in arrays spanning the
  buffers.  The kernels are elementwise, so every element gets exactly the operations it
  gets one parameter at a time.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from minireg._engine.blocking import apply_blocked
from minireg._engine.flat import remember_slots, span_of
from minireg.parameter import Parameter

if TYPE_CHECKING:
    from minireg.optim.optimizer import Optimizer

_data = operator.attrgetter("data")
_grad = operator.attrgetter("grad")
_data_base = operator.attrgetter("data.base")


@functools.cache
def blocked_twin(kernel: Callable[..., Any]) -> Callable[..., None]:
    """A drop-in for ``kernel`` that runs its in-place twin over blocks (see the module doc)."""
    # Imported here: the twins import the kernels' modules, which import the Optimizer,
    # which imports this module.
    from minireg._engine.optim_twins import TWINS

    twin, scratch = TWINS[kernel.__name__]
    return functools.partial(apply_blocked, twin, scratch=scratch)


def step_group(optimizer: Optimizer, group: dict[str, Any]) -> None:
    """Step every parameter of ``group`` that has a gradient: in one call when flat."""
    if _step_flat(optimizer, group):
        return
    kernel = blocked_twin(optimizer.kernel)
    for p in group["params"]:
        if p.grad is not None:
            optimizer._step_param(p, group, kernel)


def init_group_state(optimizer: Optimizer, group: dict[str, Any]) -> None:
    """Make every parameter's state now (Adagrad does at construction, as torch).

    For a group in one flat buffer the state is made once for the whole group and split
    into views, so it is flat too and the flat step applies.
    """
    params = group["params"]
    data = span_of([p.data for p in params]) if len(params) > 1 else None
    if data is None:
        for p in params:
            optimizer.state[p] = optimizer._init_state(p, group)
        return
    states: list[dict[str, Any]] = [{} for _ in params]
    for p, s in zip(params, states, strict=True):
        optimizer.state[p] = s
    whole = optimizer._init_state(Parameter(data), group)
    _scatter(optimizer, params, states, whole, {})


def _step_flat(optimizer: Optimizer, group: dict[str, Any]) -> bool:
    """Step the whole group with one kernel call when it lies in flat buffers.

    That needs: the group's data, gradients and every per-element state entry each end
    to end in one array, in group order; a gradient for every parameter; equal
    per-parameter numbers (``step``).  Then one call runs on a stand-in Parameter whose
    data and grad span the group, with state entries spanning theirs.  Returns ``False``
    (nothing done) for any other layout.
    """
    # (map and attrgetter walk the parameters in C: this runs on every step)
    params = group["params"]
    if len(params) < 2 or any(grad is None for grad in map(_grad, params)):
        return False
    owner = params[0].data.base  # cheap test first: all data views of one array?
    if owner is None or not all(map(operator.is_, map(_data_base, params), repeat(owner))):
        return False
    states = list(map(optimizer.state.__getitem__, params))
    keys = list(states[0])
    if not all(map(len(keys).__eq__, map(len, states))):
        return False  # (same number of keys here; a missing one raises KeyError below)
    scalar_keys = [k for k in keys if k in optimizer.scalar_state]
    element_keys = sorted(k for k in keys if k not in optimizer.scalar_state)
    try:
        for key in scalar_keys:  # e.g. all step counters equal
            values = list(map(float, map(operator.itemgetter(key), states)))
            if values.count(values[0]) != len(values):
                return False
        layout = _flat_layout(params, states, element_keys)
    except KeyError:
        return False
    if layout is None:
        return False
    flat = Parameter(layout["data"])
    flat.grad = layout["grad"]
    state: dict[str, Any] = {key: copy.deepcopy(states[0][key]) for key in scalar_keys}
    state.update({key: layout[key] for key in element_keys})
    if not keys:  # a parameter's first step: make the state once, for the whole group
        state.update(optimizer._init_state(flat, group))
    optimizer._step_param(flat, group, blocked_twin(optimizer.kernel), state)
    _scatter(optimizer, params, states, state, layout)
    return True


def _flat_layout(
    params: list[Parameter], states: list[dict[str, Any]], element_keys: list[str]
) -> dict[str, np.ndarray] | None:
    """The spans over the group's data, grads and element state, or ``None``
    (:func:`minireg._engine.flat.span_of`: each must be recorded views, end to end)."""
    arrays = {"data": list(map(_data, params)), "grad": list(map(_grad, params))}
    arrays.update({key: list(map(operator.itemgetter(key), states)) for key in element_keys})
    spans: dict[str, np.ndarray] = {}
    for key, values in arrays.items():
        span = span_of(values)
        if span is None:
            return None
        spans[key] = span
    return spans


def _scatter(
    optimizer: Optimizer,
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
        if key in optimizer.scalar_state:
            for s in states:
                counter = s.get(key)
                if type(counter) is np.ndarray:
                    counter[...] = value
                else:
                    s[key] = copy.deepcopy(value)
        elif layout.get(key) is not value:  # made in this step: split it into views
            start, views = 0, []
            for p, s in zip(params, states, strict=True):
                s[key] = value[start : start + p.size].reshape(p.shape)
                views.append(s[key])
                start += p.size
            remember_slots(value, views)
