"""Every call shape is recorded alike on both paths, and begins in C where the accelerator is
built: keywords, keyword-only and positional-only parameters, ``*args``/``**kwargs``, instance
methods, classmethods and staticmethods (in both decorator orders), and ``async`` of each.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import pickle
from typing import Any

import pytest

import execlog
from conftest import rows
from execlog import _fastpath
from execlog._spec import Spec

pytestmark = pytest.mark.usefixtures("implementation")


@pytest.fixture
def python_begins(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of executions begun by the Python path; the C path never calls ``Spec.begin``."""
    names: list[str] = []
    original = Spec.begin

    def begin(self: Spec, instance: Any, args: Any, kwargs: Any) -> Any:
        names.append(self.name)
        return original(self, instance, args, kwargs)

    monkeypatch.setattr(Spec, "begin", begin)
    return names


def _shapes() -> dict[str, Any]:
    """Traced functions of every shape, decorated now (after the path is chosen)."""
    T = execlog.traced_execution  # noqa: N806 - reads like the decorator

    @T(name="pos")
    def pos(a, b=2):
        return a

    @T(name="kwonly")
    def kwonly(a, *, b, c=3):
        return a

    @T(name="posonly")
    def posonly(a, /, b=2, **kw):
        return a

    @T(name="star")
    def star(a, *args, k=1, **kwargs):
        return a

    @T(name="apos")
    async def apos(a, b=2):
        return a

    @T(name="astar")
    async def astar(*args, **kwargs):
        return 1

    class Service:
        factor = 10

        @T(name="method")
        def method(self, a, b=2):
            return a * self.factor

        @T(name="amethod")
        async def amethod(self, a, *, b=2):
            return a

        @T(name="cls_above")
        @classmethod
        def cls_above(cls, a, b=2):
            return cls.factor + a

        @classmethod
        @T(name="cls_below")
        def cls_below(cls, a, b=2):
            return cls.factor + a

        @T(name="static_above")
        @staticmethod
        def static_above(a, b=2):
            return a

        @staticmethod
        @T(name="static_below")
        def static_below(a, b=2):
            return a

        @T(name="acls")
        @classmethod
        async def acls(cls, a):
            return a

        @T(name="astatic")
        @staticmethod
        async def astatic(a):
            return a

    return {**locals(), "obj": Service()}


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


#: (shape, call, expected result, expected inputs)
CALLS = [
    ("pos", lambda s: s["pos"](1), 1, {"a": 1, "b": 2}),
    ("pos", lambda s: s["pos"](1, b=3), 1, {"a": 1, "b": 3}),
    ("pos", lambda s: s["pos"](b=3, a=1), 1, {"a": 1, "b": 3}),
    ("kwonly", lambda s: s["kwonly"](1, b=2), 1, {"a": 1, "b": 2, "c": 3}),
    ("posonly", lambda s: s["posonly"](1, a=5), 1, {"a": 1, "b": 2, "kw": {"a": 5}}),
    (
        "star",
        lambda s: s["star"](1, 2, 3, k=4, z=5),
        1,
        {"a": 1, "args": [2, 3], "k": 4, "kwargs": {"z": 5}},
    ),
    ("star", lambda s: s["star"](1), 1, {"a": 1, "args": [], "k": 1, "kwargs": {}}),
    ("apos", lambda s: s["apos"](1, b=5), 1, {"a": 1, "b": 5}),
    ("astar", lambda s: s["astar"](1, x=2), 1, {"args": [1], "kwargs": {"x": 2}}),
    ("method", lambda s: s["obj"].method(2), 20, {"a": 2, "b": 2}),
    ("method", lambda s: s["obj"].method(2, b=4), 20, {"a": 2, "b": 4}),
    ("method", lambda s: s["Service"].method(s["obj"], 3), 30, {"a": 3, "b": 2}),
    ("amethod", lambda s: s["obj"].amethod(2, b=5), 2, {"a": 2, "b": 5}),
    ("cls_above", lambda s: s["Service"].cls_above(1), 11, {"a": 1, "b": 2}),
    ("cls_above", lambda s: s["obj"].cls_above(1, b=0), 11, {"a": 1, "b": 0}),
    ("cls_below", lambda s: s["Service"].cls_below(1), 11, {"a": 1, "b": 2}),
    ("static_above", lambda s: s["Service"].static_above(1), 1, {"a": 1, "b": 2}),
    ("static_above", lambda s: s["obj"].static_above(1, b=3), 1, {"a": 1, "b": 3}),
    ("static_below", lambda s: s["obj"].static_below(7), 7, {"a": 7, "b": 2}),
    ("acls", lambda s: s["Service"].acls(4), 4, {"a": 4}),
    ("astatic", lambda s: s["obj"].astatic(5), 5, {"a": 5}),
]


class TestCallShapes:
    @pytest.mark.parametrize(
        ("shape", "call", "result", "inputs"),
        CALLS,
        ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)],
    )
    def test_recorded_alike_and_in_c(
        self,
        db: str,
        implementation: str,
        python_begins: list[str],
        shape: str,
        call: Any,
        result: Any,
        inputs: dict[str, Any],
    ) -> None:
        """Inputs in declaration order (defaults in, instance and class out); on the C path,
        no call after the first is begun in Python."""
        shapes = _shapes()
        assert result == _run(call, shapes)  # the first call may refresh the encoder in Python
        del python_begins[:]
        assert result == _run(call, shapes)
        if implementation == "native":
            assert [] == python_begins
        found = rows(db, "name = ?", (shape,))
        assert [inputs, inputs] == [json.loads(r["inputs"]) for r in found]
        assert list(inputs) == list(json.loads(found[0]["inputs"]))  # the order too
        assert {"success"} == {r["status"] for r in found}

    def test_bad_call_raises_as_without_execlog(self, db: str) -> None:
        """A call the function cannot take raises the same TypeError and is recorded as an
        error, whatever its shape."""
        shapes = _shapes()
        for fn, args, kwargs in (
            (shapes["pos"], (), {}),
            (shapes["kwonly"], (1,), {}),
            (shapes["posonly"], (), {"a": 1}),
            (shapes["obj"].method, (1, 2, 3), {}),
        ):
            with pytest.raises(TypeError):
                fn(*args, **kwargs)
        assert 4 <= len([r for r in rows(db) if r["status"] == "error"])


class TestMethodsBehaveAsMethods:
    def test_signature_binding_and_metadata(self) -> None:
        """Bound methods show the function's signature without ``self``; the class attribute
        is the stand-in, with the function's name, docstring and ``__wrapped__``."""
        shapes = _shapes()
        service, obj = shapes["Service"], shapes["obj"]
        assert ["a", "b"] == list(inspect.signature(obj.method).parameters)
        assert ["self", "a", "b"] == list(inspect.signature(service.method).parameters)
        assert ["a", "b"] == list(inspect.signature(service.cls_above).parameters)
        assert obj.method.__self__ is obj
        assert "method" == service.method.__name__
        assert inspect.iscoroutinefunction(obj.amethod)
        assert inspect.iscoroutinefunction(service.acls)
        assert not inspect.iscoroutinefunction(obj.method)

    def test_function_placed_in_a_class_from_elsewhere_is_not_a_method(self, db: str) -> None:
        """A traced module-level function used as a class attribute binds like a function
        would, and its first argument is recorded (it is not the instance by definition)."""

        @execlog.traced_execution(name="helper")
        def helper(first: Any, second: int = 2) -> int:
            return second

        class Holder:
            run = helper

        assert 2 == Holder.run(1)
        assert 2 == helper(1)
        assert [{"first": 1, "second": 2}] * 2 == [json.loads(r["inputs"]) for r in rows(db)]

    def test_methods_pickle_by_name(self) -> None:
        """A traced method of a module-level class pickles like the plain method does (the same
        object where the accelerator made it; wrapt binds anew at each access, so there the
        same function)."""
        restored = pickle.loads(pickle.dumps(Pickled.double))
        assert inspect.unwrap(restored) is inspect.unwrap(Pickled.double)
        if _fastpath.READY:
            assert restored is Pickled.double
        assert 4 == pickle.loads(pickle.dumps(Pickled())).double(2)


@pytest.mark.parametrize("path", ["native", "python"])
def test_methods_pickle_on_both_paths(db: str, path: str) -> None:
    """From the class, bound to an instance, a classmethod: each pickles and still records
    (``PickledOnPython`` was decorated with the accelerator off: wrapt's proxies)."""
    cls: Any = Pickled if path == "native" else PickledOnPython
    if path == "native" and not _fastpath.READY:
        pytest.skip("the accelerator is off here (a pure-Python install, or the python variant)")
    from_class = pickle.loads(pickle.dumps(cls.double))
    assert inspect.unwrap(from_class) is inspect.unwrap(cls.double)
    assert 4 == from_class(cls(), 2)
    assert 6 == pickle.loads(pickle.dumps(cls().double))(3)
    assert 5 == pickle.loads(pickle.dumps(cls.identity))(5)
    assert 3 == len(rows(db))


class Pickled:
    @execlog.traced_execution
    def double(self, x: int) -> int:
        return 2 * x

    @execlog.traced_execution
    @classmethod
    def identity(cls, x: int) -> int:
        return x


_READY, _fastpath.READY = _fastpath.READY, False  # decorated on the Python path, at module level


class PickledOnPython:
    @execlog.traced_execution
    def double(self, x: int) -> int:
        return 2 * x

    @execlog.traced_execution
    @classmethod
    def identity(cls, x: int) -> int:
        return x


_fastpath.READY = _READY
