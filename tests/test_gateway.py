"""The national gateway: signatures, replay, envelopes, sign-in, idempotency, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac as std_hmac
import threading
import time
from typing import Any

import pytest

from conftest import HOSPITAL, PHARMACY_OTHER_REGION, secret_of
from helpers import encode, now_ms, post_signed, row_counts
from yibao.client import GATEWAY_PATH, CounterClient
from yibao.core import crypto


def lookup_input(certno: str) -> dict[str, Any]:
    return {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "psn_cert_type": "01"}}


@pytest.fixture(scope="module")
def certno(db) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from yibao.registry.models import Person

    with db.unit_of_work(write=False) as session:
        return session.scalar(select(Person.certno).order_by(Person.psn_no).limit(1))


# -- authentication ----------------------------------------------------------------------

def test_unsigned_request_is_refused(http, counter: CounterClient, certno: str, db) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(db)
    reply = http.post(GATEWAY_PATH, content=encode(counter.envelope("1101", lookup_input(certno))))
    answer = reply.json()
    assert reply.status_code == 200 and answer["infcode"] == -1
    assert "not signed" in answer["err_msg"]
    assert answer["output"] is None and len(answer["inf_refmsgid"]) == 30
    assert row_counts(db) == before


def test_wrong_signature_is_refused(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup_input(certno)))
    answer = post_signed(http, body, HOSPITAL, "not-the-secret")
    assert answer["infcode"] == -1 and "x-yb-signature does not match" in answer["err_msg"]


def test_body_changed_after_signing_is_refused(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    from yibao.gateway.auth import sign_headers

    body = encode(counter.envelope("1101", lookup_input(certno)))
    headers = sign_headers(HOSPITAL, secret_of(HOSPITAL), body)
    tampered = body.replace(b'"opter":"0001"', b'"opter":"0002"')
    answer = http.post(GATEWAY_PATH, content=tampered, headers=headers).json()
    assert answer["infcode"] == -1 and "signature" in answer["err_msg"]


def test_stale_timestamp_is_refused(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup_input(certno)))
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL), timestamp_ms=now_ms() - 3_600_000)
    assert answer["infcode"] == -1 and "x-yb-timestamp" in answer["err_msg"] and "behind the platform clock" in answer["err_msg"]


def test_replayed_request_is_refused(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    from yibao.gateway.auth import sign_headers

    body = encode(counter.envelope("1101", lookup_input(certno)))
    headers = sign_headers(HOSPITAL, secret_of(HOSPITAL), body)
    first = http.post(GATEWAY_PATH, content=body, headers=headers).json()
    again = http.post(GATEWAY_PATH, content=body, headers=headers).json()
    assert first["infcode"] == 0
    assert again["infcode"] == -1 and "replayed" in again["err_msg"]


def test_replay_of_a_refused_request_is_also_refused(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    from yibao.gateway.auth import sign_headers

    body = encode(counter.envelope("1101", lookup_input("11010519491231002X")))
    headers = sign_headers(HOSPITAL, secret_of(HOSPITAL), body)
    assert "no insured person" in http.post(GATEWAY_PATH, content=body, headers=headers).json()["err_msg"]
    assert "replayed" in http.post(GATEWAY_PATH, content=body, headers=headers).json()["err_msg"]


def test_unknown_access_key_is_refused(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup_input(certno)))
    answer = post_signed(http, body, "H99999999999", "x")
    assert answer["infcode"] == -1 and "unknown or revoked access key" in answer["err_msg"]


def test_envelope_institution_must_be_the_signer(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    envelope = counter.envelope("1101", lookup_input(certno))
    envelope["fixmedins_code"] = PHARMACY_OTHER_REGION
    answer = post_signed(http, encode(envelope), HOSPITAL, secret_of(HOSPITAL))
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("fixmedins_code:")


def test_csb_headers_are_accepted(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup_input(certno)))
    params = {"_api_name": "hssServives", "_api_version": "1.0.0", "_api_timestamp": str(now_ms()), "_api_access_key": HOSPITAL}
    signature = base64.b64encode(std_hmac.new(secret_of(HOSPITAL).encode(), "&".join(f"{k}={params[k]}" for k in sorted(params)).encode(),
                                              hashlib.sha1).digest()).decode()
    reply = http.post(GATEWAY_PATH, content=body, headers={**params, "_api_signature": signature})
    assert reply.json()["infcode"] == 0, reply.text
    again = http.post(GATEWAY_PATH, content=body, headers={**params, "_api_signature": signature}).json()
    assert again["infcode"] == -1 and "replayed" in again["err_msg"]
    bad = http.post(GATEWAY_PATH, content=body, headers={**params, "_api_signature": "AAAA"}).json()
    assert bad["infcode"] == -1 and "_api_signature" in bad["err_msg"]


def test_tif_headers_are_accepted(http, counter: CounterClient, certno: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup_input(certno)))
    ts, nonce = str(int(time.time())), "a1b2c3d4e5"
    headers = {"x-tif-paasid": HOSPITAL, "x-tif-timestamp": ts, "x-tif-nonce": nonce,
               "x-tif-signature": crypto.tif_signature(ts, secret_of(HOSPITAL), nonce).upper()}
    assert http.post(GATEWAY_PATH, content=body, headers=headers).json()["infcode"] == 0
    assert "replayed" in http.post(GATEWAY_PATH, content=body, headers=headers).json()["err_msg"]


# -- envelope and bad input ----------------------------------------------------------------

def call(http, counter: CounterClient, envelope: dict[str, Any] | bytes) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = envelope if isinstance(envelope, bytes) else encode(envelope)
    return post_signed(http, body, HOSPITAL, secret_of(HOSPITAL))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.pop("msgid"), "msgid: required field is missing"),
        (lambda e: e.pop("infno"), "infno: required field is missing"),
        (lambda e: e.update(infno="7777"), "infno: unknown transaction '7777'"),
        (lambda e: e.update(mdtrtarea_admvs="37010"), "mdtrtarea_admvs"),
        (lambda e: e.update(opter_type="9"), "opter_type"),
        (lambda e: e.update(opter=""), "opter: required field is empty"),
        (lambda e: e.update(inf_time="yesterday"), "inf_time"),
        (lambda e: e.update(input=[1, 2]), "input: must be a JSON object"),
        (lambda e: e.update(input="{not json"), "input: is a string but not JSON"),
        (lambda e: e.pop("input"), "input: required field is missing"),
        (lambda e: e["input"]["data"].pop("mdtrt_cert_no"), "input.data.mdtrt_cert_no: required field is missing"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_no=""), "input.data.mdtrt_cert_no: required field is empty"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_no=["x"]), "input.data.mdtrt_cert_no"),
        (lambda e: e["input"].update(data="x"), "input.data"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_type="09"), "input.data.mdtrt_cert_type"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_no="370102199001011234"), "GB 11643"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_no="11010519491231002X"), "no insured person"),
        (lambda e: e["input"]["data"].update(mdtrt_cert_type="03"), "input.data.card_sn: required when mdtrt_cert_type is 03"),
        (lambda e: e.update(sign_no=""), "sign_no: sign in with 9001 first"),
        (lambda e: e.update(sign_no="123"), "sign_no: '123' is not a sign-in"),
    ],
)
def test_bad_envelopes_get_infcode_minus_one_naming_the_field(http, counter, certno, db, mutate, expected) -> None:  # type: ignore[no-untyped-def]
    envelope = counter.envelope("1101", lookup_input(certno))
    mutate(envelope)
    before = row_counts(db)
    answer = call(http, counter, envelope)
    assert answer["infcode"] == -1
    assert expected in answer["err_msg"], answer["err_msg"]
    assert len(answer["err_msg"]) <= 200
    assert row_counts(db) == before


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"42", b'"text"', "{\"infno\": \"1101\", \u00ff".encode("latin-1"), b"\x00\x01\x02"])
def test_malformed_json_is_refused(http, counter, body, db) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(db)
    answer = call(http, counter, body)
    assert answer["infcode"] == -1 and ("JSON" in answer["err_msg"] or "envelope" in answer["err_msg"])
    assert row_counts(db) == before


def test_oversized_body_is_refused_before_reading_it_whole(http, counter, certno) -> None:  # type: ignore[no-untyped-def]
    envelope = counter.envelope("1101", lookup_input(certno))
    envelope["dev_safe_info"] = "x" * 300_000  # the test app allows 256 KiB
    answer = call(http, counter, envelope)
    assert answer["infcode"] == -1 and "larger than" in answer["err_msg"]


def test_tolerant_forms_real_clients_send(http, counter: CounterClient, certno: str) -> None:
    envelope = counter.envelope("1101", lookup_input(certno))
    envelope["input"] = encode(envelope["input"]).decode()  # input as a JSON string
    envelope["opter_type"] = 1  # a number where the spec has text
    envelope["unknown_vendor_field"] = "ignored"
    answer = call(http, counter, envelope)
    assert answer["infcode"] == 0, answer
    assert isinstance(answer["infcode"], int)


def test_per_transaction_paths_are_served(http, counter: CounterClient, certno: str) -> None:
    answer = post_signed(http, encode(counter.envelope("1101", lookup_input(certno))), HOSPITAL, secret_of(HOSPITAL),
                         path="/fsi/api/fsiPsnInfoService/queryPsnInfo")
    assert answer["infcode"] == 0
    mismatch = post_signed(http, encode(counter.envelope("1101", lookup_input(certno))), HOSPITAL, secret_of(HOSPITAL),
                           path="/fsi/api/signInSignOutService/signIn")
    assert mismatch["infcode"] == -1 and "infno" in mismatch["err_msg"]
    unknown = post_signed(http, b"{}", HOSPITAL, secret_of(HOSPITAL), path="/fsi/api/noSuchService/x")
    assert unknown["infcode"] == -1 and "no transaction is served" in unknown["err_msg"]


def test_response_envelope_shape(counter: CounterClient, certno: str) -> None:
    answer = counter.call("1101", lookup_input(certno))
    assert set(answer) >= {"infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"}
    assert answer["infcode"] == 0 and answer["err_msg"] == ""
    assert answer["inf_refmsgid"].startswith("370100") and len(answer["inf_refmsgid"]) == 30
    assert len(answer["refmsg_time"]) == 17 and answer["respond_time"] >= answer["refmsg_time"]


# -- sign-in -------------------------------------------------------------------------------

def test_sign_in_and_out(http) -> None:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    signed = client.sign_in()
    out = signed["output"]["signinoutb"]
    assert len(out["sign_no"]) == 30 and len(out["sign_time"]) == 19
    assert client.call("1901", {"data": {"type": "gend"}})["infcode"] == 0
    bye = client.call("9002", {"signOut": {"sign_no": client.sign_no, "opter_no": "0001"}})
    assert bye["infcode"] == 0 and "sign_time" in bye["output"]["signoutoutb"]
    after = client.call("1901", {"data": {"type": "gend"}})
    assert after["infcode"] == -1 and "signed out" in after["err_msg"]


def test_unknown_operator_cannot_sign_in(http) -> None:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http, opter="9999")
    answer = client.sign_in()
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.signIn.opter_no:")


def test_sign_no_of_another_institution_is_refused(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    other = CounterClient("http://testserver", PHARMACY_OTHER_REGION, secret_of(PHARMACY_OTHER_REGION), http=http, mdtrtarea_admvs="440300")
    other.sign_no = counter.sign_no
    answer = other.call("1901", {"data": {"type": "gend"}})
    assert answer["infcode"] == -1 and "sign_no" in answer["err_msg"]


# -- idempotency ---------------------------------------------------------------------------

def test_same_msgid_returns_the_first_answer(counter: CounterClient, certno: str) -> None:
    msgid = counter.new_msgid()
    first = counter.call("1101", lookup_input(certno), msgid=msgid)
    again = counter.call("1101", lookup_input(certno), msgid=msgid)
    assert first["infcode"] == 0 and again == first


def test_same_msgid_with_another_body_is_a_new_request(counter: CounterClient, certno: str) -> None:
    """Clients' msgid counters restart: the same msgid with another body is served (test_wire_habits.py has the rest)."""
    msgid = counter.new_msgid()
    assert counter.call("1101", lookup_input(certno), msgid=msgid)["infcode"] == 0
    other = counter.call("1901", {"data": {"type": "gend"}}, msgid=msgid)
    assert other["infcode"] == 0 and other["output"]["list"]


def test_sign_in_retry_gives_the_same_sign_no(http) -> None:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    msgid = client.new_msgid()
    first = client.call("9001", {"signIn": {"opter_no": "0001", "mac": "m", "ip": "1.2.3.4"}}, msgid=msgid)
    again = client.call("9001", {"signIn": {"opter_no": "0001", "mac": "m", "ip": "1.2.3.4"}}, msgid=msgid)
    assert again["output"]["signinoutb"]["sign_no"] == first["output"]["signinoutb"]["sign_no"]


def test_concurrent_retries_of_one_msgid_create_one_answer(http, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from yibao.gateway.models import SignIn

    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    msgid = client.new_msgid()
    with db.unit_of_work(write=False) as session:
        before = session.scalar(select(func.count()).select_from(SignIn))
    answers: list[dict[str, Any]] = []

    def send() -> None:
        answers.append(client.call("9001", {"signIn": {"opter_no": "0002", "mac": "m", "ip": "1.2.3.4"}}, msgid=msgid))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a["infcode"] == 0 for a in answers), answers
    assert len({a["output"]["signinoutb"]["sign_no"] for a in answers}) == 1
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(SignIn)) == before + 1


def test_health_and_metrics(http) -> None:  # type: ignore[no-untyped-def]
    assert http.get("/health").json()["status"] == "ok"
    metrics = http.get("/metrics").text
    assert "yibao_gateway_requests_total" in metrics
    assert http.get("/schema/openapi.json").status_code == 200
