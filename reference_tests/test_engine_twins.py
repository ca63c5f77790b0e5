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

import functools
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
    name: str, kwargs: dict[str, Any], shape: tuple[int, ...], dtype: type, seed: int,
    special: bool, foreach: bool | None,
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
