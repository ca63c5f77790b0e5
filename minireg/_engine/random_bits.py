r"""Uniform random numbers compared with a threshold, drawing as few random bits as possible.

:func:`minireg.numerics.bernoulli` keeps unit :math:`i` when :math:`u_i < t`, with
:math:`u_i` uniform on the integers :math:`[0, 2^{B})` (:math:`B = 40` bits).  Drawing
:math:`u_i` whole costs :math:`B` random bits per unit, but the comparison is decided by
the leading bits almost always.  Draw them lazily, most significant first (Knuth and Yao,
1976): write :math:`u_i = b_i\,2^{B-8} + r_i` and :math:`t = h\,2^{B-8} + \ell` with a
random byte :math:`b_i`.  Then :math:`b_i < h` means :math:`u_i < t`, :math:`b_i > h`
means :math:`u_i \ge t`, and only a tie :math:`b_i = h` (probability 1/256) needs the
other :math:`B - 8` bits: :math:`u_i < t` iff :math:`r_i < \ell`.  About 8 random bits per
unit, and the law of :math:`[u_i < t]` is exactly that of the whole draw.
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_bytes", "uniform_below"]

FIRST_BITS = 8  # the bits every unit draws; the others only on a tie (1 unit in 256)


def random_bytes(generator: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent uniform bytes: the bytes of ``ceil(n/8)`` uniform 64-bit integers.

    (``generator.integers(0, 256, n, dtype=np.uint8)`` has the same law but is 3x slower.)
    """
    words = generator.integers(0, 2**64, -(-n // 8), dtype=np.uint64)
    return words.view(np.uint8)[:n]


def uniform_below(generator: np.random.Generator, n: int, threshold: int, bits: int) -> np.ndarray:
    """``u < threshold`` for ``n`` independent uniform integers ``u`` in ``[0, 2**bits)``.

    A boolean array of ``n``; the bits of each ``u`` are drawn lazily (module docstring):
    one random byte per unit, then ``bits - 8`` more for each unit whose byte ties with
    the threshold's leading byte (none at all when the threshold's other bits are 0).
    """
    rest = bits - FIRST_BITS
    high, low = divmod(threshold, 2**rest)
    first = random_bytes(generator, n)
    below = first < high
    if low:  # with low == 0 a tie is not below, as ``first < high`` already says
        tie = np.flatnonzero(first == high)
        below[tie] = generator.integers(0, 2**rest, tie.size, dtype=np.uint64) < low
    return below
