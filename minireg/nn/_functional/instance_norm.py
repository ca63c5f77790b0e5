r"""Instance normalisation (Ulyanov, Vedaldi & Lempitsky, 2016), forward and backward.

Read ``batch_norm.py`` first: instance norm *is* batch norm, of the ``(1, N*C, *spatial)``
view with every per-channel argument repeated N times, as torch computes it.  Next:
``layer_norm.py``.
"""

from __future__ import annotations

import numpy as np

from minireg.nn._functional.batch_norm import batch_norm_backward, native_batch_norm
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.norm_checks import check_instance_norm
from minireg.numerics import channel_sum

__all__ = ["instance_norm", "instance_norm_backward", "instance_norm_with_statistics"]


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
        \qquad \hat\sigma^2 \leftarrow \tfrac1N \sum_i \big(m\,\tfrac{n}{n-1}\sigma_i^2
        + (1-m)\,\hat\sigma^2\big)

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
    check_instance_norm(input, running_mean, running_var, weight, bias, use_input_stats)
    n, c = input.shape[:2]
    mean_copies, var_copies = repeated(running_mean, n), repeated(running_var, n)
    y, mu, s = native_batch_norm(
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
    shared parameter is their sum over the N samples (in float64, rounded once).
    ``save_mean`` and ``save_invstd`` (keyword only) are the forward's ``(N, C)``
    statistics from :func:`instance_norm_with_statistics`, used instead of recomputing
    them, as there.
    """
    grad_output, input = np.asarray(grad_output), np.asarray(input)
    n, c = input.shape[:2]
    grad_input, grad_weight_copies, grad_bias_copies = batch_norm_backward(
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
    grad_weight = channel_sum(grad_weight_copies.reshape(n, c, 1))  # sum over the N copies
    grad_bias = channel_sum(grad_bias_copies.reshape(n, c, 1))
    dtype = grad_weight_copies.dtype
    return (
        grad_input.reshape(input.shape),
        grad_weight.reshape(-1).astype(dtype),
        grad_bias.reshape(-1).astype(dtype),
    )


def as_batch(a: np.ndarray) -> np.ndarray:
    """The ``(1, N*C, *spatial)`` view on which instance norm is batch norm."""
    return a.reshape((1, a.shape[0] * a.shape[1]) + a.shape[2:])


def repeated(a: np.ndarray | None, copies: int) -> np.ndarray | None:
    """A per-channel vector repeated for each of the N samples: ``(N*C,)``."""
    return None if a is None else np.tile(a, copies)
