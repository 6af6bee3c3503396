"""Turning captured values into bounded, redacted JSON without ever raising.

The fast path is one ``orjson.dumps``. Only when the encoded bytes could hold a secret key
(they contain a nested JSON object) is the value walked to redact it, and only when orjson
refuses a value (cycles, integers beyond 64 bits, unusual keys) is it walked to sanitise it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

__all__ = [
    "REDACTED",
    "SECRET_WORDS",
    "Encoder",
    "bounded_repr",
    "truncate_json",
    "truncate_text",
]

REDACTED = "[REDACTED]"

#: Key fragments that mark a value as secret (API.md section 6).
SECRET_WORDS = (
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
)

REPR_LIMIT = 1_000
_MAX_DEPTH = 200  # orjson refuses nesting beyond 254 levels
_SCALARS = (str, int, float, bool, type(None))
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def bounded_repr(obj: object, limit: int = REPR_LIMIT, redactor: Redactor | None = None) -> str:
    """``repr(obj)`` cut to ``limit`` characters; never raises for a misbehaving ``__repr__``.

    Secret-looking ``name=value`` and ``'name': value`` pairs in what is kept are masked (see
    :func:`mask_repr`): a repr is the one place a value's field names are not JSON keys.
    """
    try:
        text = repr(obj)
    except Exception:
        return f"<unrepresentable {_type_name(obj)}>"
    if not isinstance(text, str):  # pragma: no cover - repr() enforces str
        return f"<unrepresentable {_type_name(obj)}>"
    if len(text) > limit:
        # Cut first: masking stays linear in `limit` whatever the repr's size, and a value the
        # cut leaves open is masked up to the cut.
        return f"{mask_repr(text[:limit], redactor)}...[{len(text) - limit} more chars]"
    return mask_repr(text, redactor)


#: Where a value follows a name in a repr: ``name=``, ``name: ``, ``'name': ``, ``b'name': ``,
#: and the pair tuples of header lists, ``('name', ``. Names are bounded (the search stays
#: linear); a value is then measured by :func:`_value_end`.
_REPR_KEY = re.compile(
    r"""(?<=\()\s*b?(?P<tq>['"])(?P<tname>[^'"\\\n]{1,100})(?P=tq)\s*,\s*"""
    r"""|(?<!\w)(?:b?(?P<q>['"])(?P<qname>[^'"\\\n]{1,100})(?P=q)"""
    r"""|(?P<name>[A-Za-z_][\w.-]{0,100}))\s*[=:]\s*"""
)
#: ``scheme://user:password@`` in a URL: the password part.
_URL_PASSWORD = re.compile(r"""(?P<head>[A-Za-z][\w+.-]*://[^\s:/@'"]*:)[^\s/@'"]+(?=@)""")
_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}
_BARE_END = frozenset(" \t\r\n,;&)]}>'\"")


def _value_end(text: str, start: int) -> int:
    """Where the value starting at ``start`` ends.

    Past its closing quote or bracket (nested brackets and quoted text inside counted), or at
    the end of a bare token. A value the text ends inside runs to the end.
    """
    n = len(text)
    i = start
    if i + 1 < n and text[i] == "b" and text[i + 1] in "'\"":
        i += 1  # bytes literal
    if i >= n:
        return n
    if text[i] in "'\"":
        return _string_end(text, i)
    j = i
    while j < n and (text[j].isalnum() or text[j] in "_."):
        j += 1  # a call such as SecretStr(...) or Basic(...)
    if j < n and text[j] in _OPEN:
        closers = [_OPEN[text[j]]]
        j += 1
        while j < n:
            ch = text[j]
            if ch in "'\"":
                j = _string_end(text, j)
                continue
            if ch in _OPEN:
                closers.append(_OPEN[ch])
            elif ch == closers[-1]:
                closers.pop()
                if not closers:
                    return j + 1
            j += 1
        return n
    while j < n and text[j] not in _BARE_END:
        j += 1
    return j


def _string_end(text: str, quote_at: int) -> int:
    """Past the quote closing the string that opens at ``quote_at`` (escapes skipped)."""
    quote = text[quote_at]
    j = quote_at + 1
    n = len(text)
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == quote:
            return j + 1
        j += 1
    return n


def mask_repr(text: str, redactor: Redactor | None = None) -> str:
    """``text`` with the value of every secret-looking pair replaced by ``[REDACTED]``.

    Pairs: ``name=value``, ``name: value``, ``'name': value`` and ``('name', value)``; a
    name is secret as a dict key would be for ``redactor`` (by default, the built-in words).
    The password in a URL (``scheme://user:password@host``) is masked too. One pass, linear in
    the length of ``text``: the value of a name that is not secret is searched for pairs of
    its own (``Outer(inner={'token': ...})``).
    """
    if redactor is None:
        redactor = _DEFAULT_REDACTOR
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    if not redactor.may_contain_text(text):
        return text
    out: list[str] = []
    i = 0
    search = _REPR_KEY.search
    while (m := search(text, i)) is not None:
        name = m.group("tname") or m.group("qname") or m.group("name")
        out.append(text[i : m.end()])
        i = m.end()
        if redactor.is_secret(name):
            out.append(REDACTED)
            i = _value_end(text, i)
    if not out:
        return text
    out.append(text[i:])
    return "".join(out)


def _type_name(obj: object) -> str:
    try:
        return type(obj).__qualname__
    except Exception:  # pragma: no cover - a type always has a qualname
        return "object"


def _fields_of(obj: Any) -> dict[str, Any] | None:
    """A record's fields by name; None for anything that is not a record.

    Records: a dataclass (every field, as orjson encodes it), a namedtuple, a pydantic model
    (v2 or v1), an attrs class. As JSON objects their field names are keys, so they are
    redacted like a dict's. Fields a pydantic or attrs model keeps out of its repr
    (``repr=False``) are left out here too: that is how such classes hide what should not be
    shown. Nested records are met in turn.
    """
    cls = type(obj)
    out: dict[str, Any] | None = None
    try:
        if dataclasses.is_dataclass(cls):
            out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        elif isinstance(obj, tuple) and hasattr(cls, "_fields") and hasattr(cls, "_asdict"):
            names = cls._fields  # a namedtuple, if its fields describe it
            out = dict(zip(names, obj)) if len(names) == len(obj) else None
        elif isinstance(getattr(cls, "model_fields", None), dict) and hasattr(cls, "model_dump"):
            fields = cls.model_fields  # pydantic 2
            out = {k: getattr(obj, k) for k, f in fields.items() if getattr(f, "repr", True)}
            extra = getattr(obj, "__pydantic_extra__", None)
            if isinstance(extra, dict):
                out.update(extra)
        elif isinstance(getattr(cls, "__fields__", None), dict) and hasattr(cls, "parse_obj"):
            out = {  # pydantic 1
                k: getattr(obj, k)
                for k, f in cls.__fields__.items()
                if getattr(getattr(f, "field_info", None), "repr", True)
            }
        elif hasattr(cls, "__attrs_attrs__"):
            out = {a.name: getattr(obj, a.name) for a in cls.__attrs_attrs__ if a.repr is not False}
    except Exception:
        return None
    return out


def _default(obj: Any, redactor: Redactor | None = None) -> Any:
    """Orjson's fallback for types it does not know (``Encoder.default`` binds ``redactor``).

    Sets become lists, records (namedtuples, pydantic and attrs models) objects of their
    fields, anything else a bounded repr, masked with ``redactor``'s words.
    """
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    fields = _fields_of(obj)
    if fields is not None:
        return fields
    return bounded_repr(obj, redactor=redactor)


def _normalise(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


def _fuzzy(word: str) -> str:
    """A regex for ``word`` allowing ``-``/``_`` between its letters."""
    return "[-_]*".join(re.escape(ch) for ch in word)


class Redactor:
    """Decides which keys are secret: the default words plus configured names."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        """Build the matcher for the default words plus ``extra`` names."""
        words = {_normalise(w) for w in (*SECRET_WORDS, *extra)}
        self.words = tuple(sorted(w for w in words if w))
        pattern = "|".join(_fuzzy(w) for w in self.words)
        self._may_contain = re.compile(pattern.encode(), re.IGNORECASE).search
        self._may_contain_text = re.compile(pattern, re.IGNORECASE).search
        self._cache: dict[str, bool] = {}

    def may_contain(self, data: bytes) -> bool:
        """Cheap prefilter over encoded JSON: False means no key of it can be secret.

        Non-ASCII text always goes to the full check: ``str.lower`` folds characters such as
        the Kelvin sign to ASCII letters, which a bytes regex cannot see.
        """
        return not data.isascii() or self._may_contain(data) is not None

    def may_contain_text(self, text: str) -> bool:
        """:meth:`may_contain` for text (a repr)."""
        return not text.isascii() or self._may_contain_text(text) is not None

    def is_secret(self, key: object) -> bool:
        """Whether a key names a secret (case-insensitive substring, ``-``/``_`` ignored)."""
        if not isinstance(key, str):
            return False
        hit = self._cache.get(key)
        if hit is None:
            norm = _normalise(key)
            hit = any(w in norm for w in self.words)
            if len(self._cache) < 4096:
                self._cache[key] = hit
        return hit


#: Masks reprs made where no encoder's own words are at hand (dict keys that are not text).
_DEFAULT_REDACTOR = Redactor()


def _clean(obj: Any, redactor: Redactor | None, depth: int, path: set[int]) -> Any:  # noqa: PLR0911
    """Rebuild ``obj`` as data orjson always encodes, redacting secret keys when asked."""
    if isinstance(obj, str):
        return _valid_text(obj)
    if isinstance(obj, _SCALARS):
        if type(obj) is int and not -(2**63) <= obj < 2**64:
            return _big_int(obj)
        if isinstance(obj, int) and not isinstance(obj, bool) and type(obj) is not int:
            return _clean(int(obj), redactor, depth, path)
        return obj
    if depth > _MAX_DEPTH:
        return f"<nested too deep: {_type_name(obj)}>"  # no repr: it could hold a secret
    marker = id(obj)
    if marker in path:
        return f"<cycle {_type_name(obj)}>"
    if not isinstance(obj, (dict, list)):
        fields = _fields_of(obj)  # a record: its fields, redacted like a dict's keys
        if fields is not None:
            obj = fields
    if isinstance(obj, Mapping):
        path.add(marker)
        try:
            out: dict[Any, Any] = {}
            for key, value in list(obj.items()):
                safe_key = _valid_text(key) if isinstance(key, str) else _key_text(key)
                if redactor is not None and redactor.is_secret(safe_key):
                    out[safe_key] = REDACTED
                else:
                    out[safe_key] = _clean(value, redactor, depth + 1, path)
        except Exception:
            return bounded_repr(obj, redactor=redactor)
        finally:
            path.discard(marker)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        path.add(marker)
        try:
            return [_clean(item, redactor, depth + 1, path) for item in list(obj)]
        except Exception:
            return bounded_repr(obj, redactor=redactor)
        finally:
            path.discard(marker)
    try:
        orjson.dumps(obj, option=_OPTIONS)
    except Exception:
        return _default(obj, redactor)
    return obj


def _valid_text(text: str) -> str:
    """``text`` as a valid UTF-8 str (lone surrogates escaped)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return str(text)


def _key_text(key: object) -> str:
    if isinstance(key, (int, float, bool)) or key is None:
        try:
            return orjson.dumps(key).decode()
        except Exception:
            return bounded_repr(key, 200)
    return bounded_repr(key, 200)


def _big_int(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<int of {value.bit_length()} bits>"


def truncate_json(data: bytes, limit: int, size: int | None = None) -> bytes:
    """Replace ``data`` by the truncation marker of API.md section 6 when it exceeds ``limit``.

    ``size`` is the original size to report when ``data`` is already a cut-down prefix.
    """
    if size is None:
        size = len(data)
        if size <= limit:
            return data
    preview = data[: max(limit, 0)].decode("utf-8", "ignore")
    overhead = len(b'{"truncated":true,"size":,"preview":""}') + len(str(size))
    preview = preview[: max(limit - overhead, 0)]
    out = orjson.dumps({"truncated": True, "size": size, "preview": preview})
    while len(out) > limit and preview:
        excess = len(out) - limit
        preview = preview[: max(len(preview) - max(excess, 1), 0)]
        out = orjson.dumps({"truncated": True, "size": size, "preview": preview})
    if len(out) > limit:  # a limit too small for the whole marker: the most that fits
        for smaller in (
            orjson.dumps({"truncated": True, "size": size}),
            b'{"truncated":true}',
            b"null",
            b"0",
        ):
            out = smaller
            if len(out) <= limit:
                break
    return out


def truncate_text(text: str, limit: int) -> str:
    """Cut plain text (error fields) to ``limit`` UTF-8 bytes, saying how much was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    suffix = f"...[truncated, {len(data)} bytes]"
    if len(suffix) > limit:  # a limit too small for the note: just cut
        return data[: max(limit, 0)].decode("utf-8", "ignore")
    keep = limit - len(suffix)
    return data[:keep].decode("utf-8", "ignore") + suffix


class Encoder:
    """Encodes captured values for one configuration: bounded, redacted, never raising."""

    __slots__ = ("default", "limit", "redactor")

    def __init__(self, limit: int, redactor: Redactor) -> None:
        """Encode with payloads capped at ``limit`` bytes and secrets found by ``redactor``."""
        self.limit = limit
        self.redactor = redactor
        #: orjson's ``default=``: records as objects, anything else a repr masked by `redactor`
        self.default: Callable[[Any], Any] = functools.partial(_default, redactor=redactor)

    def encode(self, value: Any, nested_from: int = 0) -> str:
        """JSON text for ``value``, bounded and redacted (see :meth:`encode_bytes`).

        Text, not bytes: orjson's bytes keep a buffer of several kilobytes allocated, which
        would make every queued record ~30 times larger than its payload.
        """
        return self.encode_bytes(value, nested_from).decode()

    def encode_bytes(self, value: Any, nested_from: int = 0, *, truncate: bool = True) -> bytes:
        """JSON bytes for ``value``.

        ``nested_from`` is where a secret key could first appear: 1 for an inputs dict whose
        top-level keys were already checked, 0 for anything else. With ``truncate=False`` the
        full encoding is returned (the caller bounds it).
        """
        cls = value.__class__
        if cls is int or cls is float or cls is bool or value is None:
            try:
                return orjson.dumps(value)
            except Exception:  # an int beyond 64 bits
                data = self._encode_slow(value)
                return truncate_json(data, self.limit) if truncate else data
        try:
            data = orjson.dumps(value, default=self.default, option=_OPTIONS)
        except Exception:
            data = self._encode_slow(value)
        else:
            if (
                cls is not str
                and data.find(b"{", nested_from) != -1
                and self.redactor.may_contain(data)
            ):
                data = self._encode_slow(value)
        if truncate and len(data) > self.limit:
            return truncate_json(data, self.limit)
        return data

    def _encode_slow(self, value: Any) -> bytes:
        try:
            cleaned = _clean(value, self.redactor, 0, set())
            return orjson.dumps(cleaned, default=self.default, option=_OPTIONS)
        except Exception:  # never fall back to the repr of unredacted data
            return orjson.dumps(f"<unencodable {_type_name(value)}>")

    def encode_text(self, text: str) -> str:
        """Bound a plain-text field (error type, message or stack)."""
        if len(text) * 4 <= self.limit:
            return text
        return truncate_text(text, self.limit)
