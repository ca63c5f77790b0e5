"""Loss layers: ``MSELoss``, ``L1Loss``, ``CrossEntropyLoss``, ``BCEWithLogitsLoss``.

``forward(input, target)`` returns the loss (a 0-d array for ``"mean"``/``"sum"``) and
records its arguments (unless under :func:`minireg.no_grad`); ``backward(grad_output=None)``
returns the gradient for the recorded ``input``.  ``grad_output`` is the upstream gradient
of the loss: omitted, it is 1 (for ``reduction="none"``, ones of the loss's shape); a
number or an array of the loss's shape, cast to the loss's dtype.  An input that cannot
carry a gradient (integer) gets torch's error from ``backward``.  As in torch,
``reduction`` is checked when the loss is computed, not when the layer is built.  torch's deprecated
``size_average``/``reduce`` and the ``weight``/``pos_weight`` arguments are not part of
minireg, so the options are keyword-only.  The kernels are in
:mod:`minireg.nn._functional.layers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minireg.nn._functional import layers as F
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn.modules.module import Module, check_grad_output

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss"]


class _Loss(Module):
    """What the losses share: ``reduction``, the recorded arguments, the upstream gradient."""

    # the functional form's name, in torch's messages for arguments that are not arrays
    _function = "loss"

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input = as_tensor(input, self._function)
        target = as_tensor(target, self._function, "target", 2)
        loss = self._loss(input, target)
        self._record_forward(input, loss, input, target)
        return loss

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        record = self._check_backward_ready()
        if grad_output is None:  # for any reduction (torch's implicit one is for scalars)
            grad_output = np.ones(record.shape, record.dtype)
        elif isinstance(grad_output, (int, float)):  # beyond torch: a plain number
            grad_output = np.full(record.shape, grad_output, record.dtype)
        input, target = record.saved
        return self._grad(check_grad_output(grad_output, record), input, target)


class MSELoss(_Loss):
    r"""Mean squared error, :math:`\ell_i = (x_i - y_i)^2`, reduced by ``reduction``."""

    _function = "mse_loss"

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.mse_loss(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.mse_loss_backward(grad_output, input, target, reduction=self.reduction)


class L1Loss(_Loss):
    r"""Mean absolute error, :math:`\ell_i = |x_i - y_i|`, reduced by ``reduction``."""

    _function = "l1_loss"

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.l1_loss(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.l1_loss_backward(grad_output, input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against class indices (or probabilities), with
    torch's ``ignore_index`` and label smoothing; see
    :func:`minireg.nn.functional.cross_entropy`."""

    _function = "cross_entropy_loss"

    def __init__(
        self, *, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
    ) -> None:
        super().__init__(reduction=reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def _options(self) -> dict[str, Any]:
        return dict(
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.cross_entropy(input, target, **self._options())

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.cross_entropy_backward(grad_output, input, target, **self._options())


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy on logits, :math:`(1 - y)\,x - \log\sigma(x)`, computed stably."""

    _function = "binary_cross_entropy_with_logits"

    def _loss(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)

    def _grad(self, grad_output: np.ndarray, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        return F.binary_cross_entropy_with_logits_backward(
            grad_output, input, target, reduction=self.reduction
        )
