"""Maternity allowance (生育津贴): birth information from the maternity stay (med_type 52), days from the region's
policy, the employer's average monthly wage, scheduled without an application and paid through the bank's
disbursement service (a stand-in HTTP server here) once, on its day; visible in the person's app API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import select

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, fee, ok, serial, signed_in
from standins.disbursement import Bank
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter.models import Visit
from yibao.maternity import entitlement
from yibao.maternity import service as maternity
from yibao.maternity.models import MaternityAllowance
from yibao.maternity.payout import HttpPayout
from yibao.policy.parameters import bundled
from yibao.policy.service import snapshot
from yibao.registry.models import Contribution, Enrolment, Person


def _policy(region: str = "370100"):  # type: ignore[no-untyped-def]
    return snapshot(bundled(), region, "310", "in_service", date(2026, 11, 1))


@pytest.mark.parametrize("matn_type, geso_val, fetus_cnt, days", [
    ("1", 39, 1, 98 + 60),             # normal birth: 98 days and Shandong's 60
    ("3", 38, 1, 98 + 15 + 60),        # caesarean counts as a difficult birth
    ("4", 40, 2, 98 + 15 + 15 + 60),   # difficult birth of twins
    ("2", 37, 3, 98 + 30 + 60),        # triplets: 15 days for each baby beyond the first
    ("5", 10, 0, 15),                  # miscarriage before four months
    ("6", 16, 0, 42),                  # from the 16th week
])
def test_entitled_days_follow_the_regulation_and_the_province(matn_type: str, geso_val: int, fetus_cnt: int, days: int) -> None:
    assert entitlement.entitled_days(_policy(), matn_type, geso_val, fetus_cnt).days == days


def test_no_days_without_what_they_are_counted_from() -> None:
    assert "matn_type" in entitlement.entitled_days(_policy(), "", 39, 1).refused
    assert "geso_val" in entitlement.entitled_days(_policy(), "5", 0, 0).refused
    assert entitlement.entitled_days(_policy(), "7", 20, 0).days == 0  # antenatal care is not leave
    assert entitlement.entitled_days(_policy("440300"), "1", 39, 1).days == 98 + 80  # Guangdong extends by 80 days


def test_the_amount_is_the_monthly_wage_over_30_days_to_the_fen() -> None:
    assert entitlement.allowance_fen(6_000_00, 158) == 31_600_00
    assert entitlement.allowance_fen(7_123_45, 98) == int((Decimal(712345) * 98 / 30).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- end to end -------------------------------------------------------------------------------------------------------

def _mother(db, skip: set[str]) -> Person:  # type: ignore[no-untyped-def]
    """A woman employed (in service) in 370100, with a year of contributions, who has never had a visit."""
    with db.unit_of_work(write=False) as session:
        seen = set(session.scalars(select(Visit.psn_no))) | skip
        for person in session.scalars(select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                      .where(Person.gend == "2", Enrolment.insutype == "310", Enrolment.psn_insu_stas == "1",
                                             Enrolment.insuplc_admdvs == "370100", Enrolment.psn_type.like("11%"),
                                             Enrolment.emp_no.is_not(None)).order_by(Person.psn_no)):
            if person.psn_no not in seen and maternity.contribution_months(session, person.psn_no, clock.today()) >= 12:
                session.expunge(person)
                return person
    raise LookupError("no mother in the demo")


def _expected_wage(db, person: Person) -> int:  # type: ignore[no-untyped-def]
    """The employer's average monthly contribution base of last year, summed by hand."""
    last = str(clock.today().year - 1)
    with db.unit_of_work(write=False) as session:
        emp_no = session.scalar(select(Enrolment.emp_no).where(Enrolment.psn_no == person.psn_no, Enrolment.insutype == "310"))
        staff = set(session.scalars(select(Enrolment.psn_no).where(Enrolment.emp_no == emp_no, Enrolment.insutype == "310")))
        bases = [c.cntr_base_fen for c in session.scalars(select(Contribution).where(Contribution.insutype == "310"))
                 if c.psn_no in staff and c.cntr_ym.startswith(last) and c.cntr_base_fen > 0]
    return round(sum(bases) / len(bases))


def _birth(counter: CounterClient, db, person: Person, *, matn_type: str = "1", fetus_cnt: str = "1") -> dict:  # type: ignore[no-untyped-def]
    """Admission for a birth (med_type 52), the stay's fees, discharge and the settlement."""
    code = catalogue_codes(db)["jia"]
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "52",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "matn_type": matn_type, "geso_val": "39", "fetts": "1", "fetus_cnt": fetus_cnt,
                                                 "dise_codg": "O80.000", "dise_name": "单胎顺产"}}))
    mdtrt_id = out["result"]["mdtrt_id"]
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, code, "3000.00")]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    data = {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": "3000.00", "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0", "med_type": "52"}
    return ok(counter.call("2304", {"data": data}))["setlinfo"]


@pytest.fixture(scope="module")
def counter_m(http, db) -> CounterClient:  # type: ignore[no-untyped-def]
    client = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL, db), http=http)
    assert client.sign_in()["infcode"] == 0
    return client


@pytest.fixture
def bank():  # type: ignore[no-untyped-def]
    found = Bank(key="k" * 32)
    url = found.start()
    channel = HttpPayout(url, found.key, timeout_s=1.0)
    yield found, channel
    channel.close()
    found.stop()




def test_a_birth_is_paid_once_on_its_day_to_the_account_the_mother_named(http, db, counter_m, bank) -> None:  # type: ignore[no-untyped-def]
    stand_in, channel = bank
    person = _mother(db, set())
    settled = _birth(counter_m, db, person)
    today = clock.today()

    report = maternity.run(db, channel, today)            # scheduled, not yet due
    assert report.scheduled >= 1 and report.paid == 0 and not stand_in.paid
    auth = signed_in(http, person)
    shown = http.get(f"/api/v1/people/{person.psn_no}/maternity", headers=auth).json()
    allowance = next(a for a in shown["allowances"] if a["setl_id"] == settled["setl_id"])
    wage = _expected_wage(db, person)
    assert allowance["status_name"] == "待发放" and allowance["days"] == 158
    assert Decimal(allowance["amount"]) * 100 == entitlement.allowance_fen(wage, 158)
    due = date.fromisoformat(allowance["due_on"])
    assert due.day == 15 and due > today and (due - today) < timedelta(days=62)

    # due, but no account to pay into: it waits, says why, and the bank is not asked
    maternity.run(db, channel, due)
    waiting = http.get(f"/api/v1/people/{person.psn_no}/maternity", headers=auth).json()["allowances"]
    assert next(a for a in waiting if a["setl_id"] == settled["setl_id"])["waiting_because"].startswith("未登记待遇发放账户")
    assert stand_in.requests == 0

    wrong = http.put(f"/api/v1/people/{person.psn_no}/benefit-account", headers=auth,
                     json={"bank_name": "中国工商银行济南分行", "account_no": "6222020200112233445", "password": "000000"})
    assert wrong.status_code in (401, 403) and "密码" in wrong.json()["detail"]
    named = http.put(f"/api/v1/people/{person.psn_no}/benefit-account", headers=auth,
                     json={"bank_name": "中国工商银行济南分行", "account_no": "6222 0202 0011 2233 445", "password": "135790"})
    assert named.status_code == 200, named.text
    assert named.json()["account_tail"] == "3445" and "6222" not in named.text  # the number is never shown back

    maternity.run(db, channel, due)
    maternity.run(db, channel, due + timedelta(days=1))   # a second run pays nothing more
    paid = [p for p in stand_in.paid.values() if p["payee_name"] == person.psn_name]
    assert len(paid) == 1 and paid[0]["amount_fen"] == entitlement.allowance_fen(wage, 158)
    assert paid[0]["account_no"] == "6222020200112233445" and stand_in.bad_signatures == 0
    final = next(a for a in http.get(f"/api/v1/people/{person.psn_no}/maternity", headers=auth).json()["allowances"]
                 if a["setl_id"] == settled["setl_id"])
    assert final["status_name"] == "已发放" and final["account_tail"] == "3445" and final["paid_at"]


def test_a_bank_that_answers_late_pays_once_and_the_next_run_records_it(db, counter_m, bank) -> None:  # type: ignore[no-untyped-def]
    stand_in, channel = bank
    person = _mother(db, set())
    settled = _birth(counter_m, db, person, matn_type="3", fetus_cnt="2")
    with db.unit_of_work() as session:
        maternity.set_account(session, person.psn_no, "招商银行", "6214830000000001")
    maternity.run(db, None, clock.today())
    with db.unit_of_work(write=False) as session:
        allowance = session.scalar(select(MaternityAllowance).where(MaternityAllowance.setl_id == settled["setl_id"]))
        due, amount = allowance.due_on, allowance.amount_fen
        assert allowance.days == 98 + 15 + 15 + 60
    stand_in.behaviour = "slow"                       # the bank pays, but its answer comes after we gave up
    report = maternity.run(db, channel, due)
    assert report.paid == 0 and report.waiting >= 1
    stand_in.behaviour = "normal"
    maternity.run(db, channel, due)                   # asked again with the same reference: the first payment's outcome
    mine = [p for p in stand_in.paid.values() if p["payee_name"] == person.psn_name]
    assert len(mine) == 1 and mine[0]["amount_fen"] == amount
    with db.unit_of_work(write=False) as session:
        allowance = session.scalar(select(MaternityAllowance).where(MaternityAllowance.setl_id == settled["setl_id"]))
        assert allowance.status == "paid" and allowance.attempts == 2 and allowance.bank_ref == mine[0]["bank_ref"]


def test_a_reversed_birth_settlement_cancels_the_unpaid_allowance(db, counter_m) -> None:  # type: ignore[no-untyped-def]
    person = _mother(db, set())
    settled = _birth(counter_m, db, person)
    maternity.run(db, None, clock.today())
    ok(counter_m.call("2305", {"data": {"setl_id": settled["setl_id"], "mdtrt_id": settled["mdtrt_id"], "psn_no": person.psn_no}}))
    report = maternity.run(db, None, clock.today())
    assert report.cancelled >= 1
    with db.unit_of_work(write=False) as session:
        allowance = session.scalar(select(MaternityAllowance).where(MaternityAllowance.setl_id == settled["setl_id"]))
        assert allowance.status == "cancelled" and "撤销" in allowance.reason


def test_a_man_or_a_short_contribution_gets_a_reasoned_refusal(db, counter_m) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        seen = set(session.scalars(select(Visit.psn_no)))
        man = next(p for p in session.scalars(select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                              .where(Person.gend == "1", Enrolment.insutype == "310", Enrolment.psn_insu_stas == "1",
                                                     Enrolment.insuplc_admdvs == "370100").order_by(Person.psn_no))
                   if p.psn_no not in seen)
        session.expunge(man)
    settled = _birth(counter_m, db, man)
    maternity.run(db, None, clock.today())
    with db.unit_of_work(write=False) as session:
        allowance = session.scalar(select(MaternityAllowance).where(MaternityAllowance.setl_id == settled["setl_id"]))
        assert allowance.status == "refused" and allowance.amount_fen == 0 and "女职工" in allowance.reason
