r"""Gradient clipping: rescale all gradients together, or clamp each element.

Step 7 of the reading path, after ``minireg/nn/_functional/dropout.py`` and
``minireg/nn/init.py``.  Next: step 8, the engine (``minireg/_engine/``), last.

Clipping by the global norm is from Pascanu, Mikolov & Bengio (2013), "On the difficulty
of training recurrent neural networks": when the norm of the whole gradient exceeds a
threshold, scale it back onto the sphere of that radius, keeping its direction.  With
gradients :math:`g_1, \dots, g_k`:

.. math::
    \|g\|_p = \big\|(\|g_1\|_p, \dots, \|g_k\|_p)\big\|_p, \qquad
    c = \min\Big(\frac{\text{max\_norm}}{\|g\|_p + 10^{-6}},\; 1\Big), \qquad
    g_i \leftarrow c\, g_i

Torch's four public functions are here with torch 2.13's semantics and signatures:
:func:`clip_grad_norm_` is :func:`get_total_norm` (the first equation) followed by
:func:`clip_grads_with_norm_` (the other two).  The norms and the in-place scaling are
:mod:`minireg.numerics` helpers (:func:`~minireg.numerics.vector_norm`,
:func:`~minireg.numerics.vector_norms`, :func:`~minireg.numerics.scale_`).  With
``foreach=False`` every step runs as written here, one gradient at a time; the default
``foreach=None`` lets those helpers hand the work to the engine (a flat gradient buffer
in one piece, threads), with bit for bit the same results.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import numpy as np

from minireg.numerics import quotient, scale_, vector_norm, vector_norms
from minireg.parameter import Parameter

__all__ = [
    "clip_coefficient",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
]

ParametersT = Parameter | Iterable[Parameter]
ArraysT = np.ndarray | Parameter | Iterable[np.ndarray | Parameter]


# ------------------------------------------------------------------------------ kernels
def clip_grad_norm_(
    parameters: ParametersT,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> np.ndarray:
    r"""Scale all gradients together so that their total norm is at most ``max_norm``.

    .. math::
        \|g\|_p = \big\|(\|g_1\|_p, \dots, \|g_k\|_p)\big\|_p, \qquad
        g_i \leftarrow \min\Big(\frac{\text{max\_norm}}{\|g\|_p + 10^{-6}},\; 1\Big)\, g_i

    Returns the total norm from before clipping (a 0-d array in the gradients' dtype).
    Parameters whose ``grad`` is ``None`` are skipped.  When ``error_if_nonfinite`` raises,
    no gradient has been touched.  A negative ``max_norm`` is not rejected (torch does not):
    the gradients get negated.  ``foreach=False`` runs the plain per-gradient code;
    ``None`` or ``True`` the engine where it applies (same bits).
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)  # a generator can be read once; we need it twice
        if is_generator and len(parameters) == 0:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=2,
            )
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)  # ||g||_p
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)  # g_i <- c g_i
    return total_norm


def get_total_norm(
    tensors: ArraysT,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> np.ndarray:
    r"""The norm of all ``tensors`` taken together: the ``norm_type``-norm of their norms,

    .. math::
        \|(x_1, \dots, x_k)\|_p = \big\|\,(\|x_1\|_p, \dots, \|x_k\|_p)\,\big\|_p,

    which equals the norm of their concatenation for every ``p`` except 0 (there it counts
    the tensors with a non-zero element, as torch does).  Each tensor's norm is taken in
    its own dtype; stacking them promotes (float32 with float64 gives float64).  With no
    tensors the result is ``0.0`` in float32.  A NaN or infinite total raises
    ``RuntimeError`` when ``error_if_nonfinite``.
    """
    if isinstance(tensors, (np.ndarray, np.generic, Parameter)):
        tensors = [tensors]
    else:
        tensors = list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return np.array(0.0, dtype=np.float32)  # torch.tensor(0.0)
    norms = vector_norms([np.asarray(t) for t in tensors], norm_type, foreach)  # ||x_i||_p
    total_norm = vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total_norm


def clip_coefficient(max_norm: float, total_norm: np.ndarray) -> np.ndarray:
    r"""The factor that every gradient is multiplied by (Pascanu et al., 2013, Alg. 2):

    .. math::
        c = \min\Big(\frac{\text{max\_norm}}{\|g\| + 10^{-6}},\; 1\Big)

    computed in ``total_norm``'s dtype.  The :math:`10^{-6}` keeps a zero norm finite; in
    float32 it vanishes once :math:`\|g\| > 16` (below half an ULP), and at
    :math:`\|g\| = \text{max\_norm}` it makes :math:`c` slightly below 1, not 1.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # inf, NaN pass through
        c = quotient(max_norm, total_norm + 1e-6)
    return np.asarray(np.minimum(c, 1.0), dtype=total_norm.dtype)


def clip_grads_with_norm_(
    parameters: ParametersT, max_norm: float, total_norm: np.ndarray, foreach: bool | None = None
) -> None:
    r"""Multiply every gradient in place by :func:`clip_coefficient` of a given total norm:
    :math:`g_i \leftarrow c\, g_i`.

    The coefficient is rounded to each gradient's dtype before multiplying.  When it is
    exactly 1 (a total norm within max_norm, the usual case when clipping is a safeguard)
    nothing is written, since :math:`g \cdot 1 = g` bit for bit; torch multiplies anyway,
    as a branch on a GPU value would wait for the GPU.
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm = float(max_norm)
    if len(grads) == 0:
        return
    c = clip_coefficient(max_norm, np.asarray(total_norm))
    if c != 1:  # (g * 1 = g: then nothing to write)
        scale_(grads, c, foreach)  # g_i <- c g_i


def clip_grad_value_(parameters: ParametersT, clip_value: float) -> None:
    r"""Clamp every gradient element in place into :math:`[-v, v]`:

    .. math:: g \leftarrow \min(\max(g, -v), v)

    in that order, as torch does, so a negative ``v`` (which torch does not reject) sets
    every element to ``v``.  NaN stays NaN.
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    clip_value = float(clip_value)
    for grad in [p.grad for p in parameters if p.grad is not None]:
        np.copyto(grad, np.minimum(np.maximum(grad, -clip_value), clip_value))
