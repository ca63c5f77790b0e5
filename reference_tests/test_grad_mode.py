"""Grad mode (``minireg.no_grad`` and friends) and the rules of the hand-written backward.

torch builds a graph per forward, so ``loss.backward()`` always differentiates the
forward that made ``loss``.  minireg's modules record their last forward instead; these
tests pin what that record guarantees: grad mode behaves as torch's (context managers,
decorators, nesting, threads), a forward under ``no_grad`` records nothing, and a
backward that cannot belong to the recorded forward raises before writing anything,
while the legal cases (frozen-BN fine-tuning in eval mode) give torch's gradients.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import minireg
from minireg import nn
from reference_tests.conftest import assert_close, assert_same_error

# ---------------------------------------------------------------------------- grad mode


def _both_modes() -> tuple[bool, bool]:
    return minireg.is_grad_enabled(), torch.is_grad_enabled()


@pytest.mark.parametrize("name", ["no_grad", "enable_grad"])
def test_context_managers_and_decorators_switch_like_torchs(name):
    ours_cm, theirs_cm = getattr(minireg, name), getattr(torch, name)
    seen = []
    with minireg.set_grad_enabled(name == "no_grad"), torch.set_grad_enabled(name == "no_grad"):
        assert _both_modes() == (name == "no_grad",) * 2
        with ours_cm(), theirs_cm():
            seen.append(_both_modes())

        @ours_cm
        def bare() -> bool:  # the decorator without parentheses, as torch allows
            return minireg.is_grad_enabled()

        @ours_cm()
        def called() -> bool:
            return minireg.is_grad_enabled()

        assert bare() == called() == seen[0][1] == (name == "enable_grad")
        assert bare.__name__ == "bare"
        assert _both_modes() == (name == "no_grad",) * 2  # restored
    assert _both_modes() == (True, True)


def test_set_grad_enabled_as_a_call_a_context_and_a_decorator_like_torch():
    minireg.set_grad_enabled(False)
    torch.set_grad_enabled(False)
    assert _both_modes() == (False, False)
    minireg.set_grad_enabled(True)
    torch.set_grad_enabled(True)

    @minireg.set_grad_enabled(False)
    def inside() -> bool:
        return minireg.is_grad_enabled()

    assert minireg.is_grad_enabled()  # decorating does not switch the mode
    assert inside() is False and minireg.is_grad_enabled()
    with minireg.set_grad_enabled(False):
        assert not minireg.is_grad_enabled()
    assert minireg.is_grad_enabled()
    assert_same_error(lambda: torch.set_grad_enabled(1), lambda: minireg.set_grad_enabled(1))


def test_the_mode_is_restored_after_an_exception_and_is_thread_local():
    with pytest.raises(ZeroDivisionError), minireg.no_grad():
        _ = 1 / 0
    assert minireg.is_grad_enabled()
    seen = []
    with minireg.no_grad():
        worker = threading.Thread(target=lambda: seen.append(minireg.is_grad_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]  # another thread starts with grad mode on, as in torch


# ---------------------------------------------------------------------------- records
MODULES = {
    "Linear": (lambda: nn.Linear(3, 2), (4, 3)),
    "ReLU": (nn.ReLU, (4, 3)),
    "Sigmoid": (nn.Sigmoid, (4, 3)),
    "Flatten": (nn.Flatten, (2, 3, 2)),
    "Identity": (nn.Identity, (4, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(3), (4, 3)),
    "LayerNorm": (lambda: nn.LayerNorm(3), (4, 3)),
    "GroupNorm": (lambda: nn.GroupNorm(1, 3), (2, 3, 2)),
    "InstanceNorm1d": (lambda: nn.InstanceNorm1d(3, affine=True), (2, 3, 4)),
    "Dropout": (lambda: nn.Dropout(0.5), (4, 3)),
    "Sequential": (lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh()), (4, 3)),
}


@pytest.mark.parametrize("name", MODULES)
def test_a_forward_under_no_grad_records_nothing(name):
    make, shape = MODULES[name]
    module = make()
    with minireg.no_grad():
        output = module(np.ones(shape))
    with pytest.raises(RuntimeError, match="before forward.*no_grad"):
        module.backward(np.ones_like(output))
    assert all(p.grad is None for p in module.parameters())


def test_a_loss_under_no_grad_keeps_the_recorded_one():
    loss_fn = nn.MSELoss()
    x, y = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    loss_fn(x, y)
    with minireg.no_grad():
        loss_fn(np.array([5.0, 5.0, 5.0]), np.zeros(3))
    np.testing.assert_array_equal(loss_fn.backward(), x)  # d/dx mean((x-y)^2) = (x-y)


def _bn_twins() -> tuple[nn.BatchNorm1d, torch.nn.BatchNorm1d]:
    """BatchNorm1d(3) in both libraries with the same trained-looking parameters and stats."""
    theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for tensor in (theirs.weight, theirs.bias, theirs.running_mean):
            tensor.copy_(torch.from_numpy(rng.standard_normal(3)))
        theirs.running_var.fill_(2.0)
    ours = nn.BatchNorm1d(3)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_backward_through_an_eval_forward_in_eval_mode_is_frozen_bn_like_torch():
    ours, theirs = _bn_twins()
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(1).standard_normal((5, 3))
    g = np.random.default_rng(2).standard_normal((5, 3))
    tx = torch.from_numpy(x.copy()).requires_grad_()
    theirs(tx).backward(torch.from_numpy(g))
    ours(x)
    assert_close(ours.backward(g), tx.grad, 1e-12, 1e-12)
    assert_close(ours.weight.grad, theirs.weight.grad, 1e-12, 1e-12)
    assert_close(ours.bias.grad, theirs.bias.grad, 1e-12, 1e-12)


def test_an_eval_forward_is_not_differentiated_back_in_training_mode():
    ours, _ = _bn_twins()
    ours.eval()
    ours(np.ones((5, 3)))
    ours.train()
    with pytest.raises(RuntimeError, match="eval mode.*training mode"):
        ours.backward(np.ones((5, 3)))
    assert ours.weight.grad is None and ours.bias.grad is None


def test_a_training_forward_may_be_differentiated_after_eval_like_torchs_graph():
    """Switching to eval after the forward does not change what torch's graph differentiates."""
    ours, theirs = _bn_twins()
    x = np.random.default_rng(3).standard_normal((6, 3))
    tx = torch.from_numpy(x.copy()).requires_grad_()
    out = theirs(tx)
    ours(x)
    ours.eval()
    theirs.eval()
    out.backward(torch.ones(6, 3, dtype=torch.float64))
    assert_close(ours.backward(np.ones((6, 3))), tx.grad, 1e-10, 1e-12)


def test_validation_under_no_grad_in_training_mode_still_updates_running_stats_like_torch():
    ours, theirs = _bn_twins()
    x = np.random.default_rng(4).standard_normal((8, 3))
    with minireg.no_grad(), torch.no_grad():
        ours(x)
        theirs(torch.from_numpy(x.copy()))
    assert_close(ours.running_mean, theirs.running_mean, 1e-12, 1e-12)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 1


# ---------------------------------------------------------------------------- Sequential
def test_a_child_run_again_on_its_own_is_caught_by_the_sequential():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model(np.ones((8, 3)))
    model[0](np.ones((5, 3)))  # e.g. probing the first layer by hand
    with pytest.raises(RuntimeError, match=r"module \[0\] \(Linear\) ran a forward after"):
        model.backward(np.ones((8, 2)))
    assert all(p.grad is None for p in model.parameters())


def test_children_run_one_by_one_are_one_pass_for_the_sequentials_backward():
    """A loop over the children (to look at each layer's output) is a pass like model(x)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = np.random.default_rng(7).standard_normal((5, 3))
    model(np.ones((8, 3)))  # an older pass: the loop below replaces it
    h = x
    for layer in model:
        h = layer(h)
    grad_input = model.backward(np.ones((5, 2)))
    expected_grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    np.testing.assert_array_equal(model.backward(np.ones((5, 2))), grad_input)
    for p, expected in zip(model.parameters(), expected_grads, strict=True):
        np.testing.assert_array_equal(p.grad, expected)


def test_children_run_out_of_step_are_not_one_pass():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model(np.ones((8, 3)))
    model[2](np.ones((5, 4)))  # the last layer alone, on another batch: ordered, but no chain
    with pytest.raises(RuntimeError, match=r"output of module \[1\] has shape \(8, 4\).*\(5, 4\)"):
        model.backward(np.ones((5, 2)))
    assert all(p.grad is None for p in model.parameters())


def test_a_module_used_twice_in_a_sequential_cannot_give_the_first_use_wrong_gradients():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    model(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"module \[0\].*used twice"):
        model.backward(np.ones((2, 3)))
    assert shared.weight.grad is None


def test_a_sequential_whose_child_ran_in_eval_mode_writes_no_gradient():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(np.ones((8, 3)))  # the Sequential's record is a training one ...
    model[1].eval()
    model[1](np.ones((8, 4)))  # ... but its BatchNorm ran again, in eval mode
    model[1].train()
    with pytest.raises(RuntimeError):
        model.backward(np.ones((8, 2)))
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------------------- grad_output
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_grad_output_of_another_real_dtype_is_cast_to_the_outputs_like_torch(dtype):
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2, dtype=torch.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((4, 3))
    g = (np.arange(8).reshape(4, 2) % 2).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    theirs(tx).backward(torch.from_numpy(g))
    ours(x)
    grad_input = ours.backward(g)
    assert grad_input.dtype == np.float64
    assert_close(grad_input, tx.grad, 1e-12, 1e-12)
    assert_close(ours.weight.grad, theirs.weight.grad, 1e-12, 1e-12)


def test_grad_output_none_is_ones_for_a_one_element_output_only_like_torch():
    ours = nn.Linear(3, 1)
    theirs = torch.nn.Linear(3, 1, dtype=torch.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.ones(3)
    tx = torch.ones(3, dtype=torch.float64, requires_grad=True)
    theirs(tx).backward()
    ours(x)
    assert_close(ours.backward(None), tx.grad, 1e-12, 1e-12)
    ours(np.ones((2, 3)))
    out = theirs(torch.ones(2, 3, dtype=torch.float64))
    assert_same_error(lambda: out.backward(), lambda: ours.backward(None))


def test_a_module_writes_all_its_parameter_grads_or_none():
    bn = nn.BatchNorm1d(3)
    bn(np.random.default_rng(6).standard_normal((4, 3)))
    bn.bias.grad = np.zeros(2)  # a gradient of the wrong shape, set by hand
    with pytest.raises(RuntimeError, match="existing .grad"):
        bn.backward(np.ones((4, 3)))
    assert bn.weight.grad is None  # not written before the bias was found wrong
