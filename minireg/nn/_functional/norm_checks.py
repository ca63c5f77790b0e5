"""Argument checks of the normalisation kernels: torch's, in torch's order, with its messages.

Bookkeeping, not math: each forward calls its check before computing anything, so a bad
argument raises the exception torch raises and changes no running statistic.  Shapes
are printed the NumPy way, ``(3, 4)``, where torch prints ``torch.Size([3, 4])``; shapes
torch prints as lists (``[2, 3]``) stay lists.  Next: ``dropout.py`` (step 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minireg.nn._functional.dtype_checks import check_floating

__all__ = ["check_batch_norm", "check_group_norm", "check_instance_norm", "check_layer_norm"]


def check_batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
    eps: float,
) -> None:
    """``torch.nn.functional.batch_norm``'s checks, then ATen's."""
    if training:
        _verify_batch_size(input.shape, str(tuple(input.shape)))
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    elif eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    channels = input.shape[1] if input.ndim > 1 else 0  # torch counts 0 channels below 2-D
    _check_per_channel(channels, 1, running_mean, running_var, weight, bias, training)
    check_floating(input, "batch_norm")
    _check_parameter_dtypes(input, running_mean, running_var, weight, bias)


def check_instance_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    use_input_stats: bool,
) -> None:
    """``torch.nn.functional.instance_norm``'s checks, then ATen's batch norm checks on the
    arguments repeated N times (instance norm is batch norm of the ``(1, N*C, ...)`` view)."""
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(
            "Expected more than 1 spatial element when training, "
            f"got input size {tuple(input.shape)}"
        )
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError(
            "Expected running_mean and running_var to be defined when use_input_stats is false"
        )
    copies, channels = input.shape[:2]
    _check_per_channel(channels, copies, running_mean, running_var, weight, bias, use_input_stats)
    check_floating(input, "batch_norm")
    _check_parameter_dtypes(input, running_mean, running_var, weight, bias)


def check_layer_norm(
    input: np.ndarray,
    normalized_shape: tuple[int, ...],
    weight: np.ndarray | None,
    bias: np.ndarray | None,
) -> None:
    """ATen's checks, in its order (shapes printed as lists, as torch does here)."""
    shown = list(normalized_shape)
    if not normalized_shape:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least "
            f"one element, but got normalized_shape = {shown}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value.shape != normalized_shape:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                f"shape {list(value.shape)} and normalized_shape = {shown}"
            )
    k = len(normalized_shape)
    if input.ndim < k or input.shape[input.ndim - k :] != normalized_shape:
        expected = "[*" + "".join(f", {size}" for size in normalized_shape) + "]"
        raise RuntimeError(
            f"Given normalized_shape={shown}, expected input with shape {expected}, but got "
            f"input of size{list(input.shape)}"
        )
    check_floating(input, "LayerNormKernelImpl", weight, bias)
    _check_parameter_dtypes(input, weight, bias)


def check_group_norm(
    input: np.ndarray, num_groups: int, weight: np.ndarray | None, bias: np.ndarray | None
) -> None:
    """torch's checks, in its order: Python's first, then ATen's."""
    if input.ndim < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    n, c = input.shape[:2]
    # ZeroDivisionError for 0 groups, as torch
    size = [n * c // num_groups, num_groups, *input.shape[2:]]
    _verify_batch_size(size, str(size))
    if num_groups <= 0:
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    if c % num_groups != 0:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(input.shape)} and num_groups={num_groups}"
        )
    # torch's bias message prints the WEIGHT's shape ([0] when there is none); we copy its text.
    shown_weight = [0] if weight is None else list(weight.shape)
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and (value.ndim != 1 or value.size != c):
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in "
                f"input, but got {name} of shape {shown_weight} and input of shape "
                f"{list(input.shape)}"
            )
    check_floating(input, "GroupNormKernelImpl", weight, bias)
    _check_parameter_dtypes(input, weight, bias)


def _verify_batch_size(size: Sequence[int], shown: str) -> None:
    # torch's check counts size[0] * prod(size[2:]): the values each channel would average
    if size[0] * math.prod(size[2:]) == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {shown}"
        )


def _check_per_channel(
    channels: int,
    copies: int,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    training: bool,
) -> None:
    """ATen's checks of batch norm's per-channel arguments, in its order.  Instance norm
    runs batch norm with every argument repeated ``copies`` (= N) times, and says so."""
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is None and not training:
            raise RuntimeError(f"{name} must be defined in evaluation mode")
    per_channel = (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    )
    for name, value in per_channel:
        # compared after repeating, as torch does (so with N = 0 copies any size passes)
        if value is not None and value.size * copies != channels * copies:
            raise RuntimeError(
                f"{name} should contain {channels * copies} elements not {value.size * copies}"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")


def _check_parameter_dtypes(input: np.ndarray, *parameters: np.ndarray | None) -> None:
    """torch's "mixed dtype" errors: weight, bias and running statistics of another dtype
    than the input are refused, except float32 ones beside a float16 input (torch's
    mixed-precision CPU kernels), where every one of them must be float32."""
    present = [p for p in parameters if p is not None]
    if all(p.dtype == input.dtype for p in present):
        return
    if any(p.dtype != np.float32 for p in present):
        raise RuntimeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
    if input.dtype != np.float16:
        raise RuntimeError("mixed dtype (CPU): all inputs must share same datatype.")
