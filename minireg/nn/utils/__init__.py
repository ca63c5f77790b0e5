"""Utilities: gradient clipping (``torch.nn.utils``) and flat parameter buffers (minireg's)."""

from minireg._engine.flat import FlatParameters, flatten_parameters
from minireg.nn.utils.clip_grad import (
    clip_coefficient,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from minireg.numerics import vector_norm

__all__ = [
    "FlatParameters",
    "clip_coefficient",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "flatten_parameters",
    "get_total_norm",
    "vector_norm",
]
