"""Issue 10, msgid as clients make it: stored answers keyed by (institution, msgid, request), and a flag for a msgid
that two different requests used.

Many clients build msgid from the second and a counter that restarts, so two requests can share one. The primary key
of gateway_message gains the request's fingerprint (request_sm3): a retry still finds its first answer, a different
request with the same msgid is answered and stored beside it. The key's prefix (fixmedins_code, msgid) still serves the
lookup by msgid.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PK = "pk_gateway_message"


def upgrade() -> None:
    # batch: SQLite copies the table into the new shape (it cannot alter a primary key); PostgreSQL alters it in place
    with op.batch_alter_table("gateway_message") as batch:
        batch.add_column(sa.Column("msgid_reused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.drop_constraint(PK, type_="primary")
        batch.create_primary_key(PK, ["fixmedins_code", "msgid", "request_sm3"])


def downgrade() -> None:
    # the old key holds one answer per msgid: keep the first stored
    op.execute("DELETE FROM gateway_message WHERE msgid_reused = true OR EXISTS (SELECT 1 FROM gateway_message AS earlier "
               "WHERE earlier.fixmedins_code = gateway_message.fixmedins_code AND earlier.msgid = gateway_message.msgid "
               "AND earlier.created_at < gateway_message.created_at)")
    with op.batch_alter_table("gateway_message") as batch:
        batch.drop_constraint(PK, type_="primary")
        batch.create_primary_key(PK, ["fixmedins_code", "msgid"])
        batch.drop_column("msgid_reused")
