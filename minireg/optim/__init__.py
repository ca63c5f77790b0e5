"""Optimizers and learning-rate schedules, mirroring ``torch.optim``."""

from minireg.optim import lr_scheduler
from minireg.optim.optimizer import Optimizer
from minireg.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "lr_scheduler"]
