"""Element-wise activations: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``.

Each forward records what its derivative needs (the output for ReLU, Sigmoid and Tanh, as
torch's backward formulas use it; the input for LeakyReLU); the kernels are in
:mod:`minireg.nn._functional.layers`.  torch's ``inplace`` option is not part of minireg.
"""

from __future__ import annotations

import numpy as np

from minireg.nn._functional import layers as F
from minireg.nn.modules.module import Module

__all__ = ["LeakyReLU", "ReLU", "Sigmoid", "Tanh"]


class _Activation(Module):
    """What the activations share: backward takes the array its forward saved."""

    def _saved_array(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(saved, grad_output)`` of the recorded forward (see ``Module._recorded_forward``)."""
        (saved,), grad_output = self._recorded_forward(grad_output)
        return saved, grad_output


class ReLU(_Activation):
    r""":math:`\max(x, 0)` (Nair & Hinton, 2010); backward passes the gradient where
    :math:`y > 0`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        output = F.relu(input)
        self._record_forward(input, output, output)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        output, grad_output = self._saved_array(grad_output)
        return F.relu_backward(grad_output, output)


class LeakyReLU(_Activation):
    r""":math:`x` for :math:`x > 0`, else ``negative_slope`` :math:`\cdot\,x`
    (Maas et al., 2013)."""

    def __init__(self, negative_slope: float = 1e-2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input: np.ndarray) -> np.ndarray:
        output = F.leaky_relu(input, self.negative_slope)
        self._record_forward(input, output, np.asarray(input))
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, grad_output = self._saved_array(grad_output)
        return F.leaky_relu_backward(grad_output, input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    r""":math:`\sigma(x) = 1/(1 + e^{-x})`; backward :math:`\bar y\,(1 - y)\,y`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        output = F.sigmoid(input)
        self._record_forward(input, output, output)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        output, grad_output = self._saved_array(grad_output)
        return F.sigmoid_backward(grad_output, output)


class Tanh(_Activation):
    r""":math:`\tanh x`; backward :math:`\bar y\,(1 - y^2)`."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        output = F.tanh(input)
        self._record_forward(input, output, output)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        output, grad_output = self._saved_array(grad_output)
        return F.tanh_backward(grad_output, output)
