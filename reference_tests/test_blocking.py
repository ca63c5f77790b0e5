"""Blocked optimizer steps (``minireg._engine.blocking.apply_blocked``) are bit-identical
to whole-array ones.

The engine steps every optimizer with its kernel's in-place twin through
:func:`apply_blocked`, which calls it on consecutive flat slices of the parameter,
gradient and state arrays.  Here each
optimizer takes 10 steps twice from the same start, once with tiny blocks (so every size
below straddles block boundaries: one element short of a block, exactly one block, one
element over, three blocks and a partial one) and once with blocking off, and every
parameter and state entry must agree bit for bit (same dtype, same bytes: ``-0.0`` and
NaN payloads included).  Layouts the blocking must *not* slice -- a strided parameter, a
Fortran-ordered gradient -- must fall back to one whole-array call and still agree.  A
spy on the kernel checks that the blocked run really was split into the expected slices.
No torch here: torch agreement is the job of the per-optimizer test modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minireg
import minireg._engine.blocking as blocking
import minireg._engine.optim as engine
import minireg._engine.optim_twins as optim_twins
from reference_tests.conftest import dtypes, random_array
from reference_tests.test_adadelta import adadelta_kwargs
from reference_tests.test_adagrad import adagrad_kwargs
from reference_tests.test_adam import adam_kwargs
from reference_tests.test_nadam import nadam_kwargs
from reference_tests.test_radam import radam_kwargs
from reference_tests.test_rmsprop import rmsprop_kwargs
from reference_tests.test_sgd import sgd_kwargs

SMALL_BLOCK_BYTES = 128  # 32 float32 or 16 float64 elements per block
NO_BLOCKING = 1 << 62

# optimizer -> (its kwargs strategy, module holding its kernel, kernel name)
OPTIMIZERS: dict[str, tuple[Any, str, str]] = {
    "SGD": (sgd_kwargs, "minireg.optim.sgd", "sgd"),
    "Adagrad": (adagrad_kwargs, "minireg.optim.adagrad", "adagrad"),
    "Adadelta": (adadelta_kwargs, "minireg.optim.adadelta", "adadelta"),
    "RMSprop": (rmsprop_kwargs, "minireg.optim.rmsprop", "rmsprop"),
    "Adam": (adam_kwargs, "minireg.optim.adam", "adam"),
    "AdamW": (
        adam_kwargs.map(lambda k: {a: v for a, v in k.items() if a != "decoupled_weight_decay"}),
        "minireg.optim.adam",
        "adam",
    ),
    "NAdam": (nadam_kwargs, "minireg.optim.nadam", "nadam"),
    "RAdam": (radam_kwargs, "minireg.optim.radam", "radam"),
}

# Sizes in blocks: n = blocks * B + extra, i.e. B-1, B, B+1 and 3B+7 elements (the
# "matrix" and "fortran_grad" layouts are 3 x n).
SIZES = [(1, -1), (1, 0), (1, 1), (3, 7)]
LAYOUTS = ["flat", "matrix", "strided_param", "fortran_grad"]
STEPS = 10


@contextlib.contextmanager
def block_bytes(n: int, threads: int = 1) -> Iterator[None]:
    """Blocks of ``n`` bytes, any array larger than one block split, shared among ``threads``."""
    saved = blocking.BLOCK_BYTES, blocking.MIN_BLOCKED_BYTES, blocking.THREADED_MIN_BYTES
    saved_threads = minireg.get_num_threads()
    blocking.BLOCK_BYTES = blocking.MIN_BLOCKED_BYTES = blocking.THREADED_MIN_BYTES = n
    minireg.set_num_threads(threads)
    try:
        yield
    finally:
        blocking.BLOCK_BYTES, blocking.MIN_BLOCKED_BYTES, blocking.THREADED_MIN_BYTES = saved
        minireg.set_num_threads(saved_threads)


@dataclasses.dataclass
class Calls:
    sizes: list[int] = dataclasses.field(default_factory=list)  # elements per kernel call
    threads: set[int] = dataclasses.field(default_factory=set)  # the threads that made them


@contextlib.contextmanager
def kernel_calls(module_name: str, kernel_name: str) -> Iterator[Calls]:
    """Record the element count and thread of every call of the kernel's engine twin."""
    original, scratch = optim_twins.TWINS[kernel_name]
    calls = Calls()
    lock = threading.Lock()

    def spy(param: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.sizes.append(param.size)
            calls.threads.add(threading.get_ident())
        return original(param, *args, **kwargs)

    optim_twins.TWINS[kernel_name] = (spy, scratch)
    engine.blocked_twin.cache_clear()
    try:
        yield calls
    finally:
        optim_twins.TWINS[kernel_name] = (original, scratch)
        engine.blocked_twin.cache_clear()


def make_param(values: np.ndarray, layout: str) -> minireg.Parameter:
    if layout == "strided_param":  # every other element of a larger array: not contiguous
        base = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), dtype=values.dtype)
        base[..., ::2] = values
        return minireg.Parameter(base[..., ::2])
    return minireg.Parameter(values.copy())


def make_grad(values: np.ndarray, layout: str) -> np.ndarray:
    return np.asfortranarray(values) if layout == "fortran_grad" else values.copy()


def run(
    name: str,
    kwargs: dict[str, Any],
    shape: tuple[int, ...],
    dtype: type,
    layout: str,
    seed: int,
    block: int,
    threads: int = 1,
) -> tuple[minireg.Parameter, dict[str, Any]]:
    """``STEPS`` steps of optimizer ``name`` on one parameter; returns it and its state."""
    rng = np.random.default_rng(seed)
    start = random_array(rng, shape, dtype)
    start.flat[:2] = [0.0, -0.0]  # signed zeros must come through bit for bit
    param = make_param(start, layout)
    optimizer = getattr(minireg.optim, name)([param], **kwargs)
    with block_bytes(block, threads):
        for step in range(STEPS):
            grad = random_array(rng, shape, dtype, scale=[1e-3, 1.0, 30.0][step % 3])
            grad.flat[1:3] = [-0.0, 0.0]
            param.grad = make_grad(grad, layout)
            param.grad.flags.writeable = False  # a kernel must not write into the gradient
            optimizer.step()
    return param, optimizer.state[param]


def bits(array: Any) -> tuple[np.dtype, tuple[int, ...], bytes]:
    array = np.asarray(array)
    return array.dtype, array.shape, np.ascontiguousarray(array).tobytes()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@given(data=st.data(), dtype=dtypes, size=st.sampled_from(SIZES), seed=st.integers(0, 2**31))
def test_blocked_steps_are_bit_identical(name, layout, data, dtype, size, seed):
    strategy, module_name, kernel_name = OPTIMIZERS[name]
    kwargs = data.draw(strategy, label="kwargs")
    block = SMALL_BLOCK_BYTES // np.dtype(dtype).itemsize
    blocks, extra = size
    n = blocks * block + extra
    shape = (3, n) if layout in ("matrix", "fortran_grad") else (n,)

    with kernel_calls(module_name, kernel_name) as calls:
        param, state = run(name, kwargs, shape, dtype, layout, seed, SMALL_BLOCK_BYTES)
    expected_param, expected_state = run(name, kwargs, shape, dtype, layout, seed, NO_BLOCKING)

    total = int(np.prod(shape))
    if layout in ("strided_param", "fortran_grad") or total <= block:
        per_step = [total]  # falls back to one whole-array call
    else:
        per_step = [block] * (total // block) + ([total % block] if total % block else [])
    assert calls.sizes == per_step * STEPS

    assert bits(param.data) == bits(expected_param.data), "param"
    assert set(state) == set(expected_state)
    for key in state:
        assert bits(state[key]) == bits(expected_state[key]), f"state[{key!r}]"


def test_apply_blocked_slices_and_passes_none_through():
    seen: list[tuple[int, int, Any]] = []

    def kernel(a, b, c, *, scale):
        seen.append((a.size, b.size, c))
        a += scale * b

    a = np.zeros((5, 7), dtype=np.float32)
    b = np.arange(35, dtype=np.float32).reshape(5, 7)
    with block_bytes(4 * 10):  # 10 float32 elements
        blocking.apply_blocked(kernel, a, b, None, scale=2.0)
    assert seen == [(10, 10, None), (10, 10, None), (10, 10, None), (5, 5, None)]
    assert np.array_equal(a, 2 * b)

    seen.clear()
    with block_bytes(4 * 10):
        blocking.apply_blocked(kernel, a, b.T.copy().T, None, scale=1.0)  # b not C-contiguous
        blocking.apply_blocked(kernel, a[:, :6], b[:, :6], None, scale=1.0)  # strided views
    assert seen == [(35, 35, None), (30, 30, None)]


def test_small_arrays_run_whole():
    seen: list[int] = []

    def kernel(a):
        seen.append(a.size)

    small = np.zeros(blocking.MIN_BLOCKED_BYTES // 4, dtype=np.float32)
    large = np.zeros(blocking.MIN_BLOCKED_BYTES // 4 + 1, dtype=np.float32)
    blocking.apply_blocked(kernel, small)
    assert seen == [small.size]
    seen.clear()
    blocking.apply_blocked(kernel, large)
    block = blocking.BLOCK_BYTES // 4
    assert seen == [block] * (large.size // block) + [large.size % block]


def test_block_sizes_are_set_in_bytes():
    assert blocking.BLOCK_BYTES == 512 * 1024
    assert blocking.THREADED_MIN_BYTES == 4 * blocking.BLOCK_BYTES


# ------------------------------------------------------------------------------ threads
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@given(
    data=st.data(),
    dtype=dtypes,
    threads=st.integers(2, 4),
    blocks=st.integers(2, 9),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**31),
)
def test_threaded_steps_are_bit_identical(name, data, dtype, threads, blocks, extra, seed):
    """Blocks dealt out to 2-4 threads give the same bits as one whole-array call, every
    block is computed exactly once, and the work really is spread over the threads."""
    strategy, module_name, kernel_name = OPTIMIZERS[name]
    kwargs = data.draw(strategy, label="kwargs")
    block = SMALL_BLOCK_BYTES // np.dtype(dtype).itemsize
    n = blocks * block + extra
    with kernel_calls(module_name, kernel_name) as calls:
        param, state = run(name, kwargs, (n,), dtype, "flat", seed, SMALL_BLOCK_BYTES, threads)
    expected_param, expected_state = run(name, kwargs, (n,), dtype, "flat", seed, NO_BLOCKING)

    per_step = [block] * blocks + ([extra] if extra else [])
    assert sorted(calls.sizes) == sorted(per_step * STEPS)
    # the caller takes one run of blocks, the pool the others (an idle pool thread may take two)
    assert 2 <= len(calls.threads) <= min(threads, len(per_step))
    assert bits(param.data) == bits(expected_param.data), "param"
    for key in state:
        assert bits(state[key]) == bits(expected_state[key]), f"state[{key!r}]"


def test_set_num_threads_takes_and_rejects_what_torch_does():
    import torch

    from reference_tests.conftest import assert_same_error

    for bad in (0, -1, 1.5):
        assert_same_error(
            lambda bad=bad: torch.set_num_threads(bad),
            lambda bad=bad: minireg.set_num_threads(bad),
            what=repr(bad),
        )
    saved = minireg.get_num_threads()
    try:
        minireg.set_num_threads(3)
        assert minireg.get_num_threads() == 3
    finally:
        minireg.set_num_threads(saved)


def test_scratch_is_reused_up_to_a_block_and_fresh_beyond():
    like = np.zeros((3, 5), dtype=np.float32)
    first = blocking.scratch_like(like, 2)
    again = blocking.scratch_like(like, 2)
    assert [a.shape for a in first] == [(3, 5), (3, 5)] and first[0].dtype == np.float32
    assert [np.shares_memory(a, b) for a, b in zip(first, again, strict=True)] == [True, True]
    assert not np.shares_memory(first[0], first[1])
    big = np.zeros(blocking.BLOCK_BYTES // 4 + 1, dtype=np.float32)
    one, two = blocking.scratch_like(big, 1), blocking.scratch_like(big, 1)
    assert not np.shares_memory(one[0], two[0])
    other_thread: list[tuple[np.ndarray, ...]] = []
    worker = threading.Thread(target=lambda: other_thread.append(blocking.scratch_like(like, 2)))
    worker.start()
    worker.join()
    assert not np.shares_memory(other_thread[0][0], first[0])  # each thread has its own


@pytest.mark.parametrize("failing", [0, 10])  # the caller's own block, a pool thread's block
def test_an_error_in_one_block_is_raised_after_every_block_is_done(failing):
    def kernel(a: np.ndarray) -> None:
        if a[0] == failing:
            raise ZeroDivisionError(f"block starting at {failing}")
        if a[0] == 30:
            time.sleep(0.2)  # the last block is still running when the error is raised
        a += 1

    a = np.arange(40, dtype=np.float32)
    with block_bytes(4 * 10, threads=4), pytest.raises(ZeroDivisionError, match=f"at {failing}$"):
        blocking.apply_blocked(kernel, a)
    expected = np.arange(40, dtype=np.float32) + 1
    expected[failing : failing + 10] -= 1
    assert np.array_equal(a, expected)


def test_numpy_error_settings_reach_the_threads():
    def kernel(a: np.ndarray) -> None:
        if a[0] >= 10:  # not the first block, which the calling thread runs
            a /= 0

    a = np.arange(40, dtype=np.float32)
    with block_bytes(4 * 10, threads=4), np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            blocking.apply_blocked(kernel, a)


def test_work_shared_out_from_a_pool_thread_runs_there():
    """A part that itself shares out work would wait for the pool from inside the pool (a
    deadlock with one pool thread); it runs its parts in place instead."""
    seen: list[tuple[int, int]] = []

    def inner(k: int) -> None:
        seen.append((k, threading.get_ident()))

    def outer(k: int) -> None:
        blocking.run_in_threads(inner, [10 * k, 10 * k + 1])

    with block_bytes(4 * 10, threads=2):
        done = threading.Event()
        runner = threading.Thread(
            target=lambda: (blocking.run_in_threads(outer, [0, 1]), done.set()), daemon=True
        )
        runner.start()
        runner.join(timeout=30)
    assert done.is_set(), "nested run_in_threads did not finish"
    assert sorted(k for k, _ in seen) == [0, 1, 10, 11]


def test_run_in_threads_with_one_thread_runs_every_part_here():
    seen: list[int] = []
    with block_bytes(4 * 10, threads=1):
        blocking.run_in_threads(lambda k: seen.append(threading.get_ident()), [0, 1, 2])
    assert seen == [threading.get_ident()] * 3


def _add_one(a: np.ndarray) -> None:
    a += 1


def _threaded_step_in_child(queue: Any) -> None:
    a = np.zeros(40, dtype=np.float32)
    blocking.apply_blocked(_add_one, a)  # the parent's settings: 2 threads, 10-element blocks
    queue.put(a.tolist())


def test_a_forked_child_gets_threads_of_its_own():
    """The pool's threads do not survive ``fork``; a child must make new ones, not wait forever."""
    a = np.zeros(40, dtype=np.float32)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with block_bytes(4 * 10, threads=2):
        blocking.apply_blocked(_add_one, a)  # the parent's pool now exists, its thread idle
        child = context.Process(target=_threaded_step_in_child, args=(queue,))
        child.start()
        child.join(timeout=30)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [1.0] * 40
