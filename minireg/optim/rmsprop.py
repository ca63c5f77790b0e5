"""RMSprop: divide by a running root-mean-square of the gradient (optionally centered).

Off the main reading path: read it after ``adam.py``, whose :math:`v_t` is RMSprop's
running average of squares.
"""

from __future__ import annotations

__all__ = ["RMSprop", "rmsprop"]

from typing import Any

import numpy as np

from minireg.numerics import lerp, regularized_gradient
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def rmsprop(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray,
    momentum_buffer: np.ndarray,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    r"""One RMSprop step on ``param`` and its state arrays, all in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &= \alpha\,v_{t-1} + (1-\alpha)\,g_t^2 \\
        \bar g_t &= \alpha\,\bar g_{t-1} + (1-\alpha)\,g_t
            \qquad \tilde v_t = v_t - \bar g_t^2 \quad\text{(centered; else } \tilde v_t = v_t) \\
        b_t &= \mu\,b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \quad
            \theta_t = \theta_{t-1} - \gamma\,b_t \quad (\mu > 0) \\
        \theta_t &= \theta_{t-1} - \gamma\,g_t / (\sqrt{\tilde v_t} + \epsilon) \quad (\mu = 0)

    with smoothing constant :math:`\alpha`, momentum :math:`\mu`, weight decay
    :math:`\lambda` and :math:`v_0 = \bar g_0 = b_0 = 0` (the momentum buffer starts at
    zero, unlike SGD's).  :math:`\epsilon` is added after the square root.  Hinton,
    Srivastava & Swersky, "Neural Networks for Machine Learning", lecture 6e (2012);
    centered form: Graves (2013), "Generating Sequences With Recurrent Neural Networks",
    arXiv:1308.0850.  ``grad_avg`` is used only when ``centered``, ``momentum_buffer``
    only when ``momentum > 0`` (each is ``None`` otherwise).
    """
    g = regularized_gradient(grad, param, weight_decay, maximize)
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g  # v_t
    if centered:
        grad_avg[...] = lerp(grad_avg, g, 1 - alpha)  # gbar_t, rounded as torch's lerp_
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer[...] = momentum * momentum_buffer + g / avg  # b_t
        param -= lr * momentum_buffer
    else:
        param += -lr * g / avg  # torch's addcdiv order: (-lr * g) / avg


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: bookkeeping around :func:`rmsprop`.

    ``foreach`` and ``maximize`` are keyword-only here: torch's positional order has
    ``capturable`` before them, which minireg leaves out, so a positional call could not
    line up.
    """

    kernel = staticmethod(rmsprop)
    state_arrays = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        # torch writes these as `not 0.0 <= x`, so NaN is rejected too; alpha > 1 is allowed.
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": new_step_counter(), "square_avg": np.zeros_like(param.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param.data)
        return state

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        increment(state["step"])  # counted as torch does; RMSprop's update does not use it
        return {}
