"""A cancelled registration's number may be used again: the institution's outpatient (ipt_otp_no) and
inpatient (ipt_no) numbers are unique among its visits that are not cancelled (a partial unique index),
as HIS systems register again with the same number after 2202 / 2404.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD = "uq_visit_fixmedins_code_ipt_otp_no_kind"
NEW = "ux_visit_open_number"
OPEN = sa.text("status <> 'cancelled'")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_visit_without(OLD)
    else:
        op.drop_constraint(OLD, "visit", type_="unique")
    op.create_index(NEW, "visit", ["fixmedins_code", "ipt_otp_no", "kind"], unique=True, sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index(NEW, table_name="visit")
    with op.batch_alter_table("visit") as batch:
        batch.create_unique_constraint(OLD, ["fixmedins_code", "ipt_otp_no", "kind"])


def _rebuild_visit_without(constraint: str) -> None:
    """SQLite cannot drop a table constraint: the table is made again without it, in this transaction.

    Fee lines and diagnoses refer to visit, and foreign keys are on (the pragma cannot change inside a
    transaction), so the checks are deferred to the commit and the rows go back into a table named visit
    before it: renaming tables instead would rewrite or orphan the children's references.
    """
    bind = op.get_bind()
    ddl = str(bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'visit'").scalar())
    without = re.sub(rf",\s*CONSTRAINT {constraint} UNIQUE \([^)]*\)", "", ddl)
    if without == ddl:
        raise RuntimeError(f"visit has no constraint {constraint} to drop: {ddl}")
    indexes = [row[0] for row in bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'visit' "
                                                      "AND sql IS NOT NULL")]
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TEMP TABLE visit_0005 AS SELECT * FROM visit")
    op.execute("DROP TABLE visit")
    op.execute(without)
    op.execute("INSERT INTO visit SELECT * FROM visit_0005")
    op.execute("DROP TABLE visit_0005")
    for index in indexes:
        op.execute(index)
