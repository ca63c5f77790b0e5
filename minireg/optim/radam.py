r"""RAdam: Adam with a rectified adaptive learning rate (Liu et al., 2020).

Read after ``adam.py``: the kernel differs from Adam in the rectification :math:`r_t`
and in falling back to momentum SGD while :math:`\rho_t \le 5`.  Next:
``lr_scheduler.py`` (``LRScheduler``, ``StepLR``, ``CosineAnnealingLR``).
"""

from __future__ import annotations

__all__ = ["RAdam", "radam"]

from typing import Any

import numpy as np

from minireg.numerics import lerp, regularized_gradient
from minireg.optim.adam import check_adam_hyperparameters
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def radam(
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
) -> None:
    r"""One RAdam step on ``param``, ``exp_avg`` and ``exp_avg_sq`` in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1})
              \quad(+\,\lambda\theta_{t-1}\ \text{for L2 decay}) \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\,\theta_{t-1}
              \quad\text{(decoupled decay instead)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2 \\
        \hat m_t &= m_t / (1-\beta_1^t) \\
        \rho_\infty &= 2/(1-\beta_2) - 1, \qquad
        \rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t) \\
        \text{if } \rho_t > 5:\quad
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},
        \quad l_t = \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}, \quad
        \theta_t = \theta_{t-1} - \gamma\,\hat m_t\, l_t\, r_t \\
        \text{else}:\quad \theta_t &= \theta_{t-1} - \gamma\,\hat m_t

    with learning rate :math:`\gamma`, weight decay :math:`\lambda` and step number
    :math:`t` (1 on the first step).  While the variance estimate rests on too few samples
    (:math:`\rho_t \le 5`; with :math:`\beta_2 = 0.999` that is steps 1 to 5) the step is
    plain bias-corrected momentum SGD.  Here :math:`\epsilon` is added to the *uncorrected*
    :math:`\sqrt{v_t}`.

    Liu et al. (2020), "On the Variance of the Adaptive Learning Rate and Beyond";
    decoupled decay: Loshchilov & Hutter (2019).
    """
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    l2_decay = 0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient(grad, param, l2_decay, maximize)
    exp_avg[...] = lerp(exp_avg, g, 1 - beta1)  # m_t, rounded as torch's lerp_
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g  # v_t
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    exp_avg_hat = exp_avg / bias_correction1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect_squared = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        rect = rect_squared**0.5
        # torch evaluates `scalar / tensor` as `reciprocal(tensor) * scalar`
        adaptive_lr = 1 / (np.sqrt(exp_avg_sq) + eps) * bias_correction2**0.5
        param -= exp_avg_hat * lr * adaptive_lr * rect  # torch's order, left to right
    else:
        param -= exp_avg_hat * lr


class RAdam(Optimizer):
    """``torch.optim.RAdam``: bookkeeping around :func:`radam`."""

    kernel = staticmethod(radam)
    state_arrays = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": new_step_counter(),
            "exp_avg": np.zeros_like(param.data),
            "exp_avg_sq": np.zeros_like(param.data),
        }

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        beta1, beta2 = group["betas"]
        return {"step": increment(state["step"]), "beta1": float(beta1), "beta2": float(beta2)}
