"""Small synthetic data sets shared by the lesson figures (deterministic, float64).

* :func:`spirals`: three interleaved spiral arms in the unit disc, the classification
  task of most figures (:mod:`plots.batchnorm` uses the same arms, badly scaled).
* :func:`rings`: two concentric noisy rings, a task that is symmetric under rotation.
* :func:`wave`: the 1-D regression of :mod:`plots.mlp_regression`, ``sin(2x) + 0.3x``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rings", "spirals", "standardize", "wave"]


def spirals(
    n: int, seed: int, *, noise: float = 0.25, label_noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of three spiral arms, radius 0.1 to 1 (scaled by 2); int64 labels.

    ``noise`` jitters each point's angle; ``label_noise`` is the fraction of labels
    replaced by a uniformly drawn class (which may be the right one).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 2 * np.pi * labels / 3 + 3.0 * radius + noise * rng.standard_normal(n)
    x = 2.0 * np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    flip = rng.random(n) < label_noise
    labels = np.where(flip, rng.integers(0, 3, n), labels)
    return x, labels.astype(np.int64)


def rings(n: int, seed: int, *, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric rings, radius 1 (class 0) and 2 (class 1), radial noise ``noise``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    radius = 1.0 + labels + noise * rng.standard_normal(n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x, labels.astype(np.int64)


def wave(n: int, seed: int, *, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``y = sin(2x) + 0.3x + noise·ε`` for ``x ~ U(−3, 3)``, as ``(n, 1)`` columns."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, (n, 1))
    y = np.sin(2.0 * x) + 0.3 * x + noise * rng.standard_normal((n, 1))
    return x, y


def standardize(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``x`` shifted and scaled by ``reference``'s column means and standard deviations."""
    return (x - reference.mean(axis=0)) / reference.std(axis=0)
