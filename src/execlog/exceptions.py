"""Exceptions raised by execlog.

Only programmer mistakes that can be fixed at once raise: bad configuration, a database
that is not (or is a newer) execlog database. Failures while recording never reach user code.
"""

from __future__ import annotations

import errno

__all__ = ["ConfigError", "ExeclogError", "SchemaError", "StoreError", "StoreNotFoundError"]


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
