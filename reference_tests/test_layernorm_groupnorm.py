"""LayerNorm, GroupNorm and their functional forms against torch: outputs and gradients.

Tolerances and data follow test_batchnorm.py's module docstring: ``tolerance()`` with the
absolute part scaled by the magnitude torch's rounding acts on (``|x| * invstd * |w|``
and friends), because torch evaluates ``x*(w*invstd) + (b - mean*w*invstd)`` where
minireg evaluates ``(x - mean)*invstd*w + b``.  This matters most for groups of a single
value (``LayerNorm(1)``, ``GroupNorm`` with one value per group): the exact output is
``b``, and torch's is ``b`` plus a rounding of ``x/sqrt(eps)``, up to ~300 |x| ULPs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as F
from reference_tests.conftest import assert_close, assert_same_error, dtypes, to_torch
from reference_tests.norm_harness import (
    Scales,
    assert_functional_error_like_torch,
    assert_module_error_like_torch,
    compare_step,
    copy_affine,
    make_twins,
    max_invstd,
    scaled_tolerance,
    well_conditioned,
)

small = st.integers(1, 4)


# ============================================================================ layer norm
@given(
    leading=st.lists(small, max_size=2).map(tuple),
    normalized=st.lists(small, min_size=1, max_size=3).map(tuple),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    elementwise_affine=st.booleans(),
    bias=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_layer_norm_matches_torch(
    device, leading, normalized, eps, elementwise_affine, bias, dtype, seed
):
    rng = np.random.default_rng(seed)
    ours, theirs = make_twins(
        "LayerNorm",
        (normalized,),
        dtype,
        device,
        eps=eps,
        elementwise_affine=elementwise_affine,
        bias=bias,
    )
    assert ours.normalized_shape == theirs.normalized_shape
    copy_affine(ours, theirs, rng, device)
    shape = leading + normalized
    axes = tuple(range(len(leading), len(shape)))
    grad_scales: dict[str, float] = {}
    for step in range(3):  # parameter gradients accumulate across the steps
        x = well_conditioned(
            rng, shape, dtype, leading + (1,) * len(normalized)
        )  # one distribution per sample
        dy = rng.standard_normal(shape).astype(dtype)
        compare_step(
            ours, theirs, x, dy, device, max_invstd(x, axes, eps), grad_scales, f"step {step}"
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_functional_without_affine_and_empty_batch(device, dtype):
    rng = np.random.default_rng(5)
    for shape in [(3, 4, 5), (0, 5)]:
        x = well_conditioned(rng, shape, dtype, (1,) * len(shape))
        dy = rng.standard_normal(shape).astype(dtype)
        x_t = to_torch(x, device, requires_grad=True)
        torch.nn.functional.layer_norm(x_t, shape[-1:]).backward(to_torch(dy, device))
        y = F.layer_norm(x, shape[-1:])
        grad_input, _, _ = F.layer_norm_backward(dy, x, shape[-1:])
        scales = Scales(x, dy, max_invstd(x, (len(shape) - 1,), 1e-5), None, None)
        expected = torch.nn.functional.layer_norm(to_torch(x, device), shape[-1:])
        assert_close(
            y, expected, *scaled_tolerance(dtype, device, scales.output), f"{shape}: output"
        )
        assert_close(
            grad_input,
            x_t.grad,
            *scaled_tolerance(dtype, device, scales.grad_input),
            f"{shape}: grad",
        )


@pytest.mark.parametrize(
    "normalized_shape, input_shape, weight_shape, bias_shape",
    [
        ((4,), (2, 3), None, None),  # trailing shape differs
        ((3, 4), (2, 4, 4), None, None),
        ((3, 4), (4,), None, None),  # fewer dimensions than normalized_shape
        ((), (2, 3), None, None),  # empty normalized_shape
        ((4,), (2, 4), (5,), (6,)),  # weight checked before bias
        ((4,), (2, 3), None, (6,)),  # bias checked before the input
        ((4,), (2, 4), (2, 2), None),  # same size, other shape
    ],
)
def test_layer_norm_errors_match_torch(
    device, normalized_shape, input_shape, weight_shape, bias_shape
):
    def call(module: Any, convert: Any) -> Any:
        w = None if weight_shape is None else convert(np.ones(weight_shape))
        b = None if bias_shape is None else convert(np.ones(bias_shape))
        return module.layer_norm(convert(np.ones(input_shape)), normalized_shape, w, b)

    assert_functional_error_like_torch(call, device)


@pytest.mark.parametrize("normalized_shape, input_shape", [((4,), (2, 3)), ((), (2, 3))])
def test_layer_norm_module_errors_match_torch(device, normalized_shape, input_shape):
    ours, theirs = make_twins("LayerNorm", (normalized_shape,), np.float64, device)
    assert_module_error_like_torch(ours, theirs, np.ones(input_shape), device)


# ============================================================================ group norm
@st.composite
def group_norm_configs(draw: st.DrawFn) -> dict[str, Any]:
    groups, per_group = draw(small), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(small, max_size=2)))
    batch = draw(small)
    if batch * per_group * math.prod(spatial) == 1:  # torch refuses one value per group and ...
        batch = 2  # ... a batch of one (its check counts N*C/G * prod(spatial))
    return dict(groups=groups, shape=(batch, groups * per_group, *spatial))


@given(
    config=group_norm_configs(),
    eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    affine=st.booleans(),
    bias=st.booleans(),
    dtype=dtypes,
    seed=st.integers(0, 2**31),
)
def test_group_norm_matches_torch(device, config, eps, affine, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    groups, shape = config["groups"], config["shape"]
    ours, theirs = make_twins(
        "GroupNorm", (groups, shape[1]), dtype, device, eps=eps, affine=affine, bias=bias
    )
    copy_affine(ours, theirs, rng, device)
    grad_scales: dict[str, float] = {}
    for step in range(3):  # parameter gradients accumulate across the steps
        x = well_conditioned(
            rng, shape, dtype, shape[:2] + (1,) * (len(shape) - 2)
        )  # one distribution per channel
        dy = rng.standard_normal(shape).astype(dtype)
        invstd = max_invstd(x.reshape(shape[0], groups, -1), (2,), eps)
        compare_step(ours, theirs, x, dy, device, invstd, grad_scales, f"step {step}")


def test_group_norm_equals_instance_and_layer_norm_at_the_extremes():
    # G = C is instance norm; G = 1 is layer norm over (C, *spatial) (no affine in either).
    x = well_conditioned(np.random.default_rng(2), (3, 4, 5), np.float64, (1, 4, 1))
    np.testing.assert_allclose(F.group_norm(x, 4), F.instance_norm(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.group_norm(x, 1), F.layer_norm(x, (4, 5)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_groups, num_channels", [(3, 4), (0, 4)])
def test_group_norm_constructor_errors_match_torch(device, num_groups, num_channels):
    assert_same_error(
        lambda: torch.nn.GroupNorm(num_groups, num_channels, device=device),
        lambda: minireg.nn.GroupNorm(num_groups, num_channels),
    )


@pytest.mark.parametrize(
    "input_shape, num_groups, weight_shape, bias_shape",
    [
        ((4,), 2, None, None),  # fewer than 2 dimensions
        ((1, 2), 2, None, None),  # one value per group and a batch of one
        ((1, 4), 8, None, None),
        ((2, 4), 0, None, None),  # ZeroDivisionError, from torch's Python
        ((2, 4, 3), -1, None, None),  # ATen: groups must be positive ...
        ((2, 5), 2, None, None),  # ... then divide the channels ...
        ((2, 6), 2, (4,), (5,)),  # ... then the weight's size ...
        ((2, 6, 1), 2, (6, 1), None),  # ... and rank
        ((2, 6), 2, (6,), (5,)),  # the bias: torch's message shows the weight's shape
        ((2, 6), 2, None, (5,)),  # ([0] when there is no weight)
    ],
)
def test_group_norm_errors_match_torch(device, input_shape, num_groups, weight_shape, bias_shape):
    def call(module: Any, convert: Any) -> Any:
        w = None if weight_shape is None else convert(np.ones(weight_shape))
        b = None if bias_shape is None else convert(np.ones(bias_shape))
        return module.group_norm(convert(np.ones(input_shape)), num_groups, w, b)

    assert_functional_error_like_torch(call, device)


@pytest.mark.parametrize(
    "args, kwargs, input_shape",
    [
        ((2, 4), {}, (2, 6)),
        ((2, 4), {"affine": False}, (2, 5)),
        ((2, 2), {}, (1, 2)),
        ((2, 4), {}, (4,)),
    ],
)
def test_group_norm_module_errors_match_torch(device, args, kwargs, input_shape):
    ours, theirs = make_twins("GroupNorm", args, np.float64, device, **kwargs)
    assert_module_error_like_torch(ours, theirs, np.ones(input_shape), device)


# ============================================================================ both
@pytest.mark.parametrize(
    "name, args, kwargs",
    [
        ("LayerNorm", (4,), {}),
        ("LayerNorm", ((2, 3),), dict(eps=1e-3, bias=False)),
        ("LayerNorm", ([3],), dict(elementwise_affine=False)),
        ("GroupNorm", (2, 4), {}),
        ("GroupNorm", (1, 3), dict(affine=False)),
        ("GroupNorm", (3, 6), dict(bias=False, eps=0.1)),
    ],
)
def test_repr_parameters_and_state_dict_match_torch(device, name, args, kwargs):
    ours, theirs = make_twins(name, args, np.float32, device, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.cpu().numpy(), err_msg=key)
        assert ours.state_dict()[key].dtype == np.float32


@pytest.mark.parametrize("module", [minireg.nn.LayerNorm(3), minireg.nn.GroupNorm(1, 3)])
def test_backward_before_forward_raises(module):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        module.backward(np.ones((2, 3)))
