"""Encoding of captured values: redaction, unencodable values, truncation, capture switches.

Most tests go end to end (a traced call or an ``execution()`` block, then the stored row);
the last classes test ``execlog._encoding`` directly.
"""

# The house style writes `expected == actual` (STYLE.md, Tests); ruff's SIM300 wants the reverse.

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import orjson
import pydantic
import pytest

import execlog
from conftest import rows
from execlog._encoding import (
    REDACTED,
    Encoder,
    Redactor,
    bounded_repr,
    mask_repr,
    truncate_json,
    truncate_text,
)

SECRET = "hunter2-Zq8v-do-not-store"  # never appears in any source line that is recorded

SECRET_KEYS = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "auth",
    "cookie",
    "session",
    "credential",
    "privatekey",
    # variants: case, separators, substrings
    "PASSWORD",
    "API_KEY",
    "api-key",
    "x-Auth-Token",
    "db_password",
    "Private-Key",
    "private_key",
    "SessionId",
    "client_secret",
    "Set-Cookie",
    "Credentials",
    "refresh_token",
    "pass_wd",  # a run of words: pass + wd
    "api_key",
    "X-Api-Key",
    "clientSecret",
    "auth_token",
    "sessionId",
    "APIKey",
    "user.password",
    "my pwd",
    "jwt",
    "X-CSRF-Token",
    "xsrfToken",
    "session_count",  # the word rule: exempt it with redact_exempt=
]

#: Keys that hold a secret word inside a longer word: not secret (whole words only).
PLAIN_KEYS = [
    "user",
    "name",
    "path",
    "limit",
    "key",
    "pass",
    "word",
    "tok",
    "count",
    "url",
    "author",
    "Author",
    "max_tokens",
    "tokenizer",
    "authority",
    "sessions_total",
    "passwords_reset_count",
    "secretary",
]


def _strict_loads(text: str) -> Any:
    """``json.loads`` that rejects the NaN/Infinity extensions Python accepts by default."""

    def reject(constant: str) -> Any:
        msg = f"not valid JSON: {constant}"
        raise ValueError(msg)

    return json.loads(text, parse_constant=reject)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _one_row(db: str) -> dict[str, Any]:
    found = rows(db)
    assert 1 == len(found)
    return found[0]


def _record_everywhere(name: str, value: Any) -> None:
    """Record ``value`` as inputs, output and tags of one execution block."""
    with execlog.execution(name, inputs=value, tags=value) as ex:
        ex.set_output(value)


# -- redaction ------------------------------------------------------------------------------


class TestRedactionByDefault:
    @pytest.mark.parametrize("key", SECRET_KEYS)
    def test_secret_key_redacted_in_inputs_output_and_tags(self, db: str, key: str) -> None:
        """A secret-looking key has its value replaced by "[REDACTED]" in all three fields."""
        _record_everywhere("blk", {key: SECRET, "user": "alice"})
        row = _one_row(db)
        expected = {key: "[REDACTED]", "user": "alice"}
        assert expected == json.loads(row["inputs"])
        assert expected == json.loads(row["output"])
        assert expected == json.loads(row["tags"])

    @pytest.mark.parametrize("key", PLAIN_KEYS)
    def test_plain_key_untouched(self, db: str, key: str) -> None:
        """Keys that contain no secret word keep their values."""
        value = {key: "visible", "nested": {key: [1, 2]}}
        _record_everywhere("blk", value)
        row = _one_row(db)
        assert value == json.loads(row["inputs"])
        assert value == json.loads(row["output"])
        assert value == json.loads(row["tags"])

    def test_redacted_marker_is_exact_string(self) -> None:
        """The replacement value is exactly the string "[REDACTED]"."""
        assert "[REDACTED]" == REDACTED

    def test_parameter_named_like_a_secret(self, db: str) -> None:
        """A traced function's secret-named parameter is redacted in its inputs."""

        @execlog.traced_execution
        def login(user: str, password: str, api_key: str | None = None) -> str:
            return user

        assert "alice" == login("alice", SECRET, api_key=SECRET)
        row = _one_row(db)
        expected = {"user": "alice", "password": "[REDACTED]", "api_key": "[REDACTED]"}
        assert expected == json.loads(row["inputs"])
        assert "alice" == json.loads(row["output"])

    def test_nested_dicts_inside_lists_inside_dicts(self, db: str) -> None:
        """Secrets are found at any depth: dict -> list -> dict -> dict."""
        value = {
            "config": {
                "servers": [
                    {"host": "db1", "db_password": SECRET, "port": 5432},
                    {"host": "api", "headers": {"Authorization": SECRET, "Accept": "json"}},
                    [{"x-Auth-Token": SECRET}],
                ],
                "retries": 3,
            }
        }
        expected = {
            "config": {
                "servers": [
                    {"host": "db1", "db_password": "[REDACTED]", "port": 5432},
                    {"host": "api", "headers": {"Authorization": "[REDACTED]", "Accept": "json"}},
                    [{"x-Auth-Token": "[REDACTED]"}],
                ],
                "retries": 3,
            }
        }

        @execlog.traced_execution
        def connect(settings: dict[str, Any]) -> dict[str, Any]:
            return settings

        assert value is connect(value)
        row = _one_row(db)
        assert {"settings": expected} == json.loads(row["inputs"])
        assert expected == json.loads(row["output"])

    def test_whole_value_under_secret_key_redacted(self, db: str) -> None:
        """A container under a secret key is replaced whole, not walked."""
        _record_everywhere("blk", {"session": {"id": SECRET, "items": [SECRET]}})
        row = _one_row(db)
        assert {"session": "[REDACTED]"} == json.loads(row["inputs"])

    def test_dataclass_fields(self, db: str) -> None:
        """Dataclass fields named like secrets are redacted, as inputs and as output."""

        @dataclasses.dataclass
        class Creds:
            user: str
            password: str

        @dataclasses.dataclass
        class Conn:
            host: str
            creds: list[Creds]

        @execlog.traced_execution
        def open_conn(conn: Conn) -> Creds:
            return conn.creds[0]

        conn = Conn("db1", [Creds("alice", SECRET)])
        assert conn.creds[0] is open_conn(conn)
        row = _one_row(db)
        expected_creds = {"user": "alice", "password": "[REDACTED]"}
        assert {"conn": {"host": "db1", "creds": [expected_creds]}} == json.loads(row["inputs"])
        assert expected_creds == json.loads(row["output"])

    def test_tags_from_decorator_tag_call_and_execution(self, db: str) -> None:
        """Static decorator tags, ``ex.tag(...)`` and ``execution(tags=...)`` are all redacted."""

        @execlog.traced_execution(tags={"token": SECRET, "team": "data"})
        def step() -> None:
            return None

        with execlog.execution("outer", tags={"cookie": SECRET}) as ex:
            ex.tag(SessionId=SECRET, rows=3)
            ex.tag({"meta": {"client_secret": SECRET}})
            step()
        by_name = {r["name"].rsplit(".", 1)[-1]: r for r in rows(db)}
        assert {"token": "[REDACTED]", "team": "data"} == json.loads(by_name["step"]["tags"])
        expected = {
            "cookie": "[REDACTED]",
            "SessionId": "[REDACTED]",
            "rows": 3,
            "meta": {"client_secret": "[REDACTED]"},
        }
        assert expected == json.loads(by_name["outer"]["tags"])

    def test_generator_items_redacted(self, db: str) -> None:
        """What a generator yields is redacted like any output."""

        @execlog.traced_execution
        def tokens() -> Any:
            yield {"name": "a", "token": SECRET}
            yield {"name": "b", "token": SECRET}

        assert [{"name": "a", "token": SECRET}, {"name": "b", "token": SECRET}] == list(tokens())
        row = _one_row(db)
        expected = [{"name": "a", "token": "[REDACTED]"}, {"name": "b", "token": "[REDACTED]"}]
        assert expected == json.loads(row["output"])

    @pytest.mark.parametrize(
        ("label", "extra"),
        [
            ("set", {1, 2}),
            ("bytes", b"raw"),
            ("big-int", 2**70),
            ("tuple-key", {(1, 2): "x"}),
            ("object", object()),
        ],
    )
    def test_secret_next_to_unencodable_value(self, db: str, label: str, extra: Any) -> None:
        """A sibling that orjson cannot encode does not disable redaction."""
        _record_everywhere(label, {"password": SECRET, "extra": extra})
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            assert SECRET not in row[field]
            assert "[REDACTED]" == json.loads(row[field])["password"]

    def test_secret_next_to_lone_surrogate_string(self, db: str) -> None:
        """A string orjson refuses (lone surrogate) does not make the secret leak via repr."""
        _record_everywhere("surrogate", {"password": SECRET, "note": "bad \ud800 text"})
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            assert SECRET not in row[field]

    def test_secret_next_to_cycle(self, db: str) -> None:
        """A cyclic sibling does not disable redaction."""
        loop: list[Any] = [1]
        loop.append(loop)
        _record_everywhere("cycle", {"password": SECRET, "loop": loop})
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            assert SECRET not in row[field]
            assert "[REDACTED]" == json.loads(row[field])["password"]

    @pytest.mark.parametrize("depth", [10, 63, 66, 80, 150])
    def test_secret_deep_in_nesting(self, db: str, depth: int) -> None:
        """Redaction applies at any depth, however deeply nested the secret is."""
        value: Any = {"password": SECRET}
        for _ in range(depth):
            value = {"a": value}
        _record_everywhere("deep", value)
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            assert SECRET not in row[field]
            _strict_loads(row[field])


class TestRedactionExtraNames:
    def test_decorator_redact_adds_names(self, db: str) -> None:
        """``redact=("ssn",)`` on the decorator redacts ``ssn`` keys (any case, any depth)."""

        @execlog.traced_execution(redact=("ssn",))
        def person(name: str, ssn: str) -> dict[str, Any]:
            return {"name": name, "SSN": ssn, "spouse": {"user-ssn": ssn, "age": 40}}

        person("bob", "123-45-6789")
        row = _one_row(db)
        assert {"name": "bob", "ssn": "[REDACTED]"} == json.loads(row["inputs"])
        expected = {
            "name": "bob",
            "SSN": "[REDACTED]",
            "spouse": {"user-ssn": "[REDACTED]", "age": 40},
        }
        assert expected == json.loads(row["output"])

    def test_decorator_redact_keeps_default_words(self, db: str) -> None:
        """Extra names add to the default list, they do not replace it."""

        @execlog.traced_execution(redact=("ssn",))
        def person(ssn: str, password: str, name: str) -> None:
            return None

        person("123-45-6789", SECRET, "bob")
        row = _one_row(db)
        expected = {"ssn": "[REDACTED]", "password": "[REDACTED]", "name": "bob"}
        assert expected == json.loads(row["inputs"])

    def test_decorator_redact_is_per_function(self, db: str) -> None:
        """A name added on one decorator does not redact another function's keys."""

        @execlog.traced_execution(redact=("ssn",))
        def with_redact(ssn: str) -> None:
            return None

        @execlog.traced_execution
        def without_redact(ssn: str) -> None:
            return None

        with_redact("1")
        without_redact("2")
        by_name = {r["name"].rsplit(".", 1)[-1]: r for r in rows(db)}
        assert {"ssn": "[REDACTED]"} == json.loads(by_name["with_redact"]["inputs"])
        assert {"ssn": "2"} == json.loads(by_name["without_redact"]["inputs"])

    def test_configure_redact_adds_names(self, db: str) -> None:
        """``configure(redact=("ssn",))`` applies to blocks and to traced functions."""
        execlog.configure(redact=("ssn",))

        @execlog.traced_execution
        def person(ssn: str, name: str) -> dict[str, str]:
            return {"Patient_SSN": ssn}

        with execlog.execution("blk", inputs={"ssn": "1", "password": SECRET}, tags={"ssn": "1"}):
            person("2", "bob")
        by_name = {r["name"]: r for r in rows(db)}
        block = by_name["blk"]
        assert {"ssn": "[REDACTED]", "password": "[REDACTED]"} == json.loads(block["inputs"])
        assert {"ssn": "[REDACTED]"} == json.loads(block["tags"])
        traced = next(r for n, r in by_name.items() if n.endswith("person"))
        assert {"ssn": "[REDACTED]", "name": "bob"} == json.loads(traced["inputs"])
        assert {"Patient_SSN": "[REDACTED]"} == json.loads(traced["output"])

    def test_configure_after_decoration_combines_with_decorator(self, db: str) -> None:
        """``configure(redact=..., max_payload_bytes=...)`` after decoration still applies."""

        @execlog.traced_execution(redact=("ssn",))
        def person(ssn: str, dob: str, blob: str) -> str:
            return blob

        execlog.configure(redact=("dob",), max_payload_bytes=500)
        person("1", "2", "short")
        person("1", "2", "x" * 3000)
        small, big = rows(db)
        expected = {"ssn": "[REDACTED]", "dob": "[REDACTED]", "blob": "short"}
        assert expected == json.loads(small["inputs"])
        assert _size(big["inputs"]) <= 500
        assert json.loads(big["inputs"])["truncated"] is True

    def test_truncated_preview_is_redacted(self, db: str) -> None:
        """The preview of a truncated payload never shows a secret value."""
        execlog.configure(max_payload_bytes=300)
        value = {"token": SECRET, "padding": "p" * 5000}
        _record_everywhere("blk", value)
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            marker = json.loads(row[field])
            assert marker["truncated"] is True
            assert SECRET not in row[field]
            assert marker["preview"].startswith('{"token":"[REDACTED]"')


class TestSecretsNeverOnDisk:
    def test_database_files_do_not_contain_secret(self, db: str) -> None:
        """The raw bytes of the database and its WAL never contain a redacted value."""

        @dataclasses.dataclass
        class Creds:
            user: str
            private_key: str

        @execlog.traced_execution(tags={"x-Auth-Token": SECRET})
        def call(password: str, headers: dict[str, str], creds: Creds) -> dict[str, Any]:
            return {"session": SECRET, "items": [{"apiKey": SECRET}]}

        @execlog.traced_execution
        def stream(n: int) -> Any:
            for _ in range(n):
                yield {"cookie": SECRET}

        for _ in range(5):
            call(SECRET, {"Authorization": SECRET}, Creds("u", SECRET))
            assert 3 == len(list(stream(3)))
            with execlog.execution("blk", inputs={"db_password": SECRET}) as ex:
                ex.tag(Credential=SECRET)
                ex.set_output({"secret": SECRET})
        assert 15 == len(rows(db))

        needle = SECRET.encode()
        files = [Path(db), Path(db + "-wal")]
        contents = {str(p): p.read_bytes() for p in files if p.exists()}
        assert str(Path(db)) in contents
        assert b"call" in b"".join(contents.values())  # the rows are really in these files
        for name, data in contents.items():
            assert needle not in data, f"secret found in {name}"
        execlog.shutdown()  # checkpoint and close; check again
        for p in files:
            if p.exists():
                assert needle not in p.read_bytes(), f"secret found in {p}"


# -- records: namedtuples, pydantic and attrs models, reprs ------------------------------------


class Login(NamedTuple):
    user: str
    password: str


class Point(NamedTuple):
    x: int
    y: int


class ApiCall(pydantic.BaseModel):
    url: str
    api_key: str
    login: dict[str, str]


class Account(pydantic.BaseModel):
    user: str
    call: ApiCall


@attrs.define
class Session:
    user: str
    session_id: str


class Client:
    """What many client objects look like: a repr showing their settings."""

    def __init__(self, host: str, token: str) -> None:
        self.host = host
        self.token = token

    def __repr__(self) -> str:
        return f"Client(host={self.host!r}, token={self.token!r}, retries=3)"


class Hidden(pydantic.BaseModel):
    user: str
    dsn: str = pydantic.Field(repr=False)


@attrs.define
class HiddenAttrs:
    user: str
    dsn: str = attrs.field(repr=False)


@attrs.define
class Half:
    user: str
    password: str


class FakeTuple(tuple[int, ...]):
    """A tuple with a ``_fields`` that does not describe it: not a namedtuple."""

    __slots__ = ()
    _fields = ("a",)

    def _asdict(self) -> dict[str, int]:
        return {"a": self[0]}


class TestRecordsAndReprs:
    """Field names are keys: records are stored as objects and redacted like dicts."""

    def test_namedtuple_is_an_object_with_secret_fields_redacted(
        self, db: str, implementation: str
    ) -> None:
        @execlog.traced_execution
        def login(creds: Login, where: Point) -> list[Login]:
            return [creds]

        login(Login("bob", SECRET), Point(1, 2))
        row = _one_row(db)
        expected = {"user": "bob", "password": REDACTED}
        assert {"creds": expected, "where": {"x": 1, "y": 2}} == json.loads(row["inputs"])
        assert [expected] == json.loads(row["output"])

    def test_pydantic_model_is_its_fields_redacted(self, db: str, implementation: str) -> None:
        @execlog.traced_execution
        def fetch(account: Account) -> ApiCall:
            return account.call

        call = ApiCall(url="https://api", api_key=SECRET, login={"Password": SECRET, "u": "x"})
        fetch(Account(user="bob", call=call))
        row = _one_row(db)
        login = {"Password": REDACTED, "u": "x"}
        stored_call = {"url": "https://api", "api_key": REDACTED, "login": login}
        assert {"account": {"user": "bob", "call": stored_call}} == json.loads(row["inputs"])
        assert stored_call == json.loads(row["output"])

    def test_pydantic_secret_types_stay_masked(self, db: str, implementation: str) -> None:
        class Settings(pydantic.BaseModel):
            dsn: pydantic.SecretStr

        @execlog.traced_execution
        def connect(settings: Settings) -> None:
            return None

        connect(Settings(dsn=pydantic.SecretStr(SECRET)))
        stored = json.loads(_one_row(db)["inputs"])
        assert SECRET not in json.dumps(stored)
        assert "**********" in stored["settings"]["dsn"]

    def test_attrs_class_is_an_object_redacted(self, db: str, implementation: str) -> None:
        @execlog.traced_execution
        def resume(state: Session) -> None:
            return None

        resume(Session("bob", SECRET))
        expected = {"state": {"user": "bob", "session_id": REDACTED}}
        assert expected == json.loads(_one_row(db)["inputs"])

    def test_secret_in_a_repr_is_masked(self, db: str, implementation: str) -> None:
        """An object stored as its repr has its secret-looking ``name=value`` pairs masked."""

        @execlog.traced_execution
        def use(client: Client) -> Client:
            return client

        client = Client("db.local", SECRET)
        assert use(client) is client
        row = _one_row(db)
        masked = f"Client(host='db.local', token={REDACTED}, retries=3)"
        assert {"client": masked} == json.loads(row["inputs"])
        assert masked == json.loads(row["output"])

    def test_configured_words_mask_reprs_too(self, db: str, implementation: str) -> None:
        execlog.configure(redact=("ssn",))

        class Person:
            def __repr__(self) -> str:
                return f"Person(name='bob', SSN='{SECRET}')"

        with execlog.execution("blk", inputs={"p": Person()}) as ex:
            ex.set_output([Person()])
        row = _one_row(db)
        assert {"p": f"Person(name='bob', SSN={REDACTED})"} == json.loads(row["inputs"])
        assert [f"Person(name='bob', SSN={REDACTED})"] == json.loads(row["output"])

    def test_decorator_words_mask_reprs_of_that_function_only(
        self, db: str, implementation: str
    ) -> None:
        class Person:
            def __repr__(self) -> str:
                return "Person(name='bob', ssn='123')"

        @execlog.traced_execution(redact=("ssn",))
        def private(p: Person) -> None:
            return None

        @execlog.traced_execution
        def public(p: Person) -> None:
            return None

        private(Person())
        public(Person())
        stored = {r["name"].rsplit(".", 1)[-1]: json.loads(r["inputs"]) for r in rows(db)}
        assert {"p": f"Person(name='bob', ssn={REDACTED})"} == stored["private"]
        assert {"p": "Person(name='bob', ssn='123')"} == stored["public"]

    def test_fields_kept_out_of_the_repr_are_kept_out(self, db: str, implementation: str) -> None:
        """``repr=False`` (pydantic, attrs) is how a class hides a field: it is not stored."""

        @execlog.traced_execution
        def connect(model: Hidden, attrs_record: HiddenAttrs) -> Hidden:
            return model

        connect(Hidden(user="bob", dsn=SECRET), HiddenAttrs("bob", SECRET))
        row = _one_row(db)
        expected = {"model": {"user": "bob"}, "attrs_record": {"user": "bob"}}
        assert expected == json.loads(row["inputs"])
        assert {"user": "bob"} == json.loads(row["output"])

    def test_record_whose_fields_cannot_be_read_is_a_string(
        self, db: str, implementation: str
    ) -> None:
        """The program is unaffected; the record is stored as its (failing) repr's stand-in."""
        half = Half("bob", SECRET)
        object.__delattr__(half, "password")

        @execlog.traced_execution
        def check(record: Half) -> str:
            return "ok"

        assert "ok" == check(half)
        row = _one_row(db)
        assert "success" == row["status"]
        stored = json.loads(row["inputs"])["record"]
        assert isinstance(stored, str)
        assert "Half" in stored

    def test_tuple_with_foreign_fields_is_not_a_record(self, db: str, implementation: str) -> None:
        @execlog.traced_execution
        def take(value: FakeTuple) -> None:
            return None

        take(FakeTuple((1, 2, 3)))
        assert {"value": "(1, 2, 3)"} == json.loads(_one_row(db)["inputs"])

    def test_records_and_reprs_never_reach_the_file(self, db: str, implementation: str) -> None:
        @execlog.traced_execution(tags={"client": Client("h", SECRET)})
        def call(creds: Login, state: Session, account: Account) -> list[Any]:
            return [creds, state, Client("h", SECRET)]

        api = ApiCall(url="u", api_key=SECRET, login={"password": SECRET})
        for _ in range(3):
            call(Login("u", SECRET), Session("u", SECRET), Account(user="u", call=api))
        execlog.shutdown()
        needle = SECRET.encode()
        for path in (Path(db), Path(db + "-wal")):
            if path.exists():
                assert needle not in path.read_bytes(), path


class TestMaskRepr:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Login(user='bob', password='x')", "Login(user='bob', password=[REDACTED])"),
            ('Cfg(api_key="a,b", n=1)', "Cfg(api_key=[REDACTED], n=1)"),
            ("<Conn host=db token=abc123 user=x>", "<Conn host=db token=[REDACTED] user=x>"),
            ("Cfg(key=SecretStr('**'), ok=1)", "Cfg(key=SecretStr('**'), ok=1)"),
            ("Cfg(Auth=Basic('u', 'p'), ok=1)", "Cfg(Auth=[REDACTED], ok=1)"),
            ("Outer(inner={'secret': 1, 'x': 2})", "Outer(inner={'secret': [REDACTED], 'x': 2})"),
            ("Outer(i=Inner(cookie='c', k=1))", "Outer(i=Inner(cookie=[REDACTED], k=1))"),
            ('{"Session-Id": "s1", "n": 2}', '{"Session-Id": [REDACTED], "n": 2}'),
            ("Cfg(tokens=['a', 'b'])", "Cfg(tokens=['a', 'b'])"),  # not the word "token"
            ("Cfg(token=['a', 'b'])", "Cfg(token=[REDACTED])"),
            (
                "P(args=['mysql', '--password=x'], rc=0)",
                "P(args=['mysql', '--password=[REDACTED]'], rc=0)",
            ),
            (
                "H([('Authorization', 'Bearer a'), ('X', 'y')])",
                "H([('Authorization', [REDACTED]), ('X', 'y')])",
            ),
            ("S({b'cookie': b'c=1', b'host': b'h'})", "S({b'cookie': [REDACTED], b'host': b'h'})"),
            (
                "C({'db.password': 'x', 'api token': 'y'})",
                "C({'db.password': [REDACTED], 'api token': [REDACTED]})",
            ),
            ("C(password=<Secret x>, n=1)", "C(password=[REDACTED], n=1)"),
            ("C(auth=('user', 'pass'), name='bob')", "C(auth=[REDACTED], name='bob')"),
            ("C(secret={'k': {'v': [1, (2)]}}, n=2)", "C(secret=[REDACTED], n=2)"),
            ("C(token='it\\'s, x', n=1)", "C(token=[REDACTED], n=1)"),
            ("'https://x/?api_key=a&token=c'", "'https://x/?api_key=[REDACTED]&token=[REDACTED]'"),
            ("Dsn('postgres://u:pw@db/x')", "Dsn('postgres://u:****@db/x')"),
            ("Dsn('postgres://db/x', port=1)", "Dsn('postgres://db/x', port=1)"),
            ("Thing(user='bob', path='/x')", "Thing(user='bob', path='/x')"),
            ("plain text with no pairs", "plain text with no pairs"),
        ],
    )
    def test_forms(self, text: str, expected: str) -> None:
        assert expected == mask_repr(text)

    def test_value_left_open_by_the_cut_is_masked(self) -> None:
        """A repr cut inside a secret value has that value masked up to the cut."""

        class Long:
            def __repr__(self) -> str:
                return "Long(" + "a=1, " * 5 + f"password='{SECRET}'" + ")"

        out = bounded_repr(Long(), 45)  # the cut falls inside the secret
        assert out.startswith(f"Long(a=1, a=1, a=1, a=1, a=1, password={REDACTED}...[")
        assert SECRET[:3] not in out

    @pytest.mark.parametrize("opening", ["'", '"', "[", "{", "Secret("])
    def test_value_open_at_the_end_is_masked(self, opening: str) -> None:
        assert f"Cfg(n=1, token={REDACTED}" == mask_repr(f"Cfg(n=1, token={opening}abc, d")

    def test_deeply_nested_pairs(self) -> None:
        """Pairs nested hundreds deep are masked in one pass (no recursion)."""
        text = "a=(" * 400 + "token='x'" + ")" * 400
        assert "a=(" * 400 + f"token={REDACTED}" + ")" * 400 == mask_repr(text)

    def test_huge_repr_is_cut_before_it_is_masked(self) -> None:
        """A 1 MB repr is cut to the limit first; what is kept is masked."""

        class Words:
            def __repr__(self) -> str:
                return "token" + "H" * 1_000_000

        out = bounded_repr(Words())
        assert out.startswith("tokenHHH")
        assert out.endswith("[999005 more chars]")


# -- values orjson cannot encode ----------------------------------------------------------


class Thing:
    """A plain object without JSON support."""


class BadRepr:
    """An object whose ``__repr__`` raises."""

    def __repr__(self) -> str:
        msg = "no repr for you"
        raise RuntimeError(msg)


class HugeRepr:
    """An object whose ``__repr__`` is one megabyte long."""

    def __repr__(self) -> str:
        return "H" * 1_000_000


def _cyclic_list() -> list[Any]:
    value: list[Any] = [1, "two"]
    value.append(value)
    return value


def _cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"name": "node"}
    value["self"] = value
    return value


def _mutual_cycle() -> dict[str, Any]:
    a: dict[str, Any] = {"kind": "a"}
    b: dict[str, Any] = {"kind": "b", "peer": [a]}
    a["peer"] = b
    return a


UNENCODABLE = {
    "object": Thing,
    "bad-repr": BadRepr,
    "huge-repr": HugeRepr,
    "bytes": lambda: b"\x00\xffraw bytes",
    "bytearray": lambda: bytearray(b"abc"),
    "set": lambda: {1, 2, 3},
    "frozenset": lambda: frozenset({"a"}),
    "int-key": lambda: {1: "a", 2: "b"},
    "tuple-key": lambda: {(1, 2): "a"},
    "none-key": lambda: {None: "a"},
    "object-key": lambda: {Thing(): "a"},
    "bad-repr-key": lambda: {BadRepr(): "a"},
    "int-2**64": lambda: 2**64,
    "int-negative-2**70": lambda: -(2**70),
    "int-beyond-str-digits": lambda: 10**5000,
    "big-int-key": lambda: {10**5000: "a"},
    "big-int-in-list": lambda: [1, 2**65, {"n": 2**100}],
    "nan": lambda: math.nan,
    "inf": lambda: math.inf,
    "-inf": lambda: -math.inf,
    "nan-in-dict": lambda: {"x": math.nan, "y": [math.inf]},
    "cyclic-list": _cyclic_list,
    "cyclic-dict": _cyclic_dict,
    "mutual-cycle": _mutual_cycle,
    "lone-surrogate": lambda: "a\ud800b",
    "type": lambda: Thing,
    "function": lambda: _cyclic_list,
    "generator-object": lambda: (i for i in range(3)),
    "deep-list": lambda: _deep_list(500),
}


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _identity(x: Any) -> Any:
    return x


class TestUnencodableValues:
    @pytest.mark.parametrize("limit", [1000, 65_536])
    @pytest.mark.parametrize("label", sorted(UNENCODABLE))
    def test_traced_call_unchanged_and_payload_valid(self, db: str, label: str, limit: int) -> None:
        """The traced call returns the very same object; inputs/output are valid, bounded JSON."""
        execlog.configure(max_payload_bytes=limit)
        value = UNENCODABLE[label]()
        traced = execlog.traced_execution(_identity)
        assert _identity(value) is traced(value)
        row = _one_row(db)
        assert "success" == row["status"]
        for field in ("inputs", "output"):
            text = row[field]
            assert text is not None
            _strict_loads(text)
            assert _size(text) <= limit

    @pytest.mark.parametrize("label", sorted(UNENCODABLE))
    def test_execution_block_payloads_valid(self, db: str, label: str) -> None:
        """``execution(inputs=...)``, ``set_output`` and ``tag`` accept any value too."""
        execlog.configure(max_payload_bytes=1000)
        value = UNENCODABLE[label]()
        with execlog.execution("blk", inputs={"v": value}) as ex:
            ex.tag(v=value)
            ex.set_output(value)
        row = _one_row(db)
        for field in ("inputs", "output", "tags"):
            _strict_loads(row[field])
            assert _size(row[field]) <= 1000

    def test_custom_object_is_its_repr(self, db: str) -> None:
        """An object orjson does not know is stored as its repr string."""
        thing = Thing()
        execlog.traced_execution(_identity)(thing)
        row = _one_row(db)
        assert {"x": repr(thing)} == json.loads(row["inputs"])
        assert repr(thing) == json.loads(row["output"])

    def test_raising_repr_gives_a_string(self, db: str) -> None:
        """An object whose repr raises is stored as some placeholder string naming its type."""
        execlog.traced_execution(_identity)(BadRepr())
        stored = json.loads(_one_row(db)["inputs"])["x"]
        assert isinstance(stored, str)
        assert "BadRepr" in stored

    def test_huge_repr_is_bounded(self, db: str) -> None:
        """A megabyte-long repr is cut to a short prefix, not stored whole (default limit)."""
        execlog.traced_execution(_identity)(HugeRepr())
        stored = json.loads(_one_row(db)["output"])
        assert isinstance(stored, str)
        assert stored.startswith("HHHH")
        assert len(stored) < 10_000

    def test_bytes_is_its_repr(self, db: str) -> None:
        """Bytes are stored as their repr."""
        execlog.traced_execution(_identity)(b"ab\x00")
        assert repr(b"ab\x00") == json.loads(_one_row(db)["output"])

    def test_set_keeps_its_items(self, db: str) -> None:
        """A set is stored either as a list of its items or as its repr."""
        execlog.traced_execution(_identity)({3, 1, 2})
        stored = json.loads(_one_row(db)["output"])
        if isinstance(stored, list):
            assert [1, 2, 3] == sorted(stored)
        else:
            assert repr({1, 2, 3}) == stored

    def test_non_str_keys_become_strings(self, db: str) -> None:
        """int, tuple and None keys are stored as string keys, values kept."""
        execlog.traced_execution(_identity)({1: "int", (1, 2): "tuple", None: "none"})
        stored = json.loads(_one_row(db)["output"])
        assert ["int", "none", "tuple"] == sorted(stored.values())
        assert "int" == stored["1"]
        assert all(isinstance(k, str) for k in stored)

    def test_big_int_keeps_its_digits(self, db: str) -> None:
        """An int beyond 64 bits is stored as its decimal repr."""
        execlog.traced_execution(_identity)({"n": 2**64, "m": -(2**70)})
        stored = json.loads(_one_row(db)["output"])
        assert {"n": str(2**64), "m": str(-(2**70))} == stored

    def test_int_beyond_str_digit_limit(self, db: str) -> None:
        """An int too long for ``str()`` is stored as a short placeholder string."""
        execlog.traced_execution(_identity)(10**5000)
        stored = json.loads(_one_row(db)["output"])
        assert isinstance(stored, str)
        assert len(stored) < 2000

    def test_cycle_keeps_the_acyclic_part(self, db: str) -> None:
        """A cyclic list keeps its first items; the back-reference becomes a placeholder."""
        execlog.traced_execution(_identity)(_cyclic_list())
        stored = _strict_loads(_one_row(db)["output"])
        assert [1, "two"] == stored[:2]

    def test_async_function_with_unencodable_values(self, db: str) -> None:
        """Async traced functions fall back the same way."""

        @execlog.traced_execution
        async def echo(x: Any) -> Any:
            await asyncio.sleep(0)
            return x

        value = _cyclic_dict()
        assert value is asyncio.run(echo(value))
        row = _one_row(db)
        _strict_loads(row["inputs"])
        _strict_loads(row["output"])


# -- truncation -----------------------------------------------------------------------------


def _assert_marker(
    text: str, original: Any, limit: int, *, size_known: bool = False
) -> dict[str, Any]:
    """``text`` is the truncation marker for ``original`` and fits in ``limit`` bytes.

    ``size`` is the exact JSON size when the value was encoded whole (``size_known``: one
    within a small multiple of the limit), else null (capture stopped early); ``length`` is
    ``len(original)``.
    """
    assert _size(text) <= limit
    marker = _strict_loads(text)
    assert ["length", "preview", "size", "truncated"] == sorted(marker)
    assert marker["truncated"] is True
    full = orjson.dumps(original)
    assert marker["size"] in (None, len(full))
    if size_known:
        assert len(full) == marker["size"]
    assert len(original) == marker["length"]
    preview = marker["preview"]
    assert isinstance(preview, str)
    assert preview, "the preview should show the first part"
    assert full.decode().startswith(preview)
    return marker


class TestTruncation:
    def test_inputs_truncated(self, db: str) -> None:
        """Inputs over ``max_payload_bytes`` are stored as the marker, within the limit."""
        execlog.configure(max_payload_bytes=1000)
        text = "x" * 5000
        traced = execlog.traced_execution(_identity)
        assert text == traced(text)
        row = _one_row(db)
        _assert_marker(row["inputs"], {"x": text}, 1000)
        _assert_marker(row["output"], text, 1000)

    def test_output_truncated_alone(self, db: str) -> None:
        """Each field is bounded on its own: small inputs stay whole when the output is cut."""
        execlog.configure(max_payload_bytes=1000)

        @execlog.traced_execution
        def build(n: int) -> list[int]:
            return list(range(n))

        assert list(range(2000)) == build(2000)
        row = _one_row(db)
        assert {"n": 2000} == json.loads(row["inputs"])
        _assert_marker(row["output"], list(range(2000)), 1000)

    def test_tags_truncated(self, db: str) -> None:
        """Tags over the limit are stored as the marker."""
        execlog.configure(max_payload_bytes=1000)
        tags = {"blob": "t" * 3000, "n": 1}
        with execlog.execution("blk", inputs={"a": 1}) as ex:
            ex.tag(tags)
        row = _one_row(db)
        assert {"a": 1} == json.loads(row["inputs"])
        _assert_marker(row["tags"], tags, 1000)

    def test_exactly_at_limit_kept_whole(self, db: str) -> None:
        """A payload of exactly ``max_payload_bytes`` is stored as it is; one byte more is cut."""
        execlog.configure(max_payload_bytes=1000)
        traced = execlog.traced_execution(_identity)
        fits = "a" * 998  # JSON "aaa..." is 1000 bytes
        too_big = "b" * 999
        traced(fits)
        traced(too_big)
        first, second = rows(db)
        assert fits == json.loads(first["output"])
        _assert_marker(second["output"], too_big, 1000)

    @pytest.mark.parametrize("limit", [100, 257, 1000, 4096])
    def test_marker_fits_various_limits(self, db: str, limit: int) -> None:
        """The marker fits whatever the limit, even with characters JSON must escape."""
        execlog.configure(max_payload_bytes=limit)
        value = {"q": '"\\' * 5000, "ctl": "\x01\n" * 1000}
        traced = execlog.traced_execution(_identity)
        traced(value)
        _assert_marker(_one_row(db)["output"], value, limit)

    @pytest.mark.parametrize(
        "text",
        ["é" * 2000, "😀" * 1000, "日本語" * 700, "aé日😀" * 400, "\u0301" * 3000],
        ids=["latin", "emoji", "cjk", "mixed", "combining"],
    )
    def test_unicode_preview_stays_valid(self, db: str, text: str) -> None:
        """Cutting multi-byte text never leaves broken UTF-8 or replacement characters."""
        execlog.configure(max_payload_bytes=1001)
        execlog.traced_execution(_identity)(text)
        marker = _assert_marker(_one_row(db)["output"], text, 1001)
        assert "\ufffd" not in marker["preview"]

    def test_error_fields_bounded(self, db: str) -> None:
        """error_message and error_stack are bounded by ``max_payload_bytes``."""
        execlog.configure(max_payload_bytes=1000)

        @execlog.traced_execution
        def fail() -> None:
            raise ValueError("E" * 100_000)

        with pytest.raises(ValueError, match=r"^E+$") as info:
            fail()
        assert 100_000 == len(str(info.value))  # the user's exception is untouched
        row = _one_row(db)
        assert "error" == row["status"]
        assert "ValueError" == row["error_type"]
        assert _size(row["error_message"]) <= 1000
        assert row["error_message"].startswith("EEEE")
        assert _size(row["error_stack"]) <= 1000
        assert row["error_stack"]

    def test_error_fields_bounded_unicode(self, db: str) -> None:
        """Multi-byte error messages are cut on a character boundary and stay bounded."""
        execlog.configure(max_payload_bytes=999)
        with pytest.raises(RuntimeError), execlog.execution("blk"):
            raise RuntimeError("é😀" * 20_000)
        row = _one_row(db)
        assert _size(row["error_message"]) <= 999
        assert row["error_message"].startswith("é😀é😀")
        assert "\ufffd" not in row["error_message"]
        assert _size(row["error_stack"]) <= 999

    def test_error_fields_bounded_at_default_limit(self, db: str) -> None:
        """With the default limit a huge message is still bounded to 65 536 bytes."""
        with pytest.raises(KeyError), execlog.execution("blk"):
            raise KeyError("k" * 500_000)
        row = _one_row(db)
        assert _size(row["error_message"]) <= 65_536
        assert _size(row["error_stack"]) <= 65_536

    def test_generator_output_truncated_with_item_count(self, db: str) -> None:
        """A generator yielding a lot has its output cut; ``length`` counts every item."""
        execlog.configure(max_payload_bytes=1000)
        items = [f"item-{i:05d}" for i in range(2000)]

        @execlog.traced_execution
        def produce() -> Any:
            yield from items

        assert items == list(produce())
        row = _one_row(db)
        assert "success" == row["status"]
        _assert_marker(row["output"], items, 1000)

    @pytest.mark.parametrize(
        "items",
        [["x" * 5000], ["a", "y" * 5000], [{"k": "z" * 3000}, 1, 2]],
        ids=["one-big", "small-then-big", "big-dict-first"],
    )
    def test_generator_big_single_item_truncated(self, db: str, items: list[Any]) -> None:
        """An item bigger than the limit cuts the output; ``length`` counts every item."""
        execlog.configure(max_payload_bytes=1000)

        @execlog.traced_execution
        def produce() -> Any:
            yield from items

        assert items == list(produce())
        _assert_marker(_one_row(db)["output"], items, 1000)

    def test_async_generator_output_truncated_with_item_count(self, db: str) -> None:
        """The same holds for async generators."""
        execlog.configure(max_payload_bytes=1000)
        items = [{"i": i, "word": "é" * (i % 7)} for i in range(1500)]

        @execlog.traced_execution
        async def produce() -> Any:
            for item in items:
                yield item

        async def consume() -> list[Any]:
            return [item async for item in produce()]

        assert items == asyncio.run(consume())
        _assert_marker(_one_row(db)["output"], items, 1000)

    def test_generator_output_small_kept_whole(self, db: str) -> None:
        """A generator yielding little has its items stored as a list."""

        @execlog.traced_execution
        def produce() -> Any:
            yield 1
            yield {"a": [2]}

        assert [1, {"a": [2]}] == list(produce())
        assert [1, {"a": [2]}] == json.loads(_one_row(db)["output"])


# -- capture switches -------------------------------------------------------------------------


class TestCaptureSwitches:
    def test_capture_off_globally(self, db: str) -> None:
        """``configure(capture_inputs=False, capture_output=False)`` stores NULL for both."""
        execlog.configure(capture_inputs=False, capture_output=False)

        @execlog.traced_execution
        def add(a: int, b: int) -> int:
            return a + b

        @execlog.traced_execution
        def produce() -> Any:
            yield 1

        assert 3 == add(1, 2)
        assert [1] == list(produce())
        with execlog.execution("blk", inputs={"a": 1}) as ex:
            ex.set_output({"b": 2})
            ex.tag(kept=True)
        found = rows(db)
        assert 3 == len(found)
        for row in found:
            assert row["inputs"] is None
            assert row["output"] is None
        assert {"kept": True} == json.loads(next(r for r in found if r["name"] == "blk")["tags"])

    def test_capture_inputs_off_globally_only(self, db: str) -> None:
        """Turning off inputs alone keeps the output."""
        execlog.configure(capture_inputs=False)
        assert 5 == execlog.traced_execution(_identity)(5)
        row = _one_row(db)
        assert row["inputs"] is None
        assert 5 == json.loads(row["output"])

    def test_capture_off_per_decorator(self, db: str) -> None:
        """``capture_inputs=False``/``capture_output=False`` on the decorator store NULL."""

        @execlog.traced_execution(capture_inputs=False)
        def no_inputs(x: int) -> int:
            return x

        @execlog.traced_execution(capture_output=False)
        def no_output(x: int) -> int:
            return x

        @execlog.traced_execution(capture_inputs=False, capture_output=False)
        def neither(x: int) -> int:
            return x

        @execlog.traced_execution(capture_output=False)
        def gen_no_output() -> Any:
            yield 1

        assert 1 == no_inputs(1)
        assert 2 == no_output(2)
        assert 3 == neither(3)
        assert [1] == list(gen_no_output())
        by_name = {r["name"].rsplit(".", 1)[-1]: r for r in rows(db)}
        assert by_name["no_inputs"]["inputs"] is None
        assert 1 == json.loads(by_name["no_inputs"]["output"])
        assert {"x": 2} == json.loads(by_name["no_output"]["inputs"])
        assert by_name["no_output"]["output"] is None
        assert by_name["neither"]["inputs"] is None
        assert by_name["neither"]["output"] is None
        assert by_name["gen_no_output"]["output"] is None

    def test_decorator_capture_on_wins_over_global_off(self, db: str) -> None:
        """An explicit ``capture_inputs=True`` on the decorator overrides the global default."""
        execlog.configure(capture_inputs=False, capture_output=False)

        @execlog.traced_execution(capture_inputs=True, capture_output=True)
        def keep(x: int) -> int:
            return x

        assert 4 == keep(4)
        row = _one_row(db)
        assert {"x": 4} == json.loads(row["inputs"])
        assert 4 == json.loads(row["output"])

    def test_capture_off_never_calls_repr(self, db: str) -> None:
        """With capture off, arguments are not even looked at (a raising repr is harmless)."""
        execlog.configure(capture_inputs=False, capture_output=False)
        value = BadRepr()
        assert value is execlog.traced_execution(_identity)(value)
        row = _one_row(db)
        assert row["inputs"] is None
        assert row["output"] is None


# -- direct unit tests of execlog._encoding ------------------------------------------------------


class TestRedactor:
    @pytest.mark.parametrize("key", SECRET_KEYS)
    def test_secret_keys(self, key: str) -> None:
        """Every secret-looking key is recognised, and the prefilter agrees."""
        redactor = Redactor()
        assert redactor.is_secret(key) is True
        assert redactor.may_contain(orjson.dumps({key: 1})) is True

    @pytest.mark.parametrize("key", PLAIN_KEYS)
    def test_plain_keys(self, key: str) -> None:
        """Keys without a secret word are not secret."""
        assert Redactor().is_secret(key) is False

    @pytest.mark.parametrize("key", [1, None, (1, 2), b"password"])
    def test_non_str_keys_are_not_secret(self, key: object) -> None:
        """Only str keys can name a secret."""
        assert Redactor().is_secret(key) is False

    def test_extra_names(self) -> None:
        """Extra names are normalised like the defaults and added to them."""
        redactor = Redactor(("S-S-N", "dob"))
        assert redactor.is_secret("user_ssn") is True
        assert redactor.is_secret("DOB") is True
        assert redactor.is_secret("password") is True
        assert redactor.may_contain(b'{"a":{"Patient-SSN":1}}') is True

    def test_prefilter_negative(self) -> None:
        """The prefilter says no for JSON without any secret word."""
        assert Redactor().may_contain(b'{"user":{"name":"x"}}') is False


class TestEncoder:
    def test_plain_value(self) -> None:
        """Ordinary JSON values are encoded compactly."""
        assert b'{"a":[1,2.5,"x",null,true]}' == Encoder(1000, Redactor()).encode_bytes(
            {"a": [1, 2.5, "x", None, True]}
        )

    def test_redacts_nested(self) -> None:
        """Encoding redacts secrets at any depth."""
        encoder = Encoder(65_536, Redactor())
        value = {"a": [{"b": {"API_KEY": SECRET, "ok": 1}}]}
        expected = {"a": [{"b": {"API_KEY": "[REDACTED]", "ok": 1}}]}
        assert expected == json.loads(encoder.encode(value))

    @pytest.mark.parametrize("label", sorted(UNENCODABLE))
    def test_never_raises(self, label: str) -> None:
        """Any value gives valid JSON within the limit."""
        encoder = Encoder(1000, Redactor())
        data = encoder.encode_bytes(UNENCODABLE[label]())
        assert len(data) <= 1000
        _strict_loads(data.decode("utf-8"))

    def test_truncates(self) -> None:
        """Values over the limit become the marker."""
        data = Encoder(500, Redactor()).encode_bytes(list(range(1000)))
        _assert_marker(data.decode(), list(range(1000)), 500)

    def test_encode_text(self) -> None:
        """Plain text is kept when short and cut to the limit when long."""
        encoder = Encoder(100, Redactor())
        assert "short" == encoder.encode_text("short")
        long_text = encoder.encode_text("z" * 10_000)
        assert _size(long_text) <= 100
        assert long_text.startswith("zzz")


class TestTruncateJson:
    def test_under_limit_unchanged(self) -> None:
        """Data within the limit is returned as is."""
        assert b'{"a":1}' == truncate_json(b'{"a":1}', 7)

    @pytest.mark.parametrize("limit", [60, 61, 99, 100, 333, 1000, 4097])
    def test_marker_within_limit(self, limit: int) -> None:
        """The marker fits the limit, even when the preview needs escaping."""
        value = ['"quoted" \\ back', "é日😀", "\x00\x1f"] * 500
        data = orjson.dumps(value)
        marker = truncate_json(data, limit, length=len(value)).decode()
        _assert_marker(marker, value, limit, size_known=True)

    def test_length(self) -> None:
        """``length`` is reported when given; ``size`` is the data's own."""
        marker = json.loads(truncate_json(b"[1,2,3,4]" * 50, 100, length=7))
        assert {"truncated": True, "size": 450, "length": 7} == {
            k: v for k, v in marker.items() if k != "preview"
        }

    @pytest.mark.parametrize("limit", range(80, 100))
    def test_unicode_cut_at_every_offset(self, limit: int) -> None:
        """Whatever byte the cut falls on, the preview is valid text."""
        data = orjson.dumps("😀é" * 200)
        marker = json.loads(truncate_json(data, limit))
        assert len(truncate_json(data, limit)) <= limit
        assert data.decode().startswith(marker["preview"])
        assert "\ufffd" not in marker["preview"]


class TestTruncateText:
    def test_short_unchanged(self) -> None:
        """Text within the limit is returned as is."""
        assert "hello" == truncate_text("hello", 5)

    @pytest.mark.parametrize("limit", [60, 61, 62, 63, 500])
    def test_long_cut(self, limit: int) -> None:
        """Long text is cut to the limit in UTF-8 bytes, keeping its beginning."""
        text = "é😀x" * 1000
        out = truncate_text(text, limit)
        assert _size(out) <= limit
        assert out.startswith("é")
        assert "\ufffd" not in out


class TestBoundedRepr:
    def test_short_repr(self) -> None:
        """A short repr is returned unchanged."""
        assert "[1, 2]" == bounded_repr([1, 2])

    def test_long_repr_cut(self) -> None:
        """A long repr is cut near the limit, keeping its beginning."""
        out = bounded_repr(HugeRepr(), 50)
        assert out.startswith("H" * 50)
        assert len(out) < 100

    def test_default_limit(self) -> None:
        """The default bound keeps a megabyte repr short."""
        assert len(bounded_repr(HugeRepr())) < 2000

    def test_raising_repr(self) -> None:
        """A raising ``__repr__`` gives a placeholder naming the type."""
        out = bounded_repr(BadRepr())
        assert isinstance(out, str)
        assert "BadRepr" in out

    def test_int_beyond_digit_limit(self) -> None:
        """An int too large for ``repr`` does not raise."""
        assert isinstance(bounded_repr(10**5000), str)
