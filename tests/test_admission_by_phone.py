"""Admission and discharge by phone end to end: the person asks for an admission in the app, the hospital sees the
request (6501) and admits with 2401, the app shows the running costs of the stay (fee lines uploaded with 2301), the
hospital discharges (2402) and the person settles the stay in the app with mobile payment, never at the counter. A
payment that times out leaves the stay discharged and unsettled, to pay again."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from flows import app_token, catalogue_codes, cert, fee, fresh_person, ok, serial
from standins.payment_provider import PaymentProvider
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.core import clock
from yibao.encounter.models import Settlement, Visit
from yibao.registry.models import Person

KEY = secrets.token_hex(16)
PASSWORD = "582046"
HOSPITAL = "H37010000001"


@pytest.fixture(scope="module")
def provider() -> Iterator[PaymentProvider]:
    stand_in = PaymentProvider(KEY, slow_s=2.5)
    stand_in.url = stand_in.start()  # type: ignore[attr-defined]
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, provider: PaymentProvider) -> Settings:
    return Settings(database_url=database_url, platform_admdvs="370100", max_body_bytes=256 * 1024,
                    pay_provider_url=provider.url, pay_merchant_id=provider.merchant_id,  # type: ignore[attr-defined]
                    pay_key=KEY, pay_notify_url="http://testserver/api/v1/payment/callback", pay_timeout_s=1.0)


class App:
    def __init__(self, http: TestClient, person: Person) -> None:
        self.http, self.person, self.token = http, person, app_token(http, person, PASSWORD)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.http.request(method, path, json=body, headers={"authorization": f"Bearer {self.token}"})

    def admission(self) -> dict[str, Any]:
        reply = self.call("GET", f"/api/v1/people/{self.person.psn_no}/admission")
        assert reply.status_code == 200, reply.text
        return reply.json()


def admit(counter: CounterClient, person: Person) -> str:
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "390", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                 "diag_name": "急性阑尾炎"}]}))
    return out["result"]["mdtrt_id"]


def test_admitted_by_phone_costs_seen_discharged_and_paid_in_the_app(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    provider.behaviour = "success"
    codes = catalogue_codes(db)
    person = fresh_person(db, "390")  # a resident: no personal account, so the own-money part goes through the channel
    app = App(http, person)
    seen = app.admission()
    assert seen["requests"] == [] and seen["stays"] == [] and HOSPITAL in [h["code"] for h in seen["hospitals"]]

    # the person asks in the app
    made = app.call("POST", f"/api/v1/people/{person.psn_no}/admission-requests",
                    {"fixmedins_code": HOSPITAL, "dept_name": "普外科", "reason": "右下腹痛，门诊建议住院"})
    assert made.status_code == 201 and made.json()["status_name"] == "待医院确认", made.text
    twice = app.call("POST", f"/api/v1/people/{person.psn_no}/admission-requests", {"fixmedins_code": HOSPITAL, "dept_name": "普外科"})
    assert twice.status_code == 409
    # the hospital sees it (6501) and admits with 2401
    pending = ok(counter.call("6501", {"data": {}}))["data"]
    mine = [r for r in pending if r["psn_no"] == person.psn_no]
    assert len(mine) == 1 and mine[0]["dept_name"] == "普外科" and mine[0]["adm_req_id"] == made.json()["adm_req_id"]
    mdtrt_id = admit(counter, person)
    assert person.psn_no not in [r["psn_no"] for r in ok(counter.call("6501", {"data": {}}))["data"]]
    seen = app.admission()
    assert seen["requests"][0]["status"] == "admitted" and seen["requests"][0]["mdtrt_id"] == mdtrt_id
    assert seen["stays"][0]["status_name"] == "住院中" and seen["stays"][0]["running_total"] == "0.00"

    # running costs while in hospital
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "1200.00")]}))
    assert app.admission()["stays"][0]["running_total"] == "1200.00"
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["bing"], "300.00"),
                                           fee(mdtrt_id, person.psn_no, codes["yi"], "500.00")]}))
    stay = app.admission()["stays"][0]
    assert stay["running_total"] == "2000.00" and stay["lines"] == 3
    # not before discharge
    early = app.call("POST", f"/api/v1/people/{person.psn_no}/stays/{mdtrt_id}/bill", {})
    assert early.status_code == 409 and "出院" in early.json()["detail"]

    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    assert app.admission()["stays"][0]["status_name"] == "已出院待结算"
    billed = app.call("POST", f"/api/v1/people/{person.psn_no}/stays/{mdtrt_id}/bill", {})
    assert billed.status_code == 201, billed.text
    order = billed.json()
    assert order["kind"] == "inpatient" and order["method"] == "mobile" and order["medfee_sumamt"] == "2000.00"
    assert Decimal(order["fund_pay_sumamt"]) + Decimal(order["acct_pay"]) + Decimal(order["psn_cash_pay"]) == Decimal("2000.00")
    assert Decimal(order["psn_cash_pay"]) >= Decimal("300.00")  # at least the 丙 line
    # asking again shows the same bill
    assert app.call("POST", f"/api/v1/people/{person.psn_no}/stays/{mdtrt_id}/bill", {}).json()["pay_ord_id"] == order["pay_ord_id"]

    # the first try times out: rolled back, the stay discharged and unsettled
    provider.behaviour = "timeout"
    first = app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", {"password": PASSWORD})
    assert first.json()["ord_stas"] == "failed", first.text
    with db.unit_of_work(write=False) as session:
        assert session.get(Visit, mdtrt_id).status == "discharged"  # type: ignore[union-attr]
    provider.behaviour = "success"
    paid = app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", {"password": PASSWORD})
    assert paid.status_code == 200 and paid.json()["ord_stas"] == "paid", paid.text
    with db.unit_of_work(write=False) as session:
        assert session.get(Visit, mdtrt_id).status == "settled"  # type: ignore[union-attr]
        settlement = session.scalar(select(Settlement).where(Settlement.setl_id == paid.json()["setl_id"]))
        assert settlement is not None and settlement.clr_type == "21" and settlement.medfee_sumamt == 200_000
    assert app.admission()["stays"][0]["status_name"] == "已结算"
    # the hospital reads the result with 6301
    assert ok(counter.call("6301", {"data": {"pay_ord_id": order["pay_ord_id"]}}))["data"]["setl_id"] == paid.json()["setl_id"]


def test_only_a_discharged_stay_of_mine_or_my_family(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", retired=False)
    stranger = App(http, fresh_person(db, "310", retired=False, skip={person.psn_no}))
    asked = stranger.call("POST", f"/api/v1/people/{person.psn_no}/admission-requests", {"fixmedins_code": HOSPITAL, "dept_name": "内科"})
    assert asked.status_code in (403, 404)
    bad = App(http, person).call("POST", f"/api/v1/people/{person.psn_no}/admission-requests",
                                 {"fixmedins_code": "P37010000001", "dept_name": "内科"})
    assert bad.status_code == 400 and "医院" in bad.json()["detail"]
