"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

Read after ``adam.py``: AdamW is Adam with ``decoupled_weight_decay=True``.  Next:
``nadam.py`` and ``radam.py``, then ``lr_scheduler.py``.
"""

from __future__ import annotations

__all__ = ["AdamW"]

from typing import Any

from minireg.optim.adam import Adam
from minireg.optim.optimizer import ParamsT


class AdamW(Adam):
    r"""``torch.optim.AdamW``: :class:`Adam` with ``decoupled_weight_decay`` always on.

    The kernel is :func:`minireg.optim.adam.adam`; with decoupled decay each step first
    shrinks the parameter, :math:`\theta \leftarrow (1-\gamma\lambda)\,\theta`, using the
    current learning rate, and only then updates the moments from the raw gradient, so the
    decay never passes through :math:`m_t` or :math:`v_t`.  The default weight decay is
    ``1e-2`` (Adam's is 0).

    Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization".
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; then, like torch, force decoupled decay back on."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
