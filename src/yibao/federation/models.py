"""Federation tables: the home's record of settlements paid for care elsewhere, the place of care's record of the
settlements another node paid, the outbox of events, and the hub's clearing windows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class AwaySettlement(Base):
    """At the insured person's home: one settlement (or its reversal) of care in another province, paid from this
    node's funds and accounts. A settlement starts ``reserved`` (totals and balances already moved, so concurrent
    settlements see them), becomes ``confirmed`` when the place of care reports it committed, or ``released`` (undone
    by a reversal row) when the place of care reports it never committed; ``reversed`` after a reversal (2208)."""

    __tablename__ = "away_settlement"
    # the place of care's settlement number (unique nationwide: it starts with that region's code)
    setl_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    # the place of care's request: "<fixmedins_code>:<msgid>:<mdtrt_id>" (a reversal: the reversal's setl_id)
    msg_key: Mapped[str] = mapped_column(String(120), unique=True)
    request_sm3: Mapped[str] = mapped_column(String(64))
    origin_admdvs: Mapped[str] = mapped_column(String(6))
    fixmedins_code: Mapped[str] = mapped_column(String(30))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insutype: Mapped[str] = mapped_column(String(6))
    med_type: Mapped[str] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(String(10))
    year: Mapped[int] = mapped_column(Integer)
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    refd_setl_flag: Mapped[str] = mapped_column(String(1), default="0")
    revs_setl_id: Mapped[str | None] = mapped_column(String(30))
    # reserved | confirmed | released | reversed
    state: Mapped[str] = mapped_column(String(10))
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    hifp_pay: Mapped[int] = mapped_column(BigInteger)
    hifob_pay: Mapped[int] = mapped_column(BigInteger)
    cvlserv_pay: Mapped[int] = mapped_column(BigInteger)
    hifmi_pay: Mapped[int] = mapped_column(BigInteger)
    maf_pay: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    acct_pay: Mapped[int] = mapped_column(BigInteger)
    acct_mulaid_pay: Mapped[int] = mapped_column(BigInteger)
    ytd_otp_dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_hifp_otp: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_inscp_self: Mapped[int] = mapped_column(BigInteger, default=0)
    ytd_admission: Mapped[int] = mapped_column(Integer, default=0)
    opsp_dise_code: Mapped[str] = mapped_column(String(30), default="")
    ytd_opsp_dedc: Mapped[int] = mapped_column(BigInteger, default=0)
    # the answer as sent (JSON), replayed to a retry of the same request
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (
        Index("ix_away_settlement_psn_no_year", "psn_no", "year"),
        # the sweeper's read: reservations still waiting for the place of care's word
        Index("ix_away_settlement_reserved", "created_at", sqlite_where=text("state = 'reserved'"),
              postgresql_where=text("state = 'reserved'")),
    )


class RemoteSettlement(Base):
    """At the place of care: which request another node paid, under which settlement number; or a tombstone
    (``abandoned``, no settlement) written when that node asked about a request this node never committed, so the
    request can no longer commit here and the home releases its reservation. Exactly one of the two wins."""

    __tablename__ = "remote_settlement"
    msg_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    setl_id: Mapped[str | None] = mapped_column(String(30))
    home_admdvs: Mapped[str] = mapped_column(String(6))
    # settled | abandoned
    state: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OutboxEvent(Base):
    """An event to publish (NATS JetStream), written in the transaction that caused it; the relay publishes it with
    its id as the message id (JetStream drops a duplicate) and marks it sent."""

    __tablename__ = "federation_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(160), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_federation_outbox_unsent", "id", sqlite_where=text("sent_at IS NULL"),
                            postgresql_where=text("sent_at IS NULL")),)


class ClearingEntry(Base):
    """At the hub: one side's word on one settlement: the home's (``home``: it paid) or the place of care's (``care``:
    it was paid), in the clearing window of the settlement's month."""

    __tablename__ = "clearing_entry"
    side: Mapped[str] = mapped_column(String(4), primary_key=True)
    setl_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    window: Mapped[str] = mapped_column(String(6), index=True)
    home_admdvs: Mapped[str] = mapped_column(String(6))
    care_admdvs: Mapped[str] = mapped_column(String(6))
    # what the home owes the place of care for it: funds plus personal accounts (negative for a reversal)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime)


class ClearingWindow(Base):
    """At the hub: a month's settlement window: open, then closed with its statement (JSON)."""

    __tablename__ = "clearing_window"
    window: Mapped[str] = mapped_column(String(6), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    statement: Mapped[str] = mapped_column(Text, default="")
