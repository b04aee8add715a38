"""Issue 13 (items 3 and 6): mobile payment (医保移动支付) and admission by phone: ``pay_order`` (a hospital's bill paid in
the app, 6201/6301/6401), ``pay_charge`` (each attempt to take the own-money part through the payment channel, named by
the provider's callback) and ``admission_request`` (asked for in the app, admitted with 2401).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "pay_order",
        _text("pay_ord_id", 30),
        _text("pay_token", 40),
        _text("fixmedins_code", 12),
        _text("mdtrt_id", 30),
        _text("psn_no", 30),
        _text("kind", 12),
        _text("method", 12),
        _text("medins_ord_no", 40),
        sa.Column("acct_used", sa.Boolean(), nullable=False),
        _text("status", 12),
        _fen("medfee_sumamt"),
        _fen("fund_pay_sumamt"),
        _fen("acct_pay"),
        _fen("psn_cash_pay"),
        sa.Column("setl_id", sa.String(length=30), nullable=True),
        _text("confirmed_by", 30),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        _text("reason", 200),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["mdtrt_id"], ["visit.mdtrt_id"], name=op.f("fk_pay_order_mdtrt_id_visit")),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_pay_order_psn_no_person")),
        sa.PrimaryKeyConstraint("pay_ord_id", name=op.f("pk_pay_order")),
        sa.UniqueConstraint("pay_token", name=op.f("uq_pay_order_pay_token")),
    )
    op.create_index("ix_pay_order_psn_no", "pay_order", ["psn_no", "status"])
    op.create_index("ix_pay_order_mdtrt_id", "pay_order", ["mdtrt_id"])
    op.create_table(
        "pay_charge",
        _text("charge_id", 32),
        _text("pay_ord_id", 30),
        _fen("amount_fen"),
        _text("status", 16),
        _text("setl_id", 30),
        sa.Column("provider_txn_id", sa.String(length=64), nullable=True),
        _text("refund_id", 32),
        _text("reason", 200),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("refunded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["pay_ord_id"], ["pay_order.pay_ord_id"], name=op.f("fk_pay_charge_pay_ord_id_pay_order")),
        sa.PrimaryKeyConstraint("charge_id", name=op.f("pk_pay_charge")),
        sa.UniqueConstraint("provider_txn_id", name=op.f("uq_pay_charge_provider_txn_id")),
    )
    op.create_index("ix_pay_charge_pay_ord_id", "pay_charge", ["pay_ord_id"])
    op.create_table(
        "admission_request",
        _text("adm_req_id", 30),
        _text("psn_no", 30),
        _text("fixmedins_code", 12),
        _text("dept_name", 50),
        _text("reason", 200),
        _text("tel", 50),
        _text("status", 12),
        _text("mdtrt_id", 30),
        _text("requested_by", 30),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_admission_request_psn_no_person")),
        sa.PrimaryKeyConstraint("adm_req_id", name=op.f("pk_admission_request")),
    )
    op.create_index("ix_admission_request_hospital", "admission_request", ["fixmedins_code", "status"])
    op.create_index("ix_admission_request_psn_no", "admission_request", ["psn_no"])


def downgrade() -> None:
    op.drop_index("ix_admission_request_psn_no", table_name="admission_request")
    op.drop_index("ix_admission_request_hospital", table_name="admission_request")
    op.drop_table("admission_request")
    op.drop_index("ix_pay_charge_pay_ord_id", table_name="pay_charge")
    op.drop_table("pay_charge")
    op.drop_index("ix_pay_order_mdtrt_id", table_name="pay_order")
    op.drop_index("ix_pay_order_psn_no", table_name="pay_order")
    op.drop_table("pay_order")
