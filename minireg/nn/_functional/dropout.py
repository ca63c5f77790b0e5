r"""Dropout kernels: element-wise (Srivastava et al., 2014) and channel-wise (Tompson et al., 2015).

Step 7 of the reading path, with ``minireg/nn/init.py`` and gradient clipping.  Next:
``minireg/nn/init.py``, then ``minireg/nn/utils/clip_grad.py``.

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
masks agree with torch in law, not draw by draw.  How the mask is drawn and how
:math:`1/(1-p)` is rounded are in :mod:`minireg.numerics` (:func:`~minireg.numerics.bernoulli`,
:func:`~minireg.numerics.dropout_scale`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor, check_not_complex
from minireg.numerics import bernoulli, dropout_scale

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
def dropout_mask(
    shape: tuple[int, ...], p: float, generator: np.random.Generator | None = None
) -> Mask:
    r"""A boolean keep mask of ``shape``: :math:`m_i \sim \mathrm{Bernoulli}(1-p)`, independently.

    ``True`` (kept) with probability :math:`1-p` (to within :math:`2^{-41}`: see
    :func:`minireg.numerics.bernoulli`).
    """
    return bernoulli(shape, 1 - float(p), generator)


def channel_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The mask shape of channel-wise dropout for a batched input: ``(N, C, 1, ..., 1)``.

    One Bernoulli draw per (sample, channel), broadcast over the spatial dimensions.
    """
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return (shape[0], shape[1]) + (1,) * (len(shape) - 2)


def dropout_with_mask(
    input: np.ndarray, mask: Mask | None, p: float, inplace: bool = False
) -> np.ndarray:
    r"""Inverted dropout with a given keep mask: :math:`y = x \odot m/(1-p)`.

    ``mask`` is boolean and broadcasts to ``input`` (element-wise or channel-wise);
    ``None`` means dropout is inactive and returns ``input`` itself.  torch multiplies
    :math:`x` by the noise :math:`m/(1-p)`, that is by 0 or by :math:`s`, :math:`1/(1-p)`
    rounded as torch rounds it (:func:`minireg.numerics.dropout_scale`); :math:`x \cdot m
    \cdot s` gives the same numbers, as :math:`x \cdot 1` is exact and :math:`(x \cdot 0)
    \cdot s` keeps the sign (and the ``nan``) of :math:`x \cdot 0`.  At
    :math:`p = 1` the result is :math:`x \cdot 0` whatever the mask (so ``inf`` and ``nan``
    give ``nan``).  ``inplace=True`` writes the result into ``input`` and returns it.
    """
    x = np.asarray(input)
    if mask is None:
        return x
    s = dropout_scale(p, x.dtype)  # 1/(1-p), rounded as torch rounds it
    with np.errstate(invalid="ignore"):  # a dropped inf: inf * 0 = nan, silently, as in torch
        if not inplace:
            return np.asarray(x * mask * s)  # (a 0-d x would give a NumPy scalar)
        x *= mask
        x *= s
    return x


def dropout_backward(grad_output: np.ndarray, mask: Mask | None, p: float) -> np.ndarray:
    r"""Gradient through dropout with the forward pass's mask.

    :math:`\partial L/\partial x = g \odot m/(1-p)`, with :math:`g = \partial L/\partial y`:
    the forward product applied to :math:`g`.  ``mask=None`` (dropout was inactive)
    passes the gradient through unchanged.
    """
    return dropout_with_mask(grad_output, mask, p)


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


def _same_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def _unbatched_mask_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Channel mask of an input without a batch dimension (torch adds one, then drops it)."""
    return channel_mask_shape((1, *shape))[1:]


def _keep_mask(
    x: np.ndarray,
    p: float,
    training: bool,
    generator: np.random.Generator | None,
    mask_shape: Callable[[tuple[int, ...]], tuple[int, ...]],
) -> Mask | None:
    """The keep mask for ``x``, drawn when and as torch's dropout draws its noise.

    ``None`` when dropout is inactive (``p = 0``, eval mode, an empty input); all ``False``
    at ``p = 1``, where torch draws no noise; else :func:`dropout_mask` of
    ``mask_shape(x.shape)`` (element-wise or channel-wise), a shape consulted only then,
    as torch builds its noise only then (ATen ``_dropout_impl``).
    """
    # nan slips past the Python-level check (_check_p); torch's C++ check catches it.
    if not (p >= 0 and p <= 1):
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")
    if p == 0 or not training or x.size == 0:
        return None  # so that the output is the input object itself, as in torch
    if p == 1:
        return np.zeros(x.shape, dtype=bool)
    shape = mask_shape(x.shape)
    check_not_complex(x, "bernoulli_scalar_cpu_")
    if not np.issubdtype(x.dtype, np.floating):
        name = _TORCH_DTYPE_NAMES.get(x.dtype.name, x.dtype.name)
        raise RuntimeError(f"result type Float can't be cast to the desired output type {name}")
    return dropout_mask(shape, p, generator)


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
    rest by :math:`1/(1-p)` (Srivastava et al., 2014).

    .. math::
        m_i \sim \mathrm{Bernoulli}(1-p), \qquad y = x \odot \frac{m}{1-p}

    As torch: ``training`` defaults to ``True``; ``p == 0``, ``training=False`` or an empty
    input return ``input`` itself; ``p == 1`` returns :math:`x\cdot 0`.  With
    ``return_mask=True`` the result is ``(output, mask)``, the boolean keep mask to give
    :func:`dropout_backward` (``None`` when dropout was inactive).
    """
    _check_p(p)
    x = as_tensor(input, "dropout")
    m = _keep_mask(x, p, training, generator, _same_shape)  # m_i ~ Bernoulli(1-p)
    y = dropout_with_mask(x, m, p, inplace)  # y = x ⊙ m/(1-p)
    return (y, m) if return_mask else y


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
    m = _keep_mask(x, p, training, generator, shape)  # one m per (sample, channel)
    y = dropout_with_mask(x, m, p, inplace)
    return (y, m) if return_mask else y


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
    m = _keep_mask(x, p, training, generator, channel_mask_shape)
    y = dropout_with_mask(x, m, p, inplace)
    return (y, m) if return_mask else y


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
    m = _keep_mask(x, p, training, generator, shape)
    y = dropout_with_mask(x, m, p, inplace)
    return (y, m) if return_mask else y
