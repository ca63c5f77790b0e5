"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

Read this first: :func:`sgd` is the simplest kernel, and :class:`SGD` shows the whole
pattern every optimizer follows.  Next: ``Optimizer.step`` in ``optimizer.py``.
"""

from __future__ import annotations

__all__ = ["SGD", "sgd"]

from typing import Any

import numpy as np

from minireg.numerics import regularized_gradient
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, check_nonnegative
from minireg.parameter import Parameter


def sgd(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
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

    ``momentum_buffer`` is used only when :math:`\mu \ne 0` (``None`` otherwise).  On
    the parameter's first step with momentum (``first_step``) its old contents are
    ignored: it becomes :math:`b_1 = g_1`, exactly as torch clones the first buffer from
    the gradient.
    """
    g = regularized_gradient(grad, param, weight_decay, maximize)
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = g  # torch: the first buffer is g itself, undampened
        else:
            momentum_buffer[...] = momentum * momentum_buffer + (1 - dampening) * g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * g


class SGD(Optimizer):
    """``torch.optim.SGD``: bookkeeping around :func:`sgd`."""

    kernel = staticmethod(sgd)
    state_arrays = ("momentum_buffer",)

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
        foreach: bool | None = None,
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
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {}  # torch creates momentum_buffer lazily, on the first step with momentum

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        first_step = "momentum_buffer" not in state
        if group["momentum"] != 0 and first_step:
            state["momentum_buffer"] = np.empty_like(param.data)  # sgd fills it with g_1
        return {"first_step": first_step}
