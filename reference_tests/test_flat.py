"""Flat parameter buffers: the one-call optimizer path is bit-identical to the per-parameter one.

:func:`minireg.nn.utils.flatten_parameters` puts a list of Parameters end to end in one
data and one grad buffer; the engine's ``Optimizer.step`` then runs its kernel once
over the whole group (``minireg._engine.optim``).  Each test runs the same steps twice
from the same start -- plain separate arrays (for the main test: the textbook kernels,
``foreach=False``), and flattened -- and every parameter and state entry must agree bit
for bit (dtype, shape and bytes, ``-0.0`` included).  A spy on ``_step_param`` checks
that the flat run really took one call per group and step.  Layouts
that must *not* take the fast path (a missing gradient, a parameter moved out of the
buffer) must fall back and still agree.  No torch here: the per-optimizer modules
compare the per-parameter path with torch.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg._engine.flat as flat
from minireg._engine.clip import sums_of_squares_in_buffer
from minireg._engine.flat import grad_buffer_in_order, whole_grad_buffer
from minireg.nn.utils import clip_grad_norm_, flatten_parameters
from minireg.numerics import sum_of_squares
from minireg.parameter import accumulate_grad
from reference_tests.conftest import dtypes, random_array
from reference_tests.test_blocking import OPTIMIZERS, bits, block_bytes

STEPS = 6
# A few parameter shapes, including a 0-d one and a single element.
param_shapes = st.lists(
    st.sampled_from([(), (1,), (5,), (3, 4), (2, 3, 2), (70,)]), min_size=2, max_size=5
)


@contextlib.contextmanager
def update_calls(optimizer: minireg.optim.Optimizer) -> Iterator[list[int]]:
    """Record the element count of every kernel call (``_step_param``) of ``optimizer``."""
    original = optimizer._step_param
    sizes: list[int] = []

    def spy(param: minireg.Parameter, *args: Any) -> None:
        sizes.append(param.size)
        original(param, *args)

    optimizer._step_param = spy  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        del optimizer._step_param


def grads_for(
    rng: np.random.Generator, shapes: list[tuple[int, ...]], dtype: type, step: int
) -> list[np.ndarray]:
    grads = [random_array(rng, s, dtype, scale=[1e-3, 1.0, 30.0][step % 3]) for s in shapes]
    grads[0].flat[:1] = [-0.0]  # signed zeros must come through bit for bit
    return grads


def run(
    name: str,
    kwargs: dict[str, Any],
    shapes: list[tuple[int, ...]],
    dtype: type,
    seed: int,
    flat: bool,
    missing: set[int] = frozenset(),  # type: ignore[assignment]
    foreach: bool | None = None,
) -> tuple[list[minireg.Parameter], minireg.optim.Optimizer, list[int]]:
    """``STEPS`` steps on one group of parameters; ``missing``: steps where param 0 has no
    grad; ``foreach=False``: the textbook kernels, one parameter at a time."""
    rng = np.random.default_rng(seed)
    params = [minireg.Parameter(random_array(rng, s, dtype)) for s in shapes]
    if flat:
        flatten_parameters(params)
    optimizer = getattr(minireg.optim, name)(params, foreach=foreach, **kwargs)
    with update_calls(optimizer) as calls:
        for step in range(STEPS):
            optimizer.zero_grad()  # set_to_none: a flat grad must come back into its slot
            for index, (p, g) in enumerate(
                zip(params, grads_for(rng, shapes, dtype, step), strict=True)
            ):
                if not (index == 0 and step in missing):
                    accumulate_grad(p, g)
            optimizer.step()
    return params, optimizer, calls


def assert_same(params, optimizer, expected_params, expected_optimizer) -> None:
    for index, (p, q) in enumerate(zip(params, expected_params, strict=True)):
        assert bits(p.data) == bits(q.data), f"param {index}"
        state, expected = optimizer.state[p], expected_optimizer.state[q]
        assert set(state) == set(expected), f"state keys of param {index}"
        for key in state:
            assert bits(state[key]) == bits(expected[key]), f"state[{key!r}] of param {index}"


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@given(data=st.data(), dtype=dtypes, shapes=param_shapes, seed=st.integers(0, 2**31))
def test_flat_steps_are_bit_identical_and_take_one_call(name, data, dtype, shapes, seed):
    kwargs = data.draw(OPTIMIZERS[name][0], label="kwargs")
    params, optimizer, calls = run(name, kwargs, shapes, dtype, seed, flat=True)
    expected_params, expected_optimizer, _ = run(
        name, kwargs, shapes, dtype, seed, flat=False, foreach=False
    )  # the textbook kernels, one parameter at a time
    assert_same(params, optimizer, expected_params, expected_optimizer)
    total = sum(int(np.prod(s)) for s in shapes)
    assert calls == [total] * STEPS, "the flat path was not taken"
    # The state the flat path made is itself flat (views of one buffer per entry) ...
    for key, value in optimizer.state[params[0]].items():
        if isinstance(value, np.ndarray) and key not in optimizer.scalar_state:
            assert value.base is not None, f"state[{key!r}] is not a view of a flat buffer"
    # ... and each parameter still has its own step counter, not a shared one.
    if "step" in optimizer.state[params[0]]:
        assert optimizer.state[params[0]]["step"] is not optimizer.state[params[1]]["step"]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@given(data=st.data(), dtype=dtypes, shapes=param_shapes, seed=st.integers(0, 2**31))
def test_missing_gradient_falls_back_and_agrees(name, data, dtype, shapes, seed):
    """Param 0 has no gradient on steps 0 and 3: torch skips it (no state on step 0, its
    step counter falls behind on step 3), so the group cannot be stepped as one."""
    kwargs = data.draw(OPTIMIZERS[name][0], label="kwargs")
    missing = {0, 3}
    params, optimizer, calls = run(name, kwargs, shapes, dtype, seed, flat=True, missing=missing)
    expected_params, expected_optimizer, _ = run(name, kwargs, shapes, dtype, seed, False, missing)
    assert_same(params, optimizer, expected_params, expected_optimizer)
    total = sum(int(np.prod(s)) for s in shapes)
    if optimizer.state[params[1]]:  # stateless plain SGD may rightly go flat on full steps
        assert total not in calls, "a group with unequal steps was stepped as one"


def test_moving_a_parameter_out_of_the_buffer_falls_back():
    rng = np.random.default_rng(0)
    shapes = [(4,), (3, 2), (5,)]
    runs = []
    for flattened in (True, False):
        rng = np.random.default_rng(0)
        params = [minireg.Parameter(rng.standard_normal(s)) for s in shapes]
        if flattened:
            flatten_parameters(params)
        optimizer = minireg.optim.Adam(params, lr=0.1)
        with update_calls(optimizer) as calls:
            for step in range(4):
                for p in params:
                    p.grad = None
                    accumulate_grad(p, rng.standard_normal(p.shape))
                if step == 2:
                    params[1].data = params[1].data.copy()  # no longer a view of the buffer
                optimizer.step()
        runs.append((params, optimizer, calls))
    (params, optimizer, calls), (expected_params, expected_optimizer, _) = runs
    assert calls == [15, 15, 4, 6, 5, 4, 6, 5]
    assert_same(params, optimizer, expected_params, expected_optimizer)


def test_flatten_parameters_keeps_values_and_makes_views():
    rng = np.random.default_rng(1)
    a = minireg.Parameter(rng.standard_normal((2, 3)).astype(np.float32))
    b = minireg.Parameter(rng.standard_normal(4).astype(np.float32))
    a.grad = rng.standard_normal((2, 3)).astype(np.float32)
    values, grad_values = [a.data.copy(), b.data.copy()], a.grad.copy()
    data, grad = flatten_parameters([a, b])
    assert data.dtype == grad.dtype == np.float32 and data.shape == grad.shape == (10,)
    assert np.array_equal(a.data, values[0]) and np.array_equal(b.data, values[1])
    assert np.array_equal(a.grad, grad_values) and b.grad is None
    assert np.shares_memory(a.data, data) and np.shares_memory(b.data, data)
    data[...] = 7.0
    assert (a.data == 7.0).all() and (b.data == 7.0).all()
    accumulate_grad(b, np.ones(4))  # lands in the buffer, rounded to float32
    assert b.grad.dtype == np.float32 and np.shares_memory(b.grad, grad) and (grad[6:] == 1).all()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "empty"),
        ("twice", "more than once"),
        ("mixed", "one dtype, got float32, float64"),
    ],
)
def test_flatten_parameters_rejects(params, message):
    p = minireg.Parameter(np.zeros(3, dtype=np.float32))
    if params == "twice":
        params = [p, p]
    elif params == "mixed":
        params = [p, minireg.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match=message):
        flatten_parameters(params)


def test_module_flat_training_matches_plain_and_survives_copies():
    """A small MLP trained 20 steps with flat and with plain parameters: the same bits."""
    results = []
    for flattened in (True, False):
        minireg.manual_seed(3)
        model = minireg.nn.Sequential(
            minireg.nn.Linear(5, 8), minireg.nn.ReLU(), minireg.nn.Linear(8, 2)
        )
        if flattened:
            data, _ = model.flatten_parameters()
            assert data.size == sum(p.size for p in model.parameters())
        optimizer = minireg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss_fn = minireg.nn.MSELoss()
        rng = np.random.default_rng(0)
        with update_calls(optimizer) as calls:
            for _ in range(20):
                x, y = rng.standard_normal((16, 5)), rng.standard_normal((16, 2))
                optimizer.zero_grad()
                loss_fn(model(x), y)
                model.backward(loss_fn.backward())
                minireg.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
                optimizer.step()
        assert calls == ([66] * 20 if flattened else [40, 8, 16, 2] * 20)
        # pickling and deep copies keep working (the layout cache is not carried along)
        clone = pickle.loads(pickle.dumps(optimizer))
        assert (
            copy.deepcopy(optimizer).state_dict()["param_groups"]
            == clone.state_dict()["param_groups"]
        )
        results.append([p.data.copy() for p in model.parameters()])
    for p, q in zip(*results, strict=True):
        assert bits(p) == bits(q)


def test_adagrad_state_made_at_construction_is_flat():
    params = [minireg.Parameter(np.ones(3)), minireg.Parameter(np.ones((2, 2)))]
    flatten_parameters(params)
    optimizer = minireg.optim.Adagrad(params, initial_accumulator_value=0.5)
    sums = [optimizer.state[p]["sum"] for p in params]
    assert sums[0].base is sums[1].base is not None
    assert [s.shape for s in sums] == [(3,), (2, 2)] and all((s == 0.5).all() for s in sums)


def test_to_dtype_takes_parameters_out_of_the_buffer():
    model = minireg.nn.Linear(3, 2)
    model.flatten_parameters()
    model.to(np.float32)
    accumulate_grad(model.weight, np.ones((2, 3)))
    assert model.weight.grad.dtype == np.float32 and model.weight.grad.base is None


# ------------------------------------------------------------------------------ clipping
@pytest.mark.parametrize("blocks", ["default", "tiny, 2 threads"])
@pytest.mark.parametrize("order", ["as flattened", "reversed"])
@given(
    dtype=dtypes,
    shapes=param_shapes,
    seed=st.integers(0, 2**31),
    max_norm=st.sampled_from([0.1, 1.0, 1e6]),
)
def test_clip_on_flat_grads_is_bit_identical(order, blocks, dtype, shapes, seed, max_norm):
    """In the buffer's order the norms are taken over the buffer (runs of equal sizes in
    one vecdot); in another order per gradient.  Either way: the plain path's bits.  With
    tiny blocks the (70,) gradients are longer than a block and the row dots are threaded."""
    results = []
    for flattened in (True, False):
        rng = np.random.default_rng(seed)
        params = [minireg.Parameter(random_array(rng, s, dtype)) for s in shapes]
        for p in params:
            p.grad = random_array(rng, p.shape, dtype, scale=10.0)
        if flattened:
            flatten_parameters(params)
        clipped = params if order == "as flattened" else params[::-1]
        with block_bytes(64, threads=2) if blocks != "default" else contextlib.nullcontext():
            norm = clip_grad_norm_(clipped, max_norm)
        results.append((norm, [p.grad.copy() for p in params]))
    (norm, grads), (expected_norm, expected_grads) = results
    assert bits(norm) == bits(expected_norm)
    for g, e in zip(grads, expected_grads, strict=True):
        assert bits(g) == bits(e)


@pytest.mark.parametrize("threads", [1, 3])
@given(
    dtype=dtypes,
    sizes=st.lists(st.sampled_from([0, 1, 7, 16, 17, 40]), min_size=1, max_size=12),
    seed=st.integers(0, 2**31),
)
def test_sums_of_squares_in_buffer_are_those_of_each_slice(threads, dtype, sizes, seed):
    """Runs of equal sizes up to a block (16 elements here) go through one vecdot, longer
    slices through sum_of_squares' blocks: the same float64 numbers as slice by slice."""
    rng = np.random.default_rng(seed)
    buffer = random_array(rng, (sum(sizes),), dtype, scale=30.0)
    with block_bytes(16 * np.dtype(dtype).itemsize, threads=threads):
        sums = sums_of_squares_in_buffer(buffer, sizes)
        starts = np.cumsum([0, *sizes])
        expected = [
            sum_of_squares(buffer[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
    assert sums.dtype == np.float64
    assert sums.tolist() == expected


def grads(params: list[minireg.Parameter]) -> list[np.ndarray]:
    return [p.grad for p in params]


def test_grad_buffer_in_order_only_for_the_buffer_order():
    params = [minireg.Parameter(np.ones(n, dtype=np.float32)) for n in (3, 4, 5)]
    for p in params:
        p.grad = np.full(p.shape, 2.0, dtype=np.float32)
    _, grad = flatten_parameters(params)
    buffer, sizes = grad_buffer_in_order(grads(params))
    assert buffer is grad and sizes == [3, 4, 5]
    assert grad_buffer_in_order(grads(params[::-1])) is None  # all of it, but not in order
    assert grad_buffer_in_order(grads(params[:2])) is None  # in order, but not all of it
    params[1].grad = params[1].grad.copy()  # out of the buffer
    assert grad_buffer_in_order(grads(params)) is None


# ------------------------------------------------------------------------------ memory
def step_peak(n: int) -> int:
    """Peak bytes allocated during the second Adam step on one float32 parameter of n."""
    rng = np.random.default_rng(0)
    param = minireg.Parameter(rng.standard_normal(n, dtype=np.float32))
    param.grad = rng.standard_normal(n, dtype=np.float32)
    optimizer = minireg.optim.Adam([param], lr=1e-3)
    optimizer.step()  # the first step makes the state
    tracemalloc.start()
    try:
        optimizer.step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_adam_step_allocates_no_memory_proportional_to_the_parameter():
    """Issue 5: scratch is bounded by the block size, so the peak is the same for 1e6 and
    4e6 elements and far below 20 % of params + grads + state (1.2x in total)."""
    small, large = step_peak(10**6), step_peak(4 * 10**6)
    assert large <= 0.2 * 4 * (4 * 10**6 * 4), large
    assert large <= small + 64 * 1024, (small, large)


def test_whole_grad_buffer_only_for_exactly_all_of_one_buffer():
    params = [minireg.Parameter(np.ones(n, dtype=np.float32)) for n in (3, 4, 5)]
    for p in params:
        p.grad = np.full(p.shape, 2.0, dtype=np.float32)
    _, grad = flatten_parameters(params)
    assert whole_grad_buffer(grads(params)) is grad
    assert whole_grad_buffer(grads(params[::-1])) is grad  # order does not matter for a scaling
    assert whole_grad_buffer(grads(params[:2])) is None  # a subset: the rest must stay untouched
    assert whole_grad_buffer(grads([params[0], params[0], params[1], params[2]])) is None
    assert whole_grad_buffer(grads([params[1]] * 3)) is None  # 3 x 4 elements, not all of it
    params[1].grad = params[1].grad.copy()  # moved out of the buffer
    assert whole_grad_buffer(grads(params)) is None

    params[1].grad = None
    accumulate_grad(params[1], np.full(4, 2.0))  # back into its slot
    clip_grad_norm_(params[:2], 1.0)  # clips the first two only
    assert (params[2].grad == 2.0).all() and (params[0].grad < 1).all()


def test_the_flat_record_lives_exactly_as_long_as_every_slot():
    """The detection compares ids, so its record of a buffer's slots must go as soon as
    one slot array dies (its id could be reused), and nothing piles up as buffers go."""

    def flat_params() -> tuple[list[minireg.Parameter], np.ndarray]:
        params = [minireg.Parameter(np.ones(n, dtype=np.float32)) for n in (3, 4, 5)]
        for p in params:
            p.grad = np.full(p.shape, 2.0, dtype=np.float32)
        return params, flatten_parameters(params).grad

    before = len(flat._slots)
    for _ in range(5):
        params, grad = flat_params()
        assert id(grad) in flat._slots
    del params, grad
    assert len(flat._slots) <= before + 1
    params, grad = flat_params()
    assert whole_grad_buffer(grads(params)) is grad
    params[1].grad = params[1]._grad_slot = None  # the slot array dies
    assert id(grad) not in flat._slots
    accumulate_grad(params[1], np.ones(4))  # a fresh array now, outside the buffer
    assert whole_grad_buffer(grads(params)) is None
    assert grad_buffer_in_order(grads(params)) is None


def test_loaded_state_is_not_flat_and_steps_per_parameter():
    """After load_state_dict the state arrays are fresh copies, not recorded views of one
    buffer, so a flat group steps per parameter -- with the same bits as a group that was
    never flat."""
    runs = []
    for flattened in (True, False):
        params = [minireg.Parameter(np.linspace(-1, 1, n)) for n in (3, 4, 5)]
        if flattened:
            flatten_parameters(params)
        optimizer = minireg.optim.Adam(params, lr=0.1)
        with update_calls(optimizer) as calls:
            for step in range(4):
                optimizer.zero_grad()
                for p in params:
                    accumulate_grad(p, np.full(p.shape, 0.5 - step))
                optimizer.step()
                if step == 0:
                    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        runs.append((params, optimizer, calls))
    (params, optimizer, calls), (expected_params, expected_optimizer, _) = runs
    assert calls == [12] + [3, 4, 5] * 3  # flat once, then per parameter
    assert_same(params, optimizer, expected_params, expected_optimizer)


def test_span_of_needs_the_recorded_views_end_to_end():
    params = [minireg.Parameter(np.zeros(n, dtype=np.float32)) for n in (2, 3, 4, 5)]
    data, _ = flatten_parameters(params)
    views = [p.data for p in params]
    assert flat.span_of(views) is not None and np.shares_memory(flat.span_of(views), data)
    assert flat.span_of(views).size == data.size
    middle = flat.span_of(views[1:3])  # consecutive slots: the piece they tile
    assert middle is not None and middle.size == 7
    middle[...] = 1
    assert (params[1].data == 1).all() and (params[2].data == 1).all()
    assert (params[0].data == 0).all() and (params[3].data == 0).all()
    assert flat.span_of(views[::-1]) is None  # all of them, but out of order
    assert flat.span_of([views[0], views[2]]) is None  # a gap
    assert flat.span_of([data[:2], data[2:5]]) is None  # the same memory, other views
    assert flat.span_of([np.zeros(2), np.zeros(3)]) is None  # not views of a buffer
    assert flat.span_of([]) is None


def test_two_groups_over_one_buffer_each_step_in_one_call():
    params = [minireg.Parameter(np.ones(n)) for n in (3, 4, 5, 6)]
    flatten_parameters(params)
    optimizer = minireg.optim.SGD(
        [{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1, momentum=0.9
    )
    with update_calls(optimizer) as calls:
        for _ in range(3):
            for p in params:
                accumulate_grad(p, np.ones(p.shape))
            optimizer.step()
            optimizer.zero_grad()
    assert calls == [7, 11] * 3
    assert np.allclose(params[0].data, 1 - 0.1 * (1 + 1.9 + 2.71))
    assert np.allclose(params[3].data, 1 - 0.5 * (1 + 1.9 + 2.71))
