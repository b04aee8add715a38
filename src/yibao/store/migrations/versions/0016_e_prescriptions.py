"""Issue 13: e-prescription circulation (电子处方流转, 7101–7105 and 7201–7206): ``prescription`` (one row a prescription
from pre-check to write-off; the settlement that dispensed it in ``setl_id``), ``prescription_key`` (each institution's
SM2 public key for prescriptions; a demo hospital's private key too, sealed) and ``prescription_platform_key`` (the
platform's SM2 key, the private half sealed by the vault).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('prescription_platform_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prescription_platform_key'))
    )
    op.create_table('prescription_key',
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('demo_private_key', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['fixmedins_code'], ['institution.fixmedins_code'],
                            name=op.f('fk_prescription_key_fixmedins_code_institution')),
    sa.PrimaryKeyConstraint('fixmedins_code', name=op.f('pk_prescription_key'))
    )
    op.create_table('prescription',
    sa.Column('hi_rxno', sa.String(length=30), nullable=False),
    sa.Column('hosp_rxno', sa.String(length=40), nullable=False),
    sa.Column('init_rxno', sa.String(length=40), nullable=False),
    sa.Column('fixmedins_code', sa.String(length=12), nullable=False),
    sa.Column('fixmedins_name', sa.String(length=200), nullable=False),
    sa.Column('psn_no', sa.String(length=30), nullable=False),
    sa.Column('patn_name', sa.String(length=50), nullable=False),
    sa.Column('mdtrt_id', sa.String(length=30), nullable=False),
    sa.Column('med_type', sa.String(length=6), nullable=False),
    sa.Column('insutype', sa.String(length=6), nullable=False),
    sa.Column('insuplc_admdvs', sa.String(length=6), nullable=False),
    sa.Column('dise_codg', sa.String(length=30), nullable=False),
    sa.Column('diag_code', sa.String(length=20), nullable=False),
    sa.Column('diag_name', sa.String(length=100), nullable=False),
    sa.Column('prsc_dept_name', sa.String(length=50), nullable=False),
    sa.Column('prsc_dr_name', sa.String(length=50), nullable=False),
    sa.Column('rx_type_code', sa.String(length=3), nullable=False),
    sa.Column('rx_cotn_flag', sa.String(length=1), nullable=False),
    sa.Column('rx_circ_flag', sa.String(length=3), nullable=False),
    sa.Column('prsc_time', sa.DateTime(), nullable=False),
    sa.Column('valid_days', sa.Integer(), nullable=False),
    sa.Column('valid_end_time', sa.DateTime(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('sign_digest', sa.String(length=64), nullable=False),
    sa.Column('fixmedins_sign_info', sa.Text(), nullable=False),
    sa.Column('hi_sign_info', sa.Text(), nullable=False),
    sa.Column('hosp_chk_stas_codg', sa.String(length=10), nullable=False),
    sa.Column('hosp_phar_name', sa.String(length=50), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('epc_qrcd', sa.String(length=27), nullable=False),
    sa.Column('chosen_fixmedins_code', sa.String(length=12), nullable=True),
    sa.Column('delivery_mode', sa.String(length=1), nullable=False),
    sa.Column('delv_addr', sa.String(length=200), nullable=False),
    sa.Column('chosen_at', sa.DateTime(), nullable=True),
    sa.Column('access_code', sa.String(length=64), nullable=True),
    sa.Column('access_fixmedins_code', sa.String(length=12), nullable=True),
    sa.Column('access_expires_at', sa.DateTime(), nullable=True),
    sa.Column('downloaded_at', sa.DateTime(), nullable=True),
    sa.Column('chk_stas_codg', sa.String(length=10), nullable=False),
    sa.Column('chk_fixmedins_code', sa.String(length=12), nullable=True),
    sa.Column('chk_phar_name', sa.String(length=50), nullable=False),
    sa.Column('chk_time', sa.DateTime(), nullable=True),
    sa.Column('setl_id', sa.String(length=30), nullable=True),
    sa.Column('dispensed_by', sa.String(length=12), nullable=True),
    sa.Column('dispensed_at', sa.DateTime(), nullable=True),
    sa.Column('written_off_at', sa.DateTime(), nullable=True),
    sa.Column('delv_stas_codg', sa.String(length=6), nullable=False),
    sa.Column('delv_stas_name', sa.String(length=20), nullable=False),
    sa.Column('delivery', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('undo_rea', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['psn_no'], ['person.psn_no'], name=op.f('fk_prescription_psn_no_person')),
    sa.PrimaryKeyConstraint('hi_rxno', name=op.f('pk_prescription')),
    sa.UniqueConstraint('access_code', name=op.f('uq_prescription_access_code')),
    sa.UniqueConstraint('epc_qrcd', name=op.f('uq_prescription_epc_qrcd'))
    )
    op.create_index('ix_prescription_fixmedins_code_hosp_rxno', 'prescription', ['fixmedins_code', 'hosp_rxno'], unique=False)
    op.create_index('ix_prescription_psn_no', 'prescription', ['psn_no', 'created_at'], unique=False)
    op.create_index(op.f('ix_prescription_setl_id'), 'prescription', ['setl_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_prescription_setl_id"), table_name="prescription")
    op.drop_index("ix_prescription_psn_no", table_name="prescription")
    op.drop_index("ix_prescription_fixmedins_code_hosp_rxno", table_name="prescription")
    op.drop_table("prescription")
    op.drop_table("prescription_key")
    op.drop_table("prescription_platform_key")
