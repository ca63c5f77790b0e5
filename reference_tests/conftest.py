"""Shared fixtures for the reference tests: every minireg kernel against torch.

* ``device``: each comparison runs with the torch side on ``cpu`` and on ``cuda``.  minireg
  always computes on the CPU with NumPy; only torch's tensors move (``.to(device)``), and
  results come back with ``.cpu()``, so the CUDA case exercises the same test code.  CUDA
  cases skip, with the reason, when ``torch.cuda.is_available()`` is false.  Set
  ``MINIREG_TEST_DEVICES=cpu`` (comma-separated) to narrow the list.
* hypothesis profiles: ``ci`` (derandomized, bounded; the default when ``CI=true``),
  ``dev`` (the default otherwise) and ``thorough`` (select with
  ``HYPOTHESIS_PROFILE=thorough`` or ``pytest --hypothesis-profile=thorough``).
* errors and warnings: ``assert_same_outcome``, ``assert_same_error`` and
  ``assert_same_warnings`` run a torch call and its minireg twin and demand the same
  exception type and message (and warnings).  torch prints shapes as ``torch.Size([3, 4])``
  where minireg prints NumPy's ``(3, 4)``; ``torch_text`` rewrites torch's side, and the
  comparison is otherwise exact.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import minireg

# ---------------------------------------------------------------------------- hypothesis
_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("ci", derandomize=True, max_examples=30, **_common)
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)

# ---------------------------------------------------------------------------- devices
ALL_DEVICES = ("cpu", "cuda")
_selected = os.environ.get("MINIREG_TEST_DEVICES", ",".join(ALL_DEVICES))
DEVICES = [d.strip() for d in _selected.split(",") if d.strip()]
_unknown = set(DEVICES) - set(ALL_DEVICES)
if _unknown:
    raise pytest.UsageError(f"MINIREG_TEST_DEVICES names unknown devices: {sorted(_unknown)}")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """The torch device of this comparison ("cpu" or "cuda")."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA case: torch.cuda.is_available() is False on this machine")
    return request.param


# ---------------------------------------------------------------------------- tolerances
# Comparisons use |minireg - torch| <= atol + rtol * |torch|, per dtype and device.
#
# float64: both sides round each operation to double; torch's CPU kernels fuse
# multiply-adds (FMA) and its sqrt is not correctly rounded (TORCH_NOTES §0), so single
# operations differ by an ULP or two (2.2e-16 each).  Over tens of steps those differences
# stay around 1e-14 relative; 1e-10 leaves a wide margin and still catches any wrong
# operation, which shows up at 1e-3 or worse.
# float32: the same per-operation differences are 6e-8 each (half an ULP); trajectories
# of tens of steps accumulate them to a few 1e-7 relative, and some kernels divide by
# small running averages (RMSprop/Adagrad early steps), which amplifies them.  1e-5
# relative with an absolute floor of 1e-6 holds for every kernel here with margin (see
# each test module for kernel-specific notes).
# CUDA: torch defaults to its foreach kernels there, nvcc contracts a*b+c into FMA and
# divides by a scalar through its reciprocal (TORCH_NOTES §8): the same order of
# differences as on CPU, so the same budget, doubled for float32.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    # (dtype, device): (rtol, atol)
    ("float64", "cpu"): (1e-10, 1e-12),
    ("float64", "cuda"): (1e-10, 1e-12),
    ("float32", "cpu"): (1e-5, 1e-6),
    ("float32", "cuda"): (2e-5, 2e-6),
}


def tolerance(dtype: np.dtype | str | torch.dtype, device: str) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing minireg with torch in ``dtype`` on ``device``."""
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace("torch.", "")
    return TOLERANCES[(np.dtype(dtype).name, device)]


# ---------------------------------------------------------------------------- conversion
TORCH_DTYPES = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}


def to_torch(array: np.ndarray, device: str = "cpu", requires_grad: bool = False) -> torch.Tensor:
    """A torch copy of ``array`` on ``device`` (same dtype, same values)."""
    tensor = torch.from_numpy(np.array(array, copy=True)).to(device)
    return tensor.requires_grad_(requires_grad)


def to_numpy(value: torch.Tensor | np.ndarray | float) -> np.ndarray:
    """Bring a torch value back to the host as an ndarray."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def twin_parameters(
    arrays: Sequence[np.ndarray], device: str
) -> tuple[list[minireg.Parameter], list[torch.nn.Parameter]]:
    """The same starting values as minireg Parameters and as torch Parameters on ``device``."""
    ours = [minireg.Parameter(np.array(a, copy=True)) for a in arrays]
    theirs = [torch.nn.Parameter(to_torch(a, device)) for a in arrays]
    return ours, theirs


def set_grads(
    ours: Sequence[minireg.Parameter],
    theirs: Sequence[torch.Tensor],
    grads: Sequence[np.ndarray | None],
    device: str,
) -> None:
    """Give both twins the same gradients (``None`` leaves that parameter without one)."""
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad = None if g is None else np.array(g, copy=True)
        q.grad = None if g is None else to_torch(g, device)


def assert_close(
    actual: np.ndarray | float,
    expected: torch.Tensor | np.ndarray | float,
    rtol: float,
    atol: float,
    what: str = "",
    check_dtype: bool = True,
) -> None:
    """Assert ``|actual - expected| <= atol + rtol*|expected|`` elementwise (NaNs must match),
    and, when ``check_dtype``, that ``actual`` has ``expected``'s dtype."""
    expected_np = to_numpy(expected)
    actual_np = np.asarray(actual)
    if check_dtype and isinstance(expected, (torch.Tensor, np.ndarray)):
        assert actual_np.dtype == expected_np.dtype, (
            f"{what}: dtype {actual_np.dtype} != {expected_np.dtype}"
        )
    assert actual_np.shape == expected_np.shape, (
        f"{what}: shape {actual_np.shape} != {expected_np.shape}"
    )
    np.testing.assert_allclose(
        actual_np.astype(np.float64),
        expected_np.astype(np.float64),
        rtol=rtol,
        atol=atol,
        equal_nan=True,
        err_msg=what,
    )


# ---------------------------------------------------------------------------- errors, warnings
Warned = list[tuple[type[Warning], str]]


def torch_text(message: str) -> str:
    """torch's message with ``torch.Size([3, 4])`` written the NumPy way, ``(3, 4)``."""

    def numpy_shape(match: re.Match[str]) -> str:
        return str(tuple(int(d) for d in match.group(1).split(",") if d.strip()))

    return re.sub(r"torch\.Size\(\[([^\]]*)\]\)", numpy_shape, message)


def outcome(call: Callable[[], Any]) -> tuple[type[Exception], str] | None:
    """``(type, message)`` of the exception ``call()`` raises, or None if it returns."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the type is part of what is compared
        return type(error), str(error)
    return None


def recorded_warnings(call: Callable[[], Any]) -> Warned:
    """``(category, message)`` of every warning ``call()`` emits (none filtered out)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [(w.category, str(w.message)) for w in caught]


def _run(call: Callable[[], Any], record: bool) -> tuple[Any, Exception | None, Warned]:
    """``call()``'s result and exception (one of them None), and its warnings when ``record``."""
    box: list[tuple[Any, Exception | None]] = []

    def run() -> None:
        try:
            box.append((call(), None))
        except Exception as error:  # noqa: BLE001 - any exception is compared with torch's
            box.append((None, error))

    if record:
        warned = recorded_warnings(run)
    else:
        run()
        warned = []
    value, error = box[0]
    return value, error, warned


def _unchanged(message: str) -> str:
    return message


def _compare_outcomes(
    theirs: Callable[[], Any],
    ours: Callable[[], Any],
    what: str,
    normalise: Callable[[str], str],
    record: bool,
) -> tuple[Any, Any, Exception | None, Exception | None]:
    """Run torch's call, then minireg's, assert that the outcomes match (see
    ``assert_same_outcome``) and return both results and both exceptions."""
    theirs_value, theirs_error, theirs_warned = _run(theirs, record)
    ours_value, ours_error, ours_warned = _run(ours, record)
    expected = [(category, torch_text(message)) for category, message in theirs_warned]
    assert ours_warned == expected, f"{what}: warnings {ours_warned} != torch's {expected}"
    if theirs_error is None:
        if ours_error is not None:
            message = f"{what}: minireg raised {ours_error!r}, torch did not"
            raise AssertionError(message) from ours_error
    else:
        assert ours_error is not None, f"{what}: torch raised {theirs_error!r}, minireg did not"
        assert type(ours_error) is type(theirs_error), (
            f"{what}: {ours_error!r} != torch's {theirs_error!r}"
        )
        assert normalise(str(ours_error)) == normalise(torch_text(str(theirs_error))), what
    return theirs_value, ours_value, theirs_error, ours_error


def assert_same_outcome(
    theirs: Callable[[], Any],
    ours: Callable[[], Any],
    *,
    what: str = "",
    normalise: Callable[[str], str] = _unchanged,
    compare_warnings: bool = False,
) -> tuple[Any, Any] | None:
    """Run torch's call, then minireg's.  If torch raises, minireg must raise the same type
    with the same message (torch's through ``torch_text``, both through ``normalise``) and
    None is returned; otherwise minireg must not raise either, and ``(torch's result,
    minireg's result)`` is returned.  With ``compare_warnings``, every warning's category and
    message (torch's through ``torch_text``) must match too, in order."""
    theirs_value, ours_value, error, _ = _compare_outcomes(
        theirs, ours, what, normalise, compare_warnings
    )
    return None if error is not None else (theirs_value, ours_value)


def assert_same_error(
    theirs: Callable[[], Any],
    ours: Callable[[], Any],
    *,
    what: str = "",
    normalise: Callable[[str], str] = _unchanged,
) -> tuple[Exception, Exception]:
    """Both calls raise, the same type with the same message (as in ``assert_same_outcome``);
    returns (torch's exception, minireg's)."""
    _, _, theirs_error, ours_error = _compare_outcomes(theirs, ours, what, normalise, False)
    assert theirs_error is not None and ours_error is not None, f"{what}: torch did not raise"
    return theirs_error, ours_error


def assert_same_warnings(
    theirs: Callable[[], Any], ours: Callable[[], Any], category: type[Warning] = UserWarning
) -> tuple[Any, Any]:
    """Both calls warn (at least one ``category`` each) with the same categories and messages
    (torch's through ``torch_text``), in order; returns (torch's result, minireg's result)."""
    with pytest.warns(category) as theirs_warned:
        theirs_value = theirs()
    with pytest.warns(category) as ours_warned:
        ours_value = ours()
    expected = [(w.category, torch_text(str(w.message))) for w in theirs_warned]
    assert [(w.category, str(w.message)) for w in ours_warned] == expected
    return theirs_value, ours_value


# ---------------------------------------------------------------------------- strategies
dtypes = st.sampled_from([np.float32, np.float64])

shapes = st.one_of(
    st.just(()),  # 0-d
    st.just((0,)),  # empty
    st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
)


def random_array(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: type, scale: float = 1.0
) -> np.ndarray:
    """Standard-normal data times ``scale``, drawn in float64 then cast."""
    return np.asarray((scale * rng.standard_normal(shape)).astype(dtype))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    """One line on skipped CUDA cases instead of one line per test."""
    skipped = terminalreporter.stats.get("skipped", [])
    cuda = sum(1 for report in skipped if "CUDA case" in str(report.longrepr))
    if cuda:
        terminalreporter.write_line(
            f"{cuda} CUDA cases skipped: torch.cuda.is_available() is False on this machine "
            "(they run the same comparisons with torch's tensors on the GPU)."
        )
