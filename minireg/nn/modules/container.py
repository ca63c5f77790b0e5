"""``Sequential`` (a chain of modules) and ``Flatten`` (a reshape, with its backward).

Sequential's backward runs the children's backward in reverse order: the chain rule,
applied one layer at a time.  It first checks that the children's recorded forwards form
one pass, in order (a child run again on its own since, or used twice, does not), and
that each can be differentiated now, so that no gradient is written when one cannot.
"""

from __future__ import annotations

import itertools
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
        for module in self:
            input = module(input)
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        self._check_chain()
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output

    def _check_chain(self) -> None:
        """Before any child writes a gradient: every child's recorded forward can be
        differentiated now, and they form one chain, in order, each child's output the
        next one's input (whether this Sequential ran them or a loop over its children).
        A child run again on its own since, or used twice, breaks the chain."""
        recorded = [
            (name, module, module._forward_record)
            for name, module in self._modules.items()
            if module is not None and module._forward_record is not None
        ]
        for _, module, _ in recorded:
            module._check_backward_ready()  # e.g. its forward ran in eval mode
        for (name_a, a, record_a), (name_b, b, record_b) in itertools.pairwise(recorded):
            if record_b.number <= record_a.number:
                raise RuntimeError(
                    f"Sequential.backward(): module [{name_a}] ({type(a).__name__}) ran a forward "
                    f"after module [{name_b}] ({type(b).__name__}): it ran again on its own since "
                    "this Sequential's forward, or it is used twice in it, so the recorded "
                    "forwards are not one pass. Run the Sequential's forward again (other passes "
                    "under minireg.no_grad())."
                )
            if record_b.input_shape != record_a.shape:
                raise RuntimeError(
                    f"Sequential.backward(): the recorded output of module [{name_a}] has shape "
                    f"{record_a.shape}, but module [{name_b}] recorded an input of shape "
                    f"{record_b.input_shape}: they are not one pass. Run the Sequential's "
                    "forward again (other passes under minireg.no_grad())."
                )


def _wrap_dim(dim: int, ndim: int) -> int:
    """``dim`` as a non-negative index, with torch's error (a 0-d array counts as 1-d here)."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], "
            f"but got {dim})"
        )
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
            output = input.reshape(
                shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
            )
        self._record_forward(input, output, shape)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (shape,), grad_output = self._recorded_forward(grad_output)
        return grad_output.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
