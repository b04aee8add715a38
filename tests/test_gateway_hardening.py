"""The gateway under hostile or broken input: bounded keys and caches, nonces, causes of integrity errors, values
too large or too deep, invalid UTF-8, file names, the audit trail of refusals, and the traceback of a fault."""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from decimal import Decimal
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, fee, ok, person_with, serial
from helpers import encode, now_ms, post_signed
from yibao.audit.models import AuditEvent
from yibao.client import GATEWAY_PATH, CounterClient
from yibao.core import clock, crypto
from yibao.core.errors import AuthError
from yibao.gateway import auth
from yibao.gateway.auth import sign_headers
from yibao.gateway.models import GatewayNonce

CLINIC = "H37010000005"  # a second hospital: its authentication failures are not mixed with the counter's
# a third: failures are audited at most once a second per key, so the replay test has a key of its own (in any order)
REPLAYING = "H37010000006"


def audit_rows(db, **where: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, name) == value)
        return list(session.scalars(stmt))


def nonces(db) -> int:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(GatewayNonce)) or 0


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def lookup(person_certno: str) -> dict[str, Any]:
    return {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person_certno, "psn_cert_type": "01"}}


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


# -- keys, caches and nonces -----------------------------------------------------------------

class CountingLoader:
    def __init__(self, known: set[str]) -> None:
        self.known, self.calls = known, 0

    def __call__(self, key: str) -> auth.Credentials | None:
        self.calls += 1
        return auth.Credentials(key, key, "secret") if key in self.known else None


def test_an_access_key_longer_than_64_characters_is_refused_before_any_lookup(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    loader = CountingLoader(set())
    directory = auth.ClientDirectory(loader)
    body = b"{}"
    for headers in (sign_headers("H" * 65, "x", body),
                    {"x-tif-paasid": "H" * 65, "x-tif-timestamp": str(int(time.time())), "x-tif-nonce": "n" * 16, "x-tif-signature": "00"},
                    {"_api_name": "a", "_api_version": "1", "_api_timestamp": str(now_ms()), "_api_access_key": "H" * 65,
                     "_api_signature": "x"}):
        with pytest.raises(AuthError, match="longer than 64"):
            auth.authenticate(directory, headers, body, {}, 300)
    assert loader.calls == 0 and len(directory) == 0
    answer = post_signed(http, encode(counter.envelope("1901", {"data": {"type": "gend"}})), "H" * 200, "x")
    assert answer["infcode"] == -1 and "x-yb-access-key is longer than 64 characters" in answer["err_msg"]


def test_unknown_access_keys_cost_no_memory_and_do_not_evict_known_ones() -> None:
    loader = CountingLoader({"H37010000001"})
    directory = auth.ClientDirectory(loader)
    assert directory.get("H37010000001").fixmedins_code == "H37010000001"
    for i in range(5000):
        with pytest.raises(AuthError, match="unknown or revoked"):
            directory.get(f"X{i:011d}")
    assert len(directory) <= 1 + 256
    calls = loader.calls
    directory.get("H37010000001")
    assert loader.calls == calls  # still cached
    with pytest.raises(AuthError):
        directory.get("X00000004999")  # a recent miss is answered from the small cache of misses
    assert loader.calls == calls


def test_known_keys_are_kept_in_a_bounded_lru() -> None:
    loader = CountingLoader({f"K{i}" for i in range(5)})
    directory = auth.ClientDirectory(loader, max_known=3)
    for key in ("K0", "K1", "K2", "K0", "K3", "K4"):  # K0 used again: K1 and K2 are the oldest, evicted
        directory.get(key)
    assert len(directory) == 3 and loader.calls == 5
    directory.get("K0")
    assert loader.calls == 5
    directory.get("K1")
    assert loader.calls == 6


@pytest.mark.parametrize(("nonce", "accepted"), [("1234567", False), ("12345678", True), ("n" * 124, True), ("n" * 125, False)])
def test_the_tif_nonce_is_8_to_124_characters(http, counter: CounterClient, nonce: str, accepted: bool) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1901", {"data": {"type": "gend"}}))
    ts = str(int(time.time()))
    nonce = nonce[:-6] + crypto.sm3_hex(str(time.time_ns()).encode())[:6] if len(nonce) >= 8 else nonce
    headers = {"x-tif-paasid": HOSPITAL, "x-tif-timestamp": ts, "x-tif-nonce": nonce,
               "x-tif-signature": crypto.tif_signature(ts, secret_of(HOSPITAL), nonce)}
    answer = http.post(GATEWAY_PATH, content=body, headers=headers).json()
    if accepted:
        assert answer["infcode"] == 0, answer["err_msg"]
    else:
        assert answer["infcode"] == -1 and "x-tif-nonce must be 8 to 124 characters" in answer["err_msg"]


# -- the audit trail of refusals ---------------------------------------------------------------

def test_a_verified_callers_refusal_is_in_the_audit_trail(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    refused = counter.call("1101", lookup("11010519491231002X"))
    assert refused["infcode"] == -1
    row = audit_rows(db, kind="gateway.refused", actor=HOSPITAL)[-1]
    assert (row.fixmedins_code, row.infno, row.outcome, row.reason) == (HOSPITAL, "1101", "refused", refused["err_msg"])
    assert row.ip  # where it came from (the test client's address)
    bad_envelope = counter.envelope("2201", {"data": "x"})
    answer = counter.send(bad_envelope)
    row = audit_rows(db, kind="gateway.refused", actor=HOSPITAL)[-1]
    assert row.infno == "2201" and row.reason == answer["err_msg"] and row.reason.startswith("input.data")


def test_a_successful_call_writes_nothing_extra(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310")
    before = len(audit_rows(db))
    assert counter.call("1101", lookup(person.certno))["infcode"] == 0
    assert len(audit_rows(db)) == before


def test_strangers_write_nothing_and_are_counted(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1901", {"data": {"type": "gend"}}))
    rows, seen = len(audit_rows(db)), nonces(db)
    counts = {r: metric("yibao_gateway_auth_refused_total", reason=r) for r in ("unknown_key", "unsigned", "stale", "malformed")}
    for _ in range(3):
        assert post_signed(http, body, "H99999999999", "guess")["infcode"] == -1
    assert http.post(GATEWAY_PATH, content=body).json()["infcode"] == -1
    assert post_signed(http, body, HOSPITAL, "guess", timestamp_ms=now_ms() - 3_600_000)["infcode"] == -1
    assert post_signed(http, body, HOSPITAL, "guess", nonce="short")["infcode"] == -1
    assert len(audit_rows(db)) == rows and nonces(db) == seen
    assert metric("yibao_gateway_auth_refused_total", reason="unknown_key") == counts["unknown_key"] + 3
    assert metric("yibao_gateway_auth_refused_total", reason="unsigned") == counts["unsigned"] + 1
    assert metric("yibao_gateway_auth_refused_total", reason="stale") == counts["stale"] + 1
    assert metric("yibao_gateway_auth_refused_total", reason="malformed") == counts["malformed"] + 1


def test_a_known_keys_signature_failures_are_recorded_at_most_once_a_second(http, db) -> None:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", CLINIC, secret_of(CLINIC), http=http)
    body = encode(client.envelope("1901", {"data": {"type": "gend"}}))
    before = len(audit_rows(db, kind="gateway.auth_failed", actor=CLINIC))
    suppressed = metric("yibao_gateway_audit_suppressed_total")
    started = time.monotonic()
    for _ in range(20):
        answer = post_signed(http, body, CLINIC, "forged-secret")
        assert answer["infcode"] == -1 and "x-yb-signature does not match" in answer["err_msg"]
    elapsed = time.monotonic() - started
    rows = audit_rows(db, kind="gateway.auth_failed", actor=CLINIC)[before:]
    assert 1 <= len(rows) <= 1 + int(elapsed)
    assert rows[0].fixmedins_code == CLINIC and rows[0].outcome == "refused" and "x-yb-signature" in rows[0].reason
    assert metric("yibao_gateway_audit_suppressed_total") >= suppressed + 20 - len(rows)
    assert not audit_rows(db, kind="gateway.refused", actor=CLINIC)


def test_replays_are_authentication_failures_not_refusals(http, db) -> None:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", REPLAYING, secret_of(REPLAYING), http=http)
    body = encode(client.envelope("9001", {"signIn": {"opter_no": "0001", "mac": "m", "ip": "1.2.3.4"}}))
    headers = sign_headers(REPLAYING, secret_of(REPLAYING), body)
    assert http.post(GATEWAY_PATH, content=body, headers=headers).json()["infcode"] == 0
    refused = before = len(audit_rows(db, kind="gateway.refused", actor=REPLAYING))
    failed = len(audit_rows(db, kind="gateway.auth_failed", actor=REPLAYING))
    for _ in range(10):
        assert "replayed" in http.post(GATEWAY_PATH, content=body, headers=headers).json()["err_msg"]
    assert len(audit_rows(db, kind="gateway.refused", actor=REPLAYING)) == refused == before
    assert len(audit_rows(db, kind="gateway.auth_failed", actor=REPLAYING)) - failed in (1, 2)


# -- integrity errors: a replay only when the nonce or message tables say so ---------------------

def registration(person, number: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()), **cert(person),
                     "ipt_otp_no": number, "med_type": "11"}}


def test_a_cancelled_registrations_number_registers_again(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False)
    number = serial("RE")
    first = ok(counter.call("2201", registration(person, number)))["data"]["mdtrt_id"]
    ok(counter.call("2202", {"data": {"mdtrt_id": first, "psn_no": person.psn_no, "ipt_otp_no": number}}))
    again = counter.call("2201", registration(person, number))
    assert again["infcode"] == 0, again["err_msg"]
    assert again["output"]["data"]["mdtrt_id"] != first
    twice = counter.call("2201", registration(person, number))
    assert twice["infcode"] == -1 and twice["err_msg"].startswith("input.data.ipt_otp_no: already registered")


def test_a_concurrent_duplicate_number_is_refused_naming_it(counter: CounterClient, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import bindparam, false, select

    from yibao.encounter import service
    from yibao.store import sql

    person = person_with(db, "310", retired=False)
    number = serial("RC")
    ok(counter.call("2201", registration(person, number)))
    # the other call's check ran before this one committed: only the database's unique index sees the duplicate
    visit = service.Visit.__table__
    monkeypatch.setattr(service, "SAME_NUMBER", sql.Query(str, select(visit.c.mdtrt_id).where(
        visit.c.fixmedins_code == bindparam("fixmedins_code"), visit.c.ipt_otp_no == bindparam("ipt_otp_no"),
        visit.c.kind == bindparam("kind"), false())))
    raced = counter.call("2201", registration(person, number))
    assert raced["infcode"] == -1 and raced["err_msg"].startswith("input.data.ipt_otp_no:"), raced["err_msg"]
    assert "nonce" not in raced["err_msg"]


def test_another_integrity_error_is_reported_as_what_it_is(http, counter: CounterClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from yibao.registry.models import Institution

    gateway = http.app.state.gateway

    def collide(ctx, body):  # type: ignore[no-untyped-def]
        ctx.session.add(Institution(fixmedins_code=HOSPITAL, fixmedins_name="again", fixmedins_type="1", admdvs="370100"))
        ctx.session.flush()
        return {}

    # a writing handler: 1901 itself only reads (reads_only), so this one is put on the writers' path
    monkeypatch.setitem(gateway.table, "1901", dataclasses.replace(gateway.table["1901"], handler=collide, reads_only=False))
    answer = counter.call("1901", {"data": {"type": "gend"}})
    assert answer["infcode"] == -1 and "nonce" not in answer["err_msg"] and "replayed" not in answer["err_msg"]
    assert "conflicts with a stored institution" in answer["err_msg"], answer["err_msg"]


def test_the_violated_table_is_told_apart_on_either_engine(db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import IntegrityError

    from yibao.gateway.models import GatewayMessage
    from yibao.gateway.service import violation

    row = dict(fixmedins_code=HOSPITAL, msgid="DUP" + serial("M"), infno="1901", request_sm3="0" * 64, response="{}",
               created_at=clock.now())
    with db.unit_of_work() as session:
        session.add(GatewayMessage(**row))
    with pytest.raises(IntegrityError) as caught, db.unit_of_work() as session:
        session.add(GatewayMessage(**row))
        session.flush()
    assert violation(caught.value) == ("gateway_message", "unique")
    with pytest.raises(IntegrityError) as caught, db.unit_of_work() as session:
        session.add(GatewayNonce(access_key=HOSPITAL, nonce="n" * 20, seen_at=clock.now()))
        session.add(GatewayNonce(access_key=HOSPITAL, nonce="n" * 20, seen_at=clock.now()))
        session.flush()
    assert violation(caught.value) == ("gateway_nonce", "unique")


# -- values the columns cannot hold, bytes that are not UTF-8, documents too deep ---------------

@pytest.fixture
def open_visit(counter: CounterClient, db) -> tuple[Any, str]:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False)
    mdtrt_id = ok(counter.call("2201", registration(person, serial("BV"))))["data"]["mdtrt_id"]
    return person, mdtrt_id


@pytest.mark.parametrize(("field", "value"), [("det_item_fee_sumamt", Decimal("1e20")), ("det_item_fee_sumamt", Decimal("1e400")),
                                              ("det_item_fee_sumamt", "1e400"), ("det_item_fee_sumamt", "1e999999999"),
                                              ("cnt", Decimal("1e20")), ("cnt", "1e999999999"), ("pric", Decimal("-1e400"))])
def test_fee_values_too_large_for_their_columns_name_the_field(counter: CounterClient, codes, open_visit, field: str, value: Any) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id = open_visit
    line = fee(mdtrt_id, person.psn_no, codes["jia"], "10.00")
    line[field] = value
    answer = counter.call("2204", {"feedetail": [line]})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith(f"input.feedetail[0].{field}:"), answer["err_msg"]


@pytest.mark.parametrize("value", [Decimal("1e20"), Decimal("1e400"), "1E+400", "-1e400", "-1e999999999"])
def test_a_settlement_amount_too_large_names_the_field(counter: CounterClient, open_visit, value: Any) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id = open_visit
    answer = counter.call("2207", {"data": {"psn_no": person.psn_no, **cert(person), "mdtrt_id": mdtrt_id, "medfee_sumamt": value,
                                            "insutype": "310", "acct_used_flag": "0"}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.medfee_sumamt:"), answer["err_msg"]


@pytest.mark.parametrize("page_num", [10**30, str(10**30), 2**63])
def test_a_page_number_of_10_to_the_30_names_the_field(counter: CounterClient, page_num: Any) -> None:
    answer = counter.call("1312", {"data": {"page_num": page_num, "page_size": 10}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.page_num:"), answer["err_msg"]


@pytest.mark.parametrize("number", ["abc", "99999999999999999999", "-1"])
def test_a_diagnosis_number_that_is_not_one_names_the_field(counter: CounterClient, open_visit, number: str) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id = open_visit
    answer = counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": number, "diag_code": "J06.900", "diag_name": "感冒"}]})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.diseinfo[0].diag_srt_no:"), answer["err_msg"]


def test_invalid_utf8_in_the_body_is_refused(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1901", {"data": {"type": "gend"}})).replace(b'"opter_name":"', b'"opter_name":"\xff\xfe')
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL))
    assert answer["infcode"] == -1 and "not valid UTF-8" in answer["err_msg"]


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"deeper": value} if i % 2 else [value]
    return value


def test_json_nested_deeper_than_32_levels_is_refused_naming_where(counter: CounterClient) -> None:
    fits = counter.call("1901", {"data": {"type": "gend", "vendor_extra": nested(28)}})
    assert fits["infcode"] == 0, fits["err_msg"]
    deep = counter.call("1901", {"data": {"type": "gend", "vendor_extra": nested(40)}})
    assert deep["infcode"] == -1 and deep["err_msg"].startswith("input.data.vendor_extra"), deep["err_msg"]
    assert "nested deeper than 32 levels" in deep["err_msg"]
    as_text = counter.call("1901", encode({"data": {"type": "gend", "vendor_extra": nested(40)}}).decode())  # type: ignore[arg-type]
    assert as_text["infcode"] == -1 and as_text["err_msg"].startswith("input.data.vendor_extra"), as_text["err_msg"]


def test_json_nested_beyond_the_decoders_stack_is_refused(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    envelope = encode(counter.envelope("1901", {}))
    body = envelope.replace(b'"input":{}', b'"input":' + b"[" * 100_000 + b"]" * 100_000)
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL))
    assert answer["infcode"] == -1 and "nested deeper than 32 levels" in answer["err_msg"], answer["err_msg"]


# -- file names ---------------------------------------------------------------------------------

def test_9102_serves_a_chinese_file_name_with_an_ascii_fallback(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    name = "对账明细 2026\"11.txt"
    uploaded = ok(counter.call("9101", {"fsUploadIn": {"filename": name, "in": base64.b64encode(b"a\tb\n").decode()}}))
    envelope = counter.envelope("9102", {"fsDownloadIn": {"file_qury_no": uploaded["file_qury_no"], "filename": name}})
    body = encode(envelope)
    reply = http.post(GATEWAY_PATH, content=body,
                      headers={"content-type": "application/json", **sign_headers(HOSPITAL, secret_of(HOSPITAL), body)})
    assert reply.status_code == 200 and reply.content == b"a\tb\n"
    disposition = reply.headers["content-disposition"]
    assert disposition == ("attachment; filename=\"____ 2026_11.txt\"; "
                           "filename*=UTF-8''%E5%AF%B9%E8%B4%A6%E6%98%8E%E7%BB%86%202026%2211.txt")


@pytest.mark.parametrize("name", ["a\r\nSet-Cookie: x=1.txt", "line\nbreak.txt", "tab\there.txt", "gnp.\u202eexe", "x" * 101])
def test_9101_refuses_control_characters_in_a_file_name(counter: CounterClient, name: str) -> None:
    answer = counter.call("9101", {"fsUploadIn": {"filename": name, "in": base64.b64encode(b"x").decode()}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.fsUploadIn.filename:"), answer["err_msg"]


# -- a fault is logged with its traceback ----------------------------------------------------------

def test_an_unexpected_exception_is_logged_with_its_traceback(http, counter: CounterClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from yibao.observability import configure_logging

    gateway = http.app.state.gateway

    def broken(ctx, body):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom in a handler 7f3a")

    monkeypatch.setitem(gateway.table, "1901", dataclasses.replace(gateway.table["1901"], handler=broken))
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        answer = counter.call("1901", {"data": {"type": "gend"}})
    finally:
        structlog.reset_defaults()
    assert answer["infcode"] == -1 and "internal error" in answer["err_msg"] and "boom" not in answer["err_msg"]
    logged = [line for line in stream.getvalue().splitlines() if "gateway call failed" in line]
    assert logged, stream.getvalue()
    assert "Traceback (most recent call last)" in logged[0] and "RuntimeError: boom in a handler 7f3a" in logged[0]
    assert '"infno": "1901"' in logged[0] and '"level": "error"' in logged[0]


@pytest.mark.parametrize("count", ["1e999999999", "sNaN", "Infinity", "-Infinity"])
def test_a_reconciliation_count_that_is_no_count_is_refused_at_once(counter: CounterClient, count: str) -> None:
    started = time.monotonic()
    answer = counter.call("3201", {"data": {"stmt_begndate": "2026-11-01", "stmt_enddate": "2026-11-30", "medfee_sumamt": "0",
                                            "fund_pay_sumamt": "0", "acct_pay": "0", "fixmedins_setl_cnt": count}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.fixmedins_setl_cnt:"), answer["err_msg"]
    assert time.monotonic() - started < 5


def test_a_worker_process_logs_tracebacks_without_local_variables(db) -> None:  # type: ignore[no-untyped-def]
    """uvicorn's spawned workers never run `yibao serve`'s configuration: the gateway configures logging itself, so a
    fault's traceback is logged plainly (structlog's default would print every frame's locals: bodies, ID numbers)."""
    from yibao.config import Settings
    from yibao.gateway.service import GatewayService

    structlog.reset_defaults()
    try:
        GatewayService(db, Settings(database_url="sqlite://", log_json=True), {})
        assert structlog.is_configured()
        assert isinstance(structlog.get_config()["processors"][-1], structlog.processors.JSONRenderer)
        assert structlog.processors.format_exc_info in structlog.get_config()["processors"]
    finally:
        structlog.reset_defaults()


def test_a_visit_cannot_be_dated_years_back_or_in_the_future(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    """Fee lines must lie inside their visit; the visit itself is bounded, so no line is classified on a far-off day."""
    from datetime import timedelta

    person = person_with(db, "310", retired=False)
    old = registration(person, serial("OLD"))
    old["data"]["begntime"] = clock.fmt_datetime(clock.now() - timedelta(days=400))
    refused = counter.call("2201", old)
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.data.begntime:")
    assert "YIBAO_VISIT_BACKDATE_H" in refused["err_msg"]
    future = registration(person, serial("FUT"))
    future["data"]["begntime"] = clock.fmt_datetime(clock.now() + timedelta(days=1))
    assert counter.call("2201", future)["err_msg"].startswith("input.data.begntime:")
    late = registration(person, serial("LATE"))
    late["data"]["begntime"] = clock.fmt_datetime(clock.now() - timedelta(hours=30))  # registered a day late: allowed
    assert counter.call("2201", late)["infcode"] == 0


def test_forwarded_for_headers_are_not_believed_by_default(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    """The client's address decides front-server trust, per-IP limits and the audit trail: a header must not set it."""
    import httpx

    client = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL))
    assert client.sign_in()["infcode"] == 0
    body = encode(client.envelope("1101", lookup("11010519491231002X")))
    headers = {"content-type": "application/json", "x-forwarded-for": "10.9.9.9", **sign_headers(HOSPITAL, secret_of(HOSPITAL), body)}
    answer = httpx.post(live_server + GATEWAY_PATH, content=body, headers=headers, timeout=10).json()
    assert answer["infcode"] == -1
    row = audit_rows(db, kind="gateway.refused", actor=HOSPITAL)[-1]
    assert row.reason == answer["err_msg"] and row.ip == "127.0.0.1"


def test_a_deeply_nested_input_string_on_a_dialect_path_is_refused_not_a_fault(http) -> None:  # type: ignore[no-untyped-def]
    from test_dialects import GuangdongHis

    his = GuangdongHis(http, "H44030000002", secret_of("H44030000002"), guangzhou=False)
    nested = "[" * 900 + "]" * 900
    answer = his.call("1101", '{"data": ' + nested + "}")  # type: ignore[arg-type]
    assert str(answer["infcode"]) == "-1" and "internal error" not in answer["err_msg"] and "input" in answer["err_msg"]


def test_a_stored_answer_goes_only_to_a_signed_in_operator(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    """1101's stored answer holds personal data: a retry of its msgid without a valid sign_no gets no replay of it."""
    person = person_with(db, "310", retired=False)
    request = counter.envelope("1101", lookup(person.certno))
    assert counter.send(request)["infcode"] == 0
    stale = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)  # a key-holder who never signed in
    again = stale.send({**request, "sign_no": "0" * 30})
    assert again["infcode"] == -1 and "sign_no" in again["err_msg"] and person.psn_name not in str(again)
