"""Code-table entries and catalogue rows, each with a version and a validity period."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base
from yibao.store.types import ExactNumeric

NATIONAL = "000000"


class CodeEntry(Base):
    """One value of a code table (字典), national or local to a region."""

    __tablename__ = "code_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(30))
    value: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100))
    parent_value: Mapped[str] = mapped_column(String(20), default="")
    sort: Mapped[int] = mapped_column(Integer, default=0)
    # "000000" for national values, else the region that added it
    admdvs: Mapped[str] = mapped_column(String(6), default=NATIONAL)
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")
    begndate: Mapped[date] = mapped_column(Date)
    enddate: Mapped[date | None] = mapped_column(Date)
    version: Mapped[str] = mapped_column(String(20))
    create_user: Mapped[str] = mapped_column(String(30), default="yibao")
    create_date: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("type", "value", "admdvs", "begndate"), Index("ix_code_entry_type_admdvs", "type", "admdvs"))


class CatalogVersion(Base):
    """One import of catalogue data; ``ver`` orders versions (yyyyMMddHHmmss + 3-digit sequence)."""

    __tablename__ = "catalog_version"
    ver: Mapped[str] = mapped_column(String(20), primary_key=True)
    ver_name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    rows_added: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)


class CatalogItem(Base):
    """A drug, service item or consumable of the medical-insurance catalogue (医保目录).

    Rows are versions: a change closes the old row (``enddate``) and opens a new one, so a
    settlement on any day classifies lines by the catalogue in force that day.
    """

    __tablename__ = "catalog_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    med_list_codg: Mapped[str] = mapped_column(String(50))
    med_list_name: Mapped[str] = mapped_column(String(200))
    # list_type: 101 western/patent drugs, 102 herbal pieces, 201 service items, 301 consumables
    list_type: Mapped[str] = mapped_column(String(3))
    med_chrgitm_type: Mapped[str] = mapped_column(String(2))
    # chrgitm_lv: 01 甲, 02 乙, 03 丙
    chrgitm_lv: Mapped[str] = mapped_column(String(2))
    # 乙类 first self-pay share, e.g. 0.1000
    selfpay_prop: Mapped[object] = mapped_column(ExactNumeric(5, 4), default=0)
    # price cap per unit, fen; None: no cap
    pric_uplmt_fen: Mapped[int | None] = mapped_column(BigInteger)
    lmt_gend: Mapped[str | None] = mapped_column(String(1))
    lmt_age_min: Mapped[int | None] = mapped_column(Integer)
    lmt_age_max: Mapped[int | None] = mapped_column(Integer)
    # lowest hospital level allowed to bill it under insurance (1..3)
    lmt_hosp_lv: Mapped[int | None] = mapped_column(Integer)
    # prescription-only drug (处方药)
    rx_flag: Mapped[str] = mapped_column(String(1), default="0")
    spec: Mapped[str] = mapped_column(String(200), default="")
    dosform: Mapped[str] = mapped_column(String(50), default="")
    pacunt: Mapped[str] = mapped_column(String(20), default="")
    prodentp_name: Mapped[str] = mapped_column(String(200), default="")
    lmt_used_flag: Mapped[str] = mapped_column(String(1), default="0")
    memo: Mapped[str] = mapped_column(String(500), default="")
    begndate: Mapped[date] = mapped_column(Date)
    enddate: Mapped[date | None] = mapped_column(Date)
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")
    ver: Mapped[str] = mapped_column(String(20), index=True)
    __table_args__ = (UniqueConstraint("med_list_codg", "begndate"),)


class DiseaseCode(Base):
    """Diagnosis (医保版 ICD-10) and procedure (医保版 ICD-9-CM-3) codes."""

    __tablename__ = "disease_code"
    # diag: diagnoses (1307), oprn: procedures (1308)
    kind: Mapped[str] = mapped_column(String(4), primary_key=True)
    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    chapter: Mapped[str] = mapped_column(String(100), default="")
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")
    ver: Mapped[str] = mapped_column(String(20), index=True)
