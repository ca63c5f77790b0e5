r"""Group normalisation (Wu & He, 2018), forward and backward.

Read ``standardize.py`` and ``layer_norm.py`` first: group norm is layer norm over groups
of channels, with its affine map per channel.  Next: ``norm_checks.py`` (the argument
checks of every norm), then ``dropout.py`` (step 7).
"""

from __future__ import annotations

import math

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.norm_checks import check_group_norm
from minireg.nn._functional.standardize import as_ncl, standardize, standardize_backward
from minireg.numerics import channel_sum

__all__ = ["group_norm", "group_norm_backward"]


def group_norm(
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Group normalisation (Wu & He, 2018, "Group Normalization").

    The C channels of ``input`` ``(N, C, *spatial)`` are split into ``num_groups`` groups
    of C/G consecutive channels; each (sample, group) is standardised over its
    :math:`C/G\cdot\prod\text{spatial}` values, then :math:`\gamma, \beta` apply per
    **channel**: :math:`y_c = \gamma_c\,\hat x_c + \beta_c`.  G = 1 is layer norm over
    ``(C, *spatial)`` with per-channel affine; G = C is instance norm.
    """
    input = as_tensor(input, "group_norm")
    check_group_norm(input, num_groups, weight, bias)
    xhat, _ = standardize(by_group(input, num_groups), float(eps))
    xhat = as_ncl(xhat.reshape(input.shape))  # one row per (sample, channel) for the affine map
    y = xhat if weight is None else xhat * weight.reshape(-1, 1)
    if bias is not None:
        y = y + bias.reshape(-1, 1)
    return y.reshape(input.shape)


def group_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`group_norm`: ``(grad_input, grad_weight, grad_bias)``.

    :math:`\partial L/\partial\gamma_c = \sum_{N,\text{spatial}} \bar y\,\hat x`,
    :math:`\partial L/\partial\beta_c = \sum_{N,\text{spatial}} \bar y`.  :math:`\gamma`
    varies across the channels of a group, so :math:`\hat g = \gamma\,\bar y` goes through
    the standardisation's backward per (sample, group), as in :func:`layer_norm_backward`.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    xhat, s = standardize(by_group(input, num_groups), float(eps))
    dy = as_ncl(grad_output)
    xhat_by_channel = as_ncl(xhat.reshape(input.shape))  # the same values, (N, C, spatial)
    grad_weight = channel_sum(dy, xhat_by_channel)  # sum ybar xhat
    grad_bias = channel_sum(dy)  # sum ybar
    # ghat = gamma ybar, then one row per (sample, group) again
    grad_xhat = by_group(dy if weight is None else dy * weight.reshape(-1, 1), num_groups)
    grad_input = standardize_backward(grad_xhat, xhat, s)
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(xhat.dtype),
        grad_bias.reshape(-1).astype(xhat.dtype),
    )


def by_group(a: np.ndarray, num_groups: int) -> np.ndarray:
    """The ``(N, G, C/G * prod(spatial))`` view: one row per (sample, group)."""
    return a.reshape(a.shape[0], num_groups, a.shape[1] // num_groups * math.prod(a.shape[2:]))
