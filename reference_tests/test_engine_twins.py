"""The engine's in-place twins give exactly the textbook kernels' results.

``Optimizer.step`` runs an optimizer's textbook kernel (``minireg.optim.adam.adam``, ...)
when the optimizer is built with ``foreach=False``, and otherwise hands the step to the
speed engine, which calls the kernel's in-place twin (``minireg._engine.optim_twins``).
Here every optimizer takes the same steps both ways, from the same start, over its
options, three dtypes and every shape class (0-d, empty, one element, odd sizes,
matrices), with and without NaN, infinities, signed zeros and extreme magnitudes in the
parameter and the gradients; every parameter and state value must agree bit for bit.

NaN's sign and payload are not compared, only where the NaNs are: which NaN operand a
CPU propagates depends on operand order (``a + b`` vs ``b + a``), which neither NumPy nor
torch promises.  Every other value -- signed zeros and infinities included -- is
compared by its bytes.  The blocked and threaded runs of the twins are compared in
``test_blocking.py``, the one-call flat path in ``test_flat.py``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg._engine.optim as engine
import minireg._engine.optim_twins as optim_twins
from reference_tests.test_blocking import OPTIMIZERS

STEPS = 4
shape_classes = st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 5)])
all_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e30, 1e-30]


def same_bits(a: Any, b: Any) -> bool:
    """Same dtype, shape, NaN positions, and bytes everywhere else."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(nan_a, nan_b)) and a[~nan_a].tobytes() == b[~nan_b].tobytes()


def with_specials(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """``values`` with about a third of its elements replaced by special values."""
    with np.errstate(over="ignore", under="ignore"):
        chosen = rng.random(values.shape) < 1 / 3
        specials = np.asarray(rng.choice(SPECIALS, size=values.shape)).astype(values.dtype)
    return np.where(chosen, specials, values)


def trajectory(
    name: str,
    kwargs: dict[str, Any],
    shape: tuple[int, ...],
    dtype: type,
    seed: int,
    special: bool,
    foreach: bool | None,
) -> tuple[minireg.Parameter, dict[str, Any]]:
    rng = np.random.default_rng(seed)

    def draw(scale: float) -> np.ndarray:
        values = np.asarray(scale * rng.standard_normal(shape)).astype(dtype)
        return with_specials(rng, values) if special else values

    param = minireg.Parameter(draw(1.0))
    optimizer = getattr(minireg.optim, name)([param], foreach=foreach, **kwargs)
    with np.errstate(all="ignore"):
        for step in range(STEPS):
            param.grad = draw([1e-3, 1.0, 30.0][step % 3])
            param.grad.flags.writeable = False  # neither path may write into the gradient
            optimizer.step()
    return param, optimizer.state[param]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@given(
    data=st.data(),
    dtype=all_dtypes,
    shape=shape_classes,
    special=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_twin_is_bit_identical_to_the_textbook_kernel(name, data, dtype, shape, special, seed):
    kwargs = data.draw(OPTIMIZERS[name][0], label="kwargs")
    textbook, textbook_state = trajectory(name, kwargs, shape, dtype, seed, special, False)
    twin, twin_state = trajectory(name, kwargs, shape, dtype, seed, special, None)
    assert same_bits(twin.data, textbook.data), "param"
    assert set(twin_state) == set(textbook_state)
    for key in textbook_state:
        assert same_bits(twin_state[key], textbook_state[key]), f"state[{key!r}]"


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("foreach", [False, None])
def test_foreach_switch_picks_the_path(name, foreach, monkeypatch):
    """``foreach=False`` calls the textbook kernel once per parameter and never a twin;
    the default calls the twin and never the textbook kernel."""
    kernel_name = OPTIMIZERS[name][2]
    cls = getattr(minireg.optim, name)
    textbook_calls: list[int] = []
    twin_calls: list[int] = []
    textbook, (twin, scratch) = cls.kernel, optim_twins.TWINS[kernel_name]

    @functools.wraps(textbook)  # its name finds the twin, its signature the hyperparameters
    def textbook_spy(param: np.ndarray, *args: Any, **kwargs: Any) -> None:
        textbook_calls.append(param.size)
        textbook(param, *args, **kwargs)

    def twin_spy(param: np.ndarray, *args: Any, **kwargs: Any) -> None:
        twin_calls.append(param.size)
        twin(param, *args, **kwargs)

    monkeypatch.setattr(cls, "kernel", staticmethod(textbook_spy))
    monkeypatch.setitem(optim_twins.TWINS, kernel_name, (twin_spy, scratch))
    engine.blocked_twin.cache_clear()
    try:
        params = [minireg.Parameter(np.ones(3)), minireg.Parameter(np.ones((2, 2)))]
        optimizer = cls(params, foreach=foreach)
        for _ in range(2):
            for p in params:
                p.grad = np.full(p.shape, 0.5)
            optimizer.step()
    finally:
        engine.blocked_twin.cache_clear()
    if foreach is False:
        assert (textbook_calls, twin_calls) == ([3, 4, 3, 4], [])
    else:
        assert (textbook_calls, twin_calls) == ([], [3, 4, 3, 4])


# ------------------------------------------------------------------------------ minireg.textbook()
NORM_LAYERS = [
    # (module holding the layer, the layer, input shape, [(textbook kernel, twin)] by name)
    (
        "minireg.nn.modules.batchnorm",
        lambda: minireg.nn.BatchNorm1d(3),
        (6, 3),
        [("F.batch_norm_with_statistics", "batch_norm_with_statistics_"),
         ("F.batch_norm_backward", "batch_norm_backward_")],
    ),
    (
        "minireg.nn.modules.instancenorm",
        lambda: minireg.nn.InstanceNorm1d(3, affine=True),
        (2, 3, 5),
        [("F.instance_norm_with_statistics", "instance_norm_with_statistics_"),
         ("F.instance_norm_backward", "instance_norm_backward_")],
    ),
    (
        "minireg.nn.modules.normalization",
        lambda: minireg.nn.LayerNorm(3),
        (4, 3),
        [("layer_norm", "layer_norm_"), ("layer_norm_backward", "layer_norm_backward_")],
    ),
    (
        "minireg.nn.modules.normalization",
        lambda: minireg.nn.GroupNorm(3, 3),
        (4, 3, 2),
        [("group_norm", "group_norm_"), ("group_norm_backward", "group_norm_backward_")],
    ),
]  # fmt: skip


def _spy(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, calls: list[str]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)


@pytest.mark.parametrize(("module_name", "make", "shape", "pairs"), NORM_LAYERS)
def test_textbook_runs_the_norm_layers_through_the_functional_kernels(
    module_name, make, shape, pairs, monkeypatch
):
    """Inside ``minireg.textbook()`` a norm layer calls the textbook kernels and never their
    twins; outside, the twins and never the kernels; both give the same bits."""
    module = importlib.import_module(module_name)
    x = np.linspace(-2, 3, int(np.prod(shape))).reshape(shape) ** 3
    results, calls = [], {True: [], False: []}
    for textbook in (True, False):
        for kernel, twin in pairs:
            owner, name = (module.F, kernel[2:]) if kernel.startswith("F.") else (module, kernel)
            _spy(monkeypatch, owner, name, calls[True])
            _spy(monkeypatch, module, twin, calls[False])
        layer = make()
        with minireg.textbook() if textbook else contextlib.nullcontext():
            y = layer(x)
            grad = layer.backward(np.cos(y))
        results.append((y, grad, [p.grad for p in layer.parameters()]))
        monkeypatch.undo()
        assert calls[not textbook] == [], f"textbook={textbook} called {calls[not textbook]}"
        assert len(calls[textbook]) == 2
        calls = {True: [], False: []}
    (y, grad, grads), (y_twin, grad_twin, grads_twin) = results
    assert same_bits(y, y_twin) and same_bits(grad, grad_twin)
    assert all(same_bits(a, b) for a, b in zip(grads, grads_twin, strict=True))


def test_textbook_steps_optimizers_and_clips_without_the_engine(monkeypatch):
    """Inside ``minireg.textbook()`` an optimizer built with the default ``foreach`` runs
    its textbook kernel, and ``clip_grad_norm_`` its per-gradient loop, even on a flat
    buffer; the engine is never entered."""

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the engine was entered")

    params = [minireg.Parameter(np.linspace(-1, 1, n)) for n in (3, 4, 5)]
    minireg.nn.utils.flatten_parameters(params)
    optimizer = minireg.optim.Adam(params, lr=0.1)
    import minireg._engine.clip as clip_engine

    monkeypatch.setattr(engine, "step_group", forbidden)
    monkeypatch.setattr(engine, "init_group_state", forbidden)
    monkeypatch.setattr(clip_engine, "two_norms", forbidden)
    monkeypatch.setattr(clip_engine, "scale_", forbidden)
    with minireg.textbook():
        for p in params:
            p.grad = np.full(p.shape, 10.0)
        minireg.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        minireg.optim.Adagrad(params)  # makes its state at construction: no engine either
    assert not minireg._engine.in_textbook_mode()
    with pytest.raises(AssertionError, match="engine was entered"):
        optimizer.step()  # outside again: the engine
