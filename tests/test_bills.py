"""E-bills (医疗收费电子票据) end to end: a settlement through the gateway yields a signed bill that verifies publicly (by
number and check code, and by content against the published key); a changed amount is caught; a reversal yields a red
bill and the original answers 已冲红; the PDF carries a QR code leading to the verification; nobody sees another's bill."""

from __future__ import annotations

import copy
import dataclasses
import io
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from flows import catalogue_codes, fresh_person, ok, outpatient
from test_credential import ACTIVATED, App
from yibao.bill import document, service
from yibao.bill.models import Bill
from yibao.core import sm2


def _person(db):  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", skip=ACTIVATED, retired=False)
    ACTIVATED.add(person.psn_no)
    return person


def _settled(db, http, counter):  # type: ignore[no-untyped-def]
    """A person signed in to the app and one outpatient settlement of theirs through the gateway (two charge categories)."""
    codes = catalogue_codes(db)
    person = _person(db)
    app = App(http, person)
    out = outpatient(counter, person, "310", [(codes["jia"], "30.00"), (codes["bing"], "12.50")])
    return app, person, out["setlinfo"]


def _verify(http, bill: dict, **override: str):  # type: ignore[no-untyped-def]
    params = {"code": bill["bill_code"], "number": bill["bill_no"], "check": bill["check_code"], **override}
    reply = http.get("/api/v1/bills/verify", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_settlement_through_the_gateway_yields_a_bill_that_verifies(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    app, person, setl = _settled(db, http, counter)
    listed = app.get(f"/api/v1/people/{person.psn_no}/bills")
    assert listed.status_code == 200, listed.text
    mine = [b for b in listed.json() if b["setl_id"] == setl["setl_id"]]
    assert len(mine) == 1 and mine[0]["status_name"] == "有效" and mine[0]["kind"] == "blue"
    reply = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}")
    assert reply.status_code == 200, reply.text
    bill = reply.json()
    content = bill["document"]
    assert len(bill["bill_code"]) == 8 and len(bill["bill_no"]) == 10 and len(bill["check_code"]) == 6
    assert content["payer"]["name"] == person.psn_name and "*" in content["payer"]["certno"]
    assert content["settlement"]["setl_id"] == setl["setl_id"]
    assert Decimal(content["total"]) == Decimal(str(setl["medfee_sumamt"]))
    # the items, by charge category, add up to the total; the fund split is the settlement's
    assert sum(Decimal(i["amount"]) for i in content["items"]) == Decimal(content["total"])
    assert all(i["name"] in document.CHARGE_CATEGORIES.values() for i in content["items"])
    assert Decimal(content["funds"]["hifp_pay"]) == Decimal(str(setl["hifp_pay"]))
    assert Decimal(content["funds"]["psn_cash_pay"]) == Decimal(str(setl["psn_cash_pay"]))
    assert Decimal(content["funds"]["acct_pay"]) == Decimal(str(setl["acct_pay"]))

    # public verification, no sign-in: by number and check code …
    answer = _verify(http, bill)
    assert answer["status"] == "valid" and answer["result"] == "有效"
    assert answer["total"] == content["total"] and answer["payer"].startswith(person.psn_name[0]) and "*" in answer["payer"]
    # … by content …
    by_content = http.post("/api/v1/bills/verify", json={"document": content, "signature": bill["signature"]})
    assert by_content.status_code == 200 and by_content.json()["result"] == "有效"
    assert by_content.json()["check_code"] == bill["check_code"]
    # … and offline, with the published key and the documented canonical form
    keys = {k["key_id"]: k["public_key"] for k in http.get("/api/v1/bills/keys").json()}
    public = keys[content["issuer"]["key_id"]]
    canonical = __import__("json").dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert sm2.verify(public, canonical, bill["signature"])
    assert document.check_code(bill["signature"]) == bill["check_code"]


def test_a_tampered_bill_is_detected(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    app, person, setl = _settled(db, http, counter)
    bill = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}").json()
    changed = copy.deepcopy(bill["document"])
    changed["items"][0]["amount"] = str(Decimal(changed["items"][0]["amount"]) + 100)
    changed["total"] = str(Decimal(changed["total"]) + 100)
    answer = http.post("/api/v1/bills/verify", json={"document": changed, "signature": bill["signature"]}).json()
    assert answer["status"] == "tampered" and answer["result"] == "已篡改"
    renamed = copy.deepcopy(bill["document"])
    renamed["payer"]["name"] = "王五"
    assert http.post("/api/v1/bills/verify", json={"document": renamed, "signature": bill["signature"]}).json()["status"] == "tampered"
    # a signature that is not this bill's, or not a signature at all
    assert http.post("/api/v1/bills/verify", json={"document": bill["document"], "signature": "AAAA"}).json()["status"] == "tampered"
    # by number: a wrong check code, a number never issued
    assert _verify(http, bill, check="000000" if bill["check_code"] != "000000" else "111111")["result"] == "校验码不符"
    assert _verify(http, bill, number="9999999999")["result"] == "不存在"
    # malformed queries are refused as bad input, not answered as a fault
    assert http.get("/api/v1/bills/verify", params={"code": "x", "number": "1", "check": "A"}).status_code == 400
    assert http.post("/api/v1/bills/verify", json={"document": {"a": 1}, "signature": "x"}).status_code == 400


def test_a_reversal_issues_a_red_bill_and_the_original_answers_cancelled(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    app, person, setl = _settled(db, http, counter)
    blue = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}").json()
    undone = ok(counter.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": person.psn_no}}))
    red_id = undone["setlinfo"]["setl_id"]
    red = app.get(f"/api/v1/people/{person.psn_no}/bills/{red_id}").json()
    assert red["kind"] == "red" and red["document"]["title"].endswith("（红字）")
    assert red["document"]["original"] == {"bill_code": blue["bill_code"], "bill_no": blue["bill_no"], "setl_id": setl["setl_id"]}
    assert Decimal(red["document"]["total"]) == -Decimal(blue["document"]["total"])
    assert [(i["name"], -Decimal(i["amount"])) for i in red["document"]["items"]] == \
        [(i["name"], Decimal(i["amount"])) for i in blue["document"]["items"]]
    assert Decimal(red["document"]["funds"]["hifp_pay"]) == -Decimal(blue["document"]["funds"]["hifp_pay"])
    original = _verify(http, blue)
    assert original["status"] == "cancelled" and original["result"] == "已冲红"
    assert original["related"] == {"bill_code": red["bill_code"], "bill_no": red["bill_no"], "kind": "red"}
    assert _verify(http, red)["result"] == "有效"
    # the original's content still verifies as signed, and says it is cancelled
    held = {"document": blue["document"], "signature": blue["signature"]}
    assert http.post("/api/v1/bills/verify", json=held).json()["result"] == "已冲红"
    listed = {b["setl_id"]: b["status_name"] for b in app.get(f"/api/v1/people/{person.psn_no}/bills").json()}
    assert listed == {setl["setl_id"]: "已冲红", red_id: "有效"}


def test_a_settlement_reversed_before_the_issuer_came_still_gets_both_bills(db, http, counter, settings) -> None:  # type: ignore[no-untyped-def]
    app, person, setl = _settled(db, http, counter)
    undone = ok(counter.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": person.psn_no}}))
    service.issue_all_pending(db, settings)
    with db.unit_of_work(write=False) as session:
        bills = {b.setl_id: b for b in session.scalars(select(Bill).where(Bill.psn_no == person.psn_no))}
    assert bills[setl["setl_id"]].status == "cancelled" and bills[setl["setl_id"]].kind == "blue"
    assert bills[undone["setlinfo"]["setl_id"]].kind == "red"
    assert bills[undone["setlinfo"]["setl_id"]].related_setl_id == setl["setl_id"]


def test_the_background_issuer_bills_new_settlements_within_seconds(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    person = _person(db)
    setl = outpatient(counter, person, "310", [(codes["jia"], "8.00")])["setlinfo"]
    deadline = time.monotonic() + 10
    found = None
    while found is None and time.monotonic() < deadline:
        with db.unit_of_work(write=False) as session:
            found = session.get(Bill, setl["setl_id"])
        time.sleep(0.2)
    assert found is not None, "no bill issued in the background within 10 s"
    # every settlement of this database has its bill once the issuer caught up, and every number is used once
    with db.unit_of_work(write=False) as session:
        from yibao.encounter.models import Settlement

        unbilled = session.scalars(select(Settlement.setl_id).outerjoin(Bill, Bill.setl_id == Settlement.setl_id)
                                   .where(Bill.setl_id.is_(None))).all()
        numbers = session.execute(select(Bill.bill_code, Bill.bill_no)).all()
    assert len(numbers) == len(set(numbers))
    assert len(unbilled) <= 5, unbilled  # at most those settled in the last moment by other tests


def test_the_pdf_carries_the_bill_and_a_qr_code_leading_to_its_verification(db, http, counter, settings) -> None:  # type: ignore[no-untyped-def]
    pypdf = pytest.importorskip("pypdf")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    app, person, setl = _settled(db, http, counter)
    bill = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}").json()
    reply = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}/pdf")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/pdf" and reply.content.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(reply.content))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text().replace("\x00", "")  # pypdf reads the CID font two bytes a glyph
    for expected in ("医疗收费电子票据", bill["bill_code"], bill["bill_no"], bill["check_code"], person.psn_name,
                     bill["document"]["total"]):
        assert expected in text, (expected, text)
    images = reader.pages[0].images
    assert images, "no image in the PDF"
    picture = Image.open(io.BytesIO(images[0].data)).convert("L")
    decoded = [r.text for r in zxingcpp.read_barcodes(picture)]
    assert decoded == [bill["verify_url"]]
    url = urlsplit(decoded[0])
    assert url.path == "/app/verify.html" and decoded[0].startswith(settings.public_base_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert http.get("/api/v1/bills/verify", params=query).json()["result"] == "有效"


def test_one_person_cannot_fetch_anothers_bill(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    _app, person, setl = _settled(db, http, counter)
    stranger = App(http, _person(db))
    assert stranger.get(f"/api/v1/people/{person.psn_no}/bills").status_code == 403
    assert stranger.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}").status_code == 403
    assert stranger.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}/pdf").status_code == 403
    # asking under one's own number for another's settlement finds nothing
    assert stranger.get(f"/api/v1/people/{stranger.person.psn_no}/bills/{setl['setl_id']}").status_code == 404
    assert stranger.get(f"/api/v1/people/{stranger.person.psn_no}/bills/{setl['setl_id']}/pdf").status_code == 404
    assert setl["setl_id"] not in {b["setl_id"] for b in stranger.get(f"/api/v1/people/{stranger.person.psn_no}/bills").json()}
    # and nobody without a session
    assert http.get(f"/api/v1/people/{person.psn_no}/bills").status_code == 401


def test_the_public_endpoints_are_rate_limited_per_client(http, settings) -> None:  # type: ignore[no-untyped-def]
    # this client's earlier verifications may count in the same window: whatever they were, the fourth call on is over 3
    http.app.state.settings = dataclasses.replace(settings, rate_bill_verify_ip=3)
    try:
        replies = [http.get("/api/v1/bills/verify", params={"code": "37062601", "number": "1", "check": "ABCDEF"}) for _ in range(5)]
    finally:
        http.app.state.settings = settings
    assert [r.status_code for r in replies[3:]] == [429, 429]
    assert int(replies[-1].headers["retry-after"]) >= 1
    # under the configured limit the same call is answered
    assert http.get("/api/v1/bills/verify", params={"code": "37062601", "number": "1", "check": "ABCDEF"}).status_code == 200


def test_a_new_signing_key_signs_from_now_on_and_the_old_bills_still_verify(db, http, counter) -> None:  # type: ignore[no-untyped-def]
    app, person, setl = _settled(db, http, counter)
    before = app.get(f"/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}").json()
    with db.unit_of_work() as session:
        key_id, _ = service.rotate_key(session)
    assert key_id != before["document"]["issuer"]["key_id"]
    codes = catalogue_codes(db)
    later = outpatient(counter, person, "310", [(codes["jia"], "5.00")])["setlinfo"]
    after = app.get(f"/api/v1/people/{person.psn_no}/bills/{later['setl_id']}").json()
    assert after["document"]["issuer"]["key_id"] == key_id
    keys = {k["key_id"]: k["status"] for k in http.get("/api/v1/bills/keys").json()}
    assert keys[key_id] == "active" and keys[before["document"]["issuer"]["key_id"]] == "retired"
    assert _verify(http, before)["result"] == "有效" and _verify(http, after)["result"] == "有效"
    held = {"document": before["document"], "signature": before["signature"]}
    assert http.post("/api/v1/bills/verify", json=held).json()["result"] == "有效"
    # the old key's signature does not pass for the new key's bill
    assert http.post("/api/v1/bills/verify", json={"document": after["document"], "signature": before["signature"]}).json()["status"] == \
        "tampered"


def test_inpatient_and_pharmacy_settlements_and_their_reversals_get_bills(db, http, counter, settings) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of
    from flows import cert, fee, serial
    from yibao.client import CounterClient
    from yibao.core import clock

    codes = catalogue_codes(db)
    person = _person(db)
    app = App(http, person)
    # an admission: 2301, 2402, 2304 (inpatient: its own bill code), reversed by 2305
    admitted = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                      "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                      "adm_dept_codg": "A04", "adm_dept_name": "外科", "dise_codg": "K35.900",
                                                      "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                        "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                      "diag_name": "急性阑尾炎"}]}))
    mdtrt_id = admitted["result"]["mdtrt_id"]
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "1200.00"),
                                           fee(mdtrt_id, person.psn_no, codes["bing"], "300.00")]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    stay = ok(counter.call("2304", {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal("1500.00"),
                                             "psn_setlway": "01", "mdtrt_id": mdtrt_id, "insutype": "310", "acct_used_flag": "0",
                                             "mid_setl_flag": "0"}}))["setlinfo"]
    stay_bill = app.get(f"/api/v1/people/{person.psn_no}/bills/{stay['setl_id']}").json()
    assert stay_bill["bill_code"][2:4] == "07" and Decimal(stay_bill["document"]["total"]) == Decimal("1500.00")
    assert Decimal(stay_bill["document"]["funds"]["hifp_pay"]) == Decimal(str(stay["hifp_pay"])) > 0
    back = ok(counter.call("2305", {"data": {"setl_id": stay["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))["setlinfo"]

    # a purchase at a pharmacy (2102, med_type 41), reversed by 2103
    pharmacy = CounterClient("http://testserver", "P37010000007", secret_of("P37010000007"), http=http)
    ok(pharmacy.sign_in())
    common = {"psn_no": person.psn_no, "insutype": "310", **cert(person), "acct_used_flag": "0", "psn_setlway": "01"}
    drug = {"feedetl_sn": "1", "med_list_codg": codes["otc_capped"], "det_item_fee_sumamt": Decimal("18.00"), "cnt": 1,
            "pric": Decimal("18")}
    bought = ok(pharmacy.call("2102", {"data": {**common, "medfee_sumamt": Decimal("18.00")}, "drugdetail": [drug]}))["setlinfo"]
    returned = ok(pharmacy.call("2103", {"data": {"setl_id": bought["setl_id"], "mdtrt_id": bought["mdtrt_id"],
                                                  "psn_no": person.psn_no}}))["setlinfo"]

    service.issue_all_pending(db, settings)
    listed = {b["setl_id"]: b for b in app.get(f"/api/v1/people/{person.psn_no}/bills").json()}
    assert listed[stay["setl_id"]]["status"] == "cancelled" and listed[back["setl_id"]]["kind"] == "red"
    assert listed[bought["setl_id"]]["status"] == "cancelled" and listed[returned["setl_id"]]["kind"] == "red"
    assert listed[bought["setl_id"]]["bill_code"][2:4] == "06" and Decimal(listed[bought["setl_id"]]["total"]) == Decimal("18.00")
    assert Decimal(listed[returned["setl_id"]]["total"]) == Decimal("-18.00")
    pharmacy_bill = app.get(f"/api/v1/people/{person.psn_no}/bills/{bought['setl_id']}").json()
    assert pharmacy_bill["document"]["settlement"]["med_type"] == "41"
    assert sum(Decimal(i["amount"]) for i in pharmacy_bill["document"]["items"]) == Decimal("18.00")
    assert sum(Decimal(i["amount"]) for i in stay_bill["document"]["items"]) == Decimal("1500.00")
    assert pharmacy_bill["document"]["institution"]["code"] == "P37010000007"


def test_a_settlement_the_issuer_passed_by_is_billed_by_the_sweep(db, http, counter, settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    from yibao.bill.models import BillCursor

    with db.unit_of_work() as session:  # the issuer's cursor far ahead: it looks only a minute behind it
        cursor = session.get(BillCursor, service.CURSOR)
        saved = cursor.setl_time if cursor is not None else None
        if cursor is None:
            session.add(BillCursor(name=service.CURSOR, setl_time=datetime(2999, 1, 1)))
        else:
            cursor.setl_time = datetime(2999, 1, 1)
    try:
        codes = catalogue_codes(db)
        person = _person(db)
        setl = outpatient(counter, person, "310", [(codes["jia"], "7.00")])["setlinfo"]
        service.issue_all_pending(db, settings)
        with db.unit_of_work(write=False) as session:
            assert session.get(Bill, setl["setl_id"]) is None
        assert service.sweep(db, settings) >= 1
        with db.unit_of_work(write=False) as session:
            assert session.get(Bill, setl["setl_id"]) is not None
    finally:
        with db.unit_of_work() as session:
            cursor = session.get(BillCursor, service.CURSOR)
            assert cursor is not None
            cursor.setl_time = saved or datetime(2000, 1, 1)
