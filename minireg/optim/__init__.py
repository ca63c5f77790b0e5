"""Optimizers and learning-rate schedules, mirroring ``torch.optim``.

Only the classes are imported here, so ``minireg.optim.adam`` stays the module (as
``torch.optim.adam`` is) and its kernel is ``minireg.optim.adam.adam``.
"""

from minireg.optim import lr_scheduler
from minireg.optim.adadelta import Adadelta
from minireg.optim.adagrad import Adagrad
from minireg.optim.adam import Adam
from minireg.optim.adamw import AdamW
from minireg.optim.nadam import NAdam
from minireg.optim.optimizer import Optimizer
from minireg.optim.radam import RAdam
from minireg.optim.rmsprop import RMSprop
from minireg.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Adam",
    "AdamW",
    "NAdam",
    "RAdam",
    "lr_scheduler",
]
