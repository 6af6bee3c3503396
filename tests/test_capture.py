"""Capturing values: cost bounded by the payload limit, code run meanwhile unrecorded, and
per-parameter control of what is captured.

Every test runs on the C fast path and on the pure-Python path.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import execlog
from conftest import rows
from execlog import _encoding
from execlog._encoding import PREVIEW_BYTES, Encoder, Redactor, _Budget, _clean

pytestmark = pytest.mark.usefixtures("implementation")

LIMIT = 65_536


def _one(db: str, name: str) -> dict[str, Any]:
    [row] = rows(db, "name = ?", (name,))
    return row


def _record(value: Any) -> dict[str, Any]:
    """Pass ``value`` to a traced function that returns it; the stored inputs and output."""

    @execlog.traced_execution(name="echo")
    def echo(x: Any) -> Any:
        return x

    assert echo(value) is value
    return {}


def _echoed(db: str) -> tuple[Any, Any]:
    row = _one(db, "echo")
    return json.loads(row["inputs"]), json.loads(row["output"])


class Counting(Mapping[str, int]):
    """A large mapping that counts how many of its items were read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0

    def __getitem__(self, key: str) -> int:
        self.read += 1
        return int(key)

    def __iter__(self) -> Iterator[str]:
        for i in range(self.n):
            self.read += 1
            yield str(i)

    def __len__(self) -> int:
        return self.n


class CountingList(list):  # type: ignore[type-arg]
    """A large list subclass that counts the items iterated."""

    def __init__(self, n: int) -> None:
        super().__init__(range(n))
        self.read = 0

    def __iter__(self) -> Iterator[int]:
        for item in super().__iter__():
            self.read += 1
            yield item


@dataclasses.dataclass
class Batch:
    """A record holding a large payload."""

    name: str
    rows: list[int]


class HugeRepr:
    """An object with no JSON form and a 5 MB repr."""

    def __repr__(self) -> str:
        return "H" * 5_000_000


def _assert_huge_marker(text: str, length: int | None, begins: str) -> dict[str, Any]:
    """A marker for a value far over the limit: size unknown, length given (for a value that
    has a len()), within the limit."""
    assert len(text.encode()) <= LIMIT
    marker = json.loads(text)
    assert {"truncated", "size", "preview"} | ({"length"} if length is not None else set()) == set(
        marker
    )
    assert marker["truncated"] is True
    assert marker["size"] is None
    assert length == marker.get("length")
    assert marker["preview"].startswith(begins)
    assert len(marker["preview"].encode()) <= PREVIEW_BYTES
    return marker


class TestBoundedCapture:
    @pytest.mark.parametrize(
        ("value", "begins"),
        [
            (bytearray(10_000_000), "\"bytearray(b'\\\\x00"),
            (bytes(10_000_000), "\"b'\\\\x00\\\\x00"),
            (list(range(1_000_000)), "[0,1,2,3,"),
            ({str(i): i for i in range(100_000)}, '{"0":0,"1":1,'),
            ("x" * 10_000_000, '"xxxxxxxx'),
            (tuple(range(1_000_000)), "[0,1,2,"),
            (set(range(1_000_000)), "["),
            (Batch("b", list(range(1_000_000))), '{"name":"b","rows":[0,1,2,'),
            ([["y" * 1_000_000] * 10] * 10, '[["yyyy'),
        ],
        ids=[
            "bytearray",
            "bytes",
            "list",
            "dict",
            "str",
            "tuple",
            "set",
            "dataclass",
            "nested",
        ],
    )
    def test_huge_values_become_markers(self, db: str, value: Any, begins: str) -> None:
        """A value far beyond the limit is stored as the marker: its preview is the beginning
        of its JSON, its size unknown, its length given; the call gets its own object back."""
        _record(value)
        row = _one(db, "echo")
        _assert_huge_marker(row["inputs"], 1, '{"x":' + begins)
        _assert_huge_marker(row["output"], getattr(value, "__len__", lambda: None)(), begins)

    @pytest.mark.parametrize(
        ("value", "begins"),
        [
            (collections.deque(range(1_000_000)), "deque([0, 1, 2,"),
            (array.array("d", range(1_000_000)), "array('d', [0.0, 1.0,"),
            (memoryview(bytes(10_000_000)), "<memory at"),
        ],
        ids=["deque", "array", "memoryview"],
    )
    def test_huge_containers_without_json_are_bounded_reprs(
        self, db: str, value: Any, begins: str
    ) -> None:
        """A large container orjson cannot encode is stored as its repr, bounded while it is
        produced (reprlib): a short string, not the whole value's text."""
        _record(value)
        _, output = _echoed(db)
        assert isinstance(output, str)
        assert output.startswith(begins)
        assert len(output) < 2000

    def test_preview_is_the_exact_beginning(self, db: str) -> None:
        """The preview of a value over the limit is byte for byte the beginning of the JSON the
        whole value encodes to, whatever its mix of types and however deep it is cut."""
        execlog.configure(max_payload_bytes=4096)
        value = {
            "ids": list(range(5000)),
            "names": [f"n{i}" for i in range(100)],
            "nested": [{"a": [1.5, "é" * 3, None, True], "b": {"c": "z" * 300}}] * 200,
        }
        _record(value)
        _, output = _echoed(db)
        full = orjson.dumps(value).decode()
        assert output["size"] in (None, len(full.encode()))
        assert full.startswith(output["preview"])
        assert len(output["preview"]) > 1000

    def test_work_is_bounded_by_the_limit(self, db: str) -> None:
        """Capturing a large mapping, list or record reads only as many items as the limit can
        show, not the whole value."""
        mapping, listing = Counting(1_000_000), CountingList(1_000_000)
        _record(mapping)
        _record(listing)
        for value in (mapping, listing):
            assert value.read < 2 * LIMIT, type(value).__name__
        for row in rows(db, "name = ?", ("echo",)):
            assert json.loads(row["output"])["truncated"] is True

    def test_huge_repr_is_cut(self, db: str) -> None:
        """An object whose own repr is huge is stored as the first characters of its repr."""
        _record(HugeRepr())
        _, output = _echoed(db)
        assert output.startswith("HHHH")
        assert output.endswith("more chars]")
        assert len(output) < 2000

    def test_moderately_large_value_has_its_exact_size(self, db: str) -> None:
        """Over the limit but within a few times it: encoded whole, the marker has the size."""
        execlog.configure(max_payload_bytes=1000)
        value = "w" * 1500
        _record(value)
        _, output = _echoed(db)
        assert {"truncated": True, "size": 1502, "length": 1500} == {
            k: output[k] for k in ("truncated", "size", "length")
        }
        assert ('"' + value).startswith(output["preview"])

    def test_secret_in_a_huge_value_is_redacted_in_the_preview(self, db: str) -> None:
        """Redaction applies to what is kept of a huge value: secret keys and URL passwords."""
        value = {
            "password": "hunter2-never-stored",
            "dsn": "postgres://etl:hunter2-never-stored@db1/prod",
            "rows": list(range(1_000_000)),
        }
        _record(value)
        row = _one(db, "echo")
        assert "hunter2" not in row["inputs"] + row["output"]
        preview = json.loads(row["output"])["preview"]
        assert preview.startswith('{"password":"[REDACTED]","dsn":"postgres://etl:****@db1/prod"')

    def test_a_url_cut_in_its_password_leaves_no_part_of_it(self, db: str) -> None:
        """A preview that ends inside a URL's password masks what it shows of it."""
        execlog.configure(max_payload_bytes=300)
        url = "postgres://etl:" + "s" * 5000 + "@db1/prod"
        _record([url] * 10)
        row = _one(db, "echo")
        assert "sss" not in row["output"]
        assert "postgres://etl:****" in json.loads(row["output"])["preview"]

    def test_generator_stops_encoding_past_the_limit(self, db: str) -> None:
        """Items a generator yields past the limit are counted, not encoded."""
        encoded: list[int] = []

        class Item:
            def __init__(self, i: int) -> None:
                self.i = i

            def __repr__(self) -> str:
                encoded.append(self.i)
                return "item-" + "z" * 100

        @execlog.traced_execution(name="produce")
        def produce(n: int) -> Iterator[Item]:
            for i in range(n):
                yield Item(i)

        assert 10_000 == sum(1 for _ in produce(10_000))
        output = json.loads(_one(db, "produce")["output"])
        assert output["truncated"] is True
        assert 10_000 == output["length"]
        assert output["size"] is None
        assert len(encoded) < 1000


class TestDeeplyNested:
    """A big value nested deep is measured all the way down, by the C measure and by the
    Python one, so it is never encoded whole (orjson would take up to 254 levels)."""

    @pytest.mark.parametrize("measure", ["c", "python"])
    @pytest.mark.parametrize("depth", [150, 205, 240, 260, 400])
    def test_a_big_value_buried_deep_is_bounded(
        self, monkeypatch: pytest.MonkeyPatch, measure: str, depth: int
    ) -> None:
        if measure == "python":
            monkeypatch.setattr(_encoding, "_native_exceeds", None)
        elif _encoding._native_exceeds is None:
            pytest.skip("execlog._speedups is not built here")
        big = CountingList(2_000_000)
        value: Any = big
        for _ in range(depth):
            value = [value]
        data = Encoder(LIMIT, Redactor()).encode_bytes(value)
        assert len(data) <= LIMIT
        stored = json.loads(data)
        # a marker, or (beyond 200 levels) the nesting kept down to where copies are cut
        assert isinstance(stored, dict) or b'"<nested too deep: ' in data
        assert big.read < 2 * LIMIT

    @pytest.mark.parametrize("depth", [205, 260])
    def test_a_small_value_buried_deep_is_kept_to_the_cut(self, depth: int) -> None:
        value: Any = {"password": "hunter2", "n": 1}
        for _ in range(depth):
            value = [value]
        data = Encoder(LIMIT, Redactor()).encode_bytes(value)
        assert b"hunter2" not in data
        json.loads(data)


class TestBudgetedCopy:
    def test_redaction_walks_only_what_is_kept(self) -> None:
        """The Python copy asks about at most as many keys as the budget can show."""
        asked: list[str] = []

        class Spy(Redactor):
            __slots__ = ()

            def is_secret(self, key: object) -> bool:
                asked.append(str(key))
                return super().is_secret(key)

        value = {f"key{i}": {"inner": i} for i in range(100_000)}
        budget = _Budget(4096)
        _clean(value, Spy(), 0, set(), budget)
        assert 0 <= budget.cut <= 2
        assert len(asked) < 4096

    def test_marker_within_limit_for_every_limit(self) -> None:
        """Whatever the limit, a huge value's marker fits in it."""
        value = list(range(1_000_000))
        for limit in (40, 100, 999, 4096, 100_000):
            data = Encoder(limit, Redactor()).encode_bytes(value)
            assert len(data) <= limit
            json.loads(data)


SECRET = "tok-Zq8v-never-stored"

#: Big strings; the last is a URL whose password (20,000 p's) must never be stored, even cut.
BIG_TEXT = st.sampled_from(
    [
        "a" * 100_000,
        "é" * 40_000,
        "<\"'>\\" * 20_000,
        "postgres://etl:" + "p" * 20_000 + "@db1/prod",
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | BIG_TEXT
)
KEYS = st.text(max_size=10) | st.sampled_from(["password", "api_key", "X-Api-Key", "authToken"])
LARGE = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(KEYS, children, max_size=6)
        | st.builds(lambda c, n: [c] * n, children, st.sampled_from([1, 1000, 100_000]))
    ),
    max_leaves=30,
)


def _bury(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = {"level": level, "password": SECRET, "more": [value]}
    return value


class TestLargeAndDeepValues:
    @pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # big reprs
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(value=LARGE, depth=st.integers(0, 300), limit=st.sampled_from([200, 4096, LIMIT]))
    def test_stored_json_is_valid_bounded_and_secret_free(
        self, db: str, value: Any, depth: int, limit: int
    ) -> None:
        """Large and deeply nested values with secrets inside: every stored field is strict
        JSON within the limit and holds no secret."""
        execlog.configure(max_payload_bytes=limit)
        buried = _bury(value, depth)
        with execlog.execution("deep", inputs={"v": buried}, tags={"t": buried}) as ex:
            ex.set_output(buried)
        assert execlog.flush(timeout=30)
        with execlog.open_store(db) as store:
            stored = store.get(ex.execution_id)
        assert stored is not None
        conn_rows = rows(db, "execution_id = ?", (ex.execution_id,))
        for column in ("inputs", "output", "tags"):
            text = conn_rows[0][column]
            assert len(text.encode()) <= limit
            orjson.loads(text)  # strict: no NaN, valid UTF-8
            if depth:
                assert SECRET not in text
            assert "ppppp" not in text


class TestCaptureNeverRecords:
    def test_traced_code_reached_from_a_repr_is_not_recorded(self, db: str) -> None:
        """A __repr__ (or a record's field) calling traced code while execlog captures a value:
        the call runs and returns, but is not recorded."""
        ran: list[int] = []

        @execlog.traced_execution
        def as_posix(n: int) -> str:
            ran.append(n)
            return f"/p/{n}"

        class Path:
            def __init__(self, n: int) -> None:
                self.n = n

            def __repr__(self) -> str:
                with execlog.execution("inside-repr"):
                    return f"Path({as_posix(self.n)!r})"

        @execlog.traced_execution(name="open_path")
        def open_path(path: Path) -> Path:
            return path

        open_path(Path(1))
        open_path(Path(2))
        assert ran  # the repr ran, with its traced call
        assert ["open_path", "open_path"] == [r["name"] for r in rows(db)]
        assert '{"path":"Path(\'/p/1\')"}' == rows(db)[0]["inputs"]

    def test_recursion_through_its_own_argument(self, db: str) -> None:
        """A traced function reachable from its own argument's repr does not recurse."""

        class Node:
            def __repr__(self) -> str:
                return f"Node({describe(self)})"

        @execlog.traced_execution
        def describe(node: Node) -> str:
            return "described"

        assert "described" == describe(Node())
        [row] = rows(db)
        assert '{"node":"Node(described)"}' == row["inputs"]

    def test_no_current_execution_while_capturing(self, db: str) -> None:
        """Code run during capture sees no current execution, and inject() leaves carriers
        alone."""
        seen: list[Any] = []

        class Probe:
            def __repr__(self) -> str:
                seen.append(execlog.current_execution())
                seen.append(execlog.inject({}))
                return "probe"

        with execlog.execution("outer", inputs={"p": Probe()}):
            pass
        assert [None, {}] == seen
        assert ["outer"] == [r["name"] for r in rows(db)]

    def test_len_and_fields_run_unrecorded(self, db: str) -> None:
        """``__len__`` and record fields read during capture do not record either."""

        @execlog.traced_execution
        def size() -> int:
            return 3

        class Sized(Mapping[str, int]):
            def __getitem__(self, key: str) -> int:
                return size()

            def __iter__(self) -> Iterator[str]:
                return iter(["a", "b", "c"])

            def __len__(self) -> int:
                return size()

        @execlog.traced_execution(name="take")
        def take(m: Sized) -> int:
            return 1

        take(Sized())
        assert ["take"] == [r["name"] for r in rows(db)]


class TestPerArgumentControl:
    def test_capture_inputs_names_the_parameters_to_keep(self, db: str) -> None:
        """``capture_inputs=(names)`` records those parameters and leaves the others out,
        never encoding them."""

        class Untouchable:
            def __repr__(self) -> str:  # pragma: no cover - must never run
                raise AssertionError("encoded an excluded parameter")

        @execlog.traced_execution(capture_inputs=("epochs", "lr"))
        def train(data: Any, epochs: int, lr: float = 0.01) -> str:
            return "ok"

        assert "ok" == train(Untouchable(), 3)
        assert "ok" == train(Untouchable(), epochs=5, lr=0.1)
        assert [{"epochs": 3, "lr": 0.01}, {"epochs": 5, "lr": 0.1}] == [
            json.loads(r["inputs"]) for r in rows(db)
        ]

    def test_exclude_leaves_parameters_out(self, db: str) -> None:
        """``exclude=`` names parameters never captured: absent, not a marker."""

        class Model:
            @execlog.traced_execution(exclude=("weights",))
            def fit(self, weights: Any, *, steps: int = 1, **options: Any) -> int:
                return steps

        assert 2 == Model().fit(bytes(50_000_000), steps=2, verbose=True)
        assert {"steps": 2, "options": {"verbose": True}} == json.loads(rows(db)[0]["inputs"])

    @pytest.mark.parametrize(
        "options",
        [{"capture_inputs": 3}, {"capture_inputs": [1]}, {"exclude": 3}, {"exclude": [""]}],
    )
    def test_bad_names_raise(self, options: dict[str, Any]) -> None:
        """Names must be str: anything else is a ConfigError naming the option."""
        with pytest.raises(execlog.ConfigError, match=next(iter(options))):
            execlog.traced_execution(**options)
