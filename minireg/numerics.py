"""Small helpers with math names that reproduce torch's rounding, for the kernels to call.

A kernel reads like its equations; where torch computes an equation in a particular
order, or accumulates a sum more accurately than a plain float32 sum would, the kernel
calls one of these instead of spelling the detail out.  Each helper's docstring says
what torch does and why it matters.  Read them when a kernel sends you here.

Helpers may hand work to the speed engine (``minireg._engine``); the kernels never do.
"""

from __future__ import annotations

import numpy as np

from minireg._engine.norms import blocked_sum

__all__: list[str] = []

# ------------------------------------------------------------------------------ optimizers
def regularized_gradient(
    grad: np.ndarray, param: np.ndarray, weight_decay: float, maximize: bool
) -> np.ndarray:
    r"""The gradient an optimizer follows, :math:`g = \pm\nabla_\theta f + \lambda\theta`.

    ``-grad`` when ``maximize`` (gradient *ascent*), plus the L2 term ``weight_decay *
    param`` when that is not 0, as torch's ``grad.add(param, alpha=weight_decay)``.  With
    neither, ``grad`` itself is returned: a kernel must not write into it.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    return g


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    r"""``start + weight * (end - start)``, rounded the way ``torch.lerp`` rounds it.

    torch first rounds ``weight`` to the arrays' dtype, and for ``|weight| >= 0.5`` it
    computes the same value from the other end, ``end - (end - start) * (1 - weight)``,
    which is more accurate there.  Adam's first moment
    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t` is written in torch as
    ``m.lerp_(g, 1 - beta1)``, which rounds differently from ``beta1*m + (1-beta1)*g``;
    calling this helper keeps minireg's :math:`m_t` bit for bit torch's.
    """
    weight = start.dtype.type(weight)
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)




# ------------------------------------------------------------------------------ normalisation
# The norm kernels work on (N, C, L) views of their input: batch norm takes one mean per
# channel, over N and L ("channel" helpers); layer and group norm one per row, over L
# ("row" helpers).  Every sum is accumulated in float64 and rounded once.
__all__ += ["channel_sum", "row_sum", "rounded_mean"]
__all__ += ["channel_mean", "channel_variance", "row_mean", "row_variance"]


def channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) over each channel of ``(N, C, L)`` arrays, that
    is over N and L: float64, shaped ``(C, 1)`` to broadcast against them.

    torch's CPU kernels accumulate float32 statistics in double (its saved float32 mean is
    the float64 mean rounded once), and so does this sum.  A plain float32 sum that runs
    through millions of values one after another -- what NumPy does along a strided axis,
    such as a channel of an ``(N, C)`` batch -- misses by 1e-5 to 1e-4 at 1e7 values; this
    one stays near 1e-8.  How it is done fast is the engine's business
    (:func:`minireg._engine.norms.blocked_sum`); the grouping depends on the shape only.
    """
    return blocked_sum(a, b, over_batch=True)[:, None]


def row_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) over each row (the last axis) of ``(N, C, L)``
    arrays: float64, shaped ``(N, C, 1)``; accumulated as :func:`channel_sum`."""
    return blocked_sum(a, b, over_batch=False)[..., None]


def rounded_mean(total: np.ndarray, count: int, dtype: np.dtype) -> np.ndarray:
    """``total / count`` (a float64 sum of ``count`` values) rounded once to ``dtype``, as
    torch rounds its double accumulators; 0 when there are no values (not 0/0 = NaN)."""
    if count == 0:
        return np.zeros(total.shape, dtype)
    return (total / count).astype(dtype)


def channel_mean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r"""The mean of ``a`` (or of :math:`a\,b`) over each channel of ``(N, C, L)`` arrays,
    :math:`\frac1n\sum` with n = N L, shaped ``(C, 1)`` in their dtype; 0 for an empty channel."""
    return rounded_mean(channel_sum(a, b), a.shape[0] * a.shape[2], _dtype(a, b))


def channel_variance(x_mu: np.ndarray) -> np.ndarray:
    r"""The biased :math:`\sigma^2 = \frac1n\sum (x-\mu)^2` of each channel, from the
    centred values ``x_mu`` (the squares are summed, not formed first), shaped ``(C, 1)``.
    An empty channel gets 1, so that :math:`1/\sqrt{\sigma^2+\epsilon}` stays finite
    (minireg's choice: torch refuses empty inputs in most of its kernels)."""
    if x_mu.shape[0] * x_mu.shape[2] == 0:
        return np.ones((x_mu.shape[1], 1), x_mu.dtype)
    return channel_mean(x_mu, x_mu)


def row_mean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r"""The mean of ``a`` (or of :math:`a\,b`) over each row of ``(N, C, L)`` arrays, shaped
    ``(N, C, 1)`` in their dtype; 0 for an empty row."""
    return rounded_mean(row_sum(a, b), a.shape[2], _dtype(a, b))


def row_variance(x_mu: np.ndarray) -> np.ndarray:
    r"""The biased :math:`\sigma^2` of each row from the centred values ``x_mu``, shaped
    ``(N, C, 1)``; 1 for an empty row (see :func:`channel_variance`)."""
    if x_mu.shape[2] == 0:
        return np.ones(x_mu.shape[:2] + (1,), x_mu.dtype)
    return row_mean(x_mu, x_mu)


def _dtype(a: np.ndarray, b: np.ndarray | None) -> np.dtype:
    return a.dtype if b is None else np.result_type(a, b)


# ------------------------------------------------------------------------------ dropout


# ------------------------------------------------------------------------------ norms of gradients
