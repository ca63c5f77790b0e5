"""Weight initialisation, mirroring ``torch.nn.init``.

Every initialiser takes an ndarray or a :class:`minireg.Parameter`, fills it **in place**
(in its own dtype: float32 stays float32) and returns what it was given.  Random ones take
``generator=None``: a ``numpy.random.Generator``, or ``None`` for the default generator
that :func:`minireg.manual_seed` reseeds.  NumPy cannot reproduce torch's random stream,
so a seed reproduces minireg's draws, not torch's; the laws (distributions, bounds,
standard deviations) are torch's, the bounds and standard deviations computed with
torch's operations in torch's order so that they agree to the last bit.

The schemes and where they come from:

* Xavier / Glorot: Glorot & Bengio (2010), "Understanding the difficulty of training deep
  feedforward neural networks": keep the variance of activations and of gradients
  constant across layers, :math:`\\operatorname{Var} W = 2/(n_\\text{in} + n_\\text{out})`.
* Kaiming / He: He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers": the same for
  (leaky) ReLU layers, :math:`\\operatorname{Var} W = \\text{gain}^2 / n`.
* Orthogonal: Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear
  dynamics of learning in deep linear neural networks".
* Sparse: Martens (2010), "Deep learning via Hessian-free optimization".
"""

from __future__ import annotations

import math
import warnings
from typing import TypeVar

import numpy as np

from minireg import random as _random
from minireg.parameter import Parameter

__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

T = TypeVar("T", np.ndarray, Parameter)
ArrayLike = np.ndarray | Parameter

# Names torch's error messages give the dtypes (C++ type name, ScalarType name).
_CPP_NAMES = {"float16": "c10::Half", "float32": "float", "float64": "double"}
_SCALAR_TYPE_NAMES = {
    "float16": "Half", "float32": "Float", "float64": "Double",
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
    "bool": "Bool",
}  # fmt: skip


def _array(tensor: ArrayLike) -> np.ndarray:
    """The ndarray to fill: the array itself, or a Parameter's ``.data``."""
    if isinstance(tensor, Parameter):
        return tensor.data
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(f"expected an ndarray or a Parameter, got {type(tensor).__name__}")


def _scalar_type_name(dtype: np.dtype) -> str:
    return _SCALAR_TYPE_NAMES.get(dtype.name, dtype.name)


def _check_floating(array: np.ndarray, kernel: str) -> None:
    # torch's samplers dispatch on floating dtypes only.
    if not np.issubdtype(array.dtype, np.floating):
        raise NotImplementedError(
            f"\"{kernel}\" not implemented for '{_scalar_type_name(array.dtype)}'"
        )


def _check_representable(dtype: np.dtype, *values: float) -> None:
    """torch's RuntimeError for a number an integer dtype cannot hold (NumPy's would be
    an OverflowError)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for value in values:
            if not info.min <= value <= info.max:
                raise RuntimeError(
                    f"value cannot be converted to type {dtype.name} without overflow"
                )


# ------------------------------------------------------------------------------ sampling kernels
def _fill_uniform(
    array: np.ndarray, low: float, high: float, generator: np.random.Generator
) -> None:
    r"""Fill ``array`` with :math:`x = a + (b - a)\,u`, :math:`u \sim \mathcal{U}[0, 1)`.

    Bounds are validated as torch's ``uniform_`` does, then rounded to the array's dtype
    before the arithmetic (torch's CPU kernel does the same), so ``u = 0`` gives ``a``.
    """
    _check_floating(array, "check_uniform_bounds")
    info = np.finfo(array.dtype)
    lowest, highest = float(info.min), float(info.max)
    cpp_name = _CPP_NAMES.get(array.dtype.name, array.dtype.name)
    if not lowest <= low <= highest:
        raise RuntimeError(f"from is out of bounds for {cpp_name}")
    if not lowest <= high <= highest:
        raise RuntimeError(f"to is out of bounds for {cpp_name}")
    if not low <= high:
        raise RuntimeError(
            f"uniform_ expects to return a [from, to) range, but found from={low:g} > to={high:g}"
        )
    if not high - low <= highest:
        raise RuntimeError(
            "uniform_ expects to-from <= "
            f"std::numeric_limits<{_scalar_type_name(array.dtype)}>::max(), "
            f"but found to={high:g} and from={low:g} which result in to-from to exceed the limit"
        )
    if array.size == 0:
        return
    a, b = array.dtype.type(low), array.dtype.type(high)
    draw_dtype = np.float32 if array.dtype == np.float32 else np.float64
    array[...] = generator.random(array.shape, dtype=draw_dtype)
    array *= b - a
    array += a


def _fill_normal(
    array: np.ndarray, mean: float, std: float, generator: np.random.Generator
) -> None:
    r"""Fill ``array`` with :math:`x = \mu + \sigma z`, :math:`z \sim \mathcal{N}(0, 1)`."""
    if not std >= 0.0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    if array.size == 0:
        return
    _check_floating(array, "normal_kernel_cpu")
    draw_dtype = np.float32 if array.dtype == np.float32 else np.float64
    array[...] = generator.standard_normal(array.shape, dtype=draw_dtype)
    array *= std
    array += mean


def _normal_cdf(x: float) -> float:
    r""":math:`\Phi(x) = \tfrac12\,(1 + \operatorname{erf}(x/\sqrt2))`."""
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _trunc_normal_by_redrawing(
    array: np.ndarray, mean: float, std: float, a: float, b: float, generator: np.random.Generator
) -> None:
    r"""Draw :math:`\mathcal{N}(\mu, \sigma^2)`; redraw every value outside :math:`[a, b]`
    until none is left.  Conditioning on acceptance gives exactly the truncated law
    :math:`\varphi((x-\mu)/\sigma)\,/\,\sigma\big(\Phi(\beta) - \Phi(\alpha)\big)` on
    :math:`[a, b]`, with :math:`\alpha = (a-\mu)/\sigma`, :math:`\beta = (b-\mu)/\sigma`.
    Efficient when the window holds much of the mass (torch uses it above 30 %).
    """
    lo, hi = (
        array.dtype.type(a),
        array.dtype.type(b),
    )  # torch compares with the bounds in the array's dtype
    values = np.empty(array.size, dtype=array.dtype)
    _fill_normal(values, mean, std, generator)
    outside = (values < lo) | (values > hi)  # so a NaN (NaN mean) counts as inside, as in torch
    while outside.any():
        fresh = np.empty(np.count_nonzero(outside), dtype=array.dtype)
        _fill_normal(fresh, mean, std, generator)
        values[outside] = fresh
        outside = (values < lo) | (values > hi)
    array[...] = values.reshape(array.shape)


def _trunc_normal_by_rejection(
    array: np.ndarray, mean: float, std: float, a: float, b: float, generator: np.random.Generator
) -> None:
    r"""Rejection sampling from uniform proposals :math:`x \sim \mathcal{U}[a, b)`, accepted
    when

    .. math::
        \log u \le -\tfrac12\Big(\frac{x-\mu}{\sigma}\Big)^2 - \log p^*,
        \qquad u \sim \mathcal{U}[0, 1),

    where :math:`\log p^* = -\tfrac12((m-\mu)/\sigma)^2` is the log-density's peak on
    :math:`[a, b]`, at :math:`m = \operatorname{clamp}(\mu, a, b)`.  Accepted values follow
    the truncated normal exactly.  Efficient when the window holds little of the normal's
    mass (narrow or far from the mean), where redrawing normals would rarely land inside.
    """
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    values = np.empty(array.size, dtype=array.dtype)
    pending = np.ones(array.size, dtype=bool)
    while pending.any():
        proposals = np.empty(np.count_nonzero(pending), dtype=array.dtype)
        _fill_uniform(proposals, a, b, generator)
        u = np.empty_like(proposals)
        _fill_uniform(u, 0.0, 1.0, generator)
        log_density = -0.5 * ((proposals - mean) / std) ** 2 - log_peak
        with np.errstate(divide="ignore"):  # log(0) = -inf: always accepted
            rejected = np.log(u) > log_density  # written as torch does, so NaN accepts
        slots = np.flatnonzero(pending)
        values[slots] = proposals
        pending[slots] = rejected
    array[...] = values.reshape(array.shape)


def _semi_orthogonal(gaussian: np.ndarray) -> np.ndarray:
    r"""The (semi-)orthogonal matrix that ``orthogonal_`` makes from a Gaussian matrix.

    For :math:`A \in \mathbb{R}^{r \times c}` with i.i.d. :math:`\mathcal{N}(0, 1)` entries
    (transposed first when :math:`r < c`, so that it is tall), take the reduced QR
    factorisation :math:`A = QR` and return

    .. math:: Q' = Q \operatorname{diag}(\operatorname{sign} R_{ii})

    (transposed back when :math:`r < c`).  The sign fix makes the factorisation unique
    (positive diagonal of :math:`R`), and with it :math:`Q'` is Haar-distributed, uniform
    over the matrices with orthonormal columns, whatever sign convention LAPACK uses;
    without it, it is not (Mezzadri 2007, "How to generate random matrices from the
    classical compact groups", arXiv:math-ph/0609050).  The rows (``r <= c``) or
    columns (``r >= c``) of the result are orthonormal.  A zero :math:`R_{ii}` (probability
    0) zeroes a column, as in torch.
    """
    rows, cols = gaussian.shape
    tall = gaussian.T if rows < cols else gaussian
    q, r = np.linalg.qr(tall, mode="reduced")  # NumPy factors float32 in double, torch in float32
    q *= np.sign(np.diagonal(r))  # multiplies column j by sign(R_jj)
    return q.T if rows < cols else q


# ------------------------------------------------------------------------------ gains and fans
def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended scale of the weights for a layer followed by ``nonlinearity``.

    ``1`` (an int, as torch returns) for linear, conv and sigmoid layers; ``5/3`` for tanh;
    :math:`\sqrt2` for ReLU; :math:`\sqrt{2/(1+s^2)}` for leaky ReLU with negative slope
    :math:`s` = ``param`` (default 0.01; ``bool`` is rejected); ``3/4`` for SELU.
    """
    linear_fns = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    ]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (isinstance(param, int) and not isinstance(param, bool)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4  # found empirically by torch's authors (pytorch PR #50664)
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(tensor: ArrayLike) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight laid out as torch's: ``[out, in, *kernel]``.

    ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``: every output sees
    ``in`` channels times the receptive field (the layer computes ``x @ W.T``).
    """
    shape = np.shape(_array(tensor))
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field_size = math.prod(shape[2:])
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def _calculate_correct_fan(tensor: ArrayLike, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ------------------------------------------------------------------------------ initialisers
def uniform_(
    tensor: T, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> T:
    r"""Fill with :math:`\mathcal{U}[a, b)`."""
    _fill_uniform(_array(tensor), float(a), float(b), _random.resolve(generator))
    return tensor


def normal_(
    tensor: T, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> T:
    r"""Fill with :math:`\mathcal{N}(\text{mean}, \text{std}^2)`."""
    _fill_normal(_array(tensor), float(mean), float(std), _random.resolve(generator))
    return tensor


def trunc_normal_(
    tensor: T,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: np.random.Generator | None = None,
) -> T:
    r"""Fill with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to :math:`[a, b]`.

    ``a`` and ``b`` are absolute bounds, not multiples of ``std``.  Like torch 2.13, this
    is exact rejection sampling: with :math:`P = \Phi(\beta) - \Phi(\alpha)` the mass of
    the window, redraw normals when :math:`P > 0.3`
    (:func:`_trunc_normal_by_redrawing`), else accept uniform proposals
    (:func:`_trunc_normal_by_rejection`).
    """
    array = _array(tensor)
    mean, std, a, b = float(mean), float(std), float(a), float(b)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )
    mass = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    if mass > 0.3:  # torch's path that first converts the bounds to the array's dtype
        _check_representable(array.dtype, a, b)
    generator = _random.resolve(generator)
    if mass > 0.3:
        _trunc_normal_by_redrawing(array, mean, std, a, b, generator)
    else:
        _trunc_normal_by_rejection(array, mean, std, a, b, generator)
    return tensor


def constant_(tensor: T, val: float) -> T:
    """Fill with ``val`` (an integer array truncates it toward zero, as torch does)."""
    array = _array(tensor)
    if np.issubdtype(array.dtype, np.floating):
        info = np.finfo(array.dtype)
        if not float(info.min) <= float(val) <= float(info.max) and math.isfinite(float(val)):
            cpp_name = _CPP_NAMES.get(array.dtype.name, array.dtype.name)
            raise RuntimeError(f"value cannot be converted to type {cpp_name} without overflow")
    array[...] = val
    return tensor


def ones_(tensor: T) -> T:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor: T) -> T:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def eye_(tensor: T) -> T:
    """Fill a 2-D array with the identity (ones on the main diagonal of a rectangle too),
    which passes as many of a ``Linear`` layer's inputs through unchanged as it can."""
    array = _array(tensor)
    if array.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    array[...] = np.eye(*array.shape, dtype=array.dtype)
    return tensor


def dirac_(tensor: T, groups: int = 1) -> T:
    """Fill a conv weight ``[out, in, *kernel]`` (3, 4 or 5 dims) with a Dirac delta, so the
    convolution passes as many input channels through unchanged as it can; with ``groups``,
    each group of output channels does so for its own inputs.

    Output channel ``g * out_per_group + d`` gets a 1 at input channel ``d`` and the
    kernel's centre (index ``size // 2`` on each spatial axis), for ``d < min(out_per_group,
    in)``; everything else is 0.
    """
    array = _array(tensor)
    if array.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = array.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    array[...] = 0
    if min_dim <= 0 or groups <= 0:
        return tensor
    for axis, size in enumerate(sizes[2:], start=2):
        if size == 0:  # no centre to put the 1 at (torch's indexing error)
            raise IndexError(f"index 0 is out of bounds for dimension {axis} with size 0")
    channel = np.arange(min_dim)
    out_channels = (np.arange(groups)[:, None] * out_per_group + channel).ravel()
    in_channels = np.tile(channel, groups)
    centre = tuple(size // 2 for size in sizes[2:])
    array[(out_channels, in_channels) + centre] = 1
    return tensor


def xavier_uniform_(
    tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None
) -> T:
    r"""Glorot & Bengio (2010): :math:`\mathcal{U}[-a, a)` with

    .. math::
        \sigma = \text{gain}\sqrt{\frac{2}{n_\text{in} + n_\text{out}}}, \qquad a = \sqrt3\,\sigma

    (the uniform law with standard deviation :math:`\sigma`; torch computes it in this
    order, which is not bitwise :math:`\text{gain}\sqrt{6/(n_\text{in} + n_\text{out})}`).
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    r"""Glorot & Bengio (2010): :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = \text{gain}\sqrt{2/(n_\text{in} + n_\text{out})}`."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: ArrayLike, a: float, mode: str, nonlinearity: str) -> float:
    r""":math:`\sigma = \text{gain} / \sqrt{n}` with :math:`n` the fan of ``mode`` (He et al.,
    2015: keeps the variance of a (leaky) ReLU layer's outputs, or gradients, constant)."""
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(
        nonlinearity, a
    )  # a = 0 is a slope of 0, so gain sqrt(2), not the 0.01 default
    return gain / math.sqrt(fan)


def kaiming_uniform_(
    tensor: T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> T:
    r"""He et al. (2015): :math:`\mathcal{U}[-\sqrt3\,\sigma, \sqrt3\,\sigma)`,
    :math:`\sigma = \text{gain}/\sqrt{\text{fan}}` (``a``: the leaky ReLU's negative slope;
    ``mode``: ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one)."""
    if 0 in np.shape(_array(tensor)):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> T:
    r"""He et al. (2015): :math:`\mathcal{N}(0, \sigma^2)`,
    :math:`\sigma = \text{gain}/\sqrt{\text{fan}}`."""
    if 0 in np.shape(_array(tensor)):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: T, gain: float = 1, generator: np.random.Generator | None = None) -> T:
    """Saxe et al. (2014): a Haar-random (semi-)orthogonal matrix times ``gain``.

    The array is viewed as ``rows = shape[0]`` by ``cols = size // rows`` (a conv weight's
    trailing dimensions flattened); a standard normal ``(rows, cols)`` matrix goes
    through :func:`_semi_orthogonal`.  Rows are orthonormal when ``rows <= cols``, columns
    otherwise.  An empty array is left as it is.
    """
    array = _array(tensor)
    if array.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if array.size == 0:
        return tensor
    rows = array.shape[0]
    cols = array.size // rows
    gaussian = np.empty((rows, cols), dtype=array.dtype)
    _fill_normal(gaussian, 0.0, 1.0, _random.resolve(generator))
    array[...] = _semi_orthogonal(gaussian).reshape(array.shape)
    array *= float(gain)
    return tensor


def sparse_(
    tensor: T, sparsity: float, std: float = 0.01, generator: np.random.Generator | None = None
) -> T:
    r"""Martens (2010): :math:`\mathcal{N}(0, \text{std}^2)` entries, then
    ``ceil(sparsity * rows)`` of them set to zero in every column, at rows chosen uniformly
    without replacement, independently per column.

    Torch draws those rows with ``randperm`` from its global generator whatever
    ``generator`` is; here ``generator`` drives both draws, so it reproduces the whole fill.
    """
    array = _array(tensor)
    if array.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = array.shape
    num_zeros = math.ceil(sparsity * rows)
    generator = _random.resolve(generator)
    _fill_normal(array, 0.0, float(std), generator)
    # An independent random permutation of the row indices in every column.
    row_order = generator.permuted(np.tile(np.arange(rows)[:, None], (1, cols)), axis=0)
    zero_rows = row_order[:num_zeros]  # slicing like torch's randperm(rows)[:num_zeros]
    array[zero_rows, np.arange(cols)] = 0
    return tensor
