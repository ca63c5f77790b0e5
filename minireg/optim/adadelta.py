"""Adadelta: step sizes from running averages of squared gradients and squared updates.

Off the main reading path: read it after ``adam.py`` and ``rmsprop.py``.
"""

from __future__ import annotations

__all__ = ["Adadelta", "adadelta"]

from typing import Any

import numpy as np

from minireg.numerics import regularized_gradient
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def adadelta(
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
) -> None:
    r"""One Adadelta step on ``param``, ``square_avg`` and ``acc_delta``, all in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &= \rho\,v_{t-1} + (1-\rho)\,g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho\,u_{t-1} + (1-\rho)\,\Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma\,\Delta_t

    with decay :math:`\rho`, weight decay :math:`\lambda`, :math:`v_0 = u_0 = 0`.  The
    update uses the *previous* accumulated update :math:`u_{t-1}`, and :math:`\epsilon`
    sits inside both square roots.  Zeiler (2012), "ADADELTA: An Adaptive Learning Rate
    Method", arXiv:1212.5701; the paper has no learning rate, torch's :math:`\gamma`
    (default 1.0) is a plain multiplier on the update.
    """
    g = regularized_gradient(grad, param, weight_decay, maximize)
    square_avg[...] = rho * square_avg + (1 - rho) * g * g  # v_t
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps) / std * g  # Delta_t, from u_{t-1}
    acc_delta[...] = rho * acc_delta + (1 - rho) * delta * delta  # u_t
    param -= lr * delta


class Adadelta(Optimizer):
    """``torch.optim.Adadelta``: bookkeeping around :func:`adadelta`."""

    kernel = staticmethod(adadelta)
    state_arrays = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        # torch writes these as `not 0.0 <= x`, so NaN is rejected too; rho = 1 is allowed.
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": new_step_counter(),
            "square_avg": np.zeros_like(param.data),
            "acc_delta": np.zeros_like(param.data),
        }

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        increment(state["step"])  # counted as torch does; Adadelta's update does not use it
        return {}
