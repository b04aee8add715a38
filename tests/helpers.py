"""Helpers for calling the gateway with hand-made bytes and headers."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.client import GATEWAY_PATH
from yibao.gateway.auth import sign_headers
from yibao.gateway.envelope import DECODER, ENCODER
from yibao.store.db import Database


def post_signed(http: Any, body: bytes, code: str, secret: str, *, path: str = GATEWAY_PATH, **sign: Any) -> dict[str, Any]:
    reply = http.post(path, content=body, headers={"content-type": "application/json", **sign_headers(code, secret, body, **sign)})
    assert reply.status_code == 200, reply.text
    assert "Traceback" not in reply.text
    return DECODER.decode(reply.content)


def encode(document: Any) -> bytes:
    return ENCODER.encode(document)


def now_ms() -> int:
    return int(time.time() * 1000)


def row_counts(db: Database) -> dict[str, int]:
    """Rows in every business table, to prove a refused request wrote nothing (but its nonce and its line in the audit trail)."""
    from yibao.store.metadata import collect

    metadata = collect()

    skip = {"gateway_nonce", "audit_event", "console_message"}  # what a refusal keeps: its nonce, audit line and console row
    skip |= {"bill", "bill_key", "bill_series", "bill_cursor"}  # the background issuer's, for settlements made before
    with db.unit_of_work(write=False) as session:
        assert isinstance(session, Session)
        return {t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in metadata.sorted_tables if t.name not in skip}
