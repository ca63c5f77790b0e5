r"""Standardisation, the step every normalisation layer shares, and its derivative.

Step 6 of the reading path: this derivation, then the norms.  Next: ``batch_norm.py``, then
``instance_norm.py``, ``layer_norm.py``, ``group_norm.py`` (their argument checks are in
``norm_checks.py``).  Step 7 is dropout (``dropout.py``), init and clipping.

**Forward.**  Batch, instance, layer and group norm all standardise :math:`n` values
:math:`x_1..x_n`, then apply an affine map:

.. math::
    \mu = \tfrac1n \textstyle\sum_i x_i, \qquad \sigma^2 = \tfrac1n \sum_i (x_i-\mu)^2, \qquad
    s = \frac{1}{\sqrt{\sigma^2+\epsilon}}, \qquad \hat x_i = (x_i-\mu)\,s, \qquad
    y_i = \gamma\,\hat x_i + \beta

with the **biased** variance and :math:`\epsilon` inside the square root.  The norms differ
only in which values share one :math:`(\mu, \sigma^2)`:

=================  ==========================================  ===========================
kernel             one mean and variance per                   :math:`\gamma, \beta` per
=================  ==========================================  ===========================
``batch_norm``     channel, over ``(N, *spatial)``             channel
``instance_norm``  sample and channel, over ``(*spatial)``     channel
``layer_norm``     sample, over the trailing normalized_shape  element of normalized_shape
``group_norm``     sample and group, over ``(C/G, *spatial)``  channel
=================  ==========================================  ===========================

Each kernel views its input as three axes ``(N, C, L)``, L the product of the trailing
ones (:func:`as_ncl`): batch norm reduces each channel over N and L, layer and group norm
view their input as ``(samples, 1, normalized elements)`` and ``(N, G, C/G * spatial)``
and reduce each row over L.  The sums come from :mod:`minireg.numerics`: accumulated in
float64 and rounded once to the input's dtype, as torch's CPU kernels do.

**Backward: the derivation.**  Write :math:`\hat g_j = \partial L/\partial \hat x_j`.  Every
:math:`\hat x_j` depends on every :math:`x_i` through :math:`\mu` and :math:`\sigma^2`:

.. math::
    \frac{\partial \mu}{\partial x_i} = \frac1n, \qquad
    \frac{\partial \sigma^2}{\partial x_i} = \frac2n (x_i-\mu), \qquad
    \frac{\partial s}{\partial x_i} = -\frac{s^3}{n}(x_i-\mu) = -\frac{s^2}{n}\hat x_i,

so :math:`\partial \hat x_j/\partial x_i = s\,(\delta_{ij} - \frac1n - \frac1n \hat x_i \hat x_j)`
and, summing over j,

.. math::
    \frac{\partial L}{\partial x_i}
        = s\Big(\hat g_i - \overline{\hat g} - \hat x_i\,\overline{\hat g\,\hat x}\Big),
    \qquad \overline{\hat g} = \tfrac1n \textstyle\sum_j \hat g_j, \quad
    \overline{\hat g\,\hat x} = \tfrac1n \sum_j \hat g_j \hat x_j.

The two means are the paths through :math:`\mu` and through :math:`\sigma^2`.  With the
affine map, :math:`\hat g = \gamma\,\bar y` (:math:`\bar y = \partial L/\partial y`),
:math:`\partial L/\partial\gamma = \sum \bar y\,\hat x` and :math:`\partial L/\partial\beta =
\sum \bar y`, summed over everything that shares one :math:`\gamma`.

**Calling convention.**  A forward function takes ``torch.nn.functional``'s arguments in
its order and returns the output, as torch does; ``batch_norm`` and ``instance_norm``
update the running statistics they are given **in place**.  Each ``*_backward`` takes
the upstream gradient followed by the forward's own arguments (without ``bias`` and
``momentum``, which the gradient does not depend on) and returns ``(grad_input,
grad_weight, grad_bias)``, the last two even when the layer has no weight or bias (a
caller keeps the ones it owns).  It recomputes the statistics from the input; batch and
instance norm also take the forward's own ``save_mean`` and ``save_invstd`` (as torch's
``native_batch_norm_backward`` does), returned by their ``*_with_statistics`` forward:
the same values, three passes over the input fewer.

**Rounding.**  torch evaluates the output as :math:`x\cdot(\gamma s) + (\beta - \mu\gamma s)`,
not :math:`(x-\mu)\,(\gamma s) + \beta` (batch norm) or :math:`\gamma\hat x + \beta` (the
others) as here, so float32 results differ from torch's by a few units in the last place
of the largest of those terms.  Shapes in error messages are printed the NumPy way,
``(3, 4)``, where torch prints ``torch.Size([3, 4])``.
"""

from __future__ import annotations

import math

import numpy as np

from minireg.numerics import row_mean, row_variance

__all__ = ["as_ncl", "standardize", "standardize_backward"]


def as_ncl(a: np.ndarray) -> np.ndarray:
    """The ``(N, C, L)`` view of an ``(N, C, *spatial)`` array, L = prod(spatial)."""
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def standardize(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\hat x = (x-\mu)\,s` with :math:`s = 1/\sqrt{\sigma^2+\epsilon}`, and :math:`s`,
    for each row of the ``(N, G, L)`` array ``x`` (the statistics are taken over L)."""
    mu = row_mean(x)
    x_mu = x - mu
    var = row_variance(x_mu)
    s = 1.0 / np.sqrt(var + eps)
    return x_mu * s, s


def standardize_backward(grad_xhat: np.ndarray, xhat: np.ndarray, s: np.ndarray) -> np.ndarray:
    r""":math:`\partial L/\partial x =
    s\,(\hat g - \overline{\hat g} - \hat x\,\overline{\hat g\,\hat x})` for each row of the
    ``(N, G, L)`` arrays (the derivation above), given :math:`\hat g` = ``grad_xhat``, and
    :math:`\hat x` and :math:`s` from :func:`standardize`."""
    mean_g = row_mean(grad_xhat)
    mean_g_xhat = row_mean(grad_xhat, xhat)
    # evaluated as -s * ((xhat * mean_g_xhat - g) + mean_g)
    return (xhat * mean_g_xhat - grad_xhat + mean_g) * -s
