"""Registry tables. Field names follow the national interface where one exists."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class Region(Base):
    """A medical-insurance administrative division (admdvs)."""

    __tablename__ = "region"
    admdvs: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    prov_admdvs: Mapped[str] = mapped_column(String(6))


class Institution(Base):
    """A designated medical institution (hospital) or pharmacy (定点医药机构)."""

    __tablename__ = "institution"
    fixmedins_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    fixmedins_name: Mapped[str] = mapped_column(String(200))
    # 1 medical institution, 2 pharmacy (fixmedins_type)
    fixmedins_type: Mapped[str] = mapped_column(String(3))
    # hospital level 1/2/3 (一级/二级/三级); None for pharmacies
    medins_lv: Mapped[int | None] = mapped_column(Integer)
    admdvs: Mapped[str] = mapped_column(ForeignKey("region.admdvs"), index=True)
    addr: Mapped[str] = mapped_column(String(200), default="")
    vali_flag: Mapped[str] = mapped_column(String(1), default="1")


class Department(Base):
    __tablename__ = "department"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"))
    dept_codg: Mapped[str] = mapped_column(String(30))
    dept_name: Mapped[str] = mapped_column(String(100))
    __table_args__ = (UniqueConstraint("fixmedins_code", "dept_codg"),)


class Doctor(Base):
    """A practitioner with a national doctor code (医保医师代码)."""

    __tablename__ = "doctor"
    dr_codg: Mapped[str] = mapped_column(String(30), primary_key=True)
    dr_name: Mapped[str] = mapped_column(String(50))
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"), index=True)
    dept_codg: Mapped[str] = mapped_column(String(30))
    pro_title: Mapped[str] = mapped_column(String(30), default="")


class Operator(Base):
    """A clerk or terminal allowed to sign in (9001) for an institution."""

    __tablename__ = "operator"
    fixmedins_code: Mapped[str] = mapped_column(ForeignKey("institution.fixmedins_code"), primary_key=True)
    opter_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    opter_name: Mapped[str] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Employer(Base):
    __tablename__ = "employer"
    emp_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    emp_name: Mapped[str] = mapped_column(String(200))
    admdvs: Mapped[str] = mapped_column(ForeignKey("region.admdvs"))


class Household(Base):
    __tablename__ = "household"
    hshld_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    admdvs: Mapped[str] = mapped_column(ForeignKey("region.admdvs"))
    addr: Mapped[str] = mapped_column(String(200), default="")


class Person(Base):
    """An insured person (参保人)."""

    __tablename__ = "person"
    psn_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_cert_type: Mapped[str] = mapped_column(String(6))
    certno: Mapped[str] = mapped_column(String(50))
    psn_name: Mapped[str] = mapped_column(String(50))
    gend: Mapped[str] = mapped_column(String(1))
    naty: Mapped[str] = mapped_column(String(3))
    brdy: Mapped[date] = mapped_column(Date)
    # nationality, ISO 3166 alpha-3
    ntly: Mapped[str] = mapped_column(String(3), default="CHN")
    tel: Mapped[str] = mapped_column(String(30), default="")
    hshld_id: Mapped[int | None] = mapped_column(ForeignKey("household.hshld_id"), index=True)
    # relation to the household head (hshld_rlts): 01 self, 02 spouse, 03 child, 04 parent
    hshld_rlts: Mapped[str] = mapped_column(String(2), default="01")
    # social-security card (mdtrt_cert_type 03)
    card_no: Mapped[str | None] = mapped_column(String(20), unique=True)
    card_sn: Mapped[str | None] = mapped_column(String(32))
    __table_args__ = (UniqueConstraint("psn_cert_type", "certno"),)


class Enrolment(Base):
    """One insurance type a person is (or was) enrolled in (insuinfo)."""

    __tablename__ = "enrolment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6))
    psn_type: Mapped[str] = mapped_column(String(6))
    # psn_insu_stas: 1 normal, 2 paused, 4 terminated
    psn_insu_stas: Mapped[str] = mapped_column(String(2), default="1")
    psn_insu_date: Mapped[date] = mapped_column(Date)
    paus_insu_date: Mapped[date | None] = mapped_column(Date)
    insuplc_admdvs: Mapped[str] = mapped_column(ForeignKey("region.admdvs"))
    emp_no: Mapped[str | None] = mapped_column(ForeignKey("employer.emp_no"))
    cvlserv_flag: Mapped[str] = mapped_column(String(1), default="0")
    __table_args__ = (Index("ix_enrolment_psn_no_insutype", "psn_no", "insutype"),)


class Identity(Base):
    """A special identity that changes benefits (idetinfo): low-income, disability…"""

    __tablename__ = "identity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), index=True)
    psn_idet_type: Mapped[str] = mapped_column(String(6))
    psn_type_lv: Mapped[str | None] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(String(500), default="")
    begntime: Mapped[datetime] = mapped_column(DateTime)
    endtime: Mapped[datetime | None] = mapped_column(DateTime)


class Account(Base):
    """An employee's personal account (个人账户). Balance = opening + credits − payments."""

    __tablename__ = "account"
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), primary_key=True)
    insutype: Mapped[str] = mapped_column(String(6), default="310")
    opening_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    opened_on: Mapped[date] = mapped_column(Date)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class Contribution(Base):
    """One contribution period (monthly for employees, yearly for residents)."""

    __tablename__ = "contribution"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6))
    # contribution period, yyyyMM
    cntr_ym: Mapped[str] = mapped_column(String(6))
    cntr_base_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    emp_pay_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    psn_pay_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # part credited to the personal account
    acct_cred_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_on: Mapped[date] = mapped_column(Date)
    __table_args__ = (Index("ix_contribution_psn_no_cntr_ym", "psn_no", "cntr_ym"),)
