"""Ratios and quantities exact on SQLite: its NUMERIC columns have NUMERIC affinity and SQLAlchemy bound
Decimals as floats, so 0.0333 or 1.0001 were kept as binary doubles. The columns become TEXT (``ExactNumeric``
in ``yibao.store.types``) holding the value at the column's scale; stored doubles are rewritten as that text
(the shortest decimal that reads back as the double, then the column's scale). PostgreSQL's NUMERIC is exact
already: nothing changes there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from yibao.store.types import exact_text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# table: (its primary key, (column, precision, scale) of every decimal column)
COLUMNS = {
    "catalog_item": ("id", (("selfpay_prop", 5, 4),)),
    "fee_line": ("id", (("cnt", 16, 4), ("pric", 16, 6), ("selfpay_prop", 5, 4), ("prd_days", 6, 2))),
    "settlement": ("setl_id", (("pool_prop_selfpay", 5, 4),)),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _deferred_foreign_keys()
    for table, (key, columns) in COLUMNS.items():
        # read before the change: a double read as a float gives back all its digits (repr), the copy into a TEXT
        # column would keep only 15 of them
        exact = {name: _exact_values(table, key, name, precision, scale) for name, precision, scale in columns}
        with op.batch_alter_table(table) as batch:
            for name, precision, scale in columns:
                batch.alter_column(name, existing_type=sa.Numeric(precision, scale), type_=sa.Text())
        for name, values in exact.items():
            if values:
                op.get_bind().exec_driver_sql(f"UPDATE {table} SET {name} = ? WHERE {key} = ?", values)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _deferred_foreign_keys()
    for table, (_key, columns) in COLUMNS.items():
        # NUMERIC affinity turns the text back into the REAL (or INTEGER) SQLAlchemy's Numeric wrote
        with op.batch_alter_table(table) as batch:
            for name, precision, scale in columns:
                batch.alter_column(name, existing_type=sa.Text(), type_=sa.Numeric(precision, scale))


def _deferred_foreign_keys() -> None:
    """Batch mode drops each table and renames a copy into its place: with foreign keys on (the pragma cannot change
    inside a transaction), dropping settlement would fail for the ledger rows that refer to it, so the checks wait
    for the commit, when the rows are back under the same keys."""
    op.execute("PRAGMA defer_foreign_keys = ON")


def _exact_values(table: str, key: str, column: str, precision: int, scale: int) -> list[tuple[str, Any]]:
    rows = op.get_bind().exec_driver_sql(f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL").all()
    return [(exact_text(value, precision, scale), pk) for pk, value in rows]
