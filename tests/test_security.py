"""Security (issue 5): redaction at any depth, no secret on disk, parameterised SQL, 0600 files.

Redaction is checked with hypothesis over secret-looking keys spelled every way the contract
allows, placed at any depth of inputs, output and tags; the database files (main, WAL and
shared memory) are then searched byte by byte. SQL safety is checked statically: every
``execute``/``executemany`` call in ``src/execlog`` must get SQL text built only from constants.
"""

# The house style writes `expected == actual` (STYLE.md, Tests); ruff's SIM300 wants the reverse.

from __future__ import annotations

import ast
import asyncio
import dataclasses
import multiprocessing
import os
import sqlite3
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import execlog
from execlog._storage import ListQuery
from execlog._storage.sqlite import list_statement, stats_statement

# Every test here runs on the C fast path and on the pure-Python path.
pytestmark = pytest.mark.usefixtures("implementation")

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.connection import Connection

SRC = Path(execlog.__file__).resolve().parent
REDACTED = "[REDACTED]"
SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "auth",
    "cookie",
    "session",
    "sessionid",
    "credential",
    "credentials",
    "privatekey",
    "jwt",
    "csrf",
    "xsrf",
)
PLAIN_KEYS = ("data", "items", "payload", "config", "inner", "rows", "meta")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _words(key: str) -> list[str]:
    """``key`` split into lower-case words, written out character by character (an oracle
    independent of the implementation's regular expressions)."""
    found: list[str] = []
    word = ""
    for i, ch in enumerate(key):
        if not ch.isalnum():
            if word:
                found.append(word)
            word = ""
            continue
        prev = key[i - 1] if i else ""
        nxt = key[i + 1] if i + 1 < len(key) else ""
        lower_or_digit = prev.isascii() and (prev.islower() or prev.isdigit())
        camel = ch.isascii() and ch.isupper() and lower_or_digit
        acronym_end = (
            ch.isascii()
            and ch.isupper()
            and prev.isascii()
            and prev.isupper()
            and nxt.isascii()
            and nxt.islower()
        )
        if word and (camel or acronym_end):
            found.append(word)
            word = ""
        word += ch
    if word:
        found.append(word)
    return [w.lower() for w in found]


def _is_secret(key: str, extra: tuple[str, ...] = ()) -> bool:
    """API.md section 6, as an independent oracle: a run of consecutive words, joined, is a
    secret word (or one of ``extra``, normalised the same way)."""
    secret = {*SECRET_WORDS, *("".join(_words(e)) for e in extra)}
    parts = _words(key)
    return any(
        "".join(parts[i:j]) in secret
        for i in range(len(parts))
        for j in range(i + 1, len(parts) + 1)
    )


# -- redaction ------------------------------------------------------------------------------

_STYLES = ("snake", "kebab", "dot", "space", "screaming", "camel", "pascal", "train")


@st.composite
def spelled(draw: st.DrawFn, words: tuple[str, ...] = SECRET_WORDS) -> str:
    """A key holding one of ``words`` as whole words, spelled in any of the usual styles:
    ``api_key``, ``X-Api-Key``, ``clientSecret``, ``DB.PASSWORD``..., with other words around."""
    word = draw(st.sampled_from(words))
    # Cut in two, each part at least two letters: a one-letter part in camelCase reads as
    # part of an acronym ("XSSn" is "XS" + "Sn"), which is not the word any more.
    cut = draw(st.sampled_from([0, *range(2, len(word) - 1)]))
    parts = [word[:cut], word[cut:]] if cut else [word]
    prefix = draw(st.sampled_from([[], ["x"], ["db"], ["client"], ["my"], ["refresh"]]))
    suffix = draw(st.sampled_from([[], ["id"], ["hash"], ["header"], ["value"]]))
    chunks = [*prefix, *parts, *suffix]
    style = draw(st.sampled_from(_STYLES))
    if style == "camel":
        return chunks[0].lower() + "".join(c.capitalize() for c in chunks[1:])
    if style == "pascal":
        return "".join(c.capitalize() for c in chunks)
    if style == "screaming":
        return "_".join(c.upper() for c in chunks)
    if style == "train":
        return "-".join(c.capitalize() for c in chunks)
    sep = {"snake": "_", "kebab": "-", "dot": ".", "space": " "}[style]
    return sep.join(chunks)


@dataclasses.dataclass
class Box:
    """A dataclass wrapping a value (redaction walks dataclass fields)."""

    content: Any
    label: str = "box"


class Opaque:
    """No JSON form; its repr would show the secret if redaction looked only at text."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"Opaque({self.token!r})"


@st.composite
def buried(draw: st.DrawFn, key: str, token: str) -> Any:
    """``{key: <token in some form>}`` in 0-6 levels of dicts, lists, tuples and dataclasses."""
    secret = draw(
        st.sampled_from(
            [token, [token, token], {"value": token}, Opaque(token), "x" * 70_000 + token]
        )
    )
    return _wrapped(draw, {key: secret, "visible": "kept"}, CONTAINERS)


CONTAINERS = ("dict", "list", "tuple", "dataclass")


def _wrapped(draw: st.DrawFn, value: Any, wrappers: tuple[str, ...]) -> Any:
    """``value`` inside 0-6 levels of the given wrappers, none under a secret-looking key."""
    for _ in range(draw(st.integers(0, 6))):
        wrap = draw(st.sampled_from(wrappers))
        if wrap == "dict":
            value = {draw(st.sampled_from(PLAIN_KEYS)): value, "n": 1}
        elif wrap == "list":
            value = [1, value, "x"]
        elif wrap == "tuple":
            value = ("a", value)
        elif wrap == "dataclass":
            value = Box(value)
        elif wrap == "namedtuple":
            value = Pair("p", value)
        elif wrap == "pydantic":
            value = Envelope(content=value)
        else:
            value = Crate(value)
    return value


TOKENS = st.binary(min_size=8, max_size=8).map(lambda b: "tok3n-" + b.hex())


class Pair(NamedTuple):
    label: str
    content: Any


class Envelope(pydantic.BaseModel):
    label: str = "env"
    content: Any


@attrs.define
class Crate:
    content: Any
    label: str = "crate"


class Creds(NamedTuple):
    user: str
    password: str


class ApiLogin(pydantic.BaseModel):
    user: str
    api_token: str


@attrs.define
class UserSession:
    user: str
    session_id: str


class Client:
    """No JSON form; its repr names the secret, as many client objects' reprs do."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"Client(host='api.local', auth_token={self.token!r}, retries=3)"


@st.composite
def in_a_record(draw: st.DrawFn, token: str) -> Any:
    """``token`` in a secret-named field of a record or a repr, in 0-6 levels of dicts,
    lists, tuples, dataclasses, namedtuples, pydantic and attrs models (none of them secret)."""
    value: Any = draw(
        st.sampled_from(
            [
                Creds("u", token),
                ApiLogin(user="u", api_token=token),
                UserSession("u", token),
                Client(token),
                [Client(token), Creds("u", token)],
            ]
        )
    )
    return _wrapped(draw, value, (*CONTAINERS, "namedtuple", "pydantic", "attrs"))


def _payload_columns(db: str, execution_ids: list[str]) -> list[str]:
    assert execlog.flush(timeout=10)
    conn = sqlite3.connect(db)
    try:
        found = []
        for execution_id in execution_ids:
            row = conn.execute(
                "SELECT inputs, output, tags FROM executions WHERE execution_id = ?",
                (execution_id,),
            ).fetchone()
            assert row is not None
            found.extend(text for text in row if text is not None)
        return found
    finally:
        conn.close()


class TestRedactionAnyDepth:
    @SETTINGS
    @given(data=st.data(), key=spelled(), token=TOKENS)
    def test_secret_keys_are_redacted_wherever_they_are(
        self, db: str, data: st.DataObject, key: str, token: str
    ) -> None:
        """A secret-looking key at any depth of inputs, output or tags: its value is replaced
        by "[REDACTED]" and never stored; the rest is kept."""
        assert _is_secret(key)
        value = data.draw(buried(key, token))
        ids: list[str] = []

        @execlog.traced_execution(tags={"meta": value})
        def handler(payload: Any, **kwargs: Any) -> Any:
            ids.append(execlog.current_execution().execution_id)
            return value

        assert value is handler(value, **{key: token})
        with execlog.execution("block", inputs={"v": value}, tags={"t": value}) as ex:
            ex.tag(extra=value)
            ex.set_output([value])
        ids.append(ex.execution_id)

        for text in _payload_columns(db, ids):
            assert token not in text
            assert REDACTED in text or '"truncated":true' in text

    @SETTINGS
    @given(
        data=st.data(),
        word=st.sampled_from(["ssn", "iban", "dob", "pin_code"]),
        token=TOKENS,
        how=st.sampled_from(["decorator", "configure"]),
    )
    def test_names_given_to_redact_are_redacted_at_any_depth(
        self, db: str, data: st.DataObject, word: str, token: str, how: str
    ) -> None:
        """Names given to redact= (decorator or configure) work like the built-in words."""
        key = data.draw(spelled((word.replace("_", ""),)))
        assert _is_secret(key, (word,))
        value = data.draw(buried(key, token))
        ids: list[str] = []
        if how == "configure":
            execlog.configure(redact=(word,))
            decorate = execlog.traced_execution
        else:
            execlog.configure(redact=())
            decorate = execlog.traced_execution(redact=(word,))

        def handler(payload: Any) -> Any:
            ids.append(execlog.current_execution().execution_id)
            return {"echo": payload}

        decorate(handler)(value)
        for text in _payload_columns(db, ids):
            assert token not in text
            assert REDACTED in text or '"truncated":true' in text

    @SETTINGS
    @given(data=st.data(), token=TOKENS)
    def test_secret_fields_of_records_and_reprs_are_redacted(
        self, db: str, data: st.DataObject, token: str
    ) -> None:
        """A secret-named field of a namedtuple, pydantic or attrs record, or a secret-named
        pair in an object's repr, at any depth under keys that are not secret: never stored."""
        value = data.draw(in_a_record(token))
        ids: list[str] = []

        @execlog.traced_execution(tags={"meta": value})
        def handler(payload: Any) -> Any:
            ids.append(execlog.current_execution().execution_id)
            return value

        assert value is handler(value)
        with execlog.execution("block", inputs={"v": value}) as ex:
            ex.set_output([value])
        ids.append(ex.execution_id)

        for text in _payload_columns(db, ids):
            assert token not in text
            assert REDACTED in text

    @SETTINGS
    @given(key=st.text(max_size=20).filter(lambda k: not _is_secret(k)), token=TOKENS)
    def test_other_keys_are_kept(self, db: str, key: str, token: str) -> None:
        """A key that matches no secret word keeps its value."""
        with execlog.execution("plain", inputs={"outer": [{key: token}]}) as ex:
            pass
        [inputs, *_] = _payload_columns(db, [ex.execution_id])
        assert token in inputs


class TestWordRule:
    """API.md section 6: keys are secret by whole words, not by substrings."""

    SECRET_KEYS = (
        "api_key",
        "X-Api-Key",
        "clientSecret",
        "auth_token",
        "db_password",
        "private_key",
        "sessionId",
        "session_count",
    )
    PLAIN_KEYS = ("max_tokens", "tokenizer", "author", "classname", "hyper", "authority")

    def _stored(self, db: str, value: dict[str, Any], **options: Any) -> list[str]:
        ids: list[str] = []

        @execlog.traced_execution(tags={"t": value}, **options)
        def handler(payload: Any) -> Any:
            ids.append(execlog.current_execution().execution_id)
            return [value]

        handler({"deep": [value]})
        return _payload_columns(db, ids)

    @pytest.mark.parametrize("key", SECRET_KEYS)
    def test_secret_words_redacted_at_any_depth(self, db: str, key: str) -> None:
        """Each of these keys is secret wherever it is: inputs, output and tags."""
        for text in self._stored(db, {key: "tok-never-stored", "visible": "kept"}):
            assert "tok-never-stored" not in text
            assert "kept" in text

    @pytest.mark.parametrize("key", PLAIN_KEYS)
    def test_ordinary_parameters_are_kept(self, db: str, key: str) -> None:
        """A secret word inside a longer word is not a secret: the value is stored."""
        for text in self._stored(db, {key: "value-kept"}, redact=("ssn", "y")):
            assert "value-kept" in text

    def test_redact_names_are_whole_words_too(self, db: str) -> None:
        """``redact=("ssn",)`` hides ``user_ssn`` and ``SSN`` but not ``classname``;
        ``redact=("y",)`` does not hide ``hyper``."""
        value = {
            "user_ssn": "hidden-1",
            "SSN": "hidden-2",
            "classname": "kept-1",
            "hyper": "kept-2",
        }
        for text in self._stored(db, value, redact=("ssn", "y")):
            assert "hidden" not in text
            assert "kept-1" in text
            assert "kept-2" in text

    @pytest.mark.parametrize("how", ["decorator", "configure"])
    def test_redact_exempt(self, db: str, how: str) -> None:
        """``session_count`` is secret by the word rule and kept when named in redact_exempt=,
        in any spelling; other session keys stay secret."""
        value = {"sessionCount": 7, "session_id": "tok-never-stored"}
        if how == "configure":
            execlog.configure(redact_exempt=("session_count",))
            texts = self._stored(db, value)
        else:
            texts = self._stored(db, value, redact_exempt=("session_count",))
        for text in texts:
            assert '"sessionCount":7' in text
            assert "tok-never-stored" not in text

    def test_redact_exempt_is_validated(self) -> None:
        """redact_exempt must hold names: anything else is a ConfigError naming it."""
        with pytest.raises(execlog.ConfigError, match="redact_exempt"):
            execlog.configure(redact_exempt=(1,))
        with pytest.raises(execlog.ConfigError, match="redact_exempt"):
            execlog.traced_execution(redact_exempt=3)


class TestUrlPasswords:
    DSN = "postgres://etl:hunter2@db1/prod"

    def test_masked_in_every_captured_string(self, db: str) -> None:
        """A URL's password is ``****`` in inputs, output, tags, nested strings, keys and the
        error fields; the rest of the URL is kept."""
        ids: list[str] = []

        @execlog.traced_execution(tags={"source": self.DSN})
        def connect(dsn: str, options: dict[str, Any]) -> str:
            ids.append(execlog.current_execution().execution_id)
            msg = f"cannot reach {dsn}"
            raise ConnectionError(msg)

        with pytest.raises(ConnectionError, match="hunter2"):  # the user's exception: untouched
            connect(self.DSN, {"mirrors": [self.DSN], self.DSN: 1})
        with execlog.execution("block", inputs={"url": self.DSN}) as ex:
            ex.set_output(f"done with {self.DSN} and https://u:p%40ss@h:8443/x?y=1")
        ids.append(ex.execution_id)
        texts = _payload_columns(db, ids)
        assert texts
        for text in texts:
            assert "hunter2" not in text
            assert "p%40ss" not in text
        joined = "\n".join(texts)
        assert "postgres://etl:****@db1/prod" in joined
        assert "https://u:****@h:8443/x?y=1" in joined

    def test_urls_without_password_are_kept(self, db: str) -> None:
        """Only a password is masked: user names, hosts and plain URLs are stored as given."""
        with execlog.execution(
            "b", inputs={"a": "https://example.com/x", "b": "ssh://git@host/r"}
        ) as ex:
            pass
        [inputs] = _payload_columns(db, [ex.execution_id])[:1]
        assert "https://example.com/x" in inputs
        assert "ssh://git@host/r" in inputs


SECRET = "s3cr3t-Qm9vYmFy-never-on-disk"


@execlog.traced_execution(tags={"Set-Cookie": SECRET}, redact=("pin",))
def login(user: str, password: str, pin: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"user": user, "session_token": SECRET, "nested": [{"PIN": SECRET}]}


@execlog.traced_execution
def stream(n: int) -> Any:
    for i in range(n):
        yield {"i": i, "api-key": SECRET}


@execlog.traced_execution
async def fetch(headers: dict[str, str]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"Authorization": SECRET, "body": "ok"}


class TestSecretsNeverOnDisk:
    @pytest.mark.timeout(60)
    def test_no_byte_of_a_secret_reaches_any_database_file(self, db: str) -> None:
        """Secrets under default words and redact= names, in inputs, output, tags, generators,
        coroutines, running rows and truncated payloads: not in the main file, WAL or SHM."""
        execlog.configure(redact=("ssn",), max_payload_bytes=4096)
        big = {"blob": "x" * 10_000, "client_secret": SECRET, "SSN": SECRET}
        with execlog.execution("live", inputs={"db_password": SECRET, "deep": [[big]]}) as live:
            for _ in range(20):
                login("ann", SECRET, SECRET, {"Proxy-Authorization": SECRET, "big": big})
                assert 3 == len(list(stream(3)))
                asyncio.run(fetch({"Cookie": SECRET}))
                with execlog.execution("blk", inputs=big, tags={"ssn": SECRET}) as ex:
                    ex.set_output({"credentials": {"user": "ann", "key": SECRET}})
            assert execlog.flush(timeout=10)  # the live execution is written as `running`
            files = [Path(db + suffix) for suffix in ("", "-wal", "-shm")]
            assert [True, True, True] == [p.exists() for p in files]
            data = {p.name: p.read_bytes() for p in files}
            assert b"blk" in data[Path(db).name] + data[Path(db).name + "-wal"]
            needle = SECRET.encode()
            assert [] == [name for name, content in data.items() if needle in content]
            assert [("running",)] == _query(
                db, "SELECT status FROM executions WHERE execution_id = ?", (live.execution_id,)
            )
        execlog.shutdown()  # checkpoint into the main file, then look again
        leftovers = [p for p in Path(db).parent.iterdir() if p.name.startswith(Path(db).name)]
        assert [] == [p.name for p in leftovers if needle in p.read_bytes()]
        assert 20 * 4 + 1 == _query(db, "SELECT COUNT(*) FROM executions")[0][0]


def _query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- parameterised SQL: a static check -------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "executescript"}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef)


class _Program:
    """Every module of a package, with just enough name resolution to follow SQL text back to
    where it was built. An expression is *constant-built* when it is made only of literals,
    module-level constants, loop variables over such values, and operations on them (f-strings,
    ``+``, ``join``, method calls, functions whose every return and every caller qualifies)."""

    def __init__(self) -> None:
        self.modules: dict[str, ast.Module] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.module_of: dict[ast.AST, str] = {}
        self._memo: dict[tuple[int, str], bool] = {}

    @classmethod
    def package(cls, root: Path) -> _Program:
        program = cls()
        for path in sorted(root.rglob("*.py")):
            name = ".".join(("execlog", *path.relative_to(root).with_suffix("").parts))
            program.add(name.removesuffix(".__init__"), path.read_text(encoding="utf-8"))
        return program

    @classmethod
    def of(cls, source: str) -> _Program:
        program = cls()
        program.add("execlog.sample", source)
        return program

    def add(self, name: str, source: str) -> None:
        tree = ast.parse(source)
        self.modules[name] = tree
        for node in ast.walk(tree):
            self.module_of[node] = name
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node

    # -- where names come from --------------------------------------------------------

    def scope(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, _SCOPES):
                return node
        return node

    def _bindings(self, scope: ast.AST, name: str) -> list[tuple[str, Any]]:
        """How ``name`` gets its values in ``scope``: (kind, detail) pairs."""
        found: list[tuple[str, Any]] = []
        body = scope.body if isinstance(scope, (ast.Module, *_SCOPES)) else []
        if isinstance(scope, _SCOPES):
            params = [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]
            for index, arg in enumerate(params):
                if arg.arg == name:
                    found.append(("param", (scope, index)))
        nodes = list(_walk_scope(body))
        if isinstance(scope, ast.Module):  # a module-level list filled from inside a function
            nodes += [n for n in ast.walk(scope) if isinstance(n, ast.Call) and n not in nodes]
        for node in nodes:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found.extend(_assigned(target, node.value, name))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                if node.value is not None:
                    found.extend(_assigned(node.target, node.value, name))
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                found.extend(_assigned(node.target, node.iter, name, element=True))
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                found.extend(_assigned(node.optional_vars, node.context_expr, name))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name
                and node.func.attr in {"append", "extend", "insert"}
            ):
                found.extend(("value", arg) for arg in node.args)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        found.append(("import", (node, alias.name)))
        return found

    def name_is_constant(self, scope: ast.AST, name: str) -> bool:
        key = (id(scope), name)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = False  # a cycle proves nothing
        bindings = self._bindings(scope, name)
        if not bindings and not isinstance(scope, ast.Module):  # a closure: look outwards
            result = self.name_is_constant(self.scope(scope), name)
        else:
            result = bool(bindings) and all(self._binding_ok(b) for b in bindings)
        self._memo[key] = result
        return result

    def _binding_ok(self, binding: tuple[str, Any]) -> bool:
        kind, detail = binding
        if kind == "value":
            return self.constant(detail)
        if kind == "item":
            value, index = detail
            return self._item_constant(value, index)
        if kind == "import":
            node, imported = detail
            module = (
                self.modules.get(node.module or "") if isinstance(node, ast.ImportFrom) else None
            )
            return module is not None and self.name_is_constant(module, imported)
        if kind == "param":
            return self._param_constant(*detail)
        return False

    def _item_constant(self, value: ast.AST, index: int) -> bool:
        """Element ``index`` of what ``value`` gives (tuple unpacking of a literal or a call)."""
        if isinstance(value, (ast.Tuple, ast.List)):
            return self.constant(value.elts[index])
        if isinstance(value, ast.Call):
            function = self._function(value)
            if not isinstance(function, _SCOPES):
                return False
            returns = [n.value for n in _walk_scope(function.body) if isinstance(n, ast.Return)]
            return bool(returns) and all(
                isinstance(r, ast.Tuple) and self.constant(r.elts[index]) for r in returns
            )
        return self.constant(value)

    def _param_constant(self, function: ast.AST, index: int) -> bool:
        """Every call of ``function`` in the package passes a constant-built argument."""
        assert isinstance(function, _SCOPES)
        params = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
        name = params[index].arg
        method = bool(params) and params[0].arg in {"self", "cls"}
        calls = [
            node
            for tree in self.modules.values()
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _callee_name(node) == function.name
        ]
        if not calls:
            return False
        for call in calls:
            position = index - (1 if method and isinstance(call.func, ast.Attribute) else 0)
            passed = [k.value for k in call.keywords if k.arg == name]
            if 0 <= position < len(call.args):
                passed.append(call.args[position])
            if not passed:
                default = _default(function, index)
                if default is None or not self.constant(default):
                    return False
            if not all(self.constant(arg) for arg in passed):
                return False
        return True

    def _function(self, call: ast.Call) -> ast.AST | None:
        """The package's function or class of that name (None when it is not the package's)."""
        name = _callee_name(call)
        for tree in self.modules.values():
            for node in ast.walk(tree):
                if isinstance(node, (*_SCOPES, ast.ClassDef)) and node.name == name:
                    return node
        return None

    # -- what is constant-built -------------------------------------------------------

    def constant(self, node: ast.AST, safe: frozenset[str] = frozenset()) -> bool:  # noqa: PLR0911
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(self.constant(v, safe) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.constant(node.value, safe)
        if isinstance(node, ast.BinOp):
            return self.constant(node.left, safe) and self.constant(node.right, safe)
        if isinstance(node, ast.IfExp):
            return self.constant(node.body, safe) and self.constant(node.orelse, safe)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self.constant(e, safe) for e in node.elts)
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            return self.constant(node.value, safe)
        if isinstance(node, ast.Name):
            return node.id in safe or self.name_is_constant(self.scope(node), node.id)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            inner = set(safe)
            for generator in node.generators:
                if not self.constant(generator.iter, frozenset(inner)):
                    return False
                inner |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            return self.constant(node.elt, frozenset(inner))
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in {"len", "int"}:
                return True  # a number: it cannot carry text into the SQL
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if not all(self.constant(a, safe) for a in arguments):
                return False
            if isinstance(node.func, ast.Attribute):  # a method of constant text: join, strip
                return self.constant(node.func.value, safe)
            if isinstance(node.func, ast.Name) and node.func.id in {"int", "str", "len", "sorted"}:
                return True
            function = self._function(node)
            if isinstance(function, ast.ClassDef):  # a record of constants (e.g. Migration)
                return True
            if function is None:
                return False
            returns = [n.value for n in _walk_scope(function.body) if isinstance(n, ast.Return)]
            return bool(returns) and all(r is not None and self.constant(r) for r in returns)
        return False

    def unsafe_sql_calls(self) -> tuple[int, list[str]]:
        """(number of SQL calls, the ones whose SQL text is not constant-built)."""
        total = 0
        unsafe = []
        for name, tree in self.modules.items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS
                    and node.args
                ):
                    total += 1
                    if node.func.attr == "executescript" or not self.constant(node.args[0]):
                        unsafe.append(f"{name}:{node.lineno}: {ast.unparse(node)[:120]}")
        return total, unsafe


def _walk_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of a scope's body, not descending into nested functions or classes."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (*_SCOPES, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def _assigned(
    target: ast.AST, value: ast.AST, name: str, *, element: bool = False
) -> list[tuple[str, Any]]:
    if isinstance(target, ast.Name):
        return [("value", value)] if target.id == name else []
    if isinstance(target, (ast.Tuple, ast.List)):
        found: list[tuple[str, Any]] = []
        for index, part in enumerate(target.elts):
            if isinstance(part, ast.Name) and part.id == name:
                if element and isinstance(value, (ast.Tuple, ast.List)):
                    found.extend(("item", (row, index)) for row in value.elts)
                elif element:
                    found.append(("value", value))
                else:
                    found.append(("item", (value, index)))
        return found
    return []


def _callee_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _default(function: ast.AST, index: int) -> ast.AST | None:
    assert isinstance(function, _SCOPES)
    positional = [*function.args.posonlyargs, *function.args.args]
    if index < len(positional):
        offset = len(positional) - len(function.args.defaults)
        return function.args.defaults[index - offset] if index >= offset else None
    return function.args.kw_defaults[index - len(positional)]


#: Code that builds SQL from a value, which the check must report (one call each).
BUILT_SQL = {
    "f-string": """
        def f(conn, name):
            conn.execute(f"SELECT * FROM t WHERE n = '{name}'")
    """,
    "concatenation": """
        def f(conn, name):
            conn.execute("SELECT * FROM " + name)
    """,
    "percent": """
        def f(conn, name):
            sql = "SELECT %s" % name
            conn.execute(sql)
    """,
    "appended": """
        def f(conn, column):
            columns = ["a"]
            columns.append(column)
            conn.execute("SELECT " + ", ".join(columns))
    """,
    "environment-constant": """
        import os
        TABLE = os.environ["T"]
        def f(conn):
            conn.execute(f"SELECT * FROM {TABLE}")
    """,
    "script": """
        def f(conn, script):
            conn.executescript(script)
    """,
    "through-a-caller": """
        def g(conn, sql):
            conn.execute(sql)
        def h(conn, user):
            g(conn, user)
    """,
}


class TestParameterisedSql:
    def test_every_sql_statement_is_built_from_constants_only(self) -> None:
        """Every execute/executemany in src/execlog gets SQL text made only of constants; values
        travel as parameters (executescript, which takes none, is not used)."""
        total, unsafe = _Program.package(SRC).unsafe_sql_calls()
        assert total >= 30, "the checker found too few SQL calls: is it still looking?"
        assert [] == unsafe

    @pytest.mark.parametrize("label", sorted(BUILT_SQL))
    def test_the_checker_catches_built_sql(self, label: str) -> None:
        """The static check is not vacuous: SQL built from a value is reported."""
        total, unsafe = _Program.of(textwrap.dedent(BUILT_SQL[label])).unsafe_sql_calls()
        assert 1 == total
        assert 1 == len(unsafe)

    def test_the_checker_accepts_constant_sql(self) -> None:
        """Constants, module constants, joined column lists and constant arguments pass."""
        source = (
            "COLUMNS = ('a', 'b')\n"
            "SELECT = f\"SELECT {', '.join(COLUMNS)} FROM t\"\n"
            "def run(conn, sql, value):\n    conn.execute(sql, (value,))\n"
            "def use(conn, value):\n    run(conn, SELECT + ' WHERE a = ?', value)\n"
            "    for part in ('x', 'y'):\n        conn.execute(f'SELECT {part}', (value,))\n"
        )
        assert (2, []) == _Program.of(source).unsafe_sql_calls()

    @pytest.mark.parametrize(
        "hostile", ["x' OR '1'='1", "a); DROP TABLE executions; --", "\x00", "名前"]
    )
    def test_query_builders_never_put_values_in_the_sql(self, hostile: str) -> None:
        """list() and stats() SQL depends on which filters are given, never on their values."""
        query = ListQuery(
            name=hostile, status=hostile, correlation_id=hostile, since_us=1, until_us=2
        )
        sql, params = list_statement(query)
        other_sql, _ = list_statement(
            ListQuery(name="n", status="s", correlation_id="c", since_us=3, until_us=4)
        )
        assert other_sql == sql
        assert hostile not in sql
        assert [hostile, hostile, hostile] == [p for p in params if p == hostile]
        for name in (hostile, None):
            stats_sql, stats_params = stats_statement(name, 5)
            assert stats_statement("other" if name else None, 6)[0] == stats_sql
            assert hostile not in stats_sql
            assert name is None or name in stats_params


# -- file permissions ---------------------------------------------------------------------


def _spawned_writer(db: str, conn: Connection) -> None:
    try:
        os.umask(0)
        execlog.configure(db=db)
        with execlog.execution("from-spawn"):
            pass
        assert execlog.flush(timeout=10)
        modes = {suffix: os.stat(db + suffix).st_mode & 0o777 for suffix in ("", "-wal", "-shm")}
        conn.send(modes)
    except BaseException as exc:
        conn.send(repr(exc))
    finally:
        conn.close()


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under a permissive umask (the files must not rely on it)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


class TestFilePermissions:
    def test_writer_creates_main_wal_and_shm_0600(self, db: str, umask: int) -> None:
        """The database, its WAL and its shared-memory file are private to their owner."""
        with execlog.execution("x"):
            pass
        assert execlog.flush(timeout=10)
        modes = {s: os.stat(db + s).st_mode & 0o777 for s in ("", "-wal", "-shm")}
        assert {"": 0o600, "-wal": 0o600, "-shm": 0o600} == modes

    def test_store_creates_main_wal_and_shm_0600(self, tmp_path: Path, umask: int) -> None:
        """open_store(create=True) on a new path creates private files too."""
        db = str(tmp_path / "new.db")
        with execlog.open_store(db, create=True) as store:
            store.recent(1)
            modes = {s: os.stat(db + s).st_mode & 0o777 for s in ("", "-wal", "-shm")}
        assert {"": 0o600, "-wal": 0o600, "-shm": 0o600} == modes

    @pytest.mark.timeout(60)
    def test_spawned_process_creates_private_files(self, tmp_path: Path) -> None:
        """A writer in a spawned process (umask 000) creates private files."""
        db = str(tmp_path / "spawned.db")
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        child = ctx.Process(target=_spawned_writer, args=(db, there))
        child.start()
        there.close()
        assert here.poll(45), "the spawned writer did not answer"
        modes = here.recv()
        child.join(timeout=30)
        assert 0 == child.exitcode
        assert {"": 0o600, "-wal": 0o600, "-shm": 0o600} == modes
