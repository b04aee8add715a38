"""Issue 10: dialects and front servers.

A gateway key names the regional dialect its HIS speaks (gateway/dialects/<name>.yaml; NULL: the one the
request's path selects) and, when a front server (前置机) signs for it, that front server. Front servers get
a table of their own: name, the address their requests must come from, their secret (encrypted like the keys').

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "front_server",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_front_server"),
    )
    # existing keys keep what they had: no dialect bound (the path decides) and no front server trusted
    with op.batch_alter_table("gateway_client") as batch:
        batch.add_column(sa.Column("dialect", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("front_server", sa.String(length=40), nullable=True))
        batch.create_foreign_key("fk_gateway_client_front_server_front_server", "front_server", ["front_server"], ["name"])


def downgrade() -> None:
    with op.batch_alter_table("gateway_client") as batch:
        batch.drop_constraint("fk_gateway_client_front_server_front_server", type_="foreignkey")
        batch.drop_column("front_server")
        batch.drop_column("dialect")
    op.drop_table("front_server")
