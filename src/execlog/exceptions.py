"""Exceptions raised by execlog.

Only programmer mistakes that can be fixed at once raise: bad configuration, a database
that is not (or is a newer) execlog database. Failures while recording never reach user code.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ExeclogError", "SchemaError", "StoreError"]


class ExeclogError(Exception):
    """Base class of every exception execlog raises."""


class ConfigError(ExeclogError, ValueError):
    """An invalid configuration value; the message names the option."""


class StoreError(ExeclogError):
    """The database cannot be used as an execlog store (not SQLite, corrupt, foreign)."""


class SchemaError(StoreError):
    """The database schema is newer than this version of execlog understands."""
