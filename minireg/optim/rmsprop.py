"""RMSprop: divide by a running root-mean-square of the gradient (optionally centered)."""

from __future__ import annotations

__all__ = ["RMSprop", "rmsprop"]

from typing import Any

import numpy as np

from minireg._engine.blocking import apply_blocked, scratch_like
from minireg.optim.adam import lerp_
from minireg.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_lr,
    ema_of_squares_,
    increment,
    new_step_counter,
    regularized_gradient,
)
from minireg.parameter import Parameter


def rmsprop(
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
    scratch: tuple[np.ndarray, ...] | None = None,
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
    only when ``momentum > 0``.

    The lines below compute these equations in torch's order, in place, with each
    intermediate in one of two ``scratch`` arrays shaped like ``param`` (made here when not
    given; :func:`minireg._engine.blocking.apply_blocked` passes reused ones).
    """
    t, u = scratch if scratch is not None else scratch_like(param, 2)
    g = regularized_gradient(grad, param, weight_decay, maximize, t)
    ema_of_squares_(square_avg, g, alpha, u)  # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
    if centered:
        assert grad_avg is not None
        lerp_(grad_avg, g, 1 - alpha, u)  # gbar_t
        avg = np.multiply(grad_avg, grad_avg, out=u)  # sqrt(v_t - gbar_t^2)
        np.subtract(square_avg, avg, out=avg)
        np.sqrt(avg, out=avg)
    else:
        avg = np.sqrt(square_avg, out=u)
    avg += eps
    if momentum > 0:
        assert momentum_buffer is not None
        momentum_buffer *= momentum  # b_t = mu b_{t-1} + g_t / avg
        momentum_buffer += np.divide(g, avg, out=avg)
        param -= np.multiply(momentum_buffer, lr, out=u)
    else:
        update = np.multiply(g, -lr, out=t)  # torch's addcdiv order: (value * g) / avg
        update /= avg
        param += update


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: bookkeeping around :func:`rmsprop`.

    ``maximize`` is keyword-only here: torch's positional order has ``capturable`` and
    ``foreach`` before it, which minireg leaves out, so a positional call could not line up.
    """

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
        super().__init__(params, defaults)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": new_step_counter(), "square_avg": np.zeros_like(param.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param.data)
        return state

    def _update(self, param: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        assert param.grad is not None
        increment(state["step"])  # counted as torch does; RMSprop's update does not use it
        apply_blocked(
            rmsprop,
            param.data,
            param.grad,
            state["square_avg"],
            state["grad_avg"] if group["centered"] else None,  # KeyError, as torch, if
            state["momentum_buffer"] if group["momentum"] > 0 else None,  # set after state creation
            scratch=2,
            lr=float(group["lr"]),
            alpha=float(group["alpha"]),
            eps=float(group["eps"]),
            weight_decay=float(group["weight_decay"]),
            momentum=float(group["momentum"]),
            centered=group["centered"],
            maximize=group["maximize"],
        )
