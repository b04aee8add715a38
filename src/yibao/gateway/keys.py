"""Institutions' gateway keys: issue, show, rotate with a grace period, choose signing schemes, bind a regional
dialect (gateway/dialect.py) and trust a front server (gateway/front.py).

Every change is recorded in the audit trail. Secrets are random (256 bits) and stored encrypted
(gateway.models.GatewayClient); they are shown only when an operator asks (`yibao keys show`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.core import clock, crypto
from yibao.core.errors import InputError, NotFound
from yibao.gateway.models import SCHEMES, GatewayClient


@dataclass(frozen=True)
class KeyView:
    access_key: str
    fixmedins_code: str
    secret: str
    active: bool
    schemes: str
    previous_valid_until: datetime | None
    dialect: str | None = None
    front_server: str | None = None


def _view(client: GatewayClient) -> KeyView:
    grace = client.previous_valid_until if client.previous_secret and client.previous_valid_until else None
    return KeyView(client.access_key, client.fixmedins_code, client.secret, client.active, client.schemes, grace, client.dialect,
                   client.front_server)


def parse_schemes(text: str) -> str:
    chosen = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCHEMES]
    if unknown or not chosen:
        raise InputError(f"schemes are a comma-separated choice of {', '.join(SCHEMES)}", field="schemes")
    return ",".join(s for s in SCHEMES if s in chosen)


def issue(session: Session, fixmedins_code: str, *, schemes: str = "yibao", access_key: str | None = None, actor: str = "cli") -> KeyView:
    """A new key for an institution (the access key defaults to its code, as HIS clients expect), bound to its region's
    dialect (the dialect files' ``regions``: Guangdong's 44…), as the HIS of a hospital there speaks it."""
    access_key = access_key or fixmedins_code
    if session.get(GatewayClient, access_key) is not None:
        raise InputError(f"access key {access_key} exists already; rotate it instead", field="access_key")
    client = GatewayClient(access_key=access_key, fixmedins_code=fixmedins_code, secret=crypto.new_secret(), active=True,
                           created_at=clock.now(), schemes=parse_schemes(schemes), dialect=dialects().for_region(fixmedins_code[1:7]))
    session.add(client)
    session.flush()
    audit.record(session, "key.add", actor=actor, subject=access_key, fixmedins_code=fixmedins_code,
                 reason=f"schemes {client.schemes}" + (f", dialect {client.dialect}" if client.dialect else ""))
    return _view(client)


def dialects():
    from yibao.gateway.dialect import bundled

    return bundled()


def of_institution(session: Session, fixmedins_code: str) -> list[KeyView]:
    rows = session.scalars(select(GatewayClient).where(GatewayClient.fixmedins_code == fixmedins_code)
                           .order_by(GatewayClient.access_key)).all()
    return [_view(c) for c in rows]


def active_secret(session: Session, fixmedins_code: str) -> str | None:
    return session.scalar(select(GatewayClient.secret).where(GatewayClient.fixmedins_code == fixmedins_code, GatewayClient.active)
                          .order_by(GatewayClient.access_key).limit(1))


def rotate(session: Session, fixmedins_code: str, *, grace: timedelta, actor: str = "cli") -> KeyView:
    """A new secret for the institution's active key; the old one keeps working for ``grace``."""
    if grace < timedelta(0):
        raise InputError("the grace period cannot be negative", field="grace")
    client = session.scalar(select(GatewayClient).where(GatewayClient.fixmedins_code == fixmedins_code, GatewayClient.active)
                            .order_by(GatewayClient.access_key).limit(1))
    if client is None:
        raise NotFound(f"no active key for {fixmedins_code}", field="fixmedins_code")
    now = clock.now()
    client.previous_secret = client.secret if grace > timedelta(0) else None
    client.previous_valid_until = now + grace if grace > timedelta(0) else None
    client.secret = crypto.new_secret()
    client.rotated_at = now
    session.flush()
    audit.record(session, "key.rotate", actor=actor, subject=client.access_key, fixmedins_code=fixmedins_code,
                 reason=f"previous secret valid until {clock.fmt_datetime(client.previous_valid_until)}" if client.previous_valid_until
                 else "previous secret revoked at once")
    return _view(client)


def set_schemes(session: Session, access_key: str, schemes: str, *, actor: str = "cli") -> KeyView:
    client = session.get(GatewayClient, access_key)
    if client is None:
        raise NotFound(f"no access key {access_key}", field="access_key")
    client.schemes = parse_schemes(schemes)
    session.flush()
    audit.record(session, "key.schemes", actor=actor, subject=access_key, fixmedins_code=client.fixmedins_code, reason=client.schemes)
    return _view(client)


def _key(session: Session, access_key: str) -> GatewayClient:
    client = session.get(GatewayClient, access_key)
    if client is None:
        raise NotFound(f"no access key {access_key}", field="access_key")
    return client


def view(session: Session, access_key: str) -> KeyView:
    return _view(_key(session, access_key))


def set_dialect(session: Session, access_key: str, name: str, *, actor: str = "cli") -> KeyView:
    """Bind the key to a dialect: its calls are read and answered in it on every path (national: the national interface)."""
    shipped = dialects()
    if name not in shipped:
        raise InputError(f"'{name}' is not a dialect of this platform ({', '.join(shipped.names())})", field="dialect")
    client = _key(session, access_key)
    client.dialect = name
    session.flush()
    audit.record(session, "key.dialect", actor=actor, subject=access_key, fixmedins_code=client.fixmedins_code, reason=name)
    return _view(client)


def trust_front(session: Session, access_key: str, front_name: str | None, *, actor: str = "cli") -> KeyView:
    """Let a front server sign for the key (None: no front server; only the institution's own signature counts)."""
    from yibao.gateway import front

    client = _key(session, access_key)
    if front_name is not None:
        front.require(session, front_name)
    client.front_server = front_name
    session.flush()
    audit.record(session, "key.trust_front", actor=actor, subject=access_key, fixmedins_code=client.fixmedins_code,
                 reason=f"trusts front server {front_name}" if front_name else "trusts no front server")
    return _view(client)
