"""Column types that behave the same on SQLite and PostgreSQL.

``ExactNumeric(p, s)`` is ``NUMERIC(p, s)`` on PostgreSQL. SQLite has no decimal type: a NUMERIC
column there has NUMERIC affinity, and SQLAlchemy's ``Numeric`` binds a Decimal as a float, so
0.0333 or 1.0001 were kept as binary doubles and 12345678901.123456 came back changed. On SQLite
the column is declared TEXT (TEXT affinity never converts text that looks like a number) and holds
the value at the column's scale, as PostgreSQL would hold it ("0.1000" for 0.1 in (5, 4)); a value
that does not fit (p - s digits before the point) is refused, as PostgreSQL refuses it.

Both engines return ``Decimal`` with the column's scale. On SQLite, SQL comparisons and sums on
these columns would see text: none are written (values are compared in Python after loading).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Numeric, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


def exact_text(value: Any, precision: int, scale: int) -> str:
    """``value`` as canonical decimal text with ``scale`` places; ValueError when it is no number or does not fit."""
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float: what was meant, not its binary expansion
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    # half away from zero: what PostgreSQL's numeric does with extra places
    fixed = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if fixed.adjusted() >= precision - scale:
        raise ValueError(f"{value} does not fit NUMERIC({precision}, {scale})")
    return f"{fixed.copy_abs() if fixed.is_zero() else fixed:f}"  # one text for zero: never "-0.0000"


class ExactNumeric(TypeDecorator[Decimal]):
    """NUMERIC(precision, scale) on PostgreSQL, exact decimal text on SQLite; Decimal in Python on both."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        # named as __init__'s arguments: SQLAlchemy builds the statement-cache key from them
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return exact_text(value, self.precision, self.scale)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return value  # psycopg returns Decimal for NUMERIC
        if type(value) is str:
            # already canonical when written through this type; quantize keeps text written otherwise at the scale
            return Decimal(value).quantize(self._quantum)
        # a REAL or INTEGER a database not yet at migration 0010 still holds
        return Decimal(exact_text(value, self.precision, self.scale))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
