"""Entry checks on what the kernels are given: arrays, and their dtypes, in torch's words.

The kernels compute in the input's dtype, so an integer, boolean or complex array would
run through them and give truncated or meaningless numbers (or fail deep inside NumPy),
possibly after running statistics were already updated.  torch refuses such input before
computing anything; these helpers do the same, with torch's exception type and message,
and are called first thing, before any state changes.  Kept apart from the kernels'
math on purpose: the kernels stay the equations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_tensor",
    "check_floating",
    "check_not_complex",
    "check_real",
    "is_floating",
    "torch_dtype_name",
]

# torch's ScalarType names, which its "not implemented for '...'" messages print.
_TORCH_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "complex64": "ComplexFloat",
    "complex128": "ComplexDouble",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "uint8": "Byte",
    "uint16": "UInt16",
    "uint32": "UInt32",
    "uint64": "UInt64",
    "bool": "Bool",
}

# What torch.as_tensor says about a NumPy array it cannot hold (object, str, datetime...).
_UNSUPPORTED = (
    "can't convert np.ndarray of type {}. The only supported types are: float64, float32, "
    "float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, uint16, "
    "uint8, and bool."
)


def torch_dtype_name(dtype: Any) -> str:
    """torch's name of a NumPy dtype (``int64`` -> ``Long``), or NumPy's when torch has none."""
    name = np.dtype(dtype).name
    return _TORCH_NAMES.get(name, name)


def is_floating(dtype: Any) -> bool:
    """A real floating dtype: what torch's floating kernels (and autograd) accept."""
    return np.issubdtype(np.dtype(dtype), np.floating)


def as_tensor(value: Any, function: str, argument: str = "input", position: int = 1) -> np.ndarray:
    """``value`` as an ndarray, where torch would have required a Tensor.

    ndarrays and NumPy scalars pass as they are; other array objects (a CPU torch tensor,
    a :class:`minireg.Parameter`) are converted with ``np.asarray``, without a copy where
    possible.  Anything else (a list, a Python number, ``None``) raises torch's
    ``TypeError``: ``"relu(): argument 'input' (position 1) must be Tensor, not list"``.
    So does an array of a dtype torch cannot hold (object, str), with ``torch.as_tensor``'s words.
    """
    if not hasattr(value, "__array__"):  # (ndarrays, NumPy scalars and tensors have one)
        raise TypeError(
            f"{function}(): argument '{argument}' (position {position}) must be Tensor, "
            f"not {type(value).__name__}"
        )
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(_UNSUPPORTED.format(f"numpy.{array.dtype.type.__name__}"))
    return array


def check_real(*arrays: np.ndarray, name: str) -> None:
    """minireg's refusal of complex input where torch would accept it: its kernels are
    written for real numbers (a complex backward needs conjugates), see the README."""
    if any(a.dtype.kind == "c" for a in arrays):
        raise NotImplementedError(
            f'"{name}" of complex input: minireg does not support complex tensors'
        )


def check_not_complex(input: np.ndarray, op_name: str) -> None:
    """torch's dispatch error for a complex input to a kernel defined for real dtypes only
    (integers get another error there, which the kernel raises itself)."""
    if input.dtype.kind == "c":
        raise NotImplementedError(
            f"\"{op_name}\" not implemented for '{torch_dtype_name(input.dtype)}'"
        )


def check_floating(input: Any, op_name: str, *parameters: np.ndarray | None) -> None:
    """Raise what torch raises unless ``input`` has a real floating dtype.

    torch's dispatch error, ``NotImplementedError('"op_name" not implemented for 'Long'')``;
    before it, for the kernels that check their ``parameters`` (weight, bias) first
    (layer and group norm), torch's ``RuntimeError`` "mixed dtype (CPU): all inputs must
    share same datatype."; and torch's ``TypeError`` for a dtype it has no tensor for
    (object, str).  A floating input passes whatever its parameters' dtype.
    """
    dtype = np.asarray(input).dtype
    if dtype.kind not in "biufc":
        raise TypeError(_UNSUPPORTED.format(f"numpy.{dtype.type.__name__}"))
    if is_floating(dtype):
        return
    if any(p is not None and np.asarray(p).dtype != dtype for p in parameters):
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
    raise NotImplementedError(f"\"{op_name}\" not implemented for '{torch_dtype_name(dtype)}'")
