"""Filings (备案) for care away from the insured region: long-term residence, posted to work, referral, temporary trip."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class CareAwayFiling(Base):
    """One filing: whose, which kind, for which region (a province's code like 440000, a city's like 440300 or a
    county's), and the days it is in force. Never deleted: a cancellation (2502, or the person in the app) keeps the
    row with its status, time and reason."""

    __tablename__ = "care_away_filing"
    # 待遇申报明细流水号, answered by 2501 and the app, quoted by 2502
    trt_dcla_detl_sn: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6), default="")
    # yibao.filing.service.TYPES: 1 long-term residence, 2 posted to work, 3 referral, 4 temporary trip
    filing_type: Mapped[str] = mapped_column(String(3))
    # the place of care the filing is for (a referral: mdtrtarea_admdvs, 转往医院区划)
    target_admdvs: Mapped[str] = mapped_column(String(6))
    # 参保机构医保区划 (the insured region)
    insu_optins: Mapped[str] = mapped_column(String(6))
    begndate: Mapped[date] = mapped_column(Date)
    # None: open-ended
    enddate: Mapped[date | None] = mapped_column(Date)
    # active | cancelled
    status: Mapped[str] = mapped_column(String(10), default="active")
    # 申报来源 dcla_souc: 01 定点医药机构 (2501), 04 APP (the person)
    dcla_souc: Mapped[str] = mapped_column(String(3))
    # the institution that filed a referral (and may cancel it); "" when the person filed
    fixmedins_code: Mapped[str] = mapped_column(String(12), default="")
    tel: Mapped[str] = mapped_column(String(50), default="")
    addr: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    # a referral's 2501 fields
    diag_code: Mapped[str] = mapped_column(String(30), default="")
    diag_name: Mapped[str] = mapped_column(String(300), default="")
    dise_cond_dscr: Mapped[str] = mapped_column(String(500), default="")
    reflin_medins_no: Mapped[str] = mapped_column(String(30), default="")
    reflin_medins_name: Mapped[str] = mapped_column(String(200), default="")
    hosp_agre_refl_flag: Mapped[str] = mapped_column(String(3), default="")
    refl_type: Mapped[str] = mapped_column(String(6), default="")
    refl_date: Mapped[date | None] = mapped_column(Date)
    refl_opnn: Mapped[str] = mapped_column(String(500), default="")
    opter: Mapped[str] = mapped_column(String(30), default="")
    opter_name: Mapped[str] = mapped_column(String(50), default="")
    filed_at: Mapped[datetime] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancel_memo: Mapped[str] = mapped_column(String(500), default="")
    # settlement's read: the person's standing filings for the place of care's province, city or county
    __table_args__ = (Index("ix_care_away_filing_psn_no", "psn_no", "target_admdvs", "status"),)
