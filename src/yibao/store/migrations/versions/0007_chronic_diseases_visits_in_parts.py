"""Issue 10: chronic and special diseases, several settlements a visit.

- ``chronic_registration`` (2503/2504, 5301) and ``chronic_year_total`` (a person's deductible met and fund paid per
  registered disease and year); a settlement records the disease it posted to (``opsp_dise_code``, ``ytd_opsp_dedc``).
- A fee line's number is unique among the visit's lines that stand (a partial unique index), so a line cancelled by
  2205/2302 can be uploaded again with the same ``feedetl_sn``; fee lines keep what the HIS sent that 5204/5205 answer.
- A visit keeps what 2401/2402/2403 send that 5201 answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STANDING = sa.text("status <> 'cancelled'")


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False, server_default="")


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


VISIT_COLUMNS = (
    lambda: _text("coner_name", 50), lambda: _text("tel", 50), lambda: _text("medrcdno", 30), lambda: _text("adm_diag_dscr", 200),
    lambda: _text("dscg_dept_codg", 30), lambda: _text("dscg_dept_name", 100), lambda: _text("dscg_bed", 30),
    lambda: _text("oprn_oprt_code", 30), lambda: _text("oprn_oprt_name", 500), lambda: sa.Column("die_date", sa.Date(), nullable=True),
    lambda: _text("fpsc_no", 50), lambda: _text("matn_type", 6), lambda: _text("birctrl_type", 6),
    lambda: sa.Column("birctrl_matn_date", sa.Date(), nullable=True), lambda: _text("latechb_flag", 3), lambda: _text("pret_flag", 3),
    lambda: _text("cop_flag", 3), lambda: _count("geso_val"), lambda: _count("fetts"), lambda: _count("fetus_cnt"),
    lambda: _text("opter", 30), lambda: _text("opter_name", 50), lambda: sa.Column("opt_time", sa.DateTime(), nullable=True),
)
FEE_LINE_COLUMNS = (
    lambda: _text("dise_codg", 30), lambda: _text("drord_no", 30), lambda: _text("init_feedetl_sn", 30),
    lambda: _text("sin_dos_dscr", 200), lambda: _text("used_frqu_dscr", 200),
    lambda: sa.Column("prd_days", sa.Numeric(precision=6, scale=2), nullable=False, server_default="0"),
    lambda: _text("medc_way_dscr", 200), lambda: _text("acord_dept_codg", 30), lambda: _text("acord_dept_name", 100),
    lambda: _text("orders_dr_code", 30), lambda: _text("orders_dr_name", 50), lambda: _text("hosp_appr_flag", 3),
    lambda: _text("tcmdrug_used_way", 6), lambda: _text("etip_flag", 3), lambda: _text("etip_hosp_code", 30),
    lambda: _text("dscg_tkdrug_flag", 3), lambda: _text("matn_fee_flag", 6), lambda: _text("opter", 30), lambda: _text("opter_name", 50),
    lambda: sa.Column("opt_time", sa.DateTime(), nullable=True),
)


def upgrade() -> None:
    op.create_table(
        "chronic_registration",
        sa.Column("trt_dcla_detl_sn", sa.String(length=30), nullable=False),
        sa.Column("psn_no", sa.String(length=30), nullable=False),
        sa.Column("insutype", sa.String(length=6), nullable=False),
        sa.Column("opsp_dise_code", sa.String(length=30), nullable=False),
        sa.Column("opsp_dise_name", sa.String(length=300), nullable=False),
        sa.Column("tel", sa.String(length=50), nullable=False),
        sa.Column("addr", sa.String(length=200), nullable=False),
        sa.Column("insu_optins", sa.String(length=6), nullable=False),
        sa.Column("ide_fixmedins_no", sa.String(length=30), nullable=False),
        sa.Column("ide_fixmedins_name", sa.String(length=200), nullable=False),
        sa.Column("hosp_ide_date", sa.Date(), nullable=False),
        sa.Column("diag_dr_codg", sa.String(length=30), nullable=False),
        sa.Column("diag_dr_name", sa.String(length=50), nullable=False),
        sa.Column("begndate", sa.Date(), nullable=False),
        sa.Column("enddate", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("fixmedins_code", sa.String(length=12), nullable=False),
        sa.Column("opter", sa.String(length=30), nullable=False),
        sa.Column("opter_name", sa.String(length=50), nullable=False),
        sa.Column("filed_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column("cancel_memo", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_chronic_registration_psn_no_person")),
        sa.PrimaryKeyConstraint("trt_dcla_detl_sn", name=op.f("pk_chronic_registration")),
    )
    op.create_index("ix_chronic_registration_psn_no", "chronic_registration", ["psn_no", "opsp_dise_code"])
    op.create_table(
        "chronic_year_total",
        sa.Column("psn_no", sa.String(length=30), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("opsp_dise_code", sa.String(length=30), nullable=False),
        sa.Column("dedc", sa.BigInteger(), nullable=False),
        sa.Column("hifp", sa.BigInteger(), nullable=False),
        sa.Column("settlements", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("psn_no", "year", "opsp_dise_code", name=op.f("pk_chronic_year_total")),
    )
    with op.batch_alter_table("settlement") as batch:
        batch.add_column(_text("opsp_dise_code", 30))
        batch.add_column(sa.Column("ytd_opsp_dedc", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("visit") as batch:
        for column in VISIT_COLUMNS:
            batch.add_column(column())
    # SQLite cannot drop a table constraint in place: batch mode makes fee_line again without it (no table refers to fee_line)
    with op.batch_alter_table("fee_line", recreate="always" if op.get_bind().dialect.name == "sqlite" else "auto") as batch:
        for column in FEE_LINE_COLUMNS:
            batch.add_column(column())
        batch.drop_constraint("uq_fee_line_mdtrt_id_feedetl_sn", type_="unique")
    op.create_index("ix_fee_line_mdtrt_id", "fee_line", ["mdtrt_id"])
    op.create_index("ux_fee_line_open_sn", "fee_line", ["mdtrt_id", "feedetl_sn"], unique=True, sqlite_where=STANDING,
                    postgresql_where=STANDING)


def downgrade() -> None:
    op.drop_index("ux_fee_line_open_sn", table_name="fee_line")
    op.drop_index("ix_fee_line_mdtrt_id", table_name="fee_line")
    with op.batch_alter_table("fee_line") as batch:
        for column in FEE_LINE_COLUMNS:
            batch.drop_column(column().name)
        batch.create_unique_constraint("uq_fee_line_mdtrt_id_feedetl_sn", ["mdtrt_id", "feedetl_sn"])
    with op.batch_alter_table("visit") as batch:
        for column in VISIT_COLUMNS:
            batch.drop_column(column().name)
    with op.batch_alter_table("settlement") as batch:
        batch.drop_column("ytd_opsp_dedc")
        batch.drop_column("opsp_dise_code")
    op.drop_table("chronic_year_total")
    op.drop_index("ix_chronic_registration_psn_no", table_name="chronic_registration")
    op.drop_table("chronic_registration")
