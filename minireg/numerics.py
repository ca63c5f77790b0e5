"""Small helpers with math names that reproduce torch's rounding, for the kernels to call.

A kernel reads like its equations; where torch computes an equation in a particular
order, or accumulates a sum more accurately than a plain float32 sum would, the kernel
calls one of these instead of spelling the detail out.  Each helper's docstring says
what torch does and why it matters.  Read them when a kernel sends you here.

Helpers may hand work to the speed engine (``minireg._engine``); the kernels never do.
"""

from __future__ import annotations

import math

import numpy as np

from minireg._engine import blocking, in_textbook_mode, random_bits
from minireg._engine import clip as clip_engine
from minireg._engine.norms import blocked_sum
from minireg.random import resolve

__all__: list[str] = []


# ------------------------------------------------------------------------------ optimizers
def regularized_gradient(
    grad: np.ndarray, param: np.ndarray, weight_decay: float, maximize: bool
) -> np.ndarray:
    r"""The gradient an optimizer follows, :math:`g = \pm\nabla_\theta f + \lambda\theta`.

    ``-grad`` when ``maximize`` (gradient *ascent*), plus the L2 term ``weight_decay *
    param`` when that is not 0, as torch's ``grad.add(param, alpha=weight_decay)``.  With
    neither, ``grad`` itself is returned: a kernel must not write into it.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    return g


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    r"""``start + weight * (end - start)``, rounded the way ``torch.lerp`` rounds it.

    torch first rounds ``weight`` to the arrays' dtype, and for ``|weight| >= 0.5`` it
    computes the same value from the other end, ``end - (end - start) * (1 - weight)``,
    which is more accurate there.  Adam's first moment
    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t` is written in torch as
    ``m.lerp_(g, 1 - beta1)``, which rounds differently from ``beta1*m + (1-beta1)*g``;
    calling this helper keeps minireg's :math:`m_t` bit for bit torch's.
    """
    weight = start.dtype.type(weight)
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


# ------------------------------------------------------------------------------ normalisation
# The norm kernels work on (N, C, L) views of their input: batch norm takes one mean per
# channel, over N and L ("channel" helpers); layer and group norm one per row, over L
# ("row" helpers).  Every sum is accumulated in float64 and rounded once.
__all__ += ["channel_sum", "row_sum", "rounded_mean"]
__all__ += ["channel_mean", "channel_variance", "row_mean", "row_variance"]


def channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) over each channel of ``(N, C, L)`` arrays, that
    is over N and L: float64, shaped ``(C, 1)`` to broadcast against them.

    torch's CPU kernels accumulate float32 statistics in double (its saved float32 mean is
    the float64 mean rounded once), and so does this sum.  A plain float32 sum that runs
    through millions of values one after another -- what NumPy does along a strided axis,
    such as a channel of an ``(N, C)`` batch -- misses by 1e-5 to 1e-4 at 1e7 values; this
    one stays near 1e-8.  How it is done fast is the engine's business
    (:func:`minireg._engine.norms.blocked_sum`); the grouping depends on the shape only.
    """
    return blocked_sum(a, b, over_batch=True)[:, None]


def row_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\sum a` (or :math:`\sum a\,b`) over each row (the last axis) of ``(N, C, L)``
    arrays: float64, shaped ``(N, C, 1)``; accumulated as :func:`channel_sum`."""
    return blocked_sum(a, b, over_batch=False)[..., None]


def rounded_mean(total: np.ndarray, count: int, dtype: np.dtype) -> np.ndarray:
    """``total / count`` (a float64 sum of ``count`` values) rounded once to ``dtype``, as
    torch rounds its double accumulators; 0 when there are no values (not 0/0 = NaN)."""
    if count == 0:
        return np.zeros(total.shape, dtype)
    return (total / count).astype(dtype)


def channel_mean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r"""The mean of ``a`` (or of :math:`a\,b`) over each channel of ``(N, C, L)`` arrays,
    :math:`\frac1n\sum` with n = N L, shaped ``(C, 1)`` in their dtype; 0 for an empty channel."""
    return rounded_mean(channel_sum(a, b), a.shape[0] * a.shape[2], _dtype(a, b))


def channel_variance(x_mu: np.ndarray) -> np.ndarray:
    r"""The biased :math:`\sigma^2 = \frac1n\sum (x-\mu)^2` of each channel, from the
    centred values ``x_mu`` (the squares are summed, not formed first), shaped ``(C, 1)``.
    An empty channel gets 1, so that :math:`1/\sqrt{\sigma^2+\epsilon}` stays finite
    (minireg's choice: torch refuses empty inputs in most of its kernels)."""
    if x_mu.shape[0] * x_mu.shape[2] == 0:
        return np.ones((x_mu.shape[1], 1), x_mu.dtype)
    return channel_mean(x_mu, x_mu)


def row_mean(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    r"""The mean of ``a`` (or of :math:`a\,b`) over each row of ``(N, C, L)`` arrays, shaped
    ``(N, C, 1)`` in their dtype; 0 for an empty row."""
    return rounded_mean(row_sum(a, b), a.shape[2], _dtype(a, b))


def row_variance(x_mu: np.ndarray) -> np.ndarray:
    r"""The biased :math:`\sigma^2` of each row from the centred values ``x_mu``, shaped
    ``(N, C, 1)``; 1 for an empty row (see :func:`channel_variance`)."""
    if x_mu.shape[2] == 0:
        return np.ones(x_mu.shape[:2] + (1,), x_mu.dtype)
    return row_mean(x_mu, x_mu)


def _dtype(a: np.ndarray, b: np.ndarray | None) -> np.dtype:
    return a.dtype if b is None else np.result_type(a, b)


# ------------------------------------------------------------------------------ dropout
__all__ += ["bernoulli", "dropout_scale"]

UNIFORM_BITS = 40  # bernoulli's resolution: q is rounded to a multiple of 2**-40


def bernoulli(
    shape: tuple[int, ...], q: float, generator: np.random.Generator | None = None
) -> np.ndarray:
    r"""A boolean array of ``shape`` with independent entries
    :math:`m_i \sim \mathrm{Bernoulli}(q)`.

    torch's dropout draws its mask as ``noise.bernoulli_(1 - p)``: each entry 1 with
    probability :math:`q = 1-p`.  NumPy cannot replay torch's random stream, so minireg
    follows the law, not the draws: :math:`m_i = [u_i < q]` with :math:`u_i` uniform on the
    multiples of :math:`2^{-40}` in :math:`[0, 1)`, so that :math:`P(m_i) = t/2^{40}` with
    :math:`t = \mathrm{round}(q\,2^{40})`, within :math:`2^{-41} \approx 4.5\cdot10^{-13}` of
    :math:`q`.  ``generator=None`` draws from minireg's default generator.  The engine
    draws the bits of :math:`u_i` lazily, about 8 per entry instead of 40
    (:mod:`minireg._engine.random_bits`).
    """
    t = round(float(q) * 2**UNIFORM_BITS)  # q on the grid of 2**-40
    m = random_bits.uniform_below(resolve(generator), math.prod(shape), t, UNIFORM_BITS)
    return m.reshape(shape)


def dropout_scale(p: float, dtype: np.dtype) -> np.generic:
    r"""The factor :math:`1/(1-p)` by which inverted dropout scales the units it keeps,
    rounded as torch rounds it, in ``dtype``.

    torch builds the noise :math:`m/(1-p)` in the input's dtype, so a kept unit is
    multiplied by :math:`s = \mathrm{fl}(1/\mathrm{fl}(1-p))`: :math:`1-p` rounded to the
    dtype, then its reciprocal rounded.  ``x * s`` differs from ``x / (1-p)`` by an ULP for
    many ``x`` when :math:`p \ne 0.5`.  At :math:`p = 1` torch multiplies by a zero instead
    (it draws no noise), so the factor is 0.
    """
    if p == 1:
        return dtype.type(0)
    return dtype.type(1) / dtype.type(1 - p)


# ------------------------------------------------------------------------------ norms of gradients
__all__ += ["quotient", "scale_", "sum_of_squares", "vector_norm", "vector_norms"]


def sum_of_squares(x: np.ndarray) -> float:
    r"""The float64 sum :math:`\sum_i x_i^2` over all of ``x``, accurate for large arrays.

    .. math:: \sum_i x_i^2 = \sum_{b} \Big(\sum_{i \in b} x_i^2\Big)

    A float32 sum of 1e7 squares accumulated in float32 (``np.linalg.norm``'s dot, or a
    strided sum) drifts by many ULPs.  Here each block ``b`` of the engine's
    ``BLOCK_BYTES`` (512 KiB: 131,072 float32) is one ``dot`` (fast: SIMD products and a
    short float32 accumulation per lane) and the blocks' partial sums are added in
    float64, so the relative error stays near float32's
    rounding (measured 2e-10 at 1e7 elements; test_clip_grad.py holds it to 1e-6).  As in
    torch there is no rescaling against overflow: a block whose sum exceeds float32's
    range gives ``inf``.
    """
    x = x.reshape(-1)  # a vector (np.dot of 2-d arrays would be a matrix product)
    block = max(1, blocking.BLOCK_BYTES // x.itemsize)
    total = 0.0
    for start in range(0, x.size, block):
        b = x[start : start + block]
        total += float(b.dot(b))
    return total


def vector_norm(x: np.ndarray, ord: float) -> np.ndarray:
    r"""``torch.linalg.vector_norm``: the p-norm of ``x`` viewed as one vector, a 0-d array
    in ``x``'s dtype.

    .. math::
        \|x\|_p = \Big(\sum_i |x_i|^p\Big)^{1/p}, \qquad
        \|x\|_\infty = \max_i |x_i|, \qquad
        \|x\|_{-\infty} = \min_i |x_i|, \qquad
        \|x\|_0 = \#\{i : x_i \neq 0\}

    The sum formula also serves every other ``p`` torch accepts: fractional ``0 < p < 1``
    and negative ``p`` (where a zero element makes the sum infinite and the norm 0).
    ``p = 2`` sums accurately (:func:`sum_of_squares`, then one rounding to the dtype).
    As torch: other ``p`` take the power :math:`1/p` in the dtype (1/p rounded to float32
    for float32); there is no rescaling against overflow (``(1e20)**2`` is ``inf`` in
    float32); NaN propagates (``p = 0`` counts a NaN as non-zero); and max, min and the
    negative powers of an empty ``x`` raise, as they have no value on an empty set.
    """
    if x.size == 0 and (ord < 0 or ord == math.inf):
        raise RuntimeError(
            f"linalg.vector_norm cannot compute the {ord:g} norm on an empty tensor because "
            "the operation does not have an identity"
        )
    if ord == 2:
        return np.asarray(math.sqrt(sum_of_squares(x)), dtype=x.dtype)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if ord == 0:
            norm = np.sum(x != 0, dtype=x.dtype)
        elif ord == math.inf:
            norm = np.max(np.abs(x))
        elif ord == -math.inf:
            norm = np.min(np.abs(x))
        elif ord == 1:
            norm = np.sum(np.abs(x))
        else:
            norm = np.sum(np.abs(x) ** ord) ** (x.dtype.type(1) / x.dtype.type(ord))
    return np.asarray(norm, dtype=x.dtype)


def vector_norms(tensors: list[np.ndarray], ord: float, foreach: bool | None = None) -> np.ndarray:
    r"""The norms :math:`(\|x_1\|_p, \dots, \|x_k\|_p)` of ``tensors``, one array.

    torch takes them with one ``_foreach_norm`` call (``foreach=True``, and ``None`` on
    CPU) or with a :func:`vector_norm` per tensor (``foreach=False``), each in its
    tensor's dtype, and stacks them (``torch.stack`` promotes: float32 with float64 gives
    float64).  The numbers are the same either way; only the error for the inf-norm of an
    empty tensor names whichever function raised it.  Here ``foreach=False`` is the loop
    below; otherwise the engine takes 2-norms (:func:`minireg._engine.clip.two_norms`:
    over a flat gradient buffer, one ``np.vecdot`` per run of equal sizes), bit for bit
    the loop's numbers.
    """
    if foreach is not False:  # torch's _foreach_norm, its error included
        if ord == math.inf and any(x.size == 0 for x in tensors):
            raise RuntimeError(
                "_foreach_norm cannot compute the infinity norm on an empty tensor because "
                "the operation does not have an identity"
            )
        norms = clip_engine.two_norms(tensors) if ord == 2 and not in_textbook_mode() else None
        if norms is not None:
            return norms
    return np.array([vector_norm(x, ord) for x in tensors])


def quotient(a: float, t: np.ndarray) -> np.ndarray:
    r""":math:`a / t` for a number ``a`` and an array ``t``, rounded as torch rounds it.

    torch evaluates ``number / tensor`` (``Tensor.__rtruediv__``) as
    ``reciprocal(t) * number``: two roundings in ``t``'s dtype, which can differ from the
    correctly rounded quotient by an ULP.
    """
    return np.reciprocal(t) * a


def scale_(tensors: list[np.ndarray], c: np.ndarray, foreach: bool | None = None) -> None:
    r""":math:`x_i \leftarrow c\,x_i` in place for every tensor, :math:`c` first rounded
    to the tensor's dtype.

    As torch's ``g.mul_(c)`` (or ``_foreach_mul_``) by a 0-d tensor ``c`` in another
    dtype: ``c`` is converted to each gradient's dtype and the product rounded to it.  An
    infinite element times a zero ``c`` gives NaN, silently as in torch.  ``foreach=False``
    is the loop below; otherwise the engine multiplies (:func:`minireg._engine.clip.scale_`:
    a whole flat gradient buffer at once, large arrays on threads), the same products.
    """
    with np.errstate(invalid="ignore"):  # inf * 0 = nan, silently, as in torch
        if foreach is not False and not in_textbook_mode():
            clip_engine.scale_(tensors, c)
            return
        for x in tensors:
            x *= c.astype(x.dtype)
