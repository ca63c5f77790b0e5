"""Adagrad: per-coordinate learning rates from the running sum of squared gradients.

Off the main reading path: read it after ``adam.py``, whose second moment is Adagrad's
sum turned into a running average.
"""

from __future__ import annotations

__all__ = ["Adagrad", "adagrad"]

from typing import Any

import numpy as np

from minireg.numerics import regularized_gradient
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def adagrad(
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
) -> None:
    r"""One Adagrad step on ``param`` and ``state_sum``, both in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        \tilde\gamma_t &= \gamma / (1 + (t-1)\,\eta) \\
        s_t &= s_{t-1} + g_t^2 \qquad (s_0 = \tau) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t\, g_t / (\sqrt{s_t} + \epsilon)

    with learning rate :math:`\gamma`, learning-rate decay :math:`\eta`, weight decay
    :math:`\lambda`, initial accumulator value :math:`\tau` and ``step`` :math:`t`
    (already counted, so the first step has :math:`t = 1`).  :math:`\epsilon` sits outside
    the square root.  Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for
    Online Learning and Stochastic Optimization", JMLR 12.
    """
    g = regularized_gradient(grad, param, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)  # a Python float, rounded to the dtype where it meets g
    state_sum += g * g
    std = np.sqrt(state_sum) + eps
    param += -clr * g / std  # torch's addcdiv order: (-clr * g) / std


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``: bookkeeping around :func:`adagrad`.

    As in torch, every parameter gets its state (``step`` = 0, ``sum`` filled with
    ``initial_accumulator_value``) at construction, not at its first step.
    """

    kernel = staticmethod(adagrad)
    state_arrays = ("sum",)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        # torch writes these as `not 0.0 <= x`, so NaN is rejected too.
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults, foreach=foreach)
        for group in self.param_groups:  # torch makes the state up front
            self._init_group_state(group)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        # torch fills `sum` from the constructor's value (self.defaults), even when a
        # param group sets its own initial_accumulator_value.
        initial = float(self.defaults["initial_accumulator_value"])
        return {"step": new_step_counter(), "sum": np.full_like(param.data, initial)}

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        return {"step": increment(state["step"])}
