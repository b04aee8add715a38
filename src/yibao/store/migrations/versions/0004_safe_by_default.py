"""Safe by default: deployment mode, secrets encrypted at rest, key schemes and rotation grace,
password parameters per hash, family removal, rate counters, the append-only audit trail.

Existing plaintext secrets (institution and channel secrets, QR sealing keys) are encrypted
under the master key in place.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from yibao.core import vault

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY_SQLITE = """
CREATE TRIGGER audit_event_{verb}_refused BEFORE {verb_upper} ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END
"""
APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "platform_setting",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_platform_setting")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("fixmedins_code", sa.String(length=12), nullable=False),
        sa.Column("infno", sa.String(length=6), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_kind_at", "audit_event", ["kind", "at"])
    op.create_index("ix_audit_event_fixmedins_code_at", "audit_event", ["fixmedins_code", "at"])
    op.create_table(
        "rate_counter",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_counter")),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(APPEND_ONLY_SQLITE.format(verb="update", verb_upper="UPDATE"))
        op.execute(APPEND_ONLY_SQLITE.format(verb="delete", verb_upper="DELETE"))
    else:
        op.execute(APPEND_ONLY_PG)

    with op.batch_alter_table("gateway_client") as batch:
        batch.alter_column("secret", type_=sa.Text(), existing_type=sa.String(length=128), existing_nullable=False)
        # existing keys keep working with every scheme they could use before; new keys get yibao's own
        batch.add_column(sa.Column("schemes", sa.String(length=40), nullable=False, server_default="yibao,csb,tif"))
        batch.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_valid_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("rotated_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("ec_channel") as batch:
        batch.alter_column("secret", type_=sa.Text(), existing_type=sa.String(length=128), existing_nullable=False)
    with op.batch_alter_table("ec_credential") as batch:
        batch.add_column(sa.Column("pwd_params", sa.String(length=60), nullable=True))
    with op.batch_alter_table("ec_family") as batch:
        batch.add_column(sa.Column("removed_by", sa.String(length=30), nullable=True))
        batch.add_column(sa.Column("removed_at", sa.DateTime(), nullable=True))

    _encrypt_existing()


def _encrypt_existing() -> None:
    """Seal what earlier versions stored in the clear (a new database has nothing here)."""
    bind = op.get_bind()
    clients = bind.execute(sa.text("SELECT access_key, secret FROM gateway_client")).all()
    channels = bind.execute(sa.text("SELECT chnl_id, secret FROM ec_channel")).all()
    qr_keys = bind.execute(sa.text("SELECT kid, enc_key, mac_key FROM ec_qr_key")).all()
    if not (clients or channels or qr_keys):
        return
    box = vault.current()
    for access_key, secret in clients:
        if not secret.startswith(vault.TEXT_PREFIX):
            bind.execute(sa.text("UPDATE gateway_client SET secret = :s WHERE access_key = :k"),
                         {"s": box.seal_text(secret, "gateway_client.secret"), "k": access_key})
    for chnl_id, secret in channels:
        if not secret.startswith(vault.TEXT_PREFIX):
            bind.execute(sa.text("UPDATE ec_channel SET secret = :s WHERE chnl_id = :c"),
                         {"s": box.seal_text(secret, "ec_channel.secret"), "c": chnl_id})
    for kid, enc_key, mac_key in qr_keys:
        bind.execute(sa.text("UPDATE ec_qr_key SET enc_key = :e, mac_key = :m WHERE kid = :k"),
                     {"e": vault.BYTES_PREFIX + box.seal(bytes(enc_key), "ec_qr_key.enc_key"),
                      "m": vault.BYTES_PREFIX + box.seal(bytes(mac_key), "ec_qr_key.mac_key"), "k": kid})


def downgrade() -> None:
    """Back to 0003: secrets opened again (the master key is needed), the new columns and tables dropped.

    The audit trail and rate counters go with their tables; keep a backup if the trail must survive a downgrade."""
    _decrypt_existing()
    with op.batch_alter_table("ec_family") as batch:
        batch.drop_column("removed_at")
        batch.drop_column("removed_by")
    with op.batch_alter_table("ec_credential") as batch:
        batch.drop_column("pwd_params")
    with op.batch_alter_table("ec_channel") as batch:
        batch.alter_column("secret", type_=sa.String(length=128), existing_type=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("gateway_client") as batch:
        batch.drop_column("rotated_at")
        batch.drop_column("previous_valid_until")
        batch.drop_column("previous_secret")
        batch.drop_column("schemes")
        batch.alter_column("secret", type_=sa.String(length=128), existing_type=sa.Text(), existing_nullable=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_update_refused")
        op.execute("DROP TRIGGER IF EXISTS audit_event_delete_refused")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    op.drop_table("rate_counter")
    op.drop_index("ix_audit_event_fixmedins_code_at", table_name="audit_event")
    op.drop_index("ix_audit_event_kind_at", table_name="audit_event")
    op.drop_index("ix_audit_event_at", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("platform_setting")


def _decrypt_existing() -> None:
    bind = op.get_bind()
    box = vault.current()
    for access_key, secret in bind.execute(sa.text("SELECT access_key, secret FROM gateway_client")).all():
        if secret.startswith(vault.TEXT_PREFIX):
            bind.execute(sa.text("UPDATE gateway_client SET secret = :s WHERE access_key = :k"),
                         {"s": box.open_text(secret, "gateway_client.secret"), "k": access_key})
    for chnl_id, secret in bind.execute(sa.text("SELECT chnl_id, secret FROM ec_channel")).all():
        if secret.startswith(vault.TEXT_PREFIX):
            bind.execute(sa.text("UPDATE ec_channel SET secret = :s WHERE chnl_id = :c"),
                         {"s": box.open_text(secret, "ec_channel.secret"), "c": chnl_id})
    for kid, enc_key, mac_key in bind.execute(sa.text("SELECT kid, enc_key, mac_key FROM ec_qr_key")).all():
        enc_key, mac_key = bytes(enc_key), bytes(mac_key)
        if enc_key.startswith(vault.BYTES_PREFIX):
            bind.execute(sa.text("UPDATE ec_qr_key SET enc_key = :e, mac_key = :m WHERE kid = :k"),
                         {"e": box.open(enc_key[1:], "ec_qr_key.enc_key"), "m": box.open(mac_key[1:], "ec_qr_key.mac_key"), "k": kid})
