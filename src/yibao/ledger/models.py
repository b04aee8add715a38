from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class LedgerEntry(Base):
    """One posting. Debits are positive, credits negative; each settlement's entries sum to zero.

    Accounts: ``fund:<fund_pay_type>`` (fund expense), ``acct:<psn_no>`` (personal account,
    also when it pays for a relative through mutual aid), ``cash`` (the patient's own money),
    ``hosp`` (borne by the institution) and ``medins:<fixmedins_code>`` (owed to the institution).
    Rows are only ever inserted; a reversal inserts the negations. On PostgreSQL the table is partitioned by the year
    of ``posted_at`` (migration 0013) and its primary key there is (id, posted_at).
    """

    __tablename__ = "ledger_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    setl_id: Mapped[str] = mapped_column(String(30))
    account: Mapped[str] = mapped_column(String(50))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    psn_no: Mapped[str] = mapped_column(String(30))
    posted_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_ledger_entry_setl_id", "setl_id"), Index("ix_ledger_entry_account", "account"))


class YearTotal(Base):
    """A person's year-to-date totals, maintained in each settlement's transaction (never a scan of history)."""

    __tablename__ = "year_total"
    psn_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    otp_dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    hifp_otp: Mapped[int] = mapped_column(BigInteger, default=0)
    hifp: Mapped[int] = mapped_column(BigInteger, default=0)
    hifob: Mapped[int] = mapped_column(BigInteger, default=0)
    cvlserv: Mapped[int] = mapped_column(BigInteger, default=0)
    hifmi: Mapped[int] = mapped_column(BigInteger, default=0)
    maf: Mapped[int] = mapped_column(BigInteger, default=0)
    inscp_self: Mapped[int] = mapped_column(BigInteger, default=0)
    admissions: Mapped[int] = mapped_column(Integer, default=0)
    settlements: Mapped[int] = mapped_column(Integer, default=0)


class MutualAidGrant(Base):
    """A family member's personal account that may pay for this person (家庭共济)."""

    __tablename__ = "mutual_aid_grant"
    grantor_psn_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    beneficiary_psn_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    active: Mapped[int] = mapped_column(Integer, default=1)
    granted_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_mutual_aid_grant_beneficiary_psn_no", "beneficiary_psn_no"),)


class ChronicYearTotal(Base):
    """A person's year-to-date totals for one registered chronic or special disease (门诊慢特病, med_type 14).

    Each disease has its own deductible and annual cap (policy ``chronic.yaml``), so what was met and paid is kept per
    disease, maintained in the settlement's transaction like ``year_total`` and restored by a reversal."""

    __tablename__ = "chronic_year_total"
    psn_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    opsp_dise_code: Mapped[str] = mapped_column(String(30), primary_key=True)
    dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    hifp: Mapped[int] = mapped_column(BigInteger, default=0)
    settlements: Mapped[int] = mapped_column(Integer, default=0)
