"""Flat parameter buffers: many Parameters stored end to end in one contiguous array.

A network's parameters are usually many small arrays, and an optimizer step over them is
one kernel call per array: a thousand arrays of 1e4 elements cost a thousand times the
per-call overhead of NumPy and Python, and the arrays are scattered through memory.
:func:`flatten_parameters` (public as ``minireg.nn.utils.flatten_parameters``) copies the
parameters (and their gradients) into one buffer each, then makes every
``Parameter.data`` and ``Parameter.grad`` a *view* of its slice.  Nothing about the
parameters changes for the rest of the code -- same shapes, same values, updated in
place -- but an optimizer that sees the whole group lie end to end steps it with a
single kernel call on the flat arrays (``Optimizer.step``'s fast path), and
``clip_grad_norm_`` takes the gradients' norms over the buffer and scales them all with
one multiplication (:mod:`minireg._engine.clip`).  Results are bit for bit those of the
per-parameter path: the kernels are elementwise, and the norms use the same dot product
per gradient.

The layout survives ``zero_grad(set_to_none=True)``: a gradient written later by a layer's
backward (:func:`minireg.parameter.accumulate_grad`) goes back into its slot of the
buffer (``Parameter._grad_slot``).  Assigning a new array to ``param.data`` or
``param.grad`` by hand, or ``Module.to(dtype)``, takes that parameter out of the buffer;
the fast paths then simply do not apply.

Recognising the layout must be cheap, as the optimizers and the clipping functions ask on
every call, and it is done here only, one way: whoever splits a buffer into views --
:func:`flatten_parameters` for data and gradients, the optimizers' flat path for the
state it makes (``minireg._engine.optim``) -- records it with :func:`remember_slots`:
the ``id`` of each view, in buffer order.  :func:`span_of`, :func:`grad_buffer_in_order`
and :func:`whole_grad_buffer` then compare the ``id`` of the arrays they are given with
that record (no addresses, no per-array Python calls beyond ``id``).  An ``id`` names one
object only while it lives, so a record is dropped as soon as any of its views dies (a
weak reference with a callback; the record itself keeps nothing alive): a record that
exists names live arrays, and equal ids mean the very same arrays.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from minireg.parameter import Parameter

__all__ = [
    "FlatParameters",
    "flatten_parameters",
    "grad_buffer_in_order",
    "remember_slots",
    "span_of",
    "whole_grad_buffer",
]


class _Slots(NamedTuple):
    """What :func:`remember_slots` records about a buffer's slot views."""

    buffer: weakref.ref[np.ndarray]
    ids: list[int]  # id() of each slot array, in buffer order
    position: dict[int, int]  # id() -> its index in ids
    sizes: list[int]  # their element counts
    starts: list[int]  # where each slot starts in the buffer, then the end of the last
    watches: tuple[weakref.ref[np.ndarray], ...]  # drop the record when a slot dies


_slots: dict[int, _Slots] = {}  # id(buffer) -> its slots


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
    data_slots, grad_slots, start = [], [], 0
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
        data_slots.append(data_view)
        grad_slots.append(grad_view)
        start = stop
    remember_slots(data, data_slots)
    remember_slots(grad, grad_slots)
    return FlatParameters(data, grad)


def remember_slots(buffer: np.ndarray, slots: list[np.ndarray]) -> None:
    """Record that ``slots`` are views of the 1-d ``buffer``, end to end in this order."""
    key = id(buffer)

    def forget(_: object) -> None:  # a slot array died: its id may be reused
        _slots.pop(key, None)

    ids = [id(s) for s in slots]
    sizes = [s.size for s in slots]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    watches = tuple(weakref.ref(s, forget) for s in slots)
    position = {slot_id: index for index, slot_id in enumerate(ids)}
    _slots[key] = _Slots(weakref.ref(buffer), ids, position, sizes, starts, watches)


def _slots_of(arrays: list[np.ndarray]) -> tuple[np.ndarray, _Slots] | None:
    """The buffer the first of ``arrays`` is a slot of, and the record of its slots."""
    if not arrays or not isinstance(arrays[0], np.ndarray):
        return None
    buffer = arrays[0].base
    record = _slots.get(id(buffer))
    if buffer is None or record is None or record.buffer() is not buffer:
        return None
    return buffer, record


def span_of(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-d piece of a recorded buffer that ``arrays`` tile, in order; else ``None``.

    ``arrays`` must be consecutive slots of one buffer, each exactly the recorded view
    (not a copy, not another view of the same memory): then writing into the piece
    writes into every one of them.
    """
    found = _slots_of(arrays)
    if found is None:
        return None
    buffer, record = found
    first = record.position.get(id(arrays[0]))
    if first is None or list(map(id, arrays)) != record.ids[first : first + len(arrays)]:
        return None
    return buffer[record.starts[first] : record.starts[first + len(arrays)]]


def grad_buffer_in_order(grads: list[np.ndarray]) -> tuple[np.ndarray, list[int]] | None:
    """``(buffer, sizes)`` when ``grads`` are all the slots of one grad buffer, in its order.

    Then a per-gradient result computed over the buffer (the slots tile it, each
    starting where the previous one ends) lines up with ``grads``; ``sizes`` are their
    element counts (the record's list: do not change it).  ``None`` otherwise.
    """
    found = _slots_of(grads)
    if found is None or list(map(id, grads)) != found[1].ids:
        return None
    return found[0], found[1].sizes


def whole_grad_buffer(grads: list[np.ndarray]) -> np.ndarray | None:
    """The grad buffer of one :func:`flatten_parameters` call, if ``grads`` are all of it.

    That is: distinct arrays, each a slot of the same buffer, and every slot among them
    (in any order) -- so they cover the buffer, and an operation that treats every
    element alike can run on the buffer instead of on each gradient.  ``None`` otherwise.
    """
    found = _slots_of(grads)
    if found is None or len(grads) != len(found[1].ids):
        return None
    if set(map(id, grads)) != found[1].position.keys():
        return None
    return found[0]
