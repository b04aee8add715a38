"""Issue 14: settlement lists (4101) of inpatient stays grouped by DRG and DIP at upload (``drg_case``), read by the
monthly hospital payment report through (fixmedins_code, setl_time).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def _number(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def _fen(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    exact = sa.Text() if op.get_bind().dialect.name == "sqlite" else None  # ExactNumeric: decimal text on SQLite
    op.create_table(
        "drg_case",
        _text("setl_list_id", 30),
        _text("setl_id", 30),
        _text("mdtrt_id", 30),
        _text("psn_no", 30),
        _text("fixmedins_code", 12),
        _text("insutype", 6),
        _text("insuplc_admdvs", 6),
        _number("hosp_lv"),
        sa.Column("setl_time", sa.DateTime(), nullable=False),
        _fen("medfee_sumamt"),
        _fen("fund_pay_sumamt"),
        _fen("psn_part_amt"),
        _text("main_diag_code", 30),
        sa.Column("diseinfo", sa.Text(), nullable=False),
        sa.Column("oprninfo", sa.Text(), nullable=False),
        _number("age"),
        _text("gend", 6),
        _number("act_ipt_days"),
        _text("dscg_way", 6),
        _number("nwb_bir_wt"),
        _text("tables_version", 100),
        _text("drg_code", 10),
        _text("drg_name", 200),
        sa.Column("drg_weight", exact if exact is not None else sa.Numeric(precision=8, scale=4), nullable=False),
        _text("mdc", 3),
        _text("adrg", 6),
        _text("drg_reason", 500),
        sa.Column("drg_trace", sa.Text(), nullable=False),
        _text("dip_code", 30),
        _text("dip_name", 200),
        sa.Column("dip_score", exact if exact is not None else sa.Numeric(precision=12, scale=2), nullable=False),
        _text("dip_kind", 20),
        _text("dip_reason", 500),
        sa.Column("dip_trace", sa.Text(), nullable=False),
        _text("opter", 30),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("setl_list_id", name=op.f("pk_drg_case")),
    )
    op.create_index("ux_drg_case_setl_id", "drg_case", ["setl_id"], unique=True)
    op.create_index("ix_drg_case_fixmedins_code_setl_time", "drg_case", ["fixmedins_code", "setl_time"])


def downgrade() -> None:
    op.drop_index("ix_drg_case_fixmedins_code_setl_time", table_name="drg_case")
    op.drop_index("ux_drg_case_setl_id", table_name="drg_case")
    op.drop_table("drg_case")
