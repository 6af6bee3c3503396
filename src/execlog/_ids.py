"""Time-ordered, globally unique execution ids (UUIDv7 layout, RFC 9562).

Layout: 48 bits of Unix milliseconds, version 7, 12 bits of sub-millisecond precision
(RFC 9562 section 6.2 method 3), the variant, then 62 random bits. Ids made in one process
sort by creation time to 1/4096 ms; the random tail keeps them unique across processes and
hosts. The random source is re-seeded after ``fork`` so a child never repeats its parent.
"""

from __future__ import annotations

import os
import random

__all__ = ["new_id", "reseed"]

_rng = random.Random(os.urandom(32))  # noqa: S311 - uniqueness, not secrecy
_getrandbits = _rng.getrandbits

_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)


def new_id(time_ns: int) -> str:
    """Return a UUIDv7 string for the wall-clock instant ``time_ns`` (ns since the epoch)."""
    ms, sub_ns = divmod(time_ns, 1_000_000)
    value = (
        (ms << 80) | _VERSION_AND_VARIANT | (((sub_ns << 12) // 1_000_000) << 64) | _getrandbits(62)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def reseed() -> None:
    """Re-seed the random tail (called in a forked child)."""
    _rng.seed(os.urandom(32))
