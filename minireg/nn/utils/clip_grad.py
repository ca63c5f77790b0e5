"""Gradient clipping: rescale all gradients together, or clamp each element.

Clipping by the global norm is from Pascanu, Mikolov & Bengio (2013), "On the difficulty
of training recurrent neural networks": when the norm of the whole gradient exceeds a
threshold, scale it back onto the sphere of that radius, keeping its direction.

Torch's four public functions are here with torch 2.13's semantics; the two kernels they
share, :func:`vector_norm` and :func:`clip_coefficient`, carry the equations.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

from minireg._engine import blocking as _blocking
from minireg._engine.blocking import apply_blocked
from minireg.nn.utils.flat import grad_buffer_in_order, whole_grad_buffer
from minireg.parameter import Parameter

__all__ = [
    "clip_coefficient",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "scale_",
    "sums_of_squares_in_buffer",
    "vector_norm",
]

ParametersT = Parameter | Iterable[Parameter]
ArraysT = np.ndarray | Parameter | Iterable[np.ndarray | Parameter]


# ------------------------------------------------------------------------------ kernels
def sum_of_squares(x: np.ndarray) -> float:
    r"""The float64 sum :math:`\sum_i x_i^2` over all of ``x``, accurate for large arrays.

    .. math:: \sum_i x_i^2 = \sum_{b} \Big(\sum_{i \in b} x_i^2\Big)

    A float32 sum over 1e7 elements accumulated in float32 (``np.linalg.norm``'s dot, or
    a strided sum) drifts by many ULPs.  Here each block ``b`` of ``BLOCK_BYTES`` is one
    ``dot`` (fast: SIMD products and a short float32 accumulation per lane) and the
    blocks' partial sums are added in float64, so the relative error stays near float32's
    rounding (measured 2e-10 at 1e7 elements; test_clip_grad.py holds it to 1e-6).
    Overflow is not guarded against, as in torch: a block whose sum exceeds float32's
    range gives ``inf``.
    """
    flat = x if x.ndim == 1 else x.reshape(-1)  # np.dot of 2-d arrays would be a matmul
    block = max(1, _blocking.BLOCK_BYTES // flat.itemsize)
    if flat.size <= block:  # one block: no loop (the common case of many small gradients)
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
    block = max(1, _blocking.BLOCK_BYTES // buffer.itemsize)
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
    threads = min(_blocking.get_num_threads(), len(rows))
    if threads == 1 or rows.nbytes < _blocking.THREADED_MIN_BYTES:
        out[...] = np.vecdot(rows, rows)
        return
    cuts = [len(rows) * k // threads for k in range(threads + 1)]

    def part(k: int) -> None:
        part_rows = rows[cuts[k] : cuts[k + 1]]
        out[cuts[k] : cuts[k + 1]] = np.vecdot(part_rows, part_rows)

    _blocking.run_in_threads(part, range(threads))


def vector_norm(x: np.ndarray, ord: float) -> np.ndarray:
    r"""The p-norm of ``x`` viewed as one vector, as a 0-d array in ``x``'s dtype.

    .. math::
        \|x\|_p = \Big(\sum_i |x_i|^p\Big)^{1/p}, \qquad
        \|x\|_\infty = \max_i |x_i|, \qquad
        \|x\|_{-\infty} = \min_i |x_i|, \qquad
        \|x\|_0 = \#\{i : x_i \neq 0\}

    The sum formula also serves every other ``p`` torch accepts: fractional ``0 < p < 1``
    and negative ``p`` (where a zero element makes the sum infinite and the norm 0).
    As in torch, there is no rescaling against overflow (``(1e20)**2`` is ``inf`` in
    float32) and NaN propagates (``p = 0`` counts a NaN as non-zero).
    """
    if x.size == 0 and (ord < 0 or ord == math.inf):
        # max, min and the negative powers have no value on an empty set.  The inf case is
        # caught by torch's _foreach_norm (the path clip_grad_norm_ takes), the rest by
        # linalg.vector_norm, hence the two wordings.
        if ord == math.inf:
            raise RuntimeError(
                "_foreach_norm cannot compute the infinity norm on an empty tensor because "
                "the operation does not have an identity"
            )
        raise RuntimeError(
            f"linalg.vector_norm cannot compute the {ord:g} norm on an empty tensor because "
            "the operation does not have an identity"
        )
    if ord == 2:  # the common case, without a temporary: sqrt of an accurate sum of squares
        return np.asarray(math.sqrt(sum_of_squares(x)), dtype=x.dtype)
    magnitude = np.abs(x)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if ord == 0:
            norm = np.sum(x != 0, dtype=x.dtype)
        elif ord == math.inf:
            norm = np.max(magnitude)
        elif ord == -math.inf:
            norm = np.min(magnitude)
        elif ord == 1:
            norm = np.sum(magnitude)
        else:
            # torch takes the 1/p in the accumulation dtype: 1/p rounded to float32 for float32.
            norm = np.sum(magnitude**ord) ** (x.dtype.type(1) / x.dtype.type(ord))
    return np.asarray(norm, dtype=x.dtype)


def scale_(grad: np.ndarray, *, coefficient: np.generic) -> None:
    r""":math:`g \leftarrow c\,g` in place, with :math:`c` already in ``grad``'s dtype."""
    np.multiply(grad, coefficient, out=grad)


def clip_coefficient(max_norm: float, total_norm: np.ndarray) -> np.ndarray:
    r"""The factor that every gradient is multiplied by (Pascanu et al., 2013, Alg. 2):

    .. math::
        c = \min\Big(\frac{\text{max\_norm}}{\|g\| + 10^{-6}},\; 1\Big)

    computed in ``total_norm``'s dtype.  The :math:`10^{-6}` keeps a zero norm finite; in
    float32 it vanishes once :math:`\|g\| > 16` (below half an ULP), and at
    :math:`\|g\| = \text{max\_norm}` it makes :math:`c` slightly below 1, not 1.
    """
    denominator = total_norm + 1e-6
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf and NaN pass through
        # torch evaluates max_norm / t as reciprocal(t) * max_norm (Tensor.__rtruediv__).
        coefficient = np.reciprocal(denominator) * max_norm
    return np.asarray(np.minimum(coefficient, 1.0), dtype=total_norm.dtype)


# ------------------------------------------------------------------------------ bookkeeping
def _grads_of(parameters: Iterable[Parameter]) -> list[np.ndarray]:
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(
    tensors: ArraysT, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> np.ndarray:
    r"""The norm of all ``tensors`` taken together: the ``norm_type``-norm of their norms,

    .. math::
        \|(x_1, \dots, x_k)\|_p = \big\|\,(\|x_1\|_p, \dots, \|x_k\|_p)\,\big\|_p,

    which equals the norm of their concatenation for every ``p`` except 0 (there it counts
    the tensors with a non-zero element, as torch does).  Each tensor's norm is taken in
    its own dtype; stacking them promotes (float32 with float64 gives float64).  With no
    tensors the result is ``0.0`` in float32.  A NaN or infinite total raises
    ``RuntimeError`` when ``error_if_nonfinite``.
    """
    if isinstance(tensors, (np.ndarray, np.generic, Parameter)):
        tensors = [tensors]
    else:
        tensors = list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return np.array(0.0, dtype=np.float32)
    arrays = [np.asarray(t) for t in tensors]
    dtype = arrays[0].dtype
    if norm_type == 2 and all(a.dtype == dtype for a in arrays):
        # The common case, without a 0-d array per tensor: each norm rounded to the dtype.
        norms = np.array([math.sqrt(sum_of_squares(a)) for a in arrays], dtype=dtype)
    else:  # np.array of the 0-d norms: as np.stack, 10x faster
        norms = np.array([vector_norm(a, norm_type) for a in arrays])
    return _norm_of_norms(norms, norm_type, error_if_nonfinite)


def _norm_of_norms(norms: np.ndarray, norm_type: float, error_if_nonfinite: bool) -> np.ndarray:
    total_norm = vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total_norm


def clip_grads_with_norm_(parameters: ParametersT, max_norm: float, total_norm: np.ndarray) -> None:
    r"""Multiply every gradient in place by :func:`clip_coefficient` of a given total norm.

    The coefficient is rounded to each gradient's dtype before multiplying.  When it is
    exactly 1 (a total norm within max_norm, the usual case when clipping is a safeguard) nothing
    is written, since :math:`g \cdot 1 = g` bit for bit; torch multiplies anyway, as a
    branch on a GPU value would wait for the GPU.
    """
    # a list, as a generator could be read only once and it is read twice below
    parameters = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    grads = _grads_of(parameters)
    if len(grads) == 0:
        return
    flat = whole_grad_buffer(parameters)  # gradients in one flat buffer: one multiplication
    _scale_grads(grads if flat is None else [flat], max_norm, total_norm)


def _scale_grads(grads: list[np.ndarray], max_norm: float, total_norm: np.ndarray) -> None:
    coefficient = clip_coefficient(float(max_norm), np.asarray(total_norm))
    if coefficient == 1:
        return
    scales: dict[np.dtype, np.generic] = {}
    with np.errstate(invalid="ignore"):  # an infinite total: coefficient 0, and inf * 0 = NaN
        for grad in grads:
            if grad.dtype not in scales:
                scales[grad.dtype] = coefficient.astype(grad.dtype)[()]
            if grad.nbytes < _blocking.THREADED_MIN_BYTES:  # where apply_blocked would not
                scale_(grad, coefficient=scales[grad.dtype])  # thread: spare its ~1 us a call
            else:
                apply_blocked(scale_, grad, coefficient=scales[grad.dtype])


def clip_grad_norm_(
    parameters: ParametersT,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> np.ndarray:
    """Scale all gradients together so that their total norm is at most ``max_norm``.

    :func:`get_total_norm` of the gradients, then :func:`clip_grads_with_norm_`.  Returns
    the total norm from before clipping (a 0-d array in the gradients' dtype).  Parameters
    whose ``grad`` is ``None`` are skipped.  When ``error_if_nonfinite`` raises, no
    gradient has been touched.  A negative ``max_norm`` is not rejected (torch does not):
    the gradients get negated.
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)  # a generator can be read once; we need it twice
        if is_generator and len(parameters) == 0:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=2,
            )
    flat = grad_buffer_in_order(parameters) if float(norm_type) == 2 else None
    if flat is not None:  # gradients in one flat buffer: per-gradient sums over the buffer
        buffer, sizes = flat
        norms = np.sqrt(sums_of_squares_in_buffer(buffer, sizes)).astype(buffer.dtype)
        total_norm = _norm_of_norms(norms, 2.0, error_if_nonfinite)
        _scale_grads([buffer], max_norm, total_norm)  # one multiplication
    else:
        total_norm = get_total_norm(_grads_of(parameters), norm_type, error_if_nonfinite)
        clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters: ParametersT, clip_value: float) -> None:
    r"""Clamp every gradient element in place into :math:`[-v, v]`:

    .. math:: g \leftarrow \min(\max(g, -v), v)

    in that order, as torch does, so a negative ``v`` (which torch does not reject) sets
    every element to ``v``.  NaN stays NaN.
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    clip_value = float(clip_value)
    for grad in _grads_of(parameters):
        np.maximum(grad, -clip_value, out=grad)
        np.minimum(grad, clip_value, out=grad)
