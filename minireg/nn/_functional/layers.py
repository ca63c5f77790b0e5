r"""Kernels of the basic layers and losses: linear, activations, log-softmax and four losses.

Each forward function is the equation in its docstring, written with NumPy; each
``*_backward`` function takes the upstream gradient :math:`\bar y = \partial L/\partial y`
and returns the gradients, in torch's operation order (so the results agree with torch's
autograd to a rounding error).  Shapes, dtypes and error messages follow
``torch.nn.functional``.  Shapes in messages are printed the NumPy way, ``(3, 4)``, where
torch prints ``torch.Size([3, 4])``.

Losses take ``reduction`` as a keyword (``"none"``, ``"mean"`` or ``"sum"``); torch's
deprecated ``size_average``/``reduce`` arguments, which sit before it, are not part of minireg.
A reduced loss is returned as a 0-d array, and a 0-d input gives a 0-d output (NumPy's
ufuncs alone would return NumPy scalars, hence the ``np.asarray`` around some results).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from minireg.nn._functional.dtype_checks import (
    as_tensor,
    check_floating,
    check_real,
    is_floating,
    torch_dtype_name,
)

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "l1_loss",
    "l1_loss_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "mse_loss",
    "mse_loss_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
]

# torch's names for dtypes, used in the messages copied from torch.
_TORCH_DTYPE_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "uint8": "Byte",
    "bool": "Bool",
}


# ... and the C++ names some of its messages use.
_CPP_TYPE_NAMES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long int"}


def _dtype_name(dtype: np.dtype, cpp: bool = False) -> str:
    name = np.dtype(dtype).name
    return (_CPP_TYPE_NAMES if cpp else _TORCH_DTYPE_NAMES).get(name, name)


# ============================================================================ linear
def _check_linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """torch's checks, in its order and with its text, which differ between its two paths:
    addmm (with a bias) and matmul (without)."""
    if input.ndim == 0:
        raise RuntimeError(
            "both arguments to linear need to be at least 1D, but they are "
            f"{input.ndim}D and {weight.ndim}D"
        )
    if bias is not None and bias.dtype != weight.dtype:
        raise RuntimeError(
            "self and mat2 must have the same dtype, but got "
            f"{_dtype_name(bias.dtype)} and {_dtype_name(weight.dtype)}"
        )
    if bias is not None and input.dtype != weight.dtype:
        raise RuntimeError(
            "mat1 and mat2 must have the same dtype, but got "
            f"{_dtype_name(input.dtype)} and {_dtype_name(weight.dtype)}"
        )
    if input.shape[-1] != weight.shape[-1]:
        rows = math.prod(input.shape[:-1])  # torch folds the leading dimensions into one
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
            f"{weight.shape[1]}x{weight.shape[0]})"
        )
    if input.dtype != weight.dtype:
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_dtype_name(input.dtype, cpp=True)} != {_dtype_name(weight.dtype, cpp=True)}"
        )


def linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    r"""Affine map of the last dimension: :math:`y = x W^\top + b`.

    ``input`` is ``(*, in_features)``, ``weight`` is ``(out_features, in_features)``,
    ``bias`` is ``(out_features,)``; the result is ``(*, out_features)``.  A 1-D input is one
    sample.  As torch, input, weight and bias must share their dtype (no silent upcast).
    """
    input, weight = as_tensor(input, "linear"), as_tensor(weight, "linear", "weight", 2)
    bias = None if bias is None else as_tensor(bias, "linear", "bias", 3)
    _check_linear(input, weight, bias)
    output = input @ weight.T
    if bias is not None:
        output += bias
    return output


def linear_backward(
    grad_output: np.ndarray, input: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradients of :math:`y = x W^\top + b`: ``(grad_input, grad_weight, grad_bias)``.

    .. math::
        \bar x = \bar y\,W, \qquad
        \bar W = \textstyle\sum_n \bar y_n\, x_n^\top, \qquad
        \bar b = \textstyle\sum_n \bar y_n

    where :math:`n` runs over every leading (batch) position.  ``grad_bias`` is returned
    whether or not the layer has a bias.
    """
    grad_input = grad_output @ weight
    # Fold the batch dimensions: (*, out) -> (n, out) and (*, in) -> (n, in).
    n = math.prod(input.shape[:-1])  # explicit: reshape(-1, 0) is ambiguous for empty arrays
    grad_rows = grad_output.reshape(n, weight.shape[0])
    input_rows = input.reshape(n, weight.shape[1])
    grad_weight = grad_rows.T @ input_rows
    grad_bias = grad_rows.sum(axis=0)
    return grad_input, grad_weight, grad_bias


# ============================================================================ activations
def _real_floating(input: np.ndarray, name: str) -> np.ndarray:
    """Integer or boolean input in the default floating dtype (torch's promotion for
    sigmoid and tanh: minireg's default is float64, torch's float32); complex refused."""
    check_real(input, name=name)
    return input if is_floating(input.dtype) else input.astype(np.float64)


def relu(input: np.ndarray) -> np.ndarray:
    r"""Rectified linear unit, :math:`y = \max(x, 0)` (Nair & Hinton, 2010).  NaN stays NaN.

    As torch, integer input gives integer output; boolean and complex input are refused.
    """
    input = as_tensor(input, "relu")
    if input.dtype == np.bool_:
        raise RuntimeError("Boolean inputs not supported for relu")
    if input.dtype.kind == "c":
        raise NotImplementedError("clamp is not supported for complex types")
    return np.asarray(np.maximum(input, 0))


def relu_backward(grad_output: np.ndarray, output: np.ndarray) -> np.ndarray:
    r""":math:`\bar x = \bar y \cdot [y > 0]`, computed from the output as torch does.

    torch zeroes where :math:`y \le 0`, so a NaN output passes its gradient through.
    """
    return np.where(output <= 0, 0, grad_output)


def leaky_relu(input: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    r"""Leaky ReLU (Maas et al., 2013): :math:`y = x` if :math:`x > 0`, else :math:`a\,x`."""
    input = as_tensor(input, "leaky_relu")
    check_floating(input, "leaky_relu_cpu")
    with np.errstate(invalid="ignore"):  # inf * 0 on the branch that np.where discards
        return np.where(input > 0, input, input * float(negative_slope))


def leaky_relu_backward(
    grad_output: np.ndarray, input: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    r""":math:`\bar x = \bar y` if :math:`x > 0`, else :math:`a\,\bar y`."""
    grad_output = np.asarray(grad_output)
    return np.where(input > 0, grad_output, grad_output * float(negative_slope))


def sigmoid(input: np.ndarray) -> np.ndarray:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})`."""
    input = _real_floating(as_tensor(input, "sigmoid"), "sigmoid")
    with np.errstate(
        over="ignore"
    ):  # e^{-x} = inf for very negative x gives 1/inf = 0, as in torch
        return np.asarray(1 / (1 + np.exp(-input)))


def sigmoid_backward(grad_output: np.ndarray, output: np.ndarray) -> np.ndarray:
    r""":math:`\bar x = \bar y\,(1 - y)\,y` with :math:`y = \sigma(x)`, in torch's order."""
    return np.asarray(grad_output * (1 - output) * output)


def tanh(input: np.ndarray) -> np.ndarray:
    r"""Hyperbolic tangent, :math:`y = \tanh x`."""
    return np.asarray(np.tanh(_real_floating(as_tensor(input, "tanh"), "tanh")))


def tanh_backward(grad_output: np.ndarray, output: np.ndarray) -> np.ndarray:
    r""":math:`\bar x = \bar y\,(1 - y^2)` with :math:`y = \tanh x`."""
    return np.asarray(grad_output * (1 - output * output))


# ============================================================================ log-softmax
def log_softmax(input: np.ndarray, dim: int) -> np.ndarray:
    r"""Log-softmax along ``dim``, shifted by the maximum so that no exponential overflows.

    .. math::
        \log \mathrm{softmax}(x)_i = (x_i - m) - \log \textstyle\sum_j e^{x_j - m},
        \qquad m = \max_j x_j
    """
    input = as_tensor(input, "log_softmax")
    _check_dim(dim, input.ndim)
    _check_log_softmax_dtype(input, dim)
    # initial=-inf lets an empty dimension through (its maximum is -inf), like torch; rows
    # of -inf give NaN and an empty dimension log(0), silently as in torch.
    with np.errstate(divide="ignore", invalid="ignore"):
        shifted = input - np.max(input, axis=dim, keepdims=True, initial=-np.inf)
        return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def _check_dim(dim: int, ndim: int) -> None:
    """torch's IndexError for a dimension out of range (a 0-d array counts as 1-d)."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(
            "Dimension out of range "
            f"(expected to be in range of [{-size}, {size - 1}], but got {dim})"
        )


def _check_log_softmax_dtype(input: np.ndarray, dim: int) -> None:
    """torch's dispatch error, which names the kernel for the last dimension or any other."""
    last = dim in (-1, input.ndim - 1) or input.ndim == 0
    check_floating(input, "log_softmax_lastdim_kernel_impl" if last else "log_softmax_kernel_impl")


def log_softmax_backward(grad_output: np.ndarray, output: np.ndarray, dim: int) -> np.ndarray:
    r""":math:`\bar x = \bar y - \mathrm{softmax}(x)\,\sum_j \bar y_j`,
    using :math:`\mathrm{softmax} = e^{y}`."""
    return grad_output - np.exp(output) * np.sum(grad_output, axis=dim, keepdims=True)


def _log_sigmoid(input: np.ndarray) -> np.ndarray:
    r"""Stable :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})` (torch's form)."""
    return np.minimum(input, 0) - np.log1p(np.exp(-np.abs(input)))


# ============================================================================ reductions
def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    """The loss as is (``"none"``), or its sum or mean as a 0-d array (mean of nothing = NaN)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / loss.size)  # a Python int divisor keeps float32 in float32


def _reduction_scale(grad_output: np.ndarray, size: int, reduction: str) -> np.ndarray:
    """The upstream gradient of each element's loss: ``grad_output``, divided by N for a mean."""
    grad_output = np.asarray(grad_output)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return grad_output / size
    return grad_output


def _promoted(input: np.ndarray, target: np.ndarray) -> np.dtype:
    """torch's type promotion of two tensors: a floating dtype wins over an integer or
    boolean one whatever their sizes (NumPy would make float32 and int64 float64);
    otherwise (complex among them too) NumPy's rule, which agrees with torch's."""
    complex_ = input.dtype.kind == "c" or target.dtype.kind == "c"
    if not complex_ and is_floating(input.dtype) != is_floating(target.dtype):
        return input.dtype if is_floating(input.dtype) else target.dtype
    return np.result_type(input.dtype, target.dtype)


def _loss_arguments(input: object, target: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``input`` and ``target`` as arrays (torch's TypeError for anything else)."""
    return as_tensor(input, name), as_tensor(target, name, "target", 2)


def _check_subtraction(input: np.ndarray, target: np.ndarray) -> None:
    """torch's refusal to subtract booleans (``input - target`` in the losses)."""
    if input.dtype == np.bool_ and target.dtype == np.bool_:
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. "
            "Use the `^` or `logical_xor()` operator instead."
        )
    if input.dtype == np.bool_ or target.dtype == np.bool_:
        raise RuntimeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. "
            "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."
        )


def _difference(input: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``input - target`` in their promoted dtype."""
    dtype = _promoted(input, target)
    return np.subtract(input, target, dtype=dtype)


def _as_input_dtype(grad: np.ndarray, input: np.ndarray) -> np.ndarray:
    """A loss's gradient in the input's dtype, as autograd returns it (a non-floating input
    gets none in torch; here it keeps the computation's dtype)."""
    return grad.astype(input.dtype, copy=False) if is_floating(input.dtype) else grad


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting: sum ``grad`` over the dimensions that were expanded to reach its shape."""
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    expanded = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1
    )
    return grad.sum(axis=expanded, keepdims=True).reshape(shape)


def _check_broadcast(input: np.ndarray, target: np.ndarray) -> None:
    """torch's warning for a target of another shape, and its error if they cannot broadcast."""
    if target.shape == input.shape:
        return
    warnings.warn(
        f"Using a target size ({target.shape}) that is different to the input size "
        f"({input.shape}). "
        "This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.",
        stacklevel=3,
    )
    ndim = max(input.ndim, target.ndim)
    a = (1,) * (ndim - input.ndim) + input.shape
    b = (1,) * (ndim - target.ndim) + target.shape
    for i in reversed(range(ndim)):  # torch reports the last clash
        if a[i] != b[i] and a[i] != 1 and b[i] != 1:
            raise RuntimeError(
                f"The size of tensor a ({a[i]}) must match the size of tensor b ({b[i]}) "
                f"at non-singleton dimension {i}"
            )


# ============================================================================ regression losses
def mse_loss(input: np.ndarray, target: np.ndarray, *, reduction: str = "mean") -> np.ndarray:
    r"""Squared error, :math:`\ell_i = (x_i - y_i)^2`, then reduced (mean over every element
    by default).

    A target of another shape is broadcast against the input, with torch's warning.
    """
    input, target = _loss_arguments(input, target, "mse_loss")
    _check_broadcast(input, target)
    _check_reduction(reduction)
    dtype = _promoted(input, target)
    if not is_floating(dtype):  # torch's kernel is defined for floating dtypes only
        raise NotImplementedError(f"\"mse_cpu\" not implemented for '{torch_dtype_name(dtype)}'")
    return _reduce(np.square(_difference(input, target)), reduction)


def mse_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\bar x_i = \frac{2}{N}\,(x_i - y_i)\,\bar\ell` for the mean
    (:math:`2` instead of :math:`2/N` otherwise)."""
    input, target = np.asarray(input), np.asarray(target)
    diff = _difference(input, target)
    norm = (
        2.0 / diff.size if reduction == "mean" and diff.size else 2.0
    )  # torch: ((x - y) * norm) * grad
    grad = diff * norm * grad_output
    return _as_input_dtype(_sum_to_shape(grad, input.shape), input)


def l1_loss(input: np.ndarray, target: np.ndarray, *, reduction: str = "mean") -> np.ndarray:
    r"""Absolute error, :math:`\ell_i = |x_i - y_i|`, then reduced (mean by default).

    A target of another shape is broadcast against the input, with torch's warning.
    """
    input, target = _loss_arguments(input, target, "l1_loss")
    _check_broadcast(input, target)
    _check_reduction(reduction)
    check_real(input, target, name="l1_loss")
    _check_subtraction(input, target)
    dtype = _promoted(input, target)
    if reduction == "mean" and not is_floating(dtype):  # torch's mean() refuses integers
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {torch_dtype_name(dtype)}"
        )
    return _reduce(np.abs(_difference(input, target)), reduction)


def l1_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\bar x_i = \operatorname{sign}(x_i - y_i)\,\bar\ell / N` for the mean
    (no :math:`1/N` otherwise).

    The subgradient at :math:`x_i = y_i` is 0, as torch's ``sign``.
    """
    input, target = np.asarray(input), np.asarray(target)
    diff = _difference(input, target)
    grad = np.sign(diff) * _reduction_scale(grad_output, diff.size, reduction)
    return _as_input_dtype(_sum_to_shape(grad, input.shape), input)


# ============================================================================ cross-entropy
def _check_cross_entropy(input: np.ndarray, target: np.ndarray, label_smoothing: float) -> bool:
    """Validate like torch, in torch's order; True when ``target`` holds class probabilities."""
    if target.shape == input.shape:  # torch: same shape means probabilities
        if not np.issubdtype(target.dtype, np.floating):
            raise RuntimeError(
                "Expected floating point type for target with class probabilities, got "
                f"{_dtype_name(target.dtype)}"
            )
        if label_smoothing > 0.0 and label_smoothing > 1.0:
            raise RuntimeError(
                f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
            )
        if input.ndim == 0:
            raise IndexError("Dimension specified as 1 but tensor has no dimensions")
        _check_log_softmax_dtype(input, 0 if input.ndim == 1 else 1)
        return True
    if label_smoothing > 0.0 and label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    _check_log_softmax_dtype(input, 0 if input.ndim == 1 else 1)  # torch's log_softmax runs first
    if input.ndim == 1:
        if target.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if target.ndim == 1 and target.size != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.size}"
            )
    else:
        target_batch = target.shape[0] if target.ndim else 0  # torch reports 0 for a 0-d target
        if input.shape[0] != target_batch:
            raise ValueError(
                f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                f"({target_batch})."
            )
        if input.ndim == 2 and target.ndim != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        expected = (input.shape[0],) + input.shape[2:]
        if input.ndim > 2 and target.shape != expected:
            raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}")
    if input.ndim > 2 and target.dtype == np.uint8:
        raise RuntimeError(
            "expected scalar type Long but found Byte"
        )  # torch's spatial kernel wants int64
    if target.dtype not in (np.int64, np.uint8):
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {_dtype_name(target.dtype)}"
        )
    return False


def _check_targets_in_range(target: np.ndarray, n_classes: int, ignore_index: int) -> None:
    bad = (target != ignore_index) & ((target < 0) | (target >= n_classes))
    if bad.any():
        raise IndexError(f"Target {target[bad].flat[0]} is out of bounds.")


def cross_entropy(
    input: np.ndarray,
    target: np.ndarray,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    r"""Cross-entropy of logits ``input`` against class indices (or class probabilities).

    The class dimension is 1 (0 for a 1-D input of one sample); ``target`` holds one class
    index per sample and position (``(N,)`` for ``(N, C)``, ``(N, d_1, ...)`` for
    ``(N, C, d_1, ...)``).  With :math:`p = \log\mathrm{softmax}(x)` over the classes and
    :math:`C` classes, torch's label smoothing (Szegedy et al., 2016, "Rethinking the
    Inception Architecture", §7) mixes the usual loss with the uniform one:

    .. math::
        \ell_n &= -p_{n, t_n}, \qquad s_n = -\textstyle\sum_c p_{n,c}
        \qquad (\ell_n = s_n = 0 \text{ where } t_n = \text{ignore\_index}) \\
        L &= (1 - \varepsilon)\,R(\ell) + \frac{\varepsilon}{C}\,R(s)

    where :math:`R` is the reduction; the mean divides by the number of non-ignored
    targets (NaN when there are none).  Smoothing applies only for :math:`\varepsilon > 0`
    (torch ignores a negative one).

    A floating ``target`` of the input's shape holds class probabilities :math:`q`:
    :math:`L = R(-\sum_c q'_{n,c}\,p_{n,c})` with :math:`q' = (1-\varepsilon)q + \varepsilon/C`,
    and the mean divides by the number of samples and positions.
    """
    _check_reduction(reduction)
    input, target = _loss_arguments(input, target, "cross_entropy_loss")
    probabilities = _check_cross_entropy(input, target, label_smoothing)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if probabilities:
        if label_smoothing > 0.0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        if reduction == "none":
            return np.asarray(-(logp * target).sum(axis=class_dim))
        total = -(logp * target).sum()
        if reduction == "sum":
            return np.asarray(total)
        samples = logp.size // n_classes if n_classes else 0  # an empty input gives NaN
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / samples)

    if input.ndim == 1:
        target = target.reshape(())  # torch also takes a (1,) target for one sample
    _check_targets_in_range(target, n_classes, ignore_index)
    keep = target != ignore_index
    safe_target = np.where(keep, target, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe_target, class_dim), axis=class_dim)
    nll = np.where(keep, -picked.squeeze(class_dim), 0)
    if not label_smoothing > 0.0:
        return _reduce_nll(nll, keep, reduction)
    smooth = np.where(keep, -logp.sum(axis=class_dim), 0)
    loss = (1 - label_smoothing) * _reduce_nll(nll, keep, reduction) + _reduce_nll(
        smooth, keep, reduction
    ) * (label_smoothing / n_classes)
    return np.asarray(loss)


def _reduce_nll(loss: np.ndarray, keep: np.ndarray, reduction: str) -> np.ndarray:
    """Like :func:`_reduce`, but the mean is over the non-ignored targets only."""
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(loss.sum() / int(keep.sum()))
    return _reduce(loss, reduction)


def cross_entropy_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    r"""Gradient of :func:`cross_entropy` for ``input``: the softmax minus the (smoothed) target.

    With :math:`g_n` the upstream gradient of sample :math:`n`'s term (the loss gradient,
    divided by the count for the mean), the gradient for :math:`p` is

    .. math::
        \bar p_{n,c} = -(1-\varepsilon)\,g_n\,[c = t_n] - \frac{\varepsilon}{C}\,g_n

    (zero for ignored targets), and the log-softmax backward gives
    :math:`\bar x = \bar p - \mathrm{softmax}(x)\sum_c \bar p_c`, i.e.
    :math:`g_n(\mathrm{softmax}(x_n) - q'_n)`.
    """
    _check_reduction(reduction)
    input, target = np.asarray(input), np.asarray(target)
    grad_output = np.asarray(grad_output)
    probabilities = _check_cross_entropy(input, target, label_smoothing)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if probabilities:
        if label_smoothing > 0.0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        if reduction == "none":
            grad_logp = -np.expand_dims(grad_output, class_dim) * target
        else:
            samples = logp.size // n_classes if n_classes else 0
            grad_logp = -_reduction_scale(grad_output, samples, reduction) * target
        # autograd hands log_softmax's backward a gradient in the input's dtype
        return log_softmax_backward(grad_logp.astype(logp.dtype, copy=False), logp, class_dim)

    if input.ndim == 1:
        target = target.reshape(())
    _check_targets_in_range(target, n_classes, ignore_index)
    keep = target != ignore_index
    count = int(keep.sum())
    smoothing = label_smoothing > 0.0
    # torch's order: the upstream gradient is scaled by (1 - eps), then divided by the count.
    nll_grad = grad_output * (1 - label_smoothing) if smoothing else grad_output
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            nll_grad = nll_grad / count
    nll_grad = np.where(keep, nll_grad, 0)
    grad_logp = np.zeros_like(logp)
    np.put_along_axis(
        grad_logp,
        np.expand_dims(np.where(keep, target, 0), class_dim),
        np.expand_dims(-nll_grad, class_dim),
        axis=class_dim,
    )
    if smoothing:
        smooth_grad = grad_output * (label_smoothing / n_classes)
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                smooth_grad = smooth_grad / count
        grad_logp -= np.expand_dims(np.where(keep, smooth_grad, 0), class_dim)
    return log_softmax_backward(grad_logp, logp, class_dim)


# ============================================================================ binary cross-entropy
def _check_binary_target(input: np.ndarray, target: np.ndarray) -> None:
    if target.shape != input.shape:
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    check_real(input, target, name="binary_cross_entropy_with_logits")
    check_floating(input, "log_sigmoid_cpu")
    if target.dtype == np.bool_:  # torch computes 1 - target first
        _check_subtraction(np.ones((), np.int64), target)
    if not np.issubdtype(target.dtype, np.floating):
        raise RuntimeError(  # torch computes the loss in place in the target's dtype
            f"result type {_dtype_name(input.dtype)} can't be cast to the desired output type "
            f"{_dtype_name(target.dtype)}"
        )


def binary_cross_entropy_with_logits(
    input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> np.ndarray:
    r"""Binary cross-entropy of logits :math:`x` against targets :math:`y \in [0, 1]`.

    .. math::
        \ell_i = -[y_i \log\sigma(x_i) + (1 - y_i)\log(1 - \sigma(x_i))]
               = (1 - y_i)\,x_i - \log\sigma(x_i),
        \qquad \log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})

    which never exponentiates a large positive number.  As torch, the loss is computed in
    place in the target's dtype.
    """
    _check_reduction(reduction)
    input, target = _loss_arguments(input, target, "binary_cross_entropy_with_logits")
    _check_binary_target(input, target)
    loss = np.asarray(1 - target)
    np.multiply(loss, input, out=loss, casting="same_kind")
    np.subtract(loss, _log_sigmoid(input), out=loss, casting="same_kind")
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, *, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\bar x_i = (\sigma(x_i) - y_i)\,\bar\ell`, divided by :math:`N` for the mean."""
    input, target = np.asarray(input), np.asarray(target)
    _check_binary_target(input, target)
    grad = (sigmoid(input) - target) * np.asarray(grad_output)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            grad = grad / input.size
    return np.asarray(grad).astype(input.dtype, copy=False)
