"""Platform time.

The national interface speaks Beijing time (UTC+8) without zone designators, so the platform
stores naive datetimes in that zone. One function gives "now" so tests can pin it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "CST")


def now() -> datetime:
    return datetime.now(BEIJING).replace(tzinfo=None)


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


def parse_datetime(text: str, field: str) -> datetime:
    from yibao.core.errors import InputError

    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise InputError(f"'{text}' is not a datetime (yyyy-MM-dd HH:mm:ss)", field=field)


def parse_date(text: str, field: str) -> date:
    from yibao.core.errors import InputError

    text = text.strip()
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise InputError(f"'{text}' is not a date (yyyy-MM-dd)", field=field)


def age_on(birth: date, on: date) -> int:
    """Completed years of age on a day."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
