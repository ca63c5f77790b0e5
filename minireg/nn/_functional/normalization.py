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

Every kernel works on a three-axis view ``(N, C, L)`` of its (contiguous) input, with
``L`` the product of the trailing axes: batch norm's groups are the channels, reduced
over N and L; layer and group norm view their input as ``(samples, 1, normalized
elements)`` and ``(N, G, C/G * spatial)`` and reduce each row over L.  :func:`_sum` does
all those reductions; the statistics come out shaped ``(C, 1)`` or ``(N, C, 1)``, which
broadcast against the view.

Calling convention.  A forward function takes ``torch.nn.functional``'s arguments in
its order and returns the output, as torch does; ``batch_norm`` and ``instance_norm``
update the running statistics they are given **in place**.  Each ``*_backward`` takes the
upstream gradient ``grad_output`` followed by the forward's own arguments (without
``bias`` and ``momentum``, which the gradient does not depend on) and returns
``(grad_input, grad_weight, grad_bias)``.  It recomputes the statistics from the input rather
than receiving a cache, so the forward keeps torch's signature; batch and instance norm
also take the forward's own per-channel ``save_mean`` and ``save_invstd`` (as torch's
``native_batch_norm_backward`` does), returned by ``batch_norm_with_statistics`` and
``instance_norm_with_statistics``: the same values, three passes over the input fewer.
``grad_weight`` :math:`=\sum \bar y\,\hat x` and ``grad_bias`` :math:`=\sum \bar y` are
returned even when the layer has no weight or bias; a caller keeps the ones it owns.

Numerics.  Sums are accumulated in float64 (see :func:`_sum`) and rounded once to the
input's dtype (torch's float32 CPU kernels accumulate in double too: their saved float32
mean is the float64 mean rounded); for float32 data the mean and variance of 1e7
values keep a relative error below 1e-6.  Everything else stays in the input's dtype,
computed in place on the kernel's own copy :math:`x-\mu` where that saves a pass over
memory.  torch evaluates the output as :math:`x\cdot(\gamma s) + (\beta - \mu\gamma s)`
with :math:`s = 1/\sqrt{\sigma^2+\epsilon}`, not :math:`(x-\mu)\,(\gamma s) + \beta` as
here, so float32 results differ from torch's by a few units in the last place of the
largest of those terms.

Shapes in messages are printed the NumPy way, ``(3, 4)``, where torch prints
``torch.Size([3, 4])``; shapes torch prints as lists (``[2, 3]``) stay lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor, check_floating

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_with_statistics",
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_backward",
    "instance_norm_with_statistics",
    "layer_norm",
    "layer_norm_backward",
]


# ============================================================================ shared math
# The most values one partial sum of _sum adds up in the input's dtype.
_RUN = 4096


def _sum(a: np.ndarray, b: np.ndarray | None = None, *, over_batch: bool) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) of ``(N, C, L)`` arrays over L, and over N as
    well when ``over_batch``: float64 of shape ``(C,)``, else ``(N, C)``.

    Accurate and fast at once.  Adding millions of float32 values one after another in
    float32 loses digits, and NumPy does just that along a strided axis (a channel of an
    ``(N, C)`` batch) and in float32 dot products (einsum, dot: a few SIMD lanes); it sums
    pairwise only along a contiguous axis.  Asking it for a float64 sum instead makes it
    convert every value first, two to three times slower.  So the values are cut into
    *runs* of at most ``_RUN``: pieces of a row when rows are long, else blocks of
    ``_RUN // L`` whole samples (batch norm of ``(N, C)``: L = 1).  ``np.einsum`` sums each
    run in the input's dtype, in one vectorised pass, and the runs' partial sums are added
    in float64: a relative error near 1e-8 at 1e7 float32 values (test_norm_accuracy.py).
    """
    operands = (a,) if b is None else (a, b)

    def einsum(pattern: str, *views: np.ndarray) -> np.ndarray:  # the pattern for each operand
        inputs, output = pattern.split("->")
        return np.einsum(",".join([inputs] * len(views)) + "->" + output, *views)

    n, c, l = a.shape
    if l >= _RUN or not over_batch:  # runs along each row; a row's remainder is one more run
        cut = l - l % _RUN
        runs = einsum("ncrk->ncr", *(v[..., :cut].reshape(n, c, cut // _RUN, _RUN) for v in operands))
        rows = runs.sum(axis=2, dtype=np.float64) + einsum("ncl->nc", *(v[..., cut:] for v in operands))
        return rows.sum(axis=0) if over_batch else rows  # (float64 over the samples)
    per_run = _RUN // max(l, 1)  # samples per run; the leftover samples are one more run
    cut = n - n % per_run
    runs = einsum("rkcl->rc", *(v[:cut].reshape(cut // per_run, per_run, c, l) for v in operands))
    return runs.sum(axis=0, dtype=np.float64) + einsum("ncl->c", *(v[cut:] for v in operands))


def _count(x: np.ndarray, over_batch: bool) -> int:
    """How many values of the ``(N, C, L)`` array ``x`` share one mean and variance."""
    return (x.shape[0] if over_batch else 1) * x.shape[2]


def _moments(x: np.ndarray, over_batch: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(x - mean, mean, var)``: :math:`\mu = \frac1n\sum x` and the biased
    :math:`\sigma^2 = \frac1n\sum (x-\mu)^2` of each group of the ``(N, C, L)`` array ``x``
    (see :func:`_sum`), shaped ``(C, 1)`` or ``(N, C, 1)``, all in x's dtype.  The centred
    values are a new array that the caller may overwrite.  Empty groups get mean 0, variance 1."""
    n = _count(x, over_batch)
    if n == 0:  # nothing to normalise: avoid 0/0
        shape = (x.shape[1], 1) if over_batch else (x.shape[0], x.shape[1], 1)
        return x.copy(), np.zeros(shape, x.dtype), np.ones(shape, x.dtype)
    mean = (_sum(x, over_batch=over_batch) / n).astype(x.dtype)[..., None]
    centered = x - mean
    var = (_sum(centered, centered, over_batch=over_batch) / n).astype(x.dtype)[..., None]
    return centered, mean, var


def _invstd(var: np.ndarray, eps: float) -> np.ndarray:
    r""":math:`s = 1/\sqrt{\sigma^2+\epsilon}` (eps inside the square root)."""
    return 1.0 / np.sqrt(var + eps)


def _standardize(x: np.ndarray, over_batch: bool, eps: float) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\hat x = (x-\mu)\,s` (a new array) and :math:`s` for each group of the
    ``(N, C, L)`` array ``x`` (see :func:`_moments`)."""
    centered, _, var = _moments(x, over_batch)
    invstd = _invstd(var, eps)
    centered *= invstd  # in place: centered is our own array
    return centered, invstd


def _standardize_backward(
    grad_xhat: np.ndarray, xhat: np.ndarray, scale: np.ndarray, sum_g: np.ndarray, sum_gx: np.ndarray, n: int
) -> np.ndarray:
    r"""Gradient through :math:`\hat x = (x-\mu)\,s` when :math:`\mu` and :math:`\sigma^2` are
    the mean and biased variance of the same :math:`n` elements (one group of the
    ``(N, C, L)`` arrays):

    .. math::
        \frac{\partial L}{\partial x} = \frac{s}{n}\Big(n\,\hat g - \sum \hat g
            - \hat x \sum \hat g\,\hat x\Big), \qquad \hat g = \frac{\partial L}{\partial \hat x}

    (the two sums, over each group, are the paths through :math:`\mu` and :math:`\sigma^2`;
    they come from :func:`_sum` as ``sum_g`` and ``sum_gx``, float64).  ``scale`` is :math:`s`, or
    :math:`\gamma s` when :math:`\gamma` is constant over each group (batch norm): it then
    factors out of the parentheses.  ``xhat`` may also be the centred :math:`x-\mu` with
    ``sum_gx`` multiplied by :math:`s`, as the product :math:`\hat x \sum \hat g\,\hat x` is then
    the same (batch norm, which so never forms :math:`\hat x`).  The result is built in
    ``xhat``'s memory (no new array, one pass less over memory), so ``xhat`` is lost.
    """
    if n == 0:
        return np.zeros_like(grad_xhat)
    mean_g = (sum_g / n).astype(xhat.dtype)[..., None]
    mean_gx = (sum_gx / n).astype(xhat.dtype)[..., None]
    # s * (g - mean(g) - xhat * mean(g xhat)), computed as -s * ((xhat * mean(g xhat) - g) + mean(g))
    grad_input = xhat
    grad_input *= mean_gx
    grad_input -= grad_xhat
    grad_input += mean_g
    grad_input *= -scale
    return grad_input


def _per_channel(a: np.ndarray | None) -> np.ndarray | None:
    """A length-C vector shaped ``(C, 1)`` to broadcast against an ``(N, C, L)`` view."""
    return None if a is None else a.reshape(-1, 1)


def _as_ncl(a: np.ndarray) -> np.ndarray:
    """The ``(N, C, L)`` view of an ``(N, C, *spatial)`` array, L = prod(spatial)."""
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _affine_(xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
    r""":math:`y = \gamma\hat x + \beta`, in place on ``xhat`` (weight and bias shaped to broadcast)."""
    if weight is not None:
        xhat *= weight
    if bias is not None:
        xhat += bias
    return xhat


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
def _batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm without argument checks (instance norm calls it on a reshaped input):
    ``(output, mean, invstd)``, the last two the ``(C,)`` statistics it normalised with."""
    x = _as_ncl(input)
    if training:  # this batch's statistics
        centered, mean, var = _moments(x, over_batch=True)
        if running_mean is not None and running_var is not None and input.size > 0:
            n = _count(x, over_batch=True)
            # The running variance estimates the population variance, so torch blends in the
            # UNBIASED batch variance sum/(n-1), though it normalised with the biased sum/n.
            unbiased = var.reshape(-1) * (n / (n - 1))
            running_mean[...] = momentum * mean.reshape(-1) + (1 - momentum) * running_mean
            running_var[...] = momentum * unbiased + (1 - momentum) * running_var
    else:  # the running estimates
        assert running_mean is not None and running_var is not None
        mean, var = running_mean.reshape(-1, 1), running_var.reshape(-1, 1)
        centered = x - mean
    invstd = _invstd(var, eps)
    # y = gamma * xhat + beta = (x - mu) * (gamma * s) + beta: one pass for both factors
    scale = invstd if weight is None else invstd * _per_channel(weight)
    output = _affine_(centered, scale, _per_channel(bias)).reshape(input.shape)
    return output, mean.reshape(-1), invstd.reshape(-1)


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
    return batch_norm_with_statistics(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


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
    if training:
        _verify_batch_size(input.shape, _shown(input.shape))
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    elif eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    channels = input.shape[1] if input.ndim > 1 else 0  # torch counts 0 channels below 2-D
    _check_batch_norm_arguments(channels, 1, running_mean, running_var, weight, bias, training)
    check_floating(input, "batch_norm")
    return _batch_norm(input, running_mean, running_var, weight, bias, training, float(momentum), float(eps))


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
    :math:`\gamma` is constant over it, which gives the compact closed form

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma\,s}{n}\Big(n\,\bar y - \sum \bar y
            - \hat x \sum \bar y\,\hat x\Big), \qquad s = \frac{1}{\sqrt{\sigma^2+\epsilon}}

    In training, ``save_mean`` and ``save_invstd`` (keyword only, both or neither) are the
    forward's :math:`\mu` and :math:`s` from :func:`batch_norm_with_statistics`; given, they
    are used instead of being recomputed from ``input`` (the same values, so the same
    result to the bit).  In evaluation the running statistics are constants,
    :math:`\partial L/\partial x = \gamma\,s\,\bar y`, and the saved ones are not used.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    x, grad_y = _as_ncl(input), _as_ncl(grad_output)
    if training and save_mean is not None and save_invstd is not None:  # the forward's statistics
        centered, invstd = x - _per_channel(save_mean), _per_channel(save_invstd)
    elif training:  # recomputed, exactly as the forward computes them
        centered, _, var = _moments(x, over_batch=True)
        invstd = _invstd(var, float(eps))
    else:
        assert running_mean is not None and running_var is not None
        centered, invstd = x - running_mean.reshape(-1, 1), _invstd(running_var.reshape(-1, 1), float(eps))
    s = invstd.reshape(-1)
    sum_g = _sum(grad_y, over_batch=True)
    sum_gx = _sum(grad_y, centered, over_batch=True) * s  # sum ybar xhat = s sum ybar (x - mu), in float64
    scale = invstd if weight is None else invstd * _per_channel(weight)  # gamma * s
    if training:  # the closed form above, gamma folded into the scale, x - mu standing for xhat
        n = _count(x, over_batch=True)
        grad_input = _standardize_backward(grad_y, centered, scale, sum_g, sum_gx * s, n)
    else:
        grad_input = grad_y * scale
    return grad_input.reshape(input.shape), sum_gx.astype(centered.dtype), sum_g.astype(centered.dtype)


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
    return instance_norm_with_statistics(
        input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps
    )[0]


def instance_norm_with_statistics(
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r""":func:`instance_norm` that also returns the statistics it normalised with:
    ``(output, save_mean, save_invstd)``, one :math:`\mu` and :math:`s` per (sample,
    channel), shaped ``(N, C)``, for :func:`instance_norm_backward`."""
    input = as_tensor(input, "instance_norm")
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(
            f"Expected more than 1 spatial element when training, got input size {_shown(input.shape)}"
        )
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
    copies, channels = input.shape[:2]
    _check_batch_norm_arguments(channels, copies, running_mean, running_var, weight, bias, use_input_stats)
    check_floating(input, "batch_norm")
    mean_copies, var_copies = _repeat(running_mean, copies), _repeat(running_var, copies)
    output, mean, invstd = _batch_norm(
        _as_batch(input), mean_copies, var_copies, _repeat(weight, copies), _repeat(bias, copies),
        use_input_stats, float(momentum), float(eps),
    )
    if use_input_stats and running_mean is not None and running_var is not None:
        assert mean_copies is not None and var_copies is not None
        running_mean[...] = mean_copies.reshape(copies, channels).mean(axis=0)
        running_var[...] = var_copies.reshape(copies, channels).mean(axis=0)
    return output.reshape(input.shape), mean.reshape(copies, channels), invstd.reshape(copies, channels)


def instance_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    use_input_stats: bool = True,
    eps: float = 1e-5,
    *,
    save_mean: np.ndarray | None = None,
    save_invstd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :func:`instance_norm`: ``(grad_input, grad_weight, grad_bias)``.

    :func:`batch_norm_backward` on the ``(1, N*C, *spatial)`` view gives the gradient of
    each of the N repeated copies of :math:`\gamma` and :math:`\beta`; the gradient of the
    shared parameter is their sum over the N samples.  ``save_mean`` and ``save_invstd``
    (keyword only) are the forward's ``(N, C)`` statistics from
    :func:`instance_norm_with_statistics`, used instead of recomputing them, as there.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    copies, channels = input.shape[:2]
    grad_input, grad_weight_copies, grad_bias_copies = batch_norm_backward(
        _as_batch(grad_output), _as_batch(input), _repeat(running_mean, copies), _repeat(running_var, copies),
        _repeat(weight, copies), use_input_stats, eps,
        save_mean=None if save_mean is None else np.reshape(save_mean, -1),
        save_invstd=None if save_invstd is None else np.reshape(save_invstd, -1),
    )

    def summed_over_copies(per_copy: np.ndarray) -> np.ndarray:  # (N*C,) -> (C,)
        return _sum(per_copy.reshape(copies, channels, 1), over_batch=True).astype(per_copy.dtype)

    return grad_input.reshape(input.shape), summed_over_copies(grad_weight_copies), summed_over_copies(grad_bias_copies)


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


def _by_sample(a: np.ndarray, normalized_shape: tuple[int, ...]) -> np.ndarray:
    """The ``(samples, 1, prod(normalized_shape))`` view: one row per sample."""
    return a.reshape(math.prod(a.shape[: a.ndim - len(normalized_shape)]), 1, math.prod(normalized_shape))


def _flat(a: np.ndarray | None) -> np.ndarray | None:
    """A weight or bias of shape normalized_shape, flattened to broadcast against the rows."""
    return None if a is None else a.reshape(-1)


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
    input, normalized_shape = as_tensor(input, "layer_norm"), tuple(normalized_shape)
    _check_layer_norm_arguments(input, normalized_shape, weight, bias)
    check_floating(input, "LayerNormKernelImpl", weight, bias)
    xhat, _ = _standardize(_by_sample(input, normalized_shape), over_batch=False, eps=float(eps))
    return _affine_(xhat, _flat(weight), _flat(bias)).reshape(input.shape)


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
    grad_output, input, normalized_shape = np.asarray(grad_output), np.asarray(input), tuple(normalized_shape)
    xhat, invstd = _standardize(_by_sample(input, normalized_shape), over_batch=False, eps=float(eps))
    grad_y = _by_sample(grad_output, normalized_shape)
    samples, _, elements = xhat.shape
    # sums over the samples: the (samples, elements, 1) views, reduced over their first axis
    per_element = (samples, elements, 1)
    grad_weight = _sum(grad_y.reshape(per_element), xhat.reshape(per_element), over_batch=True)
    grad_bias = _sum(grad_y.reshape(per_element), over_batch=True)
    grad_xhat = grad_y if weight is None else grad_y * _flat(weight)
    grad_input = _standardize_backward(
        grad_xhat, xhat, invstd,
        _sum(grad_xhat, over_batch=False), _sum(grad_xhat, xhat, over_batch=False), elements,
    )
    dtype = xhat.dtype
    return (
        grad_input.reshape(input.shape),
        grad_weight.astype(dtype).reshape(normalized_shape),
        grad_bias.astype(dtype).reshape(normalized_shape),
    )


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
    return a.reshape(a.shape[0], num_groups, a.shape[1] // num_groups * math.prod(a.shape[2:]))


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
    input = as_tensor(input, "group_norm")
    _check_group_norm_arguments(input, num_groups, weight, bias)
    check_floating(input, "GroupNormKernelImpl", weight, bias)
    xhat, _ = _standardize(_grouped(input, num_groups), over_batch=False, eps=float(eps))
    xhat = _as_ncl(xhat.reshape(input.shape))  # gamma and beta apply per channel
    return _affine_(xhat, _per_channel(weight), _per_channel(bias)).reshape(input.shape)


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
    xhat, invstd = _standardize(_grouped(input, num_groups), over_batch=False, eps=float(eps))
    grad_y = _as_ncl(grad_output)
    channel_xhat = _as_ncl(xhat.reshape(input.shape))  # the same values, one row per (sample, channel)
    grad_weight = _sum(grad_y, channel_xhat, over_batch=True)
    grad_bias = _sum(grad_y, over_batch=True)
    grad_xhat = _grouped(grad_y if weight is None else grad_y * _per_channel(weight), num_groups)
    grad_input = _standardize_backward(
        grad_xhat, xhat, invstd,
        _sum(grad_xhat, over_batch=False), _sum(grad_xhat, xhat, over_batch=False), xhat.shape[2],
    )
    return grad_input.reshape(input.shape), grad_weight.astype(xhat.dtype), grad_bias.astype(xhat.dtype)
