"""Settlement semantics through the gateway (docs/policy.md §1, §2, §7): which funds pay a pharmacy purchase, reversing a
stay that later settlements read, and the year a stay across New Year counts in."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from flows import catalogue_codes, cert, fee, ok, person_with, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter.models import Settlement
from yibao.ledger.models import YearTotal
from yibao.registry.models import Identity

used: set[str] = set()  # a person per test: their year's totals are the test's own


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def fresh_employee(db):  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False, skip=used)
    used.add(person.psn_no)
    return person


def admit(counter: CounterClient, person: Any) -> str:
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                 "diag_name": "急性阑尾炎"}]}))
    return out["result"]["mdtrt_id"]  # type: ignore[no-any-return]


def stay(counter: CounterClient, person: Any, code: str, amount: str, *, settle: bool = True) -> dict[str, Any]:
    """Admit, bill, discharge and (unless told not to) settle a stay; the 2304 setlinfo (or the mdtrt_id)."""
    mdtrt_id = admit(counter, person)
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount)]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    return settle_stay(counter, person, mdtrt_id, amount) if settle else {"mdtrt_id": mdtrt_id}


def settle_stay(counter: CounterClient, person: Any, mdtrt_id: str, amount: str) -> dict[str, Any]:
    data = {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal(amount), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0"}
    return ok(counter.call("2304", {"data": data}))["setlinfo"]  # type: ignore[no-any-return]


def reverse(counter: CounterClient, person: Any, setl: dict[str, Any]) -> dict[str, Any]:
    return counter.call("2305", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": person.psn_no}})


def year_total(db, psn_no: str, year: int) -> YearTotal | None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        return session.get(YearTotal, (psn_no, year))  # type: ignore[no-any-return]


def test_a_pharmacy_purchase_draws_no_medical_assistance(http, db, codes) -> None:  # type: ignore[no-untyped-def]
    # issue 11: a low-income employee's pharmacy purchase of 100.00 used to get 70.00 from medical assistance (610)
    from conftest import secret_of

    pharmacy = CounterClient("http://testserver", "P37010000007", secret_of("P37010000007"), http=http)
    ok(pharmacy.sign_in())
    person = fresh_employee(db)
    with db.unit_of_work() as session:
        session.add(Identity(psn_no=person.psn_no, psn_idet_type="2102", psn_type_lv=None, memo="低保", begntime=datetime(2025, 1, 1),
                             endtime=None))
    drug = {"feedetl_sn": "1", "med_list_codg": codes["jia"], "det_item_fee_sumamt": Decimal("100.00"), "cnt": 1, "pric": Decimal("100"),
            "rxno": "RX001"}
    data = {"psn_no": person.psn_no, "insutype": "310", **cert(person), "acct_used_flag": "0", "psn_setlway": "01",
            "medfee_sumamt": Decimal("100.00")}
    paid = ok(pharmacy.call("2102", {"data": data, "drugdetail": [drug]}))
    info = paid["setlinfo"]
    assert (info["maf_pay"], info["hifp_pay"], info["cvlserv_pay"], info["fund_pay_sumamt"]) == (0, 0, 0, 0)
    assert info["psn_cash_pay"] == Decimal("100.00")
    assert {d["fund_pay_type"] for d in paid["setldetail"]} == {"310100"}  # the basic fund, paying nothing, says why
    # nothing posted to 610's yearly cap, and no burden toward a catastrophic threshold
    total = year_total(db, person.psn_no, clock.today().year)
    assert total is not None and (total.maf, total.inscp_self) == (0, 0)


def test_reversing_a_stay_that_later_settlements_read_is_refused_naming_them(counter, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = fresh_employee(db)
    first = stay(counter, person, codes["jia"], "3000.00")
    second = stay(counter, person, codes["jia"], "3000.00")
    # the second admission of the year: half the level-3 deductible, read from the first
    assert (Decimal(str(first["act_pay_dedc"])), Decimal(str(second["act_pay_dedc"]))) == (Decimal("1000.00"), Decimal("500.00"))
    refused = reverse(counter, person, first)
    assert refused["infcode"] == -1
    assert refused["err_msg"] == (f"input.data.setl_id: settlement {first['setl_id']} is not the person's latest of "
                                  f"{clock.today().year}: reverse {second['setl_id']} first (1 later: 1 here, 0 at other institutions)")
    # nothing moved
    with db.unit_of_work(write=False) as session:
        assert session.get(Settlement, first["setl_id"]).revs_setl_id is None
    # latest first, then the earlier one: the year's totals are as if neither had happened
    ok(reverse(counter, person, second))
    ok(reverse(counter, person, first))
    total = year_total(db, person.psn_no, clock.today().year)
    assert total is not None and (total.hifp, total.admissions, total.settlements) == (0, 0, 0)
    # settled again, the stay is the year's first admission again
    again = stay(counter, person, codes["jia"], "3000.00")
    assert Decimal(str(again["act_pay_dedc"])) == Decimal("1000.00")


def test_an_outpatient_settlement_may_still_be_reversed_out_of_order(counter, db, codes) -> None:  # type: ignore[no-untyped-def]
    # the refusal is for stays; a counter refunds the morning's visit after the afternoon's (the year's totals are
    # restored exactly; the later visit stands as settled)
    from flows import outpatient

    person = fresh_employee(db)
    morning = outpatient(counter, person, "310", [(codes["jia"], "50.00")], acct="0")["setlinfo"]
    outpatient(counter, person, "310", [(codes["jia"], "50.00")], acct="0")
    ok(reverse(counter, person, morning))


def test_a_stay_across_new_year_counts_in_the_year_it_began(counter, db, codes) -> None:  # type: ignore[no-untyped-def]
    # admitted 2026-12-30, settled 2027-01-02: the 2026 deductible and caps, the 2026 counters
    person = fresh_employee(db)
    with clock.pinned(datetime(2026, 12, 30, 10, 0)):
        ok(counter.sign_in())
        old_year = stay(counter, person, codes["jia"], "3000.00", settle=False)["mdtrt_id"]
    with clock.pinned(datetime(2027, 1, 2, 10, 0)):
        ok(counter.sign_in())
        setl = settle_stay(counter, person, old_year, "3000.00")
        # a stay admitted in 2027 is that year's first admission: the whole deductible again
        new_year = stay(counter, person, codes["jia"], "3000.00")
    try:
        assert Decimal(str(setl["act_pay_dedc"])) == Decimal("1000.00") and Decimal(str(setl["hifp_pay"])) == Decimal("1700.00")
        assert Decimal(str(new_year["act_pay_dedc"])) == Decimal("1000.00")
        with db.unit_of_work(write=False) as session:
            years = dict(session.execute(select(Settlement.setl_id, Settlement.year).where(Settlement.psn_no == person.psn_no)).all())
        assert years == {setl["setl_id"]: 2026, new_year["setl_id"]: 2027}
        total_2026, total_2027 = year_total(db, person.psn_no, 2026), year_total(db, person.psn_no, 2027)
        assert total_2026 is not None and (total_2026.hifp, total_2026.admissions) == (170_000, 1)
        assert total_2027 is not None and (total_2027.hifp, total_2027.admissions) == (170_000, 1)
        # the 2026 stay is the latest of 2026: it may be reversed though a 2027 one came after it
        with clock.pinned(datetime(2027, 1, 2, 11, 0)):
            ok(reverse(counter, person, setl))
        assert year_total(db, person.psn_no, 2026).hifp == 0  # type: ignore[union-attr]
        assert year_total(db, person.psn_no, 2027).hifp == 170_000  # type: ignore[union-attr]
    finally:
        ok(counter.sign_in())  # back in the present for the tests that follow


def test_the_refusal_names_only_this_institutions_settlements_and_counts_the_others(http, counter, db, codes) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of
    from flows import outpatient

    other = CounterClient("http://testserver", "H37010000002", secret_of("H37010000002"), http=http)
    ok(other.sign_in())
    person = fresh_employee(db)
    first = stay(counter, person, codes["jia"], "3000.00")
    elsewhere = outpatient(other, person, "310", [(codes["jia"], "50.00")], acct="0")["setlinfo"]
    own = stay(counter, person, codes["jia"], "3000.00")
    refused = reverse(counter, person, first)
    assert refused["infcode"] == -1
    assert refused["err_msg"].endswith(f"reverse {own['setl_id']} first (2 later: 1 here, 1 at other institutions)"), refused["err_msg"]
    assert elsewhere["setl_id"] not in refused["err_msg"]  # another hospital's number, and that the person went there
    ok(reverse(counter, person, own))
    only_elsewhere = reverse(counter, person, first)
    assert only_elsewhere["err_msg"].endswith("1 later settlement(s) at other institutions must be reversed there first")
    ok(other.call("2208", {"data": {"setl_id": elsewhere["setl_id"], "mdtrt_id": elsewhere["mdtrt_id"], "psn_no": person.psn_no}}))
    ok(reverse(counter, person, first))
