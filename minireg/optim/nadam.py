r"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat, 2016).

Read after ``adam.py``: the kernel differs from Adam in its momentum schedule
:math:`\mu_t` and in a Nesterov-style update that mixes :math:`g_t` and :math:`m_t`.
Next: ``radam.py``, then ``lr_scheduler.py``.
"""

from __future__ import annotations

__all__ = ["NAdam", "nadam", "nadam_momentum"]

from typing import Any

import numpy as np

from minireg.numerics import lerp, regularized_gradient
from minireg.optim.adam import check_adam_hyperparameters
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def nadam_momentum(step: float, beta1: float, momentum_decay: float) -> float:
    r"""NAdam's momentum schedule, :math:`\mu_t = \beta_1(1 - \tfrac12\, 0.96^{\,t\psi})`."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))


def nadam(
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
) -> None:
    r"""One NAdam step on ``param``, ``exp_avg`` and ``exp_avg_sq`` in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1})
              \quad(+\,\lambda\theta_{t-1}\ \text{for L2 decay}) \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\,\theta_{t-1}
              \quad\text{(decoupled decay instead)} \\
        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr), \qquad
        \mu_{t+1} = \beta_1\bigl(1 - \tfrac12\, 0.96^{\,(t+1)\psi}\bigr) \\
        \Pi_t &= \Pi_{t-1}\,\mu_t \quad(\Pi_0 = 1) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2 \\
        d_t &= \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \gamma\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{d_t}
                   - \gamma\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}

    with learning rate :math:`\gamma`, weight decay :math:`\lambda`, momentum decay
    :math:`\psi` and step number :math:`t` (1 on the first step).  The product
    :math:`\Pi_t` is kept by the caller in a 0-d array updated once per step in its own
    dtype (float32 as torch creates it), so it is rounded exactly as torch rounds it; the
    kernel gets its new value :math:`\Pi_t` as ``mu_product``.

    Dozat (2016), "Incorporating Nesterov Momentum into Adam"; the momentum schedule
    :math:`\mu_t` follows torch; decoupled decay: Loshchilov & Hutter (2019).
    """
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    l2_decay = 0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient(grad, param, l2_decay, maximize)
    mu = nadam_momentum(step, beta1, momentum_decay)
    mu_next = nadam_momentum(step + 1, beta1, momentum_decay)
    mu_product_next = mu_product * mu_next  # a Python float, not rounded to float32
    exp_avg[...] = lerp(exp_avg, g, 1 - beta1)  # m_t, rounded as torch's lerp_
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g  # v_t
    bias_correction2 = 1 - beta2**step
    denom = np.sqrt(exp_avg_sq / bias_correction2) + eps  # d_t (torch's for-loop form)
    param += -lr * (1 - mu) / (1 - mu_product) * g / denom
    param += -lr * mu_next / (1 - mu_product_next) * exp_avg / denom


class NAdam(Optimizer):
    """``torch.optim.NAdam``: bookkeeping around :func:`nadam`."""

    kernel = staticmethod(nadam)
    state_arrays = ("exp_avg", "exp_avg_sq")
    scalar_state = ("step", "mu_product")  # one number per parameter (see Optimizer)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": new_step_counter(),
            "mu_product": np.ones((), dtype=np.float32),  # float32 whatever the param dtype
            "exp_avg": np.zeros_like(param.data),
            "exp_avg_sq": np.zeros_like(param.data),
        }

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        beta1, beta2 = map(float, group["betas"])
        step = increment(state["step"])
        # Pi_t = Pi_{t-1} * mu_t, once per step, in mu_product's dtype: float32 rounds mu
        # and the product, as torch does.
        state["mu_product"] *= nadam_momentum(step, beta1, float(group["momentum_decay"]))
        mu_product = float(state["mu_product"])
        return {"step": step, "mu_product": mu_product, "beta1": beta1, "beta2": beta2}
