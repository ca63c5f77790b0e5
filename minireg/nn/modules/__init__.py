"""Layers, each with a forward and a hand-written backward."""

from minireg.nn.modules.module import Module

__all__ = ["Module"]
