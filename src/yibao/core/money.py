"""Money is integer fen inside yibao; Decimal with 2 places only at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from yibao.core.errors import InputError

CENT = Decimal("0.01")
# The interface's amounts are 数值型(16,2): at most 14 digits before the point. Anything larger is a typo or an attack,
# and would overflow the BigInteger fen columns further in.
MAX_YUAN = Decimal("99999999999999.99")


def to_fen(value: object, field: str = "amount") -> int:
    """Parse an amount in yuan (number or string, at most 2 decimals) into fen."""
    if isinstance(value, bool):
        raise InputError("must be an amount, not a boolean", field=field)
    if isinstance(value, float):
        # JSON floats should arrive as Decimal (the decoder's float_hook); never trust binary floats.
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InputError(f"'{_short(value)}' is not an amount", field=field) from None
    if not amount.is_finite():
        raise InputError(f"'{_short(value)}' is not an amount", field=field)
    if amount.copy_abs() > MAX_YUAN:  # copy_abs: abs() rounds to the context and overflows on 1e999999999
        raise InputError(f"'{_short(value)}' is larger than the largest amount ({MAX_YUAN})", field=field)
    if amount != amount.quantize(CENT):  # after the bound: quantize raises on a 1e400 instead of answering
        raise InputError(f"'{_short(value)}' has more than 2 decimal places", field=field)
    return int(amount * 100)


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def yuan(fen: int) -> Decimal:
    """Fen to a 2-place Decimal for the wire."""
    return (Decimal(fen) / 100).quantize(CENT)


def round_fen(value: Decimal) -> int:
    """Round a fractional fen amount half-up to whole fen."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
