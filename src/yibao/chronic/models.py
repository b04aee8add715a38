"""Registrations of a person's chronic or special disease (人员慢特病备案, 2503)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class ChronicRegistration(Base):
    """One registration: the disease (a 1309 code), who assessed it and when, and the period it is in force.

    A registration is never deleted: 2504 cancels it (status, time, reason), so a settlement made under it keeps its
    reference."""

    __tablename__ = "chronic_registration"
    # 待遇申报明细流水号, answered by 2503 and quoted by 2504
    trt_dcla_detl_sn: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6))
    opsp_dise_code: Mapped[str] = mapped_column(String(30))
    opsp_dise_name: Mapped[str] = mapped_column(String(300))
    tel: Mapped[str] = mapped_column(String(50), default="")
    addr: Mapped[str] = mapped_column(String(200), default="")
    # 参保机构医保区划
    insu_optins: Mapped[str] = mapped_column(String(6))
    # the institution that assessed the disease (鉴定定点医药机构) and its doctor
    ide_fixmedins_no: Mapped[str] = mapped_column(String(30))
    ide_fixmedins_name: Mapped[str] = mapped_column(String(200))
    hosp_ide_date: Mapped[date] = mapped_column(Date)
    diag_dr_codg: Mapped[str] = mapped_column(String(30))
    diag_dr_name: Mapped[str] = mapped_column(String(50))
    begndate: Mapped[date] = mapped_column(Date)
    # None: open-ended
    enddate: Mapped[date | None] = mapped_column(Date)
    # active | cancelled
    status: Mapped[str] = mapped_column(String(10), default="active")
    # the institution that filed it (2503) and may cancel it (2504)
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    opter: Mapped[str] = mapped_column(String(30), default="")
    opter_name: Mapped[str] = mapped_column(String(50), default="")
    filed_at: Mapped[datetime] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancel_memo: Mapped[str] = mapped_column(String(500), default="")
    __table_args__ = (Index("ix_chronic_registration_psn_no", "psn_no", "opsp_dise_code"),)
