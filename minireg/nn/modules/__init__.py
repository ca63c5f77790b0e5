"""Layers, each with a forward and a hand-written backward."""

from minireg.nn.modules import (
    activation,
    batchnorm,
    container,
    dropout,
    instancenorm,
    linear,
    loss,
    normalization,
)
from minireg.nn.modules.activation import *  # noqa: F403
from minireg.nn.modules.batchnorm import *  # noqa: F403
from minireg.nn.modules.container import *  # noqa: F403
from minireg.nn.modules.dropout import *  # noqa: F403
from minireg.nn.modules.instancenorm import *  # noqa: F403
from minireg.nn.modules.linear import *  # noqa: F403
from minireg.nn.modules.loss import *  # noqa: F403
from minireg.nn.modules.module import Module
from minireg.nn.modules.normalization import *  # noqa: F403

__all__ = [
    "Module",
    *activation.__all__,
    *batchnorm.__all__,
    *container.__all__,
    *dropout.__all__,
    *instancenorm.__all__,
    *linear.__all__,
    *loss.__all__,
    *normalization.__all__,
]
