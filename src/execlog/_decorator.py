"""``@traced_execution``: the decorator, which picks a wrapper once, at decoration time.

- A plain function, an ``async def`` and a method (also under ``@classmethod`` and
  ``@staticmethod``) become a C object that stands in for the function, where the accelerator
  is built (``_fastpath``); otherwise a ``functools.wraps`` closure (``_wrappers.fast_*``), or a
  ``wrapt`` wrapper for methods, which tells the instance apart from the arguments.
- Generators and async generators get wrappers that span the whole iteration.
- Other callables (objects with ``__call__``, partials) get a ``wrapt`` wrapper.

Parameter binding is planned once per function (``_binding``), never
``inspect.signature(...).bind`` per call.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import warnings
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar, overload

import wrapt

from execlog import _config, _fastpath, _wrappers
from execlog._recorder import RECORDER
from execlog._spec import Spec

__all__ = ["traced_execution"]

F = TypeVar("F", bound=Callable[..., Any])


if TYPE_CHECKING:  # generic in wrapt's stubs; not subscriptable at run time in every wrapt
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper[Any, Any]
else:
    _FunctionWrapper = wrapt.FunctionWrapper
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper


def _by_name(module: str, qualname: str) -> Any:
    """What ``module.qualname`` names (how a traced method is unpickled)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


class _BoundTraced(_BoundFunctionWrapper):
    """A traced method bound on access: pickles as the plain method does."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        instance = self._self_instance
        if instance is None or isinstance(instance, type):  # from the class, or a classmethod
            return _by_name, (self.__module__, self.__qualname__)
        return getattr, (instance, self.__name__)  # a bound method: the instance's attribute


class _Traced(_FunctionWrapper):
    """The wrapt stand-in for a method or another callable, pickled by name like a function.

    wrapt's own proxies refuse to be pickled.
    """

    __bound_function_wrapper__ = _BoundTraced

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return _by_name, (self.__module__, self.__qualname__)


def _defined_in_class(func: Any) -> bool:
    """Whether ``func`` was defined in a class body (it will be bound as a method)."""
    parts = getattr(func, "__qualname__", "").split(".")
    return len(parts) > 1 and parts[-2] != "<locals>"


def _call_of(target: Any) -> Any:
    """What a call of ``target`` runs: its class's ``__call__`` for a callable object, else it.

    So an object with an ``async def __call__`` is recorded while awaited, as a coroutine
    function is, and one whose ``__call__`` is a generator for its whole iteration.
    """
    if isinstance(target, (types.FunctionType, types.MethodType, type, functools.partial)):
        return target
    call = inspect.getattr_static(type(target), "__call__", None)
    return call if isinstance(call, types.FunctionType) else target


def _wrap(target: Any, spec: Spec) -> Any:
    """The traced stand-in for ``target`` (see the module docstring)."""
    outer: type[classmethod[Any, Any, Any] | staticmethod[Any, Any]] | None = None
    inner = target
    if isinstance(target, (classmethod, staticmethod)):
        outer, inner = type(target), target.__func__
    if isinstance(inner, types.FunctionType) and not inspect.isasyncgenfunction(inner):
        in_class = outer is None and _defined_in_class(inner)
        coroutine = inspect.iscoroutinefunction(inner)
        if inspect.isgeneratorfunction(inner):
            if outer is None and not in_class:
                return _wrappers.fast_generator(inner, spec)
        elif not in_class or _fastpath.applies(inner, spec, coroutine=coroutine):
            # A C stand-in for a function defined in a class body is marked as a method when
            # the class is created; the Python wrappers cannot tell, so wrapt does there.
            traced = _fastpath.native_function(
                inner, spec, coroutine=coroutine, method=outer is classmethod
            )
            return traced if outer is None else outer(traced)
    shape = _call_of(inner)
    if inspect.isasyncgenfunction(shape):
        wrapper = _wrappers.wrapt_async_generator(spec)
    elif inspect.iscoroutinefunction(shape):
        wrapper = _wrappers.wrapt_coroutine(spec, _fastpath.wrapt_hooks(spec, inner))
    elif inspect.isgeneratorfunction(shape):
        wrapper = _wrappers.wrapt_generator(spec)
    else:
        wrapper = _wrappers.wrapt_plain(spec, _fastpath.wrapt_hooks(spec, inner))
    return _Traced(target, wrapper)


@overload
def traced_execution(func: F, /) -> F: ...


@overload
def traced_execution(
    func: None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "function",
    capture_inputs: bool | Collection[str] | None = None,
    capture_output: bool | None = None,
    trigger_kind: str | None = None,
    tags: dict[str, Any] | None = None,
    redact: Collection[str] = (),
    redact_exempt: Collection[str] = (),
    exclude: Collection[str] = (),
    sample_rate: float | None = None,
) -> Callable[[F], F]: ...


def traced_execution(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    kind: str = "function",
    capture_inputs: bool | Collection[str] | None = None,
    capture_output: bool | None = None,
    trigger_kind: str | None = None,
    tags: dict[str, Any] | None = None,
    redact: Collection[str] = (),
    redact_exempt: Collection[str] = (),
    exclude: Collection[str] = (),
    sample_rate: float | None = None,
) -> Any:
    """Record every call of the decorated callable as an execution.

    Example::

        @execlog.traced_execution
        def load(path, limit=10): ...

        @execlog.traced_execution(name="transform", kind="node", redact=("ssn",))
        async def transform(rows): ...

        @execlog.traced_execution(capture_inputs=("epochs", "lr"))   # not the 2 GB array
        def train(data, epochs, lr=0.01): ...

    Works on functions, ``async def``, generators, async generators, instance methods,
    classmethods and staticmethods (above or below ``@classmethod``/``@staticmethod``).

    Args:
        func: The callable (bare form).
        name: The execution name; defaults to ``__qualname__``.
        kind: A free-text category; defaults to ``"function"``.
        capture_inputs: Record the bound arguments (default: the configured value), or a
            collection of the parameter names to record (the others are left out).
        capture_output: Record the return value / yielded items (default: configured).
        trigger_kind: Why it ran; default ``manual`` for a root, ``child`` when nested.
        tags: Static tags added to every call's record.
        redact: Extra key names to store as ``"[REDACTED]"`` (added to the configured ones).
        redact_exempt: Key names never redacted (added to the configured ones).
        exclude: Parameter names never captured: absent from the inputs, never encoded.
        sample_rate: The share of calls recorded when a call is a root (head sampling, from 0
            to 1; default: the configured ``sample_rate``). A call inside a tree follows its
            root's decision.

    Returns:
        The wrapped callable (or, with ``EXECLOG_DISABLED=1`` at decoration time, the callable
        itself).

    Raises:
        ConfigError: an option has the wrong type.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``capture_inputs`` takes parameter names; ``exclude``,
       ``redact_exempt`` and ``sample_rate``.
    """
    if sample_rate is not None:
        sample_rate = _config.sample_rate_option("sample_rate", sample_rate)
    if capture_inputs is not None and type(capture_inputs) is not bool:
        capture_inputs = frozenset(_config.names_option("capture_inputs", capture_inputs))
    if capture_output is not None and type(capture_output) is not bool:
        msg = f"capture_output must be True, False or None, got {capture_output!r}"
        raise _config.ConfigError(msg)
    redact_names = _config.names_option("redact", redact)
    exempt_names = _config.names_option("redact_exempt", redact_exempt)
    excluded = _config.names_option("exclude", exclude)

    def decorate(target: Any) -> Any:
        if _config.env_disabled() and not RECORDER.enabled_explicit:
            return target
        inner = target.__func__ if isinstance(target, (classmethod, staticmethod)) else target
        if not callable(inner):
            warnings.warn(
                f"traced_execution: {target!r} is not callable; left undecorated",
                stacklevel=3,
            )
            return target
        spec = Spec(
            inner,
            name,
            kind,
            capture_inputs,
            capture_output,
            trigger_kind,
            tags,
            redact_names,
            exclude=excluded,
            redact_exempt=exempt_names,
            sample_rate=sample_rate,
        )
        return _wrap(target, spec)

    if func is None:
        return decorate
    return decorate(func)
