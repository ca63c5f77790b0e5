"""The default random generator, reseeded by `minireg.manual_seed`.

Every function that draws random numbers takes ``generator=None``; ``None`` means the
generator returned by :func:`default_generator`, a ``numpy.random.Generator`` (PCG64).
NumPy cannot reproduce torch's random stream, so seeds make minireg reproducible with
itself, not with torch.
"""

from __future__ import annotations

import numpy as np

_default_generator: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (``torch.manual_seed``'s counterpart) and return it."""
    global _default_generator
    _default_generator = np.random.default_rng(int(seed))
    return _default_generator


def default_generator() -> np.random.Generator:
    """The generator used wherever ``generator=None`` is passed."""
    return _default_generator


def resolve(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator`` itself, or the default one when it is ``None``."""
    return _default_generator if generator is None else generator
