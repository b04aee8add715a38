"""Maternity allowances and the accounts benefits are paid to."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base


class BenefitAccount(Base):
    """The bank account a person's cash benefits are paid to (待遇发放账户); the number is encrypted at rest."""

    __tablename__ = "benefit_account"
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"), primary_key=True)
    bank_name: Mapped[str] = mapped_column(String(100))
    account_no: Mapped[str] = mapped_column(EncryptedText("benefit_account.account_no"))
    account_tail: Mapped[str] = mapped_column(String(4))  # the last four digits, to show without decrypting
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MaternityAllowance(Base):
    """The allowance one maternity settlement (med_type 52) gives: scheduled without an application, then paid.

    status: scheduled (due on due_on) → paid; refused (no entitlement: the reason says why); cancelled (the settlement
    was reversed before payment). A payment the bank could not make stays scheduled with the last error and is tried
    again at the next run (the same reference, so the bank pays it once)."""

    __tablename__ = "maternity_allowance"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    setl_id: Mapped[str] = mapped_column(String(30), unique=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    admdvs: Mapped[str] = mapped_column(String(6))
    emp_no: Mapped[str] = mapped_column(String(30), default="")
    matn_type: Mapped[str] = mapped_column(String(6), default="")
    geso_val: Mapped[int] = mapped_column(Integer, default=0)
    fetus_cnt: Mapped[int] = mapped_column(Integer, default=0)
    birth_date: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer, default=0)
    monthly_wage_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    wage_basis: Mapped[str] = mapped_column(String(200), default="")
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    steps: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(300), default="")
    due_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    bank_ref: Mapped[str] = mapped_column(String(64), default="")
    account_tail: Mapped[str] = mapped_column(String(4), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    __table_args__ = (
        Index("ix_maternity_allowance_psn_no", "psn_no"),
        Index("ix_maternity_allowance_status_due_on", "status", "due_on"),
    )
