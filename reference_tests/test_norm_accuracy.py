"""The statistics the normalisation layers compute are accurate at scale.

For float32 inputs of 1e7 values drawn from N(3, 1) (a non-zero mean, so that the
variance's sum of squared deviations needs the mean to be right), the mean and the
variance each layer normalises with must be within a relative 1e-6 of float64
statistics of the same float32 values.  A float32 sum that runs through millions of
values one after another misses that by one to two orders of magnitude (1e-5 to 1e-4
measured: NumPy's strided reductions, einsum and dot all accumulate that way), so these
tests fail for a kernel whose reductions are merely fast; see ``channel_sum`` in
``minireg/numerics.py`` and ``blocked_sum`` in ``minireg/_engine/norms.py``.

Batch and instance norm expose their statistics as running estimates (momentum 1 copies
this batch's mean and unbiased variance).  Layer and group norm keep none, so the mean
:math:`\\mu'` and scale :math:`s' = 1/\\sqrt{\\sigma'^2+\\epsilon}` they used are read back
from their output :math:`y = (x-\\mu')\\,s'` by a float64 least-squares fit of y on x
(exact up to y's own rounding, which averages out over 1e7 values).
"""

from __future__ import annotations

import numpy as np
import pytest

import minireg

SIZE = 10**7
EPS = 1e-5
BOUND = 1e-6


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """1e7 float32 values from N(3, 1)."""
    return (3.0 + np.random.default_rng(0).standard_normal(SIZE)).astype(np.float32)


def relative_error(value: np.ndarray | float, reference: np.ndarray | float) -> float:
    value, reference = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    return float(np.max(np.abs(value - reference) / np.abs(reference)))


def assert_running_statistics(
    layer: minireg.nn.Module, x: np.ndarray, axes: tuple[int, ...]
) -> None:
    """One training step with momentum 1: the running estimates are this batch's mean and
    unbiased variance per channel, compared with float64 ones over ``axes``."""
    layer.train()
    layer(x)
    x64 = x.astype(np.float64)
    mean_error = relative_error(layer.running_mean, x64.mean(axis=axes))
    var_error = relative_error(layer.running_var, x64.var(axis=axes, ddof=1))
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32
    assert mean_error <= BOUND and var_error <= BOUND, (mean_error, var_error)


def fitted_statistics(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The (mean, variance) that produced ``y = (x - mean) / sqrt(variance + EPS)``."""
    x64, y64 = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    x_mean, y_mean = x64.mean(), y64.mean()
    slope = np.dot(x64 - x_mean, y64 - y_mean) / np.dot(x64 - x_mean, x64 - x_mean)
    return x_mean - y_mean / slope, 1.0 / slope**2 - EPS


def assert_fitted_statistics(x: np.ndarray, y: np.ndarray) -> None:
    assert y.dtype == np.float32
    mean, var = fitted_statistics(x, y)
    x64 = x.astype(np.float64)
    mean_error, var_error = relative_error(mean, x64.mean()), relative_error(var, x64.var())
    assert mean_error <= BOUND and var_error <= BOUND, (mean_error, var_error)


@pytest.mark.parametrize("channels", [1, 2], ids=["1-channel", "2-channels"])
def test_batch_norm_1d_over_a_long_batch(data: np.ndarray, channels: int) -> None:
    # 2 channels: each channel's values lie at a stride, where NumPy's own sums are sequential
    layer = minireg.nn.BatchNorm1d(channels, momentum=1.0, dtype=np.float32)
    assert_running_statistics(layer, data.reshape(-1, channels), (0,))


@pytest.mark.parametrize(
    "shape", [(10, 2, 1000, 500), (312_500, 2, 4, 4)], ids=["long-rows", "many-short-rows"]
)
def test_batch_norm_2d(data: np.ndarray, shape: tuple[int, ...]) -> None:
    layer = minireg.nn.BatchNorm2d(shape[1], momentum=1.0, dtype=np.float32)
    assert_running_statistics(layer, data.reshape(shape), (0, 2, 3))


def test_instance_norm_1d(data: np.ndarray) -> None:
    layer = minireg.nn.InstanceNorm1d(2, momentum=1.0, track_running_stats=True, dtype=np.float32)
    assert_running_statistics(layer, data.reshape(1, 2, -1), (0, 2))


def test_layer_norm_over_1e7_elements(data: np.ndarray) -> None:
    x = data.reshape(1, -1)
    layer = minireg.nn.LayerNorm(SIZE, eps=EPS, elementwise_affine=False)
    assert_fitted_statistics(x, layer(x))


def test_group_norm_over_1e7_elements(data: np.ndarray) -> None:
    x = data.reshape(1, 4, 2500, 1000)  # one sample, one group of 4 channels
    layer = minireg.nn.GroupNorm(1, 4, eps=EPS, affine=False)
    assert_fitted_statistics(x, layer(x))
