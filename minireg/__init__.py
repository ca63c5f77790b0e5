"""minireg: the techniques that make deep networks train well, as readable NumPy kernels.

Every public name mirrors PyTorch's (``torch.`` becomes ``minireg.``); the contract is
the study site's "contract" page (``docs/contract.rst``).
Importing minireg needs NumPy alone.
"""

from minireg import nn, optim, regularization, training
from minireg._engine import textbook
from minireg._engine.blocking import get_num_threads, set_num_threads
from minireg.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minireg.parameter import Parameter
from minireg.random import default_generator, manual_seed

__all__ = [
    "Parameter",
    "manual_seed",
    "default_generator",
    "get_num_threads",
    "set_num_threads",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "textbook",
    "nn",
    "optim",
    "regularization",
    "training",
]
__version__ = "0.1.0"
