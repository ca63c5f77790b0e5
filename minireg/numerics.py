"""Small helpers with math names that reproduce torch's rounding, for the kernels to call.

A kernel reads like its equations; where torch computes an equation in a particular
order, or accumulates a sum more accurately than a plain float32 sum would, the kernel
calls one of these instead of spelling the detail out.  Each helper's docstring says
what torch does and why it matters.  Read them when a kernel sends you here.

Helpers may hand work to the speed engine (``minireg._engine``); the kernels never do.
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []

# ------------------------------------------------------------------------------ optimizers


# ------------------------------------------------------------------------------ normalisation


# ------------------------------------------------------------------------------ dropout


# ------------------------------------------------------------------------------ norms of gradients
