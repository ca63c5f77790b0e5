"""Optimizers and learning-rate schedules, mirroring ``torch.optim``."""

from minireg.optim import lr_scheduler
from minireg.optim.adadelta import *  # noqa: F403
from minireg.optim.adagrad import *  # noqa: F403
from minireg.optim.adam import *  # noqa: F403
from minireg.optim.adamw import *  # noqa: F403
from minireg.optim.nadam import *  # noqa: F403
from minireg.optim.optimizer import Optimizer
from minireg.optim.radam import *  # noqa: F403
from minireg.optim.rmsprop import *  # noqa: F403
from minireg.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "lr_scheduler"]
