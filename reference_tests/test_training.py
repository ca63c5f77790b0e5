"""EarlyStopping, kfold_indices and the bagging helpers: traces, oracles, laws, partitions.

EarlyStopping has no torch counterpart.  Besides hand-worked traces (patience, min_delta,
mode), a property test compares it with a non-incremental definition that holds for
``min_delta = 0``: at epoch t the best epoch is the first index of the minimum of
``m[0..t]`` and training stops when ``t - best_epoch >= max(patience, 1)``.
kfold_indices follows scikit-learn's KFold (fold sizes, sorted indices); scikit-learn is
not installed, so its documented layout is written out by hand.
bootstrap_indices is random: it is tested by its law (chi-square tests of uniformity and of
a sample's multiplicity, Binomial(n, 1/n), and a z-test of the number of distinct samples,
whose exact mean and variance are written out), with fixed seeds so the tests are
deterministic.  bagging_average and bagging_vote are compared with torch.mean and
torch.mode (on votes without ties: torch does not document its tie rule) and with a
plain-Python oracle; ties are worked by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minireg
from minireg.training import (
    EarlyStopping,
    bagging_average,
    bagging_vote,
    bootstrap_indices,
    kfold_indices,
    out_of_bag,
)
from reference_tests.conftest import assert_close, to_numpy, to_torch, tolerance


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
        for (_, val), start, stop in zip(splits, stops - sizes, stops, strict=True):
            np.testing.assert_array_equal(val, np.sort(order[start:stop]))


def test_kfold_unshuffled_layout_as_scikit_learn():
    # KFold(3).split(range(10)): folds of 4, 3, 3 consecutive indices.
    splits = list(kfold_indices(10, 3))
    expected_val = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for (train, val), want in zip(splits, expected_val, strict=True):
        np.testing.assert_array_equal(val, want)
        np.testing.assert_array_equal(train, [i for i in range(10) if i not in want])


def test_kfold_shuffle_is_reproducible():
    first = list(kfold_indices(20, 4, shuffle=True, generator=np.random.default_rng(1)))
    second = list(kfold_indices(20, 4, shuffle=True, generator=np.random.default_rng(1)))
    for (a, b), (c, d) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    minireg.manual_seed(2)
    third = [val for _, val in kfold_indices(20, 4, shuffle=True)]
    minireg.manual_seed(2)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(third, [val for _, val in kfold_indices(20, 4, shuffle=True)], strict=True)
    )
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(third, [val for _, val in kfold_indices(20, 4)], strict=True)
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


# ---------------------------------------------------------------------------- bootstrap: the law
def chi_square_p_value(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's chi-square goodness-of-fit p-value, ``len(observed) - 1`` degrees of freedom.

    The chi-square survival function is the regularised upper incomplete gamma function,
    ``Q(k/2, x/2)``; torch has it (scipy is not installed).
    """
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(observed) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0), torch.tensor(statistic / 2.0)))


def resamples(n: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([bootstrap_indices(n, generator=rng) for _ in range(count)])


def test_bootstrap_shape_dtype_and_range():
    for n in (0, 1, 2, 7, 1000):
        idx = bootstrap_indices(n, generator=np.random.default_rng(n))
        assert idx.shape == (n,) and idx.dtype == np.int64
        assert np.all((idx >= 0) & (idx < n))
    np.testing.assert_array_equal(bootstrap_indices(1), [0])


def test_bootstrap_every_index_is_equally_likely():
    n, count = 40, 500
    draws = resamples(n, count, seed=0)
    observed = np.bincount(draws.ravel(), minlength=n)
    assert chi_square_p_value(observed, np.full(n, float(count))) > 1e-4


def test_bootstrap_draws_with_replacement_multiplicity_is_binomial():
    # Within one resample, how often sample 0 appears is Binomial(n, 1/n): 0 with
    # probability (1 - 1/n)^n ~ 1/e, twice or more in about a quarter of the resamples.
    n, count = 30, 3000
    draws = resamples(n, count, seed=1)
    multiplicity = np.count_nonzero(draws == 0, axis=1)
    k = np.arange(4)
    pmf = np.array([math.comb(n, j) * (1 / n) ** j * (1 - 1 / n) ** (n - j) for j in k])
    expected = count * np.append(pmf, 1 - pmf.sum())  # 0, 1, 2, 3, 4 or more
    observed = np.append(np.bincount(np.minimum(multiplicity, 4), minlength=5)[:4], 0)
    observed[4] = count - observed[:4].sum()
    assert chi_square_p_value(observed, expected) > 1e-4
    assert np.mean(multiplicity >= 2) > 0.2  # with replacement, visibly


@pytest.mark.parametrize("n", [5, 100, 2000])
def test_bootstrap_holds_about_one_minus_one_over_e_distinct_samples(n):
    # D = number of distinct samples.  With q1 = (1 - 1/n)^n, q2 = (1 - 2/n)^n:
    # E[D] = n (1 - q1) -> n (1 - 1/e), Var[D] = n q1 + n (n - 1) q2 - n^2 q1^2.
    count = 400
    draws = resamples(n, count, seed=n)
    distinct = np.array([len(np.unique(row)) for row in draws])
    q1, q2 = (1 - 1 / n) ** n, (1 - 2 / n) ** n
    mean, var = n * (1 - q1), n * q1 + n * (n - 1) * q2 - n * n * q1 * q1
    z = (distinct.mean() - mean) / math.sqrt(var / count)
    assert abs(z) < 4, f"mean distinct {distinct.mean():.2f}, expected {mean:.2f} (z = {z:.1f})"
    if n >= 100:
        assert abs(distinct.mean() / n - (1 - 1 / math.e)) < 0.01


def test_bootstrap_is_reproducible_with_a_generator_and_with_manual_seed():
    a = bootstrap_indices(50, generator=np.random.default_rng(7))
    b = bootstrap_indices(50, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, bootstrap_indices(50, generator=np.random.default_rng(8)))
    minireg.manual_seed(3)
    c = bootstrap_indices(50)
    d = bootstrap_indices(50)  # the default generator moves on
    minireg.manual_seed(3)
    np.testing.assert_array_equal(bootstrap_indices(50), c)
    np.testing.assert_array_equal(bootstrap_indices(50), d)
    assert not np.array_equal(c, d)


def test_bootstrap_with_a_generator_leaves_the_default_one_alone():
    minireg.manual_seed(4)
    expected = bootstrap_indices(20)
    minireg.manual_seed(4)
    bootstrap_indices(20, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(bootstrap_indices(20), expected)


@pytest.mark.parametrize(
    "n, generator, error, message",
    [
        (-1, None, ValueError, "n must be non-negative, but got -1"),
        (2.5, None, TypeError, "n must be an integer, but got 2.5"),
        (3.0, None, TypeError, "n must be an integer, but got 3.0"),
        (True, None, TypeError, "n must be an integer, but got True"),
        ("4", None, TypeError, "n must be an integer, but got '4'"),
        (4, 7, TypeError, "generator must be a numpy.random.Generator or None, but got int"),
        (4, np.random.RandomState(0), TypeError, "but got RandomState"),
    ],
)
def test_bootstrap_bad_input_raises_before_drawing(n, generator, error, message):
    minireg.manual_seed(5)
    state = minireg.random.default_generator().bit_generator.state
    with pytest.raises(error, match=message):
        bootstrap_indices(n, generator=generator)
    assert minireg.random.default_generator().bit_generator.state == state


def test_bootstrap_bad_input_leaves_the_given_generator_alone():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError):
        bootstrap_indices(-3, generator=rng)
    assert rng.bit_generator.state == state


# ---------------------------------------------------------------------------- out of bag
@given(n=st.integers(0, 60), data=st.data())
def test_out_of_bag_is_the_set_of_samples_never_drawn(n, data):
    m = data.draw(st.integers(0, 80), label="m")
    indices = np.array(
        data.draw(
            st.lists(st.integers(0, max(n - 1, 0)), min_size=m, max_size=m) if n else st.just([])
        ),
        dtype=data.draw(st.sampled_from([np.int64, np.int32, np.uint8]), label="dtype"),
    )
    oob = out_of_bag(indices, n)
    assert oob.dtype == np.int64 and oob.ndim == 1
    np.testing.assert_array_equal(oob, sorted(set(range(n)) - set(indices.tolist())))


def test_out_of_bag_of_a_bootstrap_is_about_one_over_e():
    n = 5000
    idx = bootstrap_indices(n, generator=np.random.default_rng(0))
    oob = out_of_bag(idx, n)
    assert abs(len(oob) / n - 1 / math.e) < 0.02
    assert len(np.intersect1d(oob, idx)) == 0
    np.testing.assert_array_equal(np.union1d(oob, idx), np.arange(n))


def test_out_of_bag_small_cases_by_hand():
    np.testing.assert_array_equal(out_of_bag(np.array([3, 0, 3, 3]), 5), [1, 2, 4])
    np.testing.assert_array_equal(out_of_bag(np.array([], dtype=np.int64), 3), [0, 1, 2])
    np.testing.assert_array_equal(out_of_bag([], 3), [0, 1, 2])  # an empty list is fine
    np.testing.assert_array_equal(out_of_bag(np.arange(4)[::-1], 4), [])
    assert out_of_bag(np.array([], dtype=np.int64), 0).shape == (0,)


@pytest.mark.parametrize(
    "indices, n, error, message",
    [
        (np.array([0, 5]), 5, IndexError, "index 5 is out of range for n=5"),
        (np.array([-1, 2]), 5, IndexError, "index -1 is out of range for n=5"),
        (np.array([0.0, 1.0]), 5, TypeError, "indices must be integers, but got dtype float64"),
        (np.array([True, False]), 5, TypeError, "indices must be integers, but got dtype bool"),
        (np.zeros((2, 2), dtype=np.int64), 5, ValueError, r"must be 1-D, but got shape \(2, 2\)"),
        (np.array([0]), -1, ValueError, "n must be non-negative, but got -1"),
        (np.array([0]), 2.0, TypeError, "n must be an integer, but got 2.0"),
    ],
)
def test_out_of_bag_bad_input(indices, n, error, message):
    with pytest.raises(error, match=message):
        out_of_bag(indices, n)


# ---------------------------------------------------------------------------- average and vote
@given(
    predictions=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
        elements=st.floats(-1e3, 1e3, width=32),
    )
)
def test_bagging_average_is_torch_mean_over_models(predictions, device):
    ours = bagging_average(predictions)
    theirs = to_torch(predictions, device).mean(dim=0)
    rtol, atol = tolerance(predictions.dtype, device)
    assert_close(ours, theirs, rtol, atol * 1e3, "bagging_average")  # values up to 1e3
    assert ours.dtype == predictions.dtype


def test_bagging_average_by_hand_and_integer_input():
    predictions = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    np.testing.assert_array_equal(bagging_average(predictions), [3.0, 3.0])
    ints = bagging_average(np.array([[1, 2], [2, 2]]))
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, [1.5, 2.0])
    np.testing.assert_array_equal(bagging_average([[4.0]]), [4.0])  # one model: itself


@pytest.mark.parametrize(
    "predictions, error, message",
    [
        (np.zeros((0, 3)), ValueError, r"at least one model\), but got shape \(0, 3\)"),
        (np.float64(1.0), ValueError, r"but got shape \(\)"),
        (np.array([[True, False]]), TypeError, "must be real numbers, but got dtype bool"),
        (np.array([[1 + 1j]]), TypeError, "must be real numbers, but got dtype complex128"),
        (np.array([["a"]]), TypeError, "must be real numbers"),
    ],
)
def test_bagging_average_bad_input(predictions, error, message):
    with pytest.raises(error, match=message):
        bagging_average(predictions)


def vote_oracle(labels: np.ndarray) -> list[int]:
    """Per column: the most frequent label, the smallest one among equals (plain Python)."""
    winners = []
    for column in labels.reshape(len(labels), -1).T.tolist():
        counts = {c: column.count(c) for c in column}
        top = max(counts.values())
        winners.append(min(c for c, k in counts.items() if k == top))
    return winners


@given(
    models=st.integers(1, 9),
    samples=st.integers(1, 12),
    num_classes=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_bagging_vote_is_the_majority_with_ties_to_the_smallest_class(
    models, samples, num_classes, seed
):
    labels = np.random.default_rng(seed).integers(0, num_classes, (models, samples))
    voted = bagging_vote(labels, num_classes)
    assert voted.dtype == np.int64 and voted.shape == (samples,)
    np.testing.assert_array_equal(voted, vote_oracle(labels))


@given(
    models=st.integers(1, 9),
    shape=st.sampled_from([(7,), (3, 4)]),
    num_classes=st.integers(2, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_bagging_vote_is_torch_mode_where_the_vote_is_clear(
    models, shape, num_classes, seed, device
):
    labels = np.random.default_rng(seed).integers(0, num_classes, (models, *shape))
    counts = (labels[..., None] == np.arange(num_classes)).sum(axis=0)
    clear = (counts == counts.max(axis=-1, keepdims=True)).sum(axis=-1) == 1
    theirs = to_numpy(torch.mode(to_torch(labels, device), dim=0).values)
    ours = bagging_vote(labels, num_classes)
    np.testing.assert_array_equal(ours[clear], theirs[clear])


def test_bagging_vote_ties_by_hand():
    labels = np.array(
        [
            [2, 1, 0, 3],
            [1, 2, 0, 3],
            [1, 2, 2, 1],
            [2, 0, 2, 1],
        ]
    )
    # column 0: 2 vs 1 twice each -> 1; column 1: 1 once, 2 twice, 0 once -> 2;
    # column 2: 0 twice, 2 twice -> 0; column 3: 3 twice, 1 twice -> 1.
    np.testing.assert_array_equal(bagging_vote(labels, 4), [1, 2, 0, 1])
    # three models, three classes, all different: the smallest class
    np.testing.assert_array_equal(bagging_vote(np.array([[2], [0], [1]]), 3), [0])
    # a class nobody voted for never wins, however small
    np.testing.assert_array_equal(bagging_vote(np.array([[3], [3], [2]]), 5), [3])


@pytest.mark.parametrize(
    "labels, num_classes, error, message",
    [
        (np.array([[0, 3]]), 3, ValueError, r"class labels must lie in \[0, num_classes=3\)"),
        (np.array([[-1, 0]]), 3, ValueError, "class labels must lie in"),
        (np.array([[0.0, 1.0]]), 3, TypeError, "integer class labels, but got dtype float64"),
        (np.array([[True]]), 3, TypeError, "integer class labels, but got dtype bool"),
        (np.zeros((0, 4), dtype=np.int64), 3, ValueError, r"but got shape \(0, 4\)"),
        (np.int64(1), 3, ValueError, r"but got shape \(\)"),
        (np.array([[0]]), 0, ValueError, "num_classes must be positive, but got 0"),
        (np.array([[0]]), 2.0, TypeError, "num_classes must be an integer, but got 2.0"),
    ],
)
def test_bagging_vote_bad_input(labels, num_classes, error, message):
    with pytest.raises(error, match=message):
        bagging_vote(labels, num_classes)
