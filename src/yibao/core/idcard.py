"""Resident identity card numbers (GB 11643-1999).

18 characters: 6-digit region, 8-digit birth date, 3-digit sequence (odd for men, even for
women), and a check character computed by ISO 7064 MOD 11-2.
"""

from __future__ import annotations

import re
from datetime import date

from yibao.core.errors import InputError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_char(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def make(region: str, birth: date, sequence: int) -> str:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + check_char(body)


def validate(certno: str, field: str = "certno") -> tuple[date, str]:
    """Check a resident ID number; return (birth date, gend code '1' male / '2' female)."""
    number = certno.strip().upper()
    if not _SHAPE.match(number):
        raise InputError("resident ID number must be 17 digits and a check digit (0-9 or X)", field=field)
    if check_char(number[:17]) != number[17]:
        raise InputError("resident ID number fails the GB 11643 check digit", field=field)
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InputError("resident ID number holds an impossible birth date", field=field) from None
    return birth, "1" if int(number[16]) % 2 else "2"
