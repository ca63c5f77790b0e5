"""Layer and group normalisation layers (``torch.nn.LayerNorm``, ``torch.nn.GroupNorm``).

Neither keeps running statistics nor behaves differently in evaluation: each input is
normalised with its own statistics.  Bookkeeping around
:func:`minireg.nn.functional.layer_norm` and :func:`minireg.nn.functional.group_norm`,
run through their in-place twins in ``minireg._engine.norm_twins`` (the same bits, without
the textbook kernels' batch-sized temporaries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from minireg._engine import textbook_or_twin
from minireg._engine.norm_twins import (
    group_norm_,
    group_norm_backward_,
    layer_norm_,
    layer_norm_backward_,
)
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn._functional.group_norm import group_norm, group_norm_backward
from minireg.nn._functional.layer_norm import layer_norm, layer_norm_backward
from minireg.nn.modules.module import Module, check_new_shape
from minireg.parameter import Parameter, accumulate_grads

__all__ = ["GroupNorm", "LayerNorm"]


def _data(param: Parameter | None) -> np.ndarray | None:
    return None if param is None else param.data


def _factory_dtype(dtype: Any) -> np.dtype:
    """The dtype of new parameters and buffers: NumPy's default, float64, unless given."""
    return np.dtype(np.float64 if dtype is None else dtype)


class _AffineNorm(Module):
    """What every normalisation layer shares: optional γ (ones) and β (zeros) of one
    shape, and adding their gradients (both or neither) in backward."""

    def __init__(self, shape: tuple[int, ...], affine: bool, bias: bool, dtype: Any) -> None:
        super().__init__()
        dtype = _factory_dtype(dtype)
        if affine:
            check_new_shape(shape)
            self.weight = Parameter(np.ones(shape, dtype))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            self.weight.data.fill(1)
        if self.bias is not None:
            self.bias.data.fill(0)

    def _accumulate_parameter_grads(self, grad_weight: np.ndarray, grad_bias: np.ndarray) -> None:
        accumulate_grads([(self.weight, grad_weight), (self.bias, grad_bias)])


class LayerNorm(_AffineNorm):
    """Normalise over the trailing ``normalized_shape`` dimensions (Ba et al., 2016)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        if isinstance(normalized_shape, (int, np.integer)):
            shape: tuple[int, ...] = (int(normalized_shape),)
        else:
            shape = tuple(normalized_shape)
        super().__init__(shape, elementwise_affine, bias, dtype)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_tensor(input, "layer_norm")
        output = textbook_or_twin(layer_norm, layer_norm_)(
            input, self.normalized_shape, _data(self.weight), _data(self.bias), self.eps
        )
        self._record_forward(input, output, input)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Input gradient of the recorded forward; γ and β gradients are added into ``.grad``."""
        (input,), grad_output = self._recorded_forward(grad_output)
        kernel = textbook_or_twin(layer_norm_backward, layer_norm_backward_)
        grad_input, grad_weight, grad_bias = kernel(
            grad_output, input, self.normalized_shape, _data(self.weight), self.eps
        )
        self._accumulate_parameter_grads(grad_weight, grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(_AffineNorm):
    """Normalise groups of ``num_channels // num_groups`` channels per sample (Wu & He, 2018)."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        if num_channels % num_groups != 0:  # ZeroDivisionError for 0 groups, as torch
            raise ValueError(
                f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})"
            )
        super().__init__((num_channels,), affine, bias, dtype)
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_tensor(input, "group_norm")
        output = textbook_or_twin(group_norm, group_norm_)(
            input, self.num_groups, _data(self.weight), _data(self.bias), self.eps
        )
        self._record_forward(input, output, input)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Input gradient of the recorded forward; γ and β gradients are added into ``.grad``."""
        (input,), grad_output = self._recorded_forward(grad_output)
        kernel = textbook_or_twin(group_norm_backward, group_norm_backward_)
        grad_input, grad_weight, grad_bias = kernel(
            grad_output, input, self.num_groups, _data(self.weight), self.eps
        )
        self._accumulate_parameter_grads(grad_weight, grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
