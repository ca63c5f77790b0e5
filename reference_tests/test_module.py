"""The Module base class against ``torch.nn.Module``.

Each model is written once as a function of a namespace (``minireg.nn`` or ``torch.nn``,
whose layer names and signatures agree) and built twice.  Compared with torch: the names
and order of parameters, buffers, modules and children (plain, nested and shared-module
models), train/eval propagation, ``zero_grad``, ``apply``'s visiting order, ``state_dict``
keys, loading a torch ``state_dict`` (then forward and backward agree within
``tolerance(dtype, device)``), ``load_state_dict``'s errors (and that a failed load writes
nothing), ``to(dtype)`` and ``repr``.

Error messages: torch prints shapes as ``torch.Size([4, 3])`` where minireg prints
``(4, 3)``; ``conftest.torch_text`` maps the former to the latter, and the comparison is
otherwise exact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import minireg
import minireg.nn as mnn
from minireg.parameter import accumulate_grad
from reference_tests.conftest import assert_close, assert_same_error, to_numpy, to_torch, tolerance


# ---------------------------------------------------------------------------- models
class MiniScale(mnn.Module):
    """A module with a parameter, a float buffer and an integer buffer (minireg side)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.gain = minireg.Parameter(np.linspace(0.5, 1.5, n))
        self.register_buffer("running", np.arange(n, dtype=np.float64))
        self.register_buffer("count", np.array(3, dtype=np.int64))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x * self.gain.data + self.running

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        accumulate_grad(self.gain, (grad_output * self._x).reshape(-1, self.gain.size).sum(axis=0))
        return grad_output * self.gain.data


class TorchScale(torch.nn.Module):
    """The torch twin of :class:`MiniScale`."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.linspace(0.5, 1.5, n, dtype=torch.float64))
        self.register_buffer("running", torch.arange(n, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(3, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain + self.running


def mlp(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def nested(nn: Any) -> Any:
    return nn.Sequential(
        nn.Sequential(nn.Linear(3, 5), nn.Tanh()),
        nn.Linear(5, 4),
        nn.Sequential(nn.Sequential(nn.Linear(4, 4, bias=False)), nn.LeakyReLU(0.2)),
        nn.Identity(),
        nn.Linear(4, 2),
        nn.Sigmoid(),
    )


def with_buffers(nn: Any) -> Any:
    scale = MiniScale if nn is mnn else TorchScale
    return nn.Sequential(nn.Linear(3, 4), scale(4), nn.Sequential(scale(4), nn.Linear(4, 2)))


def shared(nn: Any) -> Any:
    layer = nn.Linear(4, 4)
    return nn.Sequential(layer, nn.ReLU(), layer, nn.Sequential(layer))


MODELS: dict[str, Callable[[Any], Any]] = {
    "mlp": mlp,
    "nested": nested,
    "with_buffers": with_buffers,
    "shared": shared,
}
FORWARD_MODELS = ["mlp", "nested", "with_buffers"]  # input (n, 3); `shared` takes (n, 4)


def kind(module: Any) -> str:
    """The class name, with the test-only ``Mini``/``Torch`` prefixes dropped."""
    return type(module).__name__.removeprefix("Mini").removeprefix("Torch")


def twins(name: str) -> tuple[Any, torch.nn.Module]:
    return MODELS[name](mnn), MODELS[name](torch.nn)


def copy_torch_weights(ours: Any, theirs: torch.nn.Module) -> None:
    ours.load_state_dict({k: to_numpy(v) for k, v in theirs.state_dict().items()})


# ---------------------------------------------------------------------------- traversal
@pytest.mark.parametrize("name", MODELS)
def test_names_and_order_match_torch(name):
    ours, theirs = twins(name)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in theirs.named_parameters()
    ]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [(n, kind(m)) for n, m in ours.named_modules()] == [
        (n, kind(m)) for n, m in theirs.named_modules()
    ]
    assert [(n, kind(m)) for n, m in ours.named_children()] == [
        (n, kind(m)) for n, m in theirs.named_children()
    ]
    assert [kind(m) for m in ours.children()] == [kind(m) for m in theirs.children()]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.buffers())) == len(list(theirs.buffers()))
    # the non-recursive views: only the module's own members
    for (_, m), (_, t) in zip(ours.named_modules(), theirs.named_modules(), strict=True):
        assert [n for n, _ in m.named_parameters(recurse=False)] == [
            n for n, _ in t.named_parameters(recurse=False)
        ]


def test_parameters_are_the_registered_objects():
    model = mlp(mnn)
    assert list(model.parameters()) == [
        model[0].weight,
        model[0].bias,
        model[2].weight,
        model[2].bias,
    ]
    assert all(isinstance(p, minireg.Parameter) for p in model.parameters())
    layer = model[0]
    layer.bias = None  # assigning None to a parameter slot removes it from the listing, as in torch
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "2.weight", "2.bias"]
    with pytest.raises(TypeError):
        layer.weight = np.zeros(
            (4, 3)
        )  # a plain array cannot replace a Parameter (torch: TypeError too)


@pytest.mark.parametrize("name", MODELS)
def test_repr_matches_torch(name):
    ours, theirs = twins(name)
    assert repr(ours).replace("MiniScale", "Scale") == repr(theirs).replace("TorchScale", "Scale")


# ---------------------------------------------------------------------------- modes, grads, apply
def test_train_eval_propagate_like_torch():
    ours, theirs = twins("nested")

    def flags(model: Any) -> list[bool]:
        return [m.training for m in model.modules()]

    assert flags(ours) == flags(theirs) == [True] * len(flags(theirs))
    assert ours.eval() is ours
    theirs.eval()
    assert flags(ours) == flags(theirs) == [False] * len(flags(theirs))
    ours[2].train()  # a subtree only
    theirs[2].train()
    assert flags(ours) == flags(theirs)
    assert ours.train(False) is ours
    theirs.train(False)
    assert flags(ours) == flags(theirs)
    theirs_error, _ = assert_same_error(lambda: theirs.train("yes"), lambda: ours.train("yes"))
    assert isinstance(theirs_error, ValueError)
    assert flags(ours) == flags(theirs)  # the rejected call changed nothing


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_like_torch(set_to_none):
    rng = np.random.default_rng(0)
    ours, theirs = twins("mlp")
    copy_torch_weights(ours, theirs)
    x = rng.standard_normal((5, 3))
    ours.backward(np.ones_like(ours(x)))
    theirs(torch.from_numpy(x).float()).sum().backward()
    assert all(p.grad is not None for p in ours.parameters())
    ours.zero_grad(set_to_none=set_to_none)
    theirs.zero_grad(set_to_none=set_to_none)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        if set_to_none:
            assert p.grad is None and q.grad is None
        else:
            assert p.grad.dtype == p.dtype
            np.testing.assert_array_equal(p.grad, to_numpy(q.grad))
    ours.zero_grad()  # default: set to None, as torch 2.x
    assert all(p.grad is None for p in ours.parameters())


def test_apply_visits_children_first_like_torch():
    ours, theirs = twins("nested")
    seen_ours: list[str] = []
    seen_theirs: list[str] = []
    assert ours.apply(lambda m: seen_ours.append(kind(m))) is ours
    theirs.apply(lambda m: seen_theirs.append(kind(m)))
    assert seen_ours == seen_theirs


# ---------------------------------------------------------------------------- state_dict
@pytest.mark.parametrize("name", MODELS)
def test_state_dict_keys_and_shapes_match_torch(name):
    ours, theirs = twins(name)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key, value in theirs_sd.items():
        assert ours_sd[key].shape == tuple(value.shape), key


def test_state_dict_values_are_the_live_arrays():
    model = mlp(mnn)
    sd = model.state_dict()
    assert sd["0.weight"] is model[0].weight.data
    model[0].weight.data += 1.0  # in-place updates show through, as torch's detached views
    np.testing.assert_array_equal(sd["0.weight"], model[0].weight.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FORWARD_MODELS)
def test_torch_state_dict_loads_and_the_models_agree(device, dtype, name):
    rng = np.random.default_rng(1)
    ours, theirs = twins(name)
    ours.to(dtype)
    theirs = theirs.to(torch.float32 if dtype == np.float32 else torch.float64).to(device)
    params_before = list(ours.parameters())
    result = ours.load_state_dict({k: to_numpy(v) for k, v in theirs.state_dict().items()})
    assert result == ([], [])
    assert list(ours.parameters()) == params_before  # loaded in place: same Parameter objects
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value, 0.0, 0.0, f"loaded {key}")
    rtol, atol = tolerance(dtype, device)
    x = rng.standard_normal((6, 3)).astype(dtype)
    grad_output = rng.standard_normal((6, 2)).astype(dtype)
    x_torch = to_torch(x, device, requires_grad=True)
    out_torch = theirs(x_torch)
    out_torch.backward(to_torch(grad_output, device))
    assert_close(ours(x), out_torch, rtol, atol, "forward")
    assert_close(ours.backward(grad_output), x_torch.grad, rtol, atol, "input grad")
    for (key, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert_close(p.grad, q.grad, rtol, atol, f"grad of {key}")


def test_cpu_torch_tensors_load_directly():
    ours, theirs = twins("with_buffers")
    ours.load_state_dict(theirs.state_dict())  # np.asarray accepts CPU tensors
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy(), err_msg=key)


def corrupted(state: dict[str, Any], *faults: str) -> dict[str, Any]:
    state = dict(state)
    if "missing" in faults:
        del state["2.bias"]
        del state["0.bias"]
    if "unexpected" in faults:
        state["3.weight"] = state["0.weight"]
        state["extra"] = state["2.weight"]
    if "size" in faults:
        state["0.weight"] = state["0.weight"][:3]
        state["2.weight"] = state["2.weight"][:, :2]
    return state


@pytest.mark.parametrize(
    "faults",
    [
        ("missing",),
        ("unexpected",),
        ("size",),
        ("missing", "size"),
        ("missing", "unexpected", "size"),
    ],
)
def test_load_state_dict_errors_match_torch_and_write_nothing(faults):
    ours, theirs = twins("mlp")
    source = mlp(torch.nn).state_dict()  # other values than both models hold
    before = copy.deepcopy({k: v.copy() for k, v in ours.state_dict().items()})
    theirs_error, _ = assert_same_error(
        lambda: theirs.load_state_dict(corrupted(source, *faults)),
        lambda: ours.load_state_dict(
            corrupted({k: to_numpy(v) for k, v in source.items()}, *faults)
        ),
    )
    assert isinstance(theirs_error, RuntimeError)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=f"{key} changed by a failed load")


def test_non_strict_load_reports_keys_like_torch():
    ours, theirs = twins("mlp")
    source = mlp(torch.nn).state_dict()
    theirs_result = theirs.load_state_dict(corrupted(source, "missing", "unexpected"), strict=False)
    ours_result = ours.load_state_dict(
        corrupted({k: to_numpy(v) for k, v in source.items()}, "missing", "unexpected"),
        strict=False,
    )
    assert list(ours_result) == [theirs_result.missing_keys, theirs_result.unexpected_keys]
    for key in ("0.weight", "2.weight"):  # the keys present were loaded
        np.testing.assert_array_equal(ours.state_dict()[key], source[key].numpy(), err_msg=key)


# ---------------------------------------------------------------------------- to(dtype)
def test_to_dtype_converts_floating_members_like_torch():
    rng = np.random.default_rng(2)
    ours, theirs = twins("with_buffers")
    copy_torch_weights(ours, theirs)
    ours.backward(np.ones_like(ours(rng.standard_normal((2, 3)))))
    assert ours.to(np.float32) is ours
    theirs.to(torch.float32)
    for (key, value), (_, expected) in zip(
        ours.state_dict().items(), theirs.state_dict().items(), strict=True
    ):
        assert value.dtype == to_numpy(expected).dtype, key  # int buffers keep their dtype
        np.testing.assert_array_equal(value, to_numpy(expected), err_msg=key)
    assert all(p.grad.dtype == np.float32 for p in ours.parameters())
    x = rng.standard_normal((4, 3)).astype(np.float32)
    assert ours(x).dtype == np.float32
