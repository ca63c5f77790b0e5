"""Fast, accurate sums for the normalisation statistics.

The normalisation kernels (``minireg/nn/_functional/batch_norm.py`` and its neighbours)
ask :mod:`minireg.numerics` for sums such as :math:`\\sum x` over a channel, which it
gets from :func:`blocked_sum` here.  Nothing else in this file is math: it only decides
how the additions are grouped, so that the sum is both fast and accurate.

Why not ``np.sum``?  Adding millions of float32 values one after another in float32 loses
digits, and NumPy does just that along a strided axis (a channel of an ``(N, C)`` batch)
and in float32 dot products (``einsum``, ``dot``: a few SIMD lanes); it sums pairwise
only along a contiguous axis.  Asking it for a float64 sum instead (``dtype=np.float64``)
makes it convert every value first, two to three times slower.

So the values are cut into *runs* of at most :data:`RUN`: pieces of a row when rows are
long, else blocks of ``RUN // L`` whole samples (batch norm of ``(N, C)``: L = 1).
``np.einsum`` sums each run in the input's dtype, in one vectorised pass, and the runs'
partial sums are added in float64: a relative error near 1e-8 at 1e7 float32 values
(``reference_tests/test_norm_accuracy.py`` holds 1e-6).  The grouping depends only on
the shape, so the same shape always gives the same bits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RUN", "blocked_sum"]

# The most values one partial sum of blocked_sum adds up in the input's dtype.
RUN = 4096


def blocked_sum(a: np.ndarray, b: np.ndarray | None = None, *, over_batch: bool) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) of ``(N, C, L)`` arrays over L, and over N as
    well when ``over_batch``: float64 of shape ``(C,)``, else ``(N, C)``.

    With ``b``, each run is one ``einsum`` of the two operands, which multiplies and adds
    in one pass without forming ``a * b`` (and rounds differently from summing ``a * b``).
    """
    operands = (a,) if b is None else (a, b)

    def einsum(pattern: str, *views: np.ndarray) -> np.ndarray:  # the pattern for each operand
        inputs, output = pattern.split("->")
        return np.einsum(",".join([inputs] * len(views)) + "->" + output, *views)

    n, c, length = a.shape
    if length >= RUN or not over_batch:  # runs along each row; its remainder is one more run
        cut = length - length % RUN
        runs = einsum("ncrk->ncr", *(v[..., :cut].reshape(n, c, cut // RUN, RUN) for v in operands))
        rest = einsum("ncl->nc", *(v[..., cut:] for v in operands))
        rows = runs.sum(axis=2, dtype=np.float64) + rest
        return rows.sum(axis=0) if over_batch else rows  # (float64 over the samples)
    per_run = RUN // max(length, 1)  # samples per run; the leftover samples are one more run
    cut = n - n % per_run
    blocks = (v[:cut].reshape(cut // per_run, per_run, c, length) for v in operands)
    runs = einsum("rkcl->rc", *blocks)
    return runs.sum(axis=0, dtype=np.float64) + einsum("ncl->c", *(v[cut:] for v in operands))
