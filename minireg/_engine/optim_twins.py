"""In-place twins of the optimizer kernels, for :mod:`minireg._engine.optim`.

Each ``name_`` here computes exactly what the textbook kernel ``minireg.optim.name.name``
computes -- the same floating-point operations on the same operands, element by element
-- but writes every intermediate into ``scratch`` arrays (``out=``) instead of fresh
temporaries, so that :func:`minireg._engine.blocking.apply_blocked` can run it over
cache-sized slices on several threads without allocating.  Read the textbook kernel for
the math; ``reference_tests/test_engine_twins.py`` proves each twin bit-identical to it.

``TWINS`` maps a kernel's name to its twin and the number of scratch arrays it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from minireg.optim.nadam import nadam_momentum

Scratch = tuple[np.ndarray, ...]


def regularized_gradient_(
    grad: np.ndarray, param: np.ndarray, weight_decay: float, maximize: bool, out: np.ndarray
) -> np.ndarray:
    """:func:`minireg.numerics.regularized_gradient` into ``out`` (or ``grad`` itself)."""
    if weight_decay == 0:
        return np.negative(grad, out=out) if maximize else grad
    np.multiply(param, weight_decay, out=out)
    if maximize:
        out -= grad
    else:
        out += grad
    return out


def lerp_(start: np.ndarray, end: np.ndarray, weight: float, tmp: np.ndarray) -> None:
    """``start[...] = minireg.numerics.lerp(start, end, weight)``; ``tmp`` holds ``end - start``."""
    weight = start.dtype.type(weight)
    diff = np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1 - weight
        np.subtract(end, diff, out=start)


def ema_of_squares_(average: np.ndarray, x: np.ndarray, decay: float, tmp: np.ndarray) -> None:
    """``average[...] = decay * average + (1 - decay) * x * x``; ``tmp`` holds the last term."""
    weighted_square = np.multiply(x, 1 - decay, out=tmp)
    weighted_square *= x
    average *= decay
    average += weighted_square


def sgd_(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.sgd.sgd`."""
    t, u = scratch
    g = regularized_gradient_(grad, param, weight_decay, maximize, t)
    if momentum != 0:
        assert momentum_buffer is not None
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= momentum
            if dampening == 0:
                momentum_buffer += g  # (1 - 0) g is g, bit for bit: one pass fewer
            else:
                momentum_buffer += np.multiply(g, 1 - dampening, out=u)
        if nesterov:
            g = np.add(g, np.multiply(momentum_buffer, momentum, out=u), out=u)
        else:
            g = momentum_buffer
    param -= np.multiply(g, lr, out=u)


def adagrad_(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    *,
    step: float,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.adagrad.adagrad`."""
    t, u = scratch
    g = regularized_gradient_(grad, param, weight_decay, maximize, t)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += np.multiply(g, g, out=u)
    std = np.sqrt(state_sum, out=u)
    std += eps
    update = np.multiply(g, -clr, out=t)
    update /= std
    param += update


def adadelta_(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    acc_delta: np.ndarray,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.adadelta.adadelta`."""
    t, u, w = scratch
    g = regularized_gradient_(grad, param, weight_decay, maximize, t)
    ema_of_squares_(square_avg, g, rho, u)
    std = np.sqrt(np.add(square_avg, eps, out=u), out=u)
    delta = np.sqrt(np.add(acc_delta, eps, out=w), out=w)
    delta /= std
    delta *= g
    ema_of_squares_(acc_delta, delta, rho, u)
    param -= np.multiply(delta, lr, out=u)


def rmsprop_(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.rmsprop.rmsprop`."""
    t, u = scratch
    g = regularized_gradient_(grad, param, weight_decay, maximize, t)
    ema_of_squares_(square_avg, g, alpha, u)
    if centered:
        assert grad_avg is not None
        lerp_(grad_avg, g, 1 - alpha, u)
        avg = np.multiply(grad_avg, grad_avg, out=u)
        np.subtract(square_avg, avg, out=avg)
        np.sqrt(avg, out=avg)
    else:
        avg = np.sqrt(square_avg, out=u)
    avg += eps
    if momentum > 0:
        assert momentum_buffer is not None
        momentum_buffer *= momentum
        momentum_buffer += np.divide(g, avg, out=avg)
        param -= np.multiply(momentum_buffer, lr, out=u)
    else:
        update = np.multiply(g, -lr, out=t)
        update /= avg
        param += update


def adam_(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    *,
    step: float,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.adam.adam`."""
    t, u = scratch
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    l2_decay = 0.0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient_(grad, param, l2_decay, maximize, u)
    lerp_(exp_avg, g, 1 - beta1, t)
    ema_of_squares_(exp_avg_sq, g, beta2, t)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    if amsgrad:
        assert max_exp_avg_sq is not None
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment, out=t)
    denom /= bias_correction2**0.5
    denom += eps
    update = np.multiply(exp_avg, -step_size, out=u)
    update /= denom
    param += update


def nadam_(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    mu_product: float,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.nadam.nadam`."""
    t, u, w = scratch
    bias_correction2 = 1 - beta2**step
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    l2_decay = 0.0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient_(grad, param, l2_decay, maximize, t)
    mu = nadam_momentum(step, beta1, momentum_decay)
    mu_next = nadam_momentum(step + 1, beta1, momentum_decay)
    mu_product_next = mu_product * mu_next
    lerp_(exp_avg, g, 1 - beta1, u)
    ema_of_squares_(exp_avg_sq, g, beta2, u)
    denom = np.divide(exp_avg_sq, bias_correction2, out=w)
    np.sqrt(denom, out=denom)
    denom += eps
    update = np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=u)
    update /= denom
    param += update
    update = np.multiply(exp_avg, (-lr * mu_next) / (1.0 - mu_product_next), out=u)
    update /= denom
    param += update


def radam_(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    *,
    step: float,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
    scratch: Scratch,
) -> None:
    """Twin of :func:`minireg.optim.radam.radam`."""
    t, u = scratch
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    l2_decay = 0.0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient_(grad, param, l2_decay, maximize, t)
    lerp_(exp_avg, g, 1 - beta1, u)
    ema_of_squares_(exp_avg_sq, g, beta2, u)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    update = np.divide(exp_avg, bias_correction1, out=t)
    update *= lr
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect_squared = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        rect = rect_squared**0.5
        adaptive_lr = np.sqrt(exp_avg_sq, out=u)
        adaptive_lr += eps
        np.reciprocal(adaptive_lr, out=adaptive_lr)
        adaptive_lr *= bias_correction2**0.5
        update *= adaptive_lr
        update *= rect
    param -= update


# kernel name -> (twin, number of scratch arrays it takes)
TWINS: dict[str, tuple[Callable[..., Any], int]] = {
    "sgd": (sgd_, 2),
    "adagrad": (adagrad_, 2),
    "adadelta": (adadelta_, 3),
    "rmsprop": (rmsprop_, 2),
    "adam": (adam_, 2),
    "nadam": (nadam_, 3),
    "radam": (radam_, 2),
}
