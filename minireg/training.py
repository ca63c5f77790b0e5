"""Training-loop helpers torch leaves to the user: early stopping and k-fold splits.

Early stopping (L. Prechelt, 1998, "Early Stopping - But When?", in Neural Networks:
Tricks of the Trade) watches a validation metric, remembers the weights of the best epoch,
and says stop once the metric has not improved for ``patience`` epochs in a row.
k-fold cross-validation splits ``n`` samples into ``k`` disjoint validation folds, with
the fold sizes and index order of scikit-learn's ``KFold``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from numbers import Integral
from typing import Any

import numpy as np

from minireg.random import resolve

__all__ = ["EarlyStopping", "kfold_indices"]


class EarlyStopping:
    r"""Stop when a validation metric has not improved for ``patience`` epochs in a row.

    An epoch improves when its metric beats the best so far by more than ``min_delta``:

    .. math::
        \text{mode="min"}: m_t < m_\text{best} - \delta, \qquad
        \text{mode="max"}: m_t > m_\text{best} + \delta

    (the best starts at :math:`+\infty` for ``"min"`` and :math:`-\infty` for ``"max"``, so
    the first finite metric improves; ``nan`` never improves).  ``step`` returns ``True``
    once ``num_bad_epochs >= patience``, i.e. after ``patience`` epochs in a row without
    improvement; ``patience=0`` stops at the first such epoch, like ``patience=1`` (as in
    Keras and PyTorch Lightning).  Each improving epoch deep-copies ``model.state_dict()``
    into ``best_state_dict`` (when a model is given); ``restore(model)`` loads it back.

    Attributes: ``best_metric``, ``best_epoch`` (0-based index of the ``step`` call, ``-1``
    before any improvement), ``num_bad_epochs``, ``epoch`` (steps taken), ``best_state_dict``
    (``None`` until a model is seen at an improving epoch), ``should_stop``.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, mode: str = "min") -> None:
        if isinstance(patience, bool) or not isinstance(patience, Integral) or patience < 0:
            raise ValueError(f"patience should be a non-negative integer, but got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta should be non-negative, but got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} is unknown! Expected 'min' or 'max'")
        self.patience: int = int(patience)
        self.min_delta: float = float(min_delta)
        self.mode: str = mode
        self.best_metric: float = math.inf if mode == "min" else -math.inf
        self.best_epoch: int = -1
        self.best_state_dict: Mapping[str, Any] | None = None
        self.num_bad_epochs: int = 0
        self.epoch: int = 0

    def is_improvement(self, metric: float) -> bool:
        """Whether ``metric`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return metric < self.best_metric - self.min_delta
        return metric > self.best_metric + self.min_delta

    def step(self, metric: float, model: Any = None) -> bool:
        """Record this epoch's ``metric`` (and ``model``'s weights if it is the best); return
        ``True`` when training should stop."""
        metric = float(metric)
        if self.is_improvement(metric):
            self.best_metric = metric
            self.best_epoch = self.epoch
            self.num_bad_epochs = 0
            if model is not None:
                self.best_state_dict = copy.deepcopy(model.state_dict())
        else:
            self.num_bad_epochs += 1
        self.epoch += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        """Whether the last ``patience`` epochs (at least one) all failed to improve."""
        return self.num_bad_epochs >= max(self.patience, 1)

    def restore(self, model: Any) -> Any:
        """Load the best epoch's weights into ``model`` (in place) and return ``model``."""
        if self.best_state_dict is None:
            raise RuntimeError("EarlyStopping has no saved state: call step(metric, model) first")
        model.load_state_dict(self.best_state_dict)
        return model


def kfold_indices(
    n_samples: int,
    n_splits: int = 5,
    shuffle: bool = False,
    generator: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    r"""Yield ``(train_idx, val_idx)`` for each of ``n_splits`` folds, as scikit-learn's ``KFold``.

    The indices :math:`0..n-1` (permuted by ``generator`` when ``shuffle``) are cut into
    ``n_splits`` consecutive folds; the first ``n % n_splits`` folds hold
    :math:`\lfloor n/k \rfloor + 1` samples, the rest :math:`\lfloor n/k \rfloor`.  Fold
    :math:`j` is the validation set of split :math:`j`, the other folds its training set;
    both index arrays are sorted ascending (scikit-learn returns them so too).
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, Integral):
        raise ValueError(
            f"The number of folds must be of Integral type. {n_splits!r} of type "
            f"{type(n_splits)} was passed."
        )
    if n_splits < 2:
        raise ValueError(
            "k-fold cross-validation requires at least one train/test split by setting "
            f"n_splits=2 or more, got n_splits={n_splits}."
        )
    if n_splits > n_samples:
        raise ValueError(
            f"Cannot have number of splits n_splits={n_splits} greater than the number of "
            f"samples: n_samples={n_samples}."
        )
    return _kfold(int(n_samples), int(n_splits), shuffle, generator)


def _kfold(
    n_samples: int, n_splits: int, shuffle: bool, generator: np.random.Generator | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    order = resolve(generator).permutation(n_samples) if shuffle else np.arange(n_samples)
    fold_sizes = np.full(n_splits, n_samples // n_splits)
    fold_sizes[: n_samples % n_splits] += 1
    stops = np.cumsum(fold_sizes)
    for start, stop in zip(stops - fold_sizes, stops):
        in_val = np.zeros(n_samples, dtype=bool)
        in_val[order[start:stop]] = True
        yield np.flatnonzero(~in_val), np.flatnonzero(in_val)
