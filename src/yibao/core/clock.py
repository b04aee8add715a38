"""Platform time.

The national interface speaks Beijing time (UTC+8) without zone designators, so the platform
stores naive datetimes in that zone. One function gives "now" so tests can pin it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")


# Tests move the platform's time (a year boundary) with `pinned`; the clock keeps running from the pinned instant so
# settlements made one after another stay in order.
_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(BEIJING).replace(tzinfo=None) + _offset


@contextmanager
def pinned(at: datetime) -> Iterator[None]:
    """Run the block as if it were ``at`` (Beijing time) now."""
    global _offset
    before = _offset
    _offset = at - datetime.now(BEIJING).replace(tzinfo=None)
    try:
        yield
    finally:
        _offset = before


def today() -> date:
    return now().date()


def fmt_datetime(value: datetime | None) -> str | None:
    """``yyyy-MM-dd HH:mm:ss`` as the interface writes datetimes."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def fmt_date(value: date | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value else None


def fmt_compact_ms(value: datetime) -> str:
    """``yyyyMMddHHmmssSSS`` as in ``refmsg_time`` / ``respond_time``."""
    return value.strftime("%Y%m%d%H%M%S") + f"{value.microsecond // 1000:03d}"


# The forms clients write dates and times in: yyyy-MM-dd or yyyy/MM/dd (C#'s zh-CN DateTime.ToString() drops leading
# zeros: 2021/1/5 8:03:04), a space or T, seconds optional, milliseconds (2021-10-10 18:57:18.000); or compact
# yyyyMMdd[HHmmss[SSS]] (refmsg_time's own form).
_SEPARATED = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,6}))?)?)?", re.ASCII)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})(\d{3})?)?", re.ASCII)


def _parsed(text: str) -> datetime | None:
    found = _SEPARATED.fullmatch(text)
    if found:
        year, _, month, day, hour, minute, second, fraction = found.groups()
    else:
        found = _COMPACT.fullmatch(text)
        if not found:
            return None
        year, month, day, hour, minute, second, fraction = found.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
    except ValueError:  # 2026-13-01, 2026-02-30, 25:00
        return None


def parse_datetime(text: str, field: str) -> datetime:
    """A date and time as any client writes it (see `_SEPARATED`); a bare date is its midnight."""
    from yibao.core.errors import InputError

    text = text.strip()
    value = _parsed(text)
    if value is None:
        raise InputError(f"'{text[:40]}' is not a datetime (yyyy-MM-dd HH:mm:ss)", field=field)
    return value


def parse_date(text: str, field: str) -> date:
    """A date as any client writes it; a date and time (C# serialises DateTime with its midnight) gives its date."""
    from yibao.core.errors import InputError

    text = text.strip()
    value = _parsed(text)
    if value is None:
        raise InputError(f"'{text[:40]}' is not a date (yyyy-MM-dd)", field=field)
    return value.date()


def age_on(birth: date, on: date) -> int:
    """Completed years of age on a day."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
