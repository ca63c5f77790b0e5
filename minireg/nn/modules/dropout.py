"""Dropout layers (``torch.nn.Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``).

Each forward draws a keep mask (in training mode), records it, and scales the kept units
by :math:`1/(1-p)`; backward multiplies the upstream gradient by the same mask and scale.
The kernels are in :mod:`minireg.nn._functional.dropout`.

Beyond torch: every layer takes a keyword-only ``generator`` (a ``numpy.random.Generator``,
also settable later as the attribute ``generator``) that draws its masks; ``None`` uses
minireg's default generator, which ``minireg.manual_seed`` reseeds.
"""

from __future__ import annotations

import numpy as np

from minireg.nn._functional import dropout as F
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn.modules.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    """What the dropout layers share: ``p``, ``inplace``, ``generator`` and the recorded mask."""

    # The functional form this layer applies (F.dropout, F.dropout1d, ...).
    _function = staticmethod(F.dropout)

    def __init__(
        self, p: float = 0.5, inplace: bool = False, *, generator: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace
        self.generator = generator

    @property
    def _mask(self) -> np.ndarray | None:
        """The keep mask of the recorded forward (None: nothing dropped, or no forward)."""
        record = self._forward_record
        return None if record is None else record.saved[0]

    def forward(self, input: np.ndarray) -> np.ndarray:
        """Apply dropout (identity in eval mode) and record the mask for backward."""
        input = as_tensor(input, "dropout")
        output, mask = self._function(
            input, self.p, self.training, self.inplace, self.generator, return_mask=True
        )
        self._record_forward(input, output, mask)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """``grad_output * mask / (1 - p)`` with the mask of the recorded forward."""
        (mask,), grad_output = self._recorded_forward(grad_output)
        return F.dropout_backward(grad_output, mask, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` in training mode (Srivastava et al., 2014)."""

    _function = staticmethod(F.dropout)


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` inputs (Tompson et al., 2015)."""

    _function = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` inputs (3-D inputs: channel-wise 1-D, as torch)."""

    _function = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` inputs."""

    _function = staticmethod(F.dropout3d)
