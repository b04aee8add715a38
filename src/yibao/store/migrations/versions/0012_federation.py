"""Issue 12: a federation of province nodes. ``away_settlement`` (the home's record of care paid elsewhere: reserved,
confirmed, released, reversed), ``remote_settlement`` (the place of care's record of what another node paid, or a
tombstone), ``federation_outbox`` (events to publish), ``clearing_entry``/``clearing_window`` (the hub's clearing),
and ``settlement.paid_by`` (the node that paid a settlement's funds and accounts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clearing_entry',
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('setl_id', sa.String(length=30), nullable=False),
    sa.Column('window', sa.String(length=6), nullable=False),
    sa.Column('home_admdvs', sa.String(length=6), nullable=False),
    sa.Column('care_admdvs', sa.String(length=6), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('setl_time', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('side', 'setl_id', name=op.f('pk_clearing_entry'))
    )
    with op.batch_alter_table('clearing_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clearing_entry_window'), ['window'], unique=False)

    op.create_table('clearing_window',
    sa.Column('window', sa.String(length=6), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('window', name=op.f('pk_clearing_window'))
    )
    op.create_table('federation_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=160), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_federation_outbox_event_id'))
    )
    with op.batch_alter_table('federation_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_federation_outbox_unsent', ['id'], unique=False,
                                 sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))

    op.create_table('remote_settlement',
    sa.Column('msg_key', sa.String(length=120), nullable=False),
    sa.Column('setl_id', sa.String(length=30), nullable=True),
    sa.Column('home_admdvs', sa.String(length=6), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('msg_key', name=op.f('pk_remote_settlement'))
    )
    op.create_table('away_settlement',
    sa.Column('setl_id', sa.String(length=30), nullable=False),
    sa.Column('msg_key', sa.String(length=120), nullable=False),
    sa.Column('request_sm3', sa.String(length=64), nullable=False),
    sa.Column('origin_admdvs', sa.String(length=6), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=30), nullable=False),
    sa.Column('mdtrt_id', sa.String(length=30), nullable=False),
    sa.Column('psn_no', sa.String(length=30), nullable=False),
    sa.Column('insutype', sa.String(length=6), nullable=False),
    sa.Column('med_type', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('setl_time', sa.DateTime(), nullable=False),
    sa.Column('refd_setl_flag', sa.String(length=1), nullable=False),
    sa.Column('revs_setl_id', sa.String(length=30), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('medfee_sumamt', sa.BigInteger(), nullable=False),
    sa.Column('hifp_pay', sa.BigInteger(), nullable=False),
    sa.Column('hifob_pay', sa.BigInteger(), nullable=False),
    sa.Column('cvlserv_pay', sa.BigInteger(), nullable=False),
    sa.Column('hifmi_pay', sa.BigInteger(), nullable=False),
    sa.Column('maf_pay', sa.BigInteger(), nullable=False),
    sa.Column('fund_pay_sumamt', sa.BigInteger(), nullable=False),
    sa.Column('acct_pay', sa.BigInteger(), nullable=False),
    sa.Column('acct_mulaid_pay', sa.BigInteger(), nullable=False),
    sa.Column('ytd_otp_dedc', sa.BigInteger(), nullable=False),
    sa.Column('ytd_hifp_otp', sa.BigInteger(), nullable=False),
    sa.Column('ytd_inscp_self', sa.BigInteger(), nullable=False),
    sa.Column('ytd_admission', sa.Integer(), nullable=False),
    sa.Column('opsp_dise_code', sa.String(length=30), nullable=False),
    sa.Column('ytd_opsp_dedc', sa.BigInteger(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['psn_no'], ['person.psn_no'], name=op.f('fk_away_settlement_psn_no_person')),
    sa.PrimaryKeyConstraint('setl_id', name=op.f('pk_away_settlement')),
    sa.UniqueConstraint('msg_key', name=op.f('uq_away_settlement_msg_key'))
    )
    with op.batch_alter_table('away_settlement', schema=None) as batch_op:
        batch_op.create_index('ix_away_settlement_psn_no_year', ['psn_no', 'year'], unique=False)
        batch_op.create_index('ix_away_settlement_reserved', ['created_at'], unique=False,
                                 sqlite_where=sa.text("state = 'reserved'"), postgresql_where=sa.text("state = 'reserved'"))

    with op.batch_alter_table('settlement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_by', sa.String(length=6), server_default='',
                                      nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('settlement', schema=None) as batch_op:
        batch_op.drop_column('paid_by')

    with op.batch_alter_table('away_settlement', schema=None) as batch_op:
        batch_op.drop_index('ix_away_settlement_reserved',
                            sqlite_where=sa.text("state = 'reserved'"), postgresql_where=sa.text("state = 'reserved'"))
        batch_op.drop_index('ix_away_settlement_psn_no_year')

    op.drop_table('away_settlement')
    op.drop_table('remote_settlement')
    with op.batch_alter_table('federation_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_federation_outbox_unsent',
                            sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))

    op.drop_table('federation_outbox')
    op.drop_table('clearing_window')
    with op.batch_alter_table('clearing_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clearing_entry_window'))

    op.drop_table('clearing_entry')
