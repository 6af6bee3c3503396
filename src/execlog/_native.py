"""The optional C accelerator, ``execlog._speedups``, or None where it is unavailable.

The pure-Python code is the reference implementation and is always complete; the accelerator
repeats the common case of a traced call in C (see ``_speedups.c``). It is built when the
package is installed from source with a C compiler, and skipped (with a warning from the
build) otherwise. ``EXECLOG_PURE_PYTHON=1`` turns it off at import, to compare or to debug.
"""

from __future__ import annotations

import os
import sysconfig
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["ABI", "SPEEDUPS", "load"]

#: The interface version this Python code expects of ``_speedups.c`` (its ``ABI`` constant).
ABI = 8


def load() -> ModuleType | None:
    """Import the accelerator unless it is missing or ``EXECLOG_PURE_PYTHON`` is set."""
    if os.environ.get("EXECLOG_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no"):
        return None
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None  # free-threaded CPython: the extension relies on the GIL
    try:
        from execlog import _speedups  # noqa: PLC0415 - optional, compiled
    except ImportError:
        return None
    if getattr(_speedups, "ABI", None) != ABI:
        return None  # built from other sources (an editable install not rebuilt): not used
    return _speedups


SPEEDUPS = load()
