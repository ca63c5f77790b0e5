r"""Batch normalisation (Ioffe & Szegedy, 2015), forward and backward.

Read ``standardize.py`` first: it derives the gradient used here.  Next: ``instance_norm.py``
(batch norm of each sample on its own), then ``layer_norm.py`` and ``group_norm.py``.

As in torch, the forward has three layers: :func:`batch_norm` (the functional API) calls
:func:`batch_norm_with_statistics` (the argument checks, in ``norm_checks.py``; it also
returns the statistics that backward reuses), which calls :func:`native_batch_norm`, the
equations themselves.  Instance norm calls :func:`native_batch_norm` after its own checks.
"""

from __future__ import annotations

import math

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.norm_checks import check_batch_norm
from minireg.numerics import channel_mean, channel_sum, channel_variance, rounded_mean

__all__ = ["batch_norm", "batch_norm_backward", "batch_norm_with_statistics"]


def batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Batch normalisation (Ioffe & Szegedy, 2015, "Batch Normalization: Accelerating Deep
    Network Training by Reducing Internal Covariate Shift", Algorithm 1).

    ``input`` is ``(N, C, *spatial)``; for each channel, over its :math:`n = N\cdot\prod`
    spatial values,

    .. math::
        \mu = \tfrac1n\textstyle\sum x, \quad \sigma^2 = \tfrac1n\sum (x-\mu)^2, \quad
        y = \gamma\,\frac{x-\mu}{\sqrt{\sigma^2+\epsilon}} + \beta

    In training the batch statistics are used and, when given, the running estimates are
    updated in place with momentum :math:`m`:

    .. math::
        \hat\mu \leftarrow m\,\mu + (1-m)\,\hat\mu, \qquad
        \hat\sigma^2 \leftarrow m\,\tfrac{n}{n-1}\sigma^2 + (1-m)\,\hat\sigma^2

    Otherwise :math:`\hat\mu, \hat\sigma^2` replace :math:`\mu, \sigma^2`.  An empty batch
    gives an empty output and leaves the running estimates alone, as in torch.  The
    equations are computed by :func:`native_batch_norm`.
    """
    return batch_norm_with_statistics(
        input, running_mean, running_var, weight, bias, training, momentum, eps
    )[0]


def batch_norm_with_statistics(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r""":func:`batch_norm` that also returns the statistics it normalised with:
    ``(output, save_mean, save_invstd)``, the per-channel :math:`\mu` and
    :math:`s = 1/\sqrt{\sigma^2+\epsilon}` of shape ``(C,)`` in the input's dtype (torch's
    ``native_batch_norm`` returns them too).  Pass them to :func:`batch_norm_backward`
    to spare it recomputing them.
    """
    input = as_tensor(input, "batch_norm")
    check_batch_norm(input, running_mean, running_var, weight, bias, training, eps)
    return native_batch_norm(
        input, running_mean, running_var, weight, bias, training, float(momentum), float(eps)
    )


def native_batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The equations of :func:`batch_norm`, without argument checks: ``(y, mu, s)``, the
    last two of shape ``(C,)``.  On the ``(N, C, L)`` view, per channel:

    .. math::
        \mu = \tfrac1n\textstyle\sum x, \quad \sigma^2 = \tfrac1n\sum (x-\mu)^2, \quad
        s = \frac{1}{\sqrt{\sigma^2+\epsilon}}, \quad y = (x-\mu)\,(\gamma s) + \beta

    :math:`\gamma s` is one number per channel, so each value takes one multiplication
    (:math:`\hat x` is never formed).  The sums behind :math:`\mu` and :math:`\sigma^2` are
    float64 (``minireg.numerics.channel_mean``).
    """
    x = input.reshape(input.shape[0], input.shape[1], math.prod(input.shape[2:]))  # (N, C, L)
    if training:  # this batch's statistics
        mu = channel_mean(x)
        x_mu = x - mu
        var = channel_variance(x_mu)
        if running_mean is not None and running_var is not None and x.size > 0:
            n = x.shape[0] * x.shape[2]
            # torch blends in the UNBIASED variance n/(n-1) sigma^2, though it normalised
            # with the biased one: the running estimate is of the population's variance
            unbiased_var = var.reshape(-1) * (n / (n - 1))
            running_mean[...] = momentum * mu.reshape(-1) + (1 - momentum) * running_mean
            running_var[...] = momentum * unbiased_var + (1 - momentum) * running_var
    else:  # the running estimates
        assert running_mean is not None and running_var is not None
        mu, var = running_mean.reshape(-1, 1), running_var.reshape(-1, 1)
        x_mu = x - mu
    s = 1.0 / np.sqrt(var + eps)
    gamma_s = s if weight is None else s * weight.reshape(-1, 1)
    y = x_mu * gamma_s  # gamma (x - mu) s
    if bias is not None:
        y = y + bias.reshape(-1, 1)
    return y.reshape(input.shape), mu.reshape(-1), s.reshape(-1)


def batch_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    training: bool = False,
    eps: float = 1e-5,
    *,
    save_mean: np.ndarray | None = None,
    save_invstd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    With :math:`\bar y = \partial L/\partial y` and sums over a channel's :math:`n` values,

    .. math::
        \frac{\partial L}{\partial \beta} = \sum \bar y, \qquad
        \frac{\partial L}{\partial \gamma} = \sum \bar y\,\hat x = s \sum \bar y\,(x-\mu)

    In training, :math:`\mu` and :math:`\sigma^2` depend on every input of the channel and
    :math:`\gamma` is constant over it, so ``standardize.py``'s derivation gives

    .. math::
        \frac{\partial L}{\partial x} = \gamma s\,\Big(\bar y - \overline{\bar y}
            - \hat x\,\overline{\bar y\,\hat x}\Big)
            = \gamma s\,\Big(\bar y - \overline{\bar y} - (x-\mu)\,k\Big),
        \qquad k = s\,\overline{\bar y\,\hat x} = \frac{s}{n}\,\frac{\partial L}{\partial\gamma}

    computed, as torch does, from :math:`x-\mu` and the per-channel :math:`k`, without
    forming :math:`\hat x`.  In evaluation the running statistics are constants:
    :math:`\partial L/\partial x = \gamma s\,\bar y`.

    In training, ``save_mean`` and ``save_invstd`` (keyword only, both or neither) are the
    forward's :math:`\mu` and :math:`s` from :func:`batch_norm_with_statistics`; given, they
    are used instead of being recomputed from ``input`` (the same values, so the same
    result to the bit).  In evaluation they are not used.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    x = input.reshape(input.shape[0], input.shape[1], math.prod(input.shape[2:]))  # (N, C, L)
    dy = grad_output.reshape(x.shape)
    if training and save_mean is not None and save_invstd is not None:  # the forward's mu, s
        x_mu, s = x - save_mean.reshape(-1, 1), save_invstd.reshape(-1, 1)
    elif training:  # recomputed, exactly as the forward computes them
        x_mu = x - channel_mean(x)
        s = 1.0 / np.sqrt(channel_variance(x_mu) + float(eps))
    else:  # the running estimates
        assert running_mean is not None and running_var is not None
        x_mu = x - running_mean.reshape(-1, 1)
        s = 1.0 / np.sqrt(running_var.reshape(-1, 1) + float(eps))
    grad_bias = channel_sum(dy)  # sum ybar (float64)
    grad_weight = channel_sum(dy, x_mu) * s  # sum ybar xhat = s sum ybar (x - mu) (float64)
    gamma_s = s if weight is None else s * weight.reshape(-1, 1)
    if training:
        n = x.shape[0] * x.shape[2]
        mean_dy = rounded_mean(grad_bias, n, x_mu.dtype)
        k = rounded_mean(grad_weight * s, n, x_mu.dtype)  # s * mean(ybar xhat)
        # gamma s (dy - mean(dy) - (x - mu) k), evaluated as -gamma s ((x - mu) k - dy + mean)
        grad_input = (x_mu * k - dy + mean_dy) * -gamma_s
    else:
        grad_input = dy * gamma_s
    dtype = x_mu.dtype
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(dtype),
        grad_bias.reshape(-1).astype(dtype),
    )
