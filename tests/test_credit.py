"""Credit care (信用就医, issue 13 item 4): signing up with a partner bank (a stand-in bank server granting or refusing a
limit), admission without a deposit (2801), the bank's advance of the discharge settlement's cash part (2802), the
limit, the schedule, automatic repayment from the personal account where the policy allows it and not where it does
not, a missed repayment (overdue → suspended → repaid → active), statements, and a reversal cancelling an advance."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from flows import cert, fee, fresh_person, ok, serial, signed_in
from standins.bank import StandInBank
from yibao.client import CounterClient
from yibao.core import clock
from yibao.credit import service as credit
from yibao.credit.models import CreditAdvance, CreditAgreement, CreditInstalment, CreditRepayment
from yibao.ledger.models import LedgerEntry
from yibao.reconciliation.books import check as ledger_check
from yibao.registry.models import Account

BANK = "TESTBANK"
PWD = "135790"  # the consumption password the people activate with (signed_in)
USED: set[str] = set()
# each person's credential by psn_no (2801/2802 ask for it, as 2207 does)
CERTS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def bank(db) -> Iterator[StandInBank]:  # type: ignore[no-untyped-def]
    stand_in = StandInBank(key=secrets.token_hex(16))
    url = stand_in.start()
    with db.unit_of_work() as session:
        credit.add_bank(session, bank_code=BANK, bank_name="测试银行", url=url, key=stand_in.key)
        credit.add_bank(session, bank_code="BANK2", bank_name="第二测试银行", url=url, key=stand_in.key)
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def jia(db) -> str:  # type: ignore[no-untyped-def]
    from flows import catalogue_codes

    return catalogue_codes(db)["jia"]


def someone(db, region: str = "370100", min_balance: int = 0):  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", region=region, retired=False, skip=USED, min_balance=min_balance)
    USED.add(person.psn_no)
    CERTS[person.psn_no] = cert(person)
    return person




def sign_up(http, person, bank_code: str = BANK, *, auto_account: bool = True) -> dict:  # type: ignore[no-untyped-def]
    auth = signed_in(http, person)
    reply = http.post(f"/api/v1/people/{person.psn_no}/credit", headers=auth, json={"bank_code": bank_code, "auto_account": auto_account,
                                                                                       "password": PWD})
    assert reply.status_code == 201, reply.text
    return {"auth": auth, **reply.json()}


def eligibility(counter: CounterClient, person, deposit: str = "") -> dict:  # type: ignore[no-untyped-def]
    return ok(counter.call("2801", {"data": {"psn_no": person.psn_no, **cert(person), "dpst_amt": deposit}}))["crdtinfo"]


def discharged_settlement(counter: CounterClient, person, code: str, amount: str = "3000.00") -> dict:  # type: ignore[no-untyped-def]
    """Admission, fee lines, discharge and the discharge settlement (2304) without the personal account: its setlinfo."""
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                 "diag_name": "急性阑尾炎"}]}))
    mdtrt_id = out["result"]["mdtrt_id"]
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount)]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    data = {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal(amount), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0"}
    return ok(counter.call("2304", {"data": data}))["setlinfo"]


def advance(counter: CounterClient, setl: dict, credential: dict[str, str] | None = None) -> dict:  # type: ignore[no-untyped-def]
    return counter.call("2802", {"data": {"setl_id": setl["setl_id"], "psn_no": setl["psn_no"], "mdtrt_id": setl["mdtrt_id"],
                                          **(credential or CERTS[setl["psn_no"]])}})


def agreement_of(db, person) -> CreditAgreement:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        found = session.scalars(select(CreditAgreement).where(CreditAgreement.psn_no == person.psn_no)
                                .order_by(CreditAgreement.applied_at.desc())).first()
        assert found is not None
        session.expunge(found)
        return found


def balance(db, person) -> int:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        account = session.get(Account, person.psn_no)
        return account.balance_fen if account else 0


def due_dates(db, advance_no: str) -> list[date]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(CreditInstalment.due_date).where(CreditInstalment.advance_no == advance_no)
                                    .order_by(CreditInstalment.seq)))


def books_agree(db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        report = ledger_check(session)
    assert report.ok, report.problems


# -- signing up --------------------------------------------------------------------------------------------------------------

def test_sign_up_granted_refused_and_a_bank_that_does_not_answer(http, db, bank) -> None:  # type: ignore[no-untyped-def]
    granted = someone(db)
    done = sign_up(http, granted)
    assert done["agreement"]["status"] == "active" and done["agreement"]["state"] == "正常"
    assert done["agreement"]["limit"] == "5000.00" == done["agreement"]["available"] and done["agreement"]["bank_name"] == "测试银行"
    assert {"bank_code": BANK, "bank_name": "测试银行"} in done["banks"]
    assert done["terms"] == {"grace_days": 30, "instalments": 3, "period_days": 30, "account_may_repay": True,
                             "account_repay_cap": "3000.00"}
    # the bank saw the ID number and name, nothing else of the person
    assert bank.agreements[agreement_of(db, granted).bank_ref]["certno"] == granted.certno
    # a second agreement while one stands: refused, in Chinese
    again = http.post(f"/api/v1/people/{granted.psn_no}/credit", headers=done["auth"], json={"bank_code": "BANK2", "password": PWD})
    assert again.status_code == 409 and "请先关闭" in again.json()["detail"]

    refused = someone(db)
    bank.limits[refused.certno] = ""
    out = sign_up(http, refused)
    assert out["agreement"]["status"] == "refused" and out["agreement"]["state"] == "未通过" and out["agreement"]["limit"] == "0.00"

    # the bank down: the application waits (审核中) and the person submits again later
    later = someone(db)
    auth = signed_in(http, later)
    bank.behaviour = "down"
    try:
        down = http.post(f"/api/v1/people/{later.psn_no}/credit", headers=auth, json={"bank_code": BANK, "password": PWD})
    finally:
        bank.behaviour = "normal"
    assert down.status_code == 503 and "银行" in down.json()["detail"]
    assert agreement_of(db, later).status == "applied"
    retry = http.post(f"/api/v1/people/{later.psn_no}/credit", headers=auth, json={"bank_code": BANK, "password": PWD})
    assert retry.status_code == 201 and retry.json()["agreement"]["status"] == "active"
    # an unsigned answer is no grant
    bank.behaviour = "unsigned"
    try:
        forged = http.post(f"/api/v1/people/{refused.psn_no}/credit", headers=signed_in(http, refused),
                           json={"bank_code": BANK, "password": PWD})
    finally:
        bank.behaviour = "normal"
    assert forged.status_code == 503
    # unknown bank, another person's agreement
    unknown = http.post(f"/api/v1/people/{later.psn_no}/credit", headers=auth, json={"bank_code": "NOBANK", "password": PWD})
    assert unknown.status_code == 404
    others = http.post(f"/api/v1/people/{granted.psn_no}/credit", headers=auth, json={"bank_code": BANK, "password": PWD})
    assert others.status_code in (401, 403)


def test_the_demo_bank_answers_in_a_demo_database(http, db, bank) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    done = sign_up(http, person, "DEMOBANK")
    assert done["agreement"]["bank_name"] == "演示合作银行" and done["agreement"]["status"] == "active"
    assert done["agreement"]["limit"] == "5000.00"


# -- admission and discharge -------------------------------------------------------------------------------------------------

def test_admission_without_deposit_and_the_bank_advances_the_cash_part(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    before = eligibility(counter, person)
    assert before["dpst_free_flag"] == "0" and before["agre_stas_name"] == "未开通" and before["avl_lmt_amt"] == 0
    sign_up(http, person)
    now = eligibility(counter, person, "2000")
    assert now["dpst_free_flag"] == "1" and now["bank_name"] == "测试银行" and Decimal(str(now["avl_lmt_amt"])) == Decimal("5000")
    assert eligibility(counter, person, "6000.00")["dpst_free_flag"] == "0"  # the limit does not cover that deposit

    setl = discharged_settlement(counter, person, jia)
    cash = Decimal(str(setl["psn_cash_pay"]))
    assert cash > 0
    paid_before = bank.paid_to(counter.fixmedins_code)
    msgid = counter.new_msgid()
    body = {"data": {"setl_id": setl["setl_id"], "psn_no": setl["psn_no"], "mdtrt_id": setl["mdtrt_id"], **cert(person)}}
    answer = counter.call("2802", body, msgid=msgid)
    assert answer["infcode"] == 0, answer
    # a retry of that very message (same msgid): the first answer, not a second advance
    assert counter.call("2802", body, msgid=msgid)["output"] == answer["output"]
    pay = answer["output"]["crdtpay"]
    assert Decimal(str(pay["crdt_pay_amt"])) == cash and Decimal(str(pay["psn_cash_pay"])) == 0
    assert Decimal(str(pay["avl_lmt_amt"])) == Decimal("5000") - cash
    plan = answer["output"]["repyplan"]
    assert sum(Decimal(str(p["amt"])) for p in plan) == cash and len(plan) == min(3, int(cash // 300))
    first = clock.today() + timedelta(days=30)
    assert [p["due_date"] for p in plan] == [(first + timedelta(days=30 * i)).isoformat() for i in range(len(plan))]
    # the bank paid the hospital
    assert bank.paid_to(counter.fixmedins_code) - paid_before == cash
    # the same settlement again (a new message): refused, never a second advance
    again = advance(counter, setl)
    assert again["infcode"] == -1 and "已由信用就医垫付" in again["err_msg"] and "setl_id" in again["err_msg"], again
    assert bank.paid_to(counter.fixmedins_code) - paid_before == cash
    assert Decimal(str(eligibility(counter, person)["avl_lmt_amt"])) == Decimal("5000") - cash
    # another institution's settlement, or nothing in cash: refused
    assert advance(counter, {**setl, "setl_id": "X" * 20})["infcode"] == -1


def test_over_the_limit_the_rest_stays_cash_and_a_used_up_limit_is_refused(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    bank.limits[person.certno] = "100.00"
    sign_up(http, person)
    setl = discharged_settlement(counter, person, jia)
    cash = Decimal(str(setl["psn_cash_pay"]))
    assert cash > 100
    pay = ok(advance(counter, setl))["crdtpay"]
    assert Decimal(str(pay["crdt_pay_amt"])) == Decimal("100.00") and Decimal(str(pay["psn_cash_pay"])) == cash - 100
    assert Decimal(str(pay["avl_lmt_amt"])) == 0
    assert eligibility(counter, person)["dpst_free_flag"] == "0"
    second = discharged_settlement(counter, person, jia, "800.00")
    refused = advance(counter, second)
    assert refused["infcode"] == -1 and "额度已用完" in refused["err_msg"]


# -- repayment ---------------------------------------------------------------------------------------------------------------

def test_the_personal_account_repays_where_the_policy_allows_and_the_books_agree(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, min_balance=200_000)
    sign_up(http, person)
    # a bill whose cash part is repaid in several instalments, whoever the person is
    setl = discharged_settlement(counter, person, jia, "30000.00")
    pay = ok(advance(counter, setl))["crdtpay"]
    dates = due_dates(db, pay["crdt_advn_no"])
    assert len(dates) > 1, pay
    opening = balance(db, person)
    collected_before = len(bank.collections)
    report = credit.run_due(db, dates[0] - timedelta(days=1), psn_no=person.psn_no)
    assert report.instalments == 0  # nothing due yet
    report = credit.run_due(db, dates[0], psn_no=person.psn_no)
    with db.unit_of_work(write=False) as session:
        first = session.get(CreditInstalment, (pay["crdt_advn_no"], 1))
        repayments = list(session.scalars(select(CreditRepayment).where(CreditRepayment.advance_no == pay["crdt_advn_no"])))
        posted = select(LedgerEntry).where(LedgerEntry.setl_id == repayments[0].repayment_no)
        entries = {e.account: e.amount_fen for e in session.scalars(posted)}
    assert first.status == "paid" and report.from_account_fen == first.amount_fen and report.from_bank_fen == 0
    assert [(r.source, r.amount_fen) for r in repayments] == [("acct", first.amount_fen)]
    assert balance(db, person) == opening - first.amount_fen
    assert entries == {f"acct:{person.psn_no}": first.amount_fen, f"bank:{BANK}": -first.amount_fen}
    assert len(bank.collections) == collected_before  # the card was not touched
    books_agree(db)
    # the rest, when due: the whole advance repaid, the limit whole again
    # closing while something is owed: refused
    auth = signed_in(http, person)
    owed = http.post(f"/api/v1/people/{person.psn_no}/credit/close", headers=auth, json={"password": PWD})
    assert owed.status_code == 409 and "未还" in owed.json()["detail"]
    # the rest, when due: the whole advance repaid, the limit whole again
    credit.run_due(db, dates[-1], psn_no=person.psn_no)
    with db.unit_of_work(write=False) as session:
        assert session.get(CreditAdvance, pay["crdt_advn_no"]).status == "repaid"
    agreement = agreement_of(db, person)
    assert agreement.available_fen == 500_000
    books_agree(db)
    # nothing owed: the person may close it (the bank is told), and sign again later
    closed = http.post(f"/api/v1/people/{person.psn_no}/credit/close", headers=auth, json={"password": PWD})
    assert closed.status_code == 200 and closed.json()["agreement"]["status"] == "closed"
    assert bank.agreements[agreement.bank_ref]["closed"] is True
    assert eligibility(counter, person)["dpst_free_flag"] == "0"


def test_the_account_repays_no_more_than_the_yearly_cap(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, min_balance=200_000)
    sign_up(http, person)
    pay = ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"]
    first_due = due_dates(db, pay["crdt_advn_no"])[0]
    # 2,999 yuan already repaid from the account this year (370100's cap is 3,000)
    earlier = f"HKTEST{secrets.token_hex(8)}"
    with db.unit_of_work() as session:
        session.add(CreditRepayment(repayment_no=earlier, advance_no="HKTEST", seq=1, psn_no=person.psn_no, bank_code=BANK,
                                    amount_fen=299_900, source="acct", on_date=first_due, paid_at=clock.now()))
    try:
        report = credit.run_due(db, first_due, psn_no=person.psn_no)
    finally:
        with db.unit_of_work() as session:
            session.delete(session.get(CreditRepayment, earlier))
    assert report.from_account_fen == 100 and report.from_bank_fen > 0 and report.overdue == 0


def test_an_account_short_of_money_pays_what_it_has_and_the_card_the_rest(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, min_balance=1)
    sign_up(http, person)
    pay = ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"]
    # the account holds less than the instalment
    with db.unit_of_work() as session:
        session.execute(update(Account).where(Account.psn_no == person.psn_no).values(balance_fen=12_345, opening_fen=Account.opening_fen
                                                                                      - Account.balance_fen + 12_345))
    have = balance(db, person)
    first_due = due_dates(db, pay["crdt_advn_no"])[0]
    report = credit.run_due(db, first_due, psn_no=person.psn_no)
    with db.unit_of_work(write=False) as session:
        first = session.get(CreditInstalment, (pay["crdt_advn_no"], 1))
    assert first.status == "paid"
    assert report.from_account_fen == min(have, first.amount_fen) and report.from_account_fen + report.from_bank_fen == first.amount_fen
    assert balance(db, person) == have - report.from_account_fen >= 0
    books_agree(db)


def test_where_the_policy_forbids_it_the_account_is_never_touched(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, region="440300", min_balance=200_000)
    out = sign_up(http, person)
    assert out["terms"]["account_may_repay"] is False
    setl = discharged_settlement(counter, person, jia)
    pay = ok(advance(counter, setl))["crdtpay"]
    opening = balance(db, person)
    report = credit.run_due(db, due_dates(db, pay["crdt_advn_no"])[0], psn_no=person.psn_no)
    assert report.from_account_fen == 0 and report.from_bank_fen > 0 and balance(db, person) == opening
    with db.unit_of_work(write=False) as session:
        sources = set(session.scalars(select(CreditRepayment.source).where(CreditRepayment.psn_no == person.psn_no)))
    assert sources == {"bank"}


def test_a_missed_repayment_is_overdue_suspends_and_repaying_restores(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    auth = sign_up(http, person, auto_account=False)["auth"]  # the person keeps the account out of it: the card pays
    pay = ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"]
    ref = agreement_of(db, person).bank_ref
    bank.short_cards.add(ref)
    # a month passes: the first instalment falls due today
    with db.unit_of_work() as session:
        for instalment in session.scalars(select(CreditInstalment).where(CreditInstalment.advance_no == pay["crdt_advn_no"])):
            instalment.due_date -= timedelta(days=30)
    report = credit.run_due(db, clock.today(), psn_no=person.psn_no)
    assert report.overdue == 1 and report.from_bank_fen == 0
    agreement = agreement_of(db, person)
    assert agreement.status == "suspended"
    page = http.get(f"/api/v1/people/{person.psn_no}/credit", headers=auth).json()
    assert page["agreement"]["state"] == "已暂停（有逾期）"
    missed = page["advances"][0]["schedule"][0]
    assert missed["state"] == "逾期" and missed["overdue_since"] == clock.today().isoformat()
    assert Decimal(page["totals"]["overdue"]) == Decimal(page["advances"][0]["schedule"][0]["amount"])
    # suspended: no deposit-free admission, no new advance
    assert eligibility(counter, person)["dpst_free_flag"] == "0" and eligibility(counter, person)["agre_stas"] == "suspended"
    refused = advance(counter, discharged_settlement(counter, person, jia, "1000.00"))
    assert refused["infcode"] == -1 and "逾期" in refused["err_msg"]
    # the person repays in the app while the card is still short: still overdue
    still = http.post(f"/api/v1/people/{person.psn_no}/credit/repay", headers=auth)
    assert still.status_code == 200 and still.json()["still_overdue"] == 1 and still.json()["agreement"]["status"] == "suspended"
    # money on the card: repaid, the agreement is active again
    bank.short_cards.discard(ref)
    repaid = http.post(f"/api/v1/people/{person.psn_no}/credit/repay", headers=auth)
    assert repaid.status_code == 200, repaid.text
    body = repaid.json()
    assert body["still_overdue"] == 0 and body["agreement"]["status"] == "active" and body["advances"][-1]["schedule"][0]["state"] == "已还"
    assert eligibility(counter, person)["dpst_free_flag"] == "1"
    # nothing more due: said so
    nothing = http.post(f"/api/v1/people/{person.psn_no}/credit/repay", headers=auth)
    assert nothing.status_code == 409 and "暂无" in nothing.json()["detail"]


def test_a_missed_repayment_is_collected_by_the_next_run(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, region="440300")  # no account repayment there: the card alone
    sign_up(http, person)
    pay = ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"]
    ref = agreement_of(db, person).bank_ref
    first_due = due_dates(db, pay["crdt_advn_no"])[0]
    bank.short_cards.add(ref)
    assert credit.run_due(db, first_due, psn_no=person.psn_no).overdue == 1
    assert agreement_of(db, person).status == "suspended"
    bank.short_cards.discard(ref)
    report = credit.run_due(db, first_due + timedelta(days=1), psn_no=person.psn_no)
    assert report.overdue == 0 and report.restored == 1 and agreement_of(db, person).status == "active"


# -- reversal ----------------------------------------------------------------------------------------------------------------

def test_a_reversal_before_repayment_cancels_the_advance_and_after_it_is_refused(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    sign_up(http, person, auto_account=False)
    setl = discharged_settlement(counter, person, jia)
    pay = ok(advance(counter, setl))["crdtpay"]
    ok(counter.call("2305", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": person.psn_no}}))
    with db.unit_of_work(write=False) as session:
        cancelled = session.get(CreditAdvance, pay["crdt_advn_no"])
        states = set(session.scalars(select(CreditInstalment.status).where(CreditInstalment.advance_no == pay["crdt_advn_no"])))
    assert cancelled.status == "cancelled" and states == {"cancelled"}
    assert bank.advances[pay["crdt_advn_no"]]["status"] == "cancelled"
    assert agreement_of(db, person).available_fen == 500_000
    # settled again: a new settlement, a new advance
    again = ok(counter.call("2304", {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": setl["medfee_sumamt"],
                                              "psn_setlway": "01", "mdtrt_id": setl["mdtrt_id"], "insutype": "310",
                                              "acct_used_flag": "0", "mid_setl_flag": "0"}}))["setlinfo"]
    second = ok(advance(counter, again))["crdtpay"]
    credit.run_due(db, due_dates(db, second["crdt_advn_no"])[0], psn_no=person.psn_no)
    refused = counter.call("2305", {"data": {"setl_id": again["setl_id"], "mdtrt_id": again["mdtrt_id"], "psn_no": person.psn_no}})
    assert refused["infcode"] == -1 and "开始还款" in refused["err_msg"]
    with db.unit_of_work(write=False) as session:
        # still owed or already paid off (a small cash part is one instalment, depending on who the test picked): not cancelled
        assert session.get(CreditAdvance, second["crdt_advn_no"]).status in ("open", "repaid")


# -- statements --------------------------------------------------------------------------------------------------------------

def test_statements_sum_to_the_advances_and_repayments(http, db, bank, counter, jia, settings) -> None:  # type: ignore[no-untyped-def]
    people = [someone(db, min_balance=100_000), someone(db, region="440300")]
    advances: list[dict] = []
    for person in people:
        sign_up(http, person, "BANK2")
        advances.append(ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"])
    cancelled_setl = discharged_settlement(counter, people[0], jia, "1000.00")
    cancelled = ok(advance(counter, cancelled_setl))["crdtpay"]
    ok(counter.call("2305", {"data": {"setl_id": cancelled_setl["setl_id"], "mdtrt_id": cancelled_setl["mdtrt_id"],
                                      "psn_no": people[0].psn_no}}))
    first_due = due_dates(db, advances[0]["crdt_advn_no"])[0]
    for person in people:
        credit.run_due(db, first_due, psn_no=person.psn_no)
    with db.unit_of_work(write=False) as session:
        repayments = list(session.scalars(select(CreditRepayment).where(CreditRepayment.bank_code == "BANK2")))
        mine = [credit.person_statement(session, p.psn_no) for p in people]
        statement = credit.bank_statement(session, "BANK2", first_due.strftime("%Y-%m"))
        this_month = credit.bank_statement(session, "BANK2", clock.today().strftime("%Y-%m"))
    advanced = sum(Decimal(str(a["crdt_pay_amt"])) for a in advances)
    repaid = sum(Decimal(r.amount_fen) / 100 for r in repayments)
    assert repaid > 0
    # the person's statement: what was advanced (not the cancelled one), what was repaid, what is left
    for person, page, made in zip(people, mine, advances, strict=True):
        own = sum(Decimal(r.amount_fen) / 100 for r in repayments if r.psn_no == person.psn_no)
        assert Decimal(page["totals"]["advanced"]) == Decimal(str(made["crdt_pay_amt"]))
        assert Decimal(page["totals"]["repaid"]) == own
        assert Decimal(page["totals"]["outstanding"]) == Decimal(str(made["crdt_pay_amt"])) - own
    # the bank's: advances of the month (the cancelled one counted and taken back), repayments by source, what is left
    in_month = [a for a in statement["advances"]]
    assert Decimal(statement["outstanding"]) == advanced - repaid
    assert sum(Decimal(line["outstanding"]) for line in in_month) == advanced - repaid
    assert {line["advance_no"] for line in in_month} == {a["crdt_advn_no"] for a in advances}
    assert Decimal(statement["overdue"]) == 0
    months = {first_due.strftime("%Y-%m"), clock.today().strftime("%Y-%m")}
    both = [statement] if len(months) == 1 else [statement, this_month]
    assert sum(Decimal(s["advanced"]) for s in both) == advanced + Decimal(str(cancelled["crdt_pay_amt"]))
    assert sum(Decimal(s["cancelled"]) for s in both) == Decimal(str(cancelled["crdt_pay_amt"]))
    assert sum(Decimal(s["repaid"]) for s in both) == repaid
    assert Decimal(statement["repaid_from_account"]) + Decimal(statement["repaid_from_card"]) == Decimal(statement["repaid"])
    assert Decimal(statement["repaid_from_account"]) > 0 and Decimal(statement["repaid_from_card"]) > 0

    # the same from the command line, as CSV
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url}
    run = subprocess.run([sys.executable, "-m", "yibao", "credit", "statement", "BANK2", first_due.strftime("%Y-%m"), "--format", "csv"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("advance_no,psn_no,setl_id") and len(lines) == 2 + len(advances)
    assert f"outstanding={statement['outstanding']}" in lines[-1]


def test_the_repayment_job_from_the_command_line(db, settings, bank) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "YIBAO_DATABASE_URL": settings.database_url}
    run = subprocess.run([sys.executable, "-m", "yibao", "credit", "run", "--date", "2026-13-01"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "--date" in run.stderr
    run = subprocess.run([sys.executable, "-m", "yibao", "credit", "run", "--date", (clock.today() - timedelta(days=1)).isoformat()],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "0 instalments" in run.stdout


def test_concurrent_repayment_runs_pay_each_instalment_once_and_never_overdraw(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    """Four repayment jobs at once (a cron run overlapping a retry and the person's 立即还款): every instalment is paid
    once, the account pays what it holds and no more, the card the rest, and the books agree."""
    import threading

    person = someone(db, min_balance=1)
    sign_up(http, person)
    pay = ok(advance(counter, discharged_settlement(counter, person, jia)))["crdtpay"]
    total = int(Decimal(str(pay["crdt_pay_amt"])) * 100)
    held = total // 2 + 1  # the account holds less than the advance: it pays part of an instalment, the card the rest
    with db.unit_of_work() as session:
        session.execute(update(Account).where(Account.psn_no == person.psn_no).values(
            balance_fen=held, opening_fen=Account.opening_fen - Account.balance_fen + held))
    last_due = due_dates(db, pay["crdt_advn_no"])[-1]
    collected_before = {k for k, c in bank.collections.items() if c["paid"]}
    errors: list[BaseException] = []

    def job() -> None:
        try:
            credit.run_due(db, last_due, psn_no=person.psn_no)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with db.unit_of_work(write=False) as session:
        rows = list(session.scalars(select(CreditRepayment).where(CreditRepayment.advance_no == pay["crdt_advn_no"])))
        statuses = set(session.scalars(select(CreditInstalment.status).where(CreditInstalment.advance_no == pay["crdt_advn_no"])))
    assert statuses == {"paid"} and sum(r.amount_fen for r in rows) == total
    assert sum(r.amount_fen for r in rows if r.source == "acct") == held and balance(db, person) == 0
    new_collections = [c for k, c in bank.collections.items() if c["paid"] and k not in collected_before
                       and c["bank_ref"] == agreement_of(db, person).bank_ref]
    assert sum(Decimal(c["amount"]) for c in new_collections) * 100 == total - held
    books_agree(db)


# -- the attacker review's findings ------------------------------------------------------------------------------------------

def test_2801_and_2802_need_the_persons_credential(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    person, other = someone(db), someone(db)
    sign_up(http, person)
    bare = counter.call("2801", {"data": {"psn_no": person.psn_no}})
    assert bare["infcode"] == -1 and "mdtrt_cert" in bare["err_msg"], bare
    wrong = counter.call("2801", {"data": {"psn_no": person.psn_no, **cert(other)}})
    assert wrong["infcode"] == -1 and "mdtrt_cert_no" in wrong["err_msg"], wrong
    setl = discharged_settlement(counter, person, jia)
    paid_before = bank.paid_to(counter.fixmedins_code)
    refused = advance(counter, setl, cert(other))
    assert refused["infcode"] == -1 and "mdtrt_cert_no" in refused["err_msg"], refused
    assert counter.call("2802", {"data": {"setl_id": setl["setl_id"], "psn_no": person.psn_no}})["infcode"] == -1
    assert bank.paid_to(counter.fixmedins_code) == paid_before
    assert ok(advance(counter, setl))["crdtpay"]["setl_id"] == setl["setl_id"]


def test_2802_comes_within_the_window_after_the_settlement(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    from yibao.encounter.models import Settlement

    person = someone(db)
    sign_up(http, person)
    setl = discharged_settlement(counter, person, jia)
    with db.unit_of_work() as session:  # settled longer ago than the window: the cash was collected at the counter by now
        session.execute(update(Settlement).where(Settlement.setl_id == setl["setl_id"])
                        .values(setl_time=clock.now() - timedelta(minutes=credit.ADVANCE_WINDOW_MINUTES + 1)))
    paid_before = bank.paid_to(counter.fixmedins_code)
    late = advance(counter, setl)
    assert late["infcode"] == -1 and "分钟" in late["err_msg"] and "setl_id" in late["err_msg"], late
    assert bank.paid_to(counter.fixmedins_code) == paid_before


def test_2802_refuses_a_cash_part_paid_by_mobile_payment(http, db, bank, counter, jia) -> None:  # type: ignore[no-untyped-def]
    from yibao.payment.models import PayOrder

    person = someone(db)
    sign_up(http, person)
    setl = discharged_settlement(counter, person, jia)
    cash = int(Decimal(str(setl["psn_cash_pay"])) * 100)
    with db.unit_of_work() as session:  # what a mobile payment of this settlement in the app leaves
        now = clock.now()
        session.add(PayOrder(pay_ord_id=serial("PO"), pay_token=serial("PT"), fixmedins_code=counter.fixmedins_code,
                             mdtrt_id=setl["mdtrt_id"], psn_no=person.psn_no, kind="ipt", method="mobile", medins_ord_no="",
                             acct_used=False, status="paid", medfee_sumamt=cash, fund_pay_sumamt=0, acct_pay=0, psn_cash_pay=cash,
                             setl_id=setl["setl_id"], confirmed_by=person.psn_no, confirmed_at=now, reason="", created_at=now,
                             updated_at=now, paid_at=now))
    paid_before = bank.paid_to(counter.fixmedins_code)
    refused = advance(counter, setl)
    assert refused["infcode"] == -1 and "移动支付" in refused["err_msg"], refused
    assert bank.paid_to(counter.fixmedins_code) == paid_before


def test_signing_and_closing_need_the_password_and_a_wrong_one_counts(http, db, bank) -> None:  # type: ignore[no-untyped-def]
    from yibao.credential.models import Credential

    person = someone(db)
    auth = signed_in(http, person)
    url = f"/api/v1/people/{person.psn_no}/credit"
    assert http.post(url, headers=auth, json={"bank_code": BANK}).status_code in (400, 401, 403)
    wrong = http.post(url, headers=auth, json={"bank_code": BANK, "password": "000000"})
    assert wrong.status_code in (401, 403), wrong.text
    with db.unit_of_work(write=False) as session:
        row = session.scalars(select(Credential).where(Credential.psn_no == person.psn_no)).one()
        assert row.pwd_failures == 2  # no password and a wrong one: both counted
    assert http.get(url, headers=auth).json()["agreement"] is None
    sign_up(http, person)
    assert http.post(f"{url}/close", headers=auth, json={"password": "000000"}).status_code in (401, 403)
    assert http.post(f"{url}/close", headers=auth, json={"password": PWD}).status_code == 200


def test_an_unknown_bank_is_not_echoed(http, db, bank) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    reply = http.post(f"/api/v1/people/{person.psn_no}/credit", headers=signed_in(http, person),
                      json={"bank_code": "\u0000<b>", "password": PWD})
    assert reply.status_code == 404 and "\u0000" not in reply.text and "<b>" not in reply.text, reply.text
