"""Issue 13: medical e-bills (医疗收费电子票据). ``bill`` (one per settlement or reversal, its signed content and standing),
``bill_key`` (this node's SM2 signing keys, the private ones sealed), ``bill_series`` (the last number of each bill
code), ``bill_cursor`` (how far the background issuer looked), and ``ix_settlement_setl_time`` (the issuer's cursor).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bill",
        sa.Column("setl_id", sa.String(length=30), nullable=False),
        sa.Column("bill_code", sa.String(length=8), nullable=False),
        sa.Column("bill_no", sa.String(length=10), nullable=False),
        sa.Column("check_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("psn_no", sa.String(length=30), nullable=False),
        sa.Column("fixmedins_code", sa.String(length=12), nullable=False),
        sa.Column("setl_time", sa.DateTime(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("related_setl_id", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("setl_id", name=op.f("pk_bill")),
        sa.UniqueConstraint("bill_code", "bill_no", name=op.f("uq_bill_bill_code_bill_no")),
    )
    op.create_index("ix_bill_psn_no_setl_time", "bill", ["psn_no", "setl_time"], unique=False)
    op.create_table(
        "bill_key",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_bill_key")),
    )
    op.create_table(
        "bill_series",
        sa.Column("bill_code", sa.String(length=8), nullable=False),
        sa.Column("last_no", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bill_code", name=op.f("pk_bill_series")),
    )
    op.create_table(
        "bill_cursor",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("setl_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_bill_cursor")),
    )
    # on PostgreSQL the settlement table is partitioned: an index on the parent is made on every partition
    op.create_index("ix_settlement_setl_time", "settlement", ["setl_time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_settlement_setl_time", table_name="settlement")
    op.drop_table("bill_cursor")
    op.drop_table("bill_series")
    op.drop_table("bill_key")
    op.drop_index("ix_bill_psn_no_setl_time", table_name="bill")
    op.drop_table("bill")
