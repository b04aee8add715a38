"""Issue 12: on PostgreSQL, ``settlement`` and ``ledger_entry`` partitioned by year (RANGE on ``year`` and on
``posted_at``), a partition for each year present plus this year and the next, and a DEFAULT partition
(yibao/store/partitions.py). The primary keys take the partition key: (setl_id, year) and (id, posted_at).
SQLite is unchanged.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from alembic import op

from yibao.core import clock
from yibao.store.partitions import partition_table, unpartition_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SETTLEMENT_INDEXES = {"ix_settlement_mdtrt_id": "mdtrt_id", "ix_settlement_fixmedins_code_setl_time": "fixmedins_code, setl_time",
                      "ix_settlement_psn_no_year": "psn_no, year"}
SETTLEMENT_KEYS = {"fk_settlement_mdtrt_id_visit": "FOREIGN KEY (mdtrt_id) REFERENCES visit (mdtrt_id)"}
LEDGER_INDEXES = {"ix_ledger_entry_setl_id": "setl_id", "ix_ledger_entry_account": "account"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection, year = op.get_bind(), clock.now().year
    partition_table(connection, "settlement", ("setl_id", "year"), SETTLEMENT_INDEXES, SETTLEMENT_KEYS, "year", year)
    partition_table(connection, "ledger_entry", ("id", "posted_at"), LEDGER_INDEXES, {},
                    "extract(year FROM posted_at)", year)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    unpartition_table(connection, "settlement", "setl_id", SETTLEMENT_INDEXES, SETTLEMENT_KEYS)
    unpartition_table(connection, "ledger_entry", "id", LEDGER_INDEXES, {})
