"""Batch normalisation layers (``torch.nn.BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d``).

The layer is bookkeeping around :func:`minireg.nn.functional.batch_norm`: it owns
``weight`` (γ, ones) and ``bias`` (β, zeros) when ``affine``, and the buffers
``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (a 0-d
int64 count) when ``track_running_stats``, all in torch's ``state_dict`` order.
Training normalises with the batch's statistics and updates the running ones;
evaluation normalises with the running ones (or, without them, with the batch's).
The layer runs the kernels' in-place twins from ``minireg._engine.norm_twins``: the same
results to the bit, without the textbook kernels' batch-sized temporaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minireg._engine import textbook_or_twin
from minireg._engine.norm_twins import batch_norm_backward_, batch_norm_with_statistics_
from minireg.nn._functional import batch_norm as F
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn.modules.module import check_new_shape
from minireg.nn.modules.normalization import _AffineNorm, _data, _factory_dtype

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _NormBase(_AffineNorm):
    """What batch norm and instance norm share: hyperparameters, γ/β and running buffers."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__((num_features,), affine, bias, dtype)
        dtype = _factory_dtype(dtype)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if track_running_stats:
            check_new_shape((num_features,))
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.fill(0)
            self.running_var.fill(1)
            self.num_batches_tracked.fill(0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        super().reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    """Batch norm over ``(N, C, *spatial)``; subclasses fix the accepted input ranks."""

    def _check_input_dim(self, input: np.ndarray) -> None:
        raise NotImplementedError

    def forward(self, input: np.ndarray) -> np.ndarray:
        """Normalise ``input``; in training, also update the running statistics."""
        input = as_tensor(input, "batch_norm")
        self._check_input_dim(input)
        tracking = self.training and self.track_running_stats
        # momentum=None: cumulative average, weight 1/k for the k-th batch (the count
        # includes this batch; torch bumps num_batches_tracked first, we bump it once the
        # kernel has accepted the input, so a rejected batch changes nothing).
        if tracking and self.momentum is None:
            factor = 1.0 / float(int(self.num_batches_tracked) + 1)
        else:
            factor = 0.0 if self.momentum is None else self.momentum
        # Batch statistics in training, and in evaluation when there are no running ones.
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        # The buffers are passed only when they are to be updated (training with tracking)
        # or used (evaluation).
        use_buffers = not self.training or self.track_running_stats
        running_mean = self.running_mean if use_buffers else None
        running_var = self.running_var if use_buffers else None
        kernel = textbook_or_twin(F.batch_norm_with_statistics, batch_norm_with_statistics_)
        output, save_mean, save_invstd = kernel(
            input,
            running_mean,
            running_var,
            _data(self.weight),
            _data(self.bias),
            use_batch_stats,
            factor,
            self.eps,
        )
        if tracking:
            self.num_batches_tracked += 1
        # the (C,) statistics spare backward recomputing them from the input
        saved = (input, running_mean, running_var, use_batch_stats, save_mean, save_invstd)
        self._record_forward(input, output, *saved)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Input gradient of the recorded forward; γ and β gradients are added into ``.grad``."""
        saved, grad_output = self._recorded_forward(grad_output)
        input, running_mean, running_var, use_batch_stats, save_mean, save_invstd = saved
        kernel = textbook_or_twin(F.batch_norm_backward, batch_norm_backward_)
        grad_input, grad_weight, grad_bias = kernel(
            grad_output,
            input,
            running_mean,
            running_var,
            _data(self.weight),
            use_batch_stats,
            self.eps,
            save_mean=save_mean,
            save_invstd=save_invstd,
        )
        self._accumulate_parameter_grads(grad_weight, grad_bias)
        return grad_input


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``(N, C)`` or ``(N, C, L)`` inputs, statistics per channel C."""

    def _check_input_dim(self, input: np.ndarray) -> None:
        if input.ndim != 2 and input.ndim != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``(N, C, H, W)`` inputs, statistics per channel C."""

    def _check_input_dim(self, input: np.ndarray) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")


class BatchNorm3d(_BatchNorm):
    """Batch norm of ``(N, C, D, H, W)`` inputs, statistics per channel C."""

    def _check_input_dim(self, input: np.ndarray) -> None:
        if input.ndim != 5:
            raise ValueError(f"expected 5D input (got {input.ndim}D input)")
