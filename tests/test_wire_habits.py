"""What real HIS clients do on the wire, through the signed gateway: the paths they hard-code, msgids from restarting
counters, CSB without a nonce, counter clocks that are off, and the tolerant reading and strict writing they need."""

from __future__ import annotations

import dataclasses
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, fee, ok, person_with, serial
from helpers import encode, now_ms, post_signed
from yibao.app import create_app
from yibao.client import GATEWAY_PATH, CounterClient
from yibao.core import clock, crypto
from yibao.gateway.auth import sign_headers
from yibao.gateway.envelope import DECODER


@pytest.fixture(scope="module")
def person(db):  # type: ignore[no-untyped-def]
    return person_with(db, "310", retired=False)


def lookup(person) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "psn_cert_type": "01"}}


def csb_headers(*, name: str = "hssServives", timestamp: str | None = None) -> dict[str, str]:
    params = {"_api_name": name, "_api_version": "1.0.0", "_api_timestamp": timestamp or str(now_ms()), "_api_access_key": HOSPITAL}
    return {**params, "_api_signature": crypto.csb_signature(secret_of(HOSPITAL), params), "content-type": "application/json"}


def envelope_of(reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, (reply.status_code, reply.text)
    answer = reply.json()
    assert set(answer) >= {"infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"}, answer
    return answer


# -- 1. the paths clients hard-code -------------------------------------------------------------------------------

def test_csb_path_per_transaction(http, counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup(person)))
    answer = envelope_of(http.post("/CSB/hsa-fsi-1101", content=body, headers=csb_headers(name="hsa-fsi-1101")))
    assert answer["infcode"] == 0, answer["err_msg"]
    assert answer["output"]["baseinfo"]["psn_no"] == person.psn_no
    other = encode(counter.envelope("1901", {"data": {"type": "gend"}}))
    wrong = envelope_of(http.post("/CSB/hsa-fsi-1101", content=other, headers=csb_headers(name="hsa-fsi-1101")))
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("infno:") and "1101" in wrong["err_msg"]


def test_powercsb_takes_the_transaction_from_the_body(http, counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup(person)))
    assert envelope_of(http.post("/isp-api/powercsb", content=body, headers=csb_headers()))["infcode"] == 0
    named = encode(counter.envelope("1101", lookup(person)))
    assert envelope_of(http.post("/isp-api/powercsb", content=named, headers=csb_headers(name="hsa-fsi-1101")))["infcode"] == 0
    # the service name names another transaction than the body: they must agree
    clash = encode(counter.envelope("1101", lookup(person)))
    refused = envelope_of(http.post("/isp-api/powercsb", content=clash, headers=csb_headers(name="hsa-fsi-2201")))
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("infno:") and "_api_name" in refused["err_msg"]
    # yibao's own signature on the CSB path works too
    own = encode(counter.envelope("1101", lookup(person)))
    assert post_signed(http, own, HOSPITAL, secret_of(HOSPITAL), path="/isp-api/powercsb")["infcode"] == 0


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/fsi", "/fsi/", "/fsi/x", "/fsi/api/noSuchService/x/y", "/fsi/api/rsfComIfsService",
                                  "/CSB", "/CSB/hsa-fsi-1101/more", "/CSB/other", "/isp-api", "/isp-api/other", "/isp-api/powercsb/x"])
def test_anything_else_under_the_prefixes_answers_an_envelope(http, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = envelope_of(http.request(method, path, content=b"{}" if method != "GET" else None))
    assert answer["infcode"] == -1 and answer["err_msg"] and len(answer["inf_refmsgid"]) == 30
    assert answer["output"] is None


@pytest.mark.parametrize("path", [GATEWAY_PATH, "/fsi/api/fsiPsnInfoService/queryPsnInfo", "/CSB/hsa-fsi-1101", "/isp-api/powercsb"])
def test_a_served_path_with_another_method_answers_an_envelope(http, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = envelope_of(http.get(path))
    assert answer["infcode"] == -1 and "POST" in answer["err_msg"]


def test_other_paths_keep_their_own_not_found(http) -> None:  # type: ignore[no-untyped-def]
    reply = http.get("/no/such/page")
    assert reply.status_code == 404 and "infcode" not in reply.text


# -- 3. msgid as clients make it ----------------------------------------------------------------------------------

def test_same_msgid_another_request_is_served_and_flagged(counter: CounterClient, person, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.gateway.models import GatewayMessage
    from yibao.gateway.service import msgid_reused

    msgid = counter.new_msgid()
    first = counter.call("1101", lookup(person), msgid=msgid)
    with db.unit_of_work(write=False) as session:
        assert first["infcode"] == 0 and not msgid_reused(session, HOSPITAL, msgid)
    second = counter.call("1901", {"data": {"type": "gend"}}, msgid=msgid)
    assert second["infcode"] == 0, second["err_msg"]
    assert second["output"]["list"] and "baseinfo" not in second["output"]
    # each retry gets its own first answer back
    assert counter.call("1101", lookup(person), msgid=msgid) == first
    assert counter.call("1901", {"data": {"type": "gend"}}, msgid=msgid) == second
    with db.unit_of_work(write=False) as session:
        assert msgid_reused(session, HOSPITAL, msgid)
        rows = session.query(GatewayMessage).filter_by(fixmedins_code=HOSPITAL, msgid=msgid).order_by(GatewayMessage.created_at).all()
        assert [(r.infno, r.msgid_reused) for r in rows] == [("1101", False), ("1901", True)]


def test_two_counters_with_restarting_counters_register_two_visits(http, db, person) -> None:  # type: ignore[no-untyped-def]
    """Two counter PCs sign in within one second, each numbering its messages from 0001: both sign-ins and both
    registrations go through."""
    second = f"{HOSPITAL}{clock.now():%Y%m%d%H%M%S}"
    counters = [CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http) for _ in range(2)]
    for i, client in enumerate(counters):
        signed = client.call("9001", {"signIn": {"opter_no": "0001", "mac": f"00-16-3E-00-00-1{i}", "ip": f"10.0.0.1{i}"}},
                             msgid=second + "0001")
        assert signed["infcode"] == 0, signed["err_msg"]
        client.sign_no = signed["output"]["signinoutb"]["sign_no"]
    assert counters[0].sign_no != counters[1].sign_no
    patients = [(person, "310"), (person_with(db, "390"), "390")]
    visits = set()
    for client, (who, insutype) in zip(counters, patients, strict=True):
        reg = client.call("2201", {"data": {"psn_no": who.psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()),
                                            **cert(who), "ipt_otp_no": serial("RC")}}, msgid=second + "0002")
        assert reg["infcode"] == 0, reg["err_msg"]
        visits.add((reg["output"]["data"]["psn_no"], reg["output"]["data"]["mdtrt_id"]))
    assert {p for p, _ in visits} == {person.psn_no, patients[1][0].psn_no} and len(visits) == 2


# -- 4. CSB carries no nonce ----------------------------------------------------------------------------------------

def test_two_csb_counters_in_the_same_millisecond_are_both_served(http, person) -> None:  # type: ignore[no-untyped-def]
    headers = csb_headers(timestamp=str(now_ms()))  # the same key, service and millisecond: the same signature
    one = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    two = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    for client in (one, two):
        assert client.sign_in()["infcode"] == 0
    first = encode(one.envelope("1101", lookup(person)))
    second = encode(two.envelope("1101", lookup(person)))
    assert first != second
    assert envelope_of(http.post(GATEWAY_PATH, content=first, headers=headers))["infcode"] == 0
    assert envelope_of(http.post(GATEWAY_PATH, content=second, headers=headers))["infcode"] == 0
    # the same bytes with the same headers again: a replay
    again = envelope_of(http.post(GATEWAY_PATH, content=first, headers=headers))
    assert again["infcode"] == -1 and "replayed" in again["err_msg"]


# -- 5. clock skew --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("offset_s", "way"), [(-3600, "behind"), (1800, "ahead of")])
def test_skew_refusal_says_how_far_and_which_setting(http, counter: CounterClient, person, offset_s: int, way: str) -> None:  # type: ignore[no-untyped-def]
    body = encode(counter.envelope("1101", lookup(person)))
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL), timestamp_ms=now_ms() + offset_s * 1000)
    assert answer["infcode"] == -1
    message = answer["err_msg"]
    assert f"{abs(offset_s) - 1} s {way}" in message or f"{abs(offset_s)} s {way}" in message, message
    assert "YIBAO_SIGNATURE_WINDOW_S" in message and "300" in message
    csb = envelope_of(http.post(GATEWAY_PATH, content=body, headers=csb_headers(timestamp=str(now_ms() + offset_s * 1000))))
    assert f" {way} " in csb["err_msg"] and "_api_timestamp" in csb["err_msg"]


def test_the_window_is_a_setting(settings, db, person) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app=create_app(dataclasses.replace(settings, signature_window_s=7200), db)) as wide:
        client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=wide)
        assert client.sign_in()["infcode"] == 0
        body = encode(client.envelope("1101", lookup(person)))
        assert post_signed(wide, body, HOSPITAL, secret_of(HOSPITAL), timestamp_ms=now_ms() - 3600_000)["infcode"] == 0


# -- 6. tolerant reader -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S.000", "%Y-%m-%dT%H:%M:%S",
                                  "%Y/%-m/%-d %-H:%M:%S"])
def test_datetimes_in_the_forms_clients_write(counter: CounterClient, person, form: str) -> None:  # type: ignore[no-untyped-def]
    now = clock.now().replace(microsecond=0)
    envelope = counter.envelope("2201",
                                {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": now.strftime(form), **cert(person),
                                                  "ipt_otp_no": serial("DT")}})
    envelope["inf_time"] = now.strftime(form)
    answer = counter.send(envelope)
    assert answer["infcode"] == 0, answer["err_msg"]
    query = counter.call("5201", {"data": {"psn_no": person.psn_no, "begntime": (now.replace(hour=0, minute=0, second=0)).strftime(form),
                                           "endtime": now.strftime(form), "mdtrt_id": answer["output"]["data"]["mdtrt_id"]}})
    assert query["infcode"] == 0, query["err_msg"]
    assert [v["begntime"] for v in query["output"]["mdtrtinfo"]] == [clock.fmt_datetime(now)]


@pytest.mark.parametrize("text", ["20261101", "2026/11/01", "2026-11-01", "2026-11-01 00:00:00", "2026/11/1"])
def test_dates_in_the_forms_clients_write(counter: CounterClient, text: str) -> None:
    answer = counter.call("1901", {"data": {"type": "gend", "date": text}})
    assert answer["infcode"] == 0, answer["err_msg"]


@pytest.mark.parametrize("text", ["2026-13-01 00:00:00", "2026-11-31", "yesterday", "2026-11-01 25:00:00", "20261301"])
def test_impossible_dates_are_refused_naming_the_field(counter: CounterClient, text: str) -> None:
    answer = counter.call("1901", {"data": {"type": "gend", "date": text}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.date:"), answer["err_msg"]


def registered(counter: CounterClient, person) -> str:  # type: ignore[no-untyped-def]
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                            **cert(person), "ipt_otp_no": serial("TR")}}))
    return reg["data"]["mdtrt_id"]


@pytest.mark.parametrize(("amount", "fen"), [("12.300", 1230), (Decimal("12.300"), 1230), ("12", 1200), (12, 1200), ("12.3", 1230)])
def test_amounts_with_any_decimals_that_round_exactly(counter: CounterClient, db, person, amount: Any, fen: int) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    mdtrt_id = registered(counter, person)
    line = {**fee(mdtrt_id, person.psn_no, codes["jia"], "12.30"), "det_item_fee_sumamt": amount, "pric": amount}
    result = ok(counter.call("2204", {"feedetail": [line]}))["result"]
    assert Decimal(str(result[0]["det_item_fee_sumamt"])) * 100 == fen


def test_an_amount_that_does_not_round_exactly_is_refused_naming_it(counter: CounterClient, db, person) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    mdtrt_id = registered(counter, person)
    line = {**fee(mdtrt_id, person.psn_no, codes["jia"], "12.30"), "det_item_fee_sumamt": "12.305"}
    answer = counter.call("2204", {"feedetail": [line]})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.feedetail[0].det_item_fee_sumamt:"), answer["err_msg"]


def test_null_for_optional_fields_is_absent(counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    """C# serializers write every unset string as null."""
    data = {**lookup(person)["data"], "card_sn": None, "begntime": None, "certno": None, "psn_name": None}
    assert counter.call("1101", {"data": data})["infcode"] == 0
    envelope = counter.envelope("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                                  **cert(person), "ipt_otp_no": serial("NL"), "card_sn": None, "atddr_no": None,
                                                  "dr_name": None, "dept_code": None, "dept_name": None, "caty": None}})
    envelope.update(dev_no=None, dev_safe_info=None, cainfo=None, signtype=None, insuplc_admdvs=None, fixmedins_name=None)
    assert counter.send(envelope)["infcode"] == 0


def test_null_for_a_required_field_is_missing(counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    answer = counter.call("1101", {"data": {**lookup(person)["data"], "mdtrt_cert_no": None}})
    assert answer["infcode"] == -1 and answer["err_msg"].startswith("input.data.mdtrt_cert_no: required field is missing"), answer


def test_a_list_of_one_where_the_spec_has_an_object(counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    assert counter.call("1101", {"data": [lookup(person)["data"]]})["infcode"] == 0
    mdtrt_id = registered(counter, person)
    answer = counter.call("2203", {"mdtrtinfo": [{"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11"}],
                                   "diseinfo": {"diag_type": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染"}})
    assert answer["infcode"] == 0, answer["err_msg"]
    two = counter.call("1101", {"data": [lookup(person)["data"], lookup(person)["data"]]})
    assert two["infcode"] == -1 and two["err_msg"].startswith("input.data:"), two["err_msg"]


def test_an_object_where_the_spec_has_a_list(counter: CounterClient, db, person) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    mdtrt_id = registered(counter, person)
    result = ok(counter.call("2204", {"feedetail": fee(mdtrt_id, person.psn_no, codes["jia"], "5.00")}))["result"]
    assert isinstance(result, list) and len(result) == 1


@pytest.mark.parametrize("charset", ["GBK", "gb2312", "GB18030"])
def test_a_gbk_body_is_read_when_the_content_type_says_so(http, counter: CounterClient, person, charset: str) -> None:  # type: ignore[no-untyped-def]
    envelope = counter.envelope("1101", {"data": {**lookup(person)["data"], "psn_name": person.psn_name}})
    envelope["opter_name"] = "收费员甲"
    body = json.dumps(envelope, ensure_ascii=False).encode("gbk")
    headers = {"content-type": f"application/json; charset={charset}", **sign_headers(HOSPITAL, secret_of(HOSPITAL), body)}
    answer = DECODER.decode(http.post(GATEWAY_PATH, content=body, headers=headers).content)
    assert answer["infcode"] == 0, answer["err_msg"]
    assert answer["output"]["baseinfo"]["psn_name"] == person.psn_name
    # the same bytes said to be UTF-8 are refused, clearly
    body = json.dumps({**envelope, "msgid": counter.new_msgid()}, ensure_ascii=False).encode("gbk")
    headers = {"content-type": "application/json; charset=utf-8", **sign_headers(HOSPITAL, secret_of(HOSPITAL), body)}
    refused = DECODER.decode(http.post(GATEWAY_PATH, content=body, headers=headers).content)
    assert refused["infcode"] == -1 and "UTF-8" in refused["err_msg"]


def test_a_utf8_byte_order_mark_is_skipped(http, counter: CounterClient, person) -> None:  # type: ignore[no-untyped-def]
    body = b"\xef\xbb\xbf" + encode(counter.envelope("1101", lookup(person)))
    assert post_signed(http, body, HOSPITAL, secret_of(HOSPITAL))["infcode"] == 0


# -- 6. strict writer ------------------------------------------------------------------------------------------------

def test_the_writer_fills_every_spec_field_with_its_typed_empty_value() -> None:
    from yibao.gateway import wire

    out = wire.write("5203", {"setlinfo": {"setl_id": "S1", "hifp_pay": None, "brdy": None, "vendor_extra": "kept"}})
    info = out["setlinfo"]
    assert info["fixmedins_poolarea"] == "" and info["hifp_pay"] == 0 and info["brdy"] is None and info["vendor_extra"] == "kept"
    assert info["setl_time"] is None and info["medfee_sumamt"] == 0 and info["psn_name"] == ""
    assert out["setldetail"] == []


def test_the_writer_answers_no_price_cap_with_the_platform_sentinel() -> None:
    from yibao.gateway import wire

    for infno, node in (("2204", "result"), ("2301", "result"), ("5204", "feedetail")):
        out = wire.write(infno,
                         {node: [{"feedetl_sn": "1", "pric_uplmt_amt": None}, {"feedetl_sn": "2", "pric_uplmt_amt": Decimal("3.5")}]})
        assert [line["pric_uplmt_amt"] for line in out[node]] == [Decimal("99999999.000000"), Decimal("3.5")]
        assert all(line["selfpay_prop"] == 0 and line["memo"] == "" for line in out[node])


def test_the_writer_shapes_lists_and_objects() -> None:
    from yibao.gateway import wire

    assert wire.write("5201", {})["mdtrtinfo"] == []
    assert wire.write("5201", {"mdtrtinfo": None})["mdtrtinfo"] == []
    one = wire.write("5205", {"feedetail": {"feedetl_sn": "F1"}})["feedetail"]
    assert len(one) == 1 and one[0]["feedetl_sn"] == "F1" and one[0]["cnt"] == 0 and one[0]["fixmedins_name"] == ""
    settled = wire.write("2207A", {"setlinfo": {"setl_id": "S"}})  # the A variant answers as 2207
    assert settled["setldetail"] == [] and settled["setlinfo"]["psn_cash_pay"] == 0
    assert wire.write("1301", {"file_qury_no": "F"}) == {"file_qury_no": "F", "filename": "", "dld_end_time": None, "data_cnt": 0}
    assert wire.write("2203", {}) == {} and wire.write("9102", None) is None  # transactions the spec gives no answer


def test_the_writer_is_cheap_on_the_hot_path() -> None:
    from yibao.gateway import wire

    lines = {"result": [{"feedetl_sn": str(i), "det_item_fee_sumamt": Decimal("1.00"), "pric_uplmt_amt": None} for i in range(100)]}
    wire.write("2204", lines)  # the first call reads answers.yaml: not the hot path, and it falls to whichever test writes first
    started = time.perf_counter()
    for _ in range(20):
        wire.write("2204", lines)
    assert (time.perf_counter() - started) / 20 < 0.005  # a 100-line upload: well under the call's own cost
