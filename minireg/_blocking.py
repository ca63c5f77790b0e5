"""Run an elementwise kernel over cache-sized slices of its arrays.

An optimizer kernel such as :func:`minireg.optim.adam.adam` is about ten NumPy passes
(``lerp``, ``*=``, ``+=``, ``sqrt``, ``/`` ...), each of which reads and writes whole
arrays and most of which allocate a temporary as large as the parameter.  For a
10-million-element parameter every pass streams tens of megabytes through main memory.
Called instead on consecutive slices of ``BLOCK_BYTES`` per array, the same passes find
their operands (and the recycled temporaries) still in cache, and the step runs at
cache speed rather than memory speed.

The kernel itself does not change and needs to know nothing about this: it must only be
*elementwise* -- element ``i`` of every output depends only on element ``i`` of the
inputs and on the scalar arguments -- and free of once-per-step side effects (a step
counter, a 0-d running product, a buffer created on the first step): the caller does
those before calling :func:`apply_blocked`.  Then each slice computes exactly the
operations the whole-array call would, element by element, and the result is bit for
bit the same (every operation the kernels use, ``+ - * /``, ``sqrt``, ``maximum``, is
correctly rounded, so NumPy's SIMD and scalar loops agree on every element).

Choice of the block size (measured on the 2-core dev machine, numpy 2.4.6, AVX-512;
``adam`` with ``amsgrad=False`` through :func:`apply_blocked`, in place, median of 11
steps at 1e7 elements and 41 at 1e6, all block sizes interleaved):

================  =====  ======  ======  =======  =======  =======  =====  =====
bytes per array   whole  32 KiB  64 KiB  128 KiB  256 KiB  512 KiB  1 MiB  4 MiB
================  =====  ======  ======  =======  =======  =======  =====  =====
float32, 1e7 ms    84.1    36.0    32.6     27.3     31.3     33.1   38.1   66.9
float64, 1e7 ms   152.4    79.1    69.8     62.0     69.9     73.3   81.8  130.6
float32, 1e6 ms    3.83    3.03    2.47     2.15     2.32     2.50   3.08   4.31
float64, 1e6 ms    11.3    6.75    5.62     5.03     5.49     6.24   7.25   9.40
================  =====  ======  ======  =======  =======  =======  =====  =====

A second run over 64, 96, 128, 192 and 256 KiB again put 128 KiB first for both dtypes
and both sizes (float32 1e7: 32.5, 29.3, 27.2, 30.8, 31.0 ms).  The minimum sits at the
same number of *bytes*, not elements, for float32 and float64, so the block is set in
bytes: 128 KiB per array, i.e. 32,768 float32 or 16,384 float64 elements.  With four
state/param/grad arrays and a few temporaries that is about 1 MiB of live data, inside
this CPU's 2 MiB of L2 per core (lscpu: L1d 48 KiB, L2 2 MiB per core).  Python overhead
per block is a few microseconds, so blocks much smaller than this lose again.

That overhead also sets ``MIN_BLOCKED_BYTES``, the size below which an array runs whole:
a small parameter's arrays fit in L2 anyway, and each extra kernel call costs a few
microseconds.  Measured through the optimizers' ``step`` (float32, median of 301 steps,
blocked / whole time): SGD with momentum 1.28, 0.96, 0.74 at 100K, 200K, 300K elements;
Adam 1.05, 0.85, 0.68; RMSprop 1.16, 0.92, 0.72.  The crossover lies between 400 KB and
800 KB per array, so arrays up to 512 KiB (131,072 float32 elements) are not split.

Who uses it: the optimizers.  Dropout and the normalisation layers were measured with
their elementwise passes blocked the same way and gained nothing, so they run on whole
arrays: dropout makes two passes into a fresh output (blocked 14.3 ms against 12.5 ms
whole, 1e7 float32), and the normalisations' in-place chains blocked per sample measured
7.2 against 7.3 ms.  Fewer passes over an array leave less for a cache to save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# Bytes of each array handled per kernel call (elements: BLOCK_BYTES // itemsize).
BLOCK_BYTES = 128 * 1024
# Arrays of at most this many bytes run whole (see the module docstring).
MIN_BLOCKED_BYTES = 512 * 1024


def apply_blocked(kernel: Callable[..., Any], *arrays: np.ndarray | None, **scalars: Any) -> None:
    """``kernel(*arrays, **scalars)``, run over matching flat slices when that pays off.

    ``arrays`` are the kernel's positional array arguments (parameter first, then
    gradient and state; ``None`` for an unused optional one), ``scalars`` its keyword
    arguments, passed to every call unchanged.  When all the arrays are C-contiguous,
    have the same number of elements and dtype, and are larger than both one block and
    ``MIN_BLOCKED_BYTES``, the kernel is called on ``a.reshape(-1)[i:i + block]`` of each
    (views, so it updates the arrays in place); otherwise -- a strided parameter, a small
    one -- it is called once on the whole arrays.
    The kernel's return value is discarded: blocked kernels work in place.
    """
    first = arrays[0]
    assert first is not None, "the first array (the parameter) is required"
    block = max(1, BLOCK_BYTES // first.itemsize)
    if first.size <= block or first.nbytes <= MIN_BLOCKED_BYTES:  # the common, cheap case
        kernel(*arrays, **scalars)
        return
    present = [a for a in arrays if a is not None]
    if not all(
        a.flags.c_contiguous and a.size == first.size and a.dtype == first.dtype for a in present
    ):
        kernel(*arrays, **scalars)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for start in range(0, first.size, block):
        kernel(*[None if a is None else a[start : start + block] for a in flat], **scalars)


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def contiguous_span(arrays: list[np.ndarray]) -> np.ndarray | None:
    """One 1-D array spanning ``arrays`` when they lie end to end in one buffer, else ``None``.

    This is how the optimizers' flat-buffer fast path (``Optimizer._step_flat``) recognises the
    layout :func:`minireg.nn.utils.flatten_parameters` makes: every array C-contiguous,
    of one dtype, a view of the same owning array, and each one starting exactly where
    the previous one ends.  The returned array is a view of that buffer covering all of
    them, so writing into it writes into each of ``arrays``.
    """
    if not arrays:
        return None
    first = arrays[0]
    owner = first if first.base is None else first.base
    if not isinstance(owner, np.ndarray) or owner.dtype != first.dtype:
        return None
    if not owner.flags.c_contiguous:
        return None
    expected = _address(first)
    for a in arrays:
        if not isinstance(a, np.ndarray) or not a.flags.c_contiguous or a.dtype != first.dtype:
            return None
        if (a.base if a.base is not None else a) is not owner or _address(a) != expected:
            return None
        expected += a.nbytes
    start = (_address(first) - _address(owner)) // first.itemsize
    total = (expected - _address(first)) // first.itemsize
    return owner.reshape(-1)[start : start + total]
