"""保医通: commercial insurers, the people's per-matter authorisations (一事一授权) and the hash-chained access log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.core.vault import EncryptedText
from yibao.store.db import Base


class Insurer(Base):
    """A commercial insurer registered by the bureau (`yibao insurer add`). It signs its API calls with ``secret``
    (random, 256 bits, sealed at rest); its code is its access key."""

    __tablename__ = "insurer"
    insurer_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    insurer_name: Mapped[str] = mapped_column(String(100))
    secret: Mapped[str] = mapped_column(EncryptedText("insurer.secret"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_at: Mapped[datetime] = mapped_column(DateTime)


class Consent(Base):
    """One authorisation: whose settlements, which insurer, until when; revocable. The settlements it covers are
    listed in `ConsentSettlement`, fixed when it is signed (a date range is resolved then)."""

    __tablename__ = "sharing_consent"
    # the code the person gives the insurer (the matter's number): 20 random digits, easy to read out and type
    consent_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    psn_no: Mapped[str] = mapped_column(ForeignKey("person.psn_no"))
    insurer_code: Mapped[str] = mapped_column(ForeignKey("insurer.insurer_code"))
    # who signed it: the person, or the family member holding their credential (亲情账户)
    granted_by: Mapped[str] = mapped_column(String(30))
    # what the person picked: "list" (settlements by number) or "range" (settled between two dates)
    scope: Mapped[str] = mapped_column(String(10))
    range_begin: Mapped[date | None] = mapped_column(Date)
    range_end: Mapped[date | None] = mapped_column(Date)
    # the last day the insurer may read (inclusive, Beijing time)
    valid_until: Mapped[date] = mapped_column(Date)
    # what the matter is (e.g. 住院医疗险理赔), as the person wrote it
    purpose: Mapped[str] = mapped_column(String(100), default="")
    granted_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_sharing_consent_psn_no", "psn_no"),)


class ConsentSettlement(Base):
    __tablename__ = "sharing_consent_settlement"
    consent_id: Mapped[str] = mapped_column(ForeignKey("sharing_consent.consent_id"), primary_key=True)
    setl_id: Mapped[str] = mapped_column(String(30), primary_key=True)


class AccessRecord(Base):
    """One insurer access, granted or refused. ``hash`` = SM3(prev_hash ‖ canonical content): a row changed,
    removed or inserted afterwards breaks the chain, which `yibao audit verify` walks."""

    __tablename__ = "sharing_access"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime)
    insurer_code: Mapped[str] = mapped_column(String(20))
    consent_id: Mapped[str] = mapped_column(String(32))
    # ok | refused
    outcome: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(200), default="")
    # the settlements answered (comma-separated), or those asked for when refused
    setl_ids: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_sharing_access_consent_id", "consent_id"),)


class ChainHead(Base):
    """The chain's last row (one row, id 1): appends lock it, so two accesses at once cannot fork the chain, and a
    tail cut off the log no longer matches it."""

    __tablename__ = "sharing_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
