"""Penalties against torch autograd of the same expression; mixup and input noise by their laws.

The torch oracle of each penalty is the expression written out with tensor ops,
``lam * sum(p.abs().sum() for p in params)`` and so on, differentiated by autograd;
minireg's value and hand-written gradient must match it within ``tolerance(dtype,
device)``.  The data contain exact zeros, where the L1 subgradient must be 0 as torch's.

mixup and gaussian_noise have no torch counterpart: they are checked against their
equations (the documented draw order makes lam and the permutation reproducible) and
their laws: lam ~ Beta(alpha, alpha) by its first two moments, the noise by its mean and
variance, each with a two-sided normal-approximation test at level ALPHA = 1e-6 (the
sample sizes make the CLT approximation excellent).
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import minireg
from minireg.regularization import L1, L2, ElasticNet, gaussian_noise, mixup
from reference_tests.conftest import (
    assert_close,
    dtypes,
    random_array,
    shapes,
    to_numpy,
    to_torch,
    tolerance,
)

ALPHA = 1e-6
Z = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)
seeds = st.integers(0, 2**31 - 1)
lams = st.one_of(st.just(0.0), st.floats(1e-4, 10.0))
alphas = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))


def with_zeros(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Normal data with about a quarter of the entries exactly zero."""
    x = np.asarray(
        random_array(rng, shape, dtype, scale=2.0)
    )  # random_array gives a scalar for shape ()
    x[rng.random(shape) < 0.25] = 0
    return x


def torch_penalty(kind: str, params: list[torch.Tensor], lam: float, alpha: float) -> torch.Tensor:
    """The penalty as torch tensor ops (the expression autograd differentiates)."""
    l1 = sum(p.abs().sum() for p in params)
    l2 = sum(p.pow(2).sum() for p in params)
    if kind == "L1":
        return lam * l1
    if kind == "L2":
        return lam * l2
    return lam * (alpha * l1 + (1 - alpha) * l2)


def make_penalty(kind: str, lam: float, alpha: float):
    return {
        "L1": lambda: L1(lam),
        "L2": lambda: L2(lam),
        "ElasticNet": lambda: ElasticNet(lam, alpha),
    }[kind]()


@pytest.mark.parametrize("kind", ["L1", "L2", "ElasticNet"])
@given(
    shape_list=st.lists(shapes, min_size=1, max_size=4),
    dtype=dtypes,
    lam=lams,
    alpha=alphas,
    seed=seeds,
    existing=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_value_and_grad_match_torch_autograd(
    device, kind, shape_list, dtype, lam, alpha, seed, existing
):
    rng = np.random.default_rng(seed)
    arrays = [with_zeros(rng, s, dtype) for s in shape_list]
    ours = [minireg.Parameter(a.copy()) for a in arrays]
    theirs = [torch.nn.Parameter(to_torch(a, device)) for a in arrays]
    # backward must add to what is there (existing has 4 flags: one per parameter, and spare)
    for p, q, has_grad in zip(ours, theirs, existing, strict=False):
        if has_grad:
            g = np.asarray(random_array(rng, p.shape, dtype))
            p.grad, q.grad = g.copy(), to_torch(g, device)

    penalty = make_penalty(kind, lam, alpha)
    expected = torch_penalty(kind, theirs, lam, alpha)
    expected.backward()
    rtol, atol = tolerance(dtype, device)
    value = penalty(ours)
    assert_close(value, expected.detach(), rtol, atol, f"{kind} value")
    assert isinstance(value, np.floating)
    penalty.backward(ours)
    for index, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(p.grad, q.grad, rtol, atol, f"{kind} grad of param {index}")


@given(shape=shapes.filter(lambda s: s != (0,)), dtype=dtypes, lam=lams, seed=seeds)
def test_elastic_net_limits_are_l1_and_l2(shape, dtype, lam, seed):
    params = [minireg.Parameter(with_zeros(np.random.default_rng(seed), shape, dtype))]
    assert ElasticNet(lam, 1.0)(params) == L1(lam)(params)
    assert ElasticNet(lam, 0.0)(params) == L2(lam)(params)
    np.testing.assert_array_equal(
        ElasticNet(lam, 1.0).grad(params[0].data), L1(lam).grad(params[0].data)
    )
    np.testing.assert_array_equal(
        ElasticNet(lam, 0.0).grad(params[0].data), L2(lam).grad(params[0].data)
    )


@given(dtype=dtypes, lam=lams, alpha=alphas, seed=seeds)
def test_elastic_net_is_the_alpha_mix_of_l1_and_l2_with_the_same_lam(dtype, lam, alpha, seed):
    # The documented reading: lam scales both parts, alpha splits them.
    params = [minireg.Parameter(with_zeros(np.random.default_rng(seed), (7, 3), dtype))]
    rtol, atol = tolerance(dtype, "cpu")
    mixed = alpha * L1(lam)(params) + (1 - alpha) * L2(lam)(params)
    assert_close(ElasticNet(lam, alpha)(params), mixed, rtol, atol, "value", check_dtype=False)


def test_l1_subgradient_is_zero_at_zero_and_l2_has_no_half():
    p = minireg.Parameter(np.array([-2.0, 0.0, 3.0]))
    L1(0.5).backward([p])
    np.testing.assert_array_equal(p.grad, [-0.5, 0.0, 0.5])
    assert L2(0.5)([p]) == 0.5 * (4.0 + 9.0)
    p.grad = None
    L2(0.5).backward([p])
    np.testing.assert_array_equal(p.grad, [-2.0, 0.0, 3.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept_and_empty_lists_give_zero(dtype):
    p = minireg.Parameter(np.ones((2, 2), dtype))
    for penalty in (L1(0.1), L2(0.1), ElasticNet(0.1, 0.3)):
        assert penalty([p]).dtype == dtype
        p.grad = None
        penalty.backward([p])
        assert p.grad.dtype == dtype
        assert penalty([]) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l2_penalty_with_sgd_equals_torch_weight_decay_of_twice_lam(device, dtype):
    # sum-of-squares without a half: gradient 2*lam*p, i.e. SGD's weight_decay = 2*lam.
    rng = np.random.default_rng(4)
    lam, lr = 0.03, 0.1
    start = random_array(rng, (5, 4), dtype)
    ours = minireg.Parameter(start.copy())
    theirs = torch.nn.Parameter(to_torch(start, device))
    ours_opt = minireg.optim.SGD([ours], lr=lr, momentum=0.9)
    theirs_opt = torch.optim.SGD([theirs], lr=lr, momentum=0.9, weight_decay=2 * lam)
    for _ in range(20):
        g = random_array(rng, start.shape, dtype)
        ours.grad = g.copy()
        L2(lam).backward([ours])
        theirs.grad = to_torch(g, device)
        ours_opt.step()
        theirs_opt.step()
    assert_close(ours.data, theirs.detach(), *tolerance(dtype, device), what="after 20 steps")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L1(-0.1), "Invalid regularization strength lam: -0.1 (must be >= 0)"),
        (lambda: L2(float("nan")), "Invalid regularization strength lam: nan (must be >= 0)"),
        (lambda: ElasticNet(-1.0, 0.5), "Invalid regularization strength lam: -1.0 (must be >= 0)"),
        (lambda: ElasticNet(1.0, 1.5), "Invalid elastic net mixing alpha: 1.5 (must be in [0, 1])"),
        (
            lambda: ElasticNet(1.0, -0.1),
            "Invalid elastic net mixing alpha: -0.1 (must be in [0, 1])",
        ),
    ],
)
def test_penalty_validation(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


# ---------------------------------------------------------------------------- mixup
@given(
    dtype=dtypes,
    alpha=st.floats(0.1, 4.0),
    batch=st.integers(1, 9),
    classes=st.integers(2, 5),
    seed=seeds,
)
def test_mixup_one_hot_targets_follow_the_equation(device, dtype, alpha, batch, classes, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (batch, 3), dtype)
    y = rng.integers(0, classes, batch)
    mixed_x, mixed_y = mixup(
        x, y, alpha, generator=np.random.default_rng(seed), num_classes=classes
    )
    replay = np.random.default_rng(seed)  # documented draw order: lam, then the permutation
    lam = replay.beta(alpha, alpha)
    perm = replay.permutation(batch)
    one_hot = to_numpy(TF.one_hot(to_torch(y, device), classes)).astype(dtype)
    np.testing.assert_array_equal(mixed_x, lam * x + (1 - lam) * x[perm])
    np.testing.assert_array_equal(mixed_y, lam * one_hot + (1 - lam) * one_hot[perm])
    assert mixed_x.dtype == dtype and mixed_y.dtype == dtype
    rtol, atol = tolerance(dtype, "cpu")
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=rtol, atol=atol)


@given(dtype=dtypes, alpha=st.floats(0.1, 4.0), batch=st.integers(1, 9), seed=seeds)
def test_mixup_label_pairs_give_the_same_cross_entropy_as_mixed_one_hot(
    device, dtype, alpha, batch, seed
):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (batch, 4), dtype)
    y = rng.integers(0, 4, batch)
    _, (y_a, y_b, lam) = mixup(x, y, alpha, generator=np.random.default_rng(seed))
    _, soft = mixup(x, y, alpha, generator=np.random.default_rng(seed), num_classes=4)
    assert isinstance(lam, float) and 0.0 <= lam <= 1.0
    np.testing.assert_array_equal(y_a, y)
    logits = to_torch(random_array(rng, (batch, 4), dtype), device)
    pair_loss = lam * TF.cross_entropy(logits, to_torch(y_a, device)) + (
        1 - lam
    ) * TF.cross_entropy(logits, to_torch(y_b, device))
    soft_loss = TF.cross_entropy(logits, to_torch(soft, device))
    assert_close(to_numpy(pair_loss), soft_loss, *tolerance(dtype, device), what="cross-entropy")


def test_mixup_soft_targets_are_mixed_like_the_inputs():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 2)), rng.dirichlet(np.ones(3), size=6)
    mixed_x, mixed_y = mixup(x, y, 0.4, generator=np.random.default_rng(9))
    replay = np.random.default_rng(9)
    lam, perm = replay.beta(0.4, 0.4), replay.permutation(6)
    np.testing.assert_array_equal(mixed_y, lam * y + (1 - lam) * y[perm])
    np.testing.assert_array_equal(mixed_x, lam * x + (1 - lam) * x[perm])


@given(alpha=st.floats(0.1, 5.0), seed=seeds)
def test_mixup_lam_follows_beta_alpha_alpha(alpha, seed):
    # Beta(a, a): mean 1/2, variance 1/(4(2a+1)).  Both tested by the CLT on 4000 draws.
    generator = np.random.default_rng(seed)
    x, y = np.zeros((2, 1)), np.zeros(2, dtype=np.int64)
    lams = np.array([mixup(x, y, alpha, generator=generator)[1][2] for _ in range(4000)])
    n = len(lams)
    assert abs(lams.mean() - 0.5) <= Z * lams.std(ddof=1) / np.sqrt(n)
    squares = (lams - 0.5) ** 2
    assert abs(squares.mean() - 1 / (4 * (2 * alpha + 1))) <= Z * squares.std(ddof=1) / np.sqrt(n)


def test_mixup_alpha_zero_does_not_mix_and_seed_reproduces():
    x = np.arange(12.0).reshape(4, 3)
    mixed_x, (_, _, lam) = mixup(x, np.arange(4), 0.0)
    assert lam == 1.0
    np.testing.assert_array_equal(mixed_x, x)
    minireg.manual_seed(3)
    first = mixup(x, np.arange(4), 1.0, num_classes=4)
    minireg.manual_seed(3)
    second = mixup(x, np.arange(4), 1.0, num_classes=4)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(x=np.ones((3, 2)), y=np.arange(3), alpha=-1.0),
            "mixup alpha must be non-negative, but got -1.0",
        ),
        (dict(x=np.ones((3, 2)), y=np.arange(4), alpha=1.0), "same batch size"),
        (
            dict(x=np.ones((3, 2)), y=np.array([0, 1, 3]), alpha=1.0, num_classes=3),
            r"\[0, num_classes=3\)",
        ),
        (
            dict(x=np.ones((3, 2)), y=np.array([0, -1, 2]), alpha=1.0, num_classes=3),
            r"\[0, num_classes=3\)",
        ),
        (
            dict(x=np.ones((3, 2)), y=np.ones((3, 2)), alpha=1.0, num_classes=2),
            "only to integer class labels",
        ),
    ],
)
def test_mixup_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mixup(**kwargs)


# ---------------------------------------------------------------------------- gaussian noise
@given(dtype=dtypes, std=st.floats(1e-3, 10.0), seed=seeds)
def test_gaussian_noise_has_mean_zero_and_the_given_std(dtype, std, seed):
    n = 20_000
    x = random_array(np.random.default_rng(seed), (n,), dtype)
    before = x.copy()
    out = gaussian_noise(x, std, generator=np.random.default_rng(seed + 1))
    np.testing.assert_array_equal(x, before)  # the input is left alone
    assert out.dtype == dtype and out.shape == x.shape
    noise = out.astype(np.float64) - x
    # mean: N(0, std^2/n); sample variance / std^2: approximately N(1, 2/(n-1)).
    assert abs(noise.mean()) <= Z * std / np.sqrt(n)
    assert abs(noise.var(ddof=1) / std**2 - 1) <= Z * np.sqrt(2 / (n - 1)) + 1e-6


def test_gaussian_noise_std_zero_is_an_identity_copy_and_seeds_reproduce():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = gaussian_noise(x, 0.0)
    assert out is not x and out.dtype == x.dtype
    np.testing.assert_array_equal(out, x)
    minireg.manual_seed(5)
    first = gaussian_noise(x, 0.3)
    minireg.manual_seed(5)
    np.testing.assert_array_equal(gaussian_noise(x, 0.3), first)
    assert not np.array_equal(first, x)


@pytest.mark.parametrize("std", [-0.1, float("nan")])
def test_gaussian_noise_rejects_negative_std(std):
    with pytest.raises(ValueError, match="gaussian_noise std must be non-negative"):
        gaussian_noise(np.ones(3), std)
