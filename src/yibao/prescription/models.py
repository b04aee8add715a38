"""Circulated prescriptions, the institutions' SM2 keys for them and the platform's own signing key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base


class PrescriptionKey(Base):
    """The SM2 public key an institution signs its prescriptions with (医疗机构电子签章), registered by the bureau
    (`yibao prescription key-set`) or, in demo mode, generated for the demo hospitals."""

    __tablename__ = "prescription_key"
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(DateTime)
    # demo hospitals only (the demo generator): the private half, sealed, so the demo's HIS can sign
    # (`yibao prescription key-show` prints it in demo mode); a real institution's private key never comes here
    demo_private_key: Mapped[str | None] = mapped_column(EncryptedText("prescription_key.demo_private_key"))


class PlatformKey(Base):
    """The platform's own SM2 key (医保电子签名): created at first need, the private half sealed by the vault."""

    __tablename__ = "prescription_platform_key"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    private_key: Mapped[str] = mapped_column(EncryptedText("prescription_platform_key.private_key"))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Prescription(Base):
    """One prescription from pre-check (7101) to dispensing and write-off. ``status``: prechecked → signed (7102) →
    uploaded (7103: circulating, dispensable until ``valid_end_time``) → dispensed (a settlement naming it as rxno) →
    written off (7206); revoked (7104) before it is dispensed. Expiry is read from ``valid_end_time``, not stored."""

    __tablename__ = "prescription"
    hi_rxno: Mapped[str] = mapped_column(String(30), primary_key=True)
    hosp_rxno: Mapped[str] = mapped_column(String(40))
    init_rxno: Mapped[str] = mapped_column(String(40), default="")
    # the prescribing institution
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    fixmedins_name: Mapped[str] = mapped_column(String(200))
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    patn_name: Mapped[str] = mapped_column(String(50))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    med_type: Mapped[str] = mapped_column(String(6))
    insutype: Mapped[str] = mapped_column(String(6))
    insuplc_admdvs: Mapped[str] = mapped_column(String(6))
    dise_codg: Mapped[str] = mapped_column(String(30), default="")
    diag_code: Mapped[str] = mapped_column(String(20))
    diag_name: Mapped[str] = mapped_column(String(100))
    prsc_dept_name: Mapped[str] = mapped_column(String(50))
    prsc_dr_name: Mapped[str] = mapped_column(String(50))
    rx_type_code: Mapped[str] = mapped_column(String(3))
    rx_cotn_flag: Mapped[str] = mapped_column(String(1))
    # 0: dispensed by the prescribing institution itself (e.g. an internet hospital that delivers); 1: by a pharmacy
    rx_circ_flag: Mapped[str] = mapped_column(String(3))
    prsc_time: Mapped[datetime] = mapped_column(DateTime)
    valid_days: Mapped[int] = mapped_column(Integer)
    valid_end_time: Mapped[datetime] = mapped_column(DateTime)
    # the canonical form (docs/prescriptions.md), its SM3, the hospital's and the platform's SM2 signatures of the SM3
    document: Mapped[str] = mapped_column(Text)
    sign_digest: Mapped[str] = mapped_column(String(64))
    fixmedins_sign_info: Mapped[str] = mapped_column(Text, default="")
    hi_sign_info: Mapped[str] = mapped_column(Text, default="")
    # the hospital pharmacist's review (7102)
    hosp_chk_stas_codg: Mapped[str] = mapped_column(String(10), default="")
    hosp_phar_name: Mapped[str] = mapped_column(String(50), default="")
    status: Mapped[str] = mapped_column(String(12))
    # the code the person's app shows the pharmacy (7201 epc_qrcd)
    epc_qrcd: Mapped[str] = mapped_column(String(27), unique=True)
    # the person's choice: where it is dispensed and how it reaches them (1 到店自取, 2 配送)
    chosen_fixmedins_code: Mapped[str | None] = mapped_column(String(12))
    delivery_mode: Mapped[str] = mapped_column(String(1), default="")
    delv_addr: Mapped[str] = mapped_column(String(200), default="")
    chosen_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the pharmacy's access (7201 epc_token or 7202 auth_rxno), bound to that pharmacy, short-lived
    access_code: Mapped[str | None] = mapped_column(String(64), unique=True)
    access_fixmedins_code: Mapped[str | None] = mapped_column(String(12))
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the dispensing pharmacist's review (7204)
    chk_stas_codg: Mapped[str] = mapped_column(String(10), default="")
    chk_fixmedins_code: Mapped[str | None] = mapped_column(String(12))
    chk_phar_name: Mapped[str] = mapped_column(String(50), default="")
    chk_time: Mapped[datetime | None] = mapped_column(DateTime)
    # the dispensing: the standing settlement that named it as rxno, where and when
    setl_id: Mapped[str | None] = mapped_column(String(30), index=True)
    dispensed_by: Mapped[str | None] = mapped_column(String(12))
    dispensed_at: Mapped[datetime | None] = mapped_column(DateTime)
    written_off_at: Mapped[datetime | None] = mapped_column(DateTime)
    # the latest delivery state (7205) and its details as sent
    delv_stas_codg: Mapped[str] = mapped_column(String(6), default="")
    delv_stas_name: Mapped[str] = mapped_column(String(20), default="")
    delivery: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    undo_rea: Mapped[str] = mapped_column(String(200), default="")
    __table_args__ = (Index("ix_prescription_psn_no", "psn_no", "created_at"),
                      Index("ix_prescription_fixmedins_code_hosp_rxno", "fixmedins_code", "hosp_rxno"))
