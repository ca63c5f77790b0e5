"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``.

minireg has no autograd graph: each module's ``forward`` *records* what its hand-written
``backward`` needs (its input, statistics, mask, the output's shape and dtype), and
``backward`` differentiates that recorded forward.  Grad mode decides whether a forward
records: inside ``with minireg.no_grad():`` forwards compute as usual (batch norm in
training mode still updates its running statistics, as in torch) but record nothing, so
a validation pass never replaces the training forward that the next ``backward``
differentiates.  This is torch's ``torch.no_grad`` seen from the hand-written side.

As in torch, the mode is thread-local, every context manager restores the mode it found
on exit, and each one also works as a function decorator (``@minireg.no_grad()``, or
``@minireg.no_grad`` without the parentheses).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled = True  # each thread starts with grad mode on, as in torch


_state = _State()


def is_grad_enabled() -> bool:
    """True when forwards record what ``backward`` needs (the default)."""
    return _state.enabled


def _set(mode: bool) -> None:
    if not isinstance(mode, bool):  # torch's check and words
        kind = type(mode).__name__
        raise TypeError(
            f"set_grad_enabled(): argument 'enabled' (position 1) must be bool, not {kind}"
        )
    _state.enabled = mode


class _GradModeContext:
    """A context manager that sets grad mode on entry and restores it on exit, and a
    decorator that runs the decorated function inside a fresh instance of itself."""

    _mode: bool

    def __init__(self) -> None:
        self._previous = True

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        _set(self._mode)

    def __exit__(self, *exc_info: object) -> None:
        _set(self._previous)

    def _clone(self) -> _GradModeContext:
        return type(self)()

    def __call__(self, function: F) -> F:
        @functools.wraps(function)
        def run_in_mode(*args: Any, **kwargs: Any) -> Any:
            with self._clone():
                return function(*args, **kwargs)

        return run_in_mode  # type: ignore[return-value]


class _NoParameters(_GradModeContext):
    """Usable as ``@no_grad`` as well as ``@no_grad()``, as torch allows."""

    def __new__(cls, function: Callable[..., Any] | None = None) -> Any:
        if function is None:
            return super().__new__(cls)
        return cls()(function)  # the bare-decorator form: decorate right away


class no_grad(_NoParameters):
    """Forwards inside record nothing for ``backward`` (torch's ``torch.no_grad``)."""

    _mode = False


class enable_grad(_NoParameters):
    """Forwards inside record again, even within ``no_grad`` (torch's ``torch.enable_grad``)."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode`` now; as a context manager, restore the old mode on exit.

    ``minireg.set_grad_enabled(False)`` as a plain call switches recording off until it
    is switched on again; ``with minireg.set_grad_enabled(is_training):`` is the usual
    way to share one loop between training and validation.
    """

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self._previous = is_grad_enabled()
        _set(mode)  # at construction, so that the plain call works, as torch's
        self._mode = mode

    def __enter__(self) -> None:
        _set(self._mode)

    def _clone(self) -> _GradModeContext:
        return set_grad_enabled(self._mode)

    def __call__(self, function: F) -> F:
        _set(self._previous)  # decorating is not entering: undo the constructor's switch
        return super().__call__(function)

    def __repr__(self) -> str:
        return f"minireg.set_grad_enabled(mode={self._mode})"
