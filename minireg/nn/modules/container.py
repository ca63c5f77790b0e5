"""``Sequential`` (a chain of modules) and ``Flatten`` (a reshape, with its backward).

Sequential's backward runs the children's backward in reverse order: the chain rule,
applied one layer at a time.  It first checks that every child still holds the forward
it recorded during this Sequential's forward, so that no child differentiates a forward
run since on its own (or a second use of a shared child) and no gradient is written
when one of them cannot go.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor
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
        records = []  # each child's record right after its call (None: it keeps none)
        for module in self:
            input = module(input)
            records.append(module._forward_record)
        self._record_forward(np.empty(0), input, records)
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (records,), grad_output = self._recorded_forward(grad_output)
        children = list(self)
        names = list(self._modules)
        for name, module, record in zip(names, children, records, strict=True):
            if module._forward_record is not record:
                raise RuntimeError(
                    f"Sequential.backward(): module [{name}] ({type(module).__name__}) ran "
                    "another forward after this Sequential's forward (or is used twice in "
                    "it), so its backward would not belong to this forward. Run the "
                    "Sequential's forward again (other passes under minireg.no_grad())."
                )
            if record is not None:
                module._check_backward_ready()  # e.g. its forward ran in eval mode
        for module in reversed(children):
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

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_tensor(input, "flatten")
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
        self._record_forward(input, output, shape)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (shape,), grad_output = self._recorded_forward(grad_output)
        return grad_output.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
