r"""Learning-rate schedules, mirroring ``torch.optim.lr_scheduler``.

A scheduler rewrites ``group["lr"]`` of every param group of an optimizer, once per
``scheduler.step()`` (call it after ``optimizer.step()``).  ``last_epoch`` counts the steps:
it is 0 right after construction, because the constructor already takes one step, as
torch's does.

The schedules come in two kinds, and which kind a scheduler is decides how it combines
with other schedulers and with lrs set by hand:

* **chainable** (recursive) rules compute the new lr from the *current* ``group["lr"]``:
  ``MultiplicativeLR``, ``StepLR``, ``MultiStepLR``, ``ConstantLR``, ``LinearLR``,
  ``ExponentialLR``, ``PolynomialLR``, ``CosineAnnealingLR``.  Two of them on one
  optimizer multiply their effects, and an lr written by hand carries forward.
* **closed-form** rules compute the lr from ``base_lrs`` and the step count alone:
  ``LambdaLR``, ``CosineAnnealingWarmRestarts``, ``CyclicLR``, ``OneCycleLR``.

The chainable ones also carry the closed form (``_get_closed_form_lr``), used by
``step(epoch)`` and by ``SequentialLR`` when it hands over to the next scheduler.

Each class's ``get_lr`` is its rule and reads like the formula in its docstring; epochs,
warnings and ``state_dict`` are bookkeeping in :class:`LRScheduler`.  Arithmetic is done
on Python floats in torch's order, so the lrs equal torch's bit for bit.  An lr held as a
0-d ndarray (torch's Tensor lr) is copied when read and written in place, like torch does.

Reading path: fourth, after the optimizers.  Read :class:`LRScheduler` (the base), then
:class:`StepLR` and :class:`CosineAnnealingLR`; the rest can wait.  Next:
``minireg/nn/modules/module.py`` (``Module``).
"""

from __future__ import annotations

import functools
import math
import types
import warnings
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from minireg.optim.optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)

_STEP_ORDER_HELP = (
    "See more details at https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)


# ------------------------------------------------------------------------------- helpers
def _copy(value: Any) -> Any:
    """An array value is copied (so nobody aliases a group's lr); a number is returned as is."""
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _group_values(optimizer: Optimizer, key: str) -> list[Any]:
    """``[group[key] for each param group]``, arrays copied (KeyError if a group lacks key)."""
    return [_copy(group[key]) for group in optimizer.param_groups]


def _set_group_value(group: dict[str, Any], key: str, value: Any) -> None:
    """Write ``group[key] = value``; an array-held value is filled in place instead."""
    if isinstance(group[key], np.ndarray):
        group[key][...] = value
    else:
        group[key] = value


def _one_per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """A hyperparameter given once or as a list/tuple with one entry per param group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has {len(optimizer.param_groups)}."
            )
    else:
        value = [value] * len(optimizer.param_groups)
    return [_copy(v) for v in value]


@contextmanager
def _flag(scheduler: Any, name: str) -> Iterator[None]:
    """Set the boolean attribute ``name`` for the duration of a ``with`` block."""
    setattr(scheduler, name, True)
    try:
        yield
    finally:
        setattr(scheduler, name, False)


def _warn_if_called_outside_step(scheduler: LRScheduler) -> None:
    if not scheduler._get_lr_called_within_step:
        warnings.warn(
            "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
            UserWarning,
            stacklevel=3,
        )


def _restoring_param_groups(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a scheduler's ``__init__`` so that, if it raises, the optimizer's param groups
    are put back as they were (torch leaves them half set up: ``initial_lr`` written, an
    lr changed): a rejected scheduler changes nothing."""

    @functools.wraps(init)
    def init_or_restore(self: Any, *args: Any, **kwargs: Any) -> None:
        optimizer = kwargs.get("optimizer", args[0] if args else None)
        if not isinstance(optimizer, Optimizer):
            init(self, *args, **kwargs)
            return
        saved = [
            [(k, v, v.copy() if isinstance(v, np.ndarray) else None) for k, v in group.items()]
            for group in optimizer.param_groups
        ]
        try:
            init(self, *args, **kwargs)
        except BaseException:
            for group, items in zip(optimizer.param_groups, saved, strict=True):
                group.clear()
                for key, value, copy in items:
                    if copy is not None:
                        value[...] = copy  # an array lr is updated in place: put its value back
                    group[key] = value
            raise

    return init_or_restore


def _track_optimizer_steps(optimizer: Optimizer) -> None:
    """Wrap ``optimizer.step`` so that calling it sets ``optimizer._opt_called = True``.

    This is how the scheduler notices a ``scheduler.step()`` that comes before any
    ``optimizer.step()`` (torch issue 20124).  The wrapper is marked with
    ``_wrapped_by_lr_sched`` so a second scheduler does not wrap it again, and holds the
    optimizer through a weak reference so the optimizer does not keep itself alive.
    """
    if hasattr(optimizer.step, "_wrapped_by_lr_sched"):
        return
    step = optimizer.step.__func__  # type: ignore[attr-defined]  # the function behind the bound method
    optimizer_ref = weakref.ref(optimizer)

    @functools.wraps(step)
    def counted_step(*args: Any, **kwargs: Any) -> Any:
        opt = optimizer_ref()
        opt._opt_called = True  # type: ignore[union-attr]
        return step(opt, *args, **kwargs)

    counted_step._wrapped_by_lr_sched = True  # type: ignore[attr-defined]
    optimizer.step = counted_step  # type: ignore[method-assign]


def _one_lambda_per_group(
    optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]]
) -> list[Callable[[int], float]]:
    """One function for every param group (LambdaLR, MultiplicativeLR): a single function
    is shared by all groups, a list must have one per group (torch's ValueError otherwise)."""
    if not isinstance(lr_lambda, (list, tuple)):
        return [lr_lambda] * len(optimizer.param_groups)
    if len(lr_lambda) != len(optimizer.param_groups):
        raise ValueError(
            f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}"
        )
    return list(lr_lambda)


def _callables_state(functions: list[Callable[..., float]]) -> list[dict[str, Any] | None]:
    """torch saves a callable object's ``__dict__`` and nothing (None) for functions/lambdas."""
    return [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy() for fn in functions]


def _load_callables_state(
    functions: list[Callable[..., float]], states: list[dict[str, Any] | None]
) -> None:
    for fn, state in zip(functions, states, strict=True):
        if state is not None:
            fn.__dict__.update(state)


# ------------------------------------------------------------------------------- base
class LRScheduler:
    """Base class: bookkeeping shared by the schedulers; subclasses define :meth:`get_lr`.

    Construction records ``group["initial_lr"]`` (only where a group has none yet, so
    stacked schedulers agree on it), sets ``base_lrs`` from it, and takes the initial
    step, which evaluates the rule at epoch ``last_epoch + 1`` (0 for a fresh scheduler)
    with ``_is_initial`` set.  Resuming with ``last_epoch >= 0`` needs ``initial_lr``
    already in every group.
    """

    # Class-level defaults; while a flag is in use it lives on the instance (and so in
    # state_dict), as in torch.
    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # every constructor: a rejected one changes nothing
            cls.__init__ = _restoring_param_groups(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @_restoring_param_groups
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                        "scheduler with last_epoch >= 0.\n"
                        "This typically happens when:\n"
                        "1. You're trying to resume training from a checkpoint but haven't "
                        "properly loaded the optimizer state\n"
                        "2. You're using last_epoch >= 0 for a fresh training run (not recommended)"
                    )
        self.base_lrs: list[Any] = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch

        _track_optimizer_steps(optimizer)
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the constructor's step (rule at ``last_epoch + 1``)."""
        self._step_count = 0
        with _flag(self, "_is_initial"):
            self.step()

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (torch's layout, so states interchange)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes from :meth:`state_dict` (or from a torch scheduler's)."""
        self.__dict__.update(state_dict)

    # -------------------------------------------------------------- lrs
    def get_last_lr(self) -> list[Any]:
        """The lrs written by the last step (stale if ``group["lr"]`` was changed since)."""
        return self._last_lr

    def get_lr(self) -> list[Any]:
        """The rule: the lrs for epoch ``last_epoch``.  Called by :meth:`step`."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch and write the new lrs into the optimizer.

        ``step(epoch)`` is torch's deprecated form: it jumps to ``epoch`` and uses the
        closed form where the scheduler has one.
        """
        if self._step_count == 1:  # the user's first step: check it came after optimizer.step()
            if not hasattr(self.optimizer.step, "_wrapped_by_lr_sched"):
                warnings.warn(
                    "Seems like `optimizer.step()` has been overridden after learning rate "
                    "scheduler "
                    "initialization. Please, make sure to call `optimizer.step()` before "
                    f"`lr_scheduler.step()`. {_STEP_ORDER_HELP}",
                    UserWarning,
                    stacklevel=2,
                )
            elif not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(
                    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
                    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
                    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
                    "will result in PyTorch skipping the first value of the learning rate "
                    "schedule. "
                    f"{_STEP_ORDER_HELP}",
                    UserWarning,
                    stacklevel=2,
                )
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        """Compute the lrs (next epoch, or ``epoch`` by closed form) and write them."""
        with _flag(self, "_get_lr_called_within_step"):
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _set_group_value(group, "lr", lr)
        self._last_lr: list[Any] = _group_values(self.optimizer, "lr")


# ------------------------------------------------------------------------------- lambdas
class LambdaLR(LRScheduler):
    r"""The lr is the base lr times a user function of the epoch (not chainable).

    .. math:: \eta_e = \eta_{\text{base}}\,\lambda(e)

    ``lr_lambda`` is one function for every group or a list with one per group.  Only
    callable *objects* survive ``state_dict`` (their ``__dict__``); functions are saved as
    ``None``, as in torch.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _one_lambda_per_group(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """As the base, with ``lr_lambdas`` as a list of callable objects' ``__dict__``
        (or None)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = _callables_state(self.lr_lambdas)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes, and the saved ``__dict__`` of callable-object lambdas."""
        state = dict(state_dict)
        lambdas_state = state.pop("lr_lambdas")
        self.__dict__.update(state)
        _load_callables_state(self.lr_lambdas, lambdas_state)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        return [
            base_lr * lmbda(self.last_epoch)
            for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class MultiplicativeLR(LRScheduler):
    r"""Multiply the current lr by a user function of the epoch (chainable).

    .. math:: \eta_e = \eta_{e-1}\,\lambda(e) \quad (e \ge 1), \qquad \eta_0 \text{ unchanged}
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _one_lambda_per_group(optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    state_dict = LambdaLR.state_dict  # lambdas are saved the same way
    load_state_dict = LambdaLR.load_state_dict

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [
            group["lr"] * lmbda(self.last_epoch)
            for lmbda, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)
        ]


# ------------------------------------------------------------------------------- step decays
class StepLR(LRScheduler):
    r"""Step decay: multiply the lr by ``gamma`` every ``step_size`` epochs (chainable).

    .. math:: \eta_e = \gamma\,\eta_{e-1} \text{ if } e > 0 \text{ and } s \mid e, \qquad
              \text{closed form } \eta_e = \eta_{\text{base}}\,\gamma^{\lfloor e/s \rfloor}

    No validation: ``step_size=0`` constructs and fails on the first step, as in torch.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs
        ]


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each milestone epoch (chainable).

    .. math:: \eta_e = \gamma^{c(e)}\,\eta_{e-1}, \qquad
              \text{closed form } \eta_e = \eta_{\text{base}}\,\gamma^{\#\{m \le e\}}

    where :math:`c(e)` counts how often ``e`` appears in ``milestones`` (repeats compound;
    0 is allowed and then acts at construction).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        if self.last_epoch not in self.milestones:
            return _group_values(self.optimizer, "lr")
        return [
            group["lr"] * self.gamma ** self.milestones[self.last_epoch]
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list[Any]:
        milestones = sorted(self.milestones.elements())
        return [
            base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
            for base_lr in self.base_lrs
        ]


class ConstantLR(LRScheduler):
    r"""Hold the lr at ``factor`` times its value for ``total_iters`` epochs (chainable).

    .. math:: \eta_0 = f\,\eta_{-1}, \qquad \eta_T = \eta_{T-1}/f, \qquad
              \text{closed form } \eta_e = \eta_{\text{base}}\,(f \text{ if } e < T \text{ else } 1)

    The factor is applied by the constructor's step (e = 0).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    r"""Linear warm-up (or decay) of the lr's factor from ``start_factor`` to ``end_factor``.

    The factor :math:`f_e = s + (t - s)\min(e, T)/T` is applied as a ratio of successive
    factors, so the rule is chainable (Goyal et al., 2017, "Accurate, Large Minibatch SGD",
    use it as gradual warm-up):

    .. math:: \eta_0 = s\,\eta_{-1}, \qquad
              \eta_e = \eta_{e-1}\,\frac{f_e}{f_{e-1}}
                     = \eta_{e-1}\Bigl(1 + \frac{t - s}{T s + (e-1)(t - s)}\Bigr) \ (1 \le e \le T),
              \qquad \eta_e = \eta_{e-1} \ (e > T)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or "
                "equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        s, t, T, e = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if e == 0:
            return [group["lr"] * s for group in self.optimizer.param_groups]
        if self._is_initial or e > T:
            return _group_values(self.optimizer, "lr")
        return [
            group["lr"] * (1.0 + (t - s) / (T * s + (e - 1) * (t - s)))
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list[Any]:
        s, t, T = self.start_factor, self.end_factor, self.total_iters
        return [base_lr * (s + (t - s) * min(T, self.last_epoch) / T) for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every epoch (chainable).

    .. math::
        \eta_e = \gamma\,\eta_{e-1}, \qquad
        \text{closed form } \eta_e = \eta_{\text{base}}\,\gamma^e
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        if self._is_initial:  # so that resuming at last_epoch=k does not decay one step too far
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to zero over ``total_iters`` epochs (chainable), the "poly" policy
    of ParseNet (Liu et al., 2015) and DeepLab (Chen et al., 2017).

    .. math:: \eta_e = \eta_{e-1}\left(\frac{1 - e/T}{1 - (e-1)/T}\right)^{p} \ (1 \le e \le T),
              \qquad \text{closed form } \eta_e = \eta_{\text{base}}\,(1 - \min(e, T)/T)^{p}
    """

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        e, T = self.last_epoch, self.total_iters
        if self._is_initial or e > T:
            return _group_values(self.optimizer, "lr")
        decay_factor = ((1.0 - e / T) / (1.0 - (e - 1) / T)) ** self.power
        return [group["lr"] * decay_factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[Any]:
        T = self.total_iters
        return [
            base_lr * (1.0 - min(T, self.last_epoch) / T) ** self.power for base_lr in self.base_lrs
        ]


# ------------------------------------------------------------------------------- cosine
def _cosine(base_lr: Any, eta_min: float, t: float, period: float) -> Any:
    r""":math:`\eta_{\min} + \tfrac12(\eta_{\text{base}} - \eta_{\min})(1 + \cos(\pi t / T))`."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base lr down to ``eta_min`` over ``T_max`` epochs
    (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts";
    here without restarts).

    The target is the closed form :math:`\eta_e = \eta_{\min} + \tfrac12(\eta_{\text{base}}
    - \eta_{\min})(1 + \cos(\pi e / T))`, but torch steps it *recursively*, as the ratio of
    successive cosine terms applied to the current lr (so it chains with other schedulers):

    .. math:: \eta_e = \eta_{\min} + (\eta_{e-1} - \eta_{\min})\,
              \frac{1 + \cos(\pi e / T)}{1 + \cos(\pi (e-1) / T)}

    At the trough (:math:`e - 1 \equiv T \pmod{2T}`) the denominator is 0, so that step
    adds the closed-form increment :math:`\tfrac12(\eta_{\text{base}} - \eta_{\min})(1 -
    \cos(\pi / T))` instead.  Past ``T_max`` nothing stops it: the lr climbs back up and
    the schedule is periodic with period ``2 * T_max``, exactly like the closed form.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        # (torch also has a closed-form branch for `_step_count == 1 and e > 0`; after the
        # constructor's step `_step_count` is at least 2 here, so it can never be taken.)
        if (e - 1 - T) % (2 * T) == 0:  # leaving the trough: the ratio below would be x/0
            return [
                group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * e / T))
            / (1 + math.cos(math.pi * (e - 1) / T))
            * (group["lr"] - eta_min)
            + eta_min
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list[Any]:
        return [
            _cosine(base_lr, self.eta_min, self.last_epoch, self.T_max) for base_lr in self.base_lrs
        ]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR: cosine annealing restarted every :math:`T_i` epochs, with :math:`T_{i+1} =
    T_{\text{mult}}\,T_i` (Loshchilov & Hutter, 2017).  Not chainable.

    .. math:: \eta = \eta_{\min} + \tfrac12(\eta_{\text{base}} - \eta_{\min})
              \Bigl(1 + \cos\bigl(\pi\,T_{\text{cur}} / T_i\bigr)\Bigr)

    :math:`T_{\text{cur}}` counts epochs since the last restart.  ``step()`` advances it by
    one; ``step(epoch)`` (``epoch`` may be fractional, e.g. ``epoch + batch / n_batches``)
    finds the restart cycle of ``epoch`` directly: with :math:`T_{\text{mult}} > 1` the
    cycles start at :math:`T_0 (T_{\text{mult}}^n - 1)/(T_{\text{mult}} - 1)`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}"
            )
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        _warn_if_called_outside_step(self)
        return [_cosine(base_lr, self.eta_min, self.T_cur, self.T_i) for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or jump to ``epoch`` (a float is fine).

        Unlike the base class this neither counts ``_step_count`` nor warns about the
        call order or the deprecated ``epoch`` argument (torch's override does not either).
        """
        if epoch is None and self.last_epoch < 0:
            epoch = 0

        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # restart
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # cycle n starts at T_0 (T_mult^n - 1) / (T_mult - 1): solve for n
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)

        with _flag(self, "_get_lr_called_within_step"):
            for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
                _set_group_value(group, "lr", lr)
        self._last_lr = _group_values(self.optimizer, "lr")


# ------------------------------------------------------------------------------- cyclical
def _set_momentum(group: dict[str, Any], use_beta1: bool, momentum: Any) -> None:
    """Write the cycled momentum: ``group["momentum"]``, or ``betas[0]`` for Adam-like groups."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _triangular_scale(x: float) -> float:
    return 1.0


def _triangular2_scale(x: float) -> float:
    return 1 / (2.0 ** (x - 1))  # halve the amplitude every cycle


def _exp_range_scale(gamma: float, x: float) -> float:
    return gamma**x  # shrink the amplitude by gamma every iteration


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (Smith, 2017, "Cyclical Learning Rates for Training Neural
    Networks"): the lr runs up from ``base_lr`` to ``max_lr`` in ``step_size_up`` steps and
    back down in ``step_size_down`` steps, over and over.  Not chainable.

    With cycle length :math:`L = s_{\text{up}} + s_{\text{down}}`, ratio :math:`r =
    s_{\text{up}}/L`, cycle :math:`c = \lfloor 1 + e/L \rfloor` and position
    :math:`x = 1 + e/L - c \in [0, 1)`:

    .. math:: h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases},
              \qquad \eta_e = \eta_{\text{base}} + (\eta_{\max} - \eta_{\text{base}})\,h\,
              \sigma(c \text{ or } e)

    The amplitude scale :math:`\sigma` is 1 (``"triangular"``), :math:`2^{-(c-1)}`
    (``"triangular2"``), :math:`\gamma^e` (``"exp_range"``), or a user ``scale_fn``
    evaluated on the cycle or the iteration per ``scale_mode``.  With ``cycle_momentum``
    the momentum (``betas[0]`` for Adam-like optimizers) moves the opposite way:
    :math:`m_e = m_{\max} - (m_{\max} - m_{\text{base}})\,h\,\sigma`.

    The constructor sets each group's lr to ``base_lr`` (and momentum to ``max_momentum``).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        base_lrs = _one_per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                _set_group_value(group, "lr", lr)
        self.max_lrs = _one_per_group("max_lr", optimizer, max_lr)

        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size

        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
                )
            self.use_beta1 = "betas" in self.optimizer.defaults
            self.base_momentums = _one_per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _one_per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base

        super().__init__(optimizer, last_epoch)
        # torch's order: the constructor's step above used base_lrs from group["initial_lr"]
        # (which an earlier scheduler may have set); from now on base_lr is used.
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        """Pick the built-in amplitude scale for ``mode`` (and the matching ``scale_mode``)."""
        if self._scale_fn_custom is not None:
            return
        if self.mode == "triangular":
            self._scale_fn_ref: Callable[[float], float] = _triangular_scale
            self.scale_mode = "cycle"
        elif self.mode == "triangular2":
            self._scale_fn_ref = _triangular2_scale
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self._scale_fn_ref = functools.partial(_exp_range_scale, self.gamma)
            self.scale_mode = "iterations"

    def scale_fn(self, x: float) -> float:
        """The amplitude scale :math:`\\sigma(x)`."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._scale_fn_ref(x)

    def get_lr(self) -> list[Any]:
        """The lrs at ``last_epoch``; with ``cycle_momentum`` also writes the momentums."""
        _warn_if_called_outside_step(self)
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)

        # sigma is evaluated at every use, as in torch (a stateful scale_fn sees the same calls)
        def sigma() -> float:
            return self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)

        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True):
            base_height = (max_lr - base_lr) * scale_factor
            lrs.append(base_lr + base_height * sigma())

        if self.cycle_momentum:
            for group, m_base, m_max in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums, strict=True
            ):
                base_height = (m_max - m_base) * scale_factor
                _set_momentum(group, self.use_beta1, m_max - base_height * sigma())
        return lrs

    def state_dict(self) -> dict[str, Any]:
        """As the base, minus the built-in scale function; a custom ``scale_fn`` is saved
        as its ``__dict__`` if it is a callable object, else as ``None`` (torch's rule)."""
        state = super().state_dict()
        state.pop("_scale_fn_ref", None)
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None if fn is None else _callables_state([fn])[0]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        fn_state = state.pop("_scale_fn_custom")
        super().load_state_dict(state)
        if fn_state is not None:
            self._scale_fn_custom.__dict__.update(fn_state)  # type: ignore[union-attr]
        self._init_scale_fn()


def _annealing_cos(start: float, end: float, pct: float) -> float:
    r"""Cosine from ``start`` (pct=0) to ``end`` (pct=1):
    :math:`e + \tfrac{s-e}{2}(1 + \cos \pi p)`."""
    cos_out = math.cos(math.pi * pct) + 1
    return end + (start - end) / 2.0 * cos_out


def _annealing_linear(start: float, end: float, pct: float) -> float:
    r"""Straight line from ``start`` (pct=0) to ``end`` (pct=1): :math:`s + (e - s)p`."""
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2019, "Super-Convergence: Very Fast Training of
    Neural Networks Using Large Learning Rates"), as in fastai.  Not chainable.

    Over ``total_steps`` steps the lr goes, by cosine or linear annealing, from
    :math:`\eta_0 = \eta_{\max}/\text{div\_factor}` up to :math:`\eta_{\max}` during the
    first ``pct_start`` of the steps, then down to :math:`\eta_0/\text{final\_div\_factor}`.
    With ``three_phase`` it goes back to :math:`\eta_0` symmetrically first and only then
    down to the minimum (the paper's schedule).  With ``cycle_momentum`` the momentum (or
    ``betas[0]``) moves opposite to the lr, between ``max_momentum`` and ``base_momentum``;
    this overwrites the group's momentum, so it switches momentum *on* for an SGD built
    with ``momentum=0``, as in torch.

    Phase :math:`k` ends at step :math:`E_k` (two phases: :math:`pT - 1` and :math:`T - 1`;
    three: :math:`pT - 1`, :math:`2pT - 2`, :math:`T - 1`); step :math:`e` uses the first
    phase with :math:`e \le E_k` (or the last), at :math:`p = (e - E_{k-1})/(E_k - E_{k-1})`.
    Step ``total_steps`` itself is still allowed (it extrapolates, :math:`p > 1`); one more
    raises ``ValueError``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

        # Each phase anneals between two group keys up to its end step (a float, as in torch):
        #      end_step   lr from -> to               momentum from -> to
        T = self.total_steps
        up_end = float(pct_start * T) - 1
        # fmt: off
        if three_phase:
            down_end = float(2 * pct_start * T) - 2
            self._schedule_phases = [
                _phase(up_end,   "initial_lr", "max_lr",     "max_momentum",  "base_momentum"),
                _phase(down_end, "max_lr",     "initial_lr", "base_momentum", "max_momentum"),
                _phase(T - 1,    "initial_lr", "min_lr",     "max_momentum",  "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(up_end,   "initial_lr", "max_lr",     "max_momentum",  "base_momentum"),
                _phase(T - 1,    "max_lr",     "min_lr",     "base_momentum", "max_momentum"),
            ]
        # fmt: on

        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self._anneal_func_type = anneal_strategy

        max_lrs = _one_per_group("max_lr", self.optimizer, max_lr)
        if last_epoch == -1:
            for group, group_max_lr in zip(self.optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor

        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            if "momentum" not in self.optimizer.defaults and "betas" not in self.optimizer.defaults:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
                )
            self.use_beta1 = "betas" in self.optimizer.defaults
            max_momentums = _one_per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _one_per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(
                    max_momentums, base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base

        super().__init__(optimizer, last_epoch)

    def _anneal_func(self, start: float, end: float, pct: float) -> float:
        anneal = _annealing_cos if self._anneal_func_type == "cos" else _annealing_linear
        return anneal(start, end, pct)

    def get_lr(self) -> list[Any]:
        """The lrs at ``last_epoch``; with ``cycle_momentum`` also writes the momentums."""
        _warn_if_called_outside_step(self)
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"Tried to step {step_num} times. The specified number of total steps is "
                f"{self.total_steps}"
            )

        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lrs.append(
                        self._anneal_func(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    )
                    if self.cycle_momentum:
                        momentum = self._anneal_func(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                        _set_momentum(group, self.use_beta1, momentum)
                    break
                start_step = phase["end_step"]
        return lrs


def _phase(
    end_step: float, start_lr: str, end_lr: str, start_momentum: str, end_momentum: str
) -> dict[str, Any]:
    """One OneCycleLR phase, in torch's state_dict layout."""
    return {
        "end_step": end_step,
        "start_lr": start_lr,
        "end_lr": end_lr,
        "start_momentum": start_momentum,
        "end_momentum": end_momentum,
    }


# ------------------------------------------------------------------------------- combinators
def _check_schedulers(owner: str, optimizer: Optimizer, schedulers: Sequence[Any]) -> None:
    """torch's checks on the schedulers that SequentialLR/ChainedScheduler combine."""
    for index, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {index} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {index} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {scheduler.__class__.__name__} at index {index} has "
                f"{scheduler.optimizer}, "
                f"which is different from {optimizer.__class__.__name__}."
            )


def _state_dict_with_children(scheduler: Any) -> dict[str, Any]:
    state = {k: v for k, v in scheduler.__dict__.items() if k not in ("optimizer", "_schedulers")}
    state["_schedulers"] = [s.state_dict() for s in scheduler._schedulers]
    return state


def _load_state_dict_with_children(scheduler: Any, state_dict: dict[str, Any]) -> None:
    state = dict(state_dict)
    children = state.pop("_schedulers")
    scheduler.__dict__.update(state)
    for child, child_state in zip(scheduler._schedulers, children, strict=True):
        child.load_state_dict(child_state)


class SequentialLR(LRScheduler):
    """Run ``schedulers[k]`` from epoch ``milestones[k-1]`` to ``milestones[k]``, e.g. a
    LinearLR warm-up followed by CosineAnnealingLR.

    Construction resets every group's lr to ``initial_lr``, undoes the constructor steps of
    all sub-schedulers, and re-takes the first one's.  At a milestone the next scheduler
    restarts at its epoch 0 from its base lr (by its closed form where it has one), not
    from where the previous scheduler left the lr.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler, but got no scheduler."
            )
        _check_schedulers(self.__class__.__name__, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                "than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the "
                f"number of milestones to be equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        for group in self.optimizer.param_groups:
            _set_group_value(group, "lr", group["initial_lr"])
        self.recursive_undo()
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Take back the constructor step of every (nested) sub-scheduler: ``last_epoch -= 1``."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        """Advance one epoch: step the scheduler whose interval this is, or start the next one."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # hand-over: restart at epoch 0, closed form where there is one
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Own attributes, and the sub-schedulers' states as a list under ``_schedulers``."""
        return _state_dict_with_children(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_state_dict_with_children(self, state_dict)


class ChainedScheduler(LRScheduler):
    """Step several (chainable) schedulers of one optimizer together, in the given order,
    so their factors multiply.  Takes no initial step of its own."""

    def __init__(
        self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler to be chained, "
                "but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_schedulers(self.__class__.__name__, optimizer, schedulers)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _group_values(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:  # type: ignore[override]
        """Step every scheduler once, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _group_values(self._schedulers[-1].optimizer, "lr")

    def state_dict(self) -> dict[str, Any]:
        """Own attributes, and the sub-schedulers' states as a list under ``_schedulers``."""
        return _state_dict_with_children(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _load_state_dict_with_children(self, state_dict)


# ------------------------------------------------------------------------------- plateau
class ReduceLROnPlateau(LRScheduler):
    r"""Cut the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    Each ``step(metric)``: the metric *improves* on the best so far when

    ======  ========================================  ===============================
    mode    ``threshold_mode="rel"``                  ``threshold_mode="abs"``
    ======  ========================================  ===============================
    min     :math:`m < \text{best}\,(1 - \tau)`        :math:`m < \text{best} - \tau`
    max     :math:`m > \text{best}\,(1 + \tau)`        :math:`m > \text{best} + \tau`
    ======  ========================================  ===============================

    (NaN never improves).  An improvement resets the bad-epoch count, anything else adds
    one; epochs within ``cooldown`` of a cut do not count.  Once the count exceeds
    ``patience``, every group's lr becomes :math:`\max(\eta\,f, \eta_{\min,i})`, unless that
    changes it by no more than ``eps``, and the cooldown starts.

    Unlike the others it takes no initial step and sets no ``initial_lr``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor

        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer

        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr: float | None = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)

        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _group_values(self.optimizer, "lr")
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        """Forget the best value and the counters."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record one epoch's metric (a number or one-element array); cut the lrs if it is time."""
        current = _metric_value(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count

        if self.num_bad_epochs > self.patience:
            self._reduce_lr(epoch)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self, epoch: int) -> None:
        """``lr <- max(lr * factor, min_lr)`` in every group where that moves it by more
        than eps."""
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    "The number of param groups in the `optimizer` "
                    f"({len(self.optimizer.param_groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized "
                    f"({len(self.min_lrs)}), usually due to a new "
                    "param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length "
                    "of the `optimizer` param groups."
                )
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)

        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                _set_group_value(group, "lr", new_lr)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        if self.mode == "max" and self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold  # max, abs

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in {"min", "max"}:
            raise ValueError("mode " + mode + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + threshold_mode + " is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf  # the worst value in this mode
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._init_is_better(
            mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode
        )


def _metric_value(metrics: Any) -> float:
    """``float(metrics)`` as torch takes it: a number, or an array of one element (any shape)."""
    if isinstance(metrics, np.ndarray):
        if metrics.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return float(metrics.reshape(()))
    return float(metrics)
