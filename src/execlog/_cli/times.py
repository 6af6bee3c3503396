"""Parsing the command line's times (``--since 1h``) and ages (``--older-than 30d``)."""

from __future__ import annotations

import argparse
import datetime as dt
import re

__all__ = ["age", "iso_datetime", "moment"]

_UTC = dt.timezone.utc
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FRACTION = re.compile(r"(?<=:\d\d)\.(\d{1,6})(?=$|[+-])")


def iso_datetime(text: str) -> dt.datetime:
    """``datetime.fromisoformat`` that also takes what Python 3.10's does not.

    A trailing ``Z`` and fractions of 1 to 6 digits (3.10 takes only 3 or 6).

    Raises:
        ValueError: not an ISO 8601 date and time.
    """
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + m[1].ljust(6, "0"), text, count=1)
    return dt.datetime.fromisoformat(text)


def age(text: str) -> dt.timedelta:
    """``30m``, ``1h``, ``7d``, ``2w``, ``90s`` (also ``1.5h``) as a ``timedelta``.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it and exits with 2).
    """
    match = _AGE.fullmatch(text)
    if match is None:
        msg = f"invalid age {text!r}: use a number and a unit, e.g. 90s, 30m, 1h, 7d, 2w"
        raise argparse.ArgumentTypeError(msg)
    try:
        return dt.timedelta(**{_UNITS[match[2].lower()]: float(match[1])})
    except OverflowError:
        msg = f"invalid age {text!r}: too large"
        raise argparse.ArgumentTypeError(msg) from None


def moment(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """A point in time, as a timezone-aware UTC ``datetime``.

    Accepts an age back from now (``30m``, ``1h``, ``7d``: see :func:`age`), a date
    (``2026-11-01``: midnight UTC) or an ISO 8601 date and time (``2026-11-01T08:30``,
    ``2026-11-01 08:30:00+01:00``, ``...Z``); a time without an offset is UTC.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it and exits with 2).
    """
    if _AGE.fullmatch(text):
        try:
            return (now or dt.datetime.now(_UTC)) - age(text)
        except OverflowError:
            msg = f"invalid time {text!r}: too far back"
            raise argparse.ArgumentTypeError(msg) from None
    stripped = text.strip()
    try:
        if _DATE.fullmatch(stripped):
            value = dt.datetime.combine(dt.date.fromisoformat(stripped), dt.time())
        else:
            value = iso_datetime(stripped)
    except ValueError:
        msg = (
            f"invalid time {text!r}: use an age (30m, 1h, 7d), a date (2026-11-01) "
            "or an ISO datetime (2026-11-01T08:30:00Z)"
        )
        raise argparse.ArgumentTypeError(msg) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    try:
        return value.astimezone(_UTC)
    except OverflowError:  # 9999-12-31T23:30-01:00 is in the year 10000 in UTC
        msg = f"invalid time {text!r}: out of range (years 1 to 9999, in UTC)"
        raise argparse.ArgumentTypeError(msg) from None
