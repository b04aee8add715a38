"""Front servers (前置机): a machine on the private network signs for the hospitals behind it (gateway/front.py).

The HIS sends nothing signed; the front server adds x-yb-front-* headers signed with its own secret. The platform
takes them only from the front server's configured address, only for keys that trust it, and audits every such call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from conftest import HOSPITAL, secret_of
from helpers import encode, now_ms, post_signed, row_counts
from yibao.app import create_app
from yibao.audit.models import AuditEvent
from yibao.client import GATEWAY_PATH, CounterClient
from yibao.gateway import front, keys

ADDRESS = "10.1.2.3"
INSTITUTION = "H37010000002"  # trusts the front server below; HOSPITAL (…01) trusts none


class FromAddress:
    """The app as reached from a chosen TCP peer (TestClient always reports 'testclient')."""

    def __init__(self, app: Any) -> None:
        self.app, self.ip = app, ADDRESS

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (self.ip, 50123)}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def peer(settings, db) -> Iterator[tuple[TestClient, FromAddress]]:  # type: ignore[no-untyped-def]
    wrapped = FromAddress(create_app(settings, db))
    with TestClient(app=wrapped) as client:  # type: ignore[arg-type]
        yield client, wrapped


@pytest.fixture(scope="module")
def front_secret(settings, db) -> str:  # type: ignore[no-untyped-def]
    """Set up as an operator does: `yibao front add` and `yibao keys trust-front`."""
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url}
    added = subprocess.run([sys.executable, "-m", "yibao", "front", "add", "qzj-1", "--address", ADDRESS], env=env, capture_output=True,
                           text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    secret = next(line.split("secret ")[1].strip() for line in added.stdout.splitlines() if line.startswith("front qzj-1"))
    trusted = subprocess.run([sys.executable, "-m", "yibao", "keys", "trust-front", INSTITUTION, "qzj-1"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert trusted.returncode == 0 and "front server qzj-1" in trusted.stdout, trusted.stderr
    listed = subprocess.run([sys.executable, "-m", "yibao", "front", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert f"front qzj-1  address {ADDRESS}/32  active  trusted by {INSTITUTION}" in listed.stdout, listed.stdout
    return secret


def unsigned_counter(code: str) -> CounterClient:
    """Builds envelopes like an HIS behind a front server: it signs nothing itself."""
    return CounterClient("http://testserver", code, "", http=None)


def forwarded(client: TestClient, envelope: dict[str, Any], secret: str, *, code: str = INSTITUTION, name: str = "qzj-1",
              path: str = GATEWAY_PATH) -> dict[str, Any]:
    body = encode(envelope)
    reply = client.post(path, content=body, headers={"content-type": "application/json", **front.sign_headers(name, secret, code, body)})
    assert reply.status_code == 200 and "Traceback" not in reply.text
    return reply.json()


def sign_in(client: TestClient, secret: str, his: CounterClient) -> None:
    answer = forwarded(client, his.envelope("9001", {"signIn": {"opter_no": "0001", "mac": "", "ip": ""}}), secret, code=his.fixmedins_code)
    assert answer["infcode"] == 0, answer
    his.sign_no = answer["output"]["signinoutb"]["sign_no"]


def via_front_events(db, code: str = INSTITUTION) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == "gateway.via_front", AuditEvent.fixmedins_code == code)
                                    .order_by(AuditEvent.id)))


def test_a_request_from_the_front_servers_address_is_served_and_audited(peer, front_secret: str, db) -> None:  # type: ignore[no-untyped-def]
    client, _wrapped = peer
    his = unsigned_counter(INSTITUTION)
    before = len(via_front_events(db))
    sign_in(client, front_secret, his)
    answer = forwarded(client, his.envelope("1901", {"data": {"type": "gend"}}), front_secret)
    assert answer["infcode"] == 0 and answer["output"]["list"]
    events = via_front_events(db)[before:]
    assert [(e.infno, e.outcome, e.actor, e.subject, e.ip) for e in events] == [
        ("9001", "ok", "qzj-1", INSTITUTION, ADDRESS), ("1901", "ok", "qzj-1", INSTITUTION, ADDRESS)]
    # the front server's signature covers the body: a changed body is refused
    envelope = his.envelope("1901", {"data": {"type": "gend"}})
    headers = front.sign_headers("qzj-1", front_secret, INSTITUTION, encode(envelope))
    tampered = client.post(GATEWAY_PATH, content=encode({**envelope, "msgid": "other"}), headers=headers).json()
    assert tampered["infcode"] == -1 and "x-yb-front-signature does not match" in tampered["err_msg"]
    # and its nonce is spent like any other
    body = encode(his.envelope("1901", {"data": {"type": "gend"}}))
    headers = front.sign_headers("qzj-1", front_secret, INSTITUTION, body)
    assert client.post(GATEWAY_PATH, content=body, headers=headers).json()["infcode"] == 0
    assert "replayed" in client.post(GATEWAY_PATH, content=body, headers=headers).json()["err_msg"]


def test_a_refusal_through_the_front_server_is_audited_as_coming_through_it(peer, front_secret: str, db) -> None:  # type: ignore[no-untyped-def]
    client, _wrapped = peer
    his = unsigned_counter(INSTITUTION)
    sign_in(client, front_secret, his)
    before = len(via_front_events(db))
    answer = forwarded(client, his.envelope("1101", {"data": {"mdtrt_cert_type": "02"}}), front_secret)
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.mdtrt_cert_no")
    (event,) = via_front_events(db)[before:]
    assert event.outcome == "refused" and event.infno == "1101" and "mdtrt_cert_no" in event.reason


def test_the_same_front_server_from_another_address_is_refused(peer, front_secret: str, db) -> None:  # type: ignore[no-untyped-def]
    client, wrapped = peer
    his = unsigned_counter(INSTITUTION)
    wrapped.ip = "10.1.2.4"
    try:
        before = row_counts(db)
        answer = forwarded(client, his.envelope("9001", {"signIn": {"opter_no": "0001"}}), front_secret)
    finally:
        wrapped.ip = ADDRESS
    assert answer["infcode"] == -1
    # the refusal tells an unsigned caller nothing of where the front server is configured, or whether the name exists
    assert answer["err_msg"] == "not a front server of the platform at this address" and ADDRESS not in answer["err_msg"]
    assert row_counts(db) == before


def test_a_key_trusts_no_front_server_by_default(peer, front_secret: str, db) -> None:  # type: ignore[no-untyped-def]
    client, _wrapped = peer
    answer = forwarded(client, unsigned_counter(HOSPITAL).envelope("9001", {"signIn": {"opter_no": "0001"}}), front_secret, code=HOSPITAL)
    assert answer["infcode"] == -1 and f"access key '{HOSPITAL}' does not trust front server 'qzj-1'" in answer["err_msg"]
    with db.unit_of_work(write=False) as session:
        assert keys.view(session, HOSPITAL).front_server is None
        failed = session.scalars(select(AuditEvent).where(AuditEvent.kind == "gateway.auth_failed", AuditEvent.fixmedins_code == HOSPITAL)
                                 .order_by(AuditEvent.id.desc()).limit(1)).first()
    assert failed is not None and "does not trust front server" in failed.reason


def test_unknown_front_servers_wrong_secrets_and_missing_headers_are_refused(peer, front_secret: str, db) -> None:  # type: ignore[no-untyped-def]
    client, _wrapped = peer
    envelope = unsigned_counter(INSTITUTION).envelope("9001", {"signIn": {"opter_no": "0001"}})
    assert forwarded(client, envelope, front_secret, name="qzj-9")["err_msg"] == "not a front server of the platform at this address"
    assert "x-yb-front-signature does not match" in forwarded(client, envelope, "f" * 64)["err_msg"]
    body = encode(envelope)
    headers = front.sign_headers("qzj-1", front_secret, INSTITUTION, body)
    del headers["x-yb-access-key"]
    answer = client.post(GATEWAY_PATH, content=body, headers=headers).json()
    assert answer["infcode"] == -1 and answer["err_msg"] == "missing front-server header(s): x-yb-access-key"
    stale = front.sign_headers("qzj-1", front_secret, INSTITUTION, body, timestamp_ms=now_ms() - 3_600_000)
    assert "platform clock" in client.post(GATEWAY_PATH, content=body, headers=stale).json()["err_msg"]


def test_the_hospitals_own_signature_still_works_beside_its_front_server(http, front_secret: str) -> None:  # type: ignore[no-untyped-def]
    his = CounterClient("http://testserver", INSTITUTION, secret_of(INSTITUTION), http=http)
    assert his.sign_in()["infcode"] == 0
    envelope = his.envelope("1901", {"data": {"type": "gend"}})
    assert post_signed(http, encode(envelope), INSTITUTION, secret_of(INSTITUTION))["infcode"] == 0


def test_front_servers_are_added_with_a_checked_name_address_and_secret(db) -> None:  # type: ignore[no-untyped-def]
    from yibao.core.errors import YibaoError

    with db.unit_of_work() as session:
        for name, address, secret, message in [("none", "10.0.0.1", None, "name:"), ("a b", "10.0.0.1", None, "name:"),
                                               ("qzj-2", "10.0.0.300", None, "address: '10.0.0.300' is not an IP address"),
                                               ("qzj-2", "10.0.0.1", "short", "secret: must be at least 32")]:
            with pytest.raises(YibaoError, match=message):
                front.add(session, name, address, secret=secret)
        added = front.add(session, "qzj-net", "10.9.0.0/28", secret="s" * 32)
        assert added.address == "10.9.0.0/28" and added.secret == "s" * 32
        with pytest.raises(YibaoError, match="exists already"):
            front.add(session, "qzj-net", "10.9.0.1")
        with pytest.raises(YibaoError, match="no front server qzj-9"):
            keys.trust_front(session, HOSPITAL, "qzj-9")
    loaded = front.load_from(lambda: db.unit_of_work(write=False))("qzj-net")
    assert loaded is not None and loaded.admits("10.9.0.14") and not loaded.admits("10.9.0.16") and not loaded.admits("testclient")


def test_the_trust_is_withdrawn_with_none(front_secret: str, db, settings) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url}
    code = "H37010000003"
    with db.unit_of_work() as session:
        keys.trust_front(session, code, "qzj-1")
    withdrawn = subprocess.run([sys.executable, "-m", "yibao", "keys", "trust-front", code, "none"], env=env, capture_output=True,
                               text=True, timeout=120)
    assert withdrawn.returncode == 0 and "front server none" in withdrawn.stdout
    with db.unit_of_work(write=False) as session:
        assert keys.view(session, code).front_server is None
        kinds = [e.reason for e in session.scalars(select(AuditEvent).where(AuditEvent.kind == "key.trust_front",
                                                                            AuditEvent.subject == code)
                                                   .order_by(AuditEvent.id))]
    assert kinds == ["trusts front server qzj-1", "trusts no front server"]
