"""Training-loop helpers torch leaves to the user: early stopping, k-fold splits, bagging.

Early stopping (L. Prechelt, 1998, "Early Stopping - But When?", in Neural Networks:
Tricks of the Trade) watches a validation metric, remembers the weights of the best epoch,
and says stop once the metric has not improved for ``patience`` epochs in a row.
k-fold cross-validation splits ``n`` samples into ``k`` disjoint validation folds, with
the fold sizes and index order of scikit-learn's ``KFold``.
Bagging (L. Breiman, 1996, "Bagging predictors", Machine Learning 24) trains one model per
bootstrap resample of the training set and averages (regression) or votes (classification)
their predictions; the samples a resample never drew ("out of bag") give each model a free
validation set.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from numbers import Integral
from typing import Any

import numpy as np

from minireg.random import resolve

__all__ = [
    "EarlyStopping",
    "bagging_average",
    "bagging_vote",
    "bootstrap_indices",
    "kfold_indices",
    "out_of_bag",
]


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
    for start, stop in zip(stops - fold_sizes, stops, strict=True):
        in_val = np.zeros(n_samples, dtype=bool)
        in_val[order[start:stop]] = True
        yield np.flatnonzero(~in_val), np.flatnonzero(in_val)


# ---------------------------------------------------------------------------- bagging
def bootstrap_indices(n: int, *, generator: np.random.Generator | None = None) -> np.ndarray:
    r"""``n`` indices drawn uniformly from ``range(n)`` with replacement (a bootstrap resample).

    .. math::
        i_1, \dots, i_n \overset{\text{iid}}{\sim} \mathrm{Uniform}\{0, \dots, n-1\}

    Each sample is drawn with probability :math:`1/n` per draw, so it is left out of the
    resample with probability :math:`(1 - 1/n)^n \to 1/e \approx 0.368`: a resample holds
    on average :math:`n\,(1 - (1 - 1/n)^n)` distinct samples, about :math:`1 - 1/e \approx
    63.2\,\%` of them, some several times (Efron, 1979, "Bootstrap methods: another look
    at the jackknife", Annals of Statistics 7).  Returns int64 of shape ``(n,)``, drawn
    from ``generator`` (default: minireg's, reseeded by ``minireg.manual_seed``).
    Raises ``TypeError`` for a non-integer ``n`` or a ``generator`` that is not a
    ``numpy.random.Generator``, ``ValueError`` for a negative ``n``, before drawing.
    """
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"bootstrap_indices: n must be an integer, but got {n!r}")
    if n < 0:
        raise ValueError(f"bootstrap_indices: n must be non-negative, but got {n}")
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(
            "bootstrap_indices: generator must be a numpy.random.Generator or None, "
            f"but got {type(generator).__name__}"
        )
    return resolve(generator).integers(0, int(n), size=int(n), dtype=np.int64)


def out_of_bag(indices: np.ndarray, n: int) -> np.ndarray:
    r"""The indices in ``range(n)`` that ``indices`` never drew, sorted ascending (int64).

    .. math::
        \mathrm{OOB} = \{0, \dots, n-1\} \setminus \{i_1, \dots, i_m\}

    For a bootstrap resample (:func:`bootstrap_indices`) about :math:`1/e \approx 36.8\,\%`
    of the samples are out of bag; a model never saw them, so its error on them estimates
    its test error (Breiman, 1996, "Out-of-bag estimation").  Raises ``TypeError`` for
    non-integer ``indices`` or ``n``, ``ValueError`` for ``indices`` that are not 1-D or a
    negative ``n``, ``IndexError`` for an index outside ``range(n)``.
    """
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"out_of_bag: n must be an integer, but got {n!r}")
    if n < 0:
        raise ValueError(f"out_of_bag: n must be non-negative, but got {n}")
    indices = np.asarray(indices)
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"out_of_bag: indices must be integers, but got dtype {indices.dtype}")
    if indices.ndim != 1:
        raise ValueError(f"out_of_bag: indices must be 1-D, but got shape {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        bad = indices[(indices < 0) | (indices >= n)][0]
        raise IndexError(f"out_of_bag: index {bad} is out of range for n={n}")
    drawn = np.zeros(int(n), dtype=bool)
    drawn[indices.astype(np.int64)] = True
    return np.flatnonzero(~drawn).astype(np.int64)


def _check_models_axis(array: np.ndarray, name: str) -> None:
    if array.ndim == 0 or len(array) == 0:
        raise ValueError(
            f"{name} needs one row per model along the first axis (at least one model), "
            f"but got shape {array.shape}"
        )


def bagging_average(predictions: np.ndarray) -> np.ndarray:
    r"""The ensemble's regression prediction: the mean over models (the first axis).

    .. math::
        \bar f(x) = \frac{1}{M} \sum_{m=1}^{M} f_m(x)

    ``predictions`` has shape ``(M, ...)``, one row per model.  Averaging keeps each
    model's bias and divides the variance of uncorrelated errors by :math:`M` (Breiman,
    1996).  A floating dtype is kept (float32 stays float32); integers give float64.
    Raises ``TypeError`` for non-real input, ``ValueError`` without a model axis or models.
    """
    predictions = np.asarray(predictions)
    if predictions.dtype == bool or not (
        np.issubdtype(predictions.dtype, np.integer)
        or np.issubdtype(predictions.dtype, np.floating)
    ):
        raise TypeError(
            f"bagging_average: predictions must be real numbers, but got dtype {predictions.dtype}"
        )
    _check_models_axis(predictions, "bagging_average")
    return predictions.mean(axis=0)


def bagging_vote(labels: np.ndarray, num_classes: int) -> np.ndarray:
    r"""The ensemble's class: per sample, the label most models predict (ties: smallest class).

    .. math::
        \hat y(x) = \operatorname*{arg\,max}_{c \in \{0..C-1\}} \sum_{m=1}^{M} [\,y_m(x) = c\,]

    ``labels`` has shape ``(M, ...)``: integer class labels in ``[0, num_classes)``, one
    row per model.  A tie between classes goes to the smallest one (``argmax`` returns
    the first maximum).  Returns int64 of shape ``labels.shape[1:]``.  Raises
    ``TypeError`` for non-integer labels or ``num_classes``, ``ValueError`` for
    ``num_classes < 1``, no model axis or models, or a label outside ``[0, num_classes)``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral):
        raise TypeError(f"bagging_vote: num_classes must be an integer, but got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"bagging_vote: num_classes must be positive, but got {num_classes}")
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"bagging_vote: labels must be integer class labels, but got dtype {labels.dtype}"
        )
    _check_models_axis(labels, "bagging_vote")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"bagging_vote: class labels must lie in [0, num_classes={num_classes})")
    votes = (labels[..., None] == np.arange(num_classes)).sum(axis=0)  # (..., C) counts
    return np.argmax(votes, axis=-1).astype(np.int64)
