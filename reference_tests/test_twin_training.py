"""Twin training: the acceptance test that ties minireg together.

An MLP (Linear, BatchNorm1d, ReLU, Dropout, Linear) is built in torch (the first Linear
without bias, as usual before BatchNorm: BN removes a bias exactly, so its true gradient
is 0 and what remains is rounding noise, which Adam would normalise into lr-sized steps
that no two implementations take alike); its state_dict is
loaded into the same minireg model; both are trained side by side on the same batches,
with the same dropout masks (minireg draws each mask, torch is handed it), for 200 steps:

* SGD with momentum and weight decay, cross-entropy loss;
* Adam with ``clip_grad_norm_`` and a cosine schedule, cross-entropy with label smoothing.

After every step the losses are compared; at the end every parameter and buffer, and
the eval-mode outputs (running statistics) are compared.

Tolerances (relative, with a small absolute floor for values near zero), per dtype:
* float64: 1e-9.  Each step differs by a few ULPs (FMA, torch's sqrt, summation order);
  over 200 steps the measured worst gap is ~1e-13 relative (1e-4 of this budget), while
  any wrong operation shows at 1e-3 or worse within a few steps.
* float32: 1e-4 (atol 1e-6).  The same per-step differences start at ~1e-7; 200 steps
  through BatchNorm (which divides by batch standard deviations), ReLU and Adam's
  sqrt(v) normalisation amplify them to a measured worst of ~1e-5 (10 % of the budget).
* CUDA: the same budgets, float32 widened 5x: torch's foreach kernels, cuDNN's
  BatchNorm reductions and nvcc's FMA contraction round differently from the CPU
  (TORCH_NOTES §8), and the 200-step amplification applies to those differences too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minireg
import minireg.nn as mnn
from reference_tests.conftest import to_numpy, to_torch

STEPS = 200
BATCH = 32
FEATURES, HIDDEN, CLASSES = 8, 32, 3
P_DROP = 0.2

TOLERANCE = {
    (np.float64, "cpu"): (1e-9, 1e-12),
    (np.float32, "cpu"): (1e-4, 1e-6),
    (np.float64, "cuda"): (1e-9, 1e-12),
    (np.float32, "cuda"): (5e-4, 5e-6),
}


class SharedMaskDropout(torch.nn.Module):
    """torch's dropout arithmetic (mask / (1 - p), then multiply) with a mask handed in."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        noise = self.mask.to(x.dtype)
        noise.div_(1 - self.p)
        return x * noise


def build_twins(dtype, device):
    torch.manual_seed(0)
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    theirs = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN, bias=False),
        torch.nn.BatchNorm1d(HIDDEN),
        torch.nn.ReLU(),
        SharedMaskDropout(P_DROP),
        torch.nn.Linear(HIDDEN, CLASSES),
    ).to(device=device, dtype=torch_dtype)
    ours = mnn.Sequential(
        mnn.Linear(FEATURES, HIDDEN, bias=False, dtype=dtype),
        mnn.BatchNorm1d(HIDDEN, dtype=dtype),
        mnn.ReLU(),
        mnn.Dropout(P_DROP, generator=np.random.default_rng(1)),
        mnn.Linear(HIDDEN, CLASSES, dtype=dtype),
    )
    ours.load_state_dict({k: to_numpy(v) for k, v in theirs.state_dict().items()})
    return ours, theirs


def make_data(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((STEPS, BATCH, FEATURES)).astype(dtype)
    w = rng.standard_normal((FEATURES, CLASSES))
    y = np.argmax(x @ w + 0.5 * rng.standard_normal((STEPS, BATCH, CLASSES)), axis=-1)
    return x, y


def configure(kind, ours, theirs):
    if kind == "sgd":
        kwargs = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
        opts = (
            minireg.optim.SGD(list(ours.parameters()), **kwargs),
            torch.optim.SGD(theirs.parameters(), **kwargs),
        )
        return opts, None, 0.0, None
    opts = (
        minireg.optim.Adam(list(ours.parameters()), lr=1e-2),
        torch.optim.Adam(theirs.parameters(), lr=1e-2),
    )
    scheds = (
        minireg.optim.lr_scheduler.CosineAnnealingLR(opts[0], T_max=50, eta_min=1e-4),
        torch.optim.lr_scheduler.CosineAnnealingLR(opts[1], T_max=50, eta_min=1e-4),
    )
    return opts, scheds, 0.1, 1.0


def budget_used(a, b, rtol, atol) -> float:
    """max |a - b| / (atol + rtol*|b|): the share of the tolerance used (must stay <= 1)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / (atol + rtol * np.abs(b)), initial=0.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["sgd", "adam_clip_cosine"])
def test_mlp_trains_identically_to_torch(device, kind, dtype):
    ours, theirs = build_twins(dtype, device)
    (opt_ours, opt_theirs), scheds, smoothing, max_norm = configure(kind, ours, theirs)
    loss_ours = mnn.CrossEntropyLoss(label_smoothing=smoothing)
    loss_theirs = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    rtol, atol = TOLERANCE[(dtype, device)]
    x, y = make_data(dtype)
    worst = 0.0
    for step in range(STEPS):
        logits = ours(x[step])
        theirs[3].mask = to_torch(ours[3]._mask, device)  # hand minireg's dropout mask to torch
        logits_t = theirs(to_torch(x[step], device))
        value = loss_ours(logits, y[step])
        value_t = loss_theirs(logits_t, to_torch(y[step], device))
        assert np.asarray(value).dtype == dtype
        np.testing.assert_allclose(
            value, value_t.item(), rtol=rtol, atol=atol, err_msg=f"loss at step {step}"
        )
        worst = max(worst, budget_used(value, value_t.item(), rtol, atol))

        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        ours.backward(loss_ours.backward())
        value_t.backward()
        if max_norm is not None:
            norm = mnn.utils.clip_grad_norm_(list(ours.parameters()), max_norm)
            norm_t = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
            np.testing.assert_allclose(
                norm, norm_t.item(), rtol=rtol, atol=atol, err_msg=f"grad norm at step {step}"
            )
        opt_ours.step()
        opt_theirs.step()
        if scheds is not None:
            scheds[0].step()
            scheds[1].step()

    for key, value_t in theirs.state_dict().items():
        mine = ours.state_dict()[key]
        assert mine.dtype == to_numpy(value_t).dtype, key
        np.testing.assert_allclose(mine, to_numpy(value_t), rtol=rtol, atol=atol, err_msg=key)
        worst = max(worst, budget_used(mine, to_numpy(value_t), rtol, atol))

    ours.eval()
    theirs.eval()
    probe = np.random.default_rng(3).standard_normal((64, FEATURES)).astype(dtype)
    out, out_t = ours(probe), to_numpy(theirs(to_torch(probe, device)))
    np.testing.assert_allclose(out, out_t, rtol=rtol, atol=atol, err_msg="eval-mode outputs")
    worst = max(worst, budget_used(out, out_t, rtol, atol))
    print(f"{kind} {np.dtype(dtype).name} {device}: worst share of the tolerance used {worst:.2e}")
