r"""Dropout kernels: element-wise (Srivastava et al., 2014) and channel-wise (Tompson et al., 2015).

Inverted dropout keeps each unit with probability :math:`1-p` and rescales the survivors
so that the expected output equals the input:

.. math::
    m \sim \mathrm{Bernoulli}(1-p), \qquad
    y = x \odot \frac{m}{1-p}, \qquad
    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot \frac{m}{1-p}

N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov (2014),
"Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15.
Channel-wise ("spatial") dropout draws one :math:`m` per (sample, channel) and broadcasts
it over the spatial positions: J. Tompson, R. Goroshin, A. Jain, Y. LeCun, C. Bregler
(2015), "Efficient Object Localization Using Convolutional Networks", CVPR.

The pieces are separate so a backward pass (or a test) can reuse a mask:
:func:`dropout_mask` draws the keep mask, :func:`dropout_with_mask` applies one,
:func:`dropout_backward` sends a gradient back through one.  :func:`dropout` and
:func:`dropout1d`/:func:`dropout2d`/:func:`dropout3d` are ``torch.nn.functional``'s
functions, with an extra ``generator`` and an opt-in ``return_mask`` (as torch's pooling
functions have ``return_indices``).  NumPy cannot reproduce torch's random stream, so
masks agree with torch in law, not draw by draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor, check_not_complex
from minireg.random import resolve

__all__ = [
    "channel_mask_shape",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "dropout_backward",
    "dropout_mask",
    "dropout_with_mask",
]

Mask = np.ndarray  # boolean keep mask (True = kept), broadcastable to the input
# what the functional forms return: the output, or (output, mask) with return_mask=True
DropoutResult = np.ndarray | tuple[np.ndarray, Mask | None]


# ---------------------------------------------------------------------------- kernels
# The keep test u_i < 1-p is made on a grid of 2**-RESOLUTION_BITS: the keep probability
# is 1-p rounded to a multiple of 2**-40 (within 2**-41 ≈ 4.5e-13 of 1-p).
RESOLUTION_BITS = 40
FIRST_BITS = 8  # the random bits every entry draws; the other 32 only on a tie (1 in 256)


def _random_bytes(generator: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent uniform bytes: the bytes of ``ceil(n/8)`` uniform 64-bit integers.

    (``generator.integers(0, 256, n, dtype=np.uint8)`` has the same law but is 3× slower.)
    """
    words = generator.integers(0, 2**64, -(-n // 8), dtype=np.uint64)
    return words.view(np.uint8)[:n]


def dropout_mask(
    shape: tuple[int, ...], p: float, generator: np.random.Generator | None = None
) -> Mask:
    r"""A boolean keep mask of ``shape``: each entry ``True`` with probability :math:`1-p`.

    :math:`m_i \sim \mathrm{Bernoulli}(1-p)` independently, drawn as :math:`u_i < 1-p` with
    :math:`u_i` uniform on the multiples of :math:`2^{-40}` in :math:`[0, 1)`, so the keep
    probability is :math:`t/2^{40}`, :math:`t = \mathrm{round}((1-p)\,2^{40})`.  The bits of
    :math:`u_i` are drawn lazily, most significant first (Knuth and Yao, 1976): write
    :math:`u_i = (b_i + r_i 2^{-32})/2^8` and :math:`t = h\,2^{32} + \ell` with a random
    byte :math:`b_i` and 32-bit :math:`r_i`.  Then :math:`b_i < h` keeps, :math:`b_i > h`
    drops, and only a tie :math:`b_i = h` (probability 1/256) needs :math:`r_i`: keep iff
    :math:`r_i < \ell`.  About 8 random bits per entry instead of 32 or 64.
    """
    generator = resolve(generator)
    rest = RESOLUTION_BITS - FIRST_BITS
    high, low = divmod(round((1.0 - float(p)) * 2**RESOLUTION_BITS), 2**rest)
    first = _random_bytes(generator, math.prod(shape))
    keep = first < high
    if low:  # with low == 0 a tie is a drop, as ``first < high`` already says
        tie = np.flatnonzero(first == high)
        keep[tie] = generator.integers(0, 2**rest, tie.size, dtype=np.uint64) < low
    return keep.reshape(shape)


def channel_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The mask shape of channel-wise dropout for a batched input: ``(N, C, 1, ..., 1)``.

    One Bernoulli draw per (sample, channel), broadcast over the spatial dimensions.
    """
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return (shape[0], shape[1]) + (1,) * (len(shape) - 2)


def _apply_mask(x: np.ndarray, mask: Mask, p: float, out: np.ndarray) -> np.ndarray:
    r"""``out`` :math:`= x \odot m/(1-p)`, rounded as torch rounds it.

    torch multiplies ``x`` by the noise ``m / (1-p)`` computed in ``x``'s dtype, i.e. by 0
    or :math:`s = \mathrm{fl}(1/\mathrm{fl}(1-p))` (``x / (1-p)`` differs from ``x * s`` by
    an ULP for many ``x`` when :math:`p \ne 0.5`).  Here :math:`(x \odot m) \cdot s`, two
    in-place passes and no noise array: the same numbers, since :math:`x \cdot 1` is exact
    and :math:`(x \cdot 0) \cdot s` keeps the sign of :math:`x \cdot 0` (and its ``nan``
    for an infinite ``x``).  At :math:`p = 1` the result is :math:`x \cdot 0`.
    """
    zero_or_scale = np.zeros((), x.dtype) if p == 1 else x.dtype.type(1) / x.dtype.type(1 - p)
    with np.errstate(invalid="ignore"):  # inf * 0 = nan, silently, as in torch
        np.multiply(x, mask, out=out)  # x_i, or x_i * 0
        return np.multiply(out, zero_or_scale, out=out)


def dropout_with_mask(
    input: np.ndarray, mask: Mask | None, p: float, inplace: bool = False
) -> np.ndarray:
    r"""Inverted dropout with a given keep mask: :math:`y = x \odot m/(1-p)`.

    ``mask`` is boolean and broadcasts to ``input`` (element-wise or channel-wise);
    ``None`` means dropout is inactive and returns ``input`` itself.  At :math:`p = 1` the
    result is :math:`x \cdot 0` whatever the mask (so ``inf`` and ``nan`` give ``nan``).
    ``inplace=True`` writes the result into ``input`` and returns it.
    """
    x = np.asarray(input)
    if mask is None:
        return x
    return _apply_mask(x, mask, p, out=x if inplace else np.empty_like(x))


def dropout_backward(grad_output: np.ndarray, mask: Mask | None, p: float) -> np.ndarray:
    r"""Gradient through dropout with the forward pass's mask.

    :math:`\partial L/\partial x = g \odot m/(1-p)`, with :math:`g = \partial L/\partial y`.

    ``mask=None`` (dropout was inactive) passes the gradient through unchanged.
    """
    g = np.asarray(grad_output)
    if mask is None:
        return g
    return _apply_mask(g, mask, p, out=np.empty_like(g))


# ---------------------------------------------------------------------------- torch's functions
_TORCH_DTYPE_NAMES = {
    "bool": "Bool",
    "uint8": "Byte",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
}


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _elementwise(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def _unbatched_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Channel mask of an input without a batch dimension (torch adds one, then drops it)."""
    return channel_mask_shape((1, *shape))[1:]


def _dropout_impl(
    x: np.ndarray,
    p: float,
    training: bool,
    inplace: bool,
    generator: np.random.Generator | None,
    mask_shape: Callable[[tuple[int, ...]], tuple[int, ...]] = _elementwise,
) -> tuple[np.ndarray, Mask | None]:
    """torch's shared dropout path (ATen ``_dropout_impl``).

    ``mask_shape`` maps the input's shape to the mask's (element-wise or channel-wise);
    it is consulted only when a mask is drawn, as torch builds its noise only then.
    Returns the output and the mask that backward needs (``None`` when inactive).
    """
    # nan slips past the Python-level check (_check_p); torch's C++ check catches it.
    if not (p >= 0 and p <= 1):
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")
    if p == 0 or not training or x.size == 0:
        return x, None  # torch returns the input object itself
    if p == 1:
        mask = np.zeros(x.shape, dtype=bool)  # nothing kept; torch draws no noise here
        return dropout_with_mask(x, mask, 1.0, inplace), mask
    shape = mask_shape(x.shape)
    check_not_complex(x, "bernoulli_scalar_cpu_")
    if not np.issubdtype(x.dtype, np.floating):
        name = _TORCH_DTYPE_NAMES.get(x.dtype.name, x.dtype.name)
        raise RuntimeError(f"result type Float can't be cast to the desired output type {name}")
    mask = dropout_mask(shape, p, generator)
    return dropout_with_mask(x, mask, p, inplace), mask


def _finish(result: tuple[np.ndarray, Mask | None], return_mask: bool) -> DropoutResult:
    return result if return_mask else result[0]


def dropout(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: np.random.Generator | None = None,
    *,
    return_mask: bool = False,
) -> DropoutResult:
    r"""``torch.nn.functional.dropout``: zero each element with probability ``p``, scale the
    rest by :math:`1/(1-p)`.

    As torch: ``training`` defaults to ``True``; ``p == 0``, ``training=False`` or an empty
    input return ``input`` itself; ``p == 1`` returns :math:`x\cdot 0`.  With
    ``return_mask=True`` the result is ``(output, mask)``, the boolean keep mask to give
    :func:`dropout_backward` (``None`` when dropout was inactive).
    """
    _check_p(p)
    x = as_tensor(input, "dropout")
    return _finish(_dropout_impl(x, p, training, inplace, generator), return_mask)


def dropout1d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: np.random.Generator | None = None,
    *,
    return_mask: bool = False,
) -> DropoutResult:
    """``torch.nn.functional.dropout1d``: zero whole channels of ``(N, C, L)`` or ``(C, L)`` input.

    The mask has shape ``(N, C, 1)`` (``(C, 1)`` unbatched).  See :func:`dropout`.
    """
    _check_p(p)
    x = as_tensor(input, "dropout1d")
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )
    shape = channel_mask_shape if x.ndim == 3 else _unbatched_mask_shape
    return _finish(_dropout_impl(x, p, training, inplace, generator, shape), return_mask)


def dropout2d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: np.random.Generator | None = None,
    *,
    return_mask: bool = False,
) -> DropoutResult:
    """``torch.nn.functional.dropout2d``: zero whole channels of an ``(N, C, H, W)`` input.

    As torch, a 3-D input is read as ``(N, C, L)`` (1-D channel dropout, with torch's
    warning), other ranks warn that they are deprecated, and there is no unbatched form.
    See :func:`dropout`.
    """
    _check_p(p)
    x = as_tensor(input, "dropout2d")
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _finish(
        _dropout_impl(x, p, training, inplace, generator, channel_mask_shape), return_mask
    )


def dropout3d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator: np.random.Generator | None = None,
    *,
    return_mask: bool = False,
) -> DropoutResult:
    """``torch.nn.functional.dropout3d``: zero whole channels of ``(N, C, D, H, W)`` input
    (or unbatched ``(C, D, H, W)``).

    As torch, any rank other than 5 is treated as unbatched (and ranks other than 4 and 5
    warn that they are deprecated).  See :func:`dropout`.
    """
    _check_p(p)
    x = as_tensor(input, "dropout3d")
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    shape = channel_mask_shape if x.ndim == 5 else _unbatched_mask_shape
    return _finish(_dropout_impl(x, p, training, inplace, generator, shape), return_mask)
