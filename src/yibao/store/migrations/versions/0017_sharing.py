"""Issue 14 item 3, 保医通: ``insurer`` (commercial insurers and their sealed secrets), ``sharing_consent`` and
``sharing_consent_settlement`` (a person's per-matter authorisations and the settlements each covers), ``sharing_access``
(every insurer access, an SM3 hash chain; the database refuses UPDATE and DELETE on it, like ``audit_event``) and
``sharing_chain_head`` (the chain's last link, locked by each append).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

APPEND_ONLY_SQLITE = """
CREATE TRIGGER sharing_access_{verb}_refused BEFORE {verb_upper} ON sharing_access
BEGIN SELECT RAISE(ABORT, 'sharing_access is append-only'); END
"""
APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION sharing_access_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'sharing_access is append-only'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER sharing_access_append_only BEFORE UPDATE OR DELETE ON sharing_access
FOR EACH ROW EXECUTE FUNCTION sharing_access_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "insurer",
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("insurer_name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("insurer_code", name=op.f("pk_insurer")),
    )
    op.create_table(
        "sharing_access",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("consent_id", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("setl_ids", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sharing_access")),
    )
    op.create_index("ix_sharing_access_consent_id", "sharing_access", ["consent_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(APPEND_ONLY_SQLITE.format(verb="update", verb_upper="UPDATE"))
        op.execute(APPEND_ONLY_SQLITE.format(verb="delete", verb_upper="DELETE"))
    else:
        op.execute(APPEND_ONLY_PG)
    op.create_table(
        "sharing_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_chain_head")),
    )
    op.create_table(
        "sharing_consent",
        sa.Column("consent_id", sa.String(length=32), nullable=False),
        sa.Column("psn_no", sa.String(length=30), nullable=False),
        sa.Column("insurer_code", sa.String(length=20), nullable=False),
        sa.Column("granted_by", sa.String(length=30), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("range_begin", sa.Date(), nullable=True),
        sa.Column("range_end", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["insurer_code"], ["insurer.insurer_code"], name=op.f("fk_sharing_consent_insurer_code_insurer")),
        sa.ForeignKeyConstraint(["psn_no"], ["person.psn_no"], name=op.f("fk_sharing_consent_psn_no_person")),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_sharing_consent")),
    )
    op.create_index("ix_sharing_consent_psn_no", "sharing_consent", ["psn_no"], unique=False)
    op.create_table(
        "sharing_consent_settlement",
        sa.Column("consent_id", sa.String(length=32), nullable=False),
        sa.Column("setl_id", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(["consent_id"], ["sharing_consent.consent_id"],
                                name=op.f("fk_sharing_consent_settlement_consent_id_sharing_consent")),
        sa.PrimaryKeyConstraint("consent_id", "setl_id", name=op.f("pk_sharing_consent_settlement")),
    )


def downgrade() -> None:
    op.drop_table("sharing_consent_settlement")
    op.drop_index("ix_sharing_consent_psn_no", table_name="sharing_consent")
    op.drop_table("sharing_consent")
    op.drop_table("sharing_chain_head")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS sharing_access_update_refused")
        op.execute("DROP TRIGGER IF EXISTS sharing_access_delete_refused")
    else:
        op.execute("DROP TRIGGER IF EXISTS sharing_access_append_only ON sharing_access")
        op.execute("DROP FUNCTION IF EXISTS sharing_access_append_only()")
    op.drop_index("ix_sharing_access_consent_id", table_name="sharing_access")
    op.drop_table("sharing_access")
    op.drop_table("insurer")
