"""In-place twins of the normalisation kernels, for the normalisation layers.

Each ``name_`` here computes exactly what the textbook kernel ``name`` in
``minireg/nn/_functional/`` computes -- the same floating-point operations on the same
operands, in the same order -- but writes its steps into the one or two batch-sized
arrays it allocates (``x - mu``, ``xhat``) instead of a fresh array per step.
Read the textbook kernels for the math; ``reference_tests/test_norm_twins.py`` proves
every twin bit-identical to its kernel.  The layers (``BatchNorm*``, ``InstanceNorm*``,
``LayerNorm``, ``GroupNorm``) call these; ``minireg.nn.functional`` is the textbook.

Why.  A fresh temporary the size of a batch (25 MiB for a (32, 64, 56, 56) float32 batch)
comes from ``malloc`` as new pages, which glibc returns to the system when they are freed,
so every temporary costs thousands of page faults.  The textbook batch norm forward makes
three such arrays and its backward five, where the twins make one each; through the
textbook kernels the layers' forward + backward took (2-core dev machine, float32, busy)
about 1.4x as long for BatchNorm2d on 32 x 64 x 56 x 56, 1.8x for BatchNorm1d on
1024 x 4096, 1.5x for LayerNorm on 1024 x 4096 and 2x for GroupNorm.  A twin writes into
its own array only where the result has that array's dtype and shape (:func:`_into`):
a float32 batch with float64 parameters promotes to a new array, as the textbook does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.group_norm import by_group
from minireg.nn._functional.instance_norm import as_batch, repeated
from minireg.nn._functional.layer_norm import by_sample
from minireg.nn._functional.norm_checks import (
    check_batch_norm,
    check_group_norm,
    check_instance_norm,
    check_layer_norm,
)
from minireg.nn._functional.standardize import as_ncl
from minireg.numerics import (
    channel_mean,
    channel_sum,
    channel_variance,
    rounded_mean,
    row_mean,
    row_variance,
)

__all__ = [
    "batch_norm_backward_",
    "batch_norm_with_statistics_",
    "group_norm_",
    "group_norm_backward_",
    "instance_norm_backward_",
    "instance_norm_with_statistics_",
    "layer_norm_",
    "layer_norm_backward_",
    "native_batch_norm_",
    "standardize_",
    "standardize_backward_",
]


# ============================================================================ batch norm


def batch_norm_with_statistics_(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``batch_norm_with_statistics``: the same checks, then :func:`native_batch_norm_`."""
    input = as_tensor(input, "batch_norm")
    check_batch_norm(input, running_mean, running_var, weight, bias, training, eps)
    return native_batch_norm_(
        input, running_mean, running_var, weight, bias, training, float(momentum), float(eps)
    )


def native_batch_norm_(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``native_batch_norm``: ``y`` is built in the memory of ``x - mu``."""
    x = input.reshape(input.shape[0], input.shape[1], math.prod(input.shape[2:]))
    if training:
        mu = channel_mean(x)
        x_mu = x - mu
        var = channel_variance(x_mu)
        if running_mean is not None and running_var is not None and x.size > 0:
            n = x.shape[0] * x.shape[2]
            unbiased_var = var.reshape(-1) * (n / (n - 1))
            running_mean[...] = momentum * mu.reshape(-1) + (1 - momentum) * running_mean
            running_var[...] = momentum * unbiased_var + (1 - momentum) * running_var
    else:
        assert running_mean is not None and running_var is not None
        mu, var = running_mean.reshape(-1, 1), running_var.reshape(-1, 1)
        x_mu = x - mu
    s = 1.0 / np.sqrt(var + eps)
    gamma_s = s if weight is None else s * weight.reshape(-1, 1)
    y = _into(np.multiply, x_mu, gamma_s)
    if bias is not None:
        y = _into(np.add, y, bias.reshape(-1, 1))
    return y.reshape(input.shape), mu.reshape(-1), s.reshape(-1)


def batch_norm_backward_(
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
    """Twin of ``batch_norm_backward``: ``grad_input`` is built in the memory of ``x - mu``."""
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    x = input.reshape(input.shape[0], input.shape[1], math.prod(input.shape[2:]))
    dy = grad_output.reshape(x.shape)
    if training and save_mean is not None and save_invstd is not None:
        x_mu, s = x - save_mean.reshape(-1, 1), save_invstd.reshape(-1, 1)
    elif training:
        x_mu = x - channel_mean(x)
        s = 1.0 / np.sqrt(channel_variance(x_mu) + float(eps))
    else:
        assert running_mean is not None and running_var is not None
        x_mu = x - running_mean.reshape(-1, 1)
        s = 1.0 / np.sqrt(running_var.reshape(-1, 1) + float(eps))
    grad_bias = channel_sum(dy)
    grad_weight = channel_sum(dy, x_mu) * s
    gamma_s = s if weight is None else s * weight.reshape(-1, 1)
    dtype = x_mu.dtype
    if training:
        n = x.shape[0] * x.shape[2]
        mean_dy = rounded_mean(grad_bias, n, dtype)
        k = rounded_mean(grad_weight * s, n, dtype)
        grad_input = _into(np.multiply, x_mu, k)  # (x_mu * k - dy + mean_dy) * -gamma_s
        grad_input = _into(np.subtract, grad_input, dy)
        grad_input = _into(np.add, grad_input, mean_dy)
        grad_input = _into(np.multiply, grad_input, -gamma_s)
    else:
        grad_input = dy * gamma_s
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(dtype),
        grad_bias.reshape(-1).astype(dtype),
    )


# ============================================================================ instance norm
def instance_norm_with_statistics_(
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``instance_norm_with_statistics``: :func:`native_batch_norm_` inside."""
    input = as_tensor(input, "instance_norm")
    check_instance_norm(input, running_mean, running_var, weight, bias, use_input_stats)
    n, c = input.shape[:2]
    mean_copies, var_copies = repeated(running_mean, n), repeated(running_var, n)
    y, mu, s = native_batch_norm_(
        as_batch(input),
        mean_copies,
        var_copies,
        repeated(weight, n),
        repeated(bias, n),
        use_input_stats,
        float(momentum),
        float(eps),
    )
    if use_input_stats and running_mean is not None and running_var is not None:
        assert mean_copies is not None and var_copies is not None
        running_mean[...] = mean_copies.reshape(n, c).mean(axis=0)
        running_var[...] = var_copies.reshape(n, c).mean(axis=0)
    return y.reshape(input.shape), mu.reshape(n, c), s.reshape(n, c)


def instance_norm_backward_(
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
    """Twin of ``instance_norm_backward``: :func:`batch_norm_backward_` inside."""
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    n, c = input.shape[:2]
    grad_input, grad_weight_copies, grad_bias_copies = batch_norm_backward_(
        as_batch(grad_output),
        as_batch(input),
        repeated(running_mean, n),
        repeated(running_var, n),
        repeated(weight, n),
        use_input_stats,
        eps,
        save_mean=None if save_mean is None else np.reshape(save_mean, -1),
        save_invstd=None if save_invstd is None else np.reshape(save_invstd, -1),
    )
    grad_weight = channel_sum(grad_weight_copies.reshape(n, c, 1))
    grad_bias = channel_sum(grad_bias_copies.reshape(n, c, 1))
    dtype = grad_weight_copies.dtype
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(dtype),
        grad_bias.reshape(-1).astype(dtype),
    )


# ============================================================================ standardize
def standardize_(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``standardize``: ``xhat`` is built in the memory of ``x - mu``."""
    mu = row_mean(x)
    x_mu = x - mu
    var = row_variance(x_mu)
    s = 1.0 / np.sqrt(var + eps)
    return _into(np.multiply, x_mu, s), s


def standardize_backward_(grad_xhat: np.ndarray, xhat: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Twin of ``standardize_backward``, built in the memory of ``xhat`` (which it overwrites)."""
    mean_g = row_mean(grad_xhat)
    mean_g_xhat = row_mean(grad_xhat, xhat)
    grad_input = _into(np.multiply, xhat, mean_g_xhat)  # (xhat * mean_g_xhat - g + mean_g) * -s
    grad_input = _into(np.subtract, grad_input, grad_xhat)
    grad_input = _into(np.add, grad_input, mean_g)
    return _into(np.multiply, grad_input, -s)


# ============================================================================ layer norm
def layer_norm_(
    input: np.ndarray,
    normalized_shape: Sequence[int],
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    """Twin of ``layer_norm``: ``y`` is built in the memory of ``xhat``."""
    input, normalized_shape = as_tensor(input, "layer_norm"), tuple(normalized_shape)
    check_layer_norm(input, normalized_shape, weight, bias)
    xhat, _ = standardize_(by_sample(input, normalized_shape), float(eps))
    return _affine_(xhat, _flat(weight), _flat(bias)).reshape(input.shape)


def layer_norm_backward_(
    grad_output: np.ndarray,
    input: np.ndarray,
    normalized_shape: Sequence[int],
    weight: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``layer_norm_backward``: ``grad_input`` is built in the memory of ``xhat``."""
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    normalized_shape = tuple(normalized_shape)
    xhat, s = standardize_(by_sample(input, normalized_shape), float(eps))
    dy = by_sample(grad_output, normalized_shape)
    per_element = (xhat.shape[0], xhat.shape[2], 1)
    grad_weight = channel_sum(dy.reshape(per_element), xhat.reshape(per_element))
    grad_bias = channel_sum(dy.reshape(per_element))
    grad_xhat = dy if weight is None else dy * weight.reshape(-1)
    dtype = xhat.dtype
    grad_input = standardize_backward_(grad_xhat, xhat, s)
    return (
        grad_input.reshape(input.shape),
        grad_weight.astype(dtype).reshape(normalized_shape),
        grad_bias.astype(dtype).reshape(normalized_shape),
    )


# ============================================================================ group norm
def group_norm_(
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    """Twin of ``group_norm``: ``y`` is built in the memory of ``xhat``."""
    input = as_tensor(input, "group_norm")
    check_group_norm(input, num_groups, weight, bias)
    xhat, _ = standardize_(by_group(input, num_groups), float(eps))
    xhat = as_ncl(xhat.reshape(input.shape))
    return _affine_(xhat, _per_channel(weight), _per_channel(bias)).reshape(input.shape)


def group_norm_backward_(
    grad_output: np.ndarray,
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``group_norm_backward``: ``grad_input`` is built in the memory of ``xhat``."""
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    xhat, s = standardize_(by_group(input, num_groups), float(eps))
    dy = as_ncl(grad_output)
    grad_weight = channel_sum(dy, as_ncl(xhat.reshape(input.shape)))
    grad_bias = channel_sum(dy)
    grad_xhat = by_group(dy if weight is None else dy * weight.reshape(-1, 1), num_groups)
    dtype = xhat.dtype
    grad_input = standardize_backward_(grad_xhat, xhat, s)
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(dtype),
        grad_bias.reshape(-1).astype(dtype),
    )


# ============================================================================ in place
def _affine_(xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
    """``xhat * weight + bias`` (each factor optional), in xhat's memory where it fits."""
    y = xhat if weight is None else _into(np.multiply, xhat, weight)
    return y if bias is None else _into(np.add, y, bias)


def _flat(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.reshape(-1)


def _per_channel(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.reshape(-1, 1)


def _into(ufunc: np.ufunc, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``ufunc(a, b)``, written into ``a`` (an array of our own) when the result has a's
    dtype and shape; a new array otherwise.  The same operation either way."""
    fits = np.result_type(a, b) == a.dtype and np.broadcast_shapes(a.shape, b.shape) == a.shape
    return ufunc(a, b, out=a if fits else None)
