"""Issue 12: filings for care away from home (异地就医备案): ``care_away_filing`` (the app, 2501/2502), read by settlement
and 2001 through one index on (psn_no, target_admdvs, status).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "care_away_filing",
        _text("trt_dcla_detl_sn", 30),
        _text("psn_no", 30),
        _text("insutype", 6),
        _text("filing_type", 3),
        _text("target_admdvs", 6),
        _text("insu_optins", 6),
        sa.Column("begndate", sa.Date(), nullable=False),
        sa.Column("enddate", sa.Date(), nullable=True),
        _text("status", 10),
        _text("dcla_souc", 3),
        _text("fixmedins_code", 12),
        _text("tel", 50),
        _text("addr", 200),
        _text("reason", 500),
        _text("diag_code", 30),
        _text("diag_name", 300),
        _text("dise_cond_dscr", 500),
        _text("reflin_medins_no", 30),
        _text("reflin_medins_name", 200),
        _text("hosp_agre_refl_flag", 3),
        _text("refl_type", 6),
        sa.Column("refl_date", sa.Date(), nullable=True),
        _text("refl_opnn", 500),
        _text("opter", 30),
        _text("opter_name", 50),
        sa.Column("filed_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        _text("cancel_memo", 500),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_care_away_filing_psn_no_person")),
        sa.PrimaryKeyConstraint("trt_dcla_detl_sn", name=op.f("pk_care_away_filing")),
    )
    op.create_index("ix_care_away_filing_psn_no", "care_away_filing", ["psn_no", "target_admdvs", "status"])


def downgrade() -> None:
    op.drop_index("ix_care_away_filing_psn_no", table_name="care_away_filing")
    op.drop_table("care_away_filing")
