"""Issue 14: maternity allowances (生育津贴) scheduled from maternity settlements, and the accounts benefits are paid to.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def _int(name: str, kind: type = sa.Integer) -> sa.Column:
    return sa.Column(name, kind(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "benefit_account",
        _text("psn_no", 30),
        _text("bank_name", 100),
        sa.Column("account_no", sa.Text(), nullable=False),
        _text("account_tail", 4),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_benefit_account_psn_no_person")),
        sa.PrimaryKeyConstraint("psn_no", name=op.f("pk_benefit_account")),
    )
    op.create_table(
        "maternity_allowance",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("setl_id", 30),
        _text("psn_no", 30),
        _text("mdtrt_id", 30),
        _text("admdvs", 6),
        _text("emp_no", 30),
        _text("matn_type", 6),
        _int("geso_val"),
        _int("fetus_cnt"),
        sa.Column("birth_date", sa.Date(), nullable=False),
        _int("days"),
        _int("monthly_wage_fen", sa.BigInteger),
        _text("wage_basis", 200),
        _int("amount_fen", sa.BigInteger),
        _text("steps", 500),
        _text("status", 12),
        _text("reason", 300),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        _text("bank_ref", 64),
        _text("account_tail", 4),
        _int("attempts"),
        _text("last_error", 300),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_maternity_allowance_psn_no_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maternity_allowance")),
        sa.UniqueConstraint("setl_id", name=op.f("uq_maternity_allowance_setl_id")),
    )
    op.create_index("ix_maternity_allowance_psn_no", "maternity_allowance", ["psn_no"])
    op.create_index("ix_maternity_allowance_status_due_on", "maternity_allowance", ["status", "due_on"])


def downgrade() -> None:
    op.drop_index("ix_maternity_allowance_status_due_on", table_name="maternity_allowance")
    op.drop_index("ix_maternity_allowance_psn_no", table_name="maternity_allowance")
    op.drop_table("maternity_allowance")
    op.drop_table("benefit_account")
