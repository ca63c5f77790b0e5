r"""Weight penalties (L1, L2, elastic net) and data-side regularisers (mixup, input noise).

torch leaves these to the user (an extra term in the loss, a line in the data loop);
minireg gives them a name, a value and a hand-written gradient.

Penalties, over all entries :math:`\theta_i` of the given parameters:

.. math::
    R_{L1}(\theta) &= \lambda \sum_i |\theta_i|,
    & \partial R_{L1}/\partial\theta_i &= \lambda\,\mathrm{sign}(\theta_i) \\
    R_{L2}(\theta) &= \lambda \sum_i \theta_i^2,
    & \partial R_{L2}/\partial\theta_i &= 2\lambda\,\theta_i \\
    R_{EN}(\theta) &= \lambda \Big(\alpha \sum_i |\theta_i| + (1-\alpha) \sum_i \theta_i^2\Big),
    & \partial R_{EN}/\partial\theta_i &=
        \lambda\big(\alpha\,\mathrm{sign}(\theta_i) + 2(1-\alpha)\,\theta_i\big)

L2 has no :math:`\tfrac12` (so its gradient is :math:`2\lambda\theta`, and ``L2(lam)`` equals
an optimizer's ``weight_decay=2*lam`` only in plain SGD).  Elastic net is
``alpha * L1(lam) + (1 - alpha) * L2(lam)``: ``lam`` scales both parts, ``alpha`` splits
them (H. Zou and T. Hastie, 2005, "Regularization and variable selection via the elastic
net", JRSS B, in glmnet's parametrisation without the ½ on the L2 part).  At
:math:`\theta_i = 0` the L1 subgradient is 0, as ``torch.abs``'s backward gives.

A penalty object called on parameters returns the value (a NumPy scalar in the
parameters' dtype); its ``backward(params)`` **adds** the gradient into each ``.grad``,
so call it after the loss's backward and before ``optimizer.step()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from minireg.parameter import Parameter, accumulate_grad
from minireg.random import resolve

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "Penalty",
    "elastic_net_penalty",
    "elastic_net_penalty_grad",
    "gaussian_noise",
    "l1_penalty",
    "l1_penalty_grad",
    "l2_penalty",
    "l2_penalty_grad",
    "mixup",
]


# ---------------------------------------------------------------------------- penalty kernels
def _sum_over(arrays: Sequence[np.ndarray], term: Any) -> np.floating:
    """``sum_p sum_i term(p)_i`` in the arrays' common dtype (float64 for no arrays)."""
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.float64)
    return sum((term(a).sum() for a in arrays), start=dtype.type(0))


def l1_penalty(arrays: Sequence[np.ndarray], lam: float) -> np.floating:
    r""":math:`\lambda \sum_i |\theta_i|` over every entry of every array."""
    return float(lam) * _sum_over(arrays, np.abs)


def l1_penalty_grad(array: np.ndarray, lam: float) -> np.ndarray:
    r""":math:`\lambda\,\mathrm{sign}(\theta)` (0 at :math:`\theta = 0`)."""
    return np.asarray(float(lam) * np.sign(array))


def l2_penalty(arrays: Sequence[np.ndarray], lam: float) -> np.floating:
    r""":math:`\lambda \sum_i \theta_i^2` (no ½)."""
    return float(lam) * _sum_over(arrays, np.square)


def l2_penalty_grad(array: np.ndarray, lam: float) -> np.ndarray:
    r""":math:`2\lambda\,\theta`."""
    return np.asarray(2.0 * float(lam) * array)


def elastic_net_penalty(arrays: Sequence[np.ndarray], lam: float, alpha: float) -> np.floating:
    r""":math:`\lambda\big(\alpha \sum_i |\theta_i| + (1-\alpha) \sum_i \theta_i^2\big)`."""
    lam, alpha = float(lam), float(alpha)
    return lam * (alpha * _sum_over(arrays, np.abs) + (1.0 - alpha) * _sum_over(arrays, np.square))


def elastic_net_penalty_grad(array: np.ndarray, lam: float, alpha: float) -> np.ndarray:
    r""":math:`\lambda\big(\alpha\,\mathrm{sign}(\theta) + 2(1-\alpha)\,\theta\big)`."""
    lam, alpha = float(lam), float(alpha)
    return np.asarray(lam * (alpha * np.sign(array) + 2.0 * (1.0 - alpha) * array))


# ---------------------------------------------------------------------------- penalty objects
def _check_lam(lam: float) -> None:
    if not lam >= 0:  # also rejects nan
        raise ValueError(f"Invalid regularization strength lam: {lam} (must be >= 0)")


def _arrays(params: Iterable[Parameter | np.ndarray]) -> list[np.ndarray]:
    return [p.data if isinstance(p, Parameter) else np.asarray(p) for p in params]


class Penalty:
    """Base class: ``penalty(params)`` is the value, ``penalty.backward(params)`` adds its gradient.

    Subclasses give ``value(arrays)`` and ``grad(array)``, the kernels above.
    """

    def value(self, arrays: Sequence[np.ndarray]) -> np.floating:
        raise NotImplementedError

    def grad(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, params: Iterable[Parameter | np.ndarray]) -> np.floating:
        """The penalty of ``params`` (Parameters or arrays), a NumPy scalar."""
        return self.value(_arrays(params))

    def backward(self, params: Iterable[Parameter]) -> None:
        """Add the penalty's gradient into each parameter's ``.grad`` (created if ``None``)."""
        for param in params:
            accumulate_grad(param, self.grad(param.data))


class L1(Penalty):
    r"""Lasso penalty :math:`\lambda \sum_i |\theta_i|` (Tibshirani, 1996)."""

    def __init__(self, lam: float) -> None:
        _check_lam(lam)
        self.lam = lam

    def value(self, arrays: Sequence[np.ndarray]) -> np.floating:
        return l1_penalty(arrays, self.lam)

    def grad(self, array: np.ndarray) -> np.ndarray:
        return l1_penalty_grad(array, self.lam)

    def __repr__(self) -> str:
        return f"L1(lam={self.lam})"


class L2(Penalty):
    r"""Ridge penalty :math:`\lambda \sum_i \theta_i^2`, with no ½ (Hoerl and Kennard, 1970)."""

    def __init__(self, lam: float) -> None:
        _check_lam(lam)
        self.lam = lam

    def value(self, arrays: Sequence[np.ndarray]) -> np.floating:
        return l2_penalty(arrays, self.lam)

    def grad(self, array: np.ndarray) -> np.ndarray:
        return l2_penalty_grad(array, self.lam)

    def __repr__(self) -> str:
        return f"L2(lam={self.lam})"


class ElasticNet(Penalty):
    r"""Elastic net :math:`\lambda(\alpha \sum|\theta_i| + (1-\alpha)\sum\theta_i^2)`:
    ``alpha=1`` is ``L1(lam)``, ``alpha=0`` is ``L2(lam)`` (Zou and Hastie, 2005)."""

    def __init__(self, lam: float, alpha: float) -> None:
        _check_lam(lam)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Invalid elastic net mixing alpha: {alpha} (must be in [0, 1])")
        self.lam = lam
        self.alpha = alpha

    def value(self, arrays: Sequence[np.ndarray]) -> np.floating:
        return elastic_net_penalty(arrays, self.lam, self.alpha)

    def grad(self, array: np.ndarray) -> np.ndarray:
        return elastic_net_penalty_grad(array, self.lam, self.alpha)

    def __repr__(self) -> str:
        return f"ElasticNet(lam={self.lam}, alpha={self.alpha})"


# ---------------------------------------------------------------------------- data-side
MixupTargets = np.ndarray | tuple[np.ndarray, np.ndarray, float]


def mixup(
    x: np.ndarray,
    y: np.ndarray,
    alpha: float,
    generator: np.random.Generator | None = None,
    num_classes: int | None = None,
) -> tuple[np.ndarray, MixupTargets]:
    r"""Mix a batch with a shuffled copy of itself (Zhang, Cisse, Dauphin, Lopez-Paz, 2018,
    "mixup: Beyond Empirical Risk Minimization", ICLR).

    .. math::
        \lambda \sim \mathrm{Beta}(\alpha, \alpha), \qquad
        \pi = \text{a random permutation of the batch}, \\
        \tilde x_n = \lambda\,x_n + (1-\lambda)\,x_{\pi(n)}, \qquad
        \tilde y_n = \lambda\,y_n + (1-\lambda)\,y_{\pi(n)}

    ``x`` and ``y`` share their first (batch) dimension.  ``lam`` is drawn first, then the
    permutation, both from ``generator`` (default: minireg's).  ``alpha = 0`` gives
    ``lam = 1`` (no mixing), as in the authors' code.  Returns ``(mixed_x, targets)``:

    * ``y`` floating (one-hot, soft labels, regression targets): ``targets`` is
      :math:`\tilde y`, mixed like ``x``;
    * ``y`` integer class labels and ``num_classes`` given: the labels become one-hot
      rows (in ``x``'s floating dtype), then mixed: soft targets for a cross-entropy
      that takes probabilities;
    * ``y`` integer labels and ``num_classes=None``: ``targets`` is ``(y_a, y_b, lam)``
      with ``y_a = y`` and ``y_b = y[perm]``; train on
      ``lam * loss(out, y_a) + (1 - lam) * loss(out, y_b)``, which equals the loss on the
      mixed one-hot targets for any loss linear in the target (cross-entropy).
    """
    if not alpha >= 0:
        raise ValueError(f"mixup alpha must be non-negative, but got {alpha}")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"mixup needs x and y with the same batch size, got shapes {x.shape} and {y.shape}"
        )
    integer_labels = np.issubdtype(y.dtype, np.integer)
    if (
        integer_labels
        and num_classes is not None
        and y.size
        and (y.min() < 0 or y.max() >= num_classes)
    ):
        raise ValueError(f"class labels must lie in [0, num_classes={num_classes})")
    if not integer_labels and num_classes is not None:
        raise ValueError("num_classes applies only to integer class labels")

    rng = resolve(generator)
    lam = float(rng.beta(alpha, alpha)) if alpha > 0 else 1.0
    perm = rng.permutation(len(x))
    mixed_x = lam * x + (1.0 - lam) * x[perm]
    if integer_labels and num_classes is None:
        return mixed_x, (y, y[perm], lam)
    if num_classes is not None:  # integer labels: one-hot rows first
        float_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
        y = np.eye(num_classes, dtype=float_dtype)[y]
    return mixed_x, lam * y + (1.0 - lam) * y[perm]


def gaussian_noise(
    x: np.ndarray, std: float, generator: np.random.Generator | None = None
) -> np.ndarray:
    r"""Input-noise injection: :math:`\tilde x = x + \sigma\,\varepsilon`, with
    :math:`\varepsilon \sim \mathcal N(0, I)`.

    For small noise, training on noisy inputs amounts to a Tikhonov (smoothness) penalty
    of order :math:`\sigma^2` (C. M. Bishop, 1995, "Training with noise is equivalent to
    Tikhonov regularization", Neural Computation 7).  Targets are left alone.  The noise is drawn
    in ``x``'s floating dtype (float64 for integer ``x``); ``std = 0`` returns a copy of
    ``x`` without drawing.
    """
    if not std >= 0:
        raise ValueError(f"gaussian_noise std must be non-negative, but got {std}")
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if std == 0:
        return x.astype(dtype, copy=True)
    noise = resolve(generator).standard_normal(x.shape, dtype=dtype)
    return np.asarray(x + float(std) * noise, dtype=dtype)
