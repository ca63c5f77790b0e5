"""Layers, normalisation, dropout, init and utilities, mirroring ``torch.nn``."""

from minireg.nn import functional, init, utils
from minireg.nn.modules import *  # noqa: F403
from minireg.nn.modules import __all__ as _modules_all
from minireg.parameter import Parameter

__all__ = ["Parameter", "functional", "init", "utils", *_modules_all]
