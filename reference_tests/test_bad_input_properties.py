"""Bad input over minireg's whole public surface: torch's exception types, and no state change.

Every public component (each Module's forward and backward, the losses, the optimizers,
the lr schedulers, the init functions, the clipping functions and the functional
kernels) is crossed with the kinds of bad input careless users feed it: integer, bool,
complex and object dtypes, a wrong rank, a wrong feature count, a wrong ``grad_output``
shape, NaN/inf, torch tensors, lists, ``None``, negative or zero sizes, a ``p`` outside
[0, 1], a closure that raises.  Each pair is one parametrized test; hypothesis draws the
details (which integer dtype, which shape, where the NaNs go, the mode, the reduction...).

For each draw the same call is built in torch and in minireg.  Where torch rejects the
input, minireg must reject it with the same exception type; where torch accepts it,
minireg must accept it too, except for the deliberate differences listed in the README
(see ``_allowed_difference``).  Whenever minireg rejects, every piece of state the call
could touch (parameters, gradients, buffers, the forward record, optimizer and scheduler
state, the default random generator) must be byte-for-byte what it was.

Counts: ``MINIREG_BAD_INPUT_COUNTS=path pytest reference_tests/test_bad_input_properties.py``
writes them as JSON (cases, examples, rejections, accepted-like-torch, state checks).
"""

from __future__ import annotations

import collections
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minireg
import minireg.nn.functional as MF
from minireg.optim.lr_scheduler import LRScheduler
from minireg.optim.optimizer import Optimizer
from reference_tests.conftest import outcome

TF = torch.nn.functional
Draw = Callable[[st.SearchStrategy[Any]], Any]


# ============================================================================ state
def fingerprint(*values: Any) -> bytes:
    """Bytes of everything in ``values`` that a call could change: arrays (dtype, shape,
    contents), Parameters (data and grad), Modules (state_dict, grads, mode, the identity
    of each forward record), optimizers (param_groups and state), schedulers (their
    state_dict), generators (their bit generator's state), recursively through containers."""
    out: list[bytes] = []

    def walk(value: Any) -> None:
        if isinstance(value, np.ndarray):
            out.append(f"array {value.dtype.str} {value.shape}".encode())
            out.append(
                np.ascontiguousarray(value).tobytes()
                if value.dtype != object
                else repr(value).encode()
            )
        elif isinstance(value, minireg.Parameter):
            walk(value.data)
            walk(value.grad)
        elif isinstance(value, minireg.nn.Module):
            walk(dict(value.state_dict()))
            walk([p.grad for p in value.parameters()])
            walk([(m.training, id(m._forward_record)) for m in value.modules()])
        elif isinstance(value, Optimizer):  # (its parameters' data and grads: pass them too)
            walk(
                [{k: v for k, v in group.items() if k != "params"} for group in value.param_groups]
            )
            walk([[id(p) for p in group["params"]] for group in value.param_groups])
            walk([(id(p), state) for p, state in value.state.items()])
        elif isinstance(value, LRScheduler):
            walk(value.state_dict())
        elif isinstance(value, np.random.Generator):
            walk(value.bit_generator.state)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(repr(key))
                walk(item)
        elif isinstance(value, (list, tuple)):
            out.append(f"{type(value).__name__} {len(value)}".encode())
            for item in value:
                walk(item)
        elif isinstance(value, torch.Tensor):
            walk(value.detach().cpu().numpy())
        else:
            out.append(repr(value).encode())

    for value in values:
        walk(value)
    return b"|".join(out)


def rng_state() -> Any:
    """minireg's default generator (dropout masks and random inits draw from it)."""
    return minireg.random.default_generator()


# ============================================================================ bad values
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8]
SPECIALS = [np.nan, np.inf, -np.inf]


@dataclass
class Bad:
    """A bad value for both sides: minireg's, and a thunk giving torch's (converting an
    array inside torch's call, so that a conversion torch refuses is torch's outcome)."""

    ours: Any
    theirs: Callable[[], Any]


def _torch_of(value: Any) -> Callable[[], Any]:
    if isinstance(value, np.ndarray):
        copy = value.copy()
        return lambda: torch.as_tensor(copy)
    return lambda: value


def bad_value(kind: str, good: np.ndarray, draw: Draw, feature_axis: int | None = None) -> Bad:
    """``good`` (a valid float64 array) turned into the bad input ``kind``."""
    good = np.asarray(good)
    if kind == "int":
        array = np.round(good * 3).astype(draw(st.sampled_from(INT_DTYPES)))
    elif kind == "bool":
        array = good > 0
    elif kind == "complex":
        array = (good + 0.5j).astype(draw(st.sampled_from([np.complex64, np.complex128])))
    elif kind == "object":
        array = good.astype(object)
    elif kind == "nan_inf":
        array = good.copy()
        where = draw(st.lists(st.integers(0, max(array.size - 1, 0)), min_size=1, max_size=3))
        array.reshape(-1)[where] = draw(st.sampled_from(SPECIALS))
    elif kind == "wrong_rank":
        change = draw(st.sampled_from(["add", "drop", "0-d", "1-d"]))
        if change == "add":
            array = good[..., None]
        elif change == "drop" and good.ndim > 1:
            array = good[..., 0]
        elif change == "0-d":
            array = np.asarray(good.reshape(-1)[0])
        else:
            array = good.reshape(-1)
    elif kind == "wrong_features":
        axis = feature_axis if feature_axis is not None else -1
        size = good.shape[axis]
        new = draw(st.integers(1, 7).filter(lambda n: n != size))
        shape = list(good.shape)
        shape[axis] = new
        array = np.resize(good, shape)
    elif kind == "torch_tensor":
        return Bad(torch.from_numpy(good.copy()), lambda: torch.from_numpy(good.copy()))
    elif kind == "list":
        return Bad(good.tolist(), lambda: good.tolist())
    elif kind == "none":
        return Bad(None, lambda: None)
    else:
        raise AssertionError(kind)
    array = np.asarray(array)  # (arithmetic on a 0-d array gives a NumPy scalar)
    return Bad(array, _torch_of(array))


ARRAY_KINDS = [
    "int",
    "bool",
    "complex",
    "object",
    "wrong_rank",
    "nan_inf",
    "torch_tensor",
    "list",
    "none",
]
GRAD_KINDS = [
    "wrong_shape",
    "int",
    "bool",
    "complex",
    "object",
    "nan_inf",
    "torch_tensor",
    "list",
    "none",
]


def bad_grad(kind: str, shape: tuple[int, ...], draw: Draw, rng: np.random.Generator) -> Bad:
    """A bad ``grad_output`` for an output of ``shape``."""
    if kind == "wrong_shape":
        change = draw(st.sampled_from(["broadcastable", "transposed", "extra", "drop"]))
        if change == "broadcastable" and len(shape) > 0:
            wrong = (1,) + tuple(shape[1:])
            wrong = wrong if wrong != tuple(shape) else tuple(shape) + (1,)
        elif change == "transposed" and len(shape) > 1 and shape[0] != shape[-1]:
            wrong = tuple(reversed(shape))
        elif change == "drop" and len(shape) > 0:
            wrong = tuple(shape[1:])
        else:
            wrong = tuple(shape) + (2,)
        array = np.asarray(rng.standard_normal(wrong))
        return Bad(array, _torch_of(array))
    return bad_value(kind, np.asarray(rng.standard_normal(shape)), draw)


# ============================================================================ cases
@dataclass
class Trial:
    """One drawn call: torch's, minireg's, and the minireg state it may touch."""

    theirs: Callable[[], Any]
    ours: Callable[[], Any]
    state: Callable[[], bytes]


@dataclass(frozen=True)
class Case:
    component: str
    kind: str
    setup: Callable[[Draw], Trial]
    category: str

    def __str__(self) -> str:
        return f"{self.component}-{self.kind}"


CASES: list[Case] = []


def case(component: str, kinds: list[str], category: str) -> Callable[[Callable[..., Trial]], None]:
    """Register ``setup(kind, draw)`` for each kind."""

    def register(setup: Callable[..., Trial]) -> None:
        for kind in kinds:
            CASES.append(Case(component, kind, lambda draw, k=kind: setup(k, draw), category))

    return register


def seeded(draw: Draw) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**16)))


# ---------------------------------------------------------------------------- modules
@dataclass(frozen=True)
class ModuleSpec:
    make: Callable[[Any], Any]  # (torch.nn or minireg.nn) -> module
    shape: tuple[int, ...]
    feature_axis: int | None = None
    modal: bool = False  # behaves differently in train and eval mode


MODULES: dict[str, ModuleSpec] = {
    "Linear": ModuleSpec(lambda nn: nn.Linear(3, 4), (5, 3), -1),
    "ReLU": ModuleSpec(lambda nn: nn.ReLU(), (4, 3)),
    "LeakyReLU": ModuleSpec(lambda nn: nn.LeakyReLU(0.2), (4, 3)),
    "Sigmoid": ModuleSpec(lambda nn: nn.Sigmoid(), (4, 3)),
    "Tanh": ModuleSpec(lambda nn: nn.Tanh(), (4, 3)),
    "Identity": ModuleSpec(lambda nn: nn.Identity(), (4, 3)),
    "Flatten": ModuleSpec(lambda nn: nn.Flatten(), (2, 3, 2)),
    "Sequential": ModuleSpec(
        lambda nn: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)),
        (5, 3),
        -1,
        modal=True,
    ),
    "BatchNorm1d": ModuleSpec(lambda nn: nn.BatchNorm1d(3), (4, 3), 1, modal=True),
    "BatchNorm2d": ModuleSpec(lambda nn: nn.BatchNorm2d(3), (2, 3, 2, 2), 1, modal=True),
    "BatchNorm3d": ModuleSpec(lambda nn: nn.BatchNorm3d(3), (2, 3, 2, 1, 2), 1, modal=True),
    "LayerNorm": ModuleSpec(lambda nn: nn.LayerNorm(3), (4, 3), -1),
    "GroupNorm": ModuleSpec(lambda nn: nn.GroupNorm(3, 6), (2, 6, 3), 1),
    "InstanceNorm1d": ModuleSpec(
        lambda nn: nn.InstanceNorm1d(3, affine=True, track_running_stats=True),
        (2, 3, 4),
        1,
        modal=True,
    ),
    "InstanceNorm2d": ModuleSpec(
        lambda nn: nn.InstanceNorm2d(3, affine=True), (2, 3, 2, 2), 1, modal=True
    ),
    "InstanceNorm3d": ModuleSpec(
        lambda nn: nn.InstanceNorm3d(3, track_running_stats=True), (2, 3, 2, 2, 2), 1, modal=True
    ),
    "Dropout": ModuleSpec(lambda nn: nn.Dropout(0.4), (4, 3), modal=True),
    "Dropout1d": ModuleSpec(lambda nn: nn.Dropout1d(0.4), (2, 3, 4), modal=True),
    "Dropout2d": ModuleSpec(lambda nn: nn.Dropout2d(0.4), (2, 3, 2, 2), modal=True),
    "Dropout3d": ModuleSpec(lambda nn: nn.Dropout3d(0.4), (2, 3, 2, 2, 2), modal=True),
}


def twin_modules(spec: ModuleSpec, draw: Draw) -> tuple[Any, Any]:
    """The module in minireg and in torch (float64), with the same parameters and mode."""
    ours, theirs = spec.make(minireg.nn), spec.make(torch.nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    training = draw(st.booleans()) if spec.modal else True
    ours.train(training)
    theirs.train(training)
    return ours, theirs


for _name, _spec in MODULES.items():
    _kinds = [k for k in ARRAY_KINDS if not (_name == "Identity" and k == "object")]
    # (Identity passes anything through, in both libraries: there is no object tensor to refuse)
    if _spec.feature_axis is not None:
        _kinds.append("wrong_features")

    @case(f"nn.{_name}.forward", _kinds, "module")
    def _forward(kind: str, draw: Draw, spec: ModuleSpec = _spec) -> Trial:
        rng = seeded(draw)
        ours, theirs = twin_modules(spec, draw)
        bad = bad_value(kind, rng.standard_normal(spec.shape), draw, spec.feature_axis)
        return Trial(
            lambda: theirs(bad.theirs()),
            lambda: ours(bad.ours),
            lambda: fingerprint(ours, rng_state()),
        )

    @case(f"nn.{_name}.backward", GRAD_KINDS, "module")
    def _backward(kind: str, draw: Draw, spec: ModuleSpec = _spec) -> Trial:
        rng = seeded(draw)
        ours, theirs = twin_modules(spec, draw)
        x = rng.standard_normal(spec.shape)
        output = ours(x)
        theirs_output = theirs(torch.from_numpy(x.copy()).requires_grad_())
        bad = bad_grad(kind, output.shape, draw, rng)
        return Trial(
            lambda: theirs_output.backward(bad.theirs()),
            lambda: ours.backward(bad.ours),
            lambda: fingerprint(ours, rng_state()),
        )


# ---------------------------------------------------------------------------- losses
@dataclass(frozen=True)
class LossSpec:
    name: str
    target: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


LOSSES = [
    LossSpec("MSELoss", lambda rng, shape: rng.standard_normal(shape)),
    LossSpec("L1Loss", lambda rng, shape: rng.standard_normal(shape)),
    LossSpec("CrossEntropyLoss", lambda rng, shape: rng.integers(0, shape[1], shape[:1])),
    LossSpec("BCEWithLogitsLoss", lambda rng, shape: rng.random(shape)),
]
LOSS_KINDS = [f"input_{k}" for k in [*ARRAY_KINDS, "wrong_shape"]] + [
    f"target_{k}" for k in ["bool", "complex", "object", "list", "none", "wrong_shape"]
]


def _wrong_batch(array: np.ndarray, draw: Draw) -> np.ndarray:
    rows = draw(st.integers(1, 6).filter(lambda n: n != array.shape[0]))
    return np.resize(array, (rows, *array.shape[1:]))


for _loss in LOSSES:

    @case(f"nn.{_loss.name}.forward", LOSS_KINDS, "loss")
    def _loss_forward(kind: str, draw: Draw, spec: LossSpec = _loss) -> Trial:
        rng = seeded(draw)
        reduction = draw(st.sampled_from(["none", "mean", "sum"]))
        ours = getattr(minireg.nn, spec.name)(reduction=reduction)
        theirs = getattr(torch.nn, spec.name)(reduction=reduction)
        shape = (4, 3)
        x, y = rng.standard_normal(shape), spec.target(rng, shape)
        which, bad_kind = kind.split("_", 1)
        if bad_kind == "wrong_shape":
            value = _wrong_batch(x if which == "input" else y, draw)
            bad = Bad(value, _torch_of(value))
        else:
            bad = bad_value(bad_kind, x if which == "input" else y.astype(np.float64), draw)
        if which == "input":
            return Trial(
                lambda: theirs(bad.theirs(), torch.from_numpy(y.copy())),
                lambda: ours(bad.ours, y),
                lambda: fingerprint(ours),
            )
        return Trial(
            lambda: theirs(torch.from_numpy(x.copy()), bad.theirs()),
            lambda: ours(x, bad.ours),
            lambda: fingerprint(ours),
        )

    @case(f"nn.{_loss.name}.backward", [k for k in GRAD_KINDS if k != "none"], "loss")
    def _loss_backward(kind: str, draw: Draw, spec: LossSpec = _loss) -> Trial:
        # (grad_output=None is documented minireg API for every reduction)
        rng = seeded(draw)
        reduction = draw(st.sampled_from(["none", "mean", "sum"]))
        ours = getattr(minireg.nn, spec.name)(reduction=reduction)
        theirs = getattr(torch.nn, spec.name)(reduction=reduction)
        x = rng.standard_normal((4, 3))
        y = spec.target(rng, (4, 3))
        loss = ours(x, y)
        theirs_loss = theirs(
            torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(y.copy())
        )
        bad = bad_grad(kind, loss.shape, draw, rng)
        return Trial(
            lambda: theirs_loss.backward(bad.theirs()),
            lambda: ours.backward(bad.ours),
            lambda: fingerprint(ours),
        )


# ---------------------------------------------------------------------------- functional
@dataclass(frozen=True)
class Functional:
    ours: Callable[..., Any]  # (input, *state) -> result
    theirs: Callable[..., Any]
    shape: tuple[int, ...]
    state: Callable[[], tuple[np.ndarray, ...]] = lambda: ()  # fresh minireg state arrays


def _torch_state(state: tuple[np.ndarray, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a.copy()) for a in state)


_W3, _B3 = np.linspace(0.5, 1.5, 3), np.linspace(-0.2, 0.2, 3)
_W = np.random.default_rng(0).standard_normal((4, 3))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy())


FUNCTIONALS: dict[str, Functional] = {
    "batch_norm": Functional(
        lambda x, m, v: MF.batch_norm(x, m, v, _W3, _B3, training=True),
        lambda x, m, v: TF.batch_norm(x, m, v, _t(_W3), _t(_B3), training=True),
        (4, 3),
        lambda: (np.zeros(3), np.ones(3)),
    ),
    "instance_norm": Functional(
        lambda x, m, v: MF.instance_norm(x, m, v, _W3, _B3, use_input_stats=True),
        lambda x, m, v: TF.instance_norm(x, m, v, _t(_W3), _t(_B3), use_input_stats=True),
        (2, 3, 4),
        lambda: (np.zeros(3), np.ones(3)),
    ),
    "layer_norm": Functional(
        lambda x: MF.layer_norm(x, (3,), _W3, _B3),
        lambda x: TF.layer_norm(x, (3,), _t(_W3), _t(_B3)),
        (4, 3),
    ),
    "group_norm": Functional(
        lambda x: MF.group_norm(x, 3, _W3, _B3),
        lambda x: TF.group_norm(x, 3, _t(_W3), _t(_B3)),
        (2, 3, 2),
    ),
    "linear": Functional(lambda x: MF.linear(x, _W), lambda x: TF.linear(x, _t(_W)), (5, 3)),
    "relu": Functional(MF.relu, TF.relu, (4, 3)),
    "leaky_relu": Functional(
        lambda x: MF.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), (4, 3)
    ),
    "sigmoid": Functional(MF.sigmoid, torch.sigmoid, (4, 3)),
    "tanh": Functional(MF.tanh, torch.tanh, (4, 3)),
    "log_softmax": Functional(
        lambda x: MF.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1), (4, 3)
    ),
    "mse_loss": Functional(
        lambda x: MF.mse_loss(x, np.ones((4, 3))),
        lambda x: TF.mse_loss(x, torch.ones(4, 3, dtype=torch.float64)),
        (4, 3),
    ),
    "l1_loss": Functional(
        lambda x: MF.l1_loss(x, np.ones((4, 3))),
        lambda x: TF.l1_loss(x, torch.ones(4, 3, dtype=torch.float64)),
        (4, 3),
    ),
    "cross_entropy": Functional(
        lambda x: MF.cross_entropy(x, np.array([0, 2, 1, 0])),
        lambda x: TF.cross_entropy(x, torch.tensor([0, 2, 1, 0])),
        (4, 3),
    ),
    "binary_cross_entropy_with_logits": Functional(
        lambda x: MF.binary_cross_entropy_with_logits(x, np.full((4, 3), 0.25)),
        lambda x: TF.binary_cross_entropy_with_logits(
            x, torch.full((4, 3), 0.25, dtype=torch.float64)
        ),
        (4, 3),
    ),
    "dropout": Functional(lambda x: MF.dropout(x, 0.4), lambda x: TF.dropout(x, 0.4), (4, 3)),
    "dropout1d": Functional(
        lambda x: MF.dropout1d(x, 0.4), lambda x: TF.dropout1d(x, 0.4), (2, 3, 4)
    ),
    "dropout2d": Functional(
        lambda x: MF.dropout2d(x, 0.4), lambda x: TF.dropout2d(x, 0.4), (2, 3, 2, 2)
    ),
    "dropout3d": Functional(
        lambda x: MF.dropout3d(x, 0.4), lambda x: TF.dropout3d(x, 0.4), (2, 3, 2, 2, 2)
    ),
}

for _name, _fn in FUNCTIONALS.items():

    @case(f"nn.functional.{_name}", ARRAY_KINDS, "functional")
    def _functional(kind: str, draw: Draw, fn: Functional = _fn) -> Trial:
        rng = seeded(draw)
        state = fn.state()
        theirs_state = _torch_state(state)
        bad = bad_value(kind, rng.standard_normal(fn.shape), draw)
        return Trial(
            lambda: fn.theirs(bad.theirs(), *theirs_state),
            lambda: fn.ours(bad.ours, *state),
            lambda: fingerprint(state, rng_state()),
        )


# ---------------------------------------------------------------------------- p outside [0, 1]
DROPOUTS = ["dropout", "dropout1d", "dropout2d", "dropout3d"]
_P_BAD = st.one_of(st.floats(1.0, 10.0, exclude_min=True), st.floats(-10.0, 0.0, exclude_max=True))

for _name in DROPOUTS:

    @case(f"nn.functional.{_name}", ["p_outside_0_1"], "functional")
    def _dropout_p(kind: str, draw: Draw, name: str = _name) -> Trial:
        p = draw(_P_BAD)
        x = seeded(draw).standard_normal(FUNCTIONALS[name].shape)
        return Trial(
            lambda: getattr(TF, name)(torch.from_numpy(x.copy()), p),
            lambda: getattr(MF, name)(x, p),
            lambda: fingerprint(x, rng_state()),
        )


for _name in ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]:

    @case(f"nn.{_name}.__init__", ["p_outside_0_1"], "module")
    def _dropout_init(kind: str, draw: Draw, name: str = _name) -> Trial:
        p = draw(_P_BAD)
        return Trial(
            lambda: getattr(torch.nn, name)(p),
            lambda: getattr(minireg.nn, name)(p),
            lambda: fingerprint(rng_state()),
        )


# ---------------------------------------------------------------------------- sizes
SIZED: dict[str, Callable[[Any, int], Any]] = {
    "Linear": lambda nn, n: nn.Linear(n, 3),
    "BatchNorm1d": lambda nn, n: nn.BatchNorm1d(n),
    "BatchNorm2d": lambda nn, n: nn.BatchNorm2d(n),
    "LayerNorm": lambda nn, n: nn.LayerNorm(n),
    "GroupNorm": lambda nn, n: nn.GroupNorm(1, n),
    "InstanceNorm1d": lambda nn, n: nn.InstanceNorm1d(n, affine=True),
}

for _name, _make in SIZED.items():

    @case(f"nn.{_name}.__init__", ["negative_or_zero_size"], "module")
    def _sized(kind: str, draw: Draw, make: Callable[[Any, int], Any] = _make) -> Trial:
        n = draw(st.integers(-5, 0))
        return Trial(
            lambda: make(torch.nn, n), lambda: make(minireg.nn, n), lambda: fingerprint(rng_state())
        )


@case("nn.GroupNorm.__init__", ["negative_or_zero_groups"], "module")
def _groups(kind: str, draw: Draw) -> Trial:
    groups = draw(st.integers(-3, 0))
    return Trial(
        lambda: torch.nn.GroupNorm(groups, 6),
        lambda: minireg.nn.GroupNorm(groups, 6),
        lambda: fingerprint(rng_state()),
    )


@case(
    "Parameter",
    ["int", "bool", "complex", "object", "nan_inf", "torch_tensor", "list", "none"],
    "module",
)
def _parameter(kind: str, draw: Draw) -> Trial:
    bad = bad_value(kind, seeded(draw).standard_normal((3, 2)), draw)
    return Trial(
        lambda: torch.nn.Parameter(bad.theirs()), lambda: minireg.Parameter(bad.ours), lambda: b""
    )


# ---------------------------------------------------------------------------- init
INITS: dict[str, tuple[Callable[..., Any], tuple[int, ...], dict[str, Any]]] = {
    # name: (call(init_module, tensor, **nan_kwargs), shape, the NaN/inf argument)
    "uniform_": (lambda init, t, **kw: init.uniform_(t, **kw), (4, 3), {"a": None}),
    "normal_": (lambda init, t, **kw: init.normal_(t, **kw), (4, 3), {"std": None}),
    "trunc_normal_": (lambda init, t, **kw: init.trunc_normal_(t, **kw), (4, 3), {"a": None}),
    "constant_": (lambda init, t, val=0.3: init.constant_(t, val), (4, 3), {"val": None}),
    "ones_": (lambda init, t: init.ones_(t), (4, 3), {}),
    "zeros_": (lambda init, t: init.zeros_(t), (4, 3), {}),
    "eye_": (lambda init, t: init.eye_(t), (4, 3), {}),
    "dirac_": (lambda init, t: init.dirac_(t), (4, 3, 2), {}),
    "xavier_uniform_": (
        lambda init, t, **kw: init.xavier_uniform_(t, **kw),
        (4, 3),
        {"gain": None},
    ),
    "xavier_normal_": (lambda init, t, **kw: init.xavier_normal_(t, **kw), (4, 3), {"gain": None}),
    "kaiming_uniform_": (lambda init, t, **kw: init.kaiming_uniform_(t, **kw), (4, 3), {"a": None}),
    "kaiming_normal_": (lambda init, t, **kw: init.kaiming_normal_(t, **kw), (4, 3), {"a": None}),
    "orthogonal_": (lambda init, t, **kw: init.orthogonal_(t, **kw), (4, 3), {"gain": None}),
    "sparse_": (lambda init, t, **kw: init.sparse_(t, 0.5, **kw), (4, 3), {"std": None}),
    "calculate_fan_in_and_fan_out": (lambda init, t: _fan(init, t), (4, 3), {}),
}


def _fan(init: Any, tensor: Any) -> Any:
    if init is torch.nn.init:
        return init._calculate_fan_in_and_fan_out(tensor)
    return init.calculate_fan_in_and_fan_out(tensor)


INIT_KINDS = ["int", "bool", "complex", "wrong_rank", "torch_tensor", "list", "none"]

for _name, (_call, _shape, _nan_arg) in INITS.items():
    _kinds = INIT_KINDS + (["nan_inf"] if _nan_arg else [])

    @case(f"nn.init.{_name}", _kinds, "init")
    def _init(kind: str, draw: Draw, call=_call, shape=_shape, nan_arg=_nan_arg) -> Trial:
        rng = seeded(draw)
        good = rng.standard_normal(shape)
        if kind == "nan_inf":
            kwargs = {key: draw(st.sampled_from(SPECIALS)) for key in nan_arg}
            array = good.copy()
            return Trial(
                lambda: call(torch.nn.init, torch.from_numpy(good.copy()), **kwargs),
                lambda: call(minireg.nn.init, array, **kwargs),
                lambda: fingerprint(array, rng_state()),
            )
        bad = bad_value(kind, good, draw)
        return Trial(
            lambda: call(torch.nn.init, bad.theirs()),
            lambda: call(minireg.nn.init, bad.ours),
            lambda: fingerprint(bad.ours, rng_state()),
        )


@case("nn.init.calculate_gain", ["unknown_name", "nan_inf", "none", "list"], "init")
def _gain(kind: str, draw: Draw) -> Trial:
    args: tuple[Any, ...]
    if kind == "unknown_name":
        args = (draw(st.sampled_from(["relu6", "gelu", "Tanh", ""])),)
    elif kind == "nan_inf":
        args = ("leaky_relu", draw(st.sampled_from(SPECIALS)))
    elif kind == "none":
        args = (None,)
    else:
        args = (["relu"],)
    return Trial(
        lambda: torch.nn.init.calculate_gain(*args),
        lambda: minireg.nn.init.calculate_gain(*args),
        lambda: b"",
    )


# ---------------------------------------------------------------------------- clipping
def twin_grads(draw: Draw) -> tuple[list[minireg.Parameter], list[torch.nn.Parameter]]:
    rng = seeded(draw)
    shapes = [(3, 2), (4,), ()]
    ours = [minireg.Parameter(np.asarray(rng.standard_normal(s))) for s in shapes]
    theirs = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in ours]
    for p, q in zip(ours, theirs, strict=True):
        p.grad = np.asarray(rng.standard_normal(p.shape) * 3)
        q.grad = torch.from_numpy(p.grad.copy())
    return ours, theirs


CLIPS: dict[str, Callable[[Any, Any], Any]] = {
    "clip_grad_norm_": lambda utils, params, **kw: utils.clip_grad_norm_(params, 1.0, **kw),
    "clip_grad_value_": lambda utils, params, **kw: utils.clip_grad_value_(params, 0.5),
    "get_total_norm": lambda utils, params, **kw: utils.get_total_norm(
        [p.grad for p in params] if isinstance(params, list) else params, **kw
    ),
    "clip_grads_with_norm_": lambda utils, params, **kw: utils.clip_grads_with_norm_(
        params, 1.0, _total(utils)
    ),
}


def _total(utils: Any) -> Any:
    return torch.tensor(4.0, dtype=torch.float64) if utils is torch.nn.utils else np.array(4.0)


for _name, _clip in CLIPS.items():

    @case(
        f"nn.utils.{_name}",
        ["nan_inf", "none", "torch_tensor", "negative_or_zero_norm_type"],
        "clip",
    )
    def _clip_case(kind: str, draw: Draw, clip=_clip, name: str = _name) -> Trial:
        ours, theirs = twin_grads(draw)
        kwargs: dict[str, Any] = {}
        if kind == "nan_inf":
            special = draw(st.sampled_from(SPECIALS))
            ours[0].grad.reshape(-1)[0] = special
            theirs[0].grad.view(-1)[0] = special
            if name in ("clip_grad_norm_", "get_total_norm"):
                kwargs["error_if_nonfinite"] = draw(st.booleans())
        elif kind == "negative_or_zero_norm_type" and name in ("clip_grad_norm_", "get_total_norm"):
            kwargs["norm_type"] = draw(st.sampled_from([0.0, -1.0, -2.5, float("-inf")]))
        ours_arg: Any = ours
        theirs_arg: Any = theirs
        if kind == "none":
            ours_arg = theirs_arg = None
        elif kind == "torch_tensor":
            ours_arg = theirs
            theirs = [torch.nn.Parameter(q.detach().clone()) for q in theirs]
            for q, p in zip(theirs, ours_arg, strict=True):
                q.grad = p.grad.clone()
            theirs_arg = theirs
        return Trial(
            lambda: clip(torch.nn.utils, theirs_arg, **kwargs),
            lambda: clip(minireg.nn.utils, ours_arg, **kwargs),
            lambda: fingerprint(ours, ours_arg if kind == "torch_tensor" else None),
        )


# ---------------------------------------------------------------------------- optimizers
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "RMSprop", "NAdam", "RAdam"]
OPTIMIZER_KINDS = [
    "lr_array", "lr_negative", "lr_nan", "lr_list", "lr_none",
    "params_torch_tensor", "params_empty", "params_none", "closure_raises",
    "grad_int", "grad_wrong_shape", "grad_nan_inf",
    "state_dict_wrong_groups", "state_dict_of_torch",
]  # fmt: skip


class ClosureFailed(Exception):
    """What the drawn closure raises."""


def _optimizer_lr(kind: str, draw: Draw) -> Any:
    if kind == "lr_array":
        return np.full(draw(st.sampled_from([(2,), (0,), (2, 1)])), 1e-3)
    if kind == "lr_negative":
        return -draw(st.floats(1e-6, 10.0))
    if kind == "lr_nan":
        return float("nan")
    if kind == "lr_list":
        return [1e-3]
    if kind == "lr_none":
        return None
    return 1e-2


for _name in OPTIMIZERS:

    @case(f"optim.{_name}", OPTIMIZER_KINDS, "optim")
    def _optimizer(kind: str, draw: Draw, name: str = _name) -> Trial:
        ours_cls, theirs_cls = getattr(minireg.optim, name), getattr(torch.optim, name)
        ours_params, theirs_params = twin_grads(draw)
        if kind.startswith("lr_"):
            lr = _optimizer_lr(kind, draw)
            theirs_lr = torch.from_numpy(lr) if isinstance(lr, np.ndarray) else lr
            return Trial(
                lambda: theirs_cls(theirs_params, lr=theirs_lr),
                lambda: ours_cls(ours_params, lr=lr),
                lambda: fingerprint(ours_params),
            )
        if kind.startswith("params_"):
            ours_arg: Any = {
                "params_torch_tensor": theirs_params,
                "params_empty": [],
                "params_none": None,
            }[kind]
            theirs_arg: Any = {
                "params_torch_tensor": theirs_params,
                "params_empty": [],
                "params_none": None,
            }[kind]
            return Trial(
                lambda: theirs_cls(theirs_arg),
                lambda: ours_cls(ours_arg),
                lambda: fingerprint(ours_params),
            )
        ours, theirs = ours_cls(ours_params, lr=1e-2), theirs_cls(theirs_params, lr=1e-2)
        for _ in range(draw(st.integers(0, 2))):  # with state, or before the first step
            ours.step()
            theirs.step()
        state = lambda: fingerprint(ours, ours_params)  # noqa: E731
        if kind == "closure_raises":

            def closure() -> float:
                raise ClosureFailed("the closure failed")

            return Trial(lambda: theirs.step(closure), lambda: ours.step(closure), state)
        if kind in ("grad_int", "grad_wrong_shape", "grad_nan_inf"):
            rng = seeded(draw)
            index = draw(st.integers(0, len(ours_params) - 1))
            shape = ours_params[index].shape
            if kind == "grad_int":
                grad = np.asarray(np.round(rng.standard_normal(shape) * 3)).astype(
                    draw(st.sampled_from(INT_DTYPES))
                )
            elif kind == "grad_wrong_shape":
                grad = np.asarray(rng.standard_normal(shape + (2,)))
            else:
                grad = np.asarray(rng.standard_normal(shape))
                grad.reshape(-1)[0] = draw(st.sampled_from(SPECIALS))

            def theirs_call() -> None:
                theirs_params[index].grad = torch.from_numpy(grad.copy())  # torch checks here
                theirs.step()

            def ours_call() -> None:
                ours_params[index].grad = grad.copy()  # minireg checks in step()
                ours.step()

            def ours_state() -> bytes:  # (the gradient the call itself sets is not state)
                return fingerprint(ours, [p.data for p in ours_params])

            return Trial(theirs_call, ours_call, ours_state)
        saved = theirs.state_dict()
        if kind == "state_dict_wrong_groups":
            saved = {**saved, "param_groups": saved["param_groups"] * 2}
        return Trial(
            lambda: theirs.load_state_dict(saved), lambda: ours.load_state_dict(saved), state
        )


# ---------------------------------------------------------------------------- schedulers
@dataclass(frozen=True)
class SchedulerSpec:
    # (lr_scheduler module, optimizer, children) -> scheduler; children: two schedulers made
    # on the optimizer before the call, for SequentialLR and ChainedScheduler (else unused)
    make: Callable[[Any, Any, list[Any]], Any]
    size: Callable[[Any, Any, list[Any], int], Any] | None = None  # ... with a bad size
    nan: Callable[[Any, Any, list[Any], float], Any] | None = None  # ... with a NaN/inf argument
    children: bool = False


SCHEDULERS: dict[str, SchedulerSpec] = {
    "LambdaLR": SchedulerSpec(lambda s, o, c: s.LambdaLR(o, lambda e: 0.9**e)),
    "MultiplicativeLR": SchedulerSpec(lambda s, o, c: s.MultiplicativeLR(o, lambda e: 0.9)),
    "StepLR": SchedulerSpec(
        lambda s, o, c: s.StepLR(o, 2),
        lambda s, o, c, n: s.StepLR(o, n),
        lambda s, o, c, x: s.StepLR(o, 2, gamma=x),
    ),
    "MultiStepLR": SchedulerSpec(
        lambda s, o, c: s.MultiStepLR(o, [2, 4]),
        lambda s, o, c, n: s.MultiStepLR(o, [n, 4]),
        lambda s, o, c, x: s.MultiStepLR(o, [2], gamma=x),
    ),
    "ConstantLR": SchedulerSpec(
        lambda s, o, c: s.ConstantLR(o),
        lambda s, o, c, n: s.ConstantLR(o, total_iters=n),
        lambda s, o, c, x: s.ConstantLR(o, factor=x),
    ),
    "LinearLR": SchedulerSpec(
        lambda s, o, c: s.LinearLR(o),
        lambda s, o, c, n: s.LinearLR(o, total_iters=n),
        lambda s, o, c, x: s.LinearLR(o, start_factor=x),
    ),
    "ExponentialLR": SchedulerSpec(
        lambda s, o, c: s.ExponentialLR(o, 0.9), None, lambda s, o, c, x: s.ExponentialLR(o, x)
    ),
    "PolynomialLR": SchedulerSpec(
        lambda s, o, c: s.PolynomialLR(o),
        lambda s, o, c, n: s.PolynomialLR(o, total_iters=n),
        lambda s, o, c, x: s.PolynomialLR(o, power=x),
    ),
    "CosineAnnealingLR": SchedulerSpec(
        lambda s, o, c: s.CosineAnnealingLR(o, 5),
        lambda s, o, c, n: s.CosineAnnealingLR(o, n),
        lambda s, o, c, x: s.CosineAnnealingLR(o, 5, eta_min=x),
    ),
    "CosineAnnealingWarmRestarts": SchedulerSpec(
        lambda s, o, c: s.CosineAnnealingWarmRestarts(o, 3),
        lambda s, o, c, n: s.CosineAnnealingWarmRestarts(o, n),
        lambda s, o, c, x: s.CosineAnnealingWarmRestarts(o, 3, eta_min=x),
    ),
    "CyclicLR": SchedulerSpec(
        lambda s, o, c: s.CyclicLR(o, 0.01, 0.1, cycle_momentum=False),
        lambda s, o, c, n: s.CyclicLR(o, 0.01, 0.1, step_size_up=n, cycle_momentum=False),
        lambda s, o, c, x: s.CyclicLR(o, 0.01, x, cycle_momentum=False),
    ),
    "OneCycleLR": SchedulerSpec(
        lambda s, o, c: s.OneCycleLR(o, 0.1, total_steps=10),
        lambda s, o, c, n: s.OneCycleLR(o, 0.1, total_steps=n),
        lambda s, o, c, x: s.OneCycleLR(o, x, total_steps=10),
    ),
    "SequentialLR": SchedulerSpec(
        lambda s, o, c: s.SequentialLR(o, c, [2]),
        lambda s, o, c, n: s.SequentialLR(o, c, [n, 3]),
        children=True,
    ),
    "ChainedScheduler": SchedulerSpec(lambda s, o, c: s.ChainedScheduler(c, o), children=True),
    "ReduceLROnPlateau": SchedulerSpec(
        lambda s, o, c: s.ReduceLROnPlateau(o),
        lambda s, o, c, n: s.ReduceLROnPlateau(o, patience=n),
        lambda s, o, c, x: s.ReduceLROnPlateau(o, factor=x),
    ),
}


def twin_optimizers(draw: Draw) -> tuple[Any, Any, list[minireg.Parameter]]:
    ours_params, theirs_params = twin_grads(draw)
    ours = minireg.optim.SGD(ours_params, lr=0.1, momentum=0.9)
    return ours, torch.optim.SGD(theirs_params, lr=0.1, momentum=0.9), ours_params


for _name, _sched in SCHEDULERS.items():
    _kinds = ["optimizer_none", "optimizer_list"]
    _kinds += ["lambda_raises"] if _name in ("LambdaLR", "MultiplicativeLR") else []
    _kinds += ["negative_or_zero_size"] if _sched.size else []
    _kinds += ["nan_inf"] if _sched.nan else []
    _kinds += ["step_bad_metric"] if _name == "ReduceLROnPlateau" else []

    @case(f"optim.lr_scheduler.{_name}", _kinds, "scheduler")
    def _scheduler(kind: str, draw: Draw, spec: SchedulerSpec = _sched, name: str = _name) -> Trial:
        ours_opt, theirs_opt, params = twin_optimizers(draw)
        ours_s, theirs_s = minireg.optim.lr_scheduler, torch.optim.lr_scheduler
        ours_kids = _children_of(ours_s, ours_opt) if spec.children else []
        theirs_kids = _children_of(theirs_s, theirs_opt) if spec.children else []
        state = lambda: fingerprint(ours_opt, params, ours_kids)  # noqa: E731
        if kind in ("optimizer_none", "optimizer_list"):
            ours_arg = None if kind == "optimizer_none" else [ours_opt]
            theirs_arg = None if kind == "optimizer_none" else [theirs_opt]
            if name == "ChainedScheduler" and kind == "optimizer_none":  # its optimizer is optional
                ours_kids_arg, theirs_kids_arg = None, None
                return Trial(
                    lambda: theirs_s.ChainedScheduler(theirs_kids_arg),
                    lambda: ours_s.ChainedScheduler(ours_kids_arg),
                    state,
                )
            return Trial(
                lambda: spec.make(theirs_s, theirs_arg, theirs_kids),
                lambda: spec.make(ours_s, ours_arg, ours_kids),
                state,
            )
        if kind == "lambda_raises":

            def failing(epoch: int) -> float:
                raise ClosureFailed("lr_lambda failed")

            return Trial(
                lambda: getattr(theirs_s, name)(theirs_opt, failing),
                lambda: getattr(ours_s, name)(ours_opt, failing),
                state,
            )
        if kind == "negative_or_zero_size":
            assert spec.size is not None
            n = draw(st.integers(-3, 0))
            return Trial(
                lambda: spec.size(theirs_s, theirs_opt, theirs_kids, n),
                lambda: spec.size(ours_s, ours_opt, ours_kids, n),
                state,
            )
        if kind == "nan_inf":
            assert spec.nan is not None
            x = draw(st.sampled_from(SPECIALS))
            return Trial(
                lambda: spec.nan(theirs_s, theirs_opt, theirs_kids, x),
                lambda: spec.nan(ours_s, ours_opt, ours_kids, x),
                state,
            )
        # step_bad_metric: ReduceLROnPlateau.step(metrics)
        ours_sched, theirs_sched = (
            spec.make(ours_s, ours_opt, []),
            spec.make(theirs_s, theirs_opt, []),
        )
        metric = draw(st.sampled_from(["none", "list", "nan_inf", "torch_tensor", "array2"]))
        value: Any = {
            "none": None, "list": [0.5], "nan_inf": draw(st.sampled_from(SPECIALS)),
            "torch_tensor": torch.tensor(0.5), "array2": np.array([0.5, 0.4]),
        }[metric]  # fmt: skip
        theirs_value = torch.from_numpy(value) if isinstance(value, np.ndarray) else value
        return Trial(
            lambda: theirs_sched.step(theirs_value),
            lambda: ours_sched.step(value),
            lambda: fingerprint(ours_opt, params, ours_sched),
        )


def _children_of(s: Any, o: Any) -> list[Any]:
    """Two chainable schedulers on ``o``, made before the call under test (not by it)."""
    return [s.ConstantLR(o, total_iters=2), s.ExponentialLR(o, 0.9)]


# ============================================================================ the test
COUNTS: collections.Counter[str] = collections.Counter()
TORCH_REJECTED: set[str] = set()


def _allowed_difference(
    case: Case, theirs: tuple[type, str] | None, ours: tuple[type, str] | None
) -> str | None:
    """Why minireg may differ from torch here (README, "Deliberate differences"), or None
    where it must do what torch does."""
    if case.kind in ("list", "none", "input_list", "input_none", "target_list", "target_none"):
        if (
            theirs is not None
            and theirs[0] is AttributeError
            and ours is not None
            and ours[0] is TypeError
        ):
            return "torch fails by duck typing (AttributeError); minireg's TypeError names it"
    if (
        "complex" in case.kind
        and theirs is None
        and ours is not None
        and ours[0] is NotImplementedError
    ):
        return "complex tensors are not supported"
    if case.kind in ("torch_tensor", "params_torch_tensor") and case.category in (
        "init",
        "optim",
        "clip",
    ):
        if theirs is None and ours is not None and ours[0] is TypeError:
            return "minireg updates ndarrays and Parameters in place, not torch tensors"
    if case.category == "loss" and case.kind == "list" and ours is None:
        return "a loss's backward takes a plain number as grad_output (minireg's loss API)"
    return None


def _cases(category: str, part: str = "") -> list[Case]:
    return [c for c in CASES if c.category == category and c.component.endswith(part)]


# One test per family of components (hypothesis's derandomized runs grow a chain of
# settings per parametrization, so a single test over all ~950 cases overflows the stack).
# A fifth of the profile's examples per case (ci: 6, thorough: 80): ~950 cases x 6 draws.
_EXAMPLES = settings(max_examples=max(4, settings.default.max_examples // 5))


@pytest.mark.parametrize("case", _cases("module", ".forward"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_module_forward_rejects_like_torch_and_changes_nothing(
    case: Case, data: st.DataObject
) -> None:
    check_case(case, data)


@pytest.mark.parametrize("case", _cases("module", ".backward"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_module_backward_rejects_like_torch_and_changes_nothing(
    case: Case, data: st.DataObject
) -> None:
    check_case(case, data)


@pytest.mark.parametrize(
    "case",
    [c for c in _cases("module") if not c.component.endswith(("forward", "backward"))],
    ids=str,
)
@_EXAMPLES
@given(data=st.data())
def test_constructors_reject_like_torch_and_change_nothing(case: Case, data: st.DataObject) -> None:
    check_case(case, data)


@pytest.mark.parametrize("case", _cases("loss"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_losses_reject_like_torch_and_change_nothing(case: Case, data: st.DataObject) -> None:
    check_case(case, data)


@pytest.mark.parametrize("case", _cases("functional"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_functional_kernels_reject_like_torch_and_change_nothing(
    case: Case, data: st.DataObject
) -> None:
    check_case(case, data)


@pytest.mark.parametrize("case", _cases("init") + _cases("clip"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_init_and_clip_functions_reject_like_torch_and_change_nothing(
    case: Case, data: st.DataObject
) -> None:
    check_case(case, data)


@pytest.mark.parametrize("case", _cases("optim") + _cases("scheduler"), ids=str)
@_EXAMPLES
@given(data=st.data())
def test_optimizers_and_schedulers_reject_like_torch_and_change_nothing(
    case: Case, data: st.DataObject
) -> None:
    check_case(case, data)


def check_case(case: Case, data: st.DataObject) -> None:
    """Run torch's and minireg's call; compare outcomes; on rejection, compare state."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = case.setup(data.draw)
        theirs = outcome(trial.theirs)
        before = trial.state()
        ours = outcome(trial.ours)
        after = trial.state()
    COUNTS["examples"] += 1
    if theirs is not None:
        TORCH_REJECTED.add(str(case))
    if ours is not None:
        COUNTS["minireg rejections"] += 1
        COUNTS["state checks"] += 1
        assert after == before, f"{case}: rejected with {ours}, but state changed"
    same = (theirs is None and ours is None) or (
        theirs is not None and ours is not None and ours[0] is theirs[0]
    )
    if same:
        COUNTS["like torch: both rejected" if ours else "like torch: both accepted"] += 1
        return
    difference = _allowed_difference(case, theirs, ours)
    assert difference is not None, f"{case}: minireg {ours}, torch {theirs}"
    COUNTS[f"deliberate difference: {difference}"] += 1


# The issue's kinds of bad input, and the drawn kinds that are instances of each.
ISSUE_KINDS: dict[str, set[str]] = {
    "integer dtype": {"int", "input_int", "grad_int"},
    "bool dtype": {"bool", "input_bool", "target_bool"},
    "complex dtype": {"complex", "input_complex", "target_complex"},
    "object dtype": {"object", "input_object", "target_object"},
    "wrong rank": {"wrong_rank", "input_wrong_rank"},
    "wrong feature count": {"wrong_features", "input_wrong_shape", "target_wrong_shape"},
    "wrong grad_output shape": {"wrong_shape", "grad_wrong_shape"},
    "NaN/inf": {"nan_inf", "input_nan_inf", "lr_nan", "grad_nan_inf"},
    "torch tensors": {
        "torch_tensor",
        "input_torch_tensor",
        "params_torch_tensor",
        "state_dict_of_torch",
    },
    "lists": {"list", "input_list", "target_list", "lr_list", "optimizer_list"},
    "None": {"none", "input_none", "target_none", "lr_none", "params_none", "optimizer_none"},
    "negative or zero sizes": {
        "negative_or_zero_size",
        "negative_or_zero_groups",
        "negative_or_zero_norm_type",
        "params_empty",
        "lr_negative",
    },  # fmt: skip
    "p outside [0, 1]": {"p_outside_0_1"},
    "a closure that raises": {"closure_raises", "lambda_raises"},
    "other (unknown name, lr array, bad state_dict, bad metric)": {
        "unknown_name",
        "lr_array",
        "state_dict_wrong_groups",
        "step_bad_metric",
    },  # fmt: skip
}


def test_every_drawn_kind_is_one_of_the_issues_kinds() -> None:
    drawn = {c.kind for c in CASES}
    named = set().union(*ISSUE_KINDS.values())
    assert drawn == named, (drawn - named, named - drawn)


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Any:
    yield
    path = os.environ.get("MINIREG_BAD_INPUT_COUNTS")
    if path:
        components = sorted({c.component for c in CASES})
        kinds = sorted({c.kind for c in CASES})
        report = {
            "components": len(components),
            "kinds": len(kinds),
            "cases (component x kind)": len(CASES),
            "cases where torch rejected at least once": len(TORCH_REJECTED),
            "by category": dict(collections.Counter(c.category for c in CASES)),
            "issue kinds": len(ISSUE_KINDS),
            "cases by issue kind": {
                name: sum(c.kind in kinds for c in CASES) for name, kinds in ISSUE_KINDS.items()
            },
            **dict(COUNTS),
        }
        with open(path, "w") as file:
            json.dump(report, file, indent=1)


def test_the_matrix_covers_every_public_component() -> None:
    """Every public Module, loss, optimizer, scheduler, init and clip function is in it."""
    components = {c.component for c in CASES}
    for name in minireg.nn.modules.__all__:
        if name != "Module":
            assert f"nn.{name}.forward" in components, name
    for name in OPTIMIZERS:
        assert name in minireg.optim.__all__
    scheduler_names = {n for n in minireg.optim.lr_scheduler.__all__ if n != "LRScheduler"}
    assert {f"optim.lr_scheduler.{n}" for n in scheduler_names} <= components
    assert {f"nn.init.{n}" for n in minireg.nn.init.__all__} <= components
    assert {
        f"nn.utils.{n}"
        for n in ("clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_")
    } <= components
