r"""``Linear`` (:math:`y = xW^\top + b`, torch's default initialisation) and ``Identity``.

The kernels are :func:`minireg.nn.functional.linear` and
:func:`minireg.nn.functional.linear_backward`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minireg.nn import init
from minireg.nn._functional import layers as F
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn.modules.module import Module, check_new_shape
from minireg.parameter import Parameter, accumulate_grads

__all__ = ["Identity", "Linear"]


class Identity(Module):
    """Returns its input unchanged; any constructor arguments are ignored, as in torch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._record_forward(input, input)
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        _, grad_output = self._recorded_forward(grad_output)
        return grad_output


class Linear(Module):
    r"""Affine layer :math:`y = xW^\top + b` on the last dimension of ``(*, in_features)`` inputs.

    ``weight`` is ``(out_features, in_features)`` and ``bias`` ``(out_features,)`` (or
    ``None`` with ``bias=False``), created in ``dtype`` (float64 when ``None``).  Torch's
    default initialisation: ``kaiming_uniform_(weight, a=sqrt(5))``, which is
    :math:`\mathcal U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` up to rounding,
    and the bias uniform on the same interval.  Beyond torch: a keyword-only ``generator``
    (``None``: minireg's default one) draws the initial values.

    ``backward`` adds :math:`\bar y^\top x` into ``weight.grad`` and the batch sum of
    :math:`\bar y` into ``bias.grad``, and returns :math:`\bar y W`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        *,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        check_new_shape((out_features, in_features))
        dtype = np.dtype(np.float64 if dtype is None else dtype)
        self.in_features = in_features
        self.out_features = out_features
        self.generator = generator
        self.weight = Parameter(np.empty((out_features, in_features), dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the weight and bias afresh with torch's default scheme."""
        # a = sqrt(5) turns the Kaiming bound sqrt(6 / ((1 + a^2) fan_in)) into 1/sqrt(fan_in).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=self.generator)
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=self.generator)

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_tensor(input, "linear")
        bias = None if self.bias is None else self.bias.data
        output = F.linear(input, self.weight.data, bias)
        self._record_forward(input, output, input)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (input,), grad_output = self._recorded_forward(grad_output)
        grad_input, grad_weight, grad_bias = F.linear_backward(grad_output, input, self.weight.data)
        accumulate_grads([(self.weight, grad_weight), (self.bias, grad_bias)])
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
