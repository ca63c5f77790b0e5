"""The kernels stay textbook-sized, and the engine stays out of their modules.

A kernel is read by students: its body follows the equations in its docstring, one line
per step.  These tests count each kernel's *code lines* -- the physical lines of its
body's statements, without the docstring, blank lines and comment-only lines -- and
hold them to the budgets below, together with the length of two reading paths: one
Adam step from ``Optimizer.step`` down to the parameter write, and batch norm's forward
and backward.  They also check that no kernel's module imports the speed engine
(``minireg._engine``) or writes into ``out=`` scratch arrays: speed lives elsewhere.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import minireg
import minireg.nn.functional as F
from minireg import numerics
from minireg.optim import adadelta, adagrad, adam, nadam, optimizer, radam, rmsprop, sgd

OPTIMIZER_KERNELS = [
    sgd.sgd, adagrad.adagrad, adadelta.adadelta, rmsprop.rmsprop, adam.adam, nadam.nadam,
    radam.radam,
]  # fmt: skip
NORM_KERNELS = [
    F.batch_norm, F.batch_norm_backward, F.layer_norm, F.layer_norm_backward, F.group_norm,
    F.group_norm_backward, F.instance_norm, F.instance_norm_backward,
]  # fmt: skip
BUDGETS: list[tuple[Callable[..., Any], int]] = (
    [(kernel, 25) for kernel in OPTIMIZER_KERNELS]
    + [(kernel, 30) for kernel in NORM_KERNELS]
    + [(F.dropout, 20), (minireg.nn.utils.clip_grad_norm_, 40)]
)


def _body_and_source(func: Callable[..., Any]) -> tuple[list[ast.stmt], list[str]]:
    source = textwrap.dedent("".join(inspect.getsourcelines(inspect.unwrap(func))[0]))
    definition = ast.parse(source).body[0]
    assert isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef))
    body = definition.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):  # the docstring
            body = body[1:]
    return body, source.splitlines()


def code_lines(func: Callable[..., Any]) -> int:
    """Physical lines of ``func``'s body statements, minus docstring, blanks and comments."""
    body, lines = _body_and_source(func)
    numbers = {n for stmt in body for n in range(stmt.lineno, (stmt.end_lineno or 0) + 1)}
    code = [lines[n - 1].strip() for n in numbers]
    return sum(1 for line in code if line and not line.startswith("#"))


def _sample(x: int) -> int:
    """A docstring

    over three lines."""
    # a comment
    y = x + 1  # a trailing comment

    return (
        y
        * 2
    )  # fmt: skip


def test_code_lines_counts_only_code():
    assert code_lines(_sample) == 5


@pytest.mark.parametrize(
    ("kernel", "budget"), BUDGETS, ids=[f"{k.__module__}.{k.__name__}" for k, _ in BUDGETS]
)
def test_kernel_within_budget(kernel, budget):
    assert code_lines(kernel) <= budget, f"{kernel.__qualname__}: {code_lines(kernel)} code lines"


def test_optimizer_step_is_short():
    assert code_lines(optimizer.Optimizer.step) <= 20


def test_one_adam_step_reads_under_100_lines_a_third_of_them_math():
    bookkeeping = [
        optimizer.Optimizer.step,
        optimizer.Optimizer._step_param,
        adam.Adam._prepare_step,
        optimizer.increment,
    ]
    math = [adam.adam, numerics.regularized_gradient, numerics.lerp]
    total = sum(map(code_lines, bookkeeping + math))
    assert total < 100
    assert sum(map(code_lines, math)) >= total / 3


def test_batch_norm_forward_and_backward_read_under_120_lines():
    """From the functional entry points down to NumPy: the kernels, their numerics
    helpers and the argument checks (the engine's blocked sum is not on the path)."""
    from minireg.nn._functional import batch_norm, dtype_checks, norm_checks

    path = [
        batch_norm.batch_norm,
        batch_norm.batch_norm_with_statistics,
        batch_norm.native_batch_norm,
        batch_norm.batch_norm_backward,
        numerics.channel_mean,
        numerics.channel_variance,
        numerics.channel_sum,
        numerics.rounded_mean,
        norm_checks.check_batch_norm,
        norm_checks._check_per_channel,
        norm_checks._verify_batch_size,
        norm_checks._check_parameter_dtypes,
        dtype_checks.as_tensor,
        dtype_checks.check_floating,
    ]
    assert sum(map(code_lines, path)) < 120


KERNEL_MODULES = sorted(
    {k.__module__ for k, _ in BUDGETS} | {"minireg.numerics", "minireg.optim.optimizer"}
)


@pytest.mark.parametrize("module_name", KERNEL_MODULES)
def test_kernel_modules_leave_speed_to_the_engine(module_name):
    """No import of ``minireg._engine``, no ``out=`` scratch writes, no ``einsum`` runs.

    ``minireg.numerics`` may hand work to the engine (that is what its helpers are for),
    but only through imports; ``optimizer.py`` dispatches to it."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    imported = [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        + [alias.name for alias in node.names]
    ]
    engine_imports = [line for line, name in imported if name.startswith("minireg._engine")]
    if module_name not in ("minireg.numerics", "minireg.optim.optimizer"):
        assert engine_imports == [], f"{module_name} imports the engine at lines {engine_imports}"
    out_writes = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and any(k.arg == "out" for k in node.keywords)
    ]
    assert out_writes == [], f"{module_name} writes into out= at lines {out_writes}"
    assert "einsum" not in inspect.getsource(importlib.import_module(module_name))
