"""Small helpers with math names that reproduce torch's rounding, for the kernels to call.

A kernel reads like its equations; where torch computes an equation in a particular
order, or accumulates a sum more accurately than a plain float32 sum would, the kernel
calls one of these instead of spelling the detail out.  Each helper's docstring says
what torch does and why it matters.  Read them when a kernel sends you here.

Helpers may hand work to the speed engine (``minireg._engine``); the kernels never do.
"""

from __future__ import annotations

import numpy as np

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


# ------------------------------------------------------------------------------ dropout


# ------------------------------------------------------------------------------ norms of gradients
