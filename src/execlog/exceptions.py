"""Exceptions raised by execlog.

Only programmer mistakes that can be fixed at once raise: bad configuration, a database
that is not (or is a newer) execlog database. Failures while recording never reach user code.
"""

from __future__ import annotations

import errno

__all__ = [
    "AmbiguousIdError",
    "ConfigError",
    "ExeclogError",
    "SchemaError",
    "StoreError",
    "StoreNotFoundError",
]


class ExeclogError(Exception):
    """Base class of every exception execlog raises."""


class ConfigError(ExeclogError, ValueError):
    """An invalid configuration value; the message names the option."""


class StoreError(ExeclogError):
    """The database cannot be used as an execlog store (not SQLite, corrupt, foreign)."""


class SchemaError(StoreError):
    """The database schema is newer than this version of execlog understands."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No database at the path given to ``open_store`` (without ``create=True``).

    Both a :class:`StoreError` and a :class:`FileNotFoundError`; ``filename`` is the path.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, path: str) -> None:
        """``message`` for the user; ``path`` the database that does not exist."""
        super().__init__(errno.ENOENT, message, path)

    def __str__(self) -> str:
        """The message alone (not ``[Errno 2] ...``)."""
        return str(self.strerror)


class AmbiguousIdError(ExeclogError, LookupError):
    """An id prefix that more than one id starts with.

    Attributes:
        prefix: The prefix given.
        candidates: Ids it matches, sorted (at most ``Store.MAX_CANDIDATES``).
        more: Whether more ids than ``candidates`` match.

    .. versionadded:: 0.1.0
    """

    def __init__(self, prefix: str, candidates: tuple[str, ...], *, more: bool = False) -> None:
        """The prefix and the ids it matches."""
        super().__init__(prefix, candidates)
        self.prefix = prefix
        self.candidates = candidates
        self.more = more

    def __str__(self) -> str:
        """``id prefix '01a2...' is ambiguous: it matches 01a2..., 01a2...``."""
        shown = ", ".join(self.candidates) + (", ..." if self.more else "")
        return f"id prefix {self.prefix!r} is ambiguous: it matches {shown}"
