"""Run an elementwise kernel over cache-sized slices of its arrays, on several threads.

An optimizer kernel such as :func:`minireg.optim.adam.adam` is about a dozen NumPy passes
(``-``, ``*=``, ``+=``, ``sqrt``, ``/`` ...), each of which reads and writes whole arrays.
For a 10-million-element parameter every pass streams tens of megabytes through main
memory.  Called instead on consecutive slices of ``BLOCK_BYTES`` per array, the same
passes find their operands still in cache, and the step runs at cache speed rather than
memory speed.  The slices are independent, so runs of them can go to different threads:
NumPy lets go of the GIL inside each ufunc loop.

The kernel itself does not change and needs to know nothing about this: it must only be
*elementwise* -- element ``i`` of every output depends only on element ``i`` of the
inputs and on the scalar arguments -- and free of once-per-step side effects (a step
counter, a 0-d running product, a buffer created on the first step): the caller does
those before calling :func:`apply_blocked`.  Then each slice computes exactly the
operations the whole-array call would, element by element, and the result is bit for
bit the same whichever slice and thread an element falls in (every operation the kernels
use, ``+ - * /``, ``sqrt``, ``maximum``, is correctly rounded, so NumPy's SIMD and scalar
loops agree on every element).

Scratch.  The kernels write their intermediates into ``scratch`` arrays (``out=``)
instead of letting NumPy allocate a temporary per operation.  :func:`scratch_like` keeps
one block's worth per thread, so a step allocates nothing.  This is what makes the
threads pay: temporaries of 256 KiB and more come from ``malloc`` as fresh pages (glibc
maps them, or trims them off its heap when freed), and the page faults -- measured
17,000-24,000 per 1e7-element Adam step, in one thread or two -- cost more than the
cache saves.  Below 128 KiB the temporaries are recycled, but then each ufunc call is so
short that handing the GIL between two threads eats the gain (two threads ran *slower*
than one at 32 K elements per block).

Choice of the block size (measured on the 2-core dev machine, numpy 2.4.6, AVX-512;
``Adam.step``, in place, median of 11 interleaved rounds; ms):

==================  ======  ======  ======  ======  ======
bytes per array     128 K   256 K   512 K   1 MiB   2 MiB
==================  ======  ======  ======  ======  ======
f32 1e7, 1 thread   28.0    28.3    28.8    32.6    40.4
f32 1e7, 2 threads  33.6    23.2    18.4    17.8    21.6
f64 1e7, 1 thread   64.4    65.6    67.0    75.6    87.6
f64 1e7, 2 threads  64.2    48.1    41.1    40.6    45.1
f32 1e6, 1 thread   2.20    2.07    2.14    2.59    3.23
f32 1e6, 2 threads  3.52    2.45    1.82    1.66    1.88
==================  ======  ======  ======  ======  ======

512 KiB per array (131,072 float32 or 65,536 float64 elements) is within 4 % of the best
with two threads and within 3 % with one; with the kernels' two or three scratch arrays
that is 3 MiB of live data per thread, which this CPU's L2 (2 MiB per core) and shared
L3 hold.  The minimum sits at the same number of *bytes* for float32 and float64, so the
block is set in bytes.

``MIN_BLOCKED_BYTES``: arrays up to this size run whole (one kernel call costs a few
microseconds of Python; a small parameter's arrays fit in cache anyway).
``THREADED_MIN_BYTES``: from this size on the blocks are shared among the threads, in
one contiguous run per thread.  Handing work to a pool thread costs tens of microseconds
here, so a step must be several blocks long: Adam at 5e5 float32 elements (2 MB, four
blocks) took 0.89 ms on two threads against 1.06 ms on one, and 2 MiB is where two
threads start to win.  The thread count is :func:`get_num_threads`
(``minireg.set_num_threads``, as ``torch.set_num_threads``), by default the CPUs this
process may use.

Who uses it: the optimizers, and ``clip_grad_norm_`` for its scaling pass (one pass, so
only the threads help there) and, through :func:`run_in_threads`, for the norms of a
flat gradient buffer.  Dropout and the normalisation layers were measured with
their elementwise passes blocked the same way and gained nothing (single-threaded), so
they run on whole arrays: dropout makes two passes into a fresh output (blocked 14.3 ms
against 12.5 ms whole, 1e7 float32), and the normalisations' in-place chains blocked per
sample measured 7.2 against 7.3 ms.  Fewer passes over an array leave less for a cache
to save.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

import numpy as np

# Bytes of each array handled per kernel call (elements: BLOCK_BYTES // itemsize).
BLOCK_BYTES = 512 * 1024
# Arrays of at most this many bytes run whole (see the module docstring).
MIN_BLOCKED_BYTES = 512 * 1024
# Arrays of at least this many bytes are shared among the threads (see the docstring).
THREADED_MIN_BYTES = 2 * 1024 * 1024


# ------------------------------------------------------------------------------ threads
def _default_num_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_num_threads = _default_num_threads()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def get_num_threads() -> int:
    """How many threads a large kernel call is shared among (``torch.get_num_threads``)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Share large kernel calls among ``n`` threads (``torch.set_num_threads``); 1: no threads.

    The default is the number of CPUs this process may run on.  Results do not depend on
    it: every element is computed by the same operations whichever thread computes it.
    """
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    with _pool_lock:
        _num_threads = n
        if _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None


def _workers() -> ThreadPoolExecutor:
    """The pool of ``get_num_threads() - 1`` helper threads (the caller is the last one)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                _num_threads - 1, thread_name_prefix="minireg", initializer=_mark_pool_thread
            )
        return _pool


def _mark_pool_thread() -> None:
    _local.in_pool = True


def _forget_pool_after_fork() -> None:  # a forked child has none of its parent's threads
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


# ------------------------------------------------------------------------------ scratch
_local = threading.local()


def scratch_like(like: np.ndarray, count: int) -> tuple[np.ndarray, ...]:
    """``count`` uninitialised arrays shaped like ``like``, for a kernel's temporaries.

    Up to one block, they are views of arrays this thread keeps from call to call, so a
    blocked step allocates nothing; a larger ``like`` (a parameter that cannot be sliced)
    gets new arrays.  Whoever asks must be done with them before asking again.
    """
    block = max(1, BLOCK_BYTES // like.itemsize)
    if like.size > block:
        return tuple(np.empty(like.shape, like.dtype) for _ in range(count))
    cache: dict[np.dtype, list[np.ndarray]] = _local.__dict__.setdefault("scratch", {})
    kept = cache.get(like.dtype, [])
    if len(kept) < count or kept[0].size < like.size:  # grow, at most to one block
        size = min(block, max(like.size, 2 * kept[0].size if kept else 0))
        kept = [np.empty(size, like.dtype) for _ in range(max(count, len(kept)))]
        cache[like.dtype] = kept
    return tuple(a[: like.size].reshape(like.shape) for a in kept[:count])


# ------------------------------------------------------------------------------ blocking
def apply_blocked(
    kernel: Callable[..., Any], *arrays: np.ndarray | None, scratch: int = 0, **scalars: Any
) -> None:
    """``kernel(*arrays, **scalars)``, run over matching flat slices when that pays off.

    ``arrays`` are the kernel's positional array arguments (parameter first, then
    gradient and state; ``None`` for an unused optional one), ``scalars`` its keyword
    arguments, passed to every call unchanged.  A kernel that needs ``scratch``
    temporaries also gets ``scratch=`` that many arrays shaped like its slice
    (:func:`scratch_like`).  When all the arrays are C-contiguous, have the same number
    of elements and dtype, and are larger than both one block and ``MIN_BLOCKED_BYTES``,
    the kernel is called on ``a.reshape(-1)[i:i + block]`` of each (views, so it updates
    the arrays in place), and from ``THREADED_MIN_BYTES`` on the blocks are dealt out in
    contiguous runs to :func:`get_num_threads` threads; otherwise -- a strided
    parameter, a small one -- it is called once on the whole arrays.
    The kernel's return value is discarded: blocked kernels work in place.
    """
    first = arrays[0]
    assert first is not None, "the first array (the parameter) is required"

    def call(parts: Sequence[np.ndarray | None]) -> None:
        if scratch:
            assert parts[0] is not None
            kernel(*parts, scratch=scratch_like(parts[0], scratch), **scalars)
        else:
            kernel(*parts, **scalars)

    block = max(1, BLOCK_BYTES // first.itemsize)
    if first.size <= block or first.nbytes <= MIN_BLOCKED_BYTES:  # the common, cheap case
        call(arrays)
        return
    present = [a for a in arrays if a is not None]
    if not all(
        a.flags.c_contiguous and a.size == first.size and a.dtype == first.dtype for a in present
    ):
        call(arrays)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]

    def run(starts: Sequence[int]) -> None:
        for start in starts:
            call([None if a is None else a[start : start + block] for a in flat])

    starts = range(0, first.size, block)
    threads = min(_num_threads, len(starts)) if first.nbytes >= THREADED_MIN_BYTES else 1
    if threads == 1:
        run(starts)
        return
    cuts = [len(starts) * k // threads for k in range(threads + 1)]
    run_in_threads(run, [starts[cuts[k] : cuts[k + 1]] for k in range(threads)])


def run_in_threads(work: Callable[[Any], None], parts: Sequence[Any]) -> None:
    """``work(part)`` for every part, the first in this thread and the rest in the pool.

    Returns when all have finished (also when one raised: they write into shared
    arrays), then re-raises the first error.  Each runs in a copy of the caller's
    context, so ``np.errstate`` settings carry over.  With one thread, or called from a
    pool thread (work that itself shares out work), it runs every part right here:
    waiting for the pool from inside the pool could wait forever.
    """
    if _num_threads == 1 or len(parts) == 1 or getattr(_local, "in_pool", False):
        for part in parts:
            work(part)
        return
    pool = _workers()
    futures: list[Future[None]] = [
        pool.submit(contextvars.copy_context().run, work, part) for part in parts[1:]
    ]
    try:
        work(parts[0])
    finally:
        wait_for(futures)
    for future in futures:
        future.result()
