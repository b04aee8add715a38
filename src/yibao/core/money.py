"""Money is integer fen inside yibao; Decimal with 2 places only at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from yibao.core.errors import InputError

CENT = Decimal("0.01")


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
        raise InputError(f"'{value}' is not an amount", field=field) from None
    if not amount.is_finite():
        raise InputError(f"'{value}' is not an amount", field=field)
    if amount != amount.quantize(CENT):
        raise InputError(f"'{value}' has more than 2 decimal places", field=field)
    return int(amount * 100)


def yuan(fen: int) -> Decimal:
    """Fen to a 2-place Decimal for the wire."""
    return (Decimal(fen) / 100).quantize(CENT)


def round_fen(value: Decimal) -> int:
    """Round a fractional fen amount half-up to whole fen."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
