"""Instance normalisation layers (``torch.nn.InstanceNorm1d``, ``2d``, ``3d``).

Bookkeeping around :func:`minireg.nn.functional.instance_norm` (run through its in-place
twin in ``minireg._engine.norm_twins``: the same bits, fewer temporaries), sharing batch norm's
parameters and buffers (:class:`~minireg.nn.modules.batchnorm._NormBase`) but with
torch's other defaults: ``affine=False`` and ``track_running_stats=False``.  Each layer
also accepts an unbatched input (one rank less).  With running statistics tracked:

* training updates them with the batch average of the per-instance statistics
  (unbiased variances), and ``num_batches_tracked`` is never incremented;
* ``momentum=None`` is passed to the kernel as 0, so the running statistics stay put
  (there is no cumulative average, unlike batch norm);
* evaluation normalises with them.
"""

from __future__ import annotations

import warnings

import numpy as np

from minireg._engine import textbook_or_twin
from minireg._engine.norm_twins import instance_norm_backward_, instance_norm_with_statistics_
from minireg.nn._functional import instance_norm as F
from minireg.nn._functional.dtype_checks import as_tensor
from minireg.nn.modules.batchnorm import _NormBase
from minireg.nn.modules.normalization import _data

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class _InstanceNorm(_NormBase):
    """Instance norm over ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``."""

    # rank of an unbatched input; subclasses set it
    _no_batch_dim: int

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        *,
        bias: bool = True,
        dtype: object = None,
    ) -> None:
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, bias=bias, dtype=dtype
        )

    def _check_input_dim(self, input: np.ndarray) -> None:
        ranks = (self._no_batch_dim, self._no_batch_dim + 1)
        if input.ndim not in ranks:
            raise ValueError(f"expected {ranks[0]}D or {ranks[1]}D input (got {input.ndim}D input)")

    def _arguments(self) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """The running statistics and whether to normalise with the input's statistics."""
        return self.running_mean, self.running_var, self.training or not self.track_running_stats

    def forward(self, input: np.ndarray) -> np.ndarray:
        """Normalise each instance; in training with tracking, update the running statistics."""
        input = as_tensor(input, "instance_norm")
        self._check_input_dim(input)
        feature_dim = input.ndim - self._no_batch_dim
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features"
                    f" ({self.num_features}), but got: {input.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. "
                "You can silence this warning by not passing in num_features, "
                "which is not used because affine=False",
                stacklevel=2,
            )
        batched = input if feature_dim == 1 else input[np.newaxis]
        running_mean, running_var, use_input_stats = self._arguments()
        momentum = 0.0 if self.momentum is None else self.momentum
        kernel = textbook_or_twin(F.instance_norm_with_statistics, instance_norm_with_statistics_)
        output, save_mean, save_invstd = kernel(
            batched,
            running_mean,
            running_var,
            _data(self.weight),
            _data(self.bias),
            use_input_stats,
            momentum,
            self.eps,
        )
        output = output.reshape(input.shape)
        self._record_forward(input, output, batched, use_input_stats, save_mean, save_invstd)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Input gradient of the recorded forward; γ and β gradients are added into ``.grad``."""
        saved, grad_output = self._recorded_forward(grad_output)
        batched, use_input_stats, save_mean, save_invstd = saved
        kernel = textbook_or_twin(F.instance_norm_backward, instance_norm_backward_)
        grad_input, grad_weight, grad_bias = kernel(
            np.reshape(grad_output, batched.shape),
            batched,
            self.running_mean,
            self.running_var,
            _data(self.weight),
            use_input_stats,
            self.eps,
            save_mean=save_mean,
            save_invstd=save_invstd,
        )
        self._accumulate_parameter_grads(grad_weight, grad_bias)
        return grad_input.reshape(np.shape(grad_output))


class InstanceNorm1d(_InstanceNorm):
    """Instance norm of ``(N, C, L)`` or ``(C, L)`` inputs, statistics per (sample, channel)."""

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance norm of ``(N, C, H, W)`` or ``(C, H, W)`` inputs."""

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance norm of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` inputs."""

    _no_batch_dim = 4
