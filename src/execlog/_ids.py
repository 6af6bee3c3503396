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

_VARIANT = 0x8000_0000_0000_0000  # the two variant bits "10" above 62 random bits

# The first 14 characters depend only on the millisecond: computed once per millisecond and kept
# as one (ms, text) tuple, so that concurrent threads always see a consistent pair.
_prefix: tuple[int, str] = (-1, "")


def new_id(time_ns: int) -> str:
    """Return a UUIDv7 string for the wall-clock instant ``time_ns`` (ns since the epoch)."""
    global _prefix  # noqa: PLW0603 - a per-process cache, replaced atomically
    ms, sub_ns = divmod(time_ns, 1_000_000)
    cached = _prefix
    if cached[0] != ms:
        head = f"{ms:012x}"
        cached = _prefix = (ms, f"{head[:8]}-{head[8:]}-7")
    tail = f"{_getrandbits(62) | _VARIANT:016x}"
    return f"{cached[1]}{(sub_ns << 12) // 1_000_000:03x}-{tail[:4]}-{tail[4:]}"


def reseed() -> None:
    """Re-seed the random tail (called in a forked child)."""
    _rng.seed(os.urandom(32))
