"""Mobile-payment orders, their charges through the payment channel, and admission requests made in the app."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class PayOrder(Base):
    """A bill a hospital posted (6201) for one visit, paid by the person in the app.

    status: presettled → paying → paid | failed (the settlement reversed; the person may try again) | cancelled
    (by the person or the hospital, 6401; nothing settled) ; paid → refunded (6203: the settlement reversed and the
    own-money part given back). Amounts are fen: the pre-settlement's, replaced by the settlement's once settled."""

    __tablename__ = "pay_order"
    pay_ord_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    # what the settlement is told the person presented (mdtrt_cert_type 01 with this token): the order itself
    pay_token: Mapped[str] = mapped_column(String(40), unique=True)
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    mdtrt_id: Mapped[str] = mapped_column(ForeignKey("visit.mdtrt_id"))
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    kind: Mapped[str] = mapped_column(String(12))
    # how the person pays the own-money part: "mobile" (the payment channel); room for others (credit care)
    method: Mapped[str] = mapped_column(String(12), default="mobile")
    # the hospital's own number for the bill (medOrgOrd), "" when it sent none
    medins_ord_no: Mapped[str] = mapped_column(String(40), default="")
    acct_used: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(12))
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    psn_cash_pay: Mapped[int] = mapped_column(BigInteger)
    # the standing settlement of a paid order (None before and after a rollback)
    setl_id: Mapped[str | None] = mapped_column(String(30))
    # who confirmed (the signed-in holder: the person or a bound family member) and how (password | face)
    confirmed_by: Mapped[str] = mapped_column(String(30), default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_pay_order_psn_no", "psn_no", "status"), Index("ix_pay_order_mdtrt_id", "mdtrt_id"))


class PayCharge(Base):
    """One attempt to take the own-money part of an order through the payment channel.

    status: pending → succeeded | refused | timed_out (rolled back) ; a success the provider reports for an attempt
    that was rolled back (a late callback) → refunded (or refund_failed, retried at the next callback)."""

    __tablename__ = "pay_charge"
    # our trade number, sent to the provider and named by its callback
    charge_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pay_ord_id: Mapped[str] = mapped_column(ForeignKey("pay_order.pay_ord_id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    # the settlement this attempt stood on (kept after a rollback, for the trail)
    setl_id: Mapped[str] = mapped_column(String(30), default="")
    # the provider's transaction number: one charge has at most one, and a callback is recorded once
    provider_txn_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    refund_id: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_pay_charge_pay_ord_id", "pay_ord_id"),)


class AdmissionRequest(Base):
    """A person's request, made in the app, to be admitted at a hospital (线上入院申请). The hospital lists pending ones
    (6501) and admits with 2401; the request is then linked to that stay (the person's admission at the hospital begun
    on or after the request's day)."""

    __tablename__ = "admission_request"
    adm_req_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    dept_name: Mapped[str] = mapped_column(String(50), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    tel: Mapped[str] = mapped_column(String(50), default="")
    # pending | admitted | cancelled
    status: Mapped[str] = mapped_column(String(12))
    mdtrt_id: Mapped[str] = mapped_column(String(30), default="")
    requested_by: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_admission_request_hospital", "fixmedins_code", "status"), Index("ix_admission_request_psn_no", "psn_no"))
