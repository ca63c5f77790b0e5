"""Element-wise activations: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``.

Each forward caches what its derivative needs (the output for ReLU, Sigmoid and Tanh, as
torch's backward formulas use it; the input for LeakyReLU); the kernels are in
:mod:`minireg.nn._functional.layers`.  torch's ``inplace`` option is not part of minireg.
"""

from __future__ import annotations

import numpy as np

from minireg.nn._functional import layers as F
from minireg.nn.modules.module import Module

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


class _Activation(Module):
    """What the activations share: the array cached by forward, checked by backward."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: np.ndarray | None = None

    def _cached(self) -> np.ndarray:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._saved


class ReLU(_Activation):
    r""":math:`\max(x, 0)` (Nair & Hinton, 2010); backward passes the gradient where :math:`y > 0`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._saved = F.relu(input)
        return self._saved

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.relu_backward(grad_output, self._cached())


class LeakyReLU(_Activation):
    r""":math:`x` for :math:`x > 0`, else ``negative_slope`` :math:`\cdot\,x` (Maas et al., 2013)."""

    def __init__(self, negative_slope: float = 1e-2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._saved = np.asarray(input)
        return F.leaky_relu(input, self.negative_slope)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.leaky_relu_backward(grad_output, self._cached(), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    r""":math:`\sigma(x) = 1/(1 + e^{-x})`; backward :math:`\bar y\,(1 - y)\,y`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._saved = F.sigmoid(input)
        return self._saved

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.sigmoid_backward(grad_output, self._cached())


class Tanh(_Activation):
    r""":math:`\tanh x`; backward :math:`\bar y\,(1 - y^2)`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._saved = F.tanh(input)
        return self._saved

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.tanh_backward(grad_output, self._cached())
