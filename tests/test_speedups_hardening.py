"""The C accelerator where Python code can run inside it: allocations, callbacks, failures.

On 3.10 and 3.11 allocating a tracked object can run the garbage collector, and with it gc
callbacks, ``__del__`` of cyclic garbage and ``weakref.finalize``: Python code that may call
``execlog.configure()`` or replace the recorder's channel in the middle of a traced call. Each
scenario below made ``_speedups.c`` read or write freed memory, swallow an error or leave a
finished execution current; each runs in a subprocess (a crash fails one test), under
``PYTHONMALLOC=debug`` so that freed memory reads as garbage (``.ci/sanitizers`` runs them
under AddressSanitizer instead). The fault-injection test fails each allocation of a traced
call in turn with ``_testcapi.set_nomemory``.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from conftest import rows
from execlog import _native, _spec

if TYPE_CHECKING:
    from pathlib import Path

SPEEDUPS = _native.SPEEDUPS
if SPEEDUPS is None:
    pytest.skip("execlog._speedups is not built (a pure-Python install)", allow_module_level=True)


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter whose freed memory reads as garbage."""
    malloc = os.environ.get("PYTHONMALLOC") or "debug"  # the sanitizer job sets "malloc"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONMALLOC": malloc, **(env or {})},
    )


def survived(proc: subprocess.CompletedProcess[str], *, reports: bool = False) -> list[str]:
    """The script's output lines, after checking it ended normally, without a traceback (but
    the internal errors execlog logs, where ``reports``)."""
    assert 0 == proc.returncode, proc.stderr[-3000:]
    assert "SystemError" not in proc.stderr, proc.stderr[-3000:]
    tracebacks = proc.stderr.count("Traceback")
    logged = proc.stderr.count("execlog internal error (recording continues)")
    assert tracebacks <= (logged if reports else 0), proc.stderr[-3000:]
    return proc.stdout.splitlines()


# -- 1. borrowed references across an allocation -------------------------------------------

_GENERATION_REPLACED_IN_BEGIN = """
import gc, sys
import execlog
from execlog._recorder import RECORDER

execlog.configure(db=sys.argv[1])

@execlog.traced_execution
def f(x):
    return x

assert type(f).__name__ == "TracedFunction"
f(0)  # writer started, caches warm
keep = []
n = [0]

def on_gc(phase, info):
    if phase == "stop":
        n[0] += 1
        # a fresh int (not a cached small one): the previous one is freed right here
        RECORDER.generation = int("9" * 30) + n[0]
        keep.append([])  # a tracked allocation: the next one collects again

RECORDER.generation = int("9" * 30)
gc.callbacks.append(on_gc)
gc.set_threshold(1)
try:
    for _ in range(3):
        f(1)
finally:
    gc.set_threshold(700)
    gc.callbacks.remove(on_gc)
print("collections", n[0] > 0)
assert execlog.flush(timeout=20)
"""

_CONFIG_REPLACED_IN_END = """
import gc, sys
import execlog

execlog.configure(db=sys.argv[1], capture_output=False)
armed = [False]
replaced = []

@execlog.traced_execution
def f(x):
    armed[0] = True  # act at the next collection: the one inside the end of this call
    return x

f(0)
armed[0] = False
keep = []

def on_gc(phase, info):
    if phase == "stop" and armed[0]:
        armed[0] = False
        execlog.configure(capture_output=True)  # a new Config: the old one is freed
        replaced.append(True)
    keep.append([[], [], []])  # tracked allocations: the next one collects too

gc.callbacks.append(on_gc)
gc.set_threshold(1)
try:
    with execlog.execution("outer"):  # the reset then restores a value: a HAMT allocation
        f(1)
finally:
    gc.set_threshold(700)
    gc.callbacks.remove(on_gc)
print("replaced", replaced == [True])
assert execlog.flush(timeout=20)
"""

_CHANNEL_REPLACED_IN_END = """
import gc, sys
import execlog
from execlog._recorder import RECORDER
from execlog._writer import Channel

execlog.configure(db=sys.argv[1])

class IdleWriter:  # not None, so the C path runs; holds no reference to the channel
    def stop(self, timeout=None):
        return True

@execlog.traced_execution
def f(x):
    return x

RECORDER.shutdown()
RECORDER.writer = IdleWriter()
f(0)
keep = []
replaced = [0]

def on_gc(phase, info):
    if phase == "stop":
        RECORDER.channel = Channel(1000, 512)  # the old one's last reference goes
        replaced[0] += 1
        keep.append([])

gc.callbacks.append(on_gc)
gc.set_threshold(1)
try:
    for _ in range(3):
        f(1)
finally:
    gc.set_threshold(700)
    gc.callbacks.remove(on_gc)
RECORDER.writer = None
print("replaced", replaced[0] > 0)
"""


class TestBorrowedAcrossAnAllocation:
    def test_generation_replaced_while_the_handle_is_allocated(self, tmp_path: Path) -> None:
        """begin() holds Recorder.generation across the handle's allocation, whose collection
        replaces (and frees) it from a gc callback."""
        proc = run_script(_GENERATION_REPLACED_IN_BEGIN, str(tmp_path / "gen.db"))
        assert ["collections True"] == survived(proc)

    @pytest.mark.skipif(
        sys.version_info >= (3, 12),
        reason="3.12+ collects garbage only at the interpreter loop, never inside the C path",
    )
    def test_configure_from_a_gc_callback_while_a_call_ends(self, tmp_path: Path) -> None:
        """execlog.configure() (public API) run by the collection inside the end of a call:
        the call reads the new configuration (its output is captured, as on the Python path),
        not the freed one."""
        db = tmp_path / "config.db"
        proc = run_script(_CONFIG_REPLACED_IN_END, str(db))
        assert ["replaced True"] == survived(proc)
        execlog.configure(db=str(db))
        [row] = rows(str(db), "name LIKE '%f' AND inputs = ?", ('{"x":1}',))
        assert "1" == row["output"]

    def test_channel_replaced_while_the_row_is_queued(self, tmp_path: Path) -> None:
        """The recorder's channel replaced (as reset() and a forked child do) by the collection
        that looking up the queue's append runs: nothing freed is read or written."""
        proc = run_script(_CHANNEL_REPLACED_IN_END, str(tmp_path / "channel.db"))
        assert ["replaced True"] == survived(proc)


# -- 2. errors never swallowed, preconditions checked ---------------------------------------

_PRIVATE_FUNCTIONS_NOT_INSTALLED = """
from execlog import _native, _speedups

assert _native.SPEEDUPS is None  # EXECLOG_PURE_PYTHON=1: never installed
calls = {
    "new_block": lambda: _speedups.new_block("b", "block", None, None),
    "enter": lambda: _speedups.enter(object()),
    "exit": lambda: _speedups.exit(object(), None, None, None),
    "complete": lambda: _speedups.complete(object(), 1),
    "begin": lambda: _speedups.begin(object(), (), {}),
    "begin_bound": lambda: _speedups.begin_bound(object(), None, (), {}),
    "is_secret": lambda: _speedups.is_secret(object(), "password"),
    "head": lambda: _speedups.head([1], 10, object(), repr),
    "CallSpec": lambda: _speedups.CallSpec(len, object(), (), len, len, len),
    "TracedFunction": lambda: _speedups.TracedFunction("plain", object()),
}
for name, call in calls.items():
    try:
        call()
    except (TypeError, RuntimeError) as exc:
        print(name, type(exc).__name__)
    else:
        print(name, "returned")
print("native_blocks", _speedups.native_blocks(True))
"""


class TestErrors:
    def test_private_functions_check_that_the_extension_is_installed(self) -> None:
        """Called before install() (EXECLOG_PURE_PYTHON=1), each private function raises."""
        proc = run_script(_PRIVATE_FUNCTIONS_NOT_INSTALLED, env={"EXECLOG_PURE_PYTHON": "1"})
        lines = survived(proc)
        assert "native_blocks False" == lines[-1]
        assert all(line.endswith(("TypeError", "RuntimeError")) for line in lines[:-1]), lines

    @pytest.mark.parametrize(
        ("at", "value"), [(1, 2**70), (2, 2**70), (1, -(2**70)), (1, "2"), (1, 2**31)]
    )
    def test_a_count_out_of_range_is_an_error(self, at: int, value: Any) -> None:
        """A CallSpec plan whose positional counts are not small ints raises; never an error
        left set behind a value (SystemError)."""

        def func(a, b=1):
            return a

        spec = _spec.Spec(func, None, "function", None, None, None, None, ())
        plan = list(spec.binder.plan())
        plan[at] = value
        with pytest.raises((OverflowError, ValueError)):
            SPEEDUPS.CallSpec(func, spec, tuple(plan), spec.bind, func, func)

    @pytest.mark.parametrize("answer", ["12", None, 2**70, 1.5])
    def test_a_measure_hook_answering_other_than_an_int(self, answer: Any) -> None:
        """The hook that measures other types must return an int: anything else raises."""

        class Other:
            pass

        with pytest.raises((TypeError, OverflowError)):
            SPEEDUPS.exceeds([Other()], 100, lambda _obj, _left: answer)


# -- 3. objects the collector cleared -------------------------------------------------------

_CLEARED_BY_THE_COLLECTOR = """
import asyncio, ctypes, sys
import execlog
from execlog._native import SPEEDUPS

execlog.configure(db=sys.argv[1])
api = ctypes.pythonapi
api.PyType_GetSlot.restype = ctypes.c_void_p
api.PyType_GetSlot.argtypes = [ctypes.py_object, ctypes.c_int]
TP_CLEAR = 51  # Py_tp_clear, as in typeslots.h

def clear(obj):
    # what the collector does to each object of a cycle it frees
    ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(api.PyType_GetSlot(type(obj), TP_CLEAR))(obj)

@execlog.traced_execution
async def job(x):
    await asyncio.sleep(0)
    return x

def attempt(name, call):
    try:
        call()
    except (RuntimeError, StopIteration, TypeError) as exc:
        print(name, type(exc).__name__)
    else:
        print(name, "returned")

coro = job(1)
awaiter = coro.__await__()
clear(awaiter)
for name in ("send", "throw", "close"):
    args = {"send": (None,), "throw": (ValueError,), "close": ()}[name]
    attempt("awaiter." + name, lambda: getattr(awaiter, name)(*args))
attempt("next(awaiter)", lambda: next(awaiter))
coro.close()

coro = job(2)
clear(coro)
attempt("coroutine.send", lambda: coro.send(None))
attempt("coroutine.close", coro.close)

@execlog.traced_execution
def plain(x):
    return x

plain(0)
plain(1)
clear(plain)
attempt("function, cleared", lambda: plain(3))
# never cleared (it has no tp_clear): what calls through it does not check each field
print("CallSpec tp_clear", api.PyType_GetSlot(SPEEDUPS.CallSpec, TP_CLEAR))
print("done")
"""


class TestClearedByTheCollector:
    def test_awaiter_and_coroutine_after_a_gc_clear(self, tmp_path: Path) -> None:
        """Methods of an awaiter, coroutine or traced function whose references the collector
        cleared (a cycle being freed) raise RuntimeError instead of following a NULL pointer."""
        if not hasattr(ctypes, "pythonapi"):  # pragma: no cover - CPython has it
            pytest.skip("needs ctypes.pythonapi")
        proc = run_script(_CLEARED_BY_THE_COLLECTOR, str(tmp_path / "clear.db"))
        lines = survived(proc)
        assert ["CallSpec tp_clear None", "done"] == lines[-2:]
        assert all(line.endswith("RuntimeError") for line in lines[:-2]), lines


# -- 4. fault injection: each allocation of a traced call fails in turn ---------------------

_FAULT_INJECTION = """
import asyncio, contextvars, gc, json, sys
import _testcapi
import execlog
from execlog._context import current
from execlog._recorder import RECORDER

execlog.configure(db=sys.argv[1], batch_size=10**6, flush_interval=1000)

# Only values the C path writes as JSON itself: orjson does not survive a failed allocation
# (it writes through the NULL it gets), which is its own matter.
@execlog.traced_execution
def plain(a, b=2):
    return a + b

@execlog.traced_execution
def outer(a):
    return plain(a, b=3)

@execlog.traced_execution
async def coroutine(a):
    return a

def block():
    with execlog.execution("block", trigger_kind="test"):
        return plain(1)

# Unsampled roots: the context marked and unmarked, a callable object's stand-in made in C.
@execlog.traced_execution(sample_rate=0.0)
def unsampled(a):
    return plain(a)

marker = contextvars.ContextVar("marker")

def unsampled_fresh():
    marker.set(object())  # a mapping no root has marked: the mark is made, not reused
    return unsampled(1)

class Adder:
    def __call__(self, a):
        return a + 1

unsampled_callable = execlog.traced_execution(Adder(), name="adder", sample_rate=0.0)

@execlog.traced_execution(sample_rate=0.0)
async def unsampled_coroutine(a):
    return a

def unsampled_block():
    with execlog.execution("block", sample_rate=0.0):
        return plain(1)

def awaited(function=coroutine):
    coro = function(1)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()

def delegated():
    coro = coroutine(2)
    awaiter = coro.__await__()
    try:
        next(awaiter)
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()

scenarios = {
    "plain": lambda: plain(1),
    "nested": lambda: outer(1),
    "block": block,
    "coroutine": awaited,
    "awaiter": delegated,
    "unsampled": unsampled_fresh,
    "unsampled callable": lambda: unsampled_callable(1),
    "unsampled coroutine": lambda: awaited(unsampled_coroutine),
    "unsampled block": unsampled_block,
}
for call in scenarios.values():  # first calls on the Python path, then the C path is warm
    call()
    call()
gc.disable()
report = {}
for name, call in scenarios.items():
    failures = {"MemoryError": 0, "other": []}
    for k in range(int(sys.argv[2])):
        _testcapi.set_nomemory(k, k + 1)
        try:
            call()
        except MemoryError:
            failures["MemoryError"] += 1
        except BaseException as exc:  # SystemError above all: an error left set, or lost
            failures["other"].append(f"{k}: {type(exc).__name__}: {exc}")
        finally:
            _testcapi.remove_mem_hooks()
        left = current.get()
        if left is not None:
            failures["other"].append(f"{k}: left current: {left!r}")
            current.set(None)
    report[name] = failures
gc.enable()
print(json.dumps(report))
RECORDER.channel.queue.clear()
"""


class TestFaultInjection:
    @pytest.mark.parametrize("strict", ["1", "0"])
    def test_each_allocation_of_a_traced_call_fails_in_turn(
        self, tmp_path: Path, strict: str
    ) -> None:
        """Plain, nested, block, coroutine and awaiter calls with their 1st, 2nd, ... Nth
        allocation failing: no SystemError, no crash, and no execution left current. Where
        the C path cannot go on it hands the call to the Python path; a failure it cannot
        hand over is reported as an internal error (raised under EXECLOG_STRICT=1)."""
        pytest.importorskip("_testcapi")
        proc = run_script(
            _FAULT_INJECTION, str(tmp_path / "faults.db"), "120", env={"EXECLOG_STRICT": strict}
        )
        lines = survived(proc, reports=strict == "0")
        report = json.loads(lines[-1])
        assert {name: [] for name in report} == {
            name: failures["other"] for name, failures in report.items()
        }
        if strict == "1":  # the failures reached every scenario, and execlog raised them
            raised = {name: failures["MemoryError"] for name, failures in report.items()}
            assert all(raised.values()), raised
        else:  # logged instead
            assert "execlog internal error (recording continues): MemoryError" in proc.stderr
