"""Utilities: gradient clipping (``torch.nn.utils``)."""

from minireg.nn.utils.clip_grad import *  # noqa: F403
from minireg.nn.utils.clip_grad import __all__  # noqa: F401
