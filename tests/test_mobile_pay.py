"""Mobile payment (医保移动支付) end to end: the hospital posts the bill through the gateway (6201), the person confirms in
the app's REST API, the platform settles and takes the own-money part through the payment channel (a stand-in
provider over real HTTP). Success, refusal, a timeout rolled back, the late success callback after it refunded (never
settled twice), a repeated callback, the person cancelling, a wrong password; ledger and balances back exactly."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, update

from flows import app_token, catalogue_codes, cert, fee, fresh_person, ok, serial
from standins.payment_provider import PaymentProvider
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.core import clock
from yibao.credential.realperson import demo_face
from yibao.deployment import service as deployment
from yibao.encounter.models import FeeLine, Settlement, Visit
from yibao.ledger.models import LedgerEntry
from yibao.payment import channel as paychannel
from yibao.payment.models import PayCharge, PayOrder
from yibao.registry.models import Account, Person
from yibao.store.db import Database

KEY = secrets.token_hex(16)
PASSWORD = "582046"


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


@pytest.fixture(autouse=True)
def normal(provider: PaymentProvider) -> None:
    provider.behaviour, provider.refunds = "success", "success"


class App:
    """A person's phone with the app, activated and signed in."""

    def __init__(self, http: TestClient, person: Person) -> None:
        self.http, self.person, self.token = http, person, app_token(http, person, PASSWORD)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.http.request(method, path, json=body, headers={"authorization": f"Bearer {self.token}"})

    def orders(self) -> list[dict[str, Any]]:
        reply = self.call("GET", "/api/v1/me/pay-orders")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def pay(self, pay_ord_id: str, password: str = PASSWORD) -> Any:
        return self.call("POST", f"/api/v1/me/pay-orders/{pay_ord_id}/pay", {"password": password})


def bill(counter: CounterClient, person: Person, amount: str, code: str, *, acct: str = "1") -> dict[str, Any]:
    """2201 + 2204, then 6201: the bill the app shows."""
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "390" if _resident(person) else "310",
                                             "begntime": clock.fmt_datetime(clock.now()), **cert(person), "ipt_otp_no": serial("MZ"),
                                             "dept_code": "A03", "dept_name": "内科", "med_type": "11"}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount)]}))
    return ok(counter.call("6201", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "medins_ord_no": serial("ORD"),
                                             "acct_used_flag": acct}}))["data"]


_RESIDENTS: set[str] = set()


def _resident(person: Person) -> bool:
    return person.psn_no in _RESIDENTS


def resident(db: Database) -> Person:
    """A resident adult (a minor cannot activate the app) without a personal or family account (its own money is all
    charged through the channel) no test here has used yet."""
    with db.unit_of_work(write=False) as session:
        unfit = set(session.scalars(select(Person.psn_no).where(Person.brdy > clock.today() - timedelta(days=19 * 366))))
        funded = select(Account.psn_no).where(Account.balance_fen > 0)
        unfit |= set(session.scalars(funded))
        # nor one of a household with an account (family aid, 共济, would pay some of the own money)
        households = select(Person.hshld_id).where(Person.psn_no.in_(funded), Person.hshld_id.is_not(None))
        unfit |= set(session.scalars(select(Person.psn_no).where(Person.hshld_id.in_(households))))
    person = fresh_person(db, "390", skip=unfit | _RESIDENTS)
    _RESIDENTS.add(person.psn_no)
    return person


def standing(db: Database, mdtrt_id: str) -> list[Settlement]:
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(Settlement).where(Settlement.mdtrt_id == mdtrt_id, Settlement.refd_setl_flag == "0",
                                                             Settlement.revs_setl_id.is_(None))))


def ledger_net(db: Database, psn_no: str) -> dict[str, int]:
    with db.unit_of_work(write=False) as session:
        rows = session.execute(select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen)).where(LedgerEntry.psn_no == psn_no)
                               .group_by(LedgerEntry.account)).all()
    return {account: int(total) for account, total in rows if total}


def visit_of(db: Database, mdtrt_id: str) -> tuple[str, list[str]]:
    with db.unit_of_work(write=False) as session:
        visit = session.get(Visit, mdtrt_id)
        assert visit is not None
        lines = list(session.scalars(select(FeeLine.status).where(FeeLine.mdtrt_id == mdtrt_id)))
        return visit.status, lines


def charges(db: Database, pay_ord_id: str) -> list[PayCharge]:
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(PayCharge).where(PayCharge.pay_ord_id == pay_ord_id).order_by(PayCharge.created_at)))


def callback(http: TestClient, provider: PaymentProvider, trade_no: str, key: str | None = None) -> Any:
    headers, body = provider.callback(trade_no, key=key)
    return http.post("/api/v1/payment/callback", content=body, headers=headers)


def test_the_bill_is_presettled_and_paid_in_the_app(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "80.00", catalogue_codes(db)["yi"])
    assert order["ord_stas"] == "presettled"
    total = Decimal(order["fund_pay_sumamt"]) + Decimal(order["acct_pay"]) + Decimal(order["psn_cash_pay"])
    assert total == Decimal("80.00") and Decimal(order["psn_cash_pay"]) > 0
    assert not standing(db, order["mdtrt_id"])  # pre-settled: nothing settled yet
    listed = app.orders()
    assert [o["pay_ord_id"] for o in listed] == [order["pay_ord_id"]] and listed[0]["ord_stas_name"] == "待支付"

    paid = app.pay(order["pay_ord_id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["ord_stas"] == "paid" and paid.json()["setl_id"]
    [settlement] = standing(db, order["mdtrt_id"])
    assert settlement.setl_id == paid.json()["setl_id"] and settlement.mdtrt_cert_type == "01"
    # the channel took exactly the own-money part, once
    [charge] = charges(db, order["pay_ord_id"])
    assert charge.status == "succeeded" and charge.amount_fen == settlement.psn_cash_pay
    assert provider.taken[charge.charge_id]["amount"] == paid.json()["psn_cash_pay"]
    assert visit_of(db, order["mdtrt_id"]) == ("settled", ["settled"])
    # the hospital reads the result (6301), the app no longer lists it as waiting
    assert ok(counter.call("6301", {"data": {"pay_ord_id": order["pay_ord_id"]}}))["data"]["ord_stas"] == "paid"
    assert app.orders() == []
    # paying again takes nothing twice
    again = app.pay(order["pay_ord_id"])
    assert again.status_code == 409 and "重复" in again.json()["detail"]
    assert len(charges(db, order["pay_ord_id"])) == 1
    # the provider's callback for the same payment, twice: recorded once, nothing refunded
    for _ in range(2):
        reply = callback(http, provider, charge.charge_id)
        assert reply.status_code == 200 and reply.json()["status"] == "succeeded", reply.text
    assert charge.charge_id not in provider.refunded and len(standing(db, order["mdtrt_id"])) == 1


def test_a_refusal_rolls_back_and_the_person_may_try_again(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", min_balance=5_000)
    with db.unit_of_work(write=False) as session:
        account = session.get(Account, person.psn_no)
        assert account is not None
        balance = account.balance_fen
    app = App(http, person)
    before = ledger_net(db, person.psn_no)
    amount = f"{Decimal(balance) / 100 + 60:.2f}"  # more than the account holds: some is own money
    order = bill(counter, person, amount, catalogue_codes(db)["bing"])
    assert Decimal(order["acct_pay"]) > 0 and Decimal(order["psn_cash_pay"]) > 0

    provider.behaviour = "refuse"
    refused = app.pay(order["pay_ord_id"])
    assert refused.status_code == 200 and refused.json()["ord_stas"] == "failed" and "拒绝" in refused.json()["reason"]
    # rolled back cleanly: no standing settlement, the ledger and the account where they were, the visit open again
    assert standing(db, order["mdtrt_id"]) == []
    assert ledger_net(db, person.psn_no) == before
    with db.unit_of_work(write=False) as session:
        assert session.get(Account, person.psn_no).balance_fen == balance  # type: ignore[union-attr]
    assert visit_of(db, order["mdtrt_id"]) == ("registered", ["open"])
    assert app.orders()[0]["ord_stas"] == "failed"

    provider.behaviour = "success"
    paid = app.pay(order["pay_ord_id"])
    assert paid.json()["ord_stas"] == "paid", paid.text
    assert [c.status for c in charges(db, order["pay_ord_id"])] == ["refused", "succeeded"]
    assert len(standing(db, order["mdtrt_id"])) == 1
    with db.unit_of_work(write=False) as session:
        assert session.get(Account, person.psn_no).balance_fen == balance - int(Decimal(paid.json()["acct_pay"]) * 100)  # type: ignore[union-attr]


def test_a_timeout_rolls_back_and_the_late_success_is_refunded_never_settled_twice(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    before = ledger_net(db, person.psn_no)
    order = bill(counter, person, "120.00", catalogue_codes(db)["yi"])

    provider.behaviour = "timeout"  # the provider takes the money but answers after the platform stopped waiting
    timed_out = app.pay(order["pay_ord_id"])
    assert timed_out.status_code == 200 and timed_out.json()["ord_stas"] == "failed", timed_out.text
    assert "超时" in timed_out.json()["reason"]
    assert standing(db, order["mdtrt_id"]) == [] and ledger_net(db, person.psn_no) == before
    assert visit_of(db, order["mdtrt_id"]) == ("registered", ["open"])
    [charge] = charges(db, order["pay_ord_id"])
    assert charge.status == "timed_out" and charge.charge_id in provider.taken  # the money did move at the provider

    # the provider's late success callback: refunded through the channel, recorded, never a second settlement
    late = callback(http, provider, charge.charge_id)
    assert late.status_code == 200 and late.json()["status"] == "refunded", late.text
    assert provider.refunded.get(charge.charge_id)
    [charge] = charges(db, order["pay_ord_id"])
    assert charge.status == "refunded" and charge.refunded_at is not None and charge.provider_txn_id
    assert standing(db, order["mdtrt_id"]) == [] and ledger_net(db, person.psn_no) == before
    # repeated: the same, no second refund
    refunds = [r for r in provider.requests if r["path"].endswith("/refund")]
    assert callback(http, provider, charge.charge_id).json()["status"] == "refunded"
    assert [r for r in provider.requests if r["path"].endswith("/refund")] == refunds

    # the person tries again and pays; out of pocket exactly once
    provider.behaviour = "success"
    paid = app.pay(order["pay_ord_id"])
    assert paid.json()["ord_stas"] == "paid"
    assert len(standing(db, order["mdtrt_id"])) == 1
    out_of_pocket = sum((Decimal(provider.taken[c.charge_id]["amount"]) for c in charges(db, order["pay_ord_id"])
                         if c.charge_id not in provider.refunded), Decimal(0))
    assert out_of_pocket == Decimal(paid.json()["psn_cash_pay"])


def test_callbacks_must_be_signed_and_name_a_charge(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "30.00", catalogue_codes(db)["yi"])
    paid = app.pay(order["pay_ord_id"]).json()
    [charge] = charges(db, order["pay_ord_id"])
    forged = callback(http, provider, charge.charge_id, key=secrets.token_hex(16))
    assert forged.status_code == 401
    headers, body = provider.callback(charge.charge_id)
    assert http.post("/api/v1/payment/callback", content=body.replace(b'"SUCCESS"', b'"SUCCESS" '), headers=headers).status_code == 401
    assert paid["ord_stas"] == "paid"


def test_a_replayed_or_stale_callback_is_refused_and_asks_no_second_refund(http, counter, db, provider, settings) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "33.00", catalogue_codes(db)["yi"], acct="0")
    assert Decimal(order["psn_cash_pay"]) > 0
    provider.behaviour = "timeout"  # the provider takes the money after the platform gave up: its callback asks a refund
    assert app.pay(order["pay_ord_id"]).json()["ord_stas"] == "failed"
    [charge] = charges(db, order["pay_ord_id"])
    provider.refunds = "fail"
    headers, body = provider.callback(charge.charge_id)
    first = http.post("/api/v1/payment/callback", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "refund_failed", first.text

    def refund_requests() -> list[dict[str, Any]]:
        return [r for r in provider.requests if r["path"].endswith("/refund") and r["trade_no"] == charge.charge_id]

    asked = refund_requests()
    assert len(asked) == 1
    # the same signed callback again (a replay): refused, no second refund request
    replayed = http.post("/api/v1/payment/callback", content=body, headers=headers)
    assert replayed.status_code == 401, replayed.text
    # signed now with a fresh nonce but stamped outside the signature window: refused too
    old = int(time.time() * 1000) - (settings.signature_window_s + 60) * 1000
    stale_headers, stale_body = provider.callback(charge.charge_id, timestamp_ms=old)
    assert http.post("/api/v1/payment/callback", content=stale_body, headers=stale_headers).status_code == 401
    ahead = int(time.time() * 1000) + (settings.signature_window_s + 60) * 1000
    ahead_headers, ahead_body = provider.callback(charge.charge_id, timestamp_ms=ahead)
    assert http.post("/api/v1/payment/callback", content=ahead_body, headers=ahead_headers).status_code == 401
    assert refund_requests() == asked
    [charge] = charges(db, order["pay_ord_id"])
    assert charge.status == "refund_failed"
    # the provider's own repeated notification (new timestamp and nonce) retries the refund, which now goes through
    provider.refunds = "success"
    again = callback(http, provider, charge.charge_id)
    assert again.status_code == 200 and again.json()["status"] == "refunded", again.text
    assert len(refund_requests()) == 2 and provider.refunded.get(charge.charge_id)


def test_the_person_cancels_and_the_hospital_withdraws(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    codes = catalogue_codes(db)
    order = bill(counter, person, "40.00", codes["yi"])
    # a second bill for the same visit while one waits: refused
    again = counter.call("6201", {"data": {"mdtrt_id": order["mdtrt_id"], "psn_no": person.psn_no}})
    assert again["infcode"] == -1 and "6401" in again["err_msg"]
    cancelled = app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["ord_stas"] == "cancelled"
    assert app.pay(order["pay_ord_id"]).status_code == 409
    assert standing(db, order["mdtrt_id"]) == [] and provider.taken.keys().isdisjoint(c.charge_id for c in charges(db, order["pay_ord_id"]))
    # a new bill for the visit, withdrawn by the hospital (6401)
    second = ok(counter.call("6201", {"data": {"mdtrt_id": order["mdtrt_id"], "psn_no": person.psn_no}}))["data"]
    withdrawn = ok(counter.call("6401", {"data": {"pay_ord_id": second["pay_ord_id"], "reason": "费用有误"}}))["data"]
    assert withdrawn["ord_stas"] == "cancelled"
    # another person's order is not mine to see or pay
    stranger = App(http, resident(db))
    third = ok(counter.call("6201", {"data": {"mdtrt_id": order["mdtrt_id"], "psn_no": person.psn_no}}))["data"]
    assert stranger.pay(third["pay_ord_id"]).status_code in (403, 404)
    assert stranger.call("GET", f"/api/v1/me/pay-orders/{third['pay_ord_id']}").status_code in (403, 404)


def test_a_wrong_password_settles_nothing_and_counts(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "25.00", catalogue_codes(db)["yi"])
    wrong = app.pay(order["pay_ord_id"], password="135792")
    assert wrong.status_code in (401, 403) and "还可尝试4次" in wrong.json()["detail"], wrong.text
    assert standing(db, order["mdtrt_id"]) == [] and charges(db, order["pay_ord_id"]) == []
    assert app.orders()[0]["ord_stas"] == "presettled"


def test_without_a_configured_provider_production_refuses(http, counter, db, settings) -> None:  # type: ignore[no-untyped-def]
    from yibao.app import create_app

    bare = dataclasses.replace(settings, pay_provider_url="")
    person = resident(db)
    app = App(http, person)  # activated while the database is a demo's (a production one needs a face provider)
    # the account does not pay (whatever balance the person has in this test order): there is own money to charge
    order = bill(counter, person, "18.00", catalogue_codes(db)["yi"], acct="0")
    with db.unit_of_work() as session:
        deployment.set_mode(session, deployment.PRODUCTION)
    try:
        with TestClient(app=create_app(bare, db)) as plain:
            reply = plain.post(f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", json={"password": PASSWORD},
                               headers={"authorization": f"Bearer {app.token}"})
            assert reply.status_code == 503 and "尚未开通" in reply.json()["detail"], reply.text
            assert plain.post("/api/v1/payment/callback", content=b"{}").status_code == 503
    finally:
        with db.unit_of_work() as session:
            deployment.set_mode(session, deployment.DEMO)
    assert standing(db, order["mdtrt_id"]) == [] and charges(db, order["pay_ord_id"]) == []
    with db.unit_of_work() as session:
        deployment.set_mode(session, deployment.PRODUCTION)
        with pytest.raises(paychannel.NotConfigured) as refused:
            paychannel.channel(session, bare)
        assert "尚未开通" in refused.value.message
        deployment.set_mode(session, deployment.DEMO)
        assert isinstance(paychannel.channel(session, bare), paychannel.DemoChannel)
        session.rollback()


def test_orders_are_kept(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    paid = bill(counter, person, "21.00", catalogue_codes(db)["yi"])
    assert app.pay(paid["pay_ord_id"]).json()["ord_stas"] == "paid"
    open_ = bill(counter, person, "22.00", catalogue_codes(db)["yi"])
    cancelled = bill(counter, person, "23.00", catalogue_codes(db)["yi"])
    assert app.call("POST", f"/api/v1/me/pay-orders/{cancelled['pay_ord_id']}/cancel", {}).status_code == 200
    # every order stays, whatever became of it: the paid and the cancelled ones too
    with db.unit_of_work(write=False) as session:
        kept = dict(session.execute(select(PayOrder.pay_ord_id, PayOrder.status).where(PayOrder.psn_no == person.psn_no)).tuples().all())
    assert kept == {paid["pay_ord_id"]: "paid", open_["pay_ord_id"]: "presettled", cancelled["pay_ord_id"]: "cancelled"}


def test_the_hospital_refunds_a_paid_order(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    before = ledger_net(db, person.psn_no)
    order = bill(counter, person, "66.00", catalogue_codes(db)["yi"])
    assert Decimal(order["psn_cash_pay"]) > 0, (order["acct_pay"], order["fund_pay_sumamt"], order["medfee_sumamt"])
    paid = app.pay(order["pay_ord_id"]).json()
    assert paid["ord_stas"] == "paid"
    refunded = ok(counter.call("6203", {"data": {"pay_ord_id": order["pay_ord_id"], "reason": "患者退费"}}))["data"]
    assert refunded["ord_stas"] == "refunded" and refunded["setl_id"] == ""
    [charge] = charges(db, order["pay_ord_id"])
    assert charge.status == "refunded" and provider.refunded[charge.charge_id] == f"RF{charge.charge_id[2:]}"
    assert standing(db, order["mdtrt_id"]) == [] and ledger_net(db, person.psn_no) == before
    twice = counter.call("6203", {"data": {"pay_ord_id": order["pay_ord_id"]}})
    assert twice["infcode"] == -1 and "only a paid order" in twice["err_msg"]
    assert len([r for r in provider.requests if r["path"].endswith("/refund") and r["trade_no"] == charge.charge_id]) == 1


def test_confirmed_by_face(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "20.00", catalogue_codes(db)["yi"])
    other = fresh_person(db, "390", skip={person.psn_no})
    wrong_face = app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", {"face": demo_face(other.certno), "liveness": 0.97})
    assert wrong_face.status_code in (401, 403) and "刷脸" in wrong_face.json()["detail"]
    assert standing(db, order["mdtrt_id"]) == []
    paid = app.call("POST", f"/api/v1/me/pay-orders/{order['pay_ord_id']}/pay", {"face": demo_face(person.certno), "liveness": 0.97})
    assert paid.status_code == 200 and paid.json()["ord_stas"] == "paid", paid.text


def test_a_charge_left_pending_by_a_dead_worker_is_rolled_back(http, counter, db, provider, settings) -> None:  # type: ignore[no-untyped-def]
    from yibao.payment import service as payment

    person = resident(db)
    app = App(http, person)
    before = ledger_net(db, person.psn_no)
    order = bill(counter, person, "33.00", catalogue_codes(db)["yi"], acct="0")  # no account (or family's) pays: a charge
    assert Decimal(order["psn_cash_pay"]) > 0
    # what the first of the three steps leaves when the worker dies right after it: settled, a charge pending
    with db.unit_of_work() as session:
        started = payment.start(session, payment.order_of(session, order["pay_ord_id"], lock=True), person.psn_no)
        session.flush()
        session.get(PayCharge, started.charge_id).created_at -= timedelta(minutes=10)  # type: ignore[union-attr]
    assert len(standing(db, order["mdtrt_id"])) == 1
    # a look without a valid sign-in is refused before it does anything: the charge is left as it was
    for headers in ({}, {"authorization": "Bearer " + secrets.token_urlsafe(24)}):
        assert http.get("/api/v1/me/pay-orders", headers=headers).status_code == 401
    assert [c.status for c in charges(db, order["pay_ord_id"])] == ["pending"] and len(standing(db, order["mdtrt_id"])) == 1
    listed = app.orders()  # the next look at the orders finds it and rolls it back
    assert [o["ord_stas"] for o in listed if o["pay_ord_id"] == order["pay_ord_id"]] == ["failed"]
    assert standing(db, order["mdtrt_id"]) == [] and ledger_net(db, person.psn_no) == before


def household(db: Database) -> tuple[Person, Person]:
    """A holder and a resident (390) of the same household, neither with a visit yet: bound at once."""
    from yibao.registry.models import Enrolment

    with db.unit_of_work(write=False) as session:
        seen = set(session.scalars(select(Visit.psn_no))) | _RESIDENTS
        insured = select(Enrolment.psn_no).where(Enrolment.psn_insu_stas == "1")
        residents = select(Enrolment.psn_no).where(Enrolment.psn_insu_stas == "1", Enrolment.insutype == "390",
                                                   Enrolment.insuplc_admdvs == "370100")
        adult = Person.brdy < clock.today().replace(year=clock.today().year - 20)
        for member in session.scalars(select(Person).where(Person.psn_no.in_(residents), Person.hshld_id.is_not(None))
                                      .order_by(Person.psn_no.desc())):
            if member.psn_no in seen:
                continue
            holder = session.scalar(select(Person).where(Person.hshld_id == member.hshld_id, Person.psn_no != member.psn_no, adult,
                                                         Person.psn_no.in_(insured), Person.psn_no.not_in(seen)).limit(1))
            if holder is not None:
                _RESIDENTS.update((holder.psn_no, member.psn_no))
                return holder, member
    raise LookupError("no household")


def test_a_family_member_pays_and_two_taps_pay_once(http, counter, db, provider, settings) -> None:  # type: ignore[no-untyped-def]
    import threading

    from yibao.core.errors import YibaoError
    from yibao.people import service as people

    holder, member = household(db)
    app = App(http, holder)
    bound = app.call("POST", "/api/v1/me/family", {"certno": member.certno, "name": member.psn_name, "relation": "03"})
    assert bound.status_code == 201 and bound.json()["status"] == "active", bound.text
    order = bill(counter, member, "48.00", catalogue_codes(db)["yi"], acct="0")  # the holder's account would pay it (共济)
    assert Decimal(order["psn_cash_pay"]) > 0 and order["acct_pay"] == "0.00"
    assert [o["pay_ord_id"] for o in app.orders()] == [order["pay_ord_id"]]  # the member's bill, in the holder's app
    # two taps at once: one payment
    outcomes: list[str] = []

    def tap() -> None:
        try:
            done = people.pay(db, settings, people.Caller(app.token, "127.0.0.1"), order["pay_ord_id"], password=PASSWORD, face="",
                              liveness=1.0)
            outcomes.append(done["ord_stas"])
        except YibaoError as error:
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["Conflict", "paid"], outcomes
    assert len(standing(db, order["mdtrt_id"])) == 1 and len(charges(db, order["pay_ord_id"])) == 1
    with db.unit_of_work(write=False) as session:
        paid = session.get(PayOrder, order["pay_ord_id"])
        assert paid is not None and paid.confirmed_by == holder.psn_no and paid.psn_no == member.psn_no


def test_more_own_money_than_confirmed_is_refused_and_shown_again(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = resident(db)
    app = App(http, person)
    order = bill(counter, person, "52.00", catalogue_codes(db)["yi"])
    # what the bill showed was less than a settlement now asks (as when another settlement moved the year's totals)
    with db.unit_of_work() as session:
        stale = session.get(PayOrder, order["pay_ord_id"])
        assert stale is not None
        stale.psn_cash_pay -= 500
        stale.fund_pay_sumamt += 500
    changed = app.pay(order["pay_ord_id"])
    assert changed.status_code == 409 and "金额有变化" in changed.json()["detail"], changed.text
    assert standing(db, order["mdtrt_id"]) == [] and charges(db, order["pay_ord_id"]) == []
    shown = app.call("GET", f"/api/v1/me/pay-orders/{order['pay_ord_id']}").json()
    assert shown["psn_cash_pay"] == order["psn_cash_pay"] and shown["ord_stas"] == "presettled"
    assert app.pay(order["pay_ord_id"]).json()["ord_stas"] == "paid"


def test_more_from_the_account_than_confirmed_is_refused_and_shown_again(http, counter, db, provider) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", min_balance=5_000)
    with db.unit_of_work(write=False) as session:
        account = session.get(Account, person.psn_no)
        assert account is not None
        balance = account.balance_fen
    app = App(http, person)
    amount = f"{Decimal(balance) / 100 + 60:.2f}"  # more than the account holds: some is own money in cash
    order = bill(counter, person, amount, catalogue_codes(db)["bing"])
    assert Decimal(order["acct_pay"]) > 0 and Decimal(order["psn_cash_pay"]) >= Decimal("30.00"), order
    # between the bill and the payment the account grows (a contribution credited): a settlement now would take 30.00
    # more of the person's own money from the account (and as much less in cash) than they were shown and confirmed
    with db.unit_of_work() as session:
        session.execute(update(Account).where(Account.psn_no == person.psn_no)
                        .values(balance_fen=Account.balance_fen + 3_000, opening_fen=Account.opening_fen + 3_000))
    changed = app.pay(order["pay_ord_id"])
    assert changed.status_code == 409 and "金额有变化" in changed.json()["detail"], changed.text
    assert standing(db, order["mdtrt_id"]) == [] and charges(db, order["pay_ord_id"]) == []
    with db.unit_of_work(write=False) as session:
        assert session.get(Account, person.psn_no).balance_fen == balance + 3_000  # type: ignore[union-attr]
    # shown again with what the account would now pay; confirmed anew, it is paid so
    shown = app.call("GET", f"/api/v1/me/pay-orders/{order['pay_ord_id']}").json()
    assert shown["ord_stas"] == "presettled"
    assert Decimal(shown["acct_pay"]) == Decimal(order["acct_pay"]) + 30
    assert Decimal(shown["psn_cash_pay"]) == Decimal(order["psn_cash_pay"]) - 30
    paid = app.pay(order["pay_ord_id"]).json()
    assert paid["ord_stas"] == "paid" and paid["acct_pay"] == shown["acct_pay"], paid
