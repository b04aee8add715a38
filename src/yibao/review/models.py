"""Rules that fired on settlements (事中审核), for the bureau's reviewers (console)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class ReviewFinding(Base):
    """One rule fired on one line (or on the stay: line "") of a settlement, and what it did (selfpay / warn).

    No foreign key to the settlement (partitioned by year on PostgreSQL): the ids are copied."""

    __tablename__ = "review_finding"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    setl_id: Mapped[str] = mapped_column(String(30))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    psn_no: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    feedetl_sn: Mapped[str] = mapped_column(String(30), default="")
    med_list_codg: Mapped[str] = mapped_column(String(50), default="")
    med_list_name: Mapped[str] = mapped_column(String(200), default="")
    rule_id: Mapped[str] = mapped_column(String(20))
    rule_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(1))
    action: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    content: Mapped[str] = mapped_column(String(500), default="")
    found_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        Index("ix_review_finding_found_at", "found_at"),
        Index("ix_review_finding_setl_id", "setl_id"),
    )
