"""`Module`: parameters, buffers and children, with torch's names and state_dict keys.

A minireg module computes its own backward pass: ``forward`` records what the gradient
needs, and ``backward(grad_output)`` returns the gradient for the input while **adding**
the parameter gradients into each ``Parameter.grad`` (torch's autograd accumulates too).

What torch's autograd graph guarantees, the record checks by hand.  A forward records
only while grad mode is on (:func:`minireg.no_grad` switches it off), and ``backward``
differentiates the last recorded forward.  Before writing anything, ``backward`` checks
that ``grad_output`` fits that forward's output (shape; dtype, cast to the output's as
torch does) and that the backward can belong to it: a forward must have been recorded,
and one recorded in eval mode is not differentiated once the module is back in training
mode (the trace of a validation pass run without ``no_grad``).  Then a module writes all
its parameter gradients or none.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from minireg._engine.flat import FlatParameters, flatten_parameters
from minireg.grad_mode import is_grad_enabled
from minireg.nn._functional.dtype_checks import as_tensor, is_floating, torch_dtype_name
from minireg.parameter import Parameter


class ForwardRecord:
    """What one forward left for its backward: the mode it ran in, its input's shape, its
    output's shape and dtype, whether its input could carry a gradient (a floating input),
    ``saved``, the arrays the module's backward formula needs, and ``number``, which
    orders all recorded forwards (a container checks that its children ran in order)."""

    __slots__ = ("differentiable", "dtype", "input_shape", "number", "saved", "shape", "training")

    def __init__(
        self,
        training: bool,
        input: np.ndarray,
        output: np.ndarray,
        differentiable: bool,
        saved: tuple[Any, ...],
    ) -> None:
        self.training = training
        self.input_shape: tuple[int, ...] = input.shape
        self.shape: tuple[int, ...] = output.shape
        self.dtype: np.dtype = output.dtype
        self.differentiable = differentiable
        self.saved = saved
        self.number = next(_forward_numbers)


_forward_numbers = itertools.count()


def check_new_shape(shape: tuple[int, ...]) -> None:
    """torch's RuntimeError for a parameter or buffer of negative size (NumPy's would be a
    ValueError), raised by a constructor before it makes anything."""
    for size in shape:
        if size < 0:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {size}: {list(shape)}"
            )


def check_grad_output(grad_output: Any, record: ForwardRecord) -> np.ndarray:
    """``grad_output`` checked against the recorded output, as ``torch.autograd.backward``
    checks it (torch's exception types and words), and cast to the output's dtype.

    ``None`` stands for ones when the output has one element (torch's implicit gradient).
    """
    if grad_output is None:
        if math.prod(record.shape) != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return np.ones(record.shape, record.dtype)
    if not hasattr(grad_output, "__array__"):  # ndarrays, NumPy scalars, torch tensors have it
        kind = type(grad_output).__name__
        raise TypeError(f"gradients can be either Tensors or None, but got {kind}")
    grad = as_tensor(grad_output, "backward", "grad_output")
    if grad.shape != record.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[0] has a shape of {grad.shape} and "
            f"output[0] has a shape of {record.shape}."
        )
    if np.iscomplexobj(grad) != (record.dtype.kind == "c"):
        raise RuntimeError(
            "For complex Tensors, both grad_output and output are required to have the same "
            "dtype. Mismatch in dtype: grad_output[0] has a dtype of "
            f"{torch_dtype_name(grad.dtype)} and output[0] has a dtype of "
            f"{torch_dtype_name(record.dtype)}."
        )
    if not record.differentiable:  # torch: nothing in this forward required a gradient
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    return grad.astype(record.dtype, copy=False)  # torch's engine casts to the output's dtype


class Module:
    """Base class of every layer, mirroring ``torch.nn.Module``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())

    # ---------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError("cannot assign before Module.__init__() call")
        if isinstance(value, Parameter):
            self._discard(name)
            params[name] = value
        elif isinstance(value, Module):
            self._discard(name)
            self._modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(minireg.nn.Parameter or None expected)"
                )
            params[name] = None
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str) -> None:
        for table in (self.__dict__, self._parameters, self._buffers, self._modules):
            table.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: search the registries.
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        self._discard(name)
        self._buffers[name] = array

    def add_module(self, name: str, module: Module | None) -> None:
        self._discard(name)
        self._modules[name] = module

    # ---------------------------------------------------------------- computation
    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.forward(*inputs, **kwargs)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"Module [{type(self).__name__}] has no backward")

    # ---------------------------------------------------------------- the forward record
    # None: nothing recorded (yet).  Modules that record set it through _record_forward.
    _forward_record: ForwardRecord | None = None

    def _record_forward(self, input: Any, output: Any, *saved: Any) -> None:
        """Remember this forward for ``backward``, unless grad mode is off (``no_grad``).

        ``input`` decides whether a gradient can flow back (a floating array); ``saved``
        is what the module's backward formula needs.
        """
        if is_grad_enabled():
            input, output = np.asarray(input), np.asarray(output)
            differentiable = is_floating(input.dtype)
            record = ForwardRecord(self.training, input, output, differentiable, saved)
            object.__setattr__(self, "_forward_record", record)

    def _check_backward_ready(self) -> ForwardRecord:
        """The recorded forward, if a backward may differentiate it now; else a clear error."""
        record = self._forward_record
        name = type(self).__name__
        if record is None:
            raise RuntimeError(
                f"{name}.backward() called before forward(): no forward was recorded "
                "(forwards under minireg.no_grad() record nothing)"
            )
        if self.training and not record.training:
            raise RuntimeError(
                f"{name}.backward(): the recorded forward ran in eval mode, but the module is "
                "in training mode now. That forward was most likely a validation pass run "
                "without minireg.no_grad(), after the training forward; differentiating it "
                "would give the validation batch's gradients. Run validation under "
                "`with minireg.no_grad():`, or run the training forward again."
            )
        return record

    def _recorded_forward(self, grad_output: Any) -> tuple[tuple[Any, ...], np.ndarray]:
        """``(saved, grad_output)``: what the recorded forward saved, and ``grad_output``
        checked against its output (:func:`check_grad_output`).  Raises, before anything
        is written, when there is no forward this backward can belong to."""
        record = self._check_backward_ready()
        return record.saved, check_grad_output(grad_output, record)

    # ---------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop(0)
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
                if child is not None
            ]
            stack[0:0] = children  # depth-first, children in registration order

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()  # a child registered under two names is listed once, as torch
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, table: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on ``self``, like torch."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.fill(0)

    def flatten_parameters(self) -> FlatParameters:
        """Store this module's parameters end to end in one buffer (data and grad).

        :func:`minireg.nn.utils.flatten_parameters` over :meth:`parameters`, in that
        order, so an optimizer built on ``module.parameters()`` takes its one-call flat
        path.  Returns the two buffers.
        """
        return flatten_parameters(self.parameters())

    def to(self, dtype: Any) -> Module:
        """Convert floating parameters (and their grads) and buffers to ``dtype`` in place."""
        dtype = np.dtype(dtype)
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = param.data.astype(dtype)
                    param._grad_slot = None  # a new array: out of any flat buffer
                    if param.grad is not None:
                        param.grad = param.grad.astype(dtype)
            for name, buffer in module._buffers.items():
                if buffer is not None and np.issubdtype(buffer.dtype, np.floating):
                    module._buffers[name] = buffer.astype(dtype)
        return self

    # ---------------------------------------------------------------- state_dict
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters then buffers of each module, depth first, keyed like torch
        (``"0.weight"``, ``"1.running_mean"``, ``"1.num_batches_tracked"``).

        As torch's, the values share memory with the module: copy them to snapshot.
        """
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        self._save_to_state_dict(out, "")
        return out

    def _save_to_state_dict(self, out: OrderedDict[str, np.ndarray], prefix: str) -> None:
        # No deduplication: a module shared under two names is saved under both, as torch.
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param.data
        for name, buffer in self._buffers.items():
            if buffer is not None:
                out[prefix + name] = buffer
        for name, child in self._modules.items():
            if child is not None:
                child._save_to_state_dict(out, prefix + name + ".")

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> tuple[list[str], list[str]]:
        """Copy arrays (or anything ``np.asarray`` accepts, e.g. CPU torch tensors) in place.

        Raises torch's ``RuntimeError`` listing missing/unexpected keys (when ``strict``)
        and shape mismatches; nothing is written unless every entry fits.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        errors = []
        if strict:  # torch lists the missing keys first
            if missing:
                errors.append(
                    "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". "
                )
            if unexpected:
                errors.append(
                    "Unexpected key(s) in state_dict: "
                    + ", ".join(f'"{k}"' for k in unexpected)
                    + ". "
                )
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key])
            if value.shape != target.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {target.shape}."
                )
            arrays[key] = value
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        for key, value in arrays.items():
            np.copyto(own[key], value, casting="unsafe")
        return missing, unexpected

    # ---------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [
            f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()
        ]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"
