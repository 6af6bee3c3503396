"""Property-based tests (hypothesis): any argument value, any name, any tags (issue 5).

Recording never changes what a traced function does: whatever its arguments (nested
containers, bytes, nan/inf, huge ints, non-str keys, cycles, objects whose ``__repr__`` raises
or is enormous, objects whose ``__eq__``/``__hash__`` raise) the traced call returns the very
same objects, raises the very same exception and mutates nothing, and every stored payload is
valid JSON within ``max_payload_bytes``. Hostile names and tags are stored and read back exactly
(or truncated with the documented marker) and never alter other rows.
"""

# The house style writes `expected == actual` (STYLE.md, Tests); ruff's SIM300 wants the reverse.

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import execlog
from execlog._encoding import Encoder, Redactor
from test_security import _is_secret

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # each test runs in its own temporary directory
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one database for all examples of a test
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# -- values that misbehave ----------------------------------------------------------------


class Thing:
    """A plain object without a JSON form."""


class BadRepr:
    """``repr()`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


_HUGE = "H" * 1_000_000


class HugeRepr:
    """``repr()`` is a megabyte long."""

    def __repr__(self) -> str:
        return _HUGE


class BadEq:
    """``==`` raises (hashing works, by identity)."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        return id(self)


class BadHash:
    """``hash()`` and ``==`` raise."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


def _cycle(value: Any) -> list[Any]:
    """A list holding ``value`` and a dict that points back at the list."""
    box: list[Any] = [value]
    box.append({"back": box, "value": value})
    return box


ANY_TEXT = st.text(st.characters(exclude_categories=[]), max_size=30)  # lone surrogates too
BIG_INTS = st.sampled_from([2**63, 2**64, -(2**63) - 1, -(2**70), 10**400]) | st.just(-10).map(
    lambda base: base**5001  # beyond sys.get_int_max_str_digits(): str() of it raises
)
HASHABLE = (
    st.none()
    | st.booleans()
    | st.integers()
    | BIG_INTS
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
    | st.binary(max_size=20)
    | st.builds(Thing)
    | st.builds(BadEq)
    | st.builds(BadRepr)
    | st.tuples(st.integers(), ANY_TEXT)
    | st.frozensets(st.integers(), max_size=3)
)
SCALARS = HASHABLE | st.builds(HugeRepr) | st.builds(BadHash) | st.builds(bytearray, st.binary())
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(HASHABLE, children, max_size=4)
        | st.sets(st.integers() | ANY_TEXT, max_size=4)
        | st.builds(_cycle, children)
    ),
    max_leaves=12,
)
LIMITS = st.sampled_from([64, 100, 257, 1024, 65_536])
PARAMETER_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


def _shape(value: Any, seen: set[int] | None = None) -> Any:
    """The identity and structure of ``value`` (ids all the way down; no ``==`` or hash)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return ("seen", id(value))
    if isinstance(value, (list, tuple, dict, set, frozenset, bytearray)):
        seen.add(id(value))
    if isinstance(value, (list, tuple)):
        return (type(value), id(value), tuple(_shape(v, seen) for v in value))
    if isinstance(value, dict):
        return (dict, id(value), tuple((id(k), _shape(v, seen)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return (type(value), id(value), tuple(sorted(id(v) for v in value)))
    if isinstance(value, bytearray):
        return (bytearray, id(value), bytes(value))
    return (type(value), id(value))


# -- the functions under test -------------------------------------------------------------

SEEN: list[str] = []


def _note_execution() -> None:
    handle = execlog.current_execution()
    if handle is not None:
        SEEN.append(handle.execution_id)


def probe(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    _note_execution()
    return args, kwargs


async def async_probe(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    _note_execution()
    await asyncio.sleep(0)
    return args, kwargs


def gen_probe(*args: Any) -> Any:
    _note_execution()
    yield from args


class BoomError(Exception):
    """Raised with the argument as its only arg."""


class UnprintableBoomError(Exception):
    """``str()`` of it raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


def explode(value: Any, kind: type[Exception]) -> None:
    _note_execution()
    raise kind(value)


traced_probe = execlog.traced_execution(probe)
traced_async_probe = execlog.traced_execution(async_probe)
traced_gen_probe = execlog.traced_execution(gen_probe)
traced_explode = execlog.traced_execution(explode)


def _stored(db: str, execution_id: str) -> dict[str, Any]:
    assert execlog.flush(timeout=10)
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM executions WHERE execution_id = ?", (execution_id,))
        found = row.fetchone()
    finally:
        conn.close()
    assert found is not None, f"{execution_id} was not stored"
    return dict(found)


def _assert_bounded_json(text: str | None, limit: int) -> None:
    """Valid (strict) JSON of at most ``limit`` UTF-8 bytes; a marker says it was cut."""
    if text is None:
        return
    assert len(text.encode("utf-8")) <= limit, f"{len(text.encode())} bytes > {limit}"
    value = orjson.loads(text)  # rejects NaN, Infinity and broken UTF-8
    if isinstance(value, dict) and {"truncated", "size", "preview"} <= set(value):
        assert set(value) <= {"truncated", "size", "preview", "length"}
        assert value["truncated"] is True
        assert value["size"] is None or value["size"] > limit
        assert isinstance(value["preview"], str)


def _assert_row_bounded(row: dict[str, Any], limit: int) -> None:
    for column in ("inputs", "output", "tags"):
        _assert_bounded_json(row[column], limit)
    for column in ("error_type", "error_message", "error_stack"):
        if row[column] is not None:
            assert len(row[column].encode("utf-8")) <= limit


def _last_execution() -> str:
    assert SEEN, "the traced function did not run inside an execution"
    return SEEN[-1]


class TestArbitraryArguments:
    @SETTINGS
    @given(
        args=st.lists(VALUES, max_size=3),
        kwargs=st.dictionaries(PARAMETER_NAMES, VALUES, max_size=3),
        limit=LIMITS,
    )
    def test_traced_call_returns_the_same_objects_and_stores_bounded_json(
        self, db: str, args: list[Any], kwargs: dict[str, Any], limit: int
    ) -> None:
        """The traced call returns exactly what the plain call returns, mutates nothing, and
        stores valid JSON within the limit."""
        execlog.configure(max_payload_bytes=limit)
        before = (_shape(args), _shape(kwargs))
        plain_args, plain_kwargs = probe(*args, **kwargs)
        traced_args, traced_kwargs = traced_probe(*args, **kwargs)
        assert [id(a) for a in plain_args] == [id(a) for a in traced_args]
        assert [(k, id(v)) for k, v in plain_kwargs.items()] == [
            (k, id(v)) for k, v in traced_kwargs.items()
        ]
        assert before == (_shape(args), _shape(kwargs))
        row = _stored(db, _last_execution())
        assert "success" == row["status"]
        _assert_row_bounded(row, limit)

    @SETTINGS
    @given(args=st.lists(VALUES, max_size=3), limit=LIMITS)
    def test_traced_coroutine_and_generator_behave_like_the_plain_ones(
        self, db: str, args: list[Any], limit: int
    ) -> None:
        """Same for an async function and a generator (output: the yielded items, bounded)."""
        execlog.configure(max_payload_bytes=limit)
        before = _shape(args)
        result = asyncio.run(traced_async_probe(*args))
        assert [id(a) for a in args] == [id(a) for a in result[0]]
        _assert_row_bounded(_stored(db, _last_execution()), limit)

        assert [id(a) for a in gen_probe(*args)] == [id(a) for a in traced_gen_probe(*args)]
        _assert_row_bounded(_stored(db, _last_execution()), limit)
        assert before == _shape(args)

    @SETTINGS
    @given(value=VALUES, kind=st.sampled_from([BoomError, UnprintableBoomError]), limit=LIMITS)
    def test_exceptions_pass_through_unchanged(
        self, db: str, value: Any, kind: type[Exception], limit: int
    ) -> None:
        """The very exception the function raised reaches the caller; the error is stored
        bounded."""
        execlog.configure(max_payload_bytes=limit)
        with pytest.raises(kind) as plain:
            explode(value, kind)
        with pytest.raises(kind) as traced:
            traced_explode(value, kind)
        assert plain.value.args[0] is value
        assert traced.value.args[0] is value
        assert "explode" == traced.traceback[-1].name  # raised where it was, not by execlog
        row = _stored(db, _last_execution())
        assert "error" == row["status"]
        _assert_row_bounded(row, limit)


class TestEncoder:
    @settings(SETTINGS, max_examples=300)
    @given(value=VALUES, limit=LIMITS)
    def test_encode_never_raises_and_stays_within_the_limit(self, value: Any, limit: int) -> None:
        """The encoder turns any value into valid JSON of at most ``limit`` bytes."""
        data = Encoder(limit, Redactor()).encode_bytes(value)
        _assert_bounded_json(data.decode("utf-8"), limit)

    @settings(SETTINGS, max_examples=300)
    @given(text=ANY_TEXT | st.text(min_size=1000, max_size=5000), limit=LIMITS)
    def test_encode_text_stays_within_the_limit(self, text: str, limit: int) -> None:
        """Error fields are cut to ``limit`` UTF-8 bytes."""
        bounded = Encoder(limit, Redactor()).encode_text(text)
        assert len(bounded.encode("utf-8", "surrogatepass")) <= limit


def _configure_refused(**options: Any) -> str | None:
    """The message of the ConfigError that configure() raises, or None if it accepts."""
    try:
        execlog.configure(**options)
    except execlog.ConfigError as exc:
        return str(exc)
    return None


class TestTinyLimits:
    @pytest.mark.parametrize("limit", [1, 8, 16, 32])
    def test_limit_smaller_than_the_marker_is_refused_or_honoured(
        self, db: str, limit: int
    ) -> None:
        """A limit too small for the truncation marker is refused by configure() (naming the
        option) or honoured by every stored field; never exceeded."""
        refused = _configure_refused(max_payload_bytes=limit)
        if refused is not None:
            assert "max_payload_bytes" in refused
            return
        with pytest.raises(BoomError):
            traced_explode("x" * 1000, BoomError)
        assert "x" * 1000 == traced_probe("y" * 1000, "x" * 1000)[0][1]
        for execution_id in SEEN[-2:]:
            _assert_row_bounded(_stored(db, execution_id), limit)


# -- hostile names and tags ---------------------------------------------------------------

HOSTILE_NAMES = [
    "x'); DROP TABLE executions; --",
    "'; UPDATE executions SET status = 'error' WHERE 1=1; --",
    '" OR ""="',
    "%_*?[]\\",
    "\x00",
    "a\x00b\x00c",
    "ünïcødé 名前 🚀 \u202e\ufeff",
    "N" * 1_000_000,
    "",
]
SAFE_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
NAMES = SAFE_TEXT | st.sampled_from(HOSTILE_NAMES)
TAG_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT
    | st.sampled_from(HOSTILE_NAMES),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(SAFE_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)
TAGS = st.dictionaries(SAFE_TEXT | st.sampled_from(HOSTILE_NAMES[:-2]), TAG_VALUES, max_size=4)


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[REDACTED]" if _is_secret(k) else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _expected_tags(tags: dict[str, Any], limit: int) -> Any:
    """What the store must give back: the tags redacted, or the marker if too big."""
    if not tags:
        return {}
    redacted = _redacted(tags)
    size = len(orjson.dumps(redacted))
    if size <= limit:
        return redacted
    return {"truncated": True, "size": size, "length": len(tags)}


class TestHostileNamesAndTags:
    @SETTINGS
    @given(name=NAMES, kind=NAMES, tags=TAGS)
    def test_names_and_tags_round_trip_and_touch_nothing_else(
        self, db: str, name: str, kind: str, tags: dict[str, Any]
    ) -> None:
        """Whatever the name, kind and tags, they are read back exactly (tags redacted, or
        truncated with the marker) and every other row is unchanged."""
        limit = 65_536
        with execlog.execution("bystander-before", inputs={"n": 1}, tags={"t": 1}) as first:
            pass
        with execlog.execution(name, kind=kind, tags=tags) as hostile:
            pass

        def hostile_fn() -> int:
            _note_execution()
            return 1

        traced = execlog.traced_execution(name=name, kind=kind, tags=tags)(hostile_fn)
        assert 1 == traced()
        traced_id = _last_execution()
        with execlog.execution("bystander-after", inputs={"n": 2}, tags={"t": 2}) as last:
            pass
        assert execlog.flush(timeout=10)

        expected_tags = _expected_tags(tags, limit)
        with execlog.open_store(db) as store:
            got = store.get(hostile.execution_id)
            assert got is not None
            assert (name, kind) == (got.name, got.kind)
            if "truncated" in expected_tags and "preview" in got.tags:
                # the size is exact when the tags were encoded whole, else unknown (null)
                assert got.tags["size"] in (None, expected_tags["size"])
                expected_tags["size"] = got.tags["size"]
                assert expected_tags == {k: got.tags[k] for k in ("truncated", "size", "length")}
            else:
                assert expected_tags == got.tags
            got = store.get(traced_id)
            assert got is not None
            assert (name or hostile_fn.__qualname__, kind) == (got.name, got.kind)  # "": default
            assert 1 <= len(store.list(name=name, limit=1000))
            for handle, n in ((first, 1), (last, 2)):
                bystander = store.get(handle.execution_id)
                assert bystander is not None
                assert ({"n": n}, {"t": n}, "success") == (
                    bystander.inputs,
                    bystander.tags,
                    bystander.status,
                )
        conn = sqlite3.connect(db)
        try:
            assert (
                []
                == conn.execute(
                    "SELECT name FROM executions WHERE name LIKE 'bystander%' "
                    "AND (status <> 'success' OR inputs NOT LIKE '{\"n\":_}')"
                ).fetchall()
            )
        finally:
            conn.close()


LONE_SURROGATE = "bad \ud800 text"


class TestLoneSurrogates:
    @pytest.mark.timeout(30)
    def test_lone_surrogates_are_stored_escaped_and_other_rows_arrive(self, db: str) -> None:
        """A text field holding a lone surrogate (not encodable as UTF-8) is stored escaped,
        like payload text, and never holds back the records around it."""
        fields = ["name", "kind", "trigger_kind", "run_id", "correlation_id"]
        with execlog.execution("before") as before:
            pass
        hostile = {}
        for field in fields:
            options = {"name": "hostile", field: LONE_SURROGATE}
            with execlog.execution(**options) as handle:
                pass
            hostile[field] = handle.execution_id
        with execlog.execution("after") as after:
            pass
        assert execlog.flush(timeout=3) is True
        escaped = LONE_SURROGATE.encode("utf-8", "backslashreplace").decode()
        with execlog.open_store(db) as store:
            assert store.get(before.execution_id) is not None
            assert store.get(after.execution_id) is not None
            stored = {field: store.get(execution_id) for field, execution_id in hostile.items()}
        assert dict.fromkeys(fields, escaped) == {
            field: getattr(got, field, None) for field, got in stored.items()
        }
