from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

ABI: int

class CallSpec:
    def __init__(
        self,
        func: Callable[..., Any],
        spec: Any,
        names: tuple[str, ...],
        defaults: tuple[tuple[str, Any, int], ...],
        bind: Callable[..., Any],
        fallback: Callable[..., Any],
        python_bind: bool = False,
    ) -> None: ...

def call(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any], /) -> Any: ...
def begin(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any], /) -> Any: ...
def begin_bound(
    spec: CallSpec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], /
) -> Any: ...
def complete(handle: Any, result: Any, /) -> None: ...
def new_id(time_ns: int, /) -> str: ...
def reseed(tail: int, counter: int, /) -> None: ...
def install(
    *,
    handle_type: type,
    recorder: Any,
    config_type: type,
    channel_type: type,
    spec_type: type,
    encoder_type: type,
    current: ContextVar[Any],
    dumps: Callable[..., bytes],
    default: Callable[[Any], Any],
    options: int,
    redacted: str,
    env_data: dict[bytes, bytes] | None,
    env_keys: tuple[bytes, bytes],
    complete: Callable[[Any, Any], None],
    end: Callable[[Any, BaseException], None],
    report: Callable[[BaseException], None],
) -> None: ...
def enter(handle: Any, /) -> Any: ...
def exit(handle: Any, exc_type: Any, exc: Any, tb: Any, /) -> bool: ...  # noqa: A001
def block_methods(enter: Any, exit: Any, /) -> tuple[Any, Any]: ...  # noqa: A002
def new_block(name: str, kind: str, inputs: Any, trigger_kind: str | None, /) -> Any: ...
def enter_block(handle: Any, /) -> bool: ...
def exit_block(handle: Any, /) -> bool: ...
