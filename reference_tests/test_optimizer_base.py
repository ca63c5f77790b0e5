"""The Optimizer base class against torch.optim.Optimizer: construction, param groups,
zero_grad, step(closure), state_dict layout and load_state_dict.

minireg's and torch's optimizers are built from the same arguments and compared: the
same exceptions with the same messages, the same group contents in the same key order
(minus torch's execution-machinery keys ``foreach``, ``fused``, ``capturable``,
``differentiable``), the same state_dict ids and state keys.  A few behaviours have no
torch counterpart (torch refuses a wrong-shaped ``.grad`` at assignment; minireg checks
it in ``step()``), and are tested on minireg alone.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.optim.optimizer import required as torch_required

import minireg
from minireg.optim.optimizer import TORCH_ONLY_KEYS
from minireg.optim.optimizer import required as minireg_required
from reference_tests.conftest import (
    assert_close,
    assert_same_warnings,
    outcome,
    to_torch,
    tolerance,
    twin_parameters,
)
from reference_tests.optim_harness import torch_state_dict_as_numpy

SHAPES = [(3, 2), (4,), (), (2, 2)]


def twins(device: str = "cpu", dtype: type = np.float64, shapes=SHAPES):
    rng = np.random.default_rng(0)
    return twin_parameters(
        [np.asarray(rng.standard_normal(s)).astype(dtype) for s in shapes], device
    )


def public_keys(group: dict) -> list[str]:
    return [k for k in group if k not in TORCH_ONLY_KEYS]


def public_group(group: dict) -> dict:
    return {k: v for k, v in group.items() if k not in TORCH_ONLY_KEYS and k != "params"}


# ------------------------------------------------------------------------- construction
def test_bare_parameter_is_rejected_like_torch():
    ours_p, theirs_p = twins()
    ours = outcome(lambda: minireg.optim.SGD(ours_p[0]))
    theirs = outcome(lambda: torch.optim.SGD(theirs_p[0]))
    assert ours[0] is theirs[0] is TypeError
    # Same text up to the type's name, which necessarily differs between the libraries.
    prefix = (
        "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
    )
    assert theirs[1] == prefix + "torch.DoubleTensor"
    assert ours[1] == prefix + "minireg.parameter.Parameter"
    # minireg's tensors are ndarrays: a bare ndarray is refused the same way.
    assert outcome(lambda: minireg.optim.SGD(np.zeros(3))) == (TypeError, prefix + "numpy.ndarray")


def test_set_in_a_param_group_is_rejected_like_torch():
    ours_p, theirs_p = twins()
    ours = outcome(lambda: minireg.optim.SGD([{"params": set(ours_p)}]))
    theirs = outcome(lambda: torch.optim.SGD([{"params": set(theirs_p)}]))
    assert ours == theirs and ours[0] is TypeError
    # As in torch, a set given directly as `params` is list()ed first, so it is accepted.
    assert len(minireg.optim.SGD(set(ours_p)).param_groups[0]["params"]) == len(SHAPES)
    assert len(torch.optim.SGD(set(theirs_p)).param_groups[0]["params"]) == len(SHAPES)


@pytest.mark.parametrize("empty", [list, lambda: iter(())])
def test_empty_parameter_list_is_rejected_like_torch(empty):
    ours = outcome(lambda: minireg.optim.SGD(empty()))
    theirs = outcome(lambda: torch.optim.SGD(empty()))
    assert ours == theirs == (ValueError, "optimizer got an empty parameter list")


def test_non_parameter_in_params_is_rejected_like_torch():
    for bad in (1.5, "w", np.zeros(2)):
        ours = outcome(lambda bad=bad: minireg.optim.SGD([bad]))
        theirs = outcome(lambda bad=bad: torch.optim.SGD([bad]))
        assert ours == theirs and ours[0] is TypeError


def test_duplicate_parameter_in_a_group_warns_like_torch():
    ours_p, theirs_p = twins()
    assert_same_warnings(
        lambda: torch.optim.SGD([theirs_p[0], theirs_p[1], theirs_p[0]]),
        lambda: minireg.optim.SGD([ours_p[0], ours_p[1], ours_p[0]]),
    )


@pytest.mark.parametrize("via_add_param_group", [False, True])
def test_parameter_in_two_groups_is_rejected_like_torch(via_add_param_group):
    def build(cls, p):
        if via_add_param_group:
            opt = cls([{"params": p[:2]}])
            opt.add_param_group({"params": [p[1], p[2]]})
        else:
            cls([{"params": p[:2]}, {"params": [p[2], p[0]]}])

    ours_p, theirs_p = twins()
    ours = outcome(lambda: build(minireg.optim.SGD, ours_p))
    theirs = outcome(lambda: build(torch.optim.SGD, theirs_p))
    assert ours == theirs == (ValueError, "some parameters appear in more than one parameter group")


def test_required_hyperparameter_like_torch():
    ours_p, theirs_p = twins()
    ours = outcome(lambda: minireg.optim.Optimizer([{"params": ours_p}], {"lr": minireg_required}))
    theirs = outcome(lambda: torch.optim.Optimizer([{"params": theirs_p}], {"lr": torch_required}))
    assert ours == theirs and ours[0] is ValueError


# ------------------------------------------------------------------------- names, groups
def test_named_parameters_give_param_names_like_torch():
    ours_p, theirs_p = twins()
    names = [f"layer.{i}" for i in range(len(SHAPES))]
    ours = minireg.optim.RMSprop(list(zip(names, ours_p, strict=True)), momentum=0.9)
    theirs = torch.optim.RMSprop(list(zip(names, theirs_p, strict=True)), momentum=0.9)
    assert ours.param_groups[0]["param_names"] == theirs.param_groups[0]["param_names"] == names
    assert ours.param_groups[0]["params"] == ours_p
    assert public_keys(ours.state_dict()["param_groups"][0]) == public_keys(
        theirs.state_dict()["param_groups"][0]
    )
    assert ours.state_dict()["param_groups"][0]["param_names"] == names

    # Mixing named and unnamed params, within a group or across groups, fails as in torch.
    mixed = [
        lambda cls, p: cls([("a", p[0]), p[1]]),
        lambda cls, p: cls([{"params": [("a", p[0])]}, {"params": [p[1]]}]),
        lambda cls, p: cls([{"params": [p[0]]}, {"params": [("b", p[1])]}]),
    ]
    for build in mixed:
        ours_error = outcome(lambda build=build: build(minireg.optim.RMSprop, ours_p))
        theirs_error = outcome(lambda build=build: build(torch.optim.RMSprop, theirs_p))
        assert ours_error == theirs_error and ours_error[0] is ValueError


@pytest.mark.parametrize(
    "cls_pair, kwargs, group",
    [
        (
            (minireg.optim.SGD, torch.optim.SGD),
            dict(lr=0.1, momentum=0.9),
            {"weight_decay": 0.5, "lr": 0.2},
        ),
        ((minireg.optim.Adagrad, torch.optim.Adagrad), dict(lr_decay=0.1), {"eps": 1e-3}),
        (
            (minireg.optim.Adadelta, torch.optim.Adadelta),
            dict(rho=0.5),
            {"maximize": True, "lr": 0.5},
        ),
        ((minireg.optim.RMSprop, torch.optim.RMSprop), dict(alpha=0.9), {"centered": True}),
    ],
)
def test_add_param_group_fills_defaults_like_torch(cls_pair, kwargs, group):
    ours_p, theirs_p = twins()
    ours, theirs = cls_pair[0](ours_p[:2], **kwargs), cls_pair[1](theirs_p[:2], **kwargs)
    ours.add_param_group({"params": ours_p[2:], **group})
    theirs.add_param_group({"params": theirs_p[2:], **group})
    assert len(ours.param_groups) == len(theirs.param_groups) == 2
    for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups, strict=True):
        assert public_keys(g_ours) == public_keys(g_theirs)  # same keys, same order
        assert public_group(g_ours) == public_group(g_theirs)
    assert ours.param_groups[1]["params"] == ours_p[2:]
    # A single Parameter as a group's params is wrapped in a list, as torch does.
    ours.add_param_group({"params": minireg.Parameter(np.zeros(1))})
    assert len(ours.param_groups[2]["params"]) == 1


def test_add_param_group_rejects_a_non_dict_like_torch():
    ours_p, theirs_p = twins()
    ours = outcome(lambda: minireg.optim.SGD(ours_p[:1]).add_param_group(ours_p[1:]))
    theirs = outcome(lambda: torch.optim.SGD(theirs_p[:1]).add_param_group(theirs_p[1:]))
    assert ours == theirs and ours[0] is TypeError


# ------------------------------------------------------------------------- zero_grad, step
@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_like_torch(device, set_to_none):
    ours_p, theirs_p = twins(device)
    rng = np.random.default_rng(1)
    held = []
    for i, (p, q) in enumerate(zip(ours_p, theirs_p, strict=True)):
        if i == 1:
            continue  # one parameter without a gradient stays without one
        g = np.asarray(rng.standard_normal(p.shape))
        p.grad, q.grad = g, to_torch(g, device)
        held.append(p.grad)
    ours, theirs = minireg.optim.SGD(ours_p), torch.optim.SGD(theirs_p)
    ours.zero_grad(set_to_none=set_to_none)
    theirs.zero_grad(set_to_none=set_to_none)
    for p, q in zip(ours_p, theirs_p, strict=True):
        assert (p.grad is None) == (q.grad is None)
        if q.grad is not None:
            assert_close(p.grad, q.grad, 0, 0, "zeroed grad")
    if not set_to_none:  # zeroed in place: the very arrays that were there
        assert all(any(p.grad is h for h in held) for p in ours_p if p.grad is not None)
    ours.zero_grad()  # the default is set_to_none=True, as in torch
    assert all(p.grad is None for p in ours_p)


def test_step_with_closure_returns_its_loss_like_torch(device):
    # The closure runs first and may produce the gradients the step then uses.
    ours_p, theirs_p = twins(device)
    rng = np.random.default_rng(2)
    grads = [np.asarray(rng.standard_normal(p.shape)) for p in ours_p]
    calls = []

    def ours_closure():
        calls.append("ours")
        for p, g in zip(ours_p, grads, strict=True):
            p.grad = g.copy()
        return 1.25

    def theirs_closure():
        for q, g in zip(theirs_p, grads, strict=True):
            q.grad = to_torch(g, device)
        return torch.tensor(1.25)

    ours, theirs = minireg.optim.RMSprop(ours_p, lr=0.1), torch.optim.RMSprop(theirs_p, lr=0.1)
    assert ours.step(ours_closure) == 1.25 == float(theirs.step(theirs_closure))
    assert calls == ["ours"]
    rtol, atol = tolerance(np.float64, device)
    for p, q in zip(ours_p, theirs_p, strict=True):
        assert_close(p.data, q, rtol, atol, "param after closure step")
    assert ours.step() is None


# ------------------------------------------------------------------------- state_dict
def build_multi_group(lib, params, device):
    """Three groups with different options; the last param never gets a gradient."""
    opt_cls = minireg.optim.RMSprop if lib == "ours" else torch.optim.RMSprop
    opt = opt_cls(
        [
            {"params": [params[1], params[0]], "momentum": 0.9},
            {"params": [params[2]], "centered": True, "lr": 0.05},
        ],
        lr=0.01,
        alpha=0.9,
    )
    opt.add_param_group({"weight_decay": 0.1, "params": [params[3]], "lr": 0.2})
    return opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_layout_like_torch(device, dtype):
    ours_p, theirs_p = twins(device, dtype)
    ours, theirs = (
        build_multi_group("ours", ours_p, device),
        build_multi_group("theirs", theirs_p, device),
    )
    rng = np.random.default_rng(3)
    for step in range(3):
        # params[3] never gets a gradient; params[2] only from the second step on, so the
        # state's insertion order differs from the id order.
        grads = [np.asarray(rng.standard_normal(p.shape)).astype(dtype) for p in ours_p]
        for i, (p, q, g) in enumerate(zip(ours_p, theirs_p, grads, strict=True)):
            give = i != 3 and not (i != 2 and step == 0)
            p.grad = g if give else None
            q.grad = to_torch(g, device) if give else None
        ours.step()
        theirs.step()
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs) == ["state", "param_groups"]
    assert list(sd_ours["state"]) == list(sd_theirs["state"])  # ids, in insertion order
    rtol, atol = tolerance(dtype, device)
    for pid, entry in sd_theirs["state"].items():
        assert list(sd_ours["state"][pid]) == list(entry)
        for key, value in entry.items():
            assert_close(sd_ours["state"][pid][key], value, rtol, atol, f"state[{pid}][{key!r}]")
    for g_ours, g_theirs in zip(sd_ours["param_groups"], sd_theirs["param_groups"], strict=True):
        assert public_keys(g_ours) == public_keys(g_theirs)
        assert {k: g_ours[k] for k in public_keys(g_ours)} == {
            k: g_theirs[k] for k in public_keys(g_theirs)
        }
        assert list(g_ours)[-1] == "params"


def test_load_state_dict_group_count_and_size_errors_like_torch():
    ours_p, theirs_p = twins()
    ours, theirs = (
        minireg.optim.SGD(ours_p[:2], momentum=0.9),
        torch.optim.SGD(theirs_p[:2], momentum=0.9),
    )
    two_groups_ours = minireg.optim.SGD(
        [{"params": ours_p[:1]}, {"params": ours_p[1:2]}], momentum=0.9
    )
    two_groups_theirs = torch.optim.SGD(
        [{"params": theirs_p[:1]}, {"params": theirs_p[1:2]}], momentum=0.9
    )
    ours_error = outcome(lambda: ours.load_state_dict(two_groups_ours.state_dict()))
    theirs_error = outcome(lambda: theirs.load_state_dict(two_groups_theirs.state_dict()))
    assert (
        ours_error
        == theirs_error
        == (ValueError, "loaded state dict has a different number of parameter groups")
    )

    three_ours, three_theirs = minireg.optim.SGD(ours_p[:3]), torch.optim.SGD(theirs_p[:3])
    ours_error = outcome(lambda: ours.load_state_dict(three_ours.state_dict()))
    theirs_error = outcome(lambda: theirs.load_state_dict(three_theirs.state_dict()))
    assert ours_error == theirs_error
    assert ours_error == (
        ValueError,
        "loaded state dict contains a parameter group that doesn't match the size of "
        "optimizer's group",
    )


def test_load_state_dict_wrong_state_shape_leaves_optimizer_unchanged():
    # torch does not check state shapes (it would fail later, inside step()); minireg
    # refuses the state_dict up front and keeps what it had.
    params = [minireg.Parameter(np.ones(s)) for s in [(3,), (2, 2)]]
    opt = minireg.optim.RMSprop(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = np.full(p.shape, 0.5)
    opt.step()
    before_state, before_groups = copy.deepcopy(opt.state_dict()), copy.deepcopy(opt.param_groups)
    bad = copy.deepcopy(opt.state_dict())
    bad["param_groups"][0]["lr"] = 123.0
    bad["state"][1]["square_avg"] = np.zeros((4,))
    with pytest.raises(ValueError):
        opt.load_state_dict(bad)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["params"] == params
    after = opt.state_dict()
    for pid, entry in before_state["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(after["state"][pid][key], value)
    assert [public_group(g) for g in opt.param_groups] == [public_group(g) for g in before_groups]


def test_load_torch_state_dict_casts_state_to_param_dtype_except_step(device):
    # A float64 run's state loaded into float32 params: every floating state entry takes
    # the param's dtype, except "step", which keeps the saved dtype (torch issue 74424).
    src_p = twins(device, np.float64)[1]
    src = torch.optim.RMSprop(src_p, lr=0.1, momentum=0.9, centered=True)
    rng = np.random.default_rng(4)
    for _ in range(3):
        for q in src_p:
            q.grad = to_torch(np.asarray(rng.standard_normal(tuple(q.shape))), device)
        src.step()
    saved = src.state_dict()
    for entry in saved["state"].values():
        entry["step"] = entry["step"].to(torch.float64)  # a float64 step, to see it kept

    ours_p, theirs_p = twins(device, np.float32)
    ours = minireg.optim.RMSprop(ours_p, lr=0.5)
    theirs = torch.optim.RMSprop(theirs_p, lr=0.5)
    ours.load_state_dict(torch_state_dict_as_numpy(saved))
    theirs.load_state_dict(copy.deepcopy(saved))
    rtol, atol = tolerance(np.float32, device)
    for p, q in zip(ours_p, theirs_p, strict=True):
        assert list(ours.state[p]) == list(theirs.state[q])
        for key, value in theirs.state[q].items():
            assert_close(ours.state[p][key], value, rtol, atol, key)  # dtype included
        assert ours.state[p]["step"].dtype == np.float64
        assert ours.state[p]["square_avg"].dtype == np.float32
    # torch-only keys are dropped; everything else is taken from the saved groups.
    assert public_keys(ours.param_groups[0]) == public_keys(theirs.param_groups[0])
    assert not set(TORCH_ONLY_KEYS) & set(ours.param_groups[0])
    assert public_group(ours.param_groups[0]) == public_group(theirs.param_groups[0])
    assert ours.param_groups[0]["lr"] == 0.1 and ours.param_groups[0]["params"] == ours_p
    # and the two continue together
    for _ in range(3):
        grads = [np.asarray(rng.standard_normal(p.shape)).astype(np.float32) for p in ours_p]
        for p, q, g in zip(ours_p, theirs_p, grads, strict=True):
            p.grad, q.grad = g, to_torch(g, device)
        ours.step()
        theirs.step()
    for p, q in zip(ours_p, theirs_p, strict=True):
        assert_close(p.data, q, rtol, atol, "param after resuming")


@pytest.mark.parametrize("bad", ["shape", "dtype"])
@pytest.mark.parametrize(
    "cls", [minireg.optim.SGD, minireg.optim.Adagrad, minireg.optim.Adadelta, minireg.optim.RMSprop]
)
def test_bad_grad_raises_before_any_parameter_moves(cls, bad):
    # torch refuses such a .grad at assignment; minireg checks every gradient in step()
    # before touching anything, so the optimizer is never left half-stepped.
    params = [minireg.Parameter(np.ones(s, np.float32)) for s in [(3,), (2, 2), (4,)]]
    opt = cls([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    for p in params:
        p.grad = np.full(p.shape, 0.5, np.float32)
    opt.step()
    snapshot = copy.deepcopy((opt.state_dict(), [p.data for p in params]))
    params[2].grad = np.zeros((5,), np.float32) if bad == "shape" else np.zeros((4,), np.float64)
    with pytest.raises(RuntimeError):
        opt.step()
    for p, before in zip(params, snapshot[1], strict=True):
        np.testing.assert_array_equal(p.data, before)
    after = opt.state_dict()["state"]
    assert list(after) == list(snapshot[0]["state"])
    for pid, entry in snapshot[0]["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(after[pid][key], value)


def test_repr_like_torch():
    ours_p, theirs_p = twins()
    ours = minireg.optim.Adagrad(
        [{"params": ours_p[:2]}, {"params": ours_p[2:], "lr": 0.5}], lr_decay=0.1
    )
    theirs = torch.optim.Adagrad(
        [{"params": theirs_p[:2]}, {"params": theirs_p[2:], "lr": 0.5}], lr_decay=0.1
    )
    torch_lines = [
        line
        for line in repr(theirs).splitlines()
        if line.split(":")[0].strip() not in TORCH_ONLY_KEYS
    ]
    assert repr(ours).splitlines() == torch_lines
