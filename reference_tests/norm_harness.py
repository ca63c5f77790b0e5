"""What the normalisation test modules share (test_batchnorm.py, test_instancenorm.py,
test_layernorm_groupnorm.py): twin layers, well-conditioned data, the float32 tolerance
scaled by the magnitude torch's rounding acts on (test_batchnorm.py's docstring), one
forward/backward compared, running statistics compared, and errors compared with torch's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import minireg
import minireg.nn.functional as F
from reference_tests.conftest import (
    TORCH_DTYPES,
    assert_close,
    assert_same_error,
    to_numpy,
    to_torch,
    tolerance,
)


def make_twins(
    name: str, args: tuple[Any, ...], dtype: Any, device: str, **kwargs: Any
) -> tuple[Any, Any]:
    """``minireg.nn.<name>(*args, **kwargs)`` in ``dtype`` and its torch twin on ``device``."""
    ours = getattr(minireg.nn, name)(*args, dtype=dtype, **kwargs)
    theirs = getattr(torch.nn, name)(
        *args, device=device, dtype=TORCH_DTYPES[np.dtype(dtype)], **kwargs
    )
    return ours, theirs


def distribution(
    rng: np.random.Generator, stat_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """One well-conditioned (loc, sigma) per cell of ``stat_shape``: sigma log-uniform in
    [0.1, 10], |loc| <= 10 sigma."""
    sigma = np.exp(rng.uniform(np.log(0.1), np.log(10.0), stat_shape))
    return rng.uniform(-10.0, 10.0, stat_shape) * sigma, sigma


def well_conditioned(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    dtype: Any,
    stat_shape: tuple[int, ...],
    loc_sigma: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``loc + sigma * N(0, 1)`` of ``shape``, with (loc, sigma) from :func:`distribution`
    over ``stat_shape`` (which broadcasts against ``shape``) unless given."""
    loc, sigma = distribution(rng, stat_shape) if loc_sigma is None else loc_sigma
    return (loc + sigma * rng.standard_normal(shape)).astype(dtype)


def affine_values(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: Any
) -> tuple[np.ndarray, np.ndarray]:
    """A weight in [-2, 2] (so negative scales are covered) and a bias in [-2, 2]."""
    return rng.uniform(-2.0, 2.0, shape).astype(dtype), rng.uniform(-2.0, 2.0, shape).astype(dtype)


def scaled_tolerance(dtype: Any, device: str, scale: float) -> tuple[float, float]:
    """``tolerance()`` with its atol multiplied by ``max(1, scale)`` (module docstring)."""
    rtol, atol = tolerance(dtype, device)
    return rtol, atol * max(1.0, float(scale))


class Scales:
    """The magnitudes the float32 roundings act on, for one forward/backward (module docstring)."""

    def __init__(
        self, x: np.ndarray, dy: np.ndarray, invstd_max: float, weight: Any, bias: Any
    ) -> None:
        x_max = float(np.abs(x).max(initial=0.0))
        dy_max = float(np.abs(dy).max(initial=0.0))
        w_max = 1.0 if weight is None else float(np.abs(np.asarray(weight)).max(initial=0.0))
        b_max = 0.0 if bias is None else float(np.abs(np.asarray(bias)).max(initial=0.0))
        root_n = float(np.sqrt(x.size))
        self.output = x_max * invstd_max * w_max + b_max
        self.grad_input = w_max * invstd_max * dy_max * (1.0 + x_max * invstd_max)
        self.grad_weight = dy_max * x_max * invstd_max * root_n
        self.grad_bias = dy_max * root_n


def max_invstd(x: np.ndarray, axes: tuple[int, ...], eps: float) -> float:
    """The largest ``1/sqrt(var + eps)`` over the groups reduced along ``axes`` (float64)."""
    if x.size == 0:
        return 1.0
    var = np.var(x.astype(np.float64), axis=axes)
    return float(np.max(1.0 / np.sqrt(var + eps), initial=1.0))


def copy_affine(
    ours: minireg.nn.Module, theirs: torch.nn.Module, rng: np.random.Generator, device: str
) -> None:
    """Give both layers the same random weight and bias (those they have)."""
    for name in ("weight", "bias"):
        mine = getattr(ours, name)
        if mine is None:
            assert getattr(theirs, name) is None
            continue
        mine.data[...] = rng.uniform(-2.0, 2.0, mine.shape)
        with torch.no_grad():
            getattr(theirs, name).copy_(to_torch(mine.data, device))


def compare_step(
    ours: minireg.nn.Module,
    theirs: torch.nn.Module,
    x: np.ndarray,
    dy: np.ndarray,
    device: str,
    invstd: float,
    grad_scales: dict[str, float],
    where: str,
) -> None:
    """One forward and backward on both; compare output, input gradient, and the
    (accumulating) parameter gradients.  ``grad_scales`` carries the accumulated
    weight/bias gradient scales between calls."""
    dtype = x.dtype
    x_t = to_torch(x, device, requires_grad=True)
    y_t = theirs(x_t)
    y_t.backward(to_torch(dy, device))
    y = ours(x)
    grad_input = ours.backward(dy)
    weight = None if ours.weight is None else ours.weight.data
    bias = None if ours.bias is None else ours.bias.data
    scales = Scales(x, dy, invstd, weight, bias)
    assert_close(y, y_t, *scaled_tolerance(dtype, device, scales.output), f"{where}: output")
    assert_close(
        grad_input,
        x_t.grad,
        *scaled_tolerance(dtype, device, scales.grad_input),
        f"{where}: grad input",
    )
    grad_scales["weight"] = grad_scales.get("weight", 0.0) + scales.grad_weight
    grad_scales["bias"] = grad_scales.get("bias", 0.0) + scales.grad_bias
    for name in ("weight", "bias"):
        mine = getattr(ours, name)
        if mine is not None:
            assert_close(
                mine.grad,
                getattr(theirs, name).grad,
                *scaled_tolerance(dtype, device, grad_scales[name]),
                f"{where}: {name}.grad",
            )


def compare_buffers(
    ours: minireg.nn.Module, theirs: torch.nn.Module, dtype: Any, device: str, where: str
) -> None:
    """running_mean, running_var (tolerance()) and num_batches_tracked (exactly)."""
    for name in ("running_mean", "running_var"):
        mine, expected = getattr(ours, name), getattr(theirs, name)
        if expected is None:
            assert mine is None, f"{where}: {name} should be None"
        else:
            assert_close(mine, expected, *tolerance(dtype, device), f"{where}: {name}")
    if theirs.num_batches_tracked is None:
        assert ours.num_batches_tracked is None
    else:
        assert_close(
            ours.num_batches_tracked,
            theirs.num_batches_tracked,
            0,
            0,
            f"{where}: num_batches_tracked",
        )


def running_invstd(invstd: float, theirs: torch.nn.Module, eps: float) -> float:
    """``invstd``, raised to the largest ``1/sqrt(running_var + eps)`` where the layer keeps
    a running variance (evaluation normalises with it)."""
    if theirs.running_var is None:
        return invstd
    running = to_numpy(theirs.running_var).astype(np.float64)
    return max(invstd, float(np.max(1.0 / np.sqrt(running + eps))))


def run_train_eval_sequence(
    ours: minireg.nn.Module,
    theirs: torch.nn.Module,
    rng: np.random.Generator,
    shape: tuple[int, ...],
    loc_sigma: tuple[np.ndarray, np.ndarray],
    axes: tuple[int, ...],
    modes: list[bool],
    eps: float,
    dtype: Any,
    device: str,
) -> None:
    """One step per entry of ``modes`` (True: training, False: evaluation), on fresh data from
    the one distribution ``loc_sigma``; forward, backward and running statistics compared
    after each (state carries across the steps).  ``axes`` are those a group reduces over."""
    grad_scales: dict[str, float] = {}
    for step, training in enumerate(modes):
        ours.train(training)
        theirs.train(training)
        x = well_conditioned(rng, shape, dtype, (), loc_sigma)
        dy = rng.standard_normal(shape).astype(dtype)
        invstd = running_invstd(max_invstd(x, axes, eps), theirs, eps)
        where = f"step {step} ({'train' if training else 'eval'})"
        compare_step(ours, theirs, x, dy, device, invstd, grad_scales, where)
        compare_buffers(ours, theirs, dtype, device, f"step {step}")


def assert_module_error_like_torch(
    ours: minireg.nn.Module, theirs: torch.nn.Module, x: np.ndarray, device: str
) -> None:
    """Calling the layer on ``x`` raises on both sides: same type, same message."""
    assert_same_error(lambda: theirs(to_torch(x, device)), lambda: ours(x))


def assert_functional_error_like_torch(
    call: Callable[[Any, Callable[[np.ndarray], Any]], Any], device: str
) -> None:
    """``call(functional module, convert)`` raises alike for ``torch.nn.functional`` (arrays
    converted to tensors on ``device``) and for ``minireg.nn.functional`` (arrays as they are)."""
    assert_same_error(
        lambda: call(torch.nn.functional, lambda a: to_torch(a, device)),
        lambda: call(F, lambda a: a),
    )
