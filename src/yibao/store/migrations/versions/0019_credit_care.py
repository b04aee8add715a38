"""Issue 13: credit care (信用就医): partner banks (keys encrypted at rest), people's credit agreements, the banks' advances
of settlements' cash parts, their instalments and the repayments made (yibao.credit).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "credit_bank",
        _text("bank_code", 20),
        _text("bank_name", 100),
        _text("url", 500),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bank_code", name=op.f("pk_credit_bank")),
    )
    op.create_table(
        "credit_agreement",
        _text("agreement_no", 30),
        _text("psn_no", 30),
        _text("bank_code", 20),
        _text("status", 10),
        _fen("limit_fen"),
        _fen("available_fen"),
        sa.Column("auto_account", sa.Integer(), nullable=False),
        _text("bank_ref", 64),
        _text("reason", 200),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("suspended_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_credit_agreement_psn_no_person")),
        sa.ForeignKeyConstraint(["bank_code"], ["credit_bank.bank_code"], name=op.f("fk_credit_agreement_bank_code_credit_bank")),
        sa.PrimaryKeyConstraint("agreement_no", name=op.f("pk_credit_agreement")),
    )
    op.create_index("ix_credit_agreement_psn_no", "credit_agreement", ["psn_no", "status"])
    op.create_table(
        "credit_advance",
        _text("advance_no", 30),
        _text("agreement_no", 30),
        _text("psn_no", 30),
        _text("bank_code", 20),
        _text("setl_id", 30),
        _text("mdtrt_id", 30),
        _text("fixmedins_code", 12),
        _text("insuplc_admdvs", 6),
        _text("insutype", 6),
        _fen("cash_fen"),
        _fen("amount_fen"),
        _text("bank_ref", 64),
        _text("status", 10),
        sa.Column("advanced_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agreement_no"], ["credit_agreement.agreement_no"],
                                name=op.f("fk_credit_advance_agreement_no_credit_agreement")),
        sa.PrimaryKeyConstraint("advance_no", name=op.f("pk_credit_advance")),
    )
    op.create_index("ix_credit_advance_setl_id", "credit_advance", ["setl_id"], unique=True)
    op.create_index("ix_credit_advance_psn_no", "credit_advance", ["psn_no"])
    op.create_index("ix_credit_advance_bank_code", "credit_advance", ["bank_code", "advanced_at"])
    op.create_table(
        "credit_instalment",
        _text("advance_no", 30),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("psn_no", 30),
        sa.Column("due_date", sa.Date(), nullable=False),
        _fen("amount_fen"),
        _fen("paid_fen"),
        _text("status", 10),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["advance_no"], ["credit_advance.advance_no"],
                                name=op.f("fk_credit_instalment_advance_no_credit_advance")),
        sa.PrimaryKeyConstraint("advance_no", "seq", name=op.f("pk_credit_instalment")),
    )
    op.create_index("ix_credit_instalment_due", "credit_instalment", ["status", "due_date"])
    op.create_index("ix_credit_instalment_psn_no", "credit_instalment", ["psn_no"])
    op.create_table(
        "credit_repayment",
        _text("repayment_no", 30),
        _text("advance_no", 30),
        sa.Column("seq", sa.Integer(), nullable=False),
        _text("psn_no", 30),
        _text("bank_code", 20),
        _fen("amount_fen"),
        _text("source", 6),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("repayment_no", name=op.f("pk_credit_repayment")),
    )
    op.create_index("ix_credit_repayment_advance_no", "credit_repayment", ["advance_no", "seq"])
    op.create_index("ix_credit_repayment_bank", "credit_repayment", ["bank_code", "on_date"])
    op.create_index("ix_credit_repayment_psn_no", "credit_repayment", ["psn_no", "source"])


def downgrade() -> None:
    for index, table in (("ix_credit_repayment_psn_no", "credit_repayment"), ("ix_credit_repayment_bank", "credit_repayment"),
                         ("ix_credit_repayment_advance_no", "credit_repayment")):
        op.drop_index(index, table_name=table)
    op.drop_table("credit_repayment")
    op.drop_index("ix_credit_instalment_psn_no", table_name="credit_instalment")
    op.drop_index("ix_credit_instalment_due", table_name="credit_instalment")
    op.drop_table("credit_instalment")
    for index in ("ix_credit_advance_bank_code", "ix_credit_advance_psn_no", "ix_credit_advance_setl_id"):
        op.drop_index(index, table_name="credit_advance")
    op.drop_table("credit_advance")
    op.drop_index("ix_credit_agreement_psn_no", table_name="credit_agreement")
    op.drop_table("credit_agreement")
    op.drop_table("credit_bank")
