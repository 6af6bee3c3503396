"""Turning captured values into bounded, redacted JSON without ever raising.

The cost of capturing a value is bounded by the payload limit, not by the value (API.md
section 6). Every value goes through three steps:

1. **Measure** (:func:`exceeds`): a walk that adds up a lower bound of the value's JSON size and
   stops as soon as it passes the limit. A container's length alone often settles it (a list of
   a million items cannot fit in 64 KiB), so a huge value is recognised after looking at a
   handful of objects.
2. **Within a few times the limit** (:data:`WHOLE_FACTOR`) by that bound: encoding it whole
   costs work proportional to the limit. One ``orjson.dumps``; only when the bytes could hold
   a secret key or a URL with a password is the value walked again to redact it
   (:func:`_clean`), and only when orjson refuses it (cycles, integers beyond 64 bits,
   unusual keys) to sanitise it. If the JSON exceeds the limit, it is stored as the
   truncation marker with its exact ``size``.
3. **Beyond that**: a copy of the value's beginning is made, a few kilobytes' worth
   (:func:`_clean` with a budget: the first items of a container, the first characters of a
   string), and encoded: its first bytes are the marker's ``preview``, exactly the beginning of
   what the whole value would have encoded to. ``size`` is then unknown (null).

Code that runs while a value is captured (a ``__repr__``, a record's fields, ``__len__``) runs
inside :class:`~execlog._context.capturing`: traced calls made there are not recorded.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from execlog._context import capturing
from execlog._native import SPEEDUPS
from execlog._redaction import (
    REDACTED,
    SECRET_WORDS,
    Redactor,
    mask_repr,
    mask_urls,
)

__all__ = [
    "PREVIEW_BYTES",
    "REDACTED",
    "SECRET_WORDS",
    "Encoder",
    "Redactor",
    "bounded_repr",
    "exceeds",
    "mask_repr",
    "truncate_json",
    "truncate_text",
]

REPR_LIMIT = 1_000
#: At most this much of a value over the limit is encoded for its marker's preview.
PREVIEW_BYTES = 4_096
#: A value up to this many times the limit (by its lower bound) is encoded whole when over
#: it, so that its marker gives the exact size; beyond, only its beginning is.
WHOLE_FACTOR = 4
_MAX_DEPTH = 200  # orjson refuses nesting beyond 254 levels
_SCALARS = (str, int, float, bool, type(None))
_LEAVES = frozenset({int, float, bool, type(None)})
_BINARY = (bytes, bytearray, memoryview)
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_HEAD_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_dumps = orjson.dumps


# -- bounded reprs ----------------------------------------------------------------------------


class _HeadRepr(reprlib.Repr):
    """``reprlib`` with head-first cuts: containers bounded while their repr is produced."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = 50
        self.maxfrozenset = self.maxdeque = self.maxarray = 50
        self.maxstring = self.maxlong = self.maxother = REPR_LIMIT

    def repr_str(self, x: str, level: int) -> str:  # noqa: ARG002 - reprlib's signature
        return builtins_repr(x[: self.maxstring])

    def repr_instance(self, x: object, level: int) -> str:  # noqa: ARG002 - reprlib's
        # An object's own __repr__: its cost is the object's; what it returns is cut after.
        return builtins_repr(x)


builtins_repr = repr
_CONTAINER_REPRS = frozenset(
    name for name in dir(reprlib.Repr) if name.startswith("repr_") and name != "repr_instance"
)


def bounded_repr(obj: object, limit: int = REPR_LIMIT, redactor: Redactor | None = None) -> str:
    """``repr(obj)`` cut to ``limit`` characters; never raises for a misbehaving ``__repr__``.

    Built-in containers (and deques, arrays, sets) are bounded while their repr is produced,
    as :mod:`reprlib` does; an object's own ``__repr__`` is cut after it returns. Secret-looking
    ``name=value`` and ``'name': value`` pairs and URL passwords in what is kept are masked
    (:func:`mask_repr`). Runs unrecorded (:class:`~execlog._context.capturing`).
    """
    try:
        with capturing():
            if "repr_" + type(obj).__name__.replace(" ", "_") in _CONTAINER_REPRS:
                text = _HEAD_REPR.repr(obj)
            else:
                text = repr(obj)
    except Exception:
        return f"<unrepresentable {_type_name(obj)}>"
    if not isinstance(text, str):  # pragma: no cover - repr() enforces str
        return f"<unrepresentable {_type_name(obj)}>"
    if len(text) > limit:
        # Cut first: masking stays linear in `limit` whatever the repr's size, and a value the
        # cut leaves open is masked up to the cut.
        return f"{mask_repr(text[:limit], redactor, cut=True)}...[{len(text) - limit} more chars]"
    return mask_repr(text, redactor)


_HEAD_REPR = _HeadRepr()


def _type_name(obj: object) -> str:
    try:
        return type(obj).__qualname__
    except Exception:  # pragma: no cover - a type always has a qualname
        return "object"


# -- records and well-known large values ------------------------------------------------------


def _fields_of(obj: Any) -> dict[str, Any] | None:
    """A record's fields by name; None for anything that is not a record.

    Records: a dataclass (every field, as orjson encodes it), a namedtuple, a pydantic model
    (v2 or v1), an attrs class. As JSON objects their field names are keys, so they are
    redacted like a dict's. Fields a pydantic or attrs model keeps out of its repr
    (``repr=False``) are left out here too: that is how such classes hide what should not be
    shown. Nested records are met in turn. Runs unrecorded.
    """
    cls = type(obj)
    out: dict[str, Any] | None = None
    try:
        with capturing():
            if dataclasses.is_dataclass(cls):
                out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            elif isinstance(obj, tuple) and hasattr(cls, "_fields") and hasattr(cls, "_asdict"):
                names = cls._fields  # a namedtuple, if its fields describe it
                out = dict(zip(names, obj)) if len(names) == len(obj) else None
            elif isinstance(getattr(cls, "model_fields", None), dict) and hasattr(
                cls, "model_dump"
            ):
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
                out = {
                    a.name: getattr(obj, a.name) for a in cls.__attrs_attrs__ if a.repr is not False
                }
    except Exception:
        return None
    return out


def _module_of(obj: object) -> str:
    module = getattr(type(obj), "__module__", None)
    return module if isinstance(module, str) else ""


def _is_ndarray(obj: object) -> bool:
    return _module_of(obj) == "numpy" and type(obj).__name__ == "ndarray"


def _pandas_summary(obj: Any) -> dict[str, Any] | None:
    """A DataFrame, Series or Index as its shape and names: what identifies it, in microseconds.

    Formatting a million-row DataFrame for its repr takes a millisecond or more, whatever is
    kept of it; its shape, column names and dtypes take a few microseconds.
    """
    module = _module_of(obj)
    if module != "pandas" and not module.startswith("pandas."):
        return None
    kind = type(obj).__name__
    try:
        with capturing():
            if kind == "DataFrame":
                columns = [str(c) for c in obj.columns[:50]]
                return {"type": "pandas.DataFrame", "shape": list(obj.shape), "columns": columns}
            if kind == "Series" or kind.endswith("Index"):
                return {
                    "type": f"pandas.{kind}",
                    "length": len(obj),
                    "name": None if obj.name is None else str(obj.name),
                    "dtype": str(obj.dtype),
                }
    except Exception:
        return None
    return None


def _length(value: Any) -> int | None:
    """``len(value)`` for the marker, when it has one (runs unrecorded; never raises)."""
    if not hasattr(type(value), "__len__"):
        return None
    try:
        with capturing():
            n = len(value)
    except Exception:
        return None
    return n if type(n) is int else None


# -- measuring --------------------------------------------------------------------------------


def _py_measure(value: Any, left: int) -> int:
    """``left`` less a lower bound of ``value``'s JSON size; negative: it cannot fit.

    Work is bounded by ``left``: every object looked at takes at least a byte off it, and a
    container's length is charged before its items are looked at. No depth limit: the walk
    keeps its own stack, and a value nested deeper than the sanitiser keeps is still measured
    whole (it is encoded whole when it may fit). Also the C measure's hook for the objects it
    does not know, and for containers nested too deep for its recursion.
    """
    stack: list[Any] = [value]
    push = stack.append
    while stack and left >= 0:
        obj = stack.pop()
        cls = obj.__class__
        if cls in _LEAVES:
            left -= 1
        elif cls is str:
            left -= len(obj) + 2
        elif cls is dict or cls is list or cls is tuple:
            # an item takes at least 2 bytes with its comma; a member, 5 ("":0,) and its key
            left -= (5 if cls is dict else 2) * len(obj) + 1
            if left < 0:
                break
            if cls is dict:
                for key, item in obj.items():
                    if key.__class__ is str:
                        left -= len(key)
                    if item.__class__ not in _LEAVES:
                        push(item)
            else:
                for item in obj:
                    if item.__class__ not in _LEAVES:
                        push(item)
        elif isinstance(obj, _BINARY):
            left -= len(obj) + 3  # its repr: b'...'
        elif isinstance(obj, (set, frozenset)):
            left -= 2 * len(obj) + 1
            if left >= 0:
                stack.extend(obj)
        elif _is_ndarray(obj):
            left -= 2 * int(obj.size) + 1
        elif isinstance(obj, (str, int, float)):  # subclasses
            left -= len(obj) + 2 if isinstance(obj, str) else 1
        else:
            fields = _fields_of(obj)
            if fields is not None:
                push(fields)
            elif isinstance(obj, Mapping):
                left -= 5 * _length_or_zero(obj) + 1
                if left >= 0:
                    with capturing():  # its items are the user's code
                        push(dict(obj))
            else:
                left -= 2  # a repr (its own cost) or a value orjson writes in a few bytes
    return left


def _length_or_zero(obj: Any) -> int:
    n = _length(obj)
    return 0 if n is None else n


#: The C measure and copy of built-in types, where built (they call the hooks below for the
#: objects they do not know).
_native_exceeds: Callable[..., int] | None = getattr(SPEEDUPS, "exceeds", None)
_native_head: Callable[..., tuple[Any, int] | None] | None = getattr(SPEEDUPS, "head", None)


def exceeds(value: Any, budget: int) -> bool:
    """Whether ``value``'s JSON is certainly longer than ``budget`` bytes.

    False means it may fit: encoding it whole then costs work proportional to ``budget`` (a
    small multiple of it: a number may take 20 bytes where the bound counts one).
    """
    if _native_exceeds is not None:
        verdict = _native_exceeds(value, budget, _py_measure)
        if verdict >= 0:
            return verdict == 1
    return _py_measure(value, budget) < 0


# -- sanitising, redacting, cutting -----------------------------------------------------------


class _Budget:
    """Bytes still to fill with a value's beginning, and where the copy was first cut.

    ``cut`` is the nesting depth of the first string or container cut short (-1: none). The
    copy's JSON then differs from the whole value's only in its last ``cut + 1`` bytes: the
    closing quote or bracket of what was cut and of each container around it.
    """

    __slots__ = ("cut", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.cut = -1

    def mark(self, depth: int) -> None:
        """Something at ``depth`` was cut short; nothing after it is copied."""
        if self.cut < 0:
            self.cut = depth
        self.left = min(self.left, -1)


_UNBOUNDED = 1 << 62
_PLAIN = frozenset({str, int, float, bool, type(None), dict, list, tuple})


def _part(  # noqa: PLR0911 - one return per kind of value
    obj: Any, left: int, redactor: Redactor | None
) -> tuple[Any, bool]:
    """``obj``, not plain data, as plain data: ``(data, cut)``.

    Records and mappings become dicts, sets and arrays lists, pandas objects their summary,
    bytes and anything orjson cannot encode their (masked) repr; subclasses of built-in types
    their base type. Only as much as ``left`` bytes can show is taken (``cut``: there is
    more). An object orjson encodes in a few bytes (a datetime, a UUID, an enum) comes back
    as itself. Runs user code unrecorded.
    """
    room = max(left, 0)
    summary = _pandas_summary(obj)
    if summary is not None:
        return summary, False
    fields = _fields_of(obj)  # before the built-in types: a namedtuple is a tuple
    if fields is not None:
        return fields, False
    if isinstance(obj, str):
        return str.__str__(obj), False
    if isinstance(obj, bool):
        return bool(obj), False
    if isinstance(obj, int):
        return int.__int__(obj), False
    if isinstance(obj, float):
        return float.__float__(obj), False
    if isinstance(obj, (dict, Mapping)):
        with capturing():
            n = _length(obj)
            items = itertools.islice(
                dict.items(obj) if isinstance(obj, dict) else obj.items(), room // 5 + 1
            )
            data = dict(items)
        return data, n is None or n > len(data)
    if isinstance(obj, (list, tuple, set, frozenset)):
        with capturing():
            data_list = list(itertools.islice(obj, room // 2 + 1))
        return data_list, len(obj) > len(data_list)
    if isinstance(obj, (bytes, bytearray)):  # the repr of its first bytes: the same type's
        return _repr_head(bounded_repr(obj[: min(room, REPR_LIMIT) + 1], redactor=redactor))
    if _is_ndarray(obj):
        return _array_head(obj, room)
    try:
        orjson.dumps(obj, option=_OPTIONS)
    except Exception:
        return _repr_head(bounded_repr(obj, limit=min(REPR_LIMIT, room + 1), redactor=redactor))
    return obj, False


_MORE = re.compile(r"\.\.\.\[\d+ more chars\]$")


def _repr_head(text: str) -> tuple[str, bool]:
    """A bounded repr without its "...[N more chars]" note: what every cut of it begins with."""
    match = _MORE.search(text)
    return (text[: match.start()], True) if match else (text, False)


def _clean(  # noqa: PLR0911, PLR0915 - one branch per kind of value
    obj: Any, redactor: Redactor | None, depth: int, path: set[int], budget: _Budget
) -> Any:
    """Rebuild ``obj`` as data orjson always encodes, redacting secret keys when asked.

    Strings have URL passwords masked. ``budget`` bounds how much is rebuilt: once it is spent,
    containers stop taking items and strings are cut, and ``budget.cut`` says where, so the
    result's JSON begins exactly as the whole value's would (see :class:`_Budget`).
    """
    cls = obj.__class__
    if cls is str:
        if budget.left <= len(obj) + 2:
            obj = obj[: max(budget.left, 0)]
            budget.mark(depth)
        budget.left -= len(obj) + 2
        return mask_urls(_valid_text(obj))
    if cls in _LEAVES:
        budget.left -= 1
        if cls is int and not -(2**63) <= obj < 2**64:
            return _big_int(obj)
        return obj
    if depth > _MAX_DEPTH:
        budget.left -= 2
        return f"<nested too deep: {_type_name(obj)}>"  # no repr: it could hold a secret
    marker = id(obj)
    if marker in path:
        budget.left -= 2
        return f"<cycle {_type_name(obj)}>"
    if cls not in _PLAIN:
        data, cut = _part(obj, budget.left, redactor)
        if data is obj:  # written by orjson as it is
            budget.left -= 2
            return obj
        path.add(marker)
        try:
            out = _clean(data, redactor, depth, path, budget)
        finally:
            path.discard(marker)
        if cut:
            budget.mark(depth)
        return out
    path.add(marker)
    try:
        budget.left -= 2
        if cls is dict:
            out_dict: dict[Any, Any] = {}
            for key, value in list(itertools.islice(obj.items(), max(budget.left, 0) // 5 + 1)):
                if budget.left < 0:
                    budget.mark(depth)
                    break
                safe_key = mask_urls(_valid_text(key) if isinstance(key, str) else _key_text(key))
                budget.left -= len(safe_key) + 4
                if redactor is not None and redactor.is_secret(safe_key):
                    out_dict[safe_key] = REDACTED
                else:
                    out_dict[safe_key] = _clean(value, redactor, depth + 1, path, budget)
            else:
                if len(out_dict) < len(obj):
                    budget.mark(depth)
            return out_dict
        out_list = []
        for item in obj:
            if budget.left < 0:
                budget.mark(depth)
                break
            budget.left -= 1
            out_list.append(_clean(item, redactor, depth + 1, path, budget))
    except Exception:
        return bounded_repr(obj, redactor=redactor)
    else:
        return out_list
    finally:
        path.discard(marker)


def _array_head(array: Any, budget: int) -> tuple[Any, bool]:
    """The first items of a numpy array as lists, enough for ``budget`` bytes.

    Returns ``(lists, cut)``: ``cut`` when the array has more.
    """
    try:
        if array.ndim == 0:
            return array.item(), False
        per_item = 19 if array.dtype.kind in "fc" else 2  # what the C copy charges, about
        rows = max(budget // per_item, 1)
        head = array[:rows]
        cut = len(array) > rows
        if array.ndim == 1:
            return head.tolist(), cut
        out = []
        for row in head:
            part, row_cut = _array_head(row, budget // 2)
            out.append(part)
            cut = cut or row_cut
    except Exception:
        return f"<{_type_name(array)}>", False
    else:
        return out, cut


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


def _default(obj: Any, redactor: Redactor | None = None) -> Any:
    """Orjson's fallback for types it does not know (``Encoder.default`` binds ``redactor``).

    Sets become lists, records (namedtuples, pydantic and attrs models) objects of their
    fields, pandas objects their summary, anything else a bounded repr, masked with
    ``redactor``'s words.
    """
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    summary = _pandas_summary(obj)
    if summary is not None:
        return summary
    fields = _fields_of(obj)
    if fields is not None:
        return fields
    return bounded_repr(obj, redactor=redactor)


def marker(preview: bytes, limit: int, size: int | None, length: int | None) -> bytes:
    """The truncation marker of API.md section 6, within ``limit`` bytes.

    ``preview``: the beginning of the value's JSON (cut to fit); ``size``: the whole JSON's
    length, or None when it was not encoded whole; ``length``: ``len()`` of the value, if any.
    """
    head: dict[str, Any] = {"truncated": True, "size": size}
    if length is not None:
        head["length"] = length
    # The preview may end inside a URL's password, which masking whole strings cannot see.
    text = mask_urls(
        preview[: max(min(limit, PREVIEW_BYTES), 0)].decode("utf-8", "ignore"), cut=True
    )
    overhead = len(_dumps({**head, "preview": ""}))
    text = text[: max(limit - overhead, 0)]
    out = _dumps({**head, "preview": text})
    while len(out) > limit and text:
        excess = len(out) - limit
        text = text[: max(len(text) - max(excess, 1), 0)]
        out = _dumps({**head, "preview": text})
    if len(out) > limit:  # a limit too small for the whole marker: the most that fits
        for smaller in (_dumps(head), b'{"truncated":true}', b"null", b"0"):
            out = smaller
            if len(out) <= limit:
                break
    return out


def truncate_json(data: bytes, limit: int, length: int | None = None) -> bytes:
    """``data`` itself when it fits ``limit``, else its truncation marker (with exact size)."""
    if len(data) <= limit:
        return data
    return marker(data, limit, len(data), length)


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


# -- the encoder --------------------------------------------------------------------------------


class Encoder:
    """Encodes captured values for one configuration: bounded, redacted, never raising."""

    # Read by the C accelerator through slot offsets.
    __slots__ = ("_part", "default", "limit", "redactor")

    def __init__(self, limit: int, redactor: Redactor) -> None:
        """Encode with payloads capped at ``limit`` bytes and secrets found by ``redactor``."""
        self.limit = limit
        self.redactor = redactor
        #: orjson's ``default=``: records as objects, anything else a repr masked by `redactor`
        self.default: Callable[[Any], Any] = functools.partial(_default, redactor=redactor)
        #: the C copy's hook for objects that are not plain data
        self._part = functools.partial(_part, redactor=redactor)

    def encode(self, value: Any, nested_from: int = 0) -> str:
        """JSON text for ``value``, bounded and redacted (see :meth:`encode_bytes`).

        Text, not bytes: orjson's bytes keep a buffer of several kilobytes allocated, which
        would make every queued record ~30 times larger than its payload.
        """
        return self.encode_bytes(value, nested_from).decode()

    def encode_bytes(self, value: Any, nested_from: int = 0) -> bytes:
        """JSON bytes for ``value`` within the limit: its JSON, or the truncation marker.

        ``nested_from`` is where a secret key could first appear: 1 for an inputs dict whose
        top-level keys were already checked, 0 for anything else.
        """
        data, whole = self.encode_part(value, nested_from)
        if whole and len(data) <= self.limit:
            return data
        return marker(data, self.limit, len(data) if whole else None, _length(value))

    def encode_part(self, value: Any, nested_from: int = 0) -> tuple[bytes, bool]:
        """``(json, True)`` for a value within the limit; else ``(its first bytes, False)``.

        The first bytes are at least ``PREVIEW_BYTES`` (or the limit, if smaller) of what the
        whole value would encode to, or all of it. A value within the limit may still encode
        to more than the limit (its lower bound fitted): the caller cuts it.
        """
        cls = value.__class__
        if cls is int or cls is float or cls is bool or value is None:
            try:
                return _dumps(value), True
            except Exception:  # an int beyond 64 bits
                return self._encode_slow(value), True
        limit = self.limit
        if exceeds(value, limit * WHOLE_FACTOR):
            return self._encode_head(value, min(limit, PREVIEW_BYTES) + 8)
        try:
            data = _dumps(value, default=self.default, option=_OPTIONS)
        except Exception:
            return self._encode_slow(value), True
        if (
            cls is not str
            and data.find(b"{", nested_from) != -1
            and self.redactor.may_contain(data)
        ) or (b"/" in data and b"://" in data):  # memchr first: ':' follows every key
            return self._encode_slow(value), True
        return data, True

    def _encode_head(self, value: Any, budget: int) -> tuple[bytes, bool]:
        """The beginning of ``value``'s JSON.

        ``(about budget bytes of it, False)``, or ``(all of it, True)`` if it was shorter.
        """
        native = (
            None if _native_head is None else _native_head(value, budget, self.redactor, self._part)
        )
        if native is not None:
            head, cut = native
        else:  # no accelerator, or something only the Python copy does (see head_of)
            copy = _Budget(budget)
            head, cut = _clean(value, self.redactor, 0, set(), copy), copy.cut
        try:
            # A native head's keys are all str: orjson's faster path without OPT_NON_STR_KEYS
            data = _dumps(head, option=_HEAD_OPTIONS if native is not None else _OPTIONS)
        except Exception:  # pragma: no cover - heads are plain data
            return orjson.dumps(f"<unencodable {_type_name(value)}>"), True
        if native is not None and b"/" in data and b"://" in data:
            # URL passwords to mask: the Python copy masks strings (the head is small)
            data = self._encode_slow(head)
        if cut < 0:
            return data, True
        return data[: len(data) - cut - 1], False  # without the closing quotes and brackets

    def _encode_slow(self, value: Any) -> bytes:
        try:
            cleaned = _clean(value, self.redactor, 0, set(), _Budget(_UNBOUNDED))
            return orjson.dumps(cleaned, default=self.default, option=_OPTIONS)
        except Exception:  # never fall back to the repr of unredacted data
            return orjson.dumps(f"<unencodable {_type_name(value)}>")

    def encode_text(self, text: str) -> str:
        """Bound a plain-text field (error type, message or stack); URL passwords masked."""
        if len(text) * 4 > self.limit:
            text = truncate_text(text, self.limit)
        return mask_urls(text)
