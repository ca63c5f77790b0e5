"""EarlyStopping and kfold_indices: hand-worked traces, an independent oracle, partitions.

EarlyStopping has no torch counterpart.  Besides hand-worked traces (patience, min_delta,
mode), a property test compares it with a non-incremental definition that holds for
``min_delta = 0``: at epoch t the best epoch is the first index of the minimum of
``m[0..t]`` and training stops when ``t - best_epoch >= max(patience, 1)``.
kfold_indices follows scikit-learn's KFold (fold sizes, sorted indices); scikit-learn is
not installed, so its documented layout is written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
from minireg.training import EarlyStopping, kfold_indices
from reference_tests.conftest import to_torch


def trace(stopper: EarlyStopping, metrics: list[float]) -> list[bool]:
    return [stopper.step(m) for m in metrics]


# ---------------------------------------------------------------------------- EarlyStopping traces
def test_patience_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=3)
    # best 5 (e0), 4 (e1), then 4.5, 4.2, 4.1 do not beat 4: the third one stops.
    assert trace(stopper, [5, 4, 4.5, 4.2, 4.1]) == [False, False, False, False, True]
    assert (stopper.best_metric, stopper.best_epoch, stopper.num_bad_epochs) == (4.0, 1, 3)


def test_an_improvement_resets_the_count():
    stopper = EarlyStopping(patience=2)
    # bad, improve, bad, improve, bad, bad: only the last two bad epochs are in a row.
    assert trace(stopper, [3, 3, 2, 2.5, 1, 1, 1]) == [False] * 6 + [True]
    assert stopper.best_epoch == 4


def test_equal_metric_is_not_an_improvement_and_min_delta_is_strict():
    stopper = EarlyStopping(patience=2, min_delta=0.25)
    # 0.75 equals best - min_delta: not enough; 0.5 beats it; 0.3 is within min_delta of 0.5.
    assert trace(stopper, [1.0, 0.75, 0.5, 0.3, 0.3]) == [False, False, False, False, True]
    assert (stopper.best_metric, stopper.best_epoch) == (0.5, 2)


def test_mode_max_for_accuracies():
    stopper = EarlyStopping(patience=3, mode="max", min_delta=0.125)
    metrics = [0.5, 0.75, 0.875, 0.8125, 1.0, 1.0625, 1.09375, 1.109375]
    # 0.875 beats 0.75 by exactly min_delta: no improvement; 1.0 beats 0.75 by 0.25: improvement;
    # the last three creep up by less than min_delta: three bad epochs in a row.
    assert trace(stopper, metrics) == [False] * 7 + [True]
    assert (stopper.best_metric, stopper.best_epoch) == (1.0, 4)


def test_patience_zero_stops_at_the_first_bad_epoch():
    stopper = EarlyStopping(patience=0)
    assert trace(stopper, [2, 1, 1]) == [False, False, True]


def test_nan_never_improves():
    stopper = EarlyStopping(patience=2)
    assert trace(stopper, [float("nan"), 1.0, float("nan"), float("nan")]) == [
        False,
        False,
        False,
        True,
    ]
    assert stopper.best_epoch == 1


@given(
    metrics=st.lists(st.integers(0, 6).map(float), min_size=1, max_size=30),
    patience=st.integers(0, 5),
    mode=st.sampled_from(["min", "max"]),
)
def test_matches_the_prefix_minimum_definition(metrics, patience, mode):
    stopper = EarlyStopping(patience=patience, mode=mode)
    signed = np.array(metrics) * (1 if mode == "min" else -1)
    for t, m in enumerate(metrics):
        stop = stopper.step(m)
        best_epoch = int(np.argmin(signed[: t + 1]))  # first occurrence: later ties do not improve
        assert stopper.best_epoch == best_epoch
        assert stop == (t - best_epoch >= max(patience, 1))


# ---------------------------------------------------------------------------- best weights
class TinyModel(minireg.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = minireg.Parameter(np.zeros((2, 3)))
        self.register_buffer("running_mean", np.zeros(3))


def test_keeps_a_deep_copy_of_the_best_weights_and_restores_them():
    model = TinyModel()
    stopper = EarlyStopping(patience=2)
    metrics = [3.0, 1.0, 2.0, 2.5]
    for epoch, metric in enumerate(metrics):
        model.weight.data += 1.0  # "train" in place: the saved copy must not follow
        model.running_mean[...] = epoch
        if stopper.step(metric, model):
            break
    assert stopper.best_epoch == 1
    np.testing.assert_array_equal(stopper.best_state_dict["weight"], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 4.0))
    weight = model.weight.data
    assert stopper.restore(model) is model
    assert model.weight.data is weight  # restored in place
    np.testing.assert_array_equal(model.weight.data, np.full((2, 3), 2.0))
    np.testing.assert_array_equal(model.running_mean, np.full(3, 1.0))


def test_works_with_a_torch_module_too():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    stopper = EarlyStopping(patience=1)
    stopper.step(1.0, model)
    best = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(to_torch(np.ones((2, 3), np.float32)))
    assert stopper.step(2.0, model)
    stopper.restore(model)
    assert torch.equal(model.weight.detach(), best)


def test_restore_without_a_saved_state_raises():
    stopper = EarlyStopping()
    stopper.step(1.0)  # no model given
    with pytest.raises(RuntimeError, match="no saved state"):
        stopper.restore(TinyModel())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="avg"), "mode 'avg' is unknown! Expected 'min' or 'max'"),
        (dict(patience=-1), "patience should be a non-negative integer, but got -1"),
        (dict(patience=1.5), "patience should be a non-negative integer, but got 1.5"),
        (dict(min_delta=-0.1), "min_delta should be non-negative, but got -0.1"),
        (dict(min_delta=float("nan")), "min_delta should be non-negative, but got nan"),
    ],
)
def test_early_stopping_validation(kwargs, message):
    with pytest.raises(ValueError) as error:
        EarlyStopping(**kwargs)
    assert str(error.value) == message


# ---------------------------------------------------------------------------- kfold
@given(data=st.data(), n=st.integers(2, 60), shuffle=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_kfold_partitions(data, n, shuffle, seed):
    k = data.draw(st.integers(2, n), label="n_splits")
    splits = list(kfold_indices(n, k, shuffle=shuffle, generator=np.random.default_rng(seed)))
    assert len(splits) == k
    sizes = [len(val) for _, val in splits]
    assert sizes == [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    np.testing.assert_array_equal(np.sort(np.concatenate([val for _, val in splits])), np.arange(n))
    for train, val in splits:
        assert train.dtype.kind == "i" and val.dtype.kind == "i"
        assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # sorted, no repeats
        np.testing.assert_array_equal(np.union1d(train, val), np.arange(n))
        assert len(np.intersect1d(train, val)) == 0
    if shuffle:  # documented: the folds are consecutive slices of generator.permutation(n)
        order = np.random.default_rng(seed).permutation(n)
        stops = np.cumsum(sizes)
        for (_, val), start, stop in zip(splits, stops - sizes, stops):
            np.testing.assert_array_equal(val, np.sort(order[start:stop]))


def test_kfold_unshuffled_layout_as_scikit_learn():
    # KFold(3).split(range(10)): folds of 4, 3, 3 consecutive indices.
    splits = list(kfold_indices(10, 3))
    expected_val = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for (train, val), want in zip(splits, expected_val):
        np.testing.assert_array_equal(val, want)
        np.testing.assert_array_equal(train, [i for i in range(10) if i not in want])


def test_kfold_shuffle_is_reproducible():
    first = list(kfold_indices(20, 4, shuffle=True, generator=np.random.default_rng(1)))
    second = list(kfold_indices(20, 4, shuffle=True, generator=np.random.default_rng(1)))
    for (a, b), (c, d) in zip(first, second):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    minireg.manual_seed(2)
    third = [val for _, val in kfold_indices(20, 4, shuffle=True)]
    minireg.manual_seed(2)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(third, [val for _, val in kfold_indices(20, 4, shuffle=True)])
    )
    assert not all(
        np.array_equal(a, b) for a, b in zip(third, [val for _, val in kfold_indices(20, 4)])
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            (10, 1),
            "k-fold cross-validation requires at least one train/test split by setting "
            "n_splits=2 or more, got n_splits=1.",
        ),
        (
            (3, 4),
            "Cannot have number of splits n_splits=4 greater than the number of samples: "
            "n_samples=3.",
        ),
        (
            (10, 2.0),
            "The number of folds must be of Integral type. 2.0 of type <class 'float'> was passed.",
        ),
    ],
)
def test_kfold_validation_is_eager(args, message):
    with pytest.raises(ValueError) as error:
        kfold_indices(*args)  # raises on the call, before any iteration
    assert str(error.value) == message
