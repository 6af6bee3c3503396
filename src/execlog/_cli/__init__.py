"""Implementation of the ``execlog`` command line (public entry point: :mod:`execlog.cli`).

Private: nothing here is covered by the compatibility promise.
"""

from __future__ import annotations

__all__ = ["CLIError"]


class CLIError(Exception):
    """A user-facing error: printed as one line on stderr, exit status 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        """``message`` for the user; ``code`` is the exit status."""
        super().__init__(message)
        self.code = code
