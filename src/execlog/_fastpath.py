"""Traced functions made by the C accelerator (``execlog._speedups``), where it is built.

:func:`install` hands the accelerator the objects and slot layouts it works on, once, at import.
:func:`native_function` then makes a traced plain function, ``async def`` or method a C object
that stands in for the function (no wrapper frame per call) and falls back to the pure-Python
wrappers of ``_wrappers`` for anything unusual. ``READY`` is False where the accelerator is not
built or refused to install (and in tests, to run the pure-Python path).
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
from typing import TYPE_CHECKING, Any

import orjson

from execlog import _config, _execution, _otel_link, _propagation, _sampling, _spec, _wrappers
from execlog._context import current
from execlog._encoding import _OPTIONS, REDACTED, Encoder, Redactor
from execlog._execution import ExecutionHandle
from execlog._guard import logger
from execlog._native import SPEEDUPS
from execlog._propagation import _ENV_DATA, _ENV_KEYS
from execlog._recorder import RECORDER
from execlog._writer import Channel

if TYPE_CHECKING:
    from collections.abc import Callable

#: Parameters the C binder binds at most (MAX_PARAMS in _speedups.c).
MAX_PARAMS = 64

__all__ = [
    "MAX_PARAMS",
    "READY",
    "applies",
    "call_spec",
    "native_blocks",
    "native_function",
    "wrapt_hooks",
]


def install() -> bool:
    """Hand the accelerator the objects and slot layouts it works on; False if it refuses."""
    if SPEEDUPS is None:
        return False
    try:
        SPEEDUPS.install(
            handle_type=ExecutionHandle,
            recorder=RECORDER,
            config_type=_config.Config,
            channel_type=Channel,
            spec_type=_spec.Spec,
            encoder_type=Encoder,
            redactor_type=Redactor,
            current=current,
            dumps=orjson.dumps,
            options=_OPTIONS,
            redacted=REDACTED,
            empty=inspect.Parameter.empty,
            env_data=_ENV_DATA if isinstance(_ENV_DATA, dict) else None,
            env_keys=_ENV_KEYS,
            complete=_spec.complete,
            end=_spec.end,
            report=_spec.report_internal,
        )
        # a root joining an OpenTelemetry span goes to the Python path, which records the join
        SPEEDUPS.set_root_probe(_otel_link.span_current, _otel_link.runtime_var)
        # an unsampled tree's calls run as they are; roots draw their decision in C
        SPEEDUPS.set_sampling(
            _sampling.UnsampledExecution, _sampling.UNSAMPLED, _propagation._ENV_SAMPLED_KEY
        )
    except (ImportError, TypeError, AttributeError) as exc:
        logger.debug("execlog: C accelerator unavailable (%s); using pure Python", exc)
        return False
    global _BLOCK_METHODS  # noqa: PLW0603 - set once, at import
    _BLOCK_METHODS = SPEEDUPS.block_methods(*_PY_BLOCK_METHODS)
    collections.abc.Coroutine.register(SPEEDUPS.TracedCoroutine)
    # execution() itself: plain blocks are made in C, without the Python function's frame
    _execution.execution = functools.update_wrapper(
        SPEEDUPS.TracedFunction("blocks", _execution.execution), _execution.execution
    )
    return True


#: ExecutionHandle's own __enter__/__exit__, and the C ones that fall back to them.
_PY_BLOCK_METHODS = (ExecutionHandle.__dict__["__enter__"], ExecutionHandle.__dict__["__exit__"])
_BLOCK_METHODS: tuple[Any, Any] | None = None


def native_blocks(on: bool) -> None:
    """Run plain ``with execution(...)`` blocks in C (``on``) or in the Python code only."""
    native = on and _BLOCK_METHODS is not None and SPEEDUPS is not None
    enter, exit_ = _BLOCK_METHODS if native and _BLOCK_METHODS else _PY_BLOCK_METHODS
    setattr(ExecutionHandle, "__enter__", enter)  # noqa: B010 - methods replaced at runtime
    setattr(ExecutionHandle, "__exit__", exit_)  # noqa: B010
    _execution._new_block = SPEEDUPS.new_block if native and SPEEDUPS is not None else None
    if SPEEDUPS is not None:
        SPEEDUPS.native_blocks(native)


READY = install()
native_blocks(on=True)


def call_spec(
    func: Any,
    spec: _spec.Spec,
    fallbacks: tuple[Callable[..., Any], Callable[..., Any]],
    *,
    method: bool = False,
    python_bind: bool = False,
) -> Any:
    """The accelerator's view of ``spec``, or None where only the Python path applies.

    ``fallbacks``: the pure-Python wrappers for a call without and with the instance as first
    argument. ``method``: the first argument is always the instance (a classmethod); a method
    defined in a class body is marked so when the class is created (``__set_name__``).
    ``python_bind`` (wrapt wrappers, whose instance comes apart): the Python binder binds.
    The C path repeats the common case only: no static tags or per-function output switch
    (those go through the general end).
    """
    if not READY or SPEEDUPS is None or spec.general_end:
        return None
    plain, with_instance = fallbacks
    return SPEEDUPS.CallSpec(
        func,
        spec,
        spec.binder.plan(),
        spec.bind,
        plain,
        with_instance,
        method,
        python_bind,
    )


def applies(func: Any, spec: _spec.Spec, *, coroutine: bool) -> bool:
    """Whether :func:`native_function` makes a C stand-in for ``func`` (not a Python one)."""
    if not READY or spec.general_end or len(spec.binder.order) > MAX_PARAMS:
        return False
    return not coroutine or bool(func.__code__.co_flags & inspect.CO_COROUTINE)


def native_function(
    func: Any, spec: _spec.Spec, *, coroutine: bool, method: bool = False
) -> Callable[..., Any]:
    """A traced plain function or ``async def`` whose calls begin and end in C.

    The C ``TracedFunction`` stands in for ``func`` as a ``functools.wraps`` wrapper does (name,
    docstring, ``__wrapped__``; the rest is read through from ``func``), binds to an instance
    as a function does, and has no Python frame per call. An ``async def``'s calls return a
    ``TracedCoroutine``, awaitable as a coroutine is and registered as one with
    ``collections.abc.Coroutine``. Where the C path does not apply, the pure-Python wrapper.
    """
    if coroutine:
        fallbacks = (
            _wrappers.fast_coroutine(func, spec),
            _wrappers.fast_coroutine(func, spec, method=True),
        )
    else:
        fallbacks = (_wrappers.fast_plain(func, spec), _wrappers.fast_method(func, spec))
    python = fallbacks[1] if method else fallbacks[0]
    if not applies(func, spec, coroutine=coroutine):
        # No accelerator, per-function tags or output switch, or (3.12+)
        # inspect.markcoroutinefunction: a plain def returning some awaitable, which the
        # Python wrapper awaits; the C path needs an async def's own coroutine.
        return python
    cs = call_spec(func, spec, fallbacks, method=method)
    if cs is None or SPEEDUPS is None:
        return python
    traced: Callable[..., Any] = functools.update_wrapper(
        SPEEDUPS.TracedFunction("coroutine" if coroutine else "plain", cs), func
    )
    return traced


def wrapt_hooks(spec: _spec.Spec, func: Any) -> _wrappers.Hooks:
    """``(call_spec, begin_bound, complete)`` for a wrapt wrapper (C where it applies)."""
    noop: tuple[Callable[..., Any], Callable[..., Any]] = (func, func)
    cs = call_spec(func, spec, noop, python_bind=True)
    if cs is None or SPEEDUPS is None:
        return None, None, _spec.complete
    return cs, SPEEDUPS.begin_bound, SPEEDUPS.complete
