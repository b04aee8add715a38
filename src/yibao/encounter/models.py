"""Visits (mdtrt), their diagnoses and fee lines, and settlements (setl)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base
from yibao.store.types import ExactNumeric


class Visit(Base):
    """One medical treatment (就诊): an outpatient visit, an admission, or a pharmacy purchase."""

    __tablename__ = "visit"
    mdtrt_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6))
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"))
    # outpatient | inpatient | pharmacy
    kind: Mapped[str] = mapped_column(String(10))
    med_type: Mapped[str] = mapped_column(String(6))
    ipt_otp_no: Mapped[str] = mapped_column(String(30))
    mdtrt_cert_type: Mapped[str] = mapped_column(String(3))
    mdtrt_cert_no: Mapped[str] = mapped_column(String(64), default="")
    begntime: Mapped[datetime] = mapped_column(DateTime)
    endtime: Mapped[datetime | None] = mapped_column(DateTime)
    # registered | admitted | discharged | settled | cancelled
    status: Mapped[str] = mapped_column(String(12))
    dept_code: Mapped[str] = mapped_column(String(30), default="")
    dept_name: Mapped[str] = mapped_column(String(100), default="")
    atddr_no: Mapped[str] = mapped_column(String(30), default="")
    dr_name: Mapped[str] = mapped_column(String(50), default="")
    dise_codg: Mapped[str] = mapped_column(String(30), default="")
    dise_name: Mapped[str] = mapped_column(String(500), default="")
    main_cond_dscr: Mapped[str] = mapped_column(String(1000), default="")
    adm_bed: Mapped[str] = mapped_column(String(30), default="")
    dscg_way: Mapped[str] = mapped_column(String(3), default="")
    # what 2401/2402/2403 carry besides, answered by 5201 as sent
    coner_name: Mapped[str] = mapped_column(String(50), default="")
    tel: Mapped[str] = mapped_column(String(50), default="")
    medrcdno: Mapped[str] = mapped_column(String(30), default="")
    adm_diag_dscr: Mapped[str] = mapped_column(String(200), default="")
    dscg_dept_codg: Mapped[str] = mapped_column(String(30), default="")
    dscg_dept_name: Mapped[str] = mapped_column(String(100), default="")
    dscg_bed: Mapped[str] = mapped_column(String(30), default="")
    oprn_oprt_code: Mapped[str] = mapped_column(String(30), default="")
    oprn_oprt_name: Mapped[str] = mapped_column(String(500), default="")
    die_date: Mapped[date | None] = mapped_column(Date)
    fpsc_no: Mapped[str] = mapped_column(String(50), default="")
    matn_type: Mapped[str] = mapped_column(String(6), default="")
    birctrl_type: Mapped[str] = mapped_column(String(6), default="")
    birctrl_matn_date: Mapped[date | None] = mapped_column(Date)
    latechb_flag: Mapped[str] = mapped_column(String(3), default="")
    pret_flag: Mapped[str] = mapped_column(String(3), default="")
    cop_flag: Mapped[str] = mapped_column(String(3), default="")
    geso_val: Mapped[int] = mapped_column(Integer, default=0)
    fetts: Mapped[int] = mapped_column(Integer, default=0)
    fetus_cnt: Mapped[int] = mapped_column(Integer, default=0)
    # who registered or admitted, and when (5201 opter_id / opter_name / opt_time)
    opter: Mapped[str] = mapped_column(String(30), default="")
    opter_name: Mapped[str] = mapped_column(String(50), default="")
    opt_time: Mapped[datetime | None] = mapped_column(DateTime)
    mdtrtarea_admvs: Mapped[str] = mapped_column(String(6))
    insuplc_admdvs: Mapped[str] = mapped_column(String(6))
    # deductible met so far in this admission (mid-stay settlements share one deductible)
    dedc_paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # this admission's number in its year (1 = first), fixed at its first settlement; 0 before
    admission_no: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        # an institution's numbers are unique among its visits that stand: a cancelled registration's may be used again
        Index("ux_visit_open_number", "fixmedins_code", "ipt_otp_no", "kind", unique=True,
              sqlite_where=text("status <> 'cancelled'"), postgresql_where=text("status <> 'cancelled'")),
        Index("ix_visit_psn_no_begntime", "psn_no", "begntime"),
    )


class Diagnosis(Base):
    __tablename__ = "diagnosis"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"), index=True)
    diag_type: Mapped[str] = mapped_column(String(3))
    diag_srt_no: Mapped[int] = mapped_column(Integer)
    diag_code: Mapped[str] = mapped_column(String(30))
    diag_name: Mapped[str] = mapped_column(String(300))
    maindiag_flag: Mapped[str] = mapped_column(String(1), default="0")
    diag_time: Mapped[datetime | None] = mapped_column(DateTime)
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")


class FeeLine(Base):
    """One uploaded fee line with its catalogue split (2204 / 2301)."""

    __tablename__ = "fee_line"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"))
    feedetl_sn: Mapped[str] = mapped_column(String(30))
    chrg_bchno: Mapped[str] = mapped_column(String(30), default="")
    med_list_codg: Mapped[str] = mapped_column(String(50))
    medins_list_codg: Mapped[str] = mapped_column(String(150), default="")
    med_list_name: Mapped[str] = mapped_column(String(200), default="")
    list_type: Mapped[str] = mapped_column(String(3), default="")
    rxno: Mapped[str] = mapped_column(String(30), default="")
    fee_ocur_time: Mapped[datetime] = mapped_column(DateTime)
    cnt: Mapped[object] = mapped_column(ExactNumeric(16, 4))
    pric: Mapped[object] = mapped_column(ExactNumeric(16, 6))
    det_item_fee_sumamt_fen: Mapped[int] = mapped_column(BigInteger)
    bilg_dept_codg: Mapped[str] = mapped_column(String(30), default="")
    bilg_dept_name: Mapped[str] = mapped_column(String(100), default="")
    bilg_dr_codg: Mapped[str] = mapped_column(String(30), default="")
    bilg_dr_name: Mapped[str] = mapped_column(String(50), default="")
    chrgitm_lv: Mapped[str] = mapped_column(String(3))
    med_chrgitm_type: Mapped[str] = mapped_column(String(6))
    selfpay_prop: Mapped[object] = mapped_column(ExactNumeric(5, 4))
    pric_uplmt_fen: Mapped[int | None] = mapped_column(BigInteger)
    fulamt_ownpay_fen: Mapped[int] = mapped_column(BigInteger)
    overlmt_fen: Mapped[int] = mapped_column(BigInteger)
    preselfpay_fen: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_fen: Mapped[int] = mapped_column(BigInteger)
    lmt_used_flag: Mapped[str] = mapped_column(String(1), default="0")
    memo: Mapped[str] = mapped_column(String(500), default="")
    # open | settled | cancelled
    status: Mapped[str] = mapped_column(String(10), default="open")
    setl_id: Mapped[str | None] = mapped_column(String(30))
    # as the HIS sent them (2204/2301), answered by 5204/5205
    dise_codg: Mapped[str] = mapped_column(String(30), default="")
    drord_no: Mapped[str] = mapped_column(String(30), default="")
    init_feedetl_sn: Mapped[str] = mapped_column(String(30), default="")
    sin_dos_dscr: Mapped[str] = mapped_column(String(200), default="")
    used_frqu_dscr: Mapped[str] = mapped_column(String(200), default="")
    prd_days: Mapped[object] = mapped_column(ExactNumeric(6, 2), default=0)
    medc_way_dscr: Mapped[str] = mapped_column(String(200), default="")
    acord_dept_codg: Mapped[str] = mapped_column(String(30), default="")
    acord_dept_name: Mapped[str] = mapped_column(String(100), default="")
    orders_dr_code: Mapped[str] = mapped_column(String(30), default="")
    orders_dr_name: Mapped[str] = mapped_column(String(50), default="")
    hosp_appr_flag: Mapped[str] = mapped_column(String(3), default="")
    tcmdrug_used_way: Mapped[str] = mapped_column(String(6), default="")
    etip_flag: Mapped[str] = mapped_column(String(3), default="")
    etip_hosp_code: Mapped[str] = mapped_column(String(30), default="")
    dscg_tkdrug_flag: Mapped[str] = mapped_column(String(3), default="")
    matn_fee_flag: Mapped[str] = mapped_column(String(6), default="")
    opter: Mapped[str] = mapped_column(String(30), default="")
    opter_name: Mapped[str] = mapped_column(String(50), default="")
    opt_time: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        Index("ix_fee_line_mdtrt_id", "mdtrt_id"),
        # a line's number is unique among the visit's lines that stand: one cancelled by 2205/2302 may be uploaded again
        Index("ux_fee_line_open_sn", "mdtrt_id", "feedetl_sn", unique=True,
              sqlite_where=text("status <> 'cancelled'"), postgresql_where=text("status <> 'cancelled'")),
        Index("ix_fee_line_setl_id", "setl_id"),
    )


class Settlement(Base):
    """A settlement (结算) or its reversal. Amounts in fen; a reversal row holds the negated amounts.

    On PostgreSQL the table is partitioned by ``year`` (migration 0013, yibao/store/partitions.py) and its primary key
    there is (setl_id, year); setl_id still names one settlement."""

    __tablename__ = "settlement"
    setl_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"), index=True)
    psn_no: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    insutype: Mapped[str] = mapped_column(String(6))
    psn_type: Mapped[str] = mapped_column(String(6))
    cvlserv_flag: Mapped[str] = mapped_column(String(1), default="0")
    med_type: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(10))
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    year: Mapped[int] = mapped_column(Integer)
    # 0 settlement, 1 reversal (refd_setl_flag)
    refd_setl_flag: Mapped[str] = mapped_column(String(1), default="0")
    # the reversal of this settlement, or the settlement this row reverses
    revs_setl_id: Mapped[str | None] = mapped_column(String(30))
    mid_setl_flag: Mapped[str] = mapped_column(String(1), default="0")
    medins_setl_id: Mapped[str] = mapped_column(String(40))
    mdtrt_cert_type: Mapped[str] = mapped_column(String(3))
    clr_type: Mapped[str] = mapped_column(String(6))
    clr_way: Mapped[str] = mapped_column(String(6), default="1")
    clr_optins: Mapped[str] = mapped_column(String(6))
    mdtrtarea_admvs: Mapped[str] = mapped_column(String(6))
    invono: Mapped[str] = mapped_column(String(20), default="")
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fulamt_ownpay_amt: Mapped[int] = mapped_column(BigInteger)
    overlmt_selfpay: Mapped[int] = mapped_column(BigInteger)
    preselfpay_amt: Mapped[int] = mapped_column(BigInteger)
    inscp_scp_amt: Mapped[int] = mapped_column(BigInteger)
    act_pay_dedc: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    pool_prop_selfpay: Mapped[object] = mapped_column(ExactNumeric(5, 4))
    cvlserv_pay: Mapped[int] = mapped_column(BigInteger)
    hifes_pay: Mapped[int] = mapped_column(BigInteger, default=0)
    hifmi_pay: Mapped[int] = mapped_column(BigInteger)
    hifob_pay: Mapped[int] = mapped_column(BigInteger)
    maf_pay: Mapped[int] = mapped_column(BigInteger)
    oth_pay: Mapped[int] = mapped_column(BigInteger, default=0)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    acct_mulaid_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    hosp_part_amt: Mapped[int] = mapped_column(BigInteger, default=0)
    balc: Mapped[int] = mapped_column(BigInteger)
    # year-to-date changes this row posted (reversals post the negation)
    ytd_otp_dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_hifp_otp: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_inscp_self: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_admission: Mapped[int] = mapped_column(Integer, default=0)
    # med_type 14: the registered disease (opsp_dise_code) whose year-to-date row this posted to (its deductible here,
    # its fund payment is hifp_pay); "" for any other care
    opsp_dise_code: Mapped[str] = mapped_column(String(30), default="")
    ytd_opsp_dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    # setldetail[] as answered (JSON), for 5203 and replays
    setldetail: Mapped[str] = mapped_column(Text)
    opter: Mapped[str] = mapped_column(String(30), default="")
    opter_name: Mapped[str] = mapped_column(String(50), default="")
    # on a federation: the province whose node paid the funds and accounts (the person's home, through the hub); ""
    # when this node did. Its year-to-date totals and accounts are there, and it owes this node what it paid
    paid_by: Mapped[str] = mapped_column(String(6), default="", server_default="")
    __table_args__ = (
        Index("ix_settlement_fixmedins_code_setl_time", "fixmedins_code", "setl_time"),
        Index("ix_settlement_psn_no_year", "psn_no", "year"),
        # the e-bill issuer's cursor (yibao.bill): the settlements of the last minute or so, in time order
        Index("ix_settlement_setl_time", "setl_time"),
    )
