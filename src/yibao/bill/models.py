"""E-bills, the keys that sign them, the number series and the issuer's cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base


class BillKey(Base):
    """One SM2 key pair of this node for signing bills. The private key is sealed with the master key; the public
    key is published (GET /api/v1/bills/keys). The newest active key signs; retired keys still verify what they signed."""

    __tablename__ = "bill_key"
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    private_pem: Mapped[str] = mapped_column(EncryptedText("bill_key.private_pem"))
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # active | retired
    status: Mapped[str] = mapped_column(String(10), default="active")


class BillSeries(Base):
    """The last number given in one bill code (票据代码): numbers (票据号码) run 1, 2, … within a code."""

    __tablename__ = "bill_series"
    bill_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_no: Mapped[int] = mapped_column(BigInteger, default=0)


class Bill(Base):
    """One e-bill: a blue bill for a settlement, or a red (冲红) bill for a reversal. ``document`` is the signed content in
    its canonical form (yibao.bill.document); the rest is for finding it and its standing."""

    __tablename__ = "bill"
    # the settlement (or reversal) this bill is for: one bill each
    setl_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    bill_code: Mapped[str] = mapped_column(String(8))
    bill_no: Mapped[str] = mapped_column(String(10))
    check_code: Mapped[str] = mapped_column(String(6))
    # blue | red
    kind: Mapped[str] = mapped_column(String(4))
    psn_no: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    key_id: Mapped[str] = mapped_column(String(16))
    document: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    # a blue bill: valid | cancelled (a red bill was issued for its reversal); a red bill: valid
    status: Mapped[str] = mapped_column(String(10), default="valid")
    # a blue bill: the red bill's setl_id once cancelled; a red bill: the blue bill's setl_id
    related_setl_id: Mapped[str | None] = mapped_column(String(30))
    __table_args__ = (
        UniqueConstraint("bill_code", "bill_no"),
        Index("ix_bill_psn_no_setl_time", "psn_no", "setl_time"),
    )


class BillCursor(Base):
    """How far the background issuer has looked: settlements from ``setl_time`` minus a lag are checked for a bill."""

    __tablename__ = "bill_cursor"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    setl_time: Mapped[datetime] = mapped_column(DateTime)
