"""The speed engine: everything that makes minireg fast and that a student can skip.

Step 8 of the reading path, the last.  The kernels (``minireg.optim.adam.adam``,
``minireg.nn.functional.batch_norm``, ...) are textbook NumPy: one line per equation,
fresh arrays for intermediates.  This package makes them fast without changing a single
bit of their results:

- ``blocking``: run an elementwise kernel over cache-sized slices, shared among threads
  (``minireg.set_num_threads``), with per-thread scratch arrays instead of temporaries;
- ``optim_twins``, ``norm_twins``: in-place *twins* of the optimizer and normalisation
  kernels, each proven bit-identical to its textbook kernel by a property test
  (``reference_tests/test_engine_twins.py``, ``test_norm_twins.py``);
- ``optim``: the optimizers' fast step -- the blocked twins, and one kernel call for a
  whole group that lies in flat buffers;
- ``flat``: flat parameter buffers (``minireg.nn.utils.flatten_parameters``) and the one
  place that recognises them;
- ``clip``: gradient norms and scaling over a flat gradient buffer, on threads;
- ``norms``: the float64-accurate sums behind the normalisation statistics;
- ``random_bits``: dropout's Bernoulli mask from as few random bits as it needs.

No kernel imports this package: the bookkeeping around a kernel (``Optimizer.step``, a
layer's class, a ``minireg.numerics`` helper) decides whether to use it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["in_textbook_mode", "textbook", "textbook_or_twin"]

_textbook_mode = contextvars.ContextVar("minireg_textbook_mode", default=False)
F = TypeVar("F", bound=Callable[..., object])


@contextlib.contextmanager
def textbook() -> Iterator[None]:
    """``with minireg.textbook():`` every kernel call inside runs the textbook code.

    The optimizers behave as if built with ``foreach=False``, the normalisation layers
    call the functional kernels instead of their in-place twins, and clipping takes its
    per-gradient loop: the code a student reads, step by step in a debugger, with the
    same results to the bit (the engine's property tests prove it), only slower.
    """
    token = _textbook_mode.set(True)
    try:
        yield
    finally:
        _textbook_mode.reset(token)


def in_textbook_mode() -> bool:
    """Whether the caller is inside :func:`textbook`."""
    return _textbook_mode.get()


def textbook_or_twin(kernel: F, twin: F) -> F:
    """``kernel`` inside :func:`textbook`, else its bit-identical in-place ``twin``."""
    return kernel if _textbook_mode.get() else twin
