"""Events to other nodes, written in the transaction that caused them and published later (`events.relay`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.federation.models import OutboxEvent

STREAM = "YIBAO"
SUBJECTS = ["yibao.>"]


def add(session: Session, subject: str, event_id: str, payload: dict[str, Any]) -> None:
    session.add(OutboxEvent(subject=subject, event_id=event_id, payload=json.dumps(payload, ensure_ascii=False, default=str),
                            created_at=clock.now(), sent_at=None))


def clearing(session: Session, *, side: str, setl_id: str, home: str, care: str, amount_fen: int, setl_time: datetime) -> None:
    """One side's word on a settlement, for the hub's clearing: the home paid / the place of care was paid."""
    add(session, f"yibao.clearing.{side}", f"clearing:{side}:{setl_id}",
        {"side": side, "setl_id": setl_id, "home": home, "care": care, "amount_fen": amount_fen, "setl_time": setl_time.isoformat()})


def confirmation(session: Session, province: str, key: str, setl_id: str) -> None:
    """To the home's node (by its province's two digits): the place of care committed what it reserved under ``key``."""
    add(session, f"yibao.node.{province}.confirm", f"confirm:{key}", {"msg_key": key, "setl_id": setl_id})


def unsent(session: Session, limit: int = 256) -> list[OutboxEvent]:
    return list(session.scalars(select(OutboxEvent).where(OutboxEvent.sent_at.is_(None)).order_by(OutboxEvent.id).limit(limit)))


def mark_sent(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(sent_at=clock.now()))


def pending(session: Session) -> int:
    return len(session.scalars(select(OutboxEvent.id).where(OutboxEvent.sent_at.is_(None))).all())
