"""The fast path of gradient clipping: flat buffers, runs of equal sizes, threads.

``clip_grad_norm_`` reads as torch's: a norm per gradient, the norm of those norms, then
every gradient multiplied by the clip coefficient.  Its numerics helpers
(:func:`minireg.numerics.vector_norms` and :func:`minireg.numerics.scale_`) hand the
work here unless ``foreach=False``, and get the same bits back:

- :func:`two_norms`: the 2-norms of many gradients of one dtype, as Python floats rather
  than one 0-d array per gradient; over a flat gradient buffer (``flatten_parameters``),
  taken in the buffer's order, one ``np.vecdot`` per run of equal-sized gradients
  (:func:`sums_of_squares_in_buffer`), shared among the threads when large;
- :func:`scale_`: the gradients multiplied in place, a whole flat buffer in one
  multiplication, large arrays in cache-sized blocks shared among the threads
  (:func:`minireg._engine.blocking.apply_blocked`).

:func:`sum_of_squares` is the twin of :func:`minireg.numerics.sum_of_squares` (the same
blocks, the same dots, the same float64 additions): ``reference_tests/test_flat.py`` and
``test_clip_grad.py`` check them against each other bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minireg._engine import blocking
from minireg._engine.flat import grad_buffer_in_order, whole_grad_buffer

__all__ = ["scale_", "sum_of_squares", "sums_of_squares_in_buffer", "two_norms"]


# ------------------------------------------------------------------------------ norms
def sum_of_squares(x: np.ndarray) -> float:
    """The twin of :func:`minireg.numerics.sum_of_squares`: one ``dot`` per block of
    ``BLOCK_BYTES``, the partial sums added in float64; one block needs no loop."""
    flat = x if x.ndim == 1 else x.reshape(-1)  # np.dot of 2-d arrays would be a matmul
    block = max(1, blocking.BLOCK_BYTES // flat.itemsize)
    if flat.size <= block:  # the common case of many small gradients
        return float(flat.dot(flat))
    total = 0.0
    for start in range(0, flat.size, block):
        part = flat[start : start + block]
        total += float(part.dot(part))
    return total


def sums_of_squares_in_buffer(buffer: np.ndarray, sizes: list[int]) -> np.ndarray:
    r""":func:`sum_of_squares` of each of the consecutive slices of ``buffer`` with ``sizes``.

    The same float64 numbers as calling it slice by slice, with fewer calls: a run of
    equal-sized slices of at most one block is one ``np.vecdot`` over them as the rows of
    a matrix (it takes each row's dot with the very BLAS routine ``ndarray.dot`` uses),
    shared among the threads when large (``minireg.set_num_threads``).
    """
    sums = np.empty(len(sizes))
    block = max(1, blocking.BLOCK_BYTES // buffer.itemsize)
    first = start = 0
    while first < len(sizes):
        size = sizes[first]
        last = first + 1
        while last < len(sizes) and sizes[last] == size:
            last += 1
        stop = start + (last - first) * size
        if size <= block:
            rows = buffer[start:stop].reshape(last - first, size)
            _row_dots(rows, sums[first:last])
        else:
            for i, offset in enumerate(range(start, stop, size)):
                sums[first + i] = sum_of_squares(buffer[offset : offset + size])
        first, start = last, stop
    return sums


def _row_dots(rows: np.ndarray, out: np.ndarray) -> None:
    threads = min(blocking.get_num_threads(), len(rows))
    if threads == 1 or rows.nbytes < blocking.THREADED_MIN_BYTES:
        out[...] = np.vecdot(rows, rows)
        return
    cuts = [len(rows) * k // threads for k in range(threads + 1)]

    def part(k: int) -> None:
        part_rows = rows[cuts[k] : cuts[k + 1]]
        out[cuts[k] : cuts[k + 1]] = np.vecdot(part_rows, part_rows)

    blocking.run_in_threads(part, range(threads))


def two_norms(tensors: list[np.ndarray]) -> np.ndarray | None:
    r"""The 2-norm of each of ``tensors`` (one dtype), stacked; ``None`` for mixed dtypes.

    Each is :math:`\sqrt{\cdot}` of its float64 sum of squares rounded to the dtype, as
    ``numerics.vector_norm(x, 2)``; over a flat buffer in its order, by
    :func:`sums_of_squares_in_buffer`.
    """
    flat = grad_buffer_in_order(tensors)
    if flat is not None:
        buffer, sizes = flat
        return np.sqrt(sums_of_squares_in_buffer(buffer, sizes)).astype(buffer.dtype)
    dtype = tensors[0].dtype
    if any(x.dtype != dtype for x in tensors):
        return None
    return np.sqrt([sum_of_squares(x) for x in tensors]).astype(dtype)


# ------------------------------------------------------------------------------ scaling
def _multiply_(grad: np.ndarray, *, coefficient: Any) -> None:
    np.multiply(grad, coefficient, out=grad)


def scale_(grads: list[np.ndarray], coefficient: np.ndarray) -> None:
    """Every gradient multiplied in place by ``coefficient`` rounded to its dtype.

    The gradients of a whole flat buffer (in any order) are one multiplication of the
    buffer; arrays from ``THREADED_MIN_BYTES`` on go through ``apply_blocked`` (threads),
    smaller ones are one ``np.multiply`` each (sparing ``apply_blocked``'s ~1 us a call).
    """
    flat = whole_grad_buffer(grads)
    scales: dict[np.dtype, Any] = {}  # the coefficient in each dtype
    for grad in grads if flat is None else [flat]:
        if grad.dtype not in scales:
            scales[grad.dtype] = coefficient.astype(grad.dtype)[()]
        if grad.nbytes < blocking.THREADED_MIN_BYTES:
            _multiply_(grad, coefficient=scales[grad.dtype])
        else:
            blocking.apply_blocked(_multiply_, grad, coefficient=scales[grad.dtype])
