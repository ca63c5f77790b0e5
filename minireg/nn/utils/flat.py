"""Flat parameter buffers: many Parameters stored end to end in one contiguous array.

A network's parameters are usually many small arrays, and an optimizer step over them is
one kernel call per array: a thousand arrays of 1e4 elements cost a thousand times the
per-call overhead of NumPy and Python, and the arrays are scattered through memory.
:func:`flatten_parameters` copies the parameters (and their gradients) into one buffer
each, then makes every ``Parameter.data`` and ``Parameter.grad`` a *view* of its slice.
Nothing about the parameters changes for the rest of the code -- same shapes, same
values, updated in place -- but an optimizer that sees the whole group lie end to end
steps it with a single kernel call on the flat arrays (``Optimizer.step``'s fast path),
and ``clip_grad_norm_`` takes the gradients' norms over the buffer and scales them all
with one multiplication.  Results are bit for bit those of the per-parameter path: the
kernels are elementwise, and the norms use the same dot product per gradient.

The layout survives ``zero_grad(set_to_none=True)``: a gradient written later by a layer's
backward (:func:`minireg.parameter.accumulate_grad`) goes back into its slot of the
buffer.  Assigning a new array to ``param.data`` or ``param.grad`` by hand, or
``Module.to(dtype)``, takes that parameter out of the buffer; the optimizers then simply
use their per-parameter path.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate
from typing import Any, NamedTuple

import numpy as np

from minireg.parameter import Parameter

__all__ = [
    "FlatParameters",
    "flatten_parameters",
    "grad_buffer_in_order",
    "whole_grad_buffer",
]


class FlatParameters(NamedTuple):
    """The two buffers :func:`flatten_parameters` made: every parameter's data and grad."""

    data: np.ndarray
    grad: np.ndarray


def flatten_parameters(parameters: Parameter | Iterable[Parameter]) -> FlatParameters:
    """Move ``parameters`` into one data buffer and one grad buffer; return both buffers.

    The parameters are laid out in the order given (give the same order as the
    optimizer's param group to get its fast path).  Each ``param.data`` becomes a view of
    its slice of ``data`` holding the same values; a present ``param.grad`` is copied into
    its slice of ``grad`` and replaced by the view, and a missing one stays ``None``
    (its slot is zero, and the next gradient accumulated into the parameter lands there).

    Raises ``ValueError`` for an empty list, a parameter given twice, or parameters of
    different dtypes (one buffer holds one dtype).
    """
    params = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    if not params:
        raise ValueError("flatten_parameters got an empty parameter list")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("flatten_parameters got the same parameter more than once")
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1:
        shown = ", ".join(sorted(str(d) for d in dtypes))
        raise ValueError(f"flatten_parameters needs parameters of one dtype, got {shown}")
    dtype = dtypes.pop()
    total = sum(p.size for p in params)
    data = np.empty(total, dtype=dtype)
    grad = np.zeros(total, dtype=dtype)
    start = 0
    for p in params:
        stop = start + p.size
        data_view = data[start:stop].reshape(p.shape)
        grad_view = grad[start:stop].reshape(p.shape)
        data_view[...] = p.data
        if p.grad is not None:
            grad_view[...] = p.grad
            p.grad = grad_view
        p.data = data_view
        p._grad_slot = grad_view
        p._grad_offset = start
        start = stop
    return FlatParameters(data, grad)


def _grad_slots(parameters: list[Parameter]) -> tuple[np.ndarray, list[Any], list[int]] | None:
    """``(buffer, offsets, sizes)`` when every gradient sits in its slot of one 1-D buffer.

    That is: each ``param.grad`` is the very slot :func:`flatten_parameters` made for it,
    and all slots are views of the same buffer.  ``None`` otherwise.  Cheap (identity
    checks only), unlike comparing addresses, so ``clip_grad_norm_`` can ask on every call.
    """
    if not parameters:
        return None
    owner = getattr(parameters[0].grad, "base", None)
    if not isinstance(owner, np.ndarray) or owner.ndim != 1:
        return None
    offsets, sizes = [], []
    for p in parameters:
        grad = p.grad
        if grad is None or grad is not getattr(p, "_grad_slot", None) or grad.base is not owner:
            return None
        offsets.append(getattr(p, "_grad_offset", None))
        sizes.append(grad.size)
    return owner, offsets, sizes


def whole_grad_buffer(parameters: list[Parameter]) -> np.ndarray | None:
    """The grad buffer of one :func:`flatten_parameters` call, if ``parameters`` are all of it.

    That is: distinct parameters, each gradient in its slot of the same buffer, and as
    many elements as the buffer holds -- so the slots (disjoint, by construction) cover it
    and an operation that treats every element alike can run on the buffer instead of on
    each gradient.  ``None`` otherwise.
    """
    slots = _grad_slots(parameters)
    if slots is None or len({id(p) for p in parameters}) != len(parameters):
        return None
    owner, _, sizes = slots
    return owner if sum(sizes) == owner.size else None


def grad_buffer_in_order(parameters: list[Parameter]) -> tuple[np.ndarray, list[int]] | None:
    """``(buffer, sizes)`` when the gradients of ``parameters``, in this order, tile a buffer.

    Like :func:`whole_grad_buffer`, but the parameters must also come in the buffer's own
    order, each slot starting where the previous one ends, so that a per-gradient result
    computed over the buffer lines up with ``parameters``.  ``sizes`` are the gradients'
    element counts.
    """
    slots = _grad_slots(parameters)
    if slots is None:
        return None
    owner, offsets, sizes = slots
    starts = list(accumulate(sizes, initial=0))
    if offsets != starts[:-1] or starts[-1] != owner.size:
        return None
    return owner, sizes
