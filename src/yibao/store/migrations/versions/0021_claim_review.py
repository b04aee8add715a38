"""Issue 14: claim review (智能审核) — the rules that fired on settlements (``review_finding``), listed by the console's
reviewer page through found_at.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "review_finding",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _text("setl_id", 30),
        _text("mdtrt_id", 30),
        _text("psn_no", 30),
        _text("fixmedins_code", 12),
        _text("feedetl_sn", 30),
        _text("med_list_codg", 50),
        _text("med_list_name", 200),
        _text("rule_id", 20),
        _text("rule_name", 100),
        _text("kind", 20),
        _text("severity", 1),
        _text("action", 10),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _text("content", 500),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_finding")),
    )
    op.create_index("ix_review_finding_found_at", "review_finding", ["found_at"])
    op.create_index("ix_review_finding_setl_id", "review_finding", ["setl_id"])


def downgrade() -> None:
    op.drop_index("ix_review_finding_setl_id", table_name="review_finding")
    op.drop_index("ix_review_finding_found_at", table_name="review_finding")
    op.drop_table("review_finding")
