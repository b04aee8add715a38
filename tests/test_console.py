"""The vendors' console: the message log the gateway writes, field-level warnings, msgid flags, filters, sign-in,
isolation between institutions, signed curl commands and retention (the page itself: test_console_browser.py)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import HOSPITAL, secret_of
from helpers import encode, post_signed
from yibao.client import GATEWAY_PATH, CounterClient
from yibao.console import checks
from yibao.console.models import ConsoleMessage
from yibao.core import clock
from yibao.gateway.envelope import DECODER

OTHER = "H37010000002"


@pytest.fixture(scope="module")
def certno(db) -> str:  # type: ignore[no-untyped-def]
    from yibao.registry.models import Enrolment, Person

    with db.unit_of_work(write=False) as session:
        return session.scalar(select(Person.certno).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                              .where(Enrolment.psn_insu_stas == "1", Enrolment.insuplc_admdvs == "370100").order_by(Person.psn_no).limit(1))


@pytest.fixture(scope="module")
def other(http) -> CounterClient:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", OTHER, secret_of(OTHER), http=http)
    assert client.sign_in()["infcode"] == 0
    return client


def rows(db, code: str) -> list[ConsoleMessage]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(ConsoleMessage).where(ConsoleMessage.fixmedins_code == code).order_by(ConsoleMessage.id)))


def answer_for(secret: str, access_key: str, challenge: str) -> str:
    """The sign-in answer as the page computes it with WebCrypto: hex HMAC-SHA256 under the secret."""
    return hmac.new(secret.encode(), f"yibao-console\n{access_key}\n{challenge}".encode(), hashlib.sha256).hexdigest()


_SESSIONS: dict[str, dict[str, str]] = {}


def console_login(http, code: str, *, fresh: bool = False) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A console session of the institution (one per module: sign-ins are rate-limited like any password)."""
    if code in _SESSIONS and not fresh:
        return _SESSIONS[code]
    reply = http.post("/console/api/challenge", json={"access_key": code})
    assert reply.status_code == 201, reply.text
    challenge = reply.json()["challenge"]
    reply = http.post("/console/api/sessions", json={"access_key": code, "challenge": challenge,
                                                      "answer": answer_for(secret_of(code), code, challenge)})
    assert reply.status_code == 201, reply.text
    assert reply.json()["kind"] == "institution" and reply.json()["fixmedins_code"] == code
    auth = {"authorization": f"Bearer {reply.json()['token']}"}
    if not fresh:
        _SESSIONS[code] = auth
    return auth


def send(http, client: CounterClient, infno: str, input_: Any, **envelope: Any) -> tuple[bytes, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Send exact bytes (so the test knows what the log must hold); the body and the answer."""
    document = {**client.envelope(infno, input_), **envelope}
    body = encode(document)
    return body, post_signed(http, body, client.fixmedins_code, client.secret)


def lookup(certno: str, **extra: Any) -> dict[str, Any]:
    return {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "psn_cert_type": "01", **extra}}


# -- the log ----------------------------------------------------------------------------------------------

def test_served_and_refused_calls_are_logged_with_request_answer_and_timing(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    body, answer = send(http, counter, "1101", lookup(certno))
    assert answer["infcode"] == 0
    refused_body, refused = send(http, counter, "2201", {"data": {"insutype": "310"}})
    assert refused["infcode"] == -1
    logged = rows(db, HOSPITAL)
    served, bad = logged[-2], logged[-1]
    assert served.request == body and served.request_size == len(body)
    assert DECODER.decode(served.response.encode())["output"] == answer["output"]
    assert (served.infno, served.infcode, served.err_msg, served.scheme) == ("1101", 0, "", "HMAC-SM3")
    assert served.msgid == DECODER.decode(body)["msgid"] and served.access_key == HOSPITAL
    assert 0 < served.duration_us < 30_000_000
    assert bad.request == refused_body and bad.infno == "2201" and bad.infcode == -1
    assert bad.err_msg == refused["err_msg"] and "input.data" in bad.err_msg
    assert bad.msgid == DECODER.decode(refused_body)["msgid"]


def test_only_verified_callers_are_logged(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    before = len(rows(db, HOSPITAL))
    body = encode(counter.envelope("1101", lookup(certno)))
    assert post_signed(http, body, HOSPITAL, "not-the-secret")["infcode"] == -1
    assert http.post(GATEWAY_PATH, content=body).json()["infcode"] == -1  # unsigned
    assert len(rows(db, HOSPITAL)) == before


def test_a_body_larger_than_the_cap_is_kept_in_part(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.console.service import REQUEST_CAP

    body, answer = send(http, counter, "1101", lookup(certno, memo="x" * (REQUEST_CAP + 100)))
    assert answer["infcode"] == 0
    last = rows(db, HOSPITAL)[-1]
    assert last.request == body[:REQUEST_CAP] and last.request_size == len(body)


def test_a_file_answer_is_logged_as_a_note_not_as_its_bytes(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    import base64

    uploaded = counter.call("9101", {"fsUploadIn": {"filename": "detail.txt", "in": base64.b64encode(b"a\tb\n").decode()}})
    fetched = counter.call("9102", {"fsDownloadIn": {"file_qury_no": uploaded["output"]["file_qury_no"], "filename": "detail.txt"}})
    assert fetched["file"] == b"a\tb\n"
    last = rows(db, HOSPITAL)[-1]
    assert last.infno == "9102" and last.infcode == 0 and last.response_size == 4
    assert last.response.startswith("(file, 4 bytes;") and "detail.txt" in last.response


def test_a_call_that_fails_inside_the_platform_is_logged_too(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    def broken(ctx, data):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    gateway = http.app.state.gateway
    working = gateway.table["1101"]
    gateway.table["1101"] = replace(working, handler=broken)
    try:
        body, answer = send(http, counter, "1101", lookup(certno))
    finally:
        gateway.table["1101"] = working
    assert answer["infcode"] == -1 and "internal error" in answer["err_msg"]
    last = rows(db, HOSPITAL)[-1]
    assert last.request == body and last.infcode == -1 and last.err_msg == "internal error in the platform"


# -- warnings ----------------------------------------------------------------------------------------------

TABLE_TYPES: dict[str, type] = {}


def findings(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    from yibao.app import transaction_table as build_table

    if not TABLE_TYPES:
        TABLE_TYPES.update({infno: tx.input_type for infno, tx in build_table().items()})
    return {f.path: (f.kind, f.message) for f in checks.findings(encode(document), TABLE_TYPES, checks.bundled())}


def envelope(infno: str, input_: Any, **extra: Any) -> dict[str, Any]:
    return {"infno": infno, "msgid": "H370100000012026112310000001", "mdtrtarea_admvs": "370100", "opter_type": "1", "opter": "1",
            "inf_time": "2026-11-23 10:00:00", "fixmedins_code": HOSPITAL, "input": input_, **extra}


def test_unknown_fields_are_found_at_every_depth_and_in_the_envelope() -> None:
    found = findings(envelope("2204", {"feedetail": [{"feedetl_sn": "1", "bilg_dr_nmae": "x", "cnt": 1}], "extra": {"a": 1}},
                              sign_type="SM3"))
    assert found["sign_type"][0] == "unknown" and "公共报文头" in found["sign_type"][1]
    assert found["input.feedetail[0].bilg_dr_nmae"][0] == "unknown"
    assert found["input.extra"][0] == "unknown"
    assert "input.extra.a" not in found  # one warning for the unknown node, not one per key inside it
    assert "input.feedetail[0].cnt" not in found and "input.feedetail[0].feedetl_sn" not in found
    # a one-element list where the spec has an object, and input as a JSON string, are read as the gateway reads them
    assert findings(envelope("1101", [{"data": {"mdtrt_cert_type": "02", "psn_nmae": "x"}}]))["input[0].data.psn_nmae"][0] == "unknown"
    assert findings(envelope("1101", '{"data":{"mdtrt_cert_type":"02","psn_nmae":"x"}}'))["input.data.psn_nmae"][0] == "unknown"


def test_values_in_the_wrong_format() -> None:
    line = {"feedetl_sn": "1", "fee_ocur_time": "2026/11/23 09:00:00", "det_item_fee_sumamt": "12.345", "pric": "12.300",
            "cnt": "1.00000", "chrg_bchno": "B1"}
    found = findings(envelope("2204", {"feedetail": [line]}))
    kind, message = found["input.feedetail[0].fee_ocur_time"]
    assert kind == "format" and "yyyy-MM-dd HH:mm:ss" in message
    kind, message = found["input.feedetail[0].det_item_fee_sumamt"]
    assert kind == "format" and "3 位小数" in message and "拒绝" in message
    assert "input.feedetail[0].pric" not in found  # 3 decimals, the spec allows 6
    assert "能接受" in found["input.feedetail[0].cnt"][1]  # 5 decimals that round exactly to the spec's 4
    registration = {"data": {"psn_no": "1", "insutype": 310, "begntime": "20261123", "mdtrt_cert_type": "02", "ipt_otp_no": "1",
                             "mdtrt_cert_no": "1", "atddr_no": "D1", "dept_code": "A", "dept_name": "内科", "caty": "A"}}
    found = findings(envelope("2201", registration, inf_time="2026-11-23T10:00:00"))
    assert found["input.data.insutype"][0] == "format" and "前导零" in found["input.data.insutype"][1]
    assert found["input.data.begntime"][0] == "format" and "规范格式" in found["input.data.begntime"][1]
    assert found["inf_time"][0] == "format"
    clean = {"data": {**registration["data"], "insutype": "310", "begntime": "2026-11-23 09:00:00"}}
    assert findings(envelope("2201", clean)) == {}
    # a field the spec types as a number may be sent as one, though yibao reads it as text
    assert findings(envelope("2203", {"mdtrtinfo": {"mdtrt_id": "1", "psn_no": "1", "med_type": "11", "dise_codg": "M1"},
                                      "diseinfo": [{"diag_srt_no": 1, "diag_time": "2026-11-23 09:00:00", "dise_dor_no": "D1"}]})) == {}


def test_wanted_fields_sent_empty_or_left_out() -> None:
    found = findings(envelope("2204", {"feedetail": [{"feedetl_sn": "1", "chrg_bchno": "", "medins_list_codg": None,
                                                      "bilg_dept_codg": "A03", "bilg_dr_codg": "D1"}]}))
    assert found["input.feedetail[0].chrg_bchno"][0] == "empty" and found["input.feedetail[0].chrg_bchno"][1].startswith("为空")
    assert found["input.feedetail[0].medins_list_codg"][0] == "empty"
    assert found["input.feedetail[0].medins_list_codg"][1].startswith("为空")
    found = findings(envelope("9001", {"signIn": {"opter_no": "1", "ip": "10.0.0.8"}}))
    assert found["input.signIn.mac"][0] == "empty" and found["input.signIn.mac"][1].startswith("未传")
    assert "input.signIn.ip" not in found


def test_every_wanted_field_is_a_field_of_its_transaction() -> None:
    """The wanted list is data: a typo there would warn about a field no input has."""
    from msgspec import inspect as mi

    from yibao.app import transaction_table as build_table

    table = build_table()
    for infno, wanted in checks.bundled().wanted.items():
        assert infno in table, infno
        for path, why in wanted:
            info = mi.type_info(table[infno].input_type)
            for part in path.split("."):
                while isinstance(info, (mi.ListType, mi.UnionType)):
                    if isinstance(info, mi.ListType):
                        info = info.item_type
                    else:
                        info = next(t for t in info.types if not isinstance(t, mi.NoneType))
                assert isinstance(info, mi.StructType), (infno, path)
                field = {f.encode_name: f for f in info.fields}.get(part.removesuffix("[]"))
                assert field is not None, (infno, path)
                info = field.type
            assert not field.required, f"{infno} {path} is required: the gateway refuses it empty, no warning needed"
            assert why.strip()


def test_the_console_shows_a_message_with_its_warnings(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    body, answer = send(http, counter, "1101", lookup(certno, begntime="2026-11-01", psn_nmae="张三"), sign_type="SM3")
    assert answer["infcode"] == 0
    message_id = rows(db, HOSPITAL)[-1].id
    auth = console_login(http, HOSPITAL)
    shown = http.get(f"/console/api/messages/{message_id}", headers=auth).json()
    assert shown["infno"] == "1101" and shown["name"] == "人员信息获取" and shown["infcode"] == 0
    assert shown["msgid"] == DECODER.decode(body)["msgid"] and shown["duration_ms"] > 0
    assert '"psn_nmae": "张三"' in shown["request"] and '"infcode": 0' in shown["response"]
    paths = {f["path"]: f["kind"] for f in shown["findings"]}
    assert paths == {"sign_type": "unknown", "input.data.psn_nmae": "unknown", "input.data.begntime": "format"}
    listed = http.get("/console/api/messages", params={"limit": 5}, headers=auth).json()
    assert listed[0]["id"] == message_id and listed[0]["warnings"] == 3


# -- msgid flags, filters ----------------------------------------------------------------------------------

def test_same_msgid_different_body_is_flagged_and_a_retry_is_told(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    msgid = counter.new_msgid()
    first = encode(counter.envelope("1101", lookup(certno), msgid=msgid))
    assert post_signed(http, first, HOSPITAL, counter.secret)["infcode"] == 0
    assert post_signed(http, first, HOSPITAL, counter.secret)["infcode"] == 0  # the same bytes again, with a new nonce: a retry
    other_body = encode(counter.envelope("1101", lookup(certno, begntime=clock.fmt_datetime(clock.now())), msgid=msgid))
    post_signed(http, other_body, HOSPITAL, counter.secret)  # served as a new request (or, before issue 10, refused): logged
    auth = console_login(http, HOSPITAL)
    listed = http.get("/console/api/messages", params={"msgid": msgid}, headers=auth).json()
    assert len(listed) == 3 and {m["msgid"] for m in listed} == {msgid}
    newest, retry, original = listed
    assert "retry" in retry["flags"] and "retry" not in original["flags"]
    assert "msgid_reused" in newest["flags"] and "msgid_reused" in original["flags"]


def test_filters_by_infno_msgid_and_outcome(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    send(http, counter, "1101", lookup(certno))
    send(http, counter, "2201", {"data": {}})
    auth = console_login(http, HOSPITAL)
    lookups = http.get("/console/api/messages", params={"infno": "1101"}, headers=auth).json()
    assert lookups and {m["infno"] for m in lookups} == {"1101"}
    refused = http.get("/console/api/messages", params={"outcome": "refused"}, headers=auth).json()
    assert refused and all(m["infcode"] != 0 for m in refused)
    served = http.get("/console/api/messages", params={"outcome": "ok"}, headers=auth).json()
    assert served and all(m["infcode"] == 0 for m in served)
    one = http.get("/console/api/messages", params={"msgid": lookups[0]["msgid"]}, headers=auth).json()
    assert [m["id"] for m in one] == [lookups[0]["id"]]
    older = http.get("/console/api/messages", params={"before": lookups[0]["id"], "infno": "1101"}, headers=auth).json()
    assert all(m["id"] < lookups[0]["id"] for m in older)
    bad = http.get("/console/api/messages", params={"outcome": "maybe"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["field"] == "outcome"


# -- who sees what -----------------------------------------------------------------------------------------

def test_an_institution_never_sees_another_institutions_messages(http, counter: CounterClient, other: CounterClient, certno: str,
                                                                 db) -> None:  # type: ignore[no-untyped-def]
    send(http, other, "1101", lookup(certno))
    send(http, counter, "1101", lookup(certno))
    theirs = rows(db, OTHER)[-1].id
    auth = console_login(http, HOSPITAL)
    for params in ({}, {"fixmedins_code": OTHER}, {"msgid": rows(db, OTHER)[-1].msgid}, {"limit": 200}):
        listed = http.get("/console/api/messages", params=params, headers=auth).json()
        assert all(m["fixmedins_code"] == HOSPITAL for m in listed), params
    assert http.get(f"/console/api/messages/{theirs}", headers=auth).status_code == 404
    assert http.post(f"/console/api/messages/{theirs}/curl", headers=auth).status_code == 404
    assert http.get("/console/api/institutions", headers=auth).status_code == 401
    # and the other way round
    theirs_auth = console_login(http, OTHER)
    mine = rows(db, HOSPITAL)[-1].id
    assert http.get(f"/console/api/messages/{mine}", headers=theirs_auth).status_code == 404
    assert all(m["fixmedins_code"] == OTHER for m in http.get("/console/api/messages", headers=theirs_auth).json())


def test_sign_in_needs_the_secret_and_each_challenge_works_once(http) -> None:  # type: ignore[no-untyped-def]
    assert http.get("/console/api/messages").status_code == 401
    assert http.get("/console/api/messages", headers={"authorization": "Bearer forged"}).status_code == 401
    challenge = http.post("/console/api/challenge", json={"access_key": HOSPITAL}).json()["challenge"]
    wrong = http.post("/console/api/sessions", json={"access_key": HOSPITAL, "challenge": challenge,
                                                      "answer": answer_for("not-the-secret", HOSPITAL, challenge)})
    assert wrong.status_code == 401 and wrong.json()["field"] == "answer"
    # the wrong answer spent the challenge: the right one no longer opens a session with it
    again = http.post("/console/api/sessions", json={"access_key": HOSPITAL, "challenge": challenge,
                                                      "answer": answer_for(secret_of(HOSPITAL), HOSPITAL, challenge)})
    assert again.status_code == 401 and again.json()["field"] == "challenge"
    # a challenge issued for one key does not sign in another
    challenge = http.post("/console/api/challenge", json={"access_key": HOSPITAL}).json()["challenge"]
    crossed = http.post("/console/api/sessions", json={"access_key": OTHER, "challenge": challenge,
                                                        "answer": answer_for(secret_of(OTHER), OTHER, challenge)})
    assert crossed.status_code == 401
    # an unknown key gets a challenge like any other (nothing tells which keys exist), then no session
    challenge = http.post("/console/api/challenge", json={"access_key": "H37019999999"}).json()["challenge"]
    assert http.post("/console/api/sessions", json={"access_key": "H37019999999", "challenge": challenge,
                                                    "answer": "0" * 64}).status_code == 401
    auth = console_login(http, HOSPITAL, fresh=True)
    assert http.get("/console/api/me", headers=auth).json()["fixmedins_code"] == HOSPITAL
    assert http.delete("/console/api/sessions/current", headers=auth).status_code == 204
    assert http.get("/console/api/me", headers=auth).status_code == 401


def test_bad_input_is_a_4xx_naming_the_field(http) -> None:  # type: ignore[no-untyped-def]
    reply = http.post("/console/api/challenge", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400
    reply = http.post("/console/api/challenge", json={"access_key": "x" * 500})
    assert reply.status_code == 400 and "access_key" in reply.text
    auth = console_login(http, HOSPITAL)
    assert http.get("/console/api/messages/abc", headers=auth).status_code in (400, 404)
    assert http.get("/console/api/messages/99999999999999999999", headers=auth).status_code in (400, 404)
    assert http.get("/console/api/messages", params={"limit": "0"}, headers=auth).status_code == 400


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yibao", *args], env={**os.environ, "YIBAO_DATABASE_URL": db_url}, capture_output=True,
                          text=True, timeout=120)


def staff_login(http, name: str, password: str):  # type: ignore[no-untyped-def]
    return http.post("/console/api/sessions", json={"staff": name, "password": password})


def test_staff_see_every_institution(http, counter: CounterClient, other: CounterClient, certno: str, settings, db) -> None:  # type: ignore[no-untyped-def]
    send(http, counter, "1101", lookup(certno))
    send(http, other, "1101", lookup(certno))
    made = run_cli(settings.database_url, "console", "staff-add", "ops.li")
    assert made.returncode == 0, made.stderr
    password = re.search(r"password (\S+)", made.stdout).group(1)
    assert run_cli(settings.database_url, "console", "staff-add", "ops.li").returncode != 0  # exists: refused, not overwritten
    assert staff_login(http, "ops.li", "wrong-password").status_code == 401
    assert staff_login(http, "nobody", password).status_code == 401
    reply = staff_login(http, "ops.li", password)
    assert reply.status_code == 201 and reply.json()["kind"] == "staff"
    auth = {"authorization": f"Bearer {reply.json()['token']}"}
    codes = {i["fixmedins_code"] for i in http.get("/console/api/institutions", headers=auth).json()}
    assert {HOSPITAL, OTHER} <= codes
    listed = http.get("/console/api/messages", params={"limit": 200}, headers=auth).json()
    assert {HOSPITAL, OTHER} <= {m["fixmedins_code"] for m in listed}
    only = http.get("/console/api/messages", params={"fixmedins_code": OTHER}, headers=auth).json()
    assert only and {m["fixmedins_code"] for m in only} == {OTHER}
    assert only[0]["fixmedins_name"]
    # staff reading a message (personal data of another's patients) is on the audit trail; sign-ins too
    assert http.get(f"/console/api/messages/{only[0]['id']}", headers=auth).json()["fixmedins_code"] == OTHER
    from yibao.audit.models import AuditEvent

    with db.unit_of_work(write=False) as session:
        kinds = {(e.kind, e.outcome) for e in session.scalars(select(AuditEvent).where(AuditEvent.actor == "staff:ops.li"))}
        assert {("console.view", "ok"), ("console.signin", "ok"), ("console.signin", "refused")} <= kinds
    replaced = run_cli(settings.database_url, "console", "staff-add", "ops.li", "--replace")
    assert replaced.returncode == 0
    assert staff_login(http, "ops.li", password).status_code == 401


# -- curl -------------------------------------------------------------------------------------------------

def parse_curl(command: str) -> tuple[str, dict[str, str], bytes]:
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["curl", "-sS", "-X"] and words[3] == "POST"
    url, headers, body = words[4], {}, b""
    for flag, value in zip(words[5::2], words[6::2], strict=True):
        if flag == "-H":
            name, _, text = value.partition(": ")
            headers[name] = text
        elif flag == "--data-binary":
            body = value.encode()
    return url, headers, body


def test_a_message_as_a_signed_curl_command(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    body, answer = send(http, counter, "1101", lookup(certno, psn_name="", memo="it's 'quoted' \"and\" $HOME `x`"))
    assert answer["infcode"] == 0
    message_id = rows(db, HOSPITAL)[-1].id
    auth = console_login(http, HOSPITAL)
    made = http.post(f"/console/api/messages/{message_id}/curl", headers=auth)
    assert made.status_code == 200, made.text
    command = made.json()["command"]
    url, headers, sent = parse_curl(command)
    assert url.endswith(GATEWAY_PATH) and sent == body  # byte for byte, quotes and $ included
    assert headers["x-yb-access-key"] == HOSPITAL and abs(int(headers["x-yb-timestamp"]) - time.time() * 1000) < 10_000
    # a fresh nonce every time, and the platform takes it: the same msgid and body are a retry, answered as the first time
    again = parse_curl(http.post(f"/console/api/messages/{message_id}/curl", headers=auth).json()["command"])[1]
    assert again["x-yb-nonce"] != headers["x-yb-nonce"]
    replayed = DECODER.decode(http.post(GATEWAY_PATH, content=sent, headers=headers).content)
    assert replayed["infcode"] == 0 and replayed["output"] == answer["output"]
    # through a real shell the command hands curl the same bytes (curl replaced by a function that prints its arguments)
    printed = subprocess.run(["sh", "-c", "curl() { for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }; " + command],
                             capture_output=True, timeout=30)
    assert printed.returncode == 0
    assert body in printed.stdout.split(b"\0")


def test_curl_of_a_body_that_is_not_utf8_goes_through_base64(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.console.service import command

    body = '{"infno":"1101","memo":"中文"}'.encode("gbk") + b"\r\n"
    text = command("http://h/x", {"x-yb-nonce": "n"}, body)
    assert "base64 -d" in text and "charset=GBK" in text
    printed = subprocess.run(["sh", "-c", "curl() { cat; }; " + text], capture_output=True, timeout=30)
    assert printed.stdout == body


def test_staff_curl_only_with_a_body_covering_signature(http, counter: CounterClient, certno: str, db, settings) -> None:  # type: ignore[no-untyped-def]
    from yibao.gateway import keys

    send(http, counter, "1101", lookup(certno))
    message_id = rows(db, HOSPITAL)[-1].id
    made = run_cli(settings.database_url, "console", "staff-add", "ops.wang")
    password = re.search(r"password (\S+)", made.stdout).group(1)
    auth = {"authorization": f"Bearer {staff_login(http, 'ops.wang', password).json()['token']}"}
    reply = http.post(f"/console/api/messages/{message_id}/curl", headers=auth)
    assert reply.status_code == 200 and reply.json()["scheme"] == "yibao"
    with db.unit_of_work() as session:
        keys.set_schemes(session, HOSPITAL, "csb,tif")
    try:
        refused = http.post(f"/console/api/messages/{message_id}/curl", headers=auth)
        assert refused.status_code == 409 and refused.json()["field"] == "scheme"
        mine = http.post(f"/console/api/messages/{message_id}/curl", headers=console_login(http, HOSPITAL)).json()
        assert mine["scheme"] == "csb" and mine["notes"]  # the institution itself may: it holds the secret anyway
        url, headers, sent = parse_curl(mine["command"])
        assert http.post(GATEWAY_PATH, content=sent, headers=headers).json()["infcode"] == 0
        with db.unit_of_work() as session:
            keys.set_schemes(session, HOSPITAL, "tif")
        mine = http.post(f"/console/api/messages/{message_id}/curl", headers=console_login(http, HOSPITAL)).json()
        url, headers, sent = parse_curl(mine["command"])
        assert mine["scheme"] == "tif" and "x-tif-signature" in headers
        assert http.post(GATEWAY_PATH, content=sent, headers=headers).json()["infcode"] == 0
    finally:
        with db.unit_of_work() as session:
            keys.set_schemes(session, HOSPITAL, "yibao,csb,tif")
    with db.unit_of_work(write=False) as session:
        from yibao.audit.models import AuditEvent

        assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "console.curl",
                                                                                  AuditEvent.actor == "staff:ops.wang")) >= 1


def test_a_cut_body_cannot_be_replayed(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.console.service import REQUEST_CAP

    send(http, counter, "1101", lookup(certno, memo="y" * REQUEST_CAP))
    message_id = rows(db, HOSPITAL)[-1].id
    reply = http.post(f"/console/api/messages/{message_id}/curl", headers=console_login(http, HOSPITAL))
    assert reply.status_code == 409 and "字节" in reply.json()["detail"]


# -- retention ---------------------------------------------------------------------------------------------

def test_retention_keeps_the_last_n_per_institution_and_d_days(http, counter: CounterClient, other: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.console.service import Retention

    gateway = http.app.state.gateway
    kept = gateway.call_log.retention
    gateway.call_log.retention = Retention(keep=3, days=7)
    try:
        for _ in range(4):
            send(http, counter, "1101", lookup(certno))
        send(http, other, "1101", lookup(certno))
        with db.unit_of_work() as session:  # a message from ten days ago
            old = rows(db, OTHER)[-1]
            session.add(ConsoleMessage(**{c.name: getattr(old, c.name) for c in ConsoleMessage.__table__.columns if c.name != "id"}
                                       | {"at": clock.now() - timedelta(days=10)}))
        others_before = len(rows(db, OTHER))
        assert len(rows(db, HOSPITAL)) > 3
        gateway._calls = 4999  # the next call is the one that runs the gateway's housekeeping
        send(http, counter, "1101", lookup(certno))
    finally:
        gateway.call_log.retention = kept
    assert len(rows(db, HOSPITAL)) == 3
    assert all(r.at > clock.now() - timedelta(days=7) for r in rows(db, OTHER))
    assert len(rows(db, OTHER)) == min(3, others_before - 1)


# -- the page ----------------------------------------------------------------------------------------------

def test_the_page_is_served_under_the_content_security_policy(http) -> None:  # type: ignore[no-untyped-def]
    page = http.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"] and page.headers["cache-control"] == "no-store"
    assert '<script src="/console/console.js"></script>' in page.text and "<script>" not in page.text and "style=" not in page.text
    script = http.get("/console/console.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "HMAC" in script.text and "SHA-256" in script.text


def test_the_console_api_never_fails_on_generated_input(settings, db, http) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis over the console's operations, signed in with a session of its own: its DELETE signs that one out,
    not the session the module's other tests share (they run before or after it, in any order)."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    from yibao.app import create_app

    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(settings, db))
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith("/console/api")]
    assert len(operations) >= 8
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # signing out last, so the others run signed in
    auth = console_login(http, HOSPITAL, fresh=True)
    for operation in operations:
        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for headers in ({}, auth):
                response = case.call(headers=headers)
                where = f"{case.method} {case.formatted_path}"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                assert "Traceback" not in response.text
                if response.status_code >= 400:
                    kind = response.headers.get("content-type", "")
                    kind = kind[0] if isinstance(kind, list) else kind
                    assert kind.startswith("application/problem+json"), f"{where}: {response.status_code} {response.text[:300]}"

        run()


def test_a_dialects_own_names_are_not_unknown_fields(http, db) -> None:  # type: ignore[no-untyped-def]
    """A Guangzhou HIS sends its own node and field names; the console reads its messages translated, as the gateway did."""
    from flows import person_with
    from test_dialects import GuangdongHis
    from yibao.gateway import keys

    code = "H44030000004"
    with db.unit_of_work() as session:
        keys.set_dialect(session, code, "guangzhou")
    his = GuangdongHis(http, code, secret_of(code), guangzhou=True)
    his.sign_in()
    person = person_with(db, "310", region="440300")
    psn_no = his.psn_no(person.certno)
    # 2404 sent flat (no node) with a field the spec does not know: only that one is a warning
    his.call("2404", {"mdtrt_id": "4403009999999999", "psn_no": psn_no, "ipt_otp_nmbr": "x"})
    message = rows(db, code)[-1]
    assert message.dialect == "guangzhou" and message.infno == "2404"
    shown = http.get(f"/console/api/messages/{message.id}", headers=console_login(http, code)).json()
    unknown = {f["path"] for f in shown["findings"] if f["kind"] == "unknown"}
    assert any(path.endswith("ipt_otp_nmbr") for path in unknown), shown["findings"]
    assert not any(path.endswith(("mdtrt_id", "psn_no")) for path in unknown), shown["findings"]
    sign_in = http.get(f"/console/api/messages/{rows(db, code)[0].id}", headers=console_login(http, code)).json()
    # its sign-in node `data` is Guangzhou's name for signIn; what the platform ignores in it (userid…) is still said
    assert sign_in["infno"] == "9001" and "input.data" not in {f["path"] for f in sign_in["findings"]}


def test_a_strangers_sign_in_attempts_are_counted_not_stored(http, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.audit.models import AuditEvent

    def audit_rows() -> int:
        with db.unit_of_work(write=False) as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "console.signin")) or 0

    before = audit_rows()
    for n in range(5):
        key = f"X{n}NOSUCHKEY{os.getpid()}"
        challenge = http.post("/console/api/challenge", json={"access_key": key}).json().get("challenge", "0" * 32)
        refused = http.post("/console/api/sessions", json={"access_key": key, "challenge": challenge, "answer": "0" * 64})
        assert refused.status_code in (401, 403)
    assert audit_rows() == before  # nothing a stranger typed is written


def test_nobody_can_lock_an_institution_out_of_its_console(settings, db) -> None:  # type: ignore[no-untyped-def]
    """An access key is the institution's public code: failures from one address must not lock out the others."""
    from litestar.testing import TestClient

    from test_front_server import FromAddress
    from yibao.app import create_app

    code = "P37010000008"
    wrapped = FromAddress(create_app(settings, db))
    with TestClient(app=wrapped) as client:  # type: ignore[arg-type]
        wrapped.ip = "10.66.0.1"
        answers = []
        for _ in range(25):
            challenge = client.post("/console/api/challenge", json={"access_key": code}).json().get("challenge", "0" * 32)
            answers.append(client.post("/console/api/sessions", json={"access_key": code, "challenge": challenge, "answer": "0" * 64}))
        assert answers[-1].status_code == 429  # the guesser is stopped
        wrapped.ip = "10.66.0.2"  # the institution itself, from its own office
        challenge = client.post("/console/api/challenge", json={"access_key": code}).json()["challenge"]
        reply = client.post("/console/api/sessions", json={"access_key": code, "challenge": challenge,
                                                           "answer": answer_for(secret_of(code), code, challenge)})
        assert reply.status_code == 201, reply.text
