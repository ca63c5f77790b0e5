"""`Parameter`: an ndarray that an optimizer updates in place, and its gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from minireg.nn._functional.dtype_checks import as_tensor


class Parameter:
    """A trainable array, the NumPy counterpart of ``torch.nn.Parameter``.

    ``data`` is an ``np.ndarray`` that optimizers and ``minireg.nn.init`` update **in place**
    (so views of it, e.g. a model's weight held elsewhere, see every update).  ``grad`` is
    ``None`` until something writes a gradient of the same shape and dtype into it.

    Parameters hash and compare by identity, like tensors, so they can key optimizer state.
    As in torch, only floating data can require gradients (integer or boolean data raise
    torch's ``RuntimeError`` unless ``requires_grad=False``); complex data is not supported.

    ``_grad_slot`` is where a new gradient is stored (``None``: a fresh array); it is set
    by :func:`minireg.nn.utils.flatten_parameters` so gradients land in the flat buffer.
    """

    __slots__ = ("__weakref__", "_grad_slot", "data", "grad")

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        # an ndarray or another array object (a CPU torch tensor); torch: None -> empty
        array = np.empty(0) if data is None else as_tensor(data, "Parameter", "data")
        if requires_grad and array.dtype.kind in "biu":  # torch's check and words
            raise RuntimeError(
                "Only Tensors of floating point and complex dtype can require gradients"
            )
        if array.dtype.kind == "c":  # torch allows them; minireg's kernels are real (see README)
            raise NotImplementedError("minireg does not support complex parameters")
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self._grad_slot: np.ndarray | None = None

    # Pass-through views of the data, so a Parameter reads like the array it holds.
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy), as ``tensor.numpy()`` returns shared storage."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is None:
            return self.data if not copy else self.data.copy()
        return self.data.astype(dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self.data!r}"


def accumulate_grads(pairs: Iterable[tuple[Parameter | None, np.ndarray]]) -> None:
    """:func:`accumulate_grad` for each ``(param, grad)`` (a ``None`` param is skipped),
    all or none: every gradient is checked against its parameter (and the gradient it
    already has) before the first one is written."""
    given = [(param, np.asarray(grad)) for param, grad in pairs if param is not None]
    for param, grad in given:
        _check_grad_fits(param, grad)
    for param, grad in given:
        accumulate_grad(param, grad)


def _check_grad_fits(param: Parameter, grad: np.ndarray) -> None:
    if grad.shape != param.shape:
        raise RuntimeError(
            f"gradient of shape {grad.shape} does not match parameter of shape {param.shape}"
        )
    if param.grad is not None and np.shape(param.grad) != param.shape:
        raise RuntimeError(
            f"the existing .grad of shape {np.shape(param.grad)} does not match parameter "
            f"of shape {param.shape}"
        )


def accumulate_grad(param: Parameter, grad: np.ndarray) -> None:
    """Add ``grad`` into ``param.grad`` (creating it on first use), as torch's autograd does.

    A new gradient is written into the parameter's slot of a flat gradient buffer when it
    has one (see :func:`minireg.nn.utils.flatten_parameters`), else into a fresh array.
    """
    grad = np.asarray(grad)
    _check_grad_fits(param, grad)
    if param.grad is None:
        slot = getattr(param, "_grad_slot", None)  # absent in a Parameter unpickled from 0.1
        if slot is not None and slot.shape == param.shape and slot.dtype == param.dtype:
            np.copyto(slot, grad, casting="unsafe")  # as astype: rounds into the dtype
            param.grad = slot
        else:
            param.grad = grad.astype(param.dtype, copy=True)
    else:
        param.grad += grad
