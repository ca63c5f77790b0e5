"""``Sequential`` (a chain of modules) and ``Flatten`` (a reshape, with its backward).

Sequential's backward runs the children's backward in reverse order: the chain rule,
applied one layer at a time.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from minireg.nn.modules.module import Module

__all__ = ["Flatten", "Sequential"]


class Sequential(Module):
    """Modules applied one after the other, named ``"0"``, ``"1"``, ... (or by an OrderedDict).

    Indexable (negative indices; a slice gives a new ``Sequential`` sharing the modules and
    keeping their names, as in torch), iterable, sized, and ``append`` extends it.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        size = len(self)
        index = operator.index(index)  # torch's TypeError for a str or float index
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return list(self._modules.values())[index]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output


def _wrap_dim(dim: int, ndim: int) -> int:
    """``dim`` as a non-negative index, with torch's error (a 0-d array counts as 1-d here)."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})")
    return dim % size


class Flatten(Module):
    """Merge dimensions ``start_dim`` to ``end_dim`` (inclusive) into one, as ``torch.flatten``.

    The default keeps the batch dimension: ``(N, C, H, W) -> (N, C*H*W)``.  Backward
    reshapes the gradient back to the input's shape.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = np.asarray(input)
        start = _wrap_dim(self.start_dim, input.ndim)
        end = _wrap_dim(self.end_dim, input.ndim)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = input.shape
        output: np.ndarray
        if input.ndim == 0:
            output = input.reshape(1)  # torch: a 0-d tensor flattens to one element
        else:
            output = input.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])
        self._input_shape = shape
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._input_shape is None:
            raise RuntimeError("Flatten.backward() called before forward()")
        return np.asarray(grad_output).reshape(self._input_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
