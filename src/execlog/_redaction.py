"""Which captured values are secret, and masking them (API.md section 6, "Redaction").

A key is split into words (at ``_``, ``-``, ``.``, spaces, any other punctuation, and camelCase
boundaries) and lower-cased; it is secret when a run of consecutive words, joined, is one of
the secret words. So ``api_key``, ``X-Api-Key``, ``clientSecret`` and ``auth_token`` are
secret, and ``author``, ``max_tokens``, ``tokenizer`` and ``classname`` are not. Names given to
``redact=`` are normalised the same way and added to the words; keys named in
``redact_exempt=`` are never secret. The password of a URL is masked in every captured string.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "REDACTED",
    "SECRET_WORDS",
    "URL_MASK",
    "Redactor",
    "mask_repr",
    "mask_urls",
    "words",
]

REDACTED = "[REDACTED]"
URL_MASK = "****"

#: The words that make a key secret (API.md section 6).
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

#: Runs of letters and digits (any script): the separators between them are dropped.
_CHUNK = re.compile(r"[^\W_]+")
#: camelCase boundaries inside a chunk: ``clientSecret``, ``APIKey`` -> ``API|Key``.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(key: str) -> list[str]:
    """``key`` split into lower-case words, as redaction sees it."""
    out: list[str] = []
    for chunk in _CHUNK.findall(key):
        out.extend(part.lower() for part in _CAMEL.split(chunk) if part)
    return out


#: The ASCII bytes that are neither letters nor digits: separators, for the prefilter.
_SEPARATORS = bytes(c for c in range(128) if not chr(c).isalnum())


def _normalised(name: str) -> str:
    return "".join(words(name))


class Redactor:
    """Decides which keys are secret: the default words plus configured names.

    Example::

        Redactor(("ssn",), exempt=("session_count",)).is_secret("user_ssn")   # True
    """

    # `_cache` is read by the C accelerator (keys of **kwargs, without a call into Python).
    __slots__ = ("_cache", "_exempt", "_longest", "_needles", "words")

    def __init__(self, extra: Iterable[str] = (), exempt: Iterable[str] = ()) -> None:
        """The default words plus ``extra`` names; keys named in ``exempt`` are never secret."""
        found = {_normalised(w) for w in (*SECRET_WORDS, *extra)}
        self.words = frozenset(w for w in found if w)
        self._exempt = frozenset(e for e in (_normalised(n) for n in exempt) if e)
        self._longest = max(map(len, self.words))
        self._needles = tuple(sorted(w.encode() for w in self.words if w.isascii()))
        #: key -> secret?, for the keys seen lately (bounded)
        self._cache: dict[str, bool] = {}

    def may_contain(self, data: bytes) -> bool:
        """Cheap prefilter over encoded JSON: False means no key of it can be secret.

        Every secret key holds the letters of a word in order with nothing but separators
        between them, so the text with everything but letters and digits removed holds the
        word. Non-ASCII text always goes on to the full check (``str.lower`` folds characters
        such as the Kelvin sign to ASCII letters).
        """
        if not data.isascii():
            return True
        squeezed = data.translate(None, _SEPARATORS).lower()
        return any(needle in squeezed for needle in self._needles)

    def may_contain_text(self, text: str) -> bool:
        """:meth:`may_contain` for text (a repr)."""
        return not text.isascii() or self.may_contain(text.encode("ascii"))

    def is_secret(self, key: object) -> bool:
        """Whether a key names a secret (see the module docstring)."""
        if not isinstance(key, str):
            return False
        hit = self._cache.get(key)
        if hit is None:
            hit = self._decide(key)
            if len(self._cache) < 4096:
                self._cache[key] = hit
        return hit

    def _decide(self, key: str) -> bool:
        parts = words(key)
        if not parts or (self._exempt and "".join(parts) in self._exempt):
            return False
        secret, longest = self.words, self._longest
        for i in range(len(parts)):
            joined = ""
            for part in parts[i:]:
                joined += part
                if len(joined) > longest:
                    break
                if joined in secret:
                    return True
        return False


#: Masks reprs made where no encoder's own words are at hand (dict keys that are not text).
DEFAULT_REDACTOR = Redactor()

#: ``scheme://user:password@`` in a URL: the password part (up to the last ``@`` before the
#: path). A password that holds an ``@`` is masked whole; one that holds a ``/`` cannot be told
#: from the path and is cut there, as URL parsers do.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]*:)[^\s/]+(?=@)")
#: The same at the end of text that was cut: the password may go on past the cut.
_URL_PASSWORD_OPEN = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^\s:/@]*:)[^\s/@]+$")


def _masked(match: re.Match[str]) -> str:
    return match.group("head") + URL_MASK


def mask_urls(text: str, *, cut: bool = False) -> str:
    """``text`` with the password of every URL in it replaced by ``****``.

    ``cut``: the text is the beginning of a longer one, so a URL it ends in the middle of
    may have its password cut short, which is masked too.
    """
    if "/" not in text or "://" not in text:  # one memchr for the common case: no '/' at all
        return text
    text = _URL_PASSWORD.sub(_masked, text)
    return _URL_PASSWORD_OPEN.sub(_masked, text) if cut else text


#: Where a value follows a name in a repr: ``name=``, ``name: ``, ``'name': ``, ``b'name': ``,
#: and the pair tuples of header lists, ``('name', ``. Names are bounded (the search stays
#: linear); a value is then measured by :func:`_value_end`.
_REPR_KEY = re.compile(
    r"""(?<=\()\s*b?(?P<tq>['"])(?P<tname>[^'"\\\n]{1,100})(?P=tq)\s*,\s*"""
    r"""|(?<!\w)(?:b?(?P<q>['"])(?P<qname>[^'"\\\n]{1,100})(?P=q)"""
    r"""|(?P<name>[A-Za-z_][\w.-]{0,100}))\s*[=:]\s*"""
)
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


def mask_repr(text: str, redactor: Redactor | None = None, *, cut: bool = False) -> str:
    """``text`` with the value of every secret-looking pair replaced by ``[REDACTED]``.

    Pairs: ``name=value``, ``name: value``, ``'name': value`` and ``('name', value)``; a
    name is secret as a dict key would be for ``redactor`` (by default, the built-in words).
    The password in a URL (``scheme://user:password@host``) is masked too. One pass, linear in
    the length of ``text``: the value of a name that is not secret is searched for pairs of
    its own (``Outer(inner={'token': ...})``). ``cut``: see :func:`mask_urls`.
    """
    if redactor is None:
        redactor = DEFAULT_REDACTOR
    text = mask_urls(text, cut=cut)
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
