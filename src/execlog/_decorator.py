"""``@traced_execution``: one wrapt wrapper per callable kind, chosen once at decoration time.

Plain functions, coroutines, generators and async generators each get their own wrapper, so an
``async def`` is recorded for as long as it is awaited and a generator for its whole iteration
(trap 1 of STYLE.md). Parameter binding is precomputed per function, never
``inspect.signature(...).bind`` per call.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

import orjson
import wrapt

from execlog import _config, _execution, _guard
from execlog._context import current
from execlog._encoding import _OPTIONS, REDACTED, Encoder, Redactor, truncate_json
from execlog._execution import ExecutionHandle, _get_ident, _perf_ns, _time_ns
from execlog._guard import logger
from execlog._ids import new_id
from execlog._native import SPEEDUPS
from execlog._propagation import _ENV_DATA, _ENV_KEYS, env_context
from execlog._recorder import RECORDER
from execlog._storage import NULL
from execlog._writer import Channel

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

__all__ = ["traced_execution"]

F = TypeVar("F", bound=Callable[..., Any])
_MISSING: Any = object()
_new_handle = ExecutionHandle.__new__
_current_get = current.get
_current_set = current.set
_current_reset = current.reset
_dumps = orjson.dumps
_ENV_DATA_DICT: dict[bytes, bytes] = _ENV_DATA if isinstance(_ENV_DATA, dict) else {}
_ENV_FAST = isinstance(_ENV_DATA, dict)  # absent variables cost two dict look-ups
_ENV_PARENT, _ENV_CORRELATION = _ENV_KEYS
_EMPTY = inspect.Parameter.empty


def _compile_binder(names: tuple[str, ...], defaults: dict[str, Any]) -> Callable[..., Any] | None:
    """Generate ``bind(args) -> dict | None`` for calls that pass only positional arguments.

    One dict display per possible argument count, defaults filled in from constants: about a
    fifth of the cost of ``dict(zip(...))`` plus updates. None for more than 16 parameters
    (the general path handles those).
    """
    if len(names) > 16 or not all(n.isidentifier() for n in names):
        return None
    namespace: dict[str, Any] = {}
    for index, value in enumerate(defaults.values()):
        namespace[f"_default_{index}"] = value
    default_names = {key: f"_default_{i}" for i, key in enumerate(defaults)}
    lines = ["def bind(args):", "    count = len(args)"]
    for count in range(len(names), -1, -1):
        items = [f"{names[i]!r}: args[{i}]" for i in range(count)]
        items += [f"{key!r}: {default_names[key]}" for key in defaults if key not in names[:count]]
        lines.append(f"    if count == {count}:")
        lines.append(f"        return {{{', '.join(items)}}}")
    lines.append("    return None")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from parameter names only
    bind: Callable[..., Any] = namespace["bind"]
    return bind


class _Binder:
    """Maps a call's arguments to parameter names, precomputed from the signature."""

    __slots__ = (
        "defaults",
        "drop",
        "fast_bound",
        "fast_plain",
        "named",
        "positional",
        "positional_bound",
        "var_kw",
        "var_pos",
    )

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            params = []
            self.var_pos: str | None = "args"
            self.var_kw: str | None = "kwargs"
        else:
            self.var_pos = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
            self.var_kw = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
        positional = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self.positional = tuple(positional)
        self.positional_bound = tuple(positional[1:])  # the first is bound to the instance
        self.named = frozenset(
            p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
        self.defaults = {
            p.name: p.default
            for p in params
            if p.default is not _EMPTY and p.kind is not p.POSITIONAL_ONLY
        }
        self.drop = positional[0] if positional and positional[0] in ("self", "cls") else None
        self.fast_plain: Callable[..., Any] | None = None
        self.fast_bound: Callable[..., Any] | None = None
        if self.var_pos is None and self.var_kw is None:
            # Calls with positional arguments only bind through generated code.
            if self.drop is None:
                self.fast_plain = _compile_binder(self.positional, self.defaults)
            bound_defaults = {k: v for k, v in self.defaults.items() if k != positional[0]}
            if positional:
                self.fast_bound = _compile_binder(self.positional_bound, bound_defaults)

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not kwargs:
            fast = self.fast_plain if instance is None else self.fast_bound
            if fast is not None:
                inputs: dict[str, Any] | None = fast(args)
                if inputs is not None:
                    return inputs
        names = self.positional if instance is None else self.positional_bound
        inputs = dict(self.defaults) if self.defaults else {}
        inputs.update(zip(names, args))
        if self.var_pos is not None:
            inputs[self.var_pos] = list(args[len(names) :])
        if kwargs:
            if self.var_kw is None:
                inputs.update(kwargs)
            else:
                extra = {}
                for key, value in kwargs.items():
                    if key in self.named:
                        inputs[key] = value
                    else:
                        extra[key] = value
                inputs[self.var_kw] = extra
        elif self.var_kw is not None:
            inputs[self.var_kw] = {}
        if self.drop is not None and instance is None:
            inputs.pop(self.drop, None)
        return inputs


class _Spec:
    """Everything decided once per decorated function."""

    __slots__ = (
        "_encoder",
        "_encoder_generation",
        "_secret_params",
        "binder",
        "capture_inputs",
        "capture_output",
        "general_end",
        "kind",
        "name",
        "redact",
        "tags",
        "trigger_kind",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        name: str | None,
        kind: str,
        capture_inputs: bool | None,
        capture_output: bool | None,
        trigger_kind: str | None,
        tags: dict[str, Any] | None,
        redact: tuple[str, ...],
    ) -> None:
        self.name = name or getattr(func, "__qualname__", None) or repr(func)
        self.kind = kind
        self.capture_inputs = capture_inputs
        self.capture_output = capture_output
        self.trigger_kind = trigger_kind
        self.tags = dict(tags) if tags else None
        # static tags or an output switch of its own: every call ends on the general path
        self.general_end = self.tags is not None or capture_output is not None
        self.redact = redact
        self.binder = _Binder(func)
        self._encoder: Encoder = RECORDER.encoder
        self._secret_params: tuple[str, ...] = ()
        self._encoder_generation = -1

    def encoder(self) -> Encoder:
        """The encoder for the current configuration plus this function's ``redact=``."""
        if self._encoder_generation != RECORDER.config_generation:
            config = RECORDER.config
            encoder = RECORDER.encoder
            if self.redact:
                encoder = Encoder(
                    config.max_payload_bytes, Redactor((*config.redact, *self.redact))
                )
            binder = self.binder
            names = {*binder.named, binder.var_pos, binder.var_kw} - {None}
            self._secret_params = tuple(
                n for n in names if n is not None and encoder.redactor.is_secret(n)
            )
            self._encoder = encoder
            self._encoder_generation = RECORDER.config_generation
        return self._encoder

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's inputs, with every top-level key named like a secret redacted.

        Declared parameters were checked for secret names once per configuration
        (``_secret_params``); an undeclared keyword (the call will raise ``TypeError``) lands at
        the top level of the inputs too, so it is checked here. Call after :meth:`encoder`.
        """
        binder = self.binder
        inputs = binder.bind(instance, args, kwargs)
        for secret in self._secret_params:
            if secret in inputs:
                inputs[secret] = REDACTED
        if kwargs and binder.var_kw is None:
            named = binder.named
            redactor = self._encoder.redactor
            for key in kwargs:
                if key not in named and redactor.is_secret(key):
                    inputs[key] = REDACTED
        return inputs

    def begin(  # noqa: PLR0915 - the hot path is kept flat on purpose
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ExecutionHandle:
        """Create, start and make current a handle for one call (the hot path)."""
        recorder = RECORDER
        outer = _current_get()
        started = _time_ns()
        handle = _new_handle(ExecutionHandle)
        handle.name = self.name
        handle.kind = self.kind
        handle.execution_id = eid = new_id(started)
        if outer is not None:
            handle.parent_execution_id = outer.execution_id
            handle.correlation_id = outer.correlation_id
            handle.run_id = outer.run_id
            handle.trigger_kind = self.trigger_kind or "child"
        else:
            if (
                _ENV_FAST
                and _ENV_PARENT not in _ENV_DATA_DICT
                and _ENV_CORRELATION not in _ENV_DATA_DICT
            ):
                inherited = None
            else:
                inherited = env_context()
            parent_id = None if inherited is None else inherited.parent_execution_id
            handle.parent_execution_id = parent_id
            handle.correlation_id = (
                eid if inherited is None else (inherited.correlation_id or parent_id or eid)
            )
            handle.run_id = None
            handle.trigger_kind = self.trigger_kind or ("child" if parent_id else "manual")
        if self._encoder_generation == recorder.config_generation:
            encoder = self._encoder
        else:
            encoder = self.encoder()
        handle._encoder = encoder
        handle._extra = self.general_end
        if self.tags is not None:
            handle._static_tags = self.tags
        if self.capture_output is not None:
            handle._capture_output = self.capture_output
        handle._started_ns = started
        handle._thread_id = _get_ident()
        handle._generation = recorder.generation
        capture = self.capture_inputs
        if capture is None:
            capture = recorder.config.capture_inputs
        if capture:
            inputs = self.bind(instance, args, kwargs)
            # Top-level keys were checked by bind(): only a nested object can still hold a
            # secret key. The common case is one dumps, one find and one len.
            try:
                data = _dumps(inputs, encoder.default, _OPTIONS)
            except Exception:
                handle._inputs = encoder.encode(inputs, nested_from=1)
            else:
                nested = data.find(b"{", 1) != -1
                if (nested and encoder.redactor.may_contain(data)) or len(data) > encoder.limit:
                    handle._inputs = encoder.encode(inputs, nested_from=1)
                else:
                    handle._inputs = data.decode()
        else:
            handle._inputs = None
        handle._state = 1
        recorder.channel.live.add(handle)
        if recorder.writer is None:
            recorder._ensure_writer()
        handle._token = _current_set(handle)
        handle._t0 = _perf_ns()
        return handle


def _end(handle: ExecutionHandle, exc: BaseException | None, result: Any = _MISSING) -> None:
    t1 = _perf_ns()
    token = handle._token
    if token is not None:
        handle._token = None
        try:
            _current_reset(token)
        except ValueError:  # ended in another context (a generator finalised elsewhere)
            pass
    try:
        if result is not _MISSING and not handle._output_set:
            handle._finish(t1, exc, result)
        else:
            handle._finish(t1, exc)
    except Exception:
        with _guard.guard:
            raise


def _complete(handle: ExecutionHandle, result: Any) -> None:
    """The success path of a traced call, flat: close the context, build the row, queue it.

    Anything unusual (user tags or status, an explicit output, per-function capture switches,
    an execution begun before a fork) goes through the general :func:`_end`.
    """
    t1 = _perf_ns()
    token = handle._token
    handle._token = None
    try:
        _current_reset(token)  # type: ignore[arg-type]
    except ValueError:
        pass
    try:
        recorder = RECORDER
        if handle._state != 1 or handle._extra or handle._generation != recorder.generation:
            handle._finish(t1, None, result)
            return
        handle._state = 2
        channel = recorder.channel
        eid = handle.execution_id
        channel.live.discard(handle)
        if recorder.config.capture_output:
            cls = result.__class__
            if cls is int or cls is float or cls is bool or result is None:
                try:
                    output: str | None = _dumps(result).decode()
                except Exception:  # an int beyond 64 bits
                    output = handle._encoder.encode(result)  # type: ignore[union-attr]
            else:
                output = handle._encoder.encode(result)  # type: ignore[union-attr]
        else:
            output = None
        started_us = handle._started_ns // 1000
        duration_ns = t1 - handle._t0
        row = (
            eid,
            handle.name,
            handle.kind,
            "success",
            started_us,
            started_us + duration_ns // 1000,
            duration_ns / 1e6,
            handle._inputs,
            output,
            NULL,
            NULL,
            NULL,
            handle.parent_execution_id,
            handle.correlation_id,
            handle.trigger_kind,
            handle.run_id,
            NULL,
            recorder.pid,
            handle._thread_id,
            recorder.host,
        )
        queue = channel.queue
        if len(queue) >= channel.limit or channel.waiters or recorder.writer is None:
            recorder.enqueue(row, final=handle._running_written)
        else:
            queue.append(row)
            if len(queue) >= channel.batch_size and not channel.woken:
                channel.wake_writer()
    except Exception:
        _internal_error()


def _internal_error() -> None:
    """Report the exception being handled as an internal error (call from ``except``)."""
    with _guard.guard:
        raise  # noqa: PLE0704 - re-raises the exception the caller is handling


def _report_internal(exc: BaseException) -> None:
    """Report ``exc``, raised inside the C fast path, as an internal error."""
    with _guard.guard:
        raise exc


def _begin_or_none(
    spec: _Spec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ExecutionHandle | None:
    try:
        return spec.begin(instance, args, kwargs)
    except Exception:
        _internal_error()
    return None  # an internal error was logged: run the call unrecorded


# The wrapt wrappers below take (wrapped, instance, args, kwargs); the fast paths further down
# (`_fast_plain`, `_fast_coroutine`) repeat their bodies with the function fixed and plain
# (*args, **kwargs), because a shared body would cost every plain call one more frame. Where
# the C extension is built, `_native_plain`/`_native_coroutine` wrap plain functions instead
# and fall back to those for anything unusual; the wrapt wrappers begin and end in C when
# they can (`_native_hooks`).


def _native_hooks(spec: _Spec, func: Any) -> tuple[Any, Any, Callable[..., None]]:
    """``(call_spec, begin_bound, complete)`` for a wrapt wrapper.

    ``begin_bound`` is None where the accelerator does not apply; the wrapper then begins in
    Python. Arguments are bound by the Python binder, which knows about ``self``/``cls``.
    """
    call_spec = _call_spec(func, spec, func, python_bind=True)
    if call_spec is None or SPEEDUPS is None:
        return None, None, _complete
    return call_spec, SPEEDUPS.begin_bound, SPEEDUPS.complete


def _make_plain(spec: _Spec, func: Any) -> Callable[..., Any]:
    call_spec, begin_bound, complete = _native_hooks(spec, func)

    def plain(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not RECORDER.enabled:
            return wrapped(*args, **kwargs)
        handle = None if begin_bound is None else begin_bound(call_spec, instance, args, kwargs)
        if handle is None:
            handle = _begin_or_none(spec, instance, args, kwargs)
            if handle is None:
                return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(handle, exc)
            raise
        complete(handle, result)
        return result

    return plain


def _make_coroutine(spec: _Spec, func: Any) -> Callable[..., Any]:
    call_spec, begin_bound, complete = _native_hooks(spec, func)

    async def coroutine(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not RECORDER.enabled:
            return await wrapped(*args, **kwargs)
        handle = None if begin_bound is None else begin_bound(call_spec, instance, args, kwargs)
        if handle is None:
            handle = _begin_or_none(spec, instance, args, kwargs)
            if handle is None:
                return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _end(handle, exc)
            raise
        complete(handle, result)
        return result

    return coroutine


class _Items:
    """Collects what a generator yields as JSON, keeping at most ``limit`` bytes."""

    __slots__ = ("chunks", "encoder", "kept", "size")

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.chunks: list[bytes] = []
        self.size = 1
        self.kept = True

    def add(self, item: Any) -> None:
        with _guard.guard:
            data = self.encoder.encode_bytes(item, truncate=False)
            self.size += len(data) + 1
            if self.kept and self.size <= self.encoder.limit:
                self.chunks.append(data)
            elif self.kept:
                # keep the first bytes of the overflowing item for the preview, then stop
                self.chunks.append(data[: self.encoder.limit])
                self.kept = False

    def finish(self, handle: ExecutionHandle) -> None:
        data = b"[" + b",".join(self.chunks) + b"]"
        if not self.kept:
            data = truncate_json(data, self.encoder.limit, size=self.size)
        handle._output_json = data.decode()


def _capture_output(spec: _Spec) -> bool:
    return (
        spec.capture_output if spec.capture_output is not None else RECORDER.config.capture_output
    )


def _step(handle: ExecutionHandle, action: Callable[[Any], Any], value: Any) -> Any:
    """Run one step of the wrapped generator with the execution current."""
    token = current.set(handle)
    try:
        return action(value)
    finally:
        current.reset(token)


def _make_generator(spec: _Spec) -> Callable[..., Any]:
    def generator(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Generator[Any, Any, Any]:
        if not RECORDER.enabled:
            return (yield from wrapped(*args, **kwargs))
        handle = _begin_or_none(spec, instance, args, kwargs)
        if handle is None:
            return (yield from wrapped(*args, **kwargs))
        token, handle._token = handle._token, None
        if token is not None:
            current.reset(token)  # current only while the body runs (API.md section 6)
        items = _Items(handle._enc()) if _capture_output(spec) else None
        try:
            gen = _step(handle, lambda _: wrapped(*args, **kwargs), None)
            send: Any = gen.send
            value: Any = None
            while True:
                try:
                    item = _step(handle, send, value)
                except StopIteration as stop:
                    if items is not None:
                        items.finish(handle)
                    _end(handle, None)
                    return stop.value
                if items is not None:
                    items.add(item)
                try:
                    value = yield item
                    send = gen.send
                except GeneratorExit:
                    _step(handle, lambda _: gen.close(), None)
                    raise
                except BaseException as exc:  # thrown in: pass it to the body
                    value = exc
                    send = gen.throw
        except BaseException as exc:
            if handle._state == 1:
                if items is not None:
                    items.finish(handle)
                _end(handle, exc)
            raise

    return generator


def _make_async_generator(spec: _Spec) -> Callable[..., Any]:
    async def agenerator(
        wrapped: Any, instance: Any, args: Any, kwargs: Any
    ) -> AsyncGenerator[Any, Any]:
        if not RECORDER.enabled:
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        handle = _begin_or_none(spec, instance, args, kwargs)
        if handle is None:
            async for item in wrapped(*args, **kwargs):
                yield item
            return
        token, handle._token = handle._token, None
        if token is not None:
            current.reset(token)
        items = _Items(handle._enc()) if _capture_output(spec) else None
        try:
            agen = _step(handle, lambda _: wrapped(*args, **kwargs), None)
            value: Any = None
            thrown: BaseException | None = None
            while True:
                token = current.set(handle)
                try:
                    if thrown is not None:
                        item = await agen.athrow(thrown)
                    else:
                        item = await agen.asend(value)
                except StopAsyncIteration:
                    if items is not None:
                        items.finish(handle)
                    _end(handle, None)
                    return
                finally:
                    current.reset(token)
                if items is not None:
                    items.add(item)
                thrown = None
                try:
                    value = yield item
                except GeneratorExit:
                    token = current.set(handle)
                    try:
                        await agen.aclose()
                    finally:
                        current.reset(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            if handle._state == 1:
                if items is not None:
                    items.finish(handle)
                _end(handle, exc)
            raise

    return agenerator


def _defined_in_class(func: Any) -> bool:
    """Whether ``func`` was defined in a class body (it will be bound as a method)."""
    parts = getattr(func, "__qualname__", "").split(".")
    return len(parts) > 1 and parts[-2] != "<locals>"


def _fast_path(target: Any) -> bool:
    """Plain functions skip wrapt: methods, class/staticmethod objects and callables keep it.

    wrapt's proxy costs about half a microsecond per call. A function defined at module level
    or inside another function is never bound to an instance by its definition, so a plain
    ``functools.wraps`` closure behaves like it for ``inspect``, pickling and descriptors.
    """
    return isinstance(target, types.FunctionType) and not _defined_in_class(target)


def _fast_plain(func: Any, spec: _Spec) -> Callable[..., Any]:
    recorder = RECORDER
    begin = spec.begin

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if not recorder.enabled:
            return func(*args, **kwargs)
        try:
            handle = begin(None, args, kwargs)
        except Exception:
            _internal_error()  # logged (re-raised under EXECLOG_STRICT): run unrecorded
            return func(*args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _end(handle, exc)
            raise
        _complete(handle, result)
        return result

    return traced


def _fast_coroutine(func: Any, spec: _Spec) -> Callable[..., Any]:
    recorder = RECORDER

    @functools.wraps(func)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        if not recorder.enabled:
            return await func(*args, **kwargs)
        handle = _begin_or_none(spec, None, args, kwargs)
        if handle is None:
            return await func(*args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            _end(handle, exc)
            raise
        _complete(handle, result)
        return result

    return traced


def _fast_generator(func: Any, spec: _Spec) -> Callable[..., Any]:
    impl = _make_generator(spec)

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return (yield from impl(func, None, args, kwargs))

    return traced


# -- the C fast path (execlog._speedups) ----------------------------------------------------------


def _install_speedups() -> bool:
    """Hand the accelerator the objects and slot layouts it works on; False if it refuses."""
    if SPEEDUPS is None:
        return False
    try:
        SPEEDUPS.install(
            handle_type=ExecutionHandle,
            recorder=RECORDER,
            config_type=_config.Config,
            channel_type=Channel,
            spec_type=_Spec,
            encoder_type=Encoder,
            current=current,
            dumps=orjson.dumps,
            options=_OPTIONS,
            redacted=REDACTED,
            env_data=_ENV_DATA_DICT if _ENV_FAST else None,
            env_keys=_ENV_KEYS,
            complete=_complete,
            end=_end,
            report=_report_internal,
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


def _native_blocks(on: bool) -> None:
    """Run plain ``with execution(...)`` blocks in C (``on``) or in the Python code only."""
    native = on and _BLOCK_METHODS is not None and SPEEDUPS is not None
    enter, exit_ = _BLOCK_METHODS if native and _BLOCK_METHODS else _PY_BLOCK_METHODS
    setattr(ExecutionHandle, "__enter__", enter)  # noqa: B010 - methods replaced at runtime
    setattr(ExecutionHandle, "__exit__", exit_)  # noqa: B010
    _execution._new_block = SPEEDUPS.new_block if native and SPEEDUPS is not None else None
    if SPEEDUPS is not None:
        SPEEDUPS.native_blocks(native)


_SPEEDUPS_READY = _install_speedups()
_native_blocks(on=True)


def _call_spec(
    func: Any, spec: _Spec, fallback: Callable[..., Any], *, python_bind: bool = False
) -> Any:
    """The accelerator's view of ``spec``, or None where only the Python path applies.

    The C path repeats the common case only: no static tags or per-function output switch
    (those go through the general end). It binds arguments itself only for a binder without
    ``*args``/``**kwargs`` whose positional-only calls bind through generated code (so both
    paths order inputs alike); with ``python_bind`` (wrapt wrappers) the Python binder does.
    """
    if not _SPEEDUPS_READY or SPEEDUPS is None:
        return None
    if spec.general_end:
        return None
    binder = spec.binder
    if not python_bind and (
        binder.fast_plain is None
        or binder.var_pos is not None
        or binder.var_kw is not None
        or binder.drop is not None
    ):
        return None
    names = binder.positional
    defaults = tuple(
        (key, value, names.index(key) if key in names else len(names))
        for key, value in binder.defaults.items()
    )
    return SPEEDUPS.CallSpec(func, spec, names, defaults, spec.bind, fallback, python_bind)


def _native_plain(func: Any, spec: _Spec) -> Callable[..., Any]:
    return _native_function("plain", func, spec, _fast_plain(func, spec))


def _native_coroutine(func: Any, spec: _Spec) -> Callable[..., Any]:
    fallback = _fast_coroutine(func, spec)
    if not func.__code__.co_flags & inspect.CO_COROUTINE:
        # inspect.markcoroutinefunction (3.12+): a plain def returning some awaitable, which
        # the Python wrapper awaits; the C path needs an async def's own coroutine
        return fallback
    return _native_function("coroutine", func, spec, fallback)


def _native_function(
    kind: str, func: Any, spec: _Spec, fallback: Callable[..., Any]
) -> Callable[..., Any]:
    """A traced plain function or ``async def`` whose calls begin and end in C.

    The C ``TracedFunction`` stands in for ``func`` as a ``functools.wraps`` wrapper does (name,
    docstring, ``__wrapped__``; the rest is read through from ``func``) without a Python frame
    per call. An ``async def``'s calls return a ``TracedCoroutine``, awaitable as a coroutine is
    and registered as one with ``collections.abc.Coroutine``. ``fallback`` is the pure-Python
    wrapper, used where the C path does not apply.
    """
    call_spec = _call_spec(func, spec, fallback)
    if call_spec is None or SPEEDUPS is None:
        return fallback
    traced: Callable[..., Any] = functools.update_wrapper(
        SPEEDUPS.TracedFunction(kind, call_spec), func
    )
    return traced


def _unwrap_kind(func: Any) -> Any:
    """The function whose code decides the wrapper kind (looks through class/static methods)."""
    if isinstance(func, (classmethod, staticmethod)):
        return func.__func__
    return func


@overload
def traced_execution(func: F, /) -> F: ...


@overload
def traced_execution(
    func: None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "function",
    capture_inputs: bool | None = None,
    capture_output: bool | None = None,
    trigger_kind: str | None = None,
    tags: dict[str, Any] | None = None,
    redact: tuple[str, ...] | list[str] = (),
) -> Callable[[F], F]: ...


def traced_execution(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    kind: str = "function",
    capture_inputs: bool | None = None,
    capture_output: bool | None = None,
    trigger_kind: str | None = None,
    tags: dict[str, Any] | None = None,
    redact: tuple[str, ...] | list[str] = (),
) -> Any:
    """Record every call of the decorated callable as an execution.

    Example::

        @execlog.traced_execution
        def load(path, limit=10): ...

        @execlog.traced_execution(name="transform", kind="node", redact=("ssn",))
        async def transform(rows): ...

    Works on functions, ``async def``, generators, async generators, instance methods,
    classmethods and staticmethods (above or below ``@classmethod``/``@staticmethod``).

    Args:
        func: The callable (bare form).
        name: The execution name; defaults to ``__qualname__``.
        kind: A free-text category; defaults to ``"function"``.
        capture_inputs: Record the bound arguments (default: the configured value).
        capture_output: Record the return value / yielded items (default: configured).
        trigger_kind: Why it ran; default ``manual`` for a root, ``child`` when nested.
        tags: Static tags added to every call's record.
        redact: Extra argument or key names to store as ``"[REDACTED]"``.

    Returns:
        The wrapped callable (or, with ``EXECLOG_DISABLED=1`` at decoration time, the callable
        itself).

    Raises:
        ConfigError: an option has the wrong type.

    .. versionadded:: 0.1.0
    """
    for option, value in (("capture_inputs", capture_inputs), ("capture_output", capture_output)):
        if value is not None and type(value) is not bool:
            raise _config.ConfigError(f"{option} must be True, False or None, got {value!r}")
    if isinstance(redact, str):
        redact = (redact,)
    redact_names = tuple(redact)

    def decorate(target: Any) -> Any:
        if _config.env_disabled() and not RECORDER.enabled_explicit:
            return target
        inner = _unwrap_kind(target)
        if not callable(inner):
            warnings.warn(
                f"traced_execution: {target!r} is not callable; left undecorated",
                stacklevel=3,
            )
            return target
        spec = _Spec(
            inner,
            name,
            kind,
            capture_inputs,
            capture_output,
            trigger_kind,
            tags,
            redact_names,
        )
        if _fast_path(target) and not inspect.isasyncgenfunction(target):
            if inspect.iscoroutinefunction(target):
                return _native_coroutine(target, spec)
            if inspect.isgeneratorfunction(target):
                return _fast_generator(target, spec)
            return _native_plain(target, spec)
        if inspect.isasyncgenfunction(inner):
            wrapper = _make_async_generator(spec)
        elif inspect.iscoroutinefunction(inner):
            wrapper = _make_coroutine(spec, inner)
        elif inspect.isgeneratorfunction(inner):
            wrapper = _make_generator(spec)
        else:
            wrapper = _make_plain(spec, inner)
        return wrapt.FunctionWrapper(target, wrapper)

    if func is None:
        return decorate
    return decorate(func)
