"""Credit care (信用就医): partner banks, each person's credit agreement, the bank's advances of settlements' cash parts,
their repayment schedule and the repayments made."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base


class CreditBank(Base):
    """A partner bank: where its credit service answers and the HMAC-SM3 key both sides sign with (encrypted at rest)."""

    __tablename__ = "credit_bank"
    bank_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    bank_name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    key: Mapped[str] = mapped_column(EncryptedText("credit_bank.key"))
    active: Mapped[int] = mapped_column(Integer, default=1)
    added_at: Mapped[datetime] = mapped_column(DateTime)


class CreditAgreement(Base):
    """One person's credit agreement with a bank: applied → active (limit, available) ⇄ suspended (an instalment overdue)
    → closed; ``refused`` when the bank declined. ``available_fen`` is the limit less what is advanced and not repaid."""

    __tablename__ = "credit_agreement"
    agreement_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    bank_code: Mapped[str] = mapped_column(ForeignKey("credit_bank.bank_code"))
    # applied | active | suspended | closed | refused
    status: Mapped[str] = mapped_column(String(10))
    limit_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    available_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # 1: the person lets due instalments be taken from the personal account first (where the policy allows)
    auto_account: Mapped[int] = mapped_column(Integer, default=1)
    # the bank's own number for the agreement (its credit line)
    bank_ref: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    applied_at: Mapped[datetime] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_credit_agreement_psn_no", "psn_no", "status"),)


class CreditAdvance(Base):
    """The bank paid a settlement's cash part (or the part within the available limit) to the institution: the person owes
    it to the bank. open → repaid, or cancelled (the settlement was reversed before any repayment)."""

    __tablename__ = "credit_advance"
    advance_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    agreement_no: Mapped[str] = mapped_column(ForeignKey("credit_agreement.agreement_no"))
    psn_no: Mapped[str] = mapped_column(String(30))
    bank_code: Mapped[str] = mapped_column(String(20))
    setl_id: Mapped[str] = mapped_column(String(30))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    # the insured region and insurance type: whose policy says how the advance is repaid
    insuplc_admdvs: Mapped[str] = mapped_column(String(6))
    insutype: Mapped[str] = mapped_column(String(6))
    # the settlement's psn_cash_pay, what the bank advanced of it, and what stayed cash (over the available limit)
    cash_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    bank_ref: Mapped[str] = mapped_column(String(64), default="")
    # open | repaid | cancelled
    status: Mapped[str] = mapped_column(String(10))
    advanced_at: Mapped[datetime] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_credit_advance_setl_id", "setl_id", unique=True), Index("ix_credit_advance_psn_no", "psn_no"),
                      Index("ix_credit_advance_bank_code", "bank_code", "advanced_at"))


class CreditInstalment(Base):
    """One instalment of an advance's schedule: due → paid, overdue (missed on its day; the agreement is suspended until
    it is paid), or cancelled with its advance."""

    __tablename__ = "credit_instalment"
    advance_no: Mapped[str] = mapped_column(ForeignKey("credit_advance.advance_no"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    psn_no: Mapped[str] = mapped_column(String(30))
    due_date: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # due | paid | overdue | cancelled
    status: Mapped[str] = mapped_column(String(10))
    overdue_since: Mapped[date | None] = mapped_column(Date)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_credit_instalment_due", "status", "due_date"), Index("ix_credit_instalment_psn_no", "psn_no"))


class CreditRepayment(Base):
    """Money towards an instalment: from the personal account (``acct``, posted to the ledger under ``repayment_no``) or
    collected by the bank from the person's card (``bank``). Never changed."""

    __tablename__ = "credit_repayment"
    repayment_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    advance_no: Mapped[str] = mapped_column(String(30))
    seq: Mapped[int] = mapped_column(Integer)
    psn_no: Mapped[str] = mapped_column(String(30))
    bank_code: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # acct | bank
    source: Mapped[str] = mapped_column(String(6))
    # the business day the repayment counts on (the job's --date), and when it was recorded
    on_date: Mapped[date] = mapped_column(Date)
    paid_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_credit_repayment_advance_no", "advance_no", "seq"),
                      Index("ix_credit_repayment_bank", "bank_code", "on_date"),
                      Index("ix_credit_repayment_psn_no", "psn_no", "source"))
