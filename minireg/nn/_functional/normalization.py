r"""Normalisation kernels: batch, instance, layer and group norm, forward and backward.

All four standardise the input over some axes, then apply a per-feature affine map:

.. math::
    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma\,\hat x + \beta

with the **biased** variance :math:`\sigma^2 = \frac1n\sum (x-\mu)^2` and :math:`\epsilon`
inside the square root.  They differ only in which elements share one :math:`(\mu, \sigma^2)`:

=================  ==========================================  ===========================
kernel             one mean and variance per                   :math:`\gamma, \beta` per
=================  ==========================================  ===========================
``batch_norm``     channel, over ``(N, *spatial)``             channel
``instance_norm``  sample and channel, over ``(*spatial)``     channel
``layer_norm``     sample, over the trailing normalized_shape  element of normalized_shape
``group_norm``     sample and group, over ``(C/G, *spatial)``  channel
=================  ==========================================  ===========================

Calling convention.  A forward function takes ``torch.nn.functional``'s arguments in
its order and returns the output, as torch does; ``batch_norm`` and ``instance_norm``
update the running statistics they are given **in place**.  Each ``*_backward`` takes the
upstream gradient ``grad_output`` followed by the forward's own arguments (without
``bias`` and ``momentum``, which the gradient does not depend on) and returns
``(grad_input, grad_weight, grad_bias)``.  It recomputes :math:`\hat x` from the input rather
than receiving a cache: one extra reduction, and the forward keeps torch's signature.
``grad_weight`` :math:`=\sum \bar y\,\hat x` and ``grad_bias`` :math:`=\sum \bar y` are
returned even when the layer has no weight or bias; a caller keeps the ones it owns.

Numerics.  Statistics and the reductions of the backward pass are accumulated in
float64 and rounded once to the input's dtype (torch's float32 CPU kernels accumulate in
double too: their saved float32 mean is the float64 mean rounded).  Everything else
stays in the input's dtype.  torch evaluates the output as
:math:`x\cdot(\gamma s) + (\beta - \mu\gamma s)` with :math:`s = 1/\sqrt{\sigma^2+\epsilon}`,
not in the textbook order used here, so float32 results differ from torch's by a few
units in the last place of the largest of those terms.

Shapes in messages are printed the NumPy way, ``(3, 4)``, where torch prints
``torch.Size([3, 4])``; shapes torch prints as lists (``[2, 3]``) stay lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_backward",
    "layer_norm",
    "layer_norm_backward",
]


# ============================================================================ shared math
def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance of ``x`` over ``axes`` (kept as size-1 axes), in x's dtype,
    accumulated in float64.  Groups with no element (empty input) get mean 0, variance 1."""
    if math.prod(x.shape[a] for a in axes) == 0:  # nothing to normalise: avoid 0/0
        shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape))
        return np.zeros(shape, x.dtype), np.ones(shape, x.dtype)
    mean = np.mean(x, axis=axes, keepdims=True, dtype=np.float64)
    var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
    return mean.astype(x.dtype), var.astype(x.dtype)


def _standardize(
    x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\hat x = (x-\mu)\,s` with :math:`s = 1/\sqrt{\sigma^2+\epsilon}`; returns ``(x_hat, s)``."""
    invstd = 1.0 / np.sqrt(var + eps)  # eps inside the square root
    return (x - mean) * invstd, invstd


def _sum(a: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
    """``a.sum(axes)`` accumulated in float64, returned in a's dtype."""
    return np.sum(a, axis=axes, keepdims=keepdims, dtype=np.float64).astype(a.dtype)


def _standardize_backward(
    grad_xhat: np.ndarray, xhat: np.ndarray, invstd: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    r"""Gradient through :math:`\hat x = (x-\mu)/\sqrt{\sigma^2+\epsilon}` when :math:`\mu` and
    :math:`\sigma^2` are the mean and biased variance of the same :math:`n` elements:

    .. math::
        \frac{\partial L}{\partial x} = \frac{s}{n}\Big(n\,\hat g - \sum \hat g
            - \hat x \sum \hat g\,\hat x\Big), \qquad \hat g = \frac{\partial L}{\partial \hat x}

    (the two sums run over ``axes``; they are the paths through :math:`\mu` and :math:`\sigma^2`).
    """
    n = math.prod(xhat.shape[a] for a in axes)
    if n == 0:
        return np.zeros_like(grad_xhat)
    sum_g = _sum(grad_xhat, axes, keepdims=True)
    sum_gx = _sum(grad_xhat * xhat, axes, keepdims=True)
    return invstd / n * (n * grad_xhat - sum_g - xhat * sum_gx)


def _per_channel(a: np.ndarray | None, ndim: int) -> np.ndarray | None:
    """A length-C vector shaped ``(C, 1, ..., 1)`` to broadcast against ``(N, C, *spatial)``."""
    return None if a is None else a.reshape((-1,) + (1,) * (ndim - 2))


def _affine(xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
    r""":math:`y = \gamma\hat x + \beta` (weight and bias already shaped to broadcast)."""
    y = xhat if weight is None else xhat * weight
    return y if bias is None else y + bias


# ============================================================================ checks
def _shown(shape: Sequence[int]) -> str:
    return str(tuple(shape))


def _verify_batch_size(size: Sequence[int], shown: str) -> None:
    # torch's check counts size[0] * prod(size[2:]): the values each channel would average
    if size[0] * math.prod(size[2:]) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {shown}")


def _check_batch_norm_arguments(
    channels: int,
    copies: int,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
) -> None:
    """ATen's checks of batch norm's per-channel arguments, in its order.  Instance norm
    runs batch norm with every argument repeated ``copies`` (= N) times, and says so."""
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is None and not training:
            raise RuntimeError(f"{name} must be defined in evaluation mode")
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        # compared after repeating, as torch does (so with N = 0 copies any size passes)
        if value is not None and value.size * copies != channels * copies:
            raise RuntimeError(f"{name} should contain {channels * copies} elements not {value.size * copies}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")


# ============================================================================ batch norm
def _batch_statistics(
    input: np.ndarray, running_mean: np.ndarray | None, running_var: np.ndarray | None, training: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The (mean, biased variance) batch norm normalises with: this batch's in training,
    the running estimates otherwise; shaped to broadcast against ``input``."""
    if training:
        return _moments(input, (0, *range(2, input.ndim)))
    assert running_mean is not None and running_var is not None
    channel_shape = (-1,) + (1,) * (input.ndim - 2)  # as _per_channel
    return running_mean.reshape(channel_shape), running_var.reshape(channel_shape)


def _batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> np.ndarray:
    """Batch norm without argument checks (instance norm calls it on a reshaped input)."""
    mean, var = _batch_statistics(input, running_mean, running_var, training)
    if training and running_mean is not None and running_var is not None and input.size > 0:
        n = input.size // input.shape[1]
        # The running variance estimates the population variance, so torch blends in the
        # UNBIASED batch variance sum/(n-1), though it normalised with the biased sum/n.
        unbiased = var.reshape(-1) * (n / (n - 1))
        running_mean[...] = momentum * mean.reshape(-1) + (1 - momentum) * running_mean
        running_var[...] = momentum * unbiased + (1 - momentum) * running_var
    xhat, _ = _standardize(input, mean, var, eps)
    return _affine(xhat, _per_channel(weight, input.ndim), _per_channel(bias, input.ndim))


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

    ``input`` is ``(N, C, *spatial)``; for each channel, over its :math:`n = N\cdot\prod` spatial values,

    .. math::
        \mu = \tfrac1n\textstyle\sum x, \quad \sigma^2 = \tfrac1n\sum (x-\mu)^2, \quad
        y = \gamma\,\frac{x-\mu}{\sqrt{\sigma^2+\epsilon}} + \beta

    In training the batch statistics are used and, when given, the running estimates are
    updated in place with momentum :math:`m`:

    .. math::
        \hat\mu \leftarrow m\,\mu + (1-m)\,\hat\mu, \qquad
        \hat\sigma^2 \leftarrow m\,\tfrac{n}{n-1}\sigma^2 + (1-m)\,\hat\sigma^2

    Otherwise :math:`\hat\mu, \hat\sigma^2` replace :math:`\mu, \sigma^2`.  An empty batch
    gives an empty output and leaves the running estimates alone, as in torch.
    """
    input = np.asarray(input)
    if training:
        _verify_batch_size(input.shape, _shown(input.shape))
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    elif eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    _check_batch_norm_arguments(input.shape[1], 1, running_mean, running_var, weight, bias, training)
    return _batch_norm(input, running_mean, running_var, weight, bias, training, float(momentum), float(eps))


def batch_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    training: bool = False,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    With :math:`\bar y = \partial L/\partial y` and sums over a channel's :math:`n` values,

    .. math::
        \frac{\partial L}{\partial \beta} = \sum \bar y, \qquad
        \frac{\partial L}{\partial \gamma} = \sum \bar y\,\hat x

    In training, :math:`\mu` and :math:`\sigma^2` depend on every input of the channel and
    :math:`\gamma` is constant over it, which gives the compact closed form

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma\,s}{n}\Big(n\,\bar y - \sum \bar y
            - \hat x \sum \bar y\,\hat x\Big), \qquad s = \frac{1}{\sqrt{\sigma^2+\epsilon}}

    In evaluation the running statistics are constants: :math:`\partial L/\partial x = \gamma\,s\,\bar y`.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    axes = (0, *range(2, input.ndim))
    mean, var = _batch_statistics(input, running_mean, running_var, training)
    xhat, invstd = _standardize(input, mean, var, float(eps))
    grad_weight = _sum(grad_output * xhat, axes)
    grad_bias = _sum(grad_output, axes)
    grad_xhat = grad_output if weight is None else grad_output * _per_channel(weight, input.ndim)
    if training:  # the closed form above, with gamma folded into the upstream gradient
        grad_input = _standardize_backward(grad_xhat, xhat, invstd, axes)
    else:
        grad_input = grad_xhat * invstd
    return grad_input, grad_weight, grad_bias


# ============================================================================ instance norm
def _as_batch(input: np.ndarray) -> np.ndarray:
    """The ``(1, N*C, *spatial)`` view on which instance norm is batch norm."""
    return input.reshape((1, input.shape[0] * input.shape[1]) + input.shape[2:])


def _repeat(a: np.ndarray | None, copies: int) -> np.ndarray | None:
    return None if a is None else np.tile(a, copies)


def instance_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Instance normalisation (Ulyanov, Vedaldi & Lempitsky, 2016, "Instance Normalization:
    The Missing Ingredient for Fast Stylization").

    Each (sample, channel) of ``input`` ``(N, C, *spatial)`` is standardised over its own
    spatial values; :math:`\gamma, \beta` are per channel.  torch computes it as batch norm
    on the ``(1, N*C, *spatial)`` view with every per-channel argument repeated N times,
    and so does this function.  With ``use_input_stats`` and running estimates given, each
    of the N copies is updated as in :func:`batch_norm` (unbiased variance), and the
    running estimates become the average of the copies:

    .. math::
        \hat\mu \leftarrow \tfrac1N \textstyle\sum_i \big(m\,\mu_i + (1-m)\,\hat\mu\big),
        \qquad \hat\sigma^2 \leftarrow \tfrac1N \sum_i \big(m\,\tfrac{n}{n-1}\sigma_i^2 + (1-m)\,\hat\sigma^2\big)

    Without ``use_input_stats`` the running estimates normalise, as batch norm's eval mode.
    An empty batch (N = 0) averages no copies and leaves NaN estimates, as torch does.
    """
    input = np.asarray(input)
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(
            f"Expected more than 1 spatial element when training, got input size {_shown(input.shape)}"
        )
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
    copies, channels = input.shape[:2]
    _check_batch_norm_arguments(channels, copies, running_mean, running_var, weight, bias, use_input_stats)
    mean_copies, var_copies = _repeat(running_mean, copies), _repeat(running_var, copies)
    output = _batch_norm(
        _as_batch(input), mean_copies, var_copies, _repeat(weight, copies), _repeat(bias, copies),
        use_input_stats, float(momentum), float(eps),
    )
    if use_input_stats and running_mean is not None and running_var is not None:
        assert mean_copies is not None and var_copies is not None
        running_mean[...] = mean_copies.reshape(copies, channels).mean(axis=0)
        running_var[...] = var_copies.reshape(copies, channels).mean(axis=0)
    return output.reshape(input.shape)


def instance_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    use_input_stats: bool = True,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`instance_norm`: ``(grad_input, grad_weight, grad_bias)``.

    :func:`batch_norm_backward` on the ``(1, N*C, *spatial)`` view gives the gradient of
    each of the N repeated copies of :math:`\gamma` and :math:`\beta`; the gradient of the
    shared parameter is their sum over the N samples.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    copies, channels = input.shape[:2]
    grad_input, grad_weight_copies, grad_bias_copies = batch_norm_backward(
        _as_batch(grad_output), _as_batch(input), _repeat(running_mean, copies), _repeat(running_var, copies),
        _repeat(weight, copies), use_input_stats, eps,
    )
    grad_weight = _sum(grad_weight_copies.reshape(copies, channels), (0,))
    grad_bias = _sum(grad_bias_copies.reshape(copies, channels), (0,))
    return grad_input.reshape(input.shape), grad_weight, grad_bias


# ============================================================================ layer norm
def _check_layer_norm_arguments(
    input: np.ndarray, normalized_shape: tuple[int, ...], weight: np.ndarray | None, bias: np.ndarray | None
) -> None:
    """ATen's checks, in its order (shapes printed as lists, as torch does here)."""
    shown = list(normalized_shape)
    if not normalized_shape:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
            f"one element, but got normalized_shape = {shown}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value.shape != normalized_shape:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                f"{list(value.shape)} and normalized_shape = {shown}"
            )
    k = len(normalized_shape)
    if input.ndim < k or input.shape[input.ndim - k:] != normalized_shape:
        expected = "[*" + "".join(f", {size}" for size in normalized_shape) + "]"
        raise RuntimeError(
            f"Given normalized_shape={shown}, expected input with shape {expected}, but got "
            f"input of size{list(input.shape)}"
        )


def _layer_norm_axes(input: np.ndarray, normalized_shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(range(input.ndim - len(normalized_shape), input.ndim))


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
    """
    input, normalized_shape = np.asarray(input), tuple(normalized_shape)
    _check_layer_norm_arguments(input, normalized_shape, weight, bias)
    axes = _layer_norm_axes(input, normalized_shape)
    xhat, _ = _standardize(input, *_moments(input, axes), float(eps))
    return _affine(xhat, weight, bias)


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
    backward: :math:`\hat g = \gamma\,\bar y`, then
    :math:`\partial L/\partial x = \frac{s}{n}(n\hat g - \sum\hat g - \hat x\sum\hat g\hat x)`
    over the normalised dimensions.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    axes = _layer_norm_axes(input, tuple(normalized_shape))
    xhat, invstd = _standardize(input, *_moments(input, axes), float(eps))
    sample_axes = tuple(range(input.ndim - len(axes)))
    grad_weight = _sum(grad_output * xhat, sample_axes)
    grad_bias = _sum(grad_output, sample_axes)
    grad_xhat = grad_output if weight is None else grad_output * weight
    return _standardize_backward(grad_xhat, xhat, invstd, axes), grad_weight, grad_bias


# ============================================================================ group norm
def _check_group_norm_arguments(
    input: np.ndarray, num_groups: int, weight: np.ndarray | None, bias: np.ndarray | None
) -> None:
    """torch's checks, in its order: Python's first, then ATen's."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[:2]
    size = [n * c // num_groups, num_groups, *input.shape[2:]]  # ZeroDivisionError for 0 groups, as torch
    _verify_batch_size(size, str(size))
    if num_groups <= 0:
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    if c % num_groups != 0:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(input.shape)} and num_groups={num_groups}"
        )
    # torch's bias message prints the WEIGHT's shape ([0] when there is none); we copy its text.
    shown_weight = [0] if weight is None else list(weight.shape)
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and (value.ndim != 1 or value.size != c):
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in input, "
                f"but got {name} of shape {shown_weight} and input of shape {list(input.shape)}"
            )


def _grouped(a: np.ndarray, num_groups: int) -> np.ndarray:
    """The ``(N, G, C/G * prod(spatial))`` view: one row per (sample, group)."""
    return a.reshape(a.shape[0], num_groups, -1)


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
    **channel**.  G = 1 is layer norm over ``(C, *spatial)`` with per-channel affine;
    G = C is instance norm.
    """
    input = np.asarray(input)
    _check_group_norm_arguments(input, num_groups, weight, bias)
    grouped = _grouped(input, num_groups)
    xhat, _ = _standardize(grouped, *_moments(grouped, (2,)), float(eps))
    return _affine(xhat.reshape(input.shape), _per_channel(weight, input.ndim), _per_channel(bias, input.ndim))


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
    grouped = _grouped(input, num_groups)
    xhat, invstd = _standardize(grouped, *_moments(grouped, (2,)), float(eps))
    xhat_full = xhat.reshape(input.shape)
    axes = (0, *range(2, input.ndim))
    grad_weight = _sum(grad_output * xhat_full, axes)
    grad_bias = _sum(grad_output, axes)
    grad_xhat = grad_output if weight is None else grad_output * _per_channel(weight, input.ndim)
    grad_input = _standardize_backward(_grouped(grad_xhat, num_groups), xhat, invstd, (2,))
    return grad_input.reshape(input.shape), grad_weight, grad_bias
