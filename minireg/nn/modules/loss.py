"""Loss layers: ``MSELoss``, ``L1Loss``, ``CrossEntropyLoss``, ``BCEWithLogitsLoss``.

``forward(input, target)`` returns the loss (a 0-d array for ``"mean"``/``"sum"``) and
caches its arguments; ``backward(grad_output=None)`` returns the gradient for ``input``.
``grad_output`` is the upstream gradient of the loss: omitted, it is 1 (for
``reduction="none"``, ones of the loss's shape).  As in torch, ``reduction`` is checked
when the loss is computed, not when the layer is built.  torch's deprecated
``size_average``/``reduce`` and the ``weight``/``pos_weight`` arguments are not part of
minireg, so the options are keyword-only.  The kernels are in
:mod:`minireg.nn._functional.layers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minireg.nn._functional import layers as F
from minireg.nn.modules.module import Module

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss"]


class _Loss(Module):
    """What the losses share: ``reduction``, the cached arguments, the upstream gradient."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = np.asarray(input), np.asarray(target)
        loss = self._loss(input, target)
        self._cache = (input, target, loss)
        return loss

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        input, target, loss = self._cache
        if grad_output is None:
            grad_output = np.ones_like(loss)
        grad_output = np.asarray(grad_output, dtype=loss.dtype)
        if grad_output.shape != loss.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {grad_output.shape} and "
                f"output[0] has a shape of {loss.shape}."
            )
        return self._grad(grad_output, input, target)


class MSELoss(_Loss):
    r"""Mean squared error, :math:`\ell_i = (x_i - y_i)^2`, reduced by ``reduction``."""

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.mse_loss(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.mse_loss_backward(grad_output, input, target, reduction=self.reduction)


class L1Loss(_Loss):
    r"""Mean absolute error, :math:`\ell_i = |x_i - y_i|`, reduced by ``reduction``."""

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.l1_loss(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.l1_loss_backward(grad_output, input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against class indices (or probabilities), with
    torch's ``ignore_index`` and label smoothing; see :func:`minireg.nn.functional.cross_entropy`."""

    def __init__(self, *, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(reduction=reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def _options(self) -> dict[str, Any]:
        return dict(ignore_index=self.ignore_index, reduction=self.reduction, label_smoothing=self.label_smoothing)

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.cross_entropy(input, target, **self._options())

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.cross_entropy_backward(grad_output, input, target, **self._options())


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy on logits, :math:`(1 - y)\,x - \log\sigma(x)`, computed stably."""

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.binary_cross_entropy_with_logits_backward(grad_output, input, target, reduction=self.reduction)
