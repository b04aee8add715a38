"""Issue 10: the vendors' console — the message log the gateway writes for every verified call, platform staff,
console sessions and sign-in challenges.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("fixmedins_code", sa.String(length=12), nullable=False),
        sa.Column("access_key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("infno", sa.String(length=6), nullable=False),
        sa.Column("msgid", sa.String(length=40), nullable=False),
        sa.Column("scheme", sa.String(length=10), nullable=False),
        sa.Column("dialect", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("infcode", sa.Integer(), nullable=False),
        sa.Column("err_msg", sa.String(length=200), nullable=False),
        sa.Column("duration_us", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=False),
        sa.Column("request_size", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("response_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_message")),
    )
    op.create_index("ix_console_message_fixmedins_code_id", "console_message", ["fixmedins_code", "id"])
    op.create_index("ix_console_message_at", "console_message", ["at"])
    op.create_table(
        "console_staff",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("pwd_hash", sa.LargeBinary(), nullable=False),
        sa.Column("pwd_salt", sa.LargeBinary(), nullable=False),
        sa.Column("pwd_params", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_console_staff")),
    )
    op.create_table(
        "console_session",
        sa.Column("token_sm3", sa.String(length=64), nullable=False),
        sa.Column("fixmedins_code", sa.String(length=12), nullable=False),
        sa.Column("access_key", sa.String(length=64), nullable=False),
        sa.Column("staff", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_sm3", name=op.f("pk_console_session")),
    )
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])
    op.create_table(
        "console_challenge",
        sa.Column("challenge", sa.String(length=64), nullable=False),
        sa.Column("access_key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("challenge", name=op.f("pk_console_challenge")),
    )
    op.create_index("ix_console_challenge_expires_at", "console_challenge", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_challenge")
    op.drop_table("console_session")
    op.drop_table("console_staff")
    op.drop_table("console_message")
