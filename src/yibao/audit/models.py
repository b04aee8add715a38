from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base


class AuditEvent(Base):
    """One security-relevant event. Rows are only ever inserted: the database refuses UPDATE and DELETE (triggers)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    # gateway.refused, person.signin, person.signin_failed, person.activation, person.activation_failed,
    # person.password_reset, person.password_reset_failed, family.bind, family.approve, family.unbind,
    # key.rotate, key.add, institution.add, operator.add, people.import …
    kind: Mapped[str] = mapped_column(String(40))
    # who did it: an access key, a psn_no, an IP, "cli"
    actor: Mapped[str] = mapped_column(String(64), default="")
    # whom or what it concerns: a psn_no, an institution, a binding id
    subject: Mapped[str] = mapped_column(String(64), default="")
    fixmedins_code: Mapped[str] = mapped_column(String(12), default="")
    infno: Mapped[str] = mapped_column(String(6), default="")
    # ok | refused
    outcome: Mapped[str] = mapped_column(String(10), default="ok")
    reason: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (Index("ix_audit_event_at", "at"), Index("ix_audit_event_kind_at", "kind", "at"),
                      Index("ix_audit_event_fixmedins_code_at", "fixmedins_code", "at"))
