"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from minireg._engine.blocking import apply_blocked, scratch_like
from minireg.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_lr,
    check_nonnegative,
    regularized_gradient,
)
from minireg.parameter import Parameter


def sgd(
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
    scratch: tuple[np.ndarray, ...] | None = None,
) -> None:
    r"""One SGD step on ``param`` (and ``momentum_buffer``) in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        b_t &= \mu\,b_{t-1} + (1-\tau)\,g_t \qquad (b_1 = g_1) \\
        g_t &\leftarrow g_t + \mu\,b_t \ \text{(Nesterov)} \quad\text{or}\quad g_t \leftarrow b_t \\
        \theta_t &= \theta_{t-1} - \gamma\,g_t

    with learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau` and
    weight decay :math:`\lambda`.  This is torch's form, ``v = mu*v + g; p -= lr*v``
    (Sutskever et al., 2013, "On the importance of initialization and momentum in deep
    learning", put the learning rate inside the buffer instead).  Nesterov: Nesterov (1983).

    ``momentum_buffer`` is used only when :math:`\mu \ne 0`.  On the parameter's first
    step with momentum (``first_step``) its old contents are ignored: it becomes
    :math:`b_1 = g_1`, exactly as torch clones the first buffer from the gradient.

    The lines below compute these equations in torch's order, in place, with each
    intermediate in one of 2 ``scratch`` arrays shaped like ``param`` (made here when not
    given; :func:`minireg._engine.blocking.apply_blocked` passes reused ones).
    """
    t, u = scratch if scratch is not None else scratch_like(param, 2)
    g = regularized_gradient(grad, param, weight_decay, maximize, t)
    if momentum != 0:
        assert momentum_buffer is not None
        if first_step:
            momentum_buffer[...] = g  # torch: the first buffer is g itself, undampened
        else:
            momentum_buffer *= momentum  # b_t = mu b_{t-1} + (1 - tau) g_t
            if dampening == 0:
                momentum_buffer += g  # (1 - 0) g is g, bit for bit: one pass fewer
            else:
                momentum_buffer += np.multiply(g, 1 - dampening, out=u)
        if nesterov:
            g = np.add(g, np.multiply(momentum_buffer, momentum, out=u), out=u)  # g_t + mu b_t
        else:
            g = momentum_buffer
    param -= np.multiply(g, lr, out=u)


__all__ = ["SGD", "sgd"]


class SGD(Optimizer):
    """``torch.optim.SGD``: bookkeeping around :func:`sgd`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        check_nonnegative(lr, "Invalid learning rate: {}")
        check_nonnegative(momentum, "Invalid momentum value: {}")
        check_nonnegative(weight_decay, "Invalid weight_decay value: {}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {}  # torch creates momentum_buffer lazily, on the first step with momentum

    def _update(self, param: Parameter, state: dict[str, Any], group: dict[str, Any]) -> None:
        assert param.grad is not None
        momentum = float(group["momentum"])
        buffer = state.get("momentum_buffer")
        first_step = buffer is None
        if momentum != 0 and first_step:
            buffer = np.empty_like(param.data)  # torch creates it on the first step; sgd fills it
        apply_blocked(
            sgd,
            param.data,
            param.grad,
            buffer,
            scratch=2,
            lr=float(group["lr"]),
            momentum=momentum,
            dampening=float(group["dampening"]),
            weight_decay=float(group["weight_decay"]),
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            first_step=first_step,
        )
        if buffer is not None:
            state["momentum_buffer"] = buffer
