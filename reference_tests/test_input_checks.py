"""Regression tests for issue 11's findings: bad input never corrupts state, and the
hand-written backward cannot silently give another forward's gradients.

Each test reproduces one finding (they all failed before the fix: raw NumPy errors
after running statistics had moved, integer-truncated gradients, half-written ``.grad``,
the validation batch's gradients) and checks the outcome against torch where torch has
the counterpart: the same exception type, torch's words, and nothing changed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import minireg
from minireg import nn
from reference_tests.conftest import (
    assert_close,
    assert_same_error,
    set_grads,
    tolerance,
    twin_parameters,
)
from reference_tests.optim_harness import compare_optimizer_state


def snapshot(module: nn.Module) -> dict[str, bytes]:
    """Bytes (and dtype, shape) of every parameter, gradient and buffer of ``module``."""
    state: dict[str, bytes] = {}
    for name, value in module.state_dict().items():
        state[name] = value.dtype.str.encode() + str(value.shape).encode() + value.tobytes()
    for name, param in module.named_parameters():
        state[name + ".grad"] = b"none" if param.grad is None else param.grad.tobytes()
    return state


# ---------------------------------------------------------------------------- norms
@pytest.mark.parametrize(
    ("make", "shape", "dtype"),
    [
        (lambda lib: lib.nn.BatchNorm1d(3), (2, 3), np.int64),
        (lambda lib: lib.nn.BatchNorm1d(3), (4, 3), np.bool_),
        (lambda lib: lib.nn.BatchNorm2d(3), (2, 3, 2, 2), np.uint8),
        (lambda lib: lib.nn.BatchNorm1d(3), (2, 3), np.complex128),
        (lambda lib: lib.nn.BatchNorm1d(3).eval(), (2, 3), np.int32),
        (lambda lib: lib.nn.InstanceNorm1d(3, track_running_stats=True), (2, 3, 4), np.int64),
        (lambda lib: lib.nn.LayerNorm(3), (2, 3), np.int64),
        (lambda lib: lib.nn.LayerNorm(3, elementwise_affine=False), (2, 3), np.complex64),
        (lambda lib: lib.nn.GroupNorm(1, 3), (2, 3, 2), np.int16),
        (lambda lib: lib.nn.GroupNorm(3, 3, affine=False), (2, 3, 2), np.bool_),
    ],
)
def test_norms_refuse_non_floating_input_like_torch_and_change_nothing(make, shape, dtype):
    """Found: BatchNorm1d(3)(arange(6).reshape(2, 3)) raised a raw UFuncTypeError after
    running_mean had become [0.1 0.2 0.3]; uint8 and complex did the same or passed."""
    x = (np.arange(np.prod(shape)) % 3).reshape(shape).astype(dtype)
    ours, theirs = make(minireg), make(torch)
    before = snapshot(ours)
    assert_same_error(lambda: theirs(torch.from_numpy(x)), lambda: ours(x))
    assert snapshot(ours) == before


MIXED = [
    (np.float32, np.float64),
    (np.float64, np.float32),
    (np.float16, np.float64),
    (np.float32, np.float16),
]  # (input dtype, parameter dtype); torch refuses each


@pytest.mark.parametrize(("input_dtype", "param_dtype"), MIXED)
@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda lib, dtype: lib.nn.BatchNorm1d(3, dtype=dtype), (4, 3)),
        (lambda lib, dtype: lib.nn.BatchNorm1d(3, dtype=dtype).eval(), (4, 3)),
        (lambda lib, dtype: lib.nn.BatchNorm2d(3, affine=False, dtype=dtype), (2, 3, 2, 2)),
        (lambda lib, dtype: lib.nn.InstanceNorm1d(3, affine=True, dtype=dtype), (2, 3, 4)),
        (lambda lib, dtype: lib.nn.LayerNorm(3, dtype=dtype), (2, 3)),
        (lambda lib, dtype: lib.nn.GroupNorm(1, 3, dtype=dtype), (2, 3, 2)),
    ],
)
def test_norms_refuse_parameters_of_another_dtype_like_torch(make, shape, input_dtype, param_dtype):
    """Modules default to float64 parameters; fed float32 data (or any other mix torch's
    CPU kernels refuse) they raise torch's "mixed dtype" error, before any state moves."""
    x = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(input_dtype)
    torch_dtype = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64}
    ours, theirs = make(minireg, param_dtype), make(torch, torch_dtype[param_dtype])
    before = snapshot(ours)
    assert_same_error(lambda: theirs(torch.from_numpy(x)), lambda: ours(x))
    assert snapshot(ours) == before


def test_functional_norms_refuse_parameters_of_another_dtype_like_torch():
    x = np.linspace(-1, 1, 12).reshape(4, 3).astype(np.float32)
    w64, stats64 = np.ones(3), np.zeros(3)
    cases = [
        ("batch_norm", (x, stats64, stats64 + 1, None, None, True)),
        ("batch_norm", (x, None, None, w64, None, True)),
        ("layer_norm", (x, (3,), w64, None)),
        ("group_norm", (x.reshape(4, 3, 1), 3, None, w64)),
    ]
    for name, args in cases:
        theirs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        assert_same_error(
            lambda name=name, theirs=theirs: getattr(torch.nn.functional, name)(*theirs),
            lambda name=name, args=args: getattr(minireg.nn.functional, name)(*args),
        )


def test_batchnorm_backward_with_a_wrong_gradient_writes_no_grad():
    """Found: BatchNorm1d.backward(ones((4, 1))) after a (4, 3) forward blamed a parameter
    shape, after writing weight.grad but not bias.grad."""
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3, dtype=torch.float64)
    x = np.random.default_rng(0).standard_normal((4, 3))
    ours_out, theirs_out = ours(x), theirs(torch.from_numpy(x))
    assert ours_out.shape == theirs_out.shape
    error, _ = assert_same_error(
        lambda: theirs_out.backward(torch.ones(4, 1, dtype=torch.float64)),
        lambda: ours.backward(np.ones((4, 1))),
    )
    assert "(4, 1)" in str(_) and "(4, 3)" in str(_)  # names both shapes
    assert ours.weight.grad is None and ours.bias.grad is None


# ---------------------------------------------------------------------------- losses
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
def test_regression_losses_refuse_integer_arrays_like_torch(name):
    """Found: MSELoss()/L1Loss() on integer arrays returned a float loss and an integer-
    truncated gradient ([0 0 0] instead of [-0.667 0 0])."""
    x, y = np.array([0, 1, 2]), np.array([1, 1, 2])
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    assert_same_error(lambda: theirs(torch.from_numpy(x), torch.from_numpy(y)), lambda: ours(x, y))
    with pytest.raises(RuntimeError, match="called before forward"):
        ours.backward()  # the rejected forward recorded nothing


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss"])
def test_regression_losses_promote_a_float_target_like_torch(name):
    """An integer input with a float target: torch promotes to the float dtype (not NumPy's
    float64 for float32 and int64), and an integer input carries no gradient."""
    x, y = np.array([0, 1, 2]), np.array([1.0, 1.0, 2.5], np.float32)
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    loss, expected = ours(x, y), theirs(torch.from_numpy(x), torch.from_numpy(y))
    assert_close(loss, expected, 1e-6, 1e-7)
    assert_same_error(lambda: expected.backward(), lambda: ours.backward())


def test_regression_loss_gradient_of_a_float_input_with_an_integer_target_is_not_truncated():
    x = np.array([0.0, 1.0, 2.0], np.float32)
    y = np.array([1, 1, 2])
    tx = torch.from_numpy(x).requires_grad_()
    for name in ("MSELoss", "L1Loss"):
        ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
        ours(x, y)
        theirs(tx, torch.from_numpy(y)).backward()
        assert_close(ours.backward(), tx.grad, 1e-6, 1e-7, name)
        tx.grad = None


@pytest.mark.parametrize(
    ("name", "target"),
    [("CrossEntropyLoss", np.array([0, 2])), ("BCEWithLogitsLoss", np.ones((2, 3)))],
)
def test_classification_losses_refuse_integer_logits_like_torch(name, target):
    """Found: CrossEntropyLoss with integer logits failed with OverflowError: cannot
    convert float infinity to integer; BCEWithLogits with a confusing cast message."""
    logits = np.arange(6).reshape(2, 3)
    ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
    assert_same_error(
        lambda: theirs(torch.from_numpy(logits), torch.from_numpy(target)),
        lambda: ours(logits, target),
    )
    both_integer = np.ones((2, 3), np.int64)
    assert_same_error(
        lambda: torch.nn.BCEWithLogitsLoss()(
            torch.from_numpy(both_integer), torch.from_numpy(both_integer)
        ),
        lambda: nn.BCEWithLogitsLoss()(both_integer, both_integer),
    )


# ---------------------------------------------------------------------------- Parameter
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_parameter_of_integers_is_refused_like_torch(dtype):
    """Found: minireg.Parameter(np.arange(3)) was accepted (silently made float64)."""
    data = np.arange(3).astype(dtype)
    assert_same_error(
        lambda: torch.nn.Parameter(torch.from_numpy(data)), lambda: minireg.Parameter(data)
    )
    kept = minireg.Parameter(data, requires_grad=False)  # torch allows it without gradients
    assert (
        kept.dtype == torch.nn.Parameter(torch.from_numpy(data), requires_grad=False).numpy().dtype
    )


# ---------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize(
    ("minireg_cls", "torch_cls", "kwargs"),
    [
        (minireg.optim.Adam, torch.optim.Adam, {"lr": 1e-2, "amsgrad": True}),
        (minireg.optim.SGD, torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}),
        (minireg.optim.NAdam, torch.optim.NAdam, {"lr": 1e-2}),
        (minireg.optim.RMSprop, torch.optim.RMSprop, {"lr": 1e-2, "centered": True}),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_loads_a_torch_state_dict_with_tensors_and_continues_like_torch(
    minireg_cls, torch_cls, kwargs, dtype
):
    """Found: load_state_dict(torch_opt.state_dict()) with its tensors was accepted, and
    step() then died inside lerp_ with the step counter left a torch tensor."""
    rng = np.random.default_rng(3)
    shapes = [(3, 2), (4,), ()]
    ours_params, theirs_params = twin_parameters(
        [rng.standard_normal(s).astype(dtype) for s in shapes], "cpu"
    )
    theirs = torch_cls(theirs_params, **kwargs)
    for _ in range(3):
        set_grads(
            ours_params,
            theirs_params,
            [rng.standard_normal(s).astype(dtype) for s in shapes],
            "cpu",
        )
        theirs.step()
    for p, q in zip(ours_params, theirs_params, strict=True):
        p.data[...] = q.detach().numpy()
    ours = minireg_cls(ours_params, **kwargs)
    ours.load_state_dict(theirs.state_dict())  # as it is: tensors inside
    # torch's side loads it too, so both apply torch's load-time casts (NAdam's mu_product)
    theirs_params = [torch.nn.Parameter(q.detach().clone()) for q in theirs_params]
    loaded = torch_cls(theirs_params, **kwargs)
    loaded.load_state_dict(theirs.state_dict())
    theirs = loaded
    for state in ours.state.values():
        assert all(
            isinstance(v, np.ndarray) for v in state.values() if not isinstance(v, (int, float))
        )
    rtol, atol = tolerance(dtype, "cpu")
    for step in range(5):
        set_grads(
            ours_params,
            theirs_params,
            [rng.standard_normal(s).astype(dtype) for s in shapes],
            "cpu",
        )
        ours.step()
        theirs.step()
        compare_optimizer_state(
            ours, theirs, ours_params, theirs_params, rtol, atol, f"step {step}"
        )


@pytest.mark.parametrize(
    "name", ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "NAdam", "RAdam"]
)
@pytest.mark.parametrize("shape", [(2,), (3, 1), (0,)])
def test_an_lr_array_of_more_than_one_element_is_refused_like_torch(name, shape):
    """Found: SGD(params, lr=np.array([1e-3, 1e-3])) raised NumPy's "truth value of an array
    ... is ambiguous"; torch raises ValueError("Tensor lr must be 1-element")."""
    lr = np.full(shape, 1e-3)
    assert_same_error(
        lambda: getattr(torch.optim, name)(
            [torch.nn.Parameter(torch.ones(2))], lr=torch.from_numpy(lr)
        ),
        lambda: getattr(minireg.optim, name)([minireg.Parameter(np.ones(2))], lr=lr),
    )


@pytest.mark.parametrize(
    "name", ["SGD", "Adam", "Adagrad", "Adadelta", "RMSprop", "NAdam", "RAdam"]
)
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_a_one_element_lr_array_steps_like_torchs_tensor_lr(name, shape):
    lr = np.full(shape, 0.1)
    ours_params, theirs_params = twin_parameters([np.linspace(-1, 1, 5)], "cpu")
    ours = getattr(minireg.optim, name)(ours_params, lr=lr)
    theirs = getattr(torch.optim, name)(theirs_params, lr=torch.from_numpy(lr))
    for step in range(3):
        set_grads(ours_params, theirs_params, [np.linspace(0.5, -1.5, 5) * (step + 1)], "cpu")
        ours.step()
        theirs.step()
    assert_close(ours_params[0].data, theirs_params[0], 1e-10, 1e-12)


# ---------------------------------------------------------------------------- backward
def test_linear_backward_with_a_wrong_gradient_names_both_shapes_like_torch():
    """Found: Linear(3, 4).backward given a (5, 3) gradient instead of (5, 4) gave a raw
    matmul error."""
    ours = nn.Linear(3, 4)
    theirs = torch.nn.Linear(3, 4, dtype=torch.float64)
    x = np.ones((5, 3))
    ours(x)
    out = theirs(torch.from_numpy(x))
    _, error = assert_same_error(
        lambda: out.backward(torch.ones(5, 3, dtype=torch.float64)),
        lambda: ours.backward(np.ones((5, 3))),
    )
    assert "(5, 3)" in str(error) and "(5, 4)" in str(error)
    assert ours.weight.grad is None and ours.bias.grad is None


@pytest.mark.parametrize("grad_shape", [(3,), (1, 3), (4, 1), ()])
def test_relu_backward_refuses_a_gradient_that_only_broadcasts(grad_shape):
    """Found: ReLU.backward(np.ones(3)) after a (4, 3) forward silently broadcast."""
    ours, x = nn.ReLU(), np.ones((4, 3))
    ours(x)
    tx = torch.from_numpy(x).requires_grad_()
    out = torch.nn.ReLU()(tx)
    assert_same_error(
        lambda: out.backward(torch.ones(grad_shape, dtype=torch.float64)),
        lambda: ours.backward(np.ones(grad_shape)),
    )


def _mlp() -> nn.Sequential:
    minireg.manual_seed(0)
    dropout = nn.Dropout(0.3, generator=np.random.default_rng(7))  # a copy draws the same masks
    return nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), dropout, nn.Linear(6, 2))


def test_a_validation_forward_then_backward_raises_instead_of_giving_its_gradients():
    """Found: training batch (8), validation batch (5) in eval mode, back to train mode,
    then model.backward(loss_fn.backward()): no error, the validation batch's gradients."""
    rng = np.random.default_rng(1)
    model, loss_fn = _mlp(), nn.MSELoss()
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    loss_fn(model(x), y)
    model.eval()
    nn.MSELoss()(model(rng.standard_normal((5, 3))), rng.standard_normal((5, 2)))
    model.train()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="eval mode.*no_grad"):
        model.backward(loss_fn.backward())
    assert snapshot(model) == before


def test_the_same_validation_under_no_grad_keeps_the_training_forward():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    xv, yv = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    model, loss_fn = _mlp(), nn.MSELoss()
    reference, reference_loss = copy.deepcopy(model), nn.MSELoss()

    loss_fn(model(x), y)
    model.eval()
    with minireg.no_grad():
        loss_fn(model(xv), yv)
    model.train()
    grad_input = model.backward(loss_fn.backward())

    reference_loss(reference(x), y)  # the same training step without any validation
    expected = reference.backward(reference_loss.backward())
    np.testing.assert_array_equal(grad_input, expected)
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
