"""Adam, with AMSGrad, L2 or decoupled weight decay, and maximize.

Read this third, after ``sgd.py`` and ``optimizer.py``; then ``adamw.py``, ``nadam.py``
and ``radam.py``, each a few differences from Adam.  Next after those:
``lr_scheduler.py`` (``LRScheduler``, ``StepLR``, ``CosineAnnealingLR``).
"""

from __future__ import annotations

__all__ = ["Adam", "adam"]

from typing import Any

import numpy as np

from minireg.numerics import lerp, regularized_gradient
from minireg.optim.optimizer import Optimizer, ParamsT, check_lr, increment, new_step_counter
from minireg.parameter import Parameter


def check_adam_hyperparameters(lr: float, betas: Any, eps: float, weight_decay: float) -> None:
    """torch's checks shared by Adam, NAdam and RAdam, in torch's order.

    Written as ``not 0 <= x`` (not ``x < 0``) like torch, so NaN is rejected too.
    """
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def adam(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray,
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
) -> None:
    r"""One Adam step on ``param``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``) in place.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1})
              \quad(+\,\lambda\theta_{t-1}\ \text{for L2 decay}) \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\,\theta_{t-1}
              \quad\text{(decoupled decay instead, AdamW)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\,g_t^2 \\
        v^{max}_t &= \max(v^{max}_{t-1}, v_t) \quad(v^{max}_0 = 0;\ \text{AMSGrad only,
              then } v^{max}_t \text{ replaces } v_t \text{ below}) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
              \frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}

    with learning rate :math:`\gamma`, weight decay :math:`\lambda` and step number
    :math:`t` (1 on the first step).  Note that :math:`\epsilon` is added after the bias
    correction of :math:`\sqrt{v_t}`, and AMSGrad keeps the maximum of the *uncorrected*
    :math:`v_t`.

    Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization"; AMSGrad: Reddi, Kale
    & Kumar (2018), "On the Convergence of Adam and Beyond"; decoupled weight decay:
    Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization".
    """
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay  # AdamW: the decay bypasses m_t and v_t
    l2_decay = 0 if decoupled_weight_decay else weight_decay
    g = regularized_gradient(grad, param, l2_decay, maximize)
    exp_avg[...] = lerp(exp_avg, g, 1 - beta1)  # m_t, rounded as torch's lerp_
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g  # v_t
    if amsgrad:
        max_exp_avg_sq[...] = np.maximum(max_exp_avg_sq, exp_avg_sq)
    second_moment = max_exp_avg_sq if amsgrad else exp_avg_sq
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    denom = np.sqrt(second_moment) / bias_correction2**0.5 + eps
    param += -step_size * exp_avg / denom  # torch's addcdiv order: (-step_size * m_t) / denom


class Adam(Optimizer):
    """``torch.optim.Adam``: bookkeeping around :func:`adam`."""

    kernel = staticmethod(adam)
    state_arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_lr(lr)  # torch checks a tensor lr first
        check_adam_hyperparameters(lr, betas, eps, weight_decay)
        # torch's Adam (unlike NAdam and RAdam) insists on float betas: (0, 0.99) raises here.
        if not (isinstance(betas[0], float) and isinstance(betas[1], float)):
            raise ValueError("betas must be either both floats or both Tensors")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults, foreach=foreach)

    def _init_state(self, param: Parameter, group: dict[str, Any]) -> dict[str, Any]:
        state = {
            "step": new_step_counter(),
            "exp_avg": np.zeros_like(param.data),
            "exp_avg_sq": np.zeros_like(param.data),
        }
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param.data)
        return state

    def _prepare_step(
        self, param: Parameter, state: dict[str, Any], group: dict[str, Any]
    ) -> dict[str, Any]:
        beta1, beta2 = group["betas"]
        return {"step": increment(state["step"]), "beta1": float(beta1), "beta2": float(beta2)}
