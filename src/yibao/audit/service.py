"""Writing and reading the audit trail.

`record` adds a row inside the caller's transaction; for a refusal, whose transaction is rolled
back, call it in a transaction of its own (`record_apart`) so the trail keeps it. Secrets,
passwords and faces are never written here: only who, what, when and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.audit.models import AuditEvent
from yibao.core import clock

log = structlog.get_logger("yibao.audit")


def record(session: Session, kind: str, *, actor: str = "", subject: str = "", fixmedins_code: str = "", infno: str = "",
           outcome: str = "ok", reason: str = "", ip: str = "") -> None:
    session.add(AuditEvent(at=clock.now(), kind=kind[:40], actor=actor[:64], subject=subject[:64], fixmedins_code=fixmedins_code[:12],
                           infno=infno[:6], outcome=outcome[:10], reason=reason[:1000], ip=ip[:64]))


def record_apart(db: object, kind: str, **fields: str) -> None:
    """In a transaction of its own (the caller's is being rolled back). Never raises: the trail must not break a refusal."""
    try:
        with db.unit_of_work() as session:  # type: ignore[attr-defined]
            record(session, kind, **fields)
    except Exception:  # noqa: BLE001 - logged, and the refusal still goes out
        log.exception("audit event not written", kind=kind)


def query(session: Session, *, kind: str | None = None, fixmedins_code: str | None = None, actor: str | None = None,
          subject: str | None = None, outcome: str | None = None, since: datetime | None = None, limit: int = 100
          ) -> Sequence[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(AuditEvent.kind.like(kind.replace("*", "%")) if "*" in kind else AuditEvent.kind == kind)
    if fixmedins_code:
        stmt = stmt.where(AuditEvent.fixmedins_code == fixmedins_code)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if subject:
        stmt = stmt.where(AuditEvent.subject == subject)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    return session.scalars(stmt).all()
