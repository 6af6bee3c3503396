"""The C accelerator (``execlog._speedups``) against the pure-Python reference path.

The accelerator repeats the common case of a traced call (and of a plain ``with execution()``
block) in C and hands everything else back to Python. Which path a function takes is decided
when it is decorated, so these tests decorate the same function on both paths, call both alike
and compare what is stored, column by column.

A function's first call always runs in Python (it refreshes the function's encoder and starts
the writer); the C path takes over from the second. Every comparison therefore makes at least
two calls and checks, with a spy on the Python ``_Spec.begin``, that the later ones ran in C.

Scenarios where the C code could read memory Python has freed run in a subprocess, so that a
crash fails one test instead of ending the run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import enum
import gc
import inspect
import json
import logging
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import tracemalloc
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import execlog
from conftest import FIELDS, count_waits, raw, rows, wait_or_kill
from execlog import _fastpath, _guard, _ids, _native, _propagation, _spec
from execlog._context import current
from execlog._encoding import Redactor, bounded_repr
from execlog._execution import ExecutionHandle
from execlog._propagation import _ENV_SAMPLED_KEY
from execlog._recorder import RECORDER
from execlog._sampling import UNSAMPLED, UnsampledExecution
from execlog._spec import Spec as _Spec
from execlog._storage.sqlite import SQLiteBackend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SPEEDUPS = _native.SPEEDUPS
if SPEEDUPS is None:
    pytest.skip("execlog._speedups is not built (a pure-Python install)", allow_module_level=True)

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

UUID7 = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")

#: Columns that differ between any two calls (ids, clocks, thread); lineage is compared
#: structurally instead.
VOLATILE = frozenset(
    {
        "execution_id",
        "correlation_id",
        "parent_execution_id",
        "started_at",
        "ended_at",
        "duration_ms",
        "thread_id",
    }
)


# -- helpers ----------------------------------------------------------------------------------


def uses_c(traced: Any) -> bool:
    """Whether a decorated function calls into the C path (a C TracedFunction, or a wrapper
    whose closure holds a CallSpec)."""
    if type(traced) is SPEEDUPS.TracedFunction:
        return True
    cells = getattr(traced, "__closure__", None) or ()
    return any(isinstance(cell.cell_contents, SPEEDUPS.CallSpec) for cell in cells)


@pytest.fixture
def python_begins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of executions begun by the Python path (``_Spec.begin``), in order; the C path
    never calls it. Only functions decorated after this fixture is set up are seen.
    """
    names: list[str] = []
    original = _Spec.begin

    def begin(self: _Spec, instance: Any, args: Any, kwargs: Any) -> Any:
        names.append(self.name)
        return original(self, instance, args, kwargs)

    monkeypatch.setattr(_Spec, "begin", begin)
    return names


@pytest.fixture
def python_enters(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts blocks entered by the Python path (``ExecutionHandle._begin``)."""
    count = [0]
    original = ExecutionHandle._begin

    def begin(self: ExecutionHandle, outer: Any) -> None:
        count[0] += 1
        original(self, outer)

    monkeypatch.setattr(ExecutionHandle, "_begin", begin)
    return count


def call_in_c(begins: list[str], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` and check that no execution was begun by the Python ``_Spec.begin``."""
    before = len(begins)
    try:
        return fn(*args, **kwargs)
    finally:
        assert begins[before:] == [], f"{fn.__name__}: begun on the Python path"


@contextlib.contextmanager
def pure_python(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Functions decorated (and blocks made) inside take the pure-Python path."""
    with monkeypatch.context() as patch:
        patch.setattr(_fastpath, "READY", False)
        _fastpath.native_blocks(on=False)
        try:
            yield
        finally:
            _fastpath.native_blocks(on=True)


def decorate_both(
    monkeypatch: pytest.MonkeyPatch, func: Callable[..., Any], **options: Any
) -> tuple[Any, Any]:
    """``func`` decorated on the C path and, separately, on the pure-Python path."""
    c_traced = execlog.traced_execution(**options)(func)
    with pure_python(monkeypatch):
        py_traced = execlog.traced_execution(**options)(func)
    assert uses_c(c_traced), "expected the C path"
    assert not uses_c(py_traced)
    return c_traced, py_traced


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of a row that must be equal on both paths."""
    assert FIELDS == list(row)
    return {key: value for key, value in row.items() if key not in VOLATILE}


def assert_root(row: dict[str, Any]) -> None:
    """A root execution recorded by this thread of this process, with consistent clocks."""
    eid = row["execution_id"]
    assert UUID7.match(eid), eid
    assert row["parent_execution_id"] is None
    assert eid == row["correlation_id"]
    assert row["started_at"] // 1000 == int(eid[:8] + eid[9:13], 16)  # the id's milliseconds
    assert row["ended_at"] >= row["started_at"]
    assert row["duration_ms"] >= 0
    assert os.getpid() == row["pid"]
    assert threading.get_ident() == row["thread_id"]


def outcome(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What a call gave: its result's repr, or its exception's type and message."""
    try:
        return ("returned", bounded_repr(fn(*args, **kwargs)))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


def by_name(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by name (each list oldest first)."""
    grouped: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for row in found:
        grouped[row["name"]].append(row)
    return grouped


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (EXECLOG_STRICT=1 is inherited)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


# -- function shapes and values for the equivalence table ------------------------------------


def positional(a, b, c):
    return [a, b, c]


def with_defaults(a, b=2, c="three", d=None):
    return {"a": a, "b": b, "c": c, "d": d}


def keyword_only(a, *, mode, flag=True, limit=10):
    return [a, mode, flag, limit]


def positional_only(a, b=2, /, c=3):
    return [a, b, c]


def credentials(user, password, api_key="k-123"):
    return {"user": user}


def person(name, ssn):
    return {"name": name, "ssn": ssn}


def echo(value):
    return value


def nothing():
    return None


def secret_output():
    return {"api_key": "k-live-123", "rows": 3}


def _make_scaler(factor):
    def scaled(x):
        return x * factor

    return scaled


def _nested(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


class Thing:
    """No JSON form: stored as its repr (the same object on both paths, so the same repr)."""


class BadRepr:
    """Its repr raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Color(enum.IntEnum):
    RED = 1


class Label(str):
    __slots__ = ()


@dataclasses.dataclass
class Login:
    user: str
    password: str


THING = Thing()
MODULE_LAMBDAS = (lambda x: x,)  # qualname "<lambda>": defined outside any class


@execlog.traced_execution
def MODULE_TRACED(a, b=2):  # noqa: N802 - named like the constant it is used as
    return a + b


BAD_REPR = BadRepr()
CYCLE: list[Any] = [1]
CYCLE.append(CYCLE)


@dataclasses.dataclass(frozen=True)
class Case:
    """One call of one function shape, optionally with decorator options and configuration."""

    label: str
    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)


CASES = [
    Case("positional-scalars", positional, (1, "two", None)),
    Case("positional-bools-negative", positional, (True, False, -7)),
    Case("defaults-filled-in", with_defaults, (1,)),
    Case("defaults-partly-given", with_defaults, (1, 5)),
    Case("defaults-and-keywords", with_defaults, (1,), {"d": [1, 2], "c": "x"}),
    Case("keywords-only", with_defaults, (), {"d": 4, "a": 1}),
    Case("keyword-only-defaults", keyword_only, (1,), {"mode": "fast"}),
    Case("keyword-only-all-given", keyword_only, (1,), {"limit": 3, "mode": "m", "flag": False}),
    Case("positional-only-default", positional_only, (1,)),
    Case("positional-only-all-given", positional_only, (1, 5, 6)),
    Case("positional-only-and-keyword", positional_only, (1,), {"c": 9}),
    Case("secret-parameters-positional", credentials, ("ann", "hunter2")),
    Case(
        "secret-parameters-keyword",
        credentials,
        (),
        {"user": "ann", "password": "hunter2", "api_key": "k-9"},
    ),
    Case("redact-per-function", person, ("ann", "123-45-6789"), options={"redact": ("ssn",)}),
    Case(
        "redact-per-function-nested",
        echo,
        ({"ssn": "1", "rows": [{"ssn": 2}]},),
        options={"redact": ("ssn",)},
    ),
    Case("redact-configured", person, ("ann", "123-45-6789"), config={"redact": ("ssn",)}),
    Case("nested-secret-keys", echo, ({"cfg": {"token": "x", "deeper": {"Pass-Word": "p"}}},)),
    Case("dataclass-with-secret-field", echo, (Login("ann", "hunter2"),)),
    Case("output-with-secret-key", secret_output),
    Case("output-dict-echoing-a-secret", echo, ({"token": "abc", "ok": 1},)),
    Case("non-ascii-text", echo, ("héllo wörld ✓ 日本 🎉",)),
    Case("quotes-backslashes-controls-del", echo, ('say "hi" \\ C:\\dir\n\t\r\x00\x1f\x7f end',)),
    Case("every-ascii-character", echo, ("".join(map(chr, range(128))),)),
    Case("lone-surrogate", echo, ("bad \ud800 text",)),
    Case("ints-at-64-bit-boundaries", positional, (2**63 - 1, -(2**63), 2**64 - 1)),
    Case("ints-beyond-64-bits", positional, (2**64, -(2**63) - 1, 2**200)),
    Case("big-int-output", echo, (-(2**70),)),
    Case("floats", positional, (1.5, -0.0, 1e308)),
    Case("special-floats", positional, (float("nan"), float("inf"), -float("inf"))),
    Case("float-output", echo, (0.1,)),
    Case("bool-output", echo, (True,)),
    Case("none-output", nothing),
    Case("lists", echo, ([1, "a", None, [2.5, [True]]],)),
    Case("tuples-sets-frozensets", positional, ((1, 2), {3, 1, 2}, frozenset({"a"}))),
    Case("unencodable-objects", positional, (THING, BAD_REPR, CYCLE)),
    Case("bytes-and-non-str-keys", echo, ({1: "a", None: "b", 2.5: b"raw\x00"},)),
    Case("int-enum-and-str-subclass", positional, (Color.RED, Label("x"), Label("{token}"))),
    Case("nested-too-deep", echo, (_nested(300),)),
    Case("output-str", echo, ("plain ascii text",)),
    Case("huge-inputs", echo, ("x" * 5000,), config={"max_payload_bytes": 256}),
    Case("huge-flat-inputs", positional, ("a" * 300, 1, 2), config={"max_payload_bytes": 256}),
    Case("inputs-exactly-at-the-limit", echo, ("a" * 52,), config={"max_payload_bytes": 64}),
    Case("inputs-one-byte-over-the-limit", echo, ("a" * 53,), config={"max_payload_bytes": 64}),
    Case("tiny-limit", echo, (123456789,), config={"max_payload_bytes": 4}),
    Case("capture-inputs-off-per-function", echo, ("x",), options={"capture_inputs": False}),
    Case("capture-inputs-off", echo, ("x",), config={"capture_inputs": False}),
    Case("capture-output-off", echo, ("x",), config={"capture_output": False}),
    Case(
        "name-kind-trigger",
        echo,
        (1,),
        options={"name": "renamed", "kind": "node", "trigger_kind": "scheduled"},
    ),
    Case("closure", _make_scaler(3), (7,)),
    Case("lambda", lambda x, y=1: x + y, (2,)),
    Case("too-many-arguments", positional, (1, 2, 3, 4)),
    Case("missing-argument", positional, (1,)),
    Case("unexpected-keyword", positional, (1, 2, 3), {"extra": 4}),
]


# -- which path a callable takes --------------------------------------------------------------


class TestPathSelection:
    def test_speedups_are_installed(self) -> None:
        """Where the extension is built, install() accepts execlog's classes and ids come from C."""
        assert _fastpath.READY is True
        assert SPEEDUPS.new_id is _ids.new_id

    @pytest.mark.parametrize(
        "func",
        [
            positional,
            keyword_only,
            positional_only,
            credentials,
            _make_scaler(2),
            MODULE_LAMBDAS[0],
        ],
        ids=["module-level", "keyword-only", "positional-only", "secrets", "closure", "lambda"],
    )
    def test_plain_functions_take_the_c_path(self, func: Callable[..., Any]) -> None:
        """Module-level functions, closures and lambdas get the C wrapper."""
        assert uses_c(execlog.traced_execution(func))

    def test_async_functions_take_the_c_path(self) -> None:
        """``async def`` gets the C wrapper and stays a coroutine function."""

        async def fetch(x):
            return x

        traced = execlog.traced_execution(fetch)
        assert uses_c(traced)
        assert inspect.iscoroutinefunction(traced)

    def test_options_that_keep_the_c_path(self) -> None:
        """name, kind, trigger_kind, redact and capture_inputs are handled in C."""
        for options in (
            {"name": "n", "kind": "k", "trigger_kind": "retry"},
            {"redact": ("ssn",)},
            {"capture_inputs": False},
        ):
            assert uses_c(execlog.traced_execution(**options)(positional)), options

    def test_call_shapes_take_the_c_path(self) -> None:
        """``*args``/``**kwargs``, keyword-only, ``self`` first: every call shape is bound in C."""

        def var_positional(*args):
            return args

        def var_keyword(**kwargs):
            return kwargs

        def self_first(self, x):
            return x

        def mixed(a, /, b, *args, c, d=4, **kwargs):
            return a

        for target in (var_positional, var_keyword, self_first, mixed):
            assert uses_c(execlog.traced_execution(target)), target

    def test_shapes_left_to_python(self) -> None:
        """Generators, async generators, static tags and capture_output stay in Python."""

        def gen(x):
            yield x

        async def agen(x):
            yield x

        for target in (gen, agen):
            assert not uses_c(execlog.traced_execution(target)), target
        assert not uses_c(execlog.traced_execution(tags={"a": 1})(positional))
        assert not uses_c(execlog.traced_execution(capture_output=True)(positional))

    def test_more_than_sixty_four_parameters_stay_in_python(self) -> None:
        """The C binder covers at most 64 parameters; beyond, the Python path binds."""
        namespace: dict[str, Any] = {}
        params = ", ".join(f"p{i}" for i in range(65))
        exec(f"def wide({params}):\n    return p0", namespace)
        assert not uses_c(execlog.traced_execution(namespace["wide"]))
        params = ", ".join(f"p{i}" for i in range(64))
        exec(f"def wide({params}):\n    return p0", namespace)
        assert uses_c(execlog.traced_execution(namespace["wide"]))

    def test_pure_switch_at_decoration_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With ``_SPEEDUPS_READY`` False when decorating, the Python wrapper is used."""
        monkeypatch.setattr(_fastpath, "READY", False)
        assert not uses_c(execlog.traced_execution(positional))

    def test_wrapper_keeps_the_function_metadata(self) -> None:
        """The C wrapper looks like the function: name, qualname, doc, signature, __wrapped__."""

        def documented(a, b=2, *, c):
            """Docs."""
            return a

        traced = execlog.traced_execution(documented)
        assert uses_c(traced)
        assert documented is traced.__wrapped__
        assert (documented.__name__, documented.__qualname__, documented.__doc__) == (
            traced.__name__,
            traced.__qualname__,
            traced.__doc__,
        )
        assert inspect.signature(documented) == inspect.signature(traced)

    def test_wrapper_stands_in_for_the_function(self, db: str) -> None:
        """No Python frame, yet a function to inspect, pickle, copy, bind and weakly reference."""
        traced = execlog.traced_execution(positional)
        assert type(traced) is SPEEDUPS.TracedFunction
        assert inspect.isfunction(traced)
        assert not inspect.iscoroutinefunction(traced)
        assert positional.__code__ is traced.__code__
        assert positional.__globals__ is traced.__globals__
        assert repr(traced).startswith("<function positional at 0x")
        assert MODULE_TRACED is pickle.loads(pickle.dumps(MODULE_TRACED))
        assert MODULE_TRACED is copy.deepcopy(MODULE_TRACED)
        assert traced is weakref.ref(traced)()
        traced.note = "set on the wrapper"
        assert not hasattr(positional, "note")

        class Holder:
            method = traced  # assigned after decoration: binds like a function

        holder = Holder()
        assert positional(holder, 1, 2) == holder.method(1, 2)
        found = rows(db)
        assert ["positional"] == [row["name"] for row in found]

    def test_execution_stands_in_for_the_python_function(self) -> None:
        """execlog.execution makes plain blocks in C and looks like the documented function."""
        python_execution = execlog.execution.__wrapped__
        assert type(execlog.execution) is SPEEDUPS.TracedFunction
        assert python_execution is execlog.execution._execlog_target
        assert inspect.isfunction(execlog.execution)
        assert inspect.signature(python_execution) == inspect.signature(execlog.execution)
        assert python_execution.__doc__ == execlog.execution.__doc__
        assert "execution" == execlog.execution.__name__
        assert execlog.execution is pickle.loads(pickle.dumps(execlog.execution))

    @pytest.mark.parametrize(
        ("args", "kwargs", "in_c"),
        [
            (("b",), {}, True),
            (("b",), {"kind": "stage", "inputs": {"n": 1}, "trigger_kind": "retry"}, True),
            (("b",), {"inputs": None, "kind": "k"}, True),
            (("b",), {"kind": "stage"}, True),
            (("b",), {"tags": {"t": 1}}, False),
            (("b",), {"run_id": "r"}, False),
            ((), {"name": "b"}, True),  # through the Python function, which uses new_block
            (("b",), {"kind": Label("k")}, False),
            ((Label("b"),), {}, False),
        ],
        ids=[
            "name",
            "kind-inputs-trigger",
            "keyword-order",
            "kind",
            "tags",
            "run-id",
            "name-by-keyword",
            "str-subclass-kind",
            "str-subclass-name",
        ],
    )
    def test_execution_calls_in_c_or_python(
        self,
        db: str,
        monkeypatch: pytest.MonkeyPatch,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        in_c: bool,
    ) -> None:
        """Plain blocks skip ExecutionHandle.__init__ (made in C); anything else goes through
        the Python function. Either way the block records the same."""
        inits = [0]
        original = ExecutionHandle.__init__

        def counting_init(self: ExecutionHandle, *a: Any, **k: Any) -> None:
            inits[0] += 1
            original(self, *a, **k)

        monkeypatch.setattr(ExecutionHandle, "__init__", counting_init)
        with execlog.execution(*args, **kwargs) as handle:
            assert handle is execlog.current_execution()
        assert (0 if in_c else 1) == inits[0]
        (row,) = rows(db)
        assert "b" == row["name"]
        assert kwargs.get("kind", "block") == row["kind"]
        assert "success" == row["status"]

    def test_execution_with_a_keyword_not_interned(self, db: str) -> None:
        """A keyword name built at run time (not the interned string) still means that keyword."""
        key = b"kind".decode()  # a new str, not the interned "kind"
        assert key == "kind"
        with execlog.execution("b", **{key: "dynamic"}):
            pass
        assert ["dynamic"] == [row["kind"] for row in rows(db)]

    @pytest.mark.parametrize(
        ("args", "kwargs"),
        [((), {}), (("a", "b"), {}), (("a",), {"bogus": 1}), ((1,), {})],
        ids=["no-name", "two-positional", "unknown-keyword", "int-name"],
    )
    def test_execution_errors_are_the_python_functions(
        self, monkeypatch: pytest.MonkeyPatch, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """A call execution() cannot take fails as the Python function fails."""
        python_execution = execlog.execution.__wrapped__
        expected = outcome(python_execution, args, kwargs)
        assert expected == outcome(execlog.execution, args, kwargs)
        with pure_python(monkeypatch):
            assert expected == outcome(execlog.execution, args, kwargs)


# -- 1. equivalence -------------------------------------------------------------------------


class TestEquivalence:
    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.label)
    def test_c_and_python_paths_store_the_same_row(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_begins: list[str], case: Case
    ) -> None:
        """Both paths return the same and store the same columns (ids and clocks aside)."""
        if case.config:
            execlog.configure(**case.config)
        c_traced, py_traced = decorate_both(monkeypatch, case.func, **case.options)

        c_outcomes = [outcome(c_traced, case.args, case.kwargs)]
        begun = len(python_begins)
        c_outcomes.append(outcome(c_traced, case.args, case.kwargs))
        assert begun == len(python_begins), "the second call should have run in C"
        c_rows = rows(db)
        py_outcomes = [outcome(py_traced, case.args, case.kwargs) for _ in range(2)]
        seen = {row["execution_id"] for row in c_rows}
        py_rows = [row for row in rows(db) if row["execution_id"] not in seen]

        assert py_outcomes == c_outcomes
        assert 2 == len(c_rows)
        assert 2 == len(py_rows)
        assert [comparable(row) for row in py_rows] == [comparable(row) for row in c_rows]
        for row in c_rows + py_rows:
            assert_root(row)
        assert execlog.current_execution() is None
        assert set() == RECORDER.channel.live

    def test_coroutines_store_the_same_rows(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_begins: list[str]
    ) -> None:
        """``async def`` on both paths: the same rows for scalars, secrets, big ints, text."""

        async def aecho(value, extra=None):
            await asyncio.sleep(0)
            return value

        values = [1, "text", {"cfg": {"token": "x"}}, 2**64, [1, {2}], None, "é\n", THING]
        c_traced, py_traced = decorate_both(monkeypatch, aecho)

        async def main(traced: Any, check_c: bool) -> list[Any]:
            await traced(0)  # the first call runs in Python
            results = []
            for value in values:
                before = len(python_begins)
                results.append(await traced(value, extra={"password": "p"}))
                if check_c:
                    assert before == len(python_begins), "expected the C path"
            return results

        assert asyncio.run(main(c_traced, check_c=True)) == values
        c_rows = rows(db)
        assert asyncio.run(main(py_traced, check_c=False)) == values
        seen = {row["execution_id"] for row in c_rows}
        py_rows = [row for row in rows(db) if row["execution_id"] not in seen]
        assert len(values) + 1 == len(c_rows)
        assert [comparable(row) for row in py_rows] == [comparable(row) for row in c_rows]
        for row in c_rows + py_rows:
            assert_root(row)

    def test_blocks_store_the_same_rows(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_enters: list[int]
    ) -> None:
        """``with execution(name, inputs=...)`` on the C and the Python block path agree."""
        inputs_list = [
            None,
            1,
            "text",
            {"password": "x", "cfg": {"token": 1}, "n": 2},
            {"a": 1, "b": "c"},
            2**64,
            'q"\\\x00\x7f',
            "é",
            [THING, {3}],
        ]

        def run_blocks(check_c: bool) -> None:
            with execlog.execution("warm-up"):
                pass
            for inputs in inputs_list:
                before = python_enters[0]
                with execlog.execution("block", kind="stage", inputs=inputs):
                    pass
                if check_c:
                    assert before == python_enters[0], "expected the C block path"
            with execlog.execution("scheduled", trigger_kind="cron"):
                pass

        run_blocks(check_c=True)
        c_rows = rows(db)
        with pure_python(monkeypatch):
            run_blocks(check_c=False)
        seen = {row["execution_id"] for row in c_rows}
        py_rows = [row for row in rows(db) if row["execution_id"] not in seen]
        assert len(inputs_list) + 2 == len(c_rows)
        assert [comparable(row) for row in py_rows] == [comparable(row) for row in c_rows]
        for row in c_rows + py_rows:
            assert_root(row)


# -- 2. the JSON writer in C ------------------------------------------------------------------

DEFAULT_REDACTOR = Redactor()
KEYS = (st.text(st.characters(max_codepoint=127), max_size=10) | st.text(max_size=4)).filter(
    lambda key: not DEFAULT_REDACTOR.is_secret(key)
)
ASCII_TEXT = st.text(st.characters(max_codepoint=127), max_size=30)
INT_BOUNDARIES = [
    0,
    1,
    -1,
    2**31,
    -(2**31),
    2**32,
    2**53 + 1,
    10**18,
    -(10**18),
    2**63 - 1,
    -(2**63),
    -(2**63) + 1,
    2**63,
    2**64 - 1,
]
INTS = st.sampled_from(INT_BOUNDARIES) | st.integers(min_value=-(2**63), max_value=2**64 - 1)
SCALARS = st.none() | st.booleans() | INTS | ASCII_TEXT
FLAT = st.dictionaries(KEYS, SCALARS, max_size=8)


class _NewRows:
    """Reads the rows written since the previous read, as raw TEXT."""

    def __init__(self, db: str) -> None:
        self.conn = sqlite3.connect(db, timeout=10)
        self.mark = 0

    def __call__(self) -> list[tuple[str, str | None, str | None]]:
        assert execlog.flush(timeout=10)
        found = self.conn.execute(
            "SELECT rowid, name, inputs, output FROM executions WHERE rowid > ? ORDER BY rowid",
            (self.mark,),
        ).fetchall()
        if found:
            self.mark = found[-1][0]
        return [row[1:] for row in found]


class TestJsonWriter:
    def test_flat_inputs_are_byte_identical_to_orjson(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_begins: list[str]
    ) -> None:
        """Any flat dict of str keys to None/bool/int/ASCII text: the stored inputs TEXT is
        exactly ``orjson.dumps`` of it, on the C and on the Python path.

        The dict reaches the recorder as keyword arguments of a function taking none (the
        call then fails with TypeError, after its inputs were recorded).
        """

        def sink():
            return None

        c_sink = execlog.traced_execution(name="c-sink")(sink)
        with pure_python(monkeypatch):
            py_sink = execlog.traced_execution(name="py-sink")(sink)
        new_rows = _NewRows(db)
        try:
            c_sink()
            new_rows()

            @SETTINGS
            @given(inputs=FLAT)
            @example(inputs={"every": "".join(map(chr, range(128)))})
            @example(inputs={"".join(map(chr, range(128))): 1})
            @example(inputs={"a": 2**63 - 1, "b": -(2**63), "c": 2**63, "d": 2**64 - 1})
            def check(inputs: dict[str, Any]) -> None:
                before = len(python_begins)
                with contextlib.suppress(TypeError):
                    c_sink(**inputs)
                assert before == len(python_begins), "expected the C path"
                with contextlib.suppress(TypeError):
                    py_sink(**inputs)
                expected = orjson.dumps(inputs).decode()
                assert [("c-sink", expected), ("py-sink", expected)] == [
                    (name, text) for name, text, _ in new_rows()
                ]

            check()
        finally:
            new_rows.conn.close()

    def test_scalar_arguments_and_results_are_byte_identical_to_orjson(
        self, db: str, python_begins: list[str]
    ) -> None:
        """A scalar argument and return value: inputs and output TEXT are orjson's bytes."""
        traced = execlog.traced_execution(echo)
        new_rows = _NewRows(db)
        try:
            traced(0)
            new_rows()

            @SETTINGS
            @given(value=SCALARS)
            def check(value: Any) -> None:
                assert value == call_in_c(python_begins, traced, value)
                assert [
                    (orjson.dumps({"value": value}).decode(), orjson.dumps(value).decode())
                ] == [(inputs, output) for _, inputs, output in new_rows()]

            check()
        finally:
            new_rows.conn.close()

    def test_every_ascii_character_matches_orjson(self, db: str, python_begins: list[str]) -> None:
        """Each of the 128 ASCII characters, alone and between letters, in a key and a value."""
        traced = execlog.traced_execution(echo)
        traced("warm-up")

        def sink():
            return None

        keyed = execlog.traced_execution(sink)
        keyed()
        new_rows = _NewRows(db)
        try:
            new_rows()
            for code in range(128):
                for text in (chr(code), f"a{chr(code)}z"):
                    assert text == call_in_c(python_begins, traced, text)
                    with pytest.raises(TypeError):
                        call_in_c(python_begins, keyed, **{text: text})
            found = new_rows()
        finally:
            new_rows.conn.close()
        expected = []
        for code in range(128):
            for text in (chr(code), f"a{chr(code)}z"):
                expected.append(
                    (orjson.dumps({"value": text}).decode(), orjson.dumps(text).decode())
                )
                expected.append((orjson.dumps({text: text}).decode(), None))
        assert expected == [(inputs, output) for _, inputs, output in found]

    def test_payload_limit_boundary(self, db: str, python_begins: list[str]) -> None:
        """Inputs of exactly max_payload_bytes are kept verbatim; one byte more is truncated."""
        execlog.configure(max_payload_bytes=64)
        traced = execlog.traced_execution(echo)
        traced("warm-up")
        fits, over = "a" * 52, "a" * 53
        assert 64 == len(orjson.dumps({"value": fits}))
        call_in_c(python_begins, traced, fits)
        call_in_c(python_begins, traced, over)
        _, at_limit, beyond = rows(db)
        assert orjson.dumps({"value": fits}).decode() == at_limit["inputs"]
        assert {"truncated": True, "size": 65, "length": 1} == {
            key: value
            for key, value in json.loads(beyond["inputs"]).items()
            if key in ("truncated", "size", "length")
        }
        assert len(beyond["inputs"].encode()) <= 64


# -- 3. lineage -------------------------------------------------------------------------------


class TestLineage:
    def test_nested_calls_are_children(self, db: str, python_begins: list[str]) -> None:
        """Three nested C-path calls: parent, correlation and trigger_kind "child"."""

        @execlog.traced_execution
        def leaf(n):
            return n

        @execlog.traced_execution
        def middle(n):
            return leaf(n) + 1

        @execlog.traced_execution
        def top(n):
            return middle(n) + 1

        top(0)
        assert 7 == call_in_c(python_begins, top, 5)
        top_row, middle_row, leaf_row = rows(db, "json_extract(inputs, '$.n') = 5")
        root = top_row["execution_id"]
        assert (None, root, "manual") == (
            top_row["parent_execution_id"],
            top_row["correlation_id"],
            top_row["trigger_kind"],
        )
        assert (root, root, "child") == (
            middle_row["parent_execution_id"],
            middle_row["correlation_id"],
            middle_row["trigger_kind"],
        )
        assert (middle_row["execution_id"], root, "child") == (
            leaf_row["parent_execution_id"],
            leaf_row["correlation_id"],
            leaf_row["trigger_kind"],
        )
        assert ["top", "middle", "leaf"] == [
            row["name"].split(".")[-1] for row in (top_row, middle_row, leaf_row)
        ]

    def test_static_trigger_kind_wins(self, db: str, python_begins: list[str]) -> None:
        """trigger_kind= of the decorator is used for roots and for children alike."""

        @execlog.traced_execution(trigger_kind="retry")
        def again(n):
            return n

        @execlog.traced_execution
        def outer():
            return call_in_c(python_begins, again, 2)

        again(0)
        outer()
        call_in_c(python_begins, outer)
        call_in_c(python_begins, again, 1)
        found = rows(db, "name LIKE '%again'")
        assert ["retry"] * 4 == [row["trigger_kind"] for row in found]
        assert [None, "x", "x", None] == [
            None if row["parent_execution_id"] is None else "x" for row in found
        ]

    def test_inside_blocks(self, db: str, python_begins: list[str]) -> None:
        """Under ``with execution(...)`` a C-path call inherits parent, correlation and run id."""

        @execlog.traced_execution
        def step(n):
            return n

        step(0)
        with execlog.execution("outer", correlation_id="corr-1", run_id="run-1") as outer:
            call_in_c(python_begins, step, 1)
        with execlog.execution("plain") as plain:
            call_in_c(python_begins, step, 2)
            with execlog.execution("inner") as inner:
                call_in_c(python_begins, step, 3)
        found = {json.loads(row["inputs"])["n"]: row for row in rows(db, "name LIKE '%step'")}
        assert (outer.execution_id, "corr-1", "run-1", "child") == (
            found[1]["parent_execution_id"],
            found[1]["correlation_id"],
            found[1]["run_id"],
            found[1]["trigger_kind"],
        )
        assert (plain.execution_id, plain.execution_id, None, "child") == (
            found[2]["parent_execution_id"],
            found[2]["correlation_id"],
            found[2]["run_id"],
            found[2]["trigger_kind"],
        )
        assert (inner.execution_id, plain.execution_id) == (
            found[3]["parent_execution_id"],
            found[3]["correlation_id"],
        )
        [inner_row] = rows(db, "name = 'inner'")
        assert (plain.execution_id, plain.execution_id, "child") == (
            inner_row["parent_execution_id"],
            inner_row["correlation_id"],
            inner_row["trigger_kind"],
        )

    def test_with_wrapt_methods(self, db: str, python_begins: list[str]) -> None:
        """A C-path call inside a traced method, and a traced method inside a C-path call."""

        @execlog.traced_execution
        def leaf(n):
            return n

        class Service:
            @execlog.traced_execution
            def handle(self, n):
                return leaf(n)

            @execlog.traced_execution
            def lookup(self, n):
                return n * 10

        @execlog.traced_execution
        def calls_method(service, n):
            return service.lookup(n)

        service = Service()
        leaf(0)
        calls_method(service, 0)
        assert 1 == service.handle(1)
        before = len(python_begins)
        assert 20 == calls_method(service, 2)
        assert calls_method.__qualname__ not in python_begins[before:], "expected the C path"

        found = by_name(rows(db))
        [handle_row] = found[Service.handle.__qualname__]
        leaf_row = found[leaf.__qualname__][-1]
        assert {"n": 1} == json.loads(handle_row["inputs"])
        assert (handle_row["execution_id"], handle_row["execution_id"], "child") == (
            leaf_row["parent_execution_id"],
            leaf_row["correlation_id"],
            leaf_row["trigger_kind"],
        )
        caller = found[calls_method.__qualname__][-1]
        lookup_row = found[Service.lookup.__qualname__][-1]
        assert {"n": 2} == json.loads(lookup_row["inputs"])
        assert (caller["execution_id"], caller["execution_id"], "child") == (
            lookup_row["parent_execution_id"],
            lookup_row["correlation_id"],
            lookup_row["trigger_kind"],
        )

    def test_current_execution_tags_output_and_status(
        self, db: str, python_begins: list[str]
    ) -> None:
        """The handle seen inside a C-path call records tag(), set_output() and set_status()."""
        seen: list[ExecutionHandle] = []

        @execlog.traced_execution
        def annotated(n):
            handle = execlog.current_execution()
            assert handle is not None
            seen.append(handle)
            handle.tag(rows=n, source="s3")
            handle.tag({"more": [1, 2]})
            handle.set_output({"rows": n})
            handle.set_status("partial")
            return "ignored"

        assert "ignored" == annotated(1)
        assert "ignored" == call_in_c(python_begins, annotated, 2)
        assert execlog.current_execution() is None
        found = rows(db)
        assert [handle.execution_id for handle in seen] == [row["execution_id"] for row in found]
        for n, row in enumerate(found, start=1):
            assert annotated.__qualname__ == seen[n - 1].name
            assert ("partial", {"rows": n}, {"rows": n, "source": "s3", "more": [1, 2]}) == (
                row["status"],
                json.loads(row["output"]),
                json.loads(row["tags"]),
            )
            assert_root(row)

    def test_current_execution_is_the_innermost(self, db: str, python_begins: list[str]) -> None:
        """current_execution() is the innermost C-path call, and the outer one again after it."""
        handles: dict[str, Any] = {}

        @execlog.traced_execution
        def inner():
            handles["inner"] = execlog.current_execution()
            return handles["inner"].execution_id

        @execlog.traced_execution
        def outer():
            handles["outer"] = execlog.current_execution()
            inner_id = inner()
            handles["after"] = execlog.current_execution()
            return inner_id

        outer()
        inner_id = call_in_c(python_begins, outer)
        assert handles["outer"] is handles["after"]
        assert handles["inner"] is not handles["outer"]
        [inner_row] = rows(db, "execution_id = ?", (inner_id,))
        assert handles["outer"].execution_id == inner_row["parent_execution_id"]
        assert "success" == inner_row["status"]
        assert execlog.current_execution() is None

    def test_environment_lineage(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_begins: list[str]
    ) -> None:
        """EXECLOG_PARENT_ID/EXECLOG_CORRELATION_ID parent root C-path calls; without them
        roots are their own correlation again (and run in C)."""
        assert _propagation._ENV_DATA is os.environ._data  # what the C path looks at
        parent_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())

        @execlog.traced_execution
        def child(n):
            return n

        @execlog.traced_execution
        def root(n):
            return child(n)

        root(0)
        call_in_c(python_begins, root, 0)
        monkeypatch.setenv("EXECLOG_PARENT_ID", parent_id)
        monkeypatch.setenv("EXECLOG_CORRELATION_ID", correlation_id)
        root(1)
        monkeypatch.delenv("EXECLOG_PARENT_ID")
        root(2)
        monkeypatch.delenv("EXECLOG_CORRELATION_ID")
        call_in_c(python_begins, root, 3)

        found = {
            (row["name"].split(".")[-1], json.loads(row["inputs"])["n"]): row for row in rows(db)
        }
        first, second, third = found["root", 1], found["root", 2], found["root", 3]
        assert (parent_id, correlation_id, "child") == (
            first["parent_execution_id"],
            first["correlation_id"],
            first["trigger_kind"],
        )
        assert (first["execution_id"], correlation_id, "child") == (
            found["child", 1]["parent_execution_id"],
            found["child", 1]["correlation_id"],
            found["child", 1]["trigger_kind"],
        )
        assert (None, correlation_id, "manual") == (
            second["parent_execution_id"],
            second["correlation_id"],
            second["trigger_kind"],
        )
        assert_root(third)
        assert "manual" == third["trigger_kind"]
        assert third["execution_id"] == found["child", 3]["correlation_id"]

    def test_async_children(self, db: str, python_begins: list[str]) -> None:
        """Coroutines on the C path: gathered children are children of their own task's root."""

        @execlog.traced_execution
        async def fetch(task, k):
            await asyncio.sleep(0)
            return k

        @execlog.traced_execution
        async def job(task):
            values = await asyncio.gather(fetch(task, 0), fetch(task, 1))
            return sum(values) + await fetch(task, 2)

        async def main() -> list[int]:
            await job(-1)
            before = len(python_begins)
            results = await asyncio.gather(*(job(task) for task in range(30)))
            assert before == len(python_begins), "expected the C path"
            return results

        assert [3] * 30 == asyncio.run(main())
        found = rows(db)
        jobs = {row["execution_id"]: row for row in found if row["name"].endswith("job")}
        fetches = [row for row in found if row["name"].endswith("fetch")]
        assert 31 == len(jobs)
        assert 93 == len(fetches)
        for row in fetches:
            parent = jobs[row["parent_execution_id"]]
            assert json.loads(parent["inputs"])["task"] == json.loads(row["inputs"])["task"]
            assert (parent["execution_id"], "child") == (row["correlation_id"], row["trigger_kind"])
        for row in jobs.values():
            assert_root(row)


# -- 4. errors --------------------------------------------------------------------------------


class CustomError(Exception):
    """A user exception (recorded as module.QualName)."""


EXITS = [
    pytest.param(lambda: ValueError("bad value"), "error", id="ValueError"),
    pytest.param(lambda: CustomError("custom"), "error", id="CustomError"),
    pytest.param(KeyboardInterrupt, "cancelled", id="KeyboardInterrupt"),
    pytest.param(asyncio.CancelledError, "cancelled", id="CancelledError"),
    pytest.param(lambda: SystemExit(0), "success", id="SystemExit-0"),
    pytest.param(lambda: SystemExit(3), "error", id="SystemExit-3"),
    pytest.param(GeneratorExit, "partial", id="GeneratorExit"),
]


class TestErrors:
    def test_exception_passes_through_unchanged(self, db: str, python_begins: list[str]) -> None:
        """The same exception object leaves a C-path call, with the raising frame in its
        traceback; the row has status error, type, message and stack."""
        errors = [ValueError("boom 1"), ValueError("boom 2")]

        @execlog.traced_execution
        def fail(n):
            raise errors[n]

        with pytest.raises(ValueError, match="boom 1"):
            fail(0)
        with pytest.raises(ValueError, match="boom 2") as info:
            call_in_c(python_begins, fail, 1)
        assert errors[1] is info.value
        frames = traceback.extract_tb(info.value.__traceback__)
        assert "fail" == frames[-1].name
        assert "raise errors[n]" == frames[-1].line
        assert execlog.current_execution() is None
        assert set() == RECORDER.channel.live

        _, row = rows(db)
        assert ("error", "ValueError", "boom 2") == (
            row["status"],
            row["error_type"],
            row["error_message"],
        )
        assert row["error_stack"].endswith("ValueError: boom 2\n")
        assert ", in fail\n    raise errors[n]\n" in row["error_stack"]
        assert row["output"] is None
        assert_root(row)

    @pytest.mark.parametrize(("make", "status"), EXITS)
    def test_outcomes_match_the_python_path(
        self,
        db: str,
        monkeypatch: pytest.MonkeyPatch,
        python_begins: list[str],
        make: Callable[[], BaseException],
        status: str,
    ) -> None:
        """Each kind of exception maps to the same status, type, message and (user) stack."""

        def leave(n):
            raise make()

        c_traced, py_traced = decorate_both(monkeypatch, leave)
        raised: list[BaseException] = []
        for traced in (c_traced, c_traced, py_traced, py_traced):
            try:
                traced(1)
            except BaseException as exc:
                raised.append(exc)
            assert execlog.current_execution() is None
        assert 4 == len(raised)
        assert 1 == len({type(exc) for exc in raised})
        found = rows(db)
        assert [status] * 4 == [row["status"] for row in found]
        assert [comparable(row) for row in found[2:]] == [comparable(row) for row in found[:2]]
        if status != "success":
            assert all(", in leave\n" in row["error_stack"] for row in found)
        assert set() == RECORDER.channel.live

    def test_nested_error_resets_the_context(self, db: str, python_begins: list[str]) -> None:
        """After a failing inner call is caught, the outer call is current again."""

        @execlog.traced_execution
        def inner():
            raise KeyError("missing")

        @execlog.traced_execution
        def outer():
            before = execlog.current_execution()
            with pytest.raises(KeyError):
                inner()
            assert before is execlog.current_execution()
            return before.execution_id

        outer()
        outer_id = call_in_c(python_begins, outer)
        assert execlog.current_execution() is None
        [inner_row] = rows(db, "parent_execution_id = ?", (outer_id,))
        assert ("error", "KeyError", "'missing'") == (
            inner_row["status"],
            inner_row["error_type"],
            inner_row["error_message"],
        )
        [outer_row] = rows(db, "execution_id = ?", (outer_id,))
        assert "success" == outer_row["status"]

    def test_coroutine_errors_and_cancellation(self, db: str, python_begins: list[str]) -> None:
        """A C-path coroutine: an error is recorded and re-raised; a cancelled one is cancelled."""
        error = ValueError("async boom")

        @execlog.traced_execution
        async def fail():
            await asyncio.sleep(0)
            raise error

        @execlog.traced_execution
        async def hang(started):
            started.set()
            await asyncio.sleep(30)

        async def main() -> None:
            with pytest.raises(ValueError):
                await fail()
            before = len(python_begins)
            with pytest.raises(ValueError) as info:
                await fail()
            assert error is info.value
            assert before == len(python_begins), "expected the C path"
            for _ in range(2):
                started = asyncio.Event()
                task = asyncio.create_task(hang(started))
                await started.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert before + 1 == len(python_begins)  # only hang's first call ran in Python
            assert execlog.current_execution() is None

        asyncio.run(main())
        found = by_name(rows(db))
        assert ["error", "error"] == [row["status"] for row in found[fail.__qualname__]]
        assert ["cancelled"] * 2 == [row["status"] for row in found[hang.__qualname__]]
        assert ["CancelledError"] * 2 == [
            row["error_type"].split(".")[-1] for row in found[hang.__qualname__]
        ]
        assert "async boom" == found[fail.__qualname__][1]["error_message"]
        assert set() == RECORDER.channel.live

    def test_generators_are_left_to_the_generator_wrapper(
        self, db: str, python_begins: list[str]
    ) -> None:
        """Generator functions never take the C path, and still record their items."""

        @execlog.traced_execution
        def numbers(n):
            yield from range(n)

        assert not uses_c(numbers)
        assert [0, 1, 2] == list(numbers(3))
        [row] = rows(db)
        assert ("success", [0, 1, 2]) == (row["status"], json.loads(row["output"]))


# -- 5. robustness -----------------------------------------------------------------------------


class _RefusingQueue(collections.deque):  # type: ignore[type-arg]
    """A queue that refuses records (an execlog failure, simulated); flush markers go in."""

    def append(self, item: Any) -> None:
        if type(item) is tuple:
            raise RuntimeError("simulated execlog failure")
        super().append(item)


def _keep_with_a_refusing_queue(python_begins: list[str]) -> tuple[Callable[[Any], Any], Any]:
    """A traced identity function already on the C path, and the channel whose queue now
    refuses every row."""

    @execlog.traced_execution
    def keep(value):
        return value

    keep(0)
    call_in_c(python_begins, keep, 0)
    assert execlog.flush(timeout=5)
    channel = RECORDER.channel
    channel.queue = _RefusingQueue(channel.queue)
    return keep, channel


class TestRobustness:
    def test_disabled_records_nothing_and_calls_still_run(
        self, db: str, python_begins: list[str]
    ) -> None:
        """configure(enabled=False): C-path functions, coroutines and blocks run, unrecorded."""

        @execlog.traced_execution
        def double(x):
            return x * 2

        @execlog.traced_execution
        async def adouble(x):
            return x * 2

        double(0)
        asyncio.run(adouble(0))
        assert execlog.flush(timeout=10)
        execlog.configure(enabled=False)
        assert [2, 4] == [call_in_c(python_begins, double, x) for x in (1, 2)]
        assert 6 == asyncio.run(adouble(3))
        with execlog.execution("off"):
            pass
        with pytest.raises(TypeError):
            double()
        execlog.configure(enabled=True)
        assert 10 == double(5)
        found = rows(db)
        assert [{"x": 0}, {"x": 0}, {"x": 5}] == [json.loads(row["inputs"]) for row in found]

    def test_capture_switches(self, db: str, python_begins: list[str]) -> None:
        """capture_inputs=False / capture_output=False leave those columns NULL on the C path."""

        @execlog.traced_execution
        def double(x):
            return x * 2

        double(0)
        execlog.configure(capture_inputs=False)
        double(1)
        call_in_c(python_begins, double, 2)
        execlog.configure(capture_inputs=True, capture_output=False)
        double(3)
        call_in_c(python_begins, double, 4)
        found = rows(db)
        assert [
            ('{"x":0}', "0"),
            (None, "2"),
            (None, "4"),
            ('{"x":3}', None),
            ('{"x":4}', None),
        ] == [(row["inputs"], row["output"]) for row in found]

    def test_reconfiguring_between_calls_takes_effect(
        self, db: str, tmp_path: Any, python_begins: list[str]
    ) -> None:
        """Each configure() (a new config generation) applies to the next calls, which go back
        to C once the function has seen the new configuration."""

        @execlog.traced_execution
        def keep(value):
            return value

        def twice(value: Any) -> None:
            generation = RECORDER.config_generation
            keep(value)
            call_in_c(python_begins, keep, value)
            assert generation == RECORDER.config_generation

        twice("a")
        execlog.configure(redact=("value",))
        twice("b")
        execlog.configure(redact=(), max_payload_bytes=40)
        twice("x" * 100)
        execlog.configure(max_payload_bytes=65_536, capture_output=False)
        twice("c")
        found = rows(db)
        assert ['{"value":"a"}'] * 2 + ['{"value":"[REDACTED]"}'] * 2 == [
            row["inputs"] for row in found[:4]
        ]
        assert ['"a"', '"a"', '"b"', '"b"'] == [row["output"] for row in found[:4]]
        for row in found[4:6]:
            assert json.loads(row["inputs"])["truncated"] is True
            assert json.loads(row["output"])["truncated"] is True
            assert len(row["inputs"]) <= 40
        assert [('{"value":"c"}', None)] * 2 == [(r["inputs"], r["output"]) for r in found[6:]]

        other = str(tmp_path / "other.db")
        execlog.configure(db=other)
        twice("d")
        assert 2 == len(rows(other))
        assert 8 == len(rows(db))

    def test_shutdown_between_calls(self, db: str, python_begins: list[str]) -> None:
        """After shutdown() the next call starts a new writer; the C path resumes after it."""

        @execlog.traced_execution
        def keep(value):
            return value

        keep(1)
        call_in_c(python_begins, keep, 2)
        execlog.shutdown()
        keep(3)
        call_in_c(python_begins, keep, 4)
        assert [1, 2, 3, 4] == [json.loads(row["output"]) for row in rows(db)]

    def test_full_queue_drops_and_counts(
        self, db: str, monkeypatch: pytest.MonkeyPatch, python_begins: list[str]
    ) -> None:
        """on_full='drop', a tiny queue and a stalled writer: calls never wait, every record is
        either stored or counted as dropped, and an end already shown as running is kept."""
        execlog.configure(queue_size=10, on_full="drop", batch_size=4, flush_interval=0.01)
        gate = threading.Event()
        gate.set()
        original = SQLiteBackend.write

        def held_write(self: SQLiteBackend, *args: Any) -> int:
            assert gate.wait(10)
            return original(self, *args)

        monkeypatch.setattr(SQLiteBackend, "write", held_write)

        @execlog.traced_execution
        def quick(i):
            return i

        @execlog.traced_execution
        def long(n, hold):
            assert execlog.flush(timeout=5)  # the writer stores this execution as running
            if hold:
                gate.clear()  # from now on the writer is stuck in its next write
            return [quick(i) for i in range(n)]

        long(0, False)
        quick(-1)
        assert execlog.flush(timeout=5)
        space = count_waits()
        produced = 300
        try:
            assert list(range(produced)) == call_in_c(python_begins, long, produced, True)
        finally:
            gate.set()
        assert 0 == space.waits, "a call waited for room with on_full='drop'"
        assert execlog.flush(timeout=10)
        with execlog.open_store(db) as store:
            dropped = store.dropped_count()
        found = by_name(rows(db))
        written = len(found[quick.__qualname__]) - 1
        assert dropped > 0
        assert produced == written + dropped
        assert ["success", "success"] == [row["status"] for row in found[long.__qualname__]]

    def test_full_queue_blocks_without_loss(self, db: str, python_begins: list[str]) -> None:
        """on_full='block' with a tiny queue: every C-path record arrives, none dropped."""
        execlog.configure(queue_size=10, on_full="block", flush_interval=0.005, batch_size=4)

        @execlog.traced_execution
        def quick(i):
            return i

        quick(-1)
        for i in range(300):
            call_in_c(python_begins, quick, i)
        assert 301 == len(rows(db))
        with execlog.open_store(db) as store:
            assert 0 == store.dropped_count()

    def test_flush_inside_a_call_shows_it_running(self, db: str, python_begins: list[str]) -> None:
        """A C-path call in progress is stored as running, with its inputs; then it ends."""
        seen: list[Any] = []

        @execlog.traced_execution
        def busy(n):
            assert execlog.flush(timeout=5)
            handle = execlog.current_execution()
            assert handle is not None
            query = "SELECT status, inputs, output FROM executions WHERE execution_id = ?"
            seen.append(raw(db, query, (handle.execution_id,)))
            return n

        busy(0)
        call_in_c(python_begins, busy, 1)
        assert [[("running", '{"n":0}', None)], [("running", '{"n":1}', None)]] == seen
        found = rows(db)
        assert [("success", "0"), ("success", "1")] == [(r["status"], r["output"]) for r in found]

    def test_internal_failure_is_raised_under_strict(
        self, db: str, python_begins: list[str]
    ) -> None:
        """EXECLOG_STRICT=1 (this suite): an internal failure while queueing propagates from the
        C path, and leaves no execution current or live."""

        keep, channel = _keep_with_a_refusing_queue(python_begins)
        with pytest.raises(RuntimeError, match="simulated execlog failure"):
            call_in_c(python_begins, keep, 1)
        assert execlog.current_execution() is None
        assert set() == channel.live

    def test_internal_failure_never_reaches_the_program(
        self,
        db: str,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        python_begins: list[str],
    ) -> None:
        """Without EXECLOG_STRICT an internal failure is logged and the call returns normally."""
        monkeypatch.setenv("EXECLOG_STRICT", "0")
        _guard.reset_reported()
        caplog.set_level(logging.ERROR, logger="execlog")

        keep, channel = _keep_with_a_refusing_queue(python_begins)
        assert [1, 2, 3] == [call_in_c(python_begins, keep, i) for i in (1, 2, 3)]
        assert execlog.current_execution() is None
        assert set() == channel.live
        messages = [r.getMessage() for r in caplog.records if r.name == "execlog"]
        assert any("simulated execlog failure" in message for message in messages), messages

    def test_no_reference_leaks(self, db: str, python_begins: list[str]) -> None:
        """Thousands of C-path calls (returning, with keywords, raising) keep no reference to
        arguments, results or handles."""

        @execlog.traced_execution
        def keep(obj, n=0):
            return obj

        @execlog.traced_execution
        def fail(obj):
            raise ValueError("x")

        sentinel = Thing()
        keep(sentinel)
        with pytest.raises(ValueError):
            fail(sentinel)
        assert execlog.flush(timeout=5)
        gc.collect()
        before = sys.getrefcount(sentinel)
        handles = sum(type(obj) is ExecutionHandle for obj in gc.get_objects())
        for _ in range(1000):
            call_in_c(python_begins, keep, sentinel)
            call_in_c(python_begins, keep, sentinel, n=1)
            with pytest.raises(ValueError):
                call_in_c(python_begins, fail, sentinel)
        assert execlog.flush(timeout=10)
        gc.collect()
        assert before == sys.getrefcount(sentinel)
        assert handles >= sum(type(obj) is ExecutionHandle for obj in gc.get_objects())
        assert 3002 == len(rows(db))


# -- 5b. concurrency and fork ---------------------------------------------------------------


class TestConcurrency:
    def test_threads_lose_no_records(self, db: str, python_begins: list[str]) -> None:
        """8 threads of nested C-path calls: every record stored, each child under its parent
        in its own thread."""

        @execlog.traced_execution
        def leaf(t, i):
            return i

        @execlog.traced_execution
        def branch(t, i):
            return leaf(t, i) + 1

        branch(-1, -1)
        idents: dict[int, int] = {}
        errors: list[BaseException] = []
        calls = 250

        def work(t: int) -> None:
            idents[t] = threading.get_ident()
            try:
                for i in range(calls):
                    assert i + 1 == branch(t, i)
            except BaseException as exc:
                errors.append(exc)

        begun = len(python_begins)
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert [] == errors
        assert begun == len(python_begins), "expected every call on the C path"

        found = rows(db, "json_extract(inputs, '$.t') >= 0")
        assert 2 * 8 * calls == len(found)
        assert len(found) == len({row["execution_id"] for row in found})
        branches = {row["execution_id"]: row for row in found if row["name"].endswith("branch")}
        for row in found:
            t = json.loads(row["inputs"])["t"]
            assert idents[t] == row["thread_id"]
            if row["name"].endswith("leaf"):
                parent = branches[row["parent_execution_id"]]
                assert json.loads(parent["inputs"]) == json.loads(row["inputs"])
                assert parent["execution_id"] == row["correlation_id"]
                assert parent["thread_id"] == row["thread_id"]

    def test_tasks_lose_no_records(self, db: str, python_begins: list[str]) -> None:
        """200 asyncio tasks calling sync and async C-path functions: every record stored."""

        @execlog.traced_execution
        def compute(task, k):
            return task * k

        @execlog.traced_execution
        async def task_body(task):
            total = 0
            for k in range(3):
                await asyncio.sleep(0)
                total += compute(task, k)
            return total

        async def main() -> list[int]:
            await task_body(-1)
            begun = len(python_begins)
            results = await asyncio.gather(*(task_body(task) for task in range(200)))
            assert begun == len(python_begins)
            return results

        assert [3 * task for task in range(200)] == asyncio.run(main())
        found = rows(db, "json_extract(inputs, '$.task') >= 0")
        assert 200 * 4 == len(found)
        bodies = {row["execution_id"]: row for row in found if row["name"].endswith("task_body")}
        assert 200 == len(bodies)
        for row in found:
            if row["name"].endswith("compute"):
                parent = bodies[row["parent_execution_id"]]
                assert json.loads(parent["inputs"])["task"] == json.loads(row["inputs"])["task"]

    @pytest.mark.timeout(60)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_forked_child_records_through_the_c_path(
        self, db: str, python_begins: list[str]
    ) -> None:
        """os.fork() inside a C-path call: the child records its own calls (under that call,
        then as roots), on the C path after its first; the call itself is recorded once."""
        read_end, write_end = os.pipe()

        @execlog.traced_execution
        def step(i):
            return i

        @execlog.traced_execution
        def outer():
            pid = os.fork()
            if pid == 0:
                step(1)
                report["nested_in_c"] = len(python_begins)
                step(2)
                report["nested_in_c"] = report["nested_in_c"] == len(python_begins)
            return pid

        report: dict[str, Any] = {}
        step(0)
        call_in_c(python_begins, step, 0)
        assert execlog.flush(timeout=5)
        pid = -1
        try:
            pid = outer()
            if pid == 0:
                step(3)
                before = len(python_begins)
                step(4)
                report["root_in_c"] = before == len(python_begins)
                report["flushed"] = execlog.flush(timeout=20)
                os.write(write_end, json.dumps(report).encode())
                os._exit(0)
        except BaseException:
            if pid == 0:
                os._exit(3)
            raise
        os.close(write_end)
        assert 0 == wait_or_kill(pid, timeout=30)
        with os.fdopen(read_end) as pipe:
            assert {"nested_in_c": True, "root_in_c": True, "flushed": True} == json.loads(
                pipe.read()
            )

        [outer_row] = rows(db, "name LIKE '%outer'")
        assert (os.getpid(), "success", str(pid)) == (
            outer_row["pid"],
            outer_row["status"],
            outer_row["output"],
        )
        mine = rows(db, "pid = ?", (pid,))
        assert [1, 2, 3, 4] == [json.loads(row["inputs"])["i"] for row in mine]
        assert [outer_row["execution_id"]] * 2 + [None, None] == [
            row["parent_execution_id"] for row in mine
        ]
        parent_tail = outer_row["execution_id"][19:32]
        assert all(row["execution_id"][19:32] != parent_tail for row in mine)
        assert 2 == len(rows(db, "pid = ? AND name LIKE '%step'", (os.getpid(),)))


# -- 6. ids -----------------------------------------------------------------------------------

TIMES = st.integers(min_value=0, max_value=2**63 - 1)  # C takes int64 ns: up to year 2262


def _time_key(time_ns: int) -> tuple[int, int]:
    """(milliseconds, 1/4096 ms) of an instant: what an id sorts by before its counter."""
    ms, rest = divmod(time_ns, 10**6)
    return ms, (rest << 12) // 10**6


class TestIds:
    @SETTINGS
    @given(time_ns=TIMES)
    def test_same_layout_as_python(self, time_ns: int) -> None:
        """C and Python ids for one instant: UUIDv7, the same time fields and random bits."""
        c_id, py_id = _ids.new_id(time_ns), _ids._new_id_py(time_ns)
        for made in (c_id, py_id):
            assert UUID7.match(made), made
            parsed = uuid.UUID(made)
            assert 7 == parsed.version
            assert uuid.RFC_4122 == parsed.variant
        assert py_id[:18] == c_id[:18]  # milliseconds, version, sub-millisecond
        assert py_id[19:32] == c_id[19:32]  # variant and the per-process random bits
        ms, sub = _time_key(time_ns)
        assert ms == int(c_id[:8] + c_id[9:13], 16)
        assert sub == int(c_id[15:18], 16)

    @SETTINGS
    @given(times=st.lists(TIMES, min_size=2, max_size=40))
    def test_ids_sort_by_time(self, times: list[int]) -> None:
        """Ids of later instants sort later; within one 1/4096 ms the counter goes up by one."""
        for new_id in (_ids.new_id, _ids._new_id_py):
            ordered = sorted(times)
            made = [new_id(t) for t in ordered]
            for (t1, a), (t2, b) in zip(zip(ordered, made), zip(ordered[1:], made[1:])):
                if _time_key(t1) < _time_key(t2):
                    assert a < b
                else:
                    assert 1 == (int(b[-4:], 16) - int(a[-4:], 16)) % 2**16

    def test_unique_over_many_ids(self) -> None:
        """100,000 ids from the clock, and a whole counter cycle at one instant, are unique."""
        now = time.time_ns
        made = [_ids.new_id(now()) for _ in range(100_000)]
        assert 100_000 == len(set(made))
        assert all(UUID7.match(made_id) for made_id in made[::997])
        instant = now()
        assert 2**16 == len({_ids.new_id(instant) for _ in range(2**16)})
        assert 2**16 == len({_ids._new_id_py(instant) for _ in range(2**16)})

    def test_reseed_changes_the_tail(self) -> None:
        """reseed() (as in a forked child) draws new random bits for C and Python alike."""
        instant = time.time_ns()
        before = _ids.new_id(instant)
        _ids.reseed()
        after, py_after = _ids.new_id(instant), _ids._new_id_py(instant)
        assert before[:18] == after[:18]
        assert before[19:32] != after[19:32]
        assert py_after[19:32] == after[19:32]
        assert UUID7.match(after)

    def test_recorded_ids_carry_the_start_time(self, db: str, python_begins: list[str]) -> None:
        """Ids made by the C path encode the row's started_at and sort like it."""

        @execlog.traced_execution
        def tick(i):
            return i

        tick(-1)
        for i in range(50):
            call_in_c(python_begins, tick, i)
        found = rows(db)
        ids = [row["execution_id"] for row in found]
        assert sorted(ids) == ids
        for row in found:
            assert_root(row)


# -- 7. EXECLOG_PURE_PYTHON -------------------------------------------------------------------

_REPORT_PATHS = """
    import json, sys
    import execlog
    from execlog import _fastpath, _ids, _native

    execlog.configure(db=sys.argv[1])

    @execlog.traced_execution
    def add(a, b=2):
        return a + b

    assert [3, 3] == [add(1), add(1)]
    assert execlog.flush(timeout=10)
    print(json.dumps({
        "speedups": _native.SPEEDUPS is not None,
        "ready": _fastpath.READY,
        "c_ids": _ids.new_id is not _ids._new_id_py,
        "c_wrapper": type(add).__name__ == "TracedFunction",
    }))
"""


class TestPurePythonSwitch:
    @pytest.mark.parametrize(
        ("value", "native"), [("1", False), ("true", False), ("0", True), ("", True)]
    )
    def test_environment_variable(self, tmp_path: Any, value: str, native: bool) -> None:
        """EXECLOG_PURE_PYTHON=1/true turns the accelerator off at import (0 or empty do not);
        either way calls are recorded alike."""
        db = str(tmp_path / f"pure-{value or 'empty'}.db")
        proc = run_script(_REPORT_PATHS, db, env={"EXECLOG_PURE_PYTHON": value})
        assert 0 == proc.returncode, proc.stderr
        expected = {"speedups": native, "ready": native, "c_ids": native, "c_wrapper": native}
        assert expected == json.loads(proc.stdout.strip().splitlines()[-1])
        found = raw(db, "SELECT status, inputs, output FROM executions")
        assert [("success", '{"a":1,"b":2}', "3")] * 2 == found


# -- memory safety: the C path calls back into Python ------------------------------------------

_REENTRANT_RECONFIGURE = """
    import sys
    import execlog
    execlog.configure(db=sys.argv[1])

    @execlog.traced_execution
    def f(x):
        return 1

    class Evil:
        def __repr__(self):  # runs while the C path encodes f's inputs
            execlog.configure(max_payload_bytes=12_345)
            f(0)  # refreshes f's encoder: the one being used is released
            return "evil"

    f(1)
    f(1)
    f(Evil())
    assert execlog.flush(timeout=10)
    print("survived")
"""

_THREAD_RECONFIGURES = """
    import sys, threading
    import execlog
    execlog.configure(db=sys.argv[1])

    @execlog.traced_execution
    def f(x):
        return 1

    in_repr, reconfigured = threading.Event(), threading.Event()

    class Slow:
        def __repr__(self):  # any repr that releases the GIL: I/O, a lock, a sleep
            in_repr.set()
            reconfigured.wait(5)
            return "slow"

    def settings_reload():
        in_repr.wait(5)
        execlog.configure(max_payload_bytes=12_345)
        f(0)
        reconfigured.set()

    f(1)
    f(1)
    thread = threading.Thread(target=settings_reload)
    thread.start()
    f(Slow())
    thread.join()
    assert execlog.flush(timeout=10)
    print("survived")
"""

_BLOCK_RECONFIGURES = """
    import sys
    import execlog
    execlog.configure(db=sys.argv[1])

    class Evil:
        def __repr__(self):  # runs while the C path encodes the block's inputs
            execlog.configure(max_payload_bytes=12_345)  # replaces RECORDER.encoder
            return "evil"

    for _ in range(2):
        with execlog.execution("warm-up"):
            pass
    with execlog.execution("block", inputs={"x": Evil()}):
        pass
    assert execlog.flush(timeout=10)
    print("survived")
"""


class TestCallbacksIntoPython:
    @pytest.mark.parametrize("path", ["c", "pure"])
    @pytest.mark.parametrize(
        ("script", "recorded"),
        [
            # f(0) inside the repr runs unrecorded: capture never records
            pytest.param(_REENTRANT_RECONFIGURE, 3, id="reentrant-reconfigure"),
            pytest.param(_THREAD_RECONFIGURES, 4, id="thread-reconfigures"),
            pytest.param(_BLOCK_RECONFIGURES, 3, id="block-reconfigures"),
        ],
    )
    def test_encoding_code_that_reconfigures_execlog(
        self, tmp_path: Any, path: str, script: str, recorded: int
    ) -> None:
        """Encoding an argument runs Python (a repr); if that code (or another thread meanwhile)
        reconfigures execlog, the encoder in use must stay alive: no crash, every call
        recorded."""
        db = str(tmp_path / "callbacks.db")
        env = {"EXECLOG_PURE_PYTHON": "1" if path == "pure" else "0"}
        proc = run_script(script, db, env=env)
        assert (0, "survived") == (proc.returncode, proc.stdout.strip()), proc.stderr[-2000:]
        assert [(recorded,)] == raw(db, "SELECT COUNT(*) FROM executions")


# -- secrets in unexpected keyword arguments --------------------------------------------------


class TestUnexpectedKeywords:
    @pytest.mark.parametrize("path", ["c", "pure"])
    def test_secret_named_keyword_is_redacted(
        self, db: str, monkeypatch: pytest.MonkeyPatch, path: str
    ) -> None:
        """A keyword the function does not take is still an input key: named like a secret, it
        is stored as "[REDACTED]" (README: secret keys at any depth of inputs), whether or not
        another argument holds a nested object."""

        def connect(host, options=None):
            return host

        c_traced, py_traced = decorate_both(monkeypatch, connect)
        traced = c_traced if path == "c" else py_traced
        for _ in range(2):
            with pytest.raises(TypeError):
                traced("db", password="hunter2")
            with pytest.raises(TypeError):
                traced("db", options={"a": 1}, password="hunter2")
        found = rows(db)
        assert 4 == len(found)
        for row in found:
            assert "hunter2" not in row["inputs"]
            assert "[REDACTED]" == json.loads(row["inputs"])["password"]


# -- what a review of the C code found ----------------------------------------------------------

_INTERRUPT_IN_CALLBACK = """
import execlog
from execlog import _encoding
original = _encoding.Redactor.may_contain
armed = [False]

def may_contain(self, data):
    if armed[0]:
        armed[0] = False
        raise KeyboardInterrupt  # stands for Ctrl-C landing in this Python frame
    return original(self, data)

_encoding.Redactor.may_contain = may_contain

@execlog.traced_execution
def f(cfg):
    return 1

f(0)
f(0)
for label, run in [
    ("call", lambda: f({"nested": {"x": 1}})),
    ("block", lambda: execlog.execution("b", inputs={"a": {"b": 1}}).__enter__()),
]:
    armed[0] = True
    try:
        run()
        print(label, "lost")
    except KeyboardInterrupt:
        print(label, "raised")
"""

_INPUTS_REPLACED_WHILE_ENCODED = """
import execlog
with execlog.execution("warm-up"):
    pass

class Replaces:
    def __repr__(self):
        block._inputs = None  # drops the last reference to the dict being encoded
        return "r"

block = execlog.execution("b", inputs={"a": Replaces()})
with block:
    pass
first, second = {}, {}
print("survived" if first is not second else "freed twice")
"""

_ARGUMENTS_DROPPED_WHILE_BOUND = """
import functools, sys
import execlog
execlog.configure(db=sys.argv[1])

class Victim:
    payload = "alive"

class Drops:
    armed = False

    def __repr__(self):
        if Drops.armed:
            Drops.armed = False
            # the partial's argument tuple (which the call's arguments are borrowed from) goes
            partial.__setstate__((traced, (), None, None))
        return "Drops()"

@execlog.traced_execution
def traced(victim, drops):
    return victim.payload

traced(Victim(), Drops())
traced(Victim(), Drops())  # the C path from the second call on
partial = functools.partial(traced, Victim())
Drops.armed = True
print(partial(Drops()))
"""


class TestReviewedHazards:
    """Faults a review of ``_speedups.c`` found, each shown on both paths."""

    @pytest.mark.parametrize("path", ["c", "pure"])
    def test_arguments_dropped_while_they_are_bound(self, tmp_path: Any, path: str) -> None:
        """A repr run while the inputs are encoded that drops what the caller held the
        arguments by: the function still gets live arguments (they are owned until it returns)."""
        malloc = os.environ.get("PYTHONMALLOC") or "debug"  # .ci/sanitizers sets "malloc"
        env = {"EXECLOG_PURE_PYTHON": "1" if path == "pure" else "0", "PYTHONMALLOC": malloc}
        proc = run_script(_ARGUMENTS_DROPPED_WHILE_BOUND, str(tmp_path / "args.db"), env=env)
        assert (0, "alive") == (proc.returncode, proc.stdout.strip()), proc.stderr[-2000:]

    @pytest.mark.parametrize("path", ["c", "pure"])
    def test_keyboard_interrupt_in_a_callback_propagates(self, tmp_path: Any, path: str) -> None:
        """Ctrl-C arriving while execlog runs Python code for a call (the redactor, a repr)
        reaches the program, as on the Python path; it is not swallowed."""
        env = {"EXECLOG_PURE_PYTHON": "1" if path == "pure" else "0"}
        proc = run_script(_INTERRUPT_IN_CALLBACK, str(tmp_path / "ki.db"), env=env)
        assert 0 == proc.returncode, proc.stderr[-2000:]
        assert ["call raised", "block raised"] == proc.stdout.split("\n")[:2]

    @pytest.mark.parametrize("path", ["c", "pure"])
    def test_block_inputs_replaced_while_encoded(self, tmp_path: Any, path: str) -> None:
        """A repr that drops the block's inputs while they are encoded frees nothing twice."""
        env = {"EXECLOG_PURE_PYTHON": "1" if path == "pure" else "0"}
        proc = run_script(_INPUTS_REPLACED_WHILE_ENCODED, str(tmp_path / "uaf.db"), env=env)
        assert (0, "survived") == (proc.returncode, proc.stdout.strip()), proc.stderr[-2000:]

    def test_block_clock_starts_after_its_inputs_are_encoded(self, db: str) -> None:
        """A block's duration is its own code: encoding its inputs comes before the clock."""

        class Slow:
            def __repr__(self) -> str:
                time.sleep(0.05)
                return "slow"

        with execlog.execution("warm-up"):
            pass
        before_us = (time.perf_counter_ns() + RECORDER.clock_offset) // 1000  # rows' clock
        with execlog.execution("slow-inputs", inputs={"x": Slow()}):
            pass
        assert execlog.flush()
        row = rows(db, "name = ?", ("slow-inputs",))[0]
        assert row["duration_ms"] < 45
        assert row["started_at"] - before_us >= 45_000

    def test_an_uninitialised_call_spec_is_refused(self) -> None:
        """A ``CallSpec`` made without ``__init__`` raises TypeError instead of crashing."""
        speedups = _native.SPEEDUPS
        assert speedups is not None
        blank = speedups.CallSpec.__new__(speedups.CallSpec)
        for kind in ("plain", "coroutine"):
            with pytest.raises(TypeError):
                speedups.TracedFunction(kind, blank)
        with pytest.raises(TypeError):
            speedups.begin(blank, (), {})
        with pytest.raises(TypeError):
            speedups.begin_bound(blank, None, (), {})

    def test_a_call_spec_is_initialised_once(self) -> None:
        """Re-running ``__init__`` on a live ``CallSpec`` (which calls may be using) is refused."""

        @execlog.traced_execution
        def f(a: int) -> int:
            return a

        spec = f._execlog_target
        assert type(spec).__name__ == "CallSpec"
        with pytest.raises(TypeError):
            spec.__init__(f, spec, (), (), print, print)

    def test_install_refuses_another_recorder(self) -> None:
        """The extension's state is process-wide: a second recorder is refused (ImportError),
        so that it, or a sub-interpreter's execlog, uses the Python path."""
        speedups = _native.SPEEDUPS
        assert speedups is not None
        other = execlog._recorder.Recorder()
        with pytest.raises(ImportError):
            speedups.install(
                handle_type=ExecutionHandle,
                recorder=other,
                config_type=execlog._config.Config,
                channel_type=execlog._writer.Channel,
                spec_type=_Spec,
                encoder_type=execlog._encoding.Encoder,
                redactor_type=execlog._encoding.Redactor,
                current=execlog._context.current,
                dumps=orjson.dumps,
                options=execlog._encoding._OPTIONS,
                redacted=execlog._encoding.REDACTED,
                empty=inspect.Parameter.empty,
                env_data=None,
                env_keys=(b"A", b"B"),
                complete=_spec.complete,
                end=_spec.end,
                report=_spec.report_internal,
            )
        assert _fastpath.READY

    def test_running_row_marked_before_it_is_written(self, db: str) -> None:
        """The writer marks an execution's ``running`` row as written before writing it, so an
        end racing the write queues its final row as final (never dropped on a full queue)."""
        seen: list[bool] = []
        backend_write = execlog._storage.sqlite.SQLiteBackend.write

        def write(self: Any, rows_: Any, running: Any, dropped: int) -> int:
            if running:
                seen.append(handle._running_written)
            return backend_write(self, rows_, running, dropped)

        with execlog.execution("long") as handle, pytest.MonkeyPatch.context() as patch:
            patch.setattr(execlog._storage.sqlite.SQLiteBackend, "write", write)
            assert execlog.flush()
        assert execlog.flush()
        assert [True] == seen
        assert ["success"] == [r["status"] for r in rows(db, "name = ?", ("long",))]


class TestStaleBuild:
    """A compiled extension from other sources than the Python code is not used."""

    def test_an_extension_of_another_interface_version_is_ignored(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``_native.load()`` returns None when the extension's ``ABI`` differs."""
        monkeypatch.setattr(_native, "ABI", _native.ABI + 1)
        assert _native.load() is None
        monkeypatch.setattr(_native, "ABI", _native.ABI - 1)
        assert _native.load() is not None


def test_unsampled_roots_swap_the_context_mapping_where_the_layout_is_known() -> None:
    """CPython 3.10 to 3.13 with the GIL: the layouts mark_enter relies on passed the check."""
    assert SPEEDUPS.swap_context_vars() is (sys.version_info < (3, 14))


def test_setting_up_sampling_again_marks_with_the_new_stand_in(db: str) -> None:
    """The marked mapping kept for the next root is dropped with the stand-in it holds."""
    speedups: Any = SPEEDUPS

    @execlog.traced_execution
    def root() -> object:
        return current.get()

    execlog.configure(sample_rate=0.0)
    assert root() is UNSAMPLED  # on the C path: marks and keeps the pair
    stand_in = UnsampledExecution.__new__(UnsampledExecution)
    speedups.set_sampling(UnsampledExecution, stand_in, _ENV_SAMPLED_KEY)
    try:
        assert root() is stand_in
        assert current.get() is None
    finally:
        speedups.set_sampling(UnsampledExecution, UNSAMPLED, _ENV_SAMPLED_KEY)
    assert root() is UNSAMPLED
    assert current.get() is None


def test_setting_up_sampling_leaks_nothing() -> None:
    speedups: Any = SPEEDUPS
    args = (UnsampledExecution, UNSAMPLED, _ENV_SAMPLED_KEY)
    speedups.set_sampling(*args)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5_000):
            speedups.set_sampling(*args)  # each checks the layout in a fresh context
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000  # two mappings a check leaked: about 1.3 MB here
