"""Setting or resetting the current execution fails (a MemoryError): the pure-Python path.

The C path's counterpart is the fault-injection test of ``test_speedups_hardening.py``, which
fails each allocation of a traced call in turn. Here the ContextVar fails as 3.11's does under
memory pressure: ``set`` after it has set the variable (only the token could not be made),
``reset`` after it has used the token up, leaving the variable as it was. Either way no
execution may stay current, and the failure is reported as an internal error (raised under
EXECLOG_STRICT=1, as the test suite runs; logged once otherwise), never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows
from execlog import _context, _execution, _fastpath, _guard, _spec
from execlog._execution import ExecutionHandle

if TYPE_CHECKING:
    import contextvars
    from collections.abc import Iterator


class _FailingVar:
    """Stands in for the ``current`` ContextVar; its first ``set`` of an execution or its first
    ``reset`` fails."""

    def __init__(self, fail: str) -> None:
        self.fail = fail
        self.failures = 0

    def get(self, *default: Any) -> Any:
        return _context.current.get(*default)

    def set(self, value: Any) -> contextvars.Token[Any]:
        token = _context.current.set(value)
        if self.fail == "set" and isinstance(value, ExecutionHandle) and not self.failures:
            self.failures += 1
            raise MemoryError  # the variable set, the token lost
        return token

    def reset(self, token: contextvars.Token[Any]) -> None:
        if self.fail == "reset" and not self.failures:
            self.failures += 1
            raise MemoryError  # the token used up, the variable unchanged
        _context.current.reset(token)


@pytest.fixture(autouse=True)
def _python_path() -> Iterator[None]:
    """Functions decorated and blocks made in these tests take the pure-Python path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fastpath, "READY", False)
        _fastpath.native_blocks(on=False)
        try:
            yield
        finally:
            _fastpath.native_blocks(on=True)


def _failing(monkeypatch: pytest.MonkeyPatch, fail: str) -> _FailingVar:
    var = _FailingVar(fail)
    monkeypatch.setattr(_execution, "current", var)
    monkeypatch.setattr(_spec, "_current_get", var.get)
    monkeypatch.setattr(_spec, "_current_set", var.set)
    monkeypatch.setattr(_spec, "_current_reset", var.reset)
    return var


@pytest.mark.parametrize("fail", ["set", "reset"])
@pytest.mark.parametrize("shape", ["call", "nested call", "block", "nested block"])
def test_nothing_is_left_current(
    monkeypatch: pytest.MonkeyPatch, db: str, fail: str, shape: str
) -> None:
    @execlog.traced_execution
    def f(x: int) -> int:
        return x

    def inner() -> None:
        if shape.endswith("call"):
            f(1)
        else:
            with execlog.execution("block"):
                pass

    if shape.startswith("nested"):
        with execlog.execution("outer") as outer:
            var = _failing(monkeypatch, fail)
            with pytest.raises(MemoryError):  # EXECLOG_STRICT=1: the internal error raised
                inner()
            assert execlog.current_execution() is outer
    else:
        var = _failing(monkeypatch, fail)
        with pytest.raises(MemoryError):
            inner()
        assert execlog.current_execution() is None
    assert 1 == var.failures


@pytest.mark.parametrize("rate", [1.0, 0.0], ids=["recorded", "unsampled root"])
def test_a_failed_reset_is_logged_once_and_the_call_returns(
    monkeypatch: pytest.MonkeyPatch, db: str, caplog: pytest.LogCaptureFixture, rate: float
) -> None:
    monkeypatch.setenv("EXECLOG_STRICT", "0")

    @execlog.traced_execution(sample_rate=rate)
    def f(x: int) -> int:
        return x

    _guard.reset_reported()  # the same failure may have been reported by an earlier test
    _failing(monkeypatch, "reset")
    with caplog.at_level(logging.ERROR, logger="execlog"):
        assert 1 == f(1)
        assert 2 == f(2)
    assert execlog.current_execution() is None
    assert 1 == sum("MemoryError" in record.getMessage() for record in caplog.records)
    with execlog.execution("after"):
        pass
    outputs = ["1", "2"] if rate else []
    assert [*outputs, None] == [row["output"] for row in rows(db)]


@pytest.mark.parametrize("fail", ["set", "reset"])
@pytest.mark.parametrize("shape", ["function", "method", "coroutine"])
def test_an_unsampled_root_leaves_nothing_current(
    monkeypatch: pytest.MonkeyPatch, db: str, fail: str, shape: str
) -> None:
    """The stand-in an unsampled root makes current is put back when its set or reset fails;
    the failure is reported (raised here, under EXECLOG_STRICT=1) and the next call runs."""

    class Box:
        @execlog.traced_execution(sample_rate=0.0)
        def method(self, x: int) -> int:
            return x

    @execlog.traced_execution(sample_rate=0.0)
    def function(x: int) -> int:
        return x

    @execlog.traced_execution(sample_rate=0.0)
    async def coroutine(x: int) -> int:
        return x

    call = {
        "function": function,
        "method": Box().method,
        "coroutine": lambda x: asyncio.run(coroutine(x)),
    }[shape]
    var = _failing(monkeypatch, fail)
    with pytest.raises(MemoryError):
        call(1)
    assert execlog.current_execution() is None
    assert 1 == var.failures
    assert 2 == call(2)
    assert execlog.current_execution() is None
    with execlog.execution("after"):
        pass
    assert ["after"] == [row["name"] for row in rows(db)]
