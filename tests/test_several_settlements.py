"""Several settlements on one outpatient visit: the registration fee at once, the prescriptions later (issue 10, item 3).

HIS clients settle the registration fee right after 2201 (2204 → 2206 → 2207) and the prescriptions on the same
mdtrt_id later; each 2206/2207 settles the lines not yet settled, the year's deductible and caps carry from one to the
next, and 2208 reverses one settlement and leaves the others.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows import catalogue_codes, fee, ok, person_with, register, settle_input, upload
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter.models import Settlement, Visit
from yibao.ledger.models import YearTotal
from yibao.reconciliation.books import check

USED: set[str] = set()


def d(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(str(value))


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def someone(db, insutype: str = "310"):  # type: ignore[no-untyped-def]
    """A person no other test of this module settles for (their year starts empty)."""
    person = person_with(db, insutype, retired=False if insutype == "310" else None, skip=USED)
    USED.add(person.psn_no)
    return person


def otp_dedc(db, psn_no: str) -> int:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        row = session.get(YearTotal, (psn_no, clock.now().year))
        return row.otp_dedc if row else 0


def test_registration_fee_then_prescriptions_on_one_visit(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id = register(counter, person, "310")
    # the registration fee (here a 甲 consultation of 300.00) is settled at once: the level-3 deductible (800.00) takes it
    upload(counter, mdtrt_id, person, [(codes["jia"], "300.00")], batch="GH01")
    ok(counter.call("2206", settle_input(person, mdtrt_id, "310", "300.00", batch="GH01")))
    first = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "300.00", batch="GH01")))["setlinfo"]
    assert d(first["act_pay_dedc"]) == Decimal("300.00") and d(first["hifp_pay"]) == 0
    # the doctor prescribes later: new fee lines on the settled visit, settled by their own batch
    upload(counter, mdtrt_id, person, [(codes["jia"], "1000.00")], batch="CF01")
    pre = ok(counter.call("2206", settle_input(person, mdtrt_id, "310", "1000.00", batch="CF01")))["setlinfo"]
    second = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "1000.00", batch="CF01")))["setlinfo"]
    assert pre["hifp_pay"] == second["hifp_pay"] and second["mdtrt_id"] == mdtrt_id and second["setl_id"] != first["setl_id"]
    # the year's deductible carried: 500.00 of it was left, then 50% of the other 500.00
    assert d(second["act_pay_dedc"]) == Decimal("500.00") and d(second["hifp_pay"]) == Decimal("250.00")
    assert d(second["medfee_sumamt"]) == Decimal("1000.00")
    assert otp_dedc(db, person.psn_no) == 80_000
    # each settlement's fee lines, and a third settlement with nothing left to settle is refused
    first_lines = ok(counter.call("5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id, "setl_id": first["setl_id"]}}))
    assert [d(x["det_item_fee_sumamt"]) for x in first_lines["feedetail"]] == [Decimal("300.00")]
    nothing = counter.call("2207", settle_input(person, mdtrt_id, "310", "0", batch="0000"))
    assert nothing["infcode"] == -1 and "no unsettled fee lines" in nothing["err_msg"]

    # 2208 reverses the second settlement only: the first stands, the year keeps its 300.00 of deductible
    back = ok(counter.call("2208", {"data": {"setl_id": second["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))["setlinfo"]
    assert d(back["hifp_pay"]) == Decimal("-250.00")
    assert otp_dedc(db, person.psn_no) == 30_000
    with db.unit_of_work(write=False) as session:
        assert session.get(Settlement, first["setl_id"]).revs_setl_id is None
        assert session.get(Visit, mdtrt_id).status == "settled"  # one settlement still stands
    still = ok(counter.call("5203", {"data": {"psn_no": person.psn_no, "setl_id": first["setl_id"], "mdtrt_id": mdtrt_id}}))
    assert still["setlinfo"]["refd_setl_flag"] == "0"
    # the reversed prescriptions are unsettled again: settling them gives the same answer as before
    again = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "1000.00", batch="CF01")))["setlinfo"]
    assert (again["act_pay_dedc"], again["hifp_pay"]) == (second["act_pay_dedc"], second["hifp_pay"])
    # and reversing the registration fee's settlement leaves the prescriptions' settlement alone
    ok(counter.call("2208", {"data": {"setl_id": first["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))
    with db.unit_of_work(write=False) as session:
        assert session.get(Settlement, again["setl_id"]).revs_setl_id is None
        assert session.get(Visit, mdtrt_id).status == "settled"
        report = check(session)
    assert report.ok, report.problems
    ok(counter.call("2208", {"data": {"setl_id": again["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))
    with db.unit_of_work(write=False) as session:
        assert session.get(Visit, mdtrt_id).status == "registered"  # nothing settled stands: 2202 may cancel it
    assert otp_dedc(db, person.psn_no) == 0


def test_a_batch_number_that_names_no_upload_settles_every_unsettled_line(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id = register(counter, person, "310")
    upload(counter, mdtrt_id, person, [(codes["jia"], "20.00")], batch="B1")
    upload(counter, mdtrt_id, person, [(codes["yi"], "30.00")], batch="B2")
    # some clients send their own registration number as chrg_bchno: it names no uploaded batch, so every unsettled line
    paid = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "50.00", batch="MZ20261123001")))["setlinfo"]
    assert d(paid["medfee_sumamt"]) == Decimal("50.00")


def test_a_batch_settles_only_its_own_lines(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id = register(counter, person, "310")
    upload(counter, mdtrt_id, person, [(codes["jia"], "20.00")], batch="B1")
    upload(counter, mdtrt_id, person, [(codes["yi"], "30.00")], batch="B2")
    wrong = counter.call("2207", settle_input(person, mdtrt_id, "310", "50.00", batch="B2"))
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("input.data.medfee_sumamt:")
    ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "30.00", batch="B2")))
    settled_again = counter.call("2207", settle_input(person, mdtrt_id, "310", "30.00", batch="B2"))
    assert settled_again["infcode"] == -1 and "no unsettled fee lines" in settled_again["err_msg"]
    rest = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "20.00", batch="0000")))["setlinfo"]
    assert d(rest["medfee_sumamt"]) == Decimal("20.00")


def test_a_cancelled_fee_line_can_be_uploaded_again_with_its_number(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id = register(counter, person, "310")
    line = fee(mdtrt_id, person.psn_no, codes["jia"], "40.00")
    ok(counter.call("2204", {"feedetail": [line]}))
    twice = counter.call("2204", {"feedetail": [line]})
    assert twice["infcode"] == -1 and "already uploaded" in twice["err_msg"]
    ok(counter.call("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": person.psn_no}}))
    # the HIS corrects the line and sends it again under the same feedetl_sn
    corrected = {**line, "det_item_fee_sumamt": Decimal("45.00"), "pric": Decimal("45.000000")}
    result = ok(counter.call("2204", {"feedetail": [corrected]}))["result"]
    assert result[0]["feedetl_sn"] == line["feedetl_sn"] and d(result[0]["det_item_fee_sumamt"]) == Decimal("45.00")
    paid = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "45.00")))["setlinfo"]
    lines = ok(counter.call("5204", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id}}))["feedetail"]
    assert [(x["feedetl_sn"], x["setl_id"]) for x in lines] == [(line["feedetl_sn"], paid["setl_id"])]
