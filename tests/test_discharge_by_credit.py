"""Discharge by phone paid by credit care (信用就医, issue 13 item 6): admission by phone → 2401 → fee lines → 2402 → the
person settles the stay in the app choosing 信用就医（银行垫付）: the settlement posted, the partner bank (the stand-in
bank server) advances the own-money part in the same flow, the credit statement shows the advance. Over the available
limit the rest is charged through the payment channel; the bank refusing or down reverses the settlement (the order
failed, payable again), and a refused charge for the rest reverses the settlement and cancels the advance."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from flows import catalogue_codes, fee, fresh_person, ok
from standins.bank import StandInBank
from standins.payment_provider import PaymentProvider
from test_admission_by_phone import HOSPITAL, PASSWORD, App, admit
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.core import clock
from yibao.credit import service as credit
from yibao.credit.models import CreditAdvance, CreditAgreement, CreditBank
from yibao.encounter.models import Settlement, Visit
from yibao.registry.models import Person

KEY = secrets.token_hex(16)
BANK = "CPBANK"
USED: set[str] = set()


@pytest.fixture(scope="module")
def provider() -> Iterator[PaymentProvider]:
    stand_in = PaymentProvider(KEY)
    stand_in.url = stand_in.start()  # type: ignore[attr-defined]
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, provider: PaymentProvider) -> Settings:
    return Settings(database_url=database_url, platform_admdvs="370100", max_body_bytes=256 * 1024,
                    pay_provider_url=provider.url, pay_merchant_id=provider.merchant_id,  # type: ignore[attr-defined]
                    pay_key=KEY, pay_notify_url="http://testserver/api/v1/payment/callback", pay_timeout_s=1.0)


@pytest.fixture(scope="module")
def bank(db) -> Iterator[StandInBank]:  # type: ignore[no-untyped-def]
    stand_in = StandInBank(key=secrets.token_hex(16))
    url = stand_in.start()
    with db.unit_of_work() as session:
        if session.get(CreditBank, BANK) is None:
            credit.add_bank(session, bank_code=BANK, bank_name="垫付测试银行", url=url, key=stand_in.key)
    yield stand_in
    stand_in.stop()


def patient(db, bank: StandInBank | None, limit: str = "5000.00") -> Person:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "390", skip=USED)  # a resident: no personal account, the own-money part is cash
    USED.add(person.psn_no)
    if bank is not None:
        bank.limits[person.certno] = limit
    return person


def sign_up(app: App) -> None:
    reply = app.call("POST", f"/api/v1/people/{app.person.psn_no}/credit", {"bank_code": BANK, "auto_account": False, "password": PASSWORD})
    assert reply.status_code == 201 and reply.json()["agreement"]["status"] == "active", reply.text


def discharged_bill(app: App, counter: CounterClient, codes: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Admission asked in the app, 2401, fee lines (2301), 2402, the stay's bill in the app."""
    person = app.person
    made = app.call("POST", f"/api/v1/people/{person.psn_no}/admission-requests", {"fixmedins_code": HOSPITAL, "dept_name": "普外科"})
    assert made.status_code == 201, made.text
    mdtrt_id = admit(counter, person)
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "1200.00"),
                                           fee(mdtrt_id, person.psn_no, codes["bing"], "300.00"),
                                           fee(mdtrt_id, person.psn_no, codes["yi"], "500.00")]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    billed = app.call("POST", f"/api/v1/people/{person.psn_no}/stays/{mdtrt_id}/bill", {})
    assert billed.status_code == 201, billed.text
    return mdtrt_id, billed.json()


def pay(app: App, order: dict[str, Any], method: str) -> Any:
    return app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", {"password": PASSWORD, "method": method})


def visit_status(db, mdtrt_id: str) -> str:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        visit = session.get(Visit, mdtrt_id)
        assert visit is not None
        return visit.status


def test_the_stay_paid_by_credit_care_the_bank_advances_the_cash_part(http, counter, db, bank, provider) -> None:  # type: ignore[no-untyped-def]
    bank.behaviour, bank.advance_refusal, provider.behaviour = "normal", "", "refuse"  # the channel must not be needed
    app = App(http, patient(db, bank))
    sign_up(app)
    mdtrt_id, order = discharged_bill(app, counter, catalogue_codes(db))
    cash = Decimal(order["psn_cash_pay"])
    assert cash >= Decimal("300.00") and order["credit_offer"] == {"bank_name": "垫付测试银行", "available": "5000.00"}

    paid = pay(app, order, "credit")
    assert paid.status_code == 200, paid.text
    done = paid.json()
    assert done["ord_stas"] == "paid" and done["method"] == "credit" and done["method_name"] == "信用就医（银行垫付）"
    assert Decimal(done["credit_adv_amt"]) == cash == Decimal(done["psn_cash_pay"])
    assert done["charges"] == [] and done["channel_amt"] == "0.00"
    # the settlement stands, the stay settled
    assert visit_status(db, mdtrt_id) == "settled"
    with db.unit_of_work(write=False) as session:
        settlement = session.scalar(select(Settlement).where(Settlement.setl_id == done["setl_id"]))
        assert settlement is not None and settlement.refd_setl_flag == "0" and settlement.psn_cash_pay == int(cash * 100)
    # the bank paid the hospital that much
    made = [a for a in bank.advances.values() if a["fixmedins_code"] == HOSPITAL and a["amount"] == str(cash) and a["status"] == "paid"]
    assert made and done["credit_advance_no"] in bank.advances
    # the credit statement shows the advance and its schedule; the limit's available part fell by it
    statement = app.call("GET", f"/api/v1/people/{app.person.psn_no}/credit").json()
    advance = [a for a in statement["advances"] if a["setl_id"] == done["setl_id"]]
    assert len(advance) == 1 and Decimal(advance[0]["amount"]) == cash and advance[0]["status"] == "open" and advance[0]["schedule"]
    assert Decimal(statement["agreement"]["available"]) == Decimal("5000.00") - cash
    assert Decimal(statement["totals"]["outstanding"]) == cash
    # the app's stay says how it was paid
    stay = next(s for s in app.admission()["stays"] if s["mdtrt_id"] == mdtrt_id)
    assert stay["status_name"] == "已结算" and stay["pay_method_name"] == "信用就医（银行垫付）" and Decimal(stay["credit_adv_amt"]) == cash
    # the hospital's 6301 shows the method and the bank's part
    seen = ok(counter.call("6301", {"data": {"pay_ord_id": order["pay_ord_id"]}}))["data"]
    assert seen["method"] == "credit" and Decimal(seen["credit_adv_amt"]) == cash


def test_over_the_limit_the_rest_goes_through_the_channel_and_a_refused_rest_cancels_the_advance(  # type: ignore[no-untyped-def]
        http, counter, db, bank, provider) -> None:
    bank.behaviour, bank.advance_refusal = "normal", ""
    app = App(http, patient(db, bank, limit="100.00"))
    sign_up(app)
    mdtrt_id, order = discharged_bill(app, counter, catalogue_codes(db))
    cash = Decimal(order["psn_cash_pay"])
    assert cash > Decimal("100.00")

    # the channel refuses the rest: the settlement reversed and the bank's advance cancelled with it, the limit whole again
    provider.behaviour = "refuse"
    refused = pay(app, order, "credit").json()
    assert refused["ord_stas"] == "failed" and refused["setl_id"] == "" and refused["credit_adv_amt"] == "0.00", refused
    assert visit_status(db, mdtrt_id) == "discharged"
    with db.unit_of_work(write=False) as session:
        advances = session.scalars(select(CreditAdvance).where(CreditAdvance.psn_no == app.person.psn_no)).all()
        assert len(advances) == 1 and advances[0].status == "cancelled"
        assert bank.advances[advances[0].advance_no]["status"] == "cancelled"
        agreement = credit.standing_agreement(session, app.person.psn_no)
        assert agreement is not None and agreement.available_fen == 10_000

    # again, the channel takes the rest: the bank advanced 100.00, the person paid the rest through the channel
    provider.behaviour = "success"
    done = pay(app, order, "credit").json()
    assert done["ord_stas"] == "paid" and done["credit_adv_amt"] == "100.00", done
    assert Decimal(done["channel_amt"]) == cash - Decimal("100.00")
    taken = [c for c in done["charges"] if c["status"] == "succeeded"]
    assert len(taken) == 1 and Decimal(taken[0]["amount"]) == cash - Decimal("100.00")
    assert visit_status(db, mdtrt_id) == "settled"
    with db.unit_of_work(write=False) as session:
        agreement = credit.standing_agreement(session, app.person.psn_no)
        assert agreement is not None and agreement.available_fen == 0


def test_the_bank_refusing_or_down_reverses_the_settlement_and_the_order_is_payable_again(  # type: ignore[no-untyped-def]
        http, counter, db, bank, provider) -> None:
    provider.behaviour = "success"
    app = App(http, patient(db, bank))
    sign_up(app)
    mdtrt_id, order = discharged_bill(app, counter, catalogue_codes(db))

    bank.behaviour, bank.advance_refusal = "normal", "风控拒绝"
    try:
        refused = pay(app, order, "credit")
    finally:
        bank.advance_refusal = ""
    assert refused.status_code == 200, refused.text
    out = refused.json()
    assert out["ord_stas"] == "failed" and out["setl_id"] == "" and "合作银行未同意垫付" in out["reason"] and "风控拒绝" in out["reason"]
    assert out["credit_offer"]["available"] == "5000.00"  # still offered: the person may try again or pay by 移动支付
    assert visit_status(db, mdtrt_id) == "discharged"

    bank.behaviour = "down"
    try:
        down = pay(app, order, "credit").json()
    finally:
        bank.behaviour = "normal"
    assert down["ord_stas"] == "failed" and down["setl_id"] == "" and "暂时无法垫付" in down["reason"], down
    assert visit_status(db, mdtrt_id) == "discharged"
    with db.unit_of_work(write=False) as session:
        # nothing half-done: every settlement of the stay reversed, no advance recorded, the limit untouched
        standing = session.scalars(select(Settlement).where(Settlement.mdtrt_id == mdtrt_id, Settlement.refd_setl_flag == "0",
                                                            Settlement.revs_setl_id.is_(None))).all()
        assert [s for s in standing if s.medfee_sumamt > 0] == []
        assert session.scalars(select(CreditAdvance).where(CreditAdvance.psn_no == app.person.psn_no)).all() == []
        agreement = session.scalar(select(CreditAgreement).where(CreditAgreement.psn_no == app.person.psn_no))
        assert agreement is not None and agreement.available_fen == agreement.limit_fen

    # payable again: this time by 移动支付
    paid = pay(app, order, "mobile").json()
    assert paid["ord_stas"] == "paid" and paid["method"] == "mobile" and paid["credit_adv_amt"] == "0.00", paid
    assert visit_status(db, mdtrt_id) == "settled"


def test_credit_without_an_agreement_is_refused_in_chinese_and_nothing_is_settled(http, counter, db, bank) -> None:  # type: ignore[no-untyped-def]
    app = App(http, patient(db, None))
    mdtrt_id, order = discharged_bill(app, counter, catalogue_codes(db))
    assert order["credit_offer"] == {}
    refused = pay(app, order, "credit")
    assert refused.status_code == 409 and "信用就医" in refused.json()["detail"] and "移动支付" in refused.json()["detail"], refused.text
    assert app.call("GET", f"/api/v1/me/pay-orders/{order['pay_ord_id']}").json()["ord_stas"] == "presettled"
    assert visit_status(db, mdtrt_id) == "discharged"
    odd = pay(app, order, "cash")
    assert odd.status_code == 400 and "支付方式" in odd.json()["detail"]
