r"""Layer normalisation (Ba, Kiros & Hinton, 2016), forward and backward.

Read ``standardize.py`` first: layer norm is its standardisation, one row per sample, then
an affine map per normalised element.  Next: ``group_norm.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.norm_checks import check_layer_norm
from minireg.nn._functional.standardize import standardize, standardize_backward
from minireg.numerics import channel_sum

__all__ = ["layer_norm", "layer_norm_backward"]


def layer_norm(
    input: np.ndarray,
    normalized_shape: Sequence[int],
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Layer normalisation (Ba, Kiros & Hinton, 2016, "Layer Normalization").

    Each sample is standardised over its trailing ``normalized_shape`` dimensions (any
    number of them); :math:`\gamma` and :math:`\beta` have shape ``normalized_shape``, one
    value per normalised element.  There is no training/evaluation difference.

    .. math::
        \hat x = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}}, \qquad y = \gamma\,\hat x + \beta
    """
    input, normalized_shape = as_tensor(input, "layer_norm"), tuple(normalized_shape)
    check_layer_norm(input, normalized_shape, weight, bias)
    xhat, _ = standardize(by_sample(input, normalized_shape), float(eps))
    y = xhat if weight is None else xhat * weight.reshape(-1)
    if bias is not None:
        y = y + bias.reshape(-1)
    return y.reshape(input.shape)


def layer_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    normalized_shape: Sequence[int],
    weight: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`layer_norm`: ``(grad_input, grad_weight, grad_bias)``.

    :math:`\partial L/\partial\gamma = \sum_{\text{samples}} \bar y\,\hat x`,
    :math:`\partial L/\partial\beta = \sum_{\text{samples}} \bar y`; :math:`\gamma` varies
    inside a sample, so it multiplies the upstream gradient *before* the standardisation's
    backward: :math:`\hat g = \gamma\,\bar y`, then, over the normalised dimensions,
    :math:`\partial L/\partial x =
    s\,(\hat g - \overline{\hat g} - \hat x\,\overline{\hat g\hat x})`.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    normalized_shape = tuple(normalized_shape)
    xhat, s = standardize(by_sample(input, normalized_shape), float(eps))
    dy = by_sample(grad_output, normalized_shape)
    # sums over the samples: one "channel" per element, of the (samples, elements, 1) views
    per_element = (xhat.shape[0], xhat.shape[2], 1)
    grad_weight = channel_sum(dy.reshape(per_element), xhat.reshape(per_element))  # sum ybar xhat
    grad_bias = channel_sum(dy.reshape(per_element))  # sum ybar
    grad_xhat = dy if weight is None else dy * weight.reshape(-1)  # ghat = gamma ybar
    grad_input = standardize_backward(grad_xhat, xhat, s)
    return (
        grad_input.reshape(input.shape),
        grad_weight.astype(xhat.dtype).reshape(normalized_shape),
        grad_bias.astype(xhat.dtype).reshape(normalized_shape),
    )


def by_sample(a: np.ndarray, normalized_shape: tuple[int, ...]) -> np.ndarray:
    """The ``(samples, 1, prod(normalized_shape))`` view: one row per sample."""
    samples = math.prod(a.shape[: a.ndim - len(normalized_shape)])
    return a.reshape(samples, 1, math.prod(normalized_shape))
