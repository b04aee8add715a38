"""5205 (人员慢特病用药记录查询): exactly the person's chronic-care drug lines in the period (issue 13, item 5).

Drug lines of standing med_type 14 settlements, at any institution, dated in [begntime, endtime] (no endtime: up to
now); not another person's, not a service item, not an ordinary outpatient visit's, not a reversed settlement's. And
the lookup reads by its indexes on both engines (bench/drug_history.py measures it at 1,000,000 people)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from flows import catalogue_codes, fee, fresh_person, ok, outpatient, register, registered_disease, settle_input
from yibao.chronic.models import ChronicRegistration
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter import queries


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def newcomer(db, taken: set[str]):  # type: ignore[no-untyped-def]
    """An employee with no visit and no registration yet, whom this module has not used."""
    with db.unit_of_work(write=False) as session:
        registered = set(session.scalars(select(ChronicRegistration.psn_no)))
    person = fresh_person(db, "310", retired=False, skip=taken | registered)
    taken.add(person.psn_no)
    return person


def chronic_visit(counter: CounterClient, person, disease: str, lines: list[tuple[str, str]]) -> tuple[dict, list[str]]:  # type: ignore[no-untyped-def]
    """A med_type 14 visit settled now (the clock may be pinned); its 2207 setlinfo and its lines' feedetl_sn."""
    mdtrt_id = register(counter, person, "310", med_type="14")
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14", "dise_codg": disease,
                                           "dise_name": "", "begntime": clock.fmt_datetime(clock.now())},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "高血压"}]}))
    sent = [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]
    ok(counter.call("2204", {"feedetail": sent}))
    total = str(sum(float(a) for _, a in lines))
    setl = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", f"{float(total):.2f}", med_type="14")))["setlinfo"]
    return setl, [line["feedetl_sn"] for line in sent]


def history(counter: CounterClient, psn_no: str, begin: datetime, end: datetime | None = None) -> list[dict]:
    data = {"psn_no": psn_no, "begntime": clock.fmt_datetime(begin), "endtime": clock.fmt_datetime(end) if end else ""}
    return ok(counter.call("5205", {"data": data}))["feedetail"]


def test_5205_answers_the_persons_drug_lines_in_the_period_and_nothing_else(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    taken: set[str] = set()
    patient, other = newcomer(db, taken), newcomer(db, taken)
    drug, other_drug, service = codes["jia"], codes["yi"], codes["bing"]  # 102 中成药, 102, 201 a service item
    now = clock.now().replace(microsecond=0)
    try:
        with clock.pinned(now - timedelta(days=200)):
            ok(counter.sign_in())
            disease = registered_disease(counter, patient, "310")
            registered_disease(counter, other, "310")
        with clock.pinned(now - timedelta(days=150)):  # before the three months
            ok(counter.sign_in())
            chronic_visit(counter, patient, disease, [(drug, "30.00")])
        with clock.pinned(now - timedelta(days=60)):
            ok(counter.sign_in())
            _, two_months = chronic_visit(counter, patient, disease, [(drug, "30.00"), (other_drug, "12.50"), (service, "8.00")])
            _, others = chronic_visit(counter, other, disease, [(drug, "30.00")])
        with clock.pinned(now - timedelta(days=10)):
            ok(counter.sign_in())
            _, ten_days = chronic_visit(counter, patient, disease, [(other_drug, "12.50")])
            reversed_setl, _ = chronic_visit(counter, patient, disease, [(drug, "30.00")])
            ok(counter.call("2208", {"data": {"setl_id": reversed_setl["setl_id"], "mdtrt_id": reversed_setl["mdtrt_id"],
                                              "psn_no": patient.psn_no}}))
            outpatient(counter, patient, "310", [(drug, "30.00")], acct="0")  # ordinary outpatient care (med_type 11)
    finally:
        ok(counter.sign_in())  # back in the present for the tests that follow

    three_months = history(counter, patient.psn_no, now - timedelta(days=91))
    # the drug lines of the two chronic visits in the period, in time order; not the service item
    assert [h["feedetl_sn"] for h in three_months] == [*two_months[:2], *ten_days]
    assert {h["med_list_codg"] for h in three_months} == {drug, other_drug}
    assert all(h["psn_no"] == patient.psn_no and h["med_type"] == "14" and h["opsp_dise_code"] == disease for h in three_months)
    assert all(h["fixmedins_code"] == counter.fixmedins_code and h["fixmedins_name"] and h["prodname"] for h in three_months)
    assert [h["fee_ocur_time"][:10] for h in three_months] == [(now - timedelta(days=d)).date().isoformat() for d in (60, 60, 10)]
    # an end bounds it: the visit ten days ago is after it
    assert [h["feedetl_sn"] for h in history(counter, patient.psn_no, now - timedelta(days=91), now - timedelta(days=30))] == two_months[:2]
    # a longer period takes the first visit in; the other person sees only their own line
    assert len(history(counter, patient.psn_no, now - timedelta(days=365))) == 4
    assert [h["feedetl_sn"] for h in history(counter, other.psn_no, now - timedelta(days=91))] == others
    # someone without chronic care has none; an unknown person is refused, naming the field
    assert history(counter, newcomer(db, taken).psn_no, now - timedelta(days=91)) == []
    unknown = counter.call("5205", {"data": {"psn_no": "37010099999999999999", "begntime": clock.fmt_datetime(now)}})
    assert unknown["infcode"] == -1 and unknown["err_msg"].startswith("input.data.psn_no")


def test_begntime_is_required_and_times_are_checked(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = newcomer(db, set())
    missing = counter.call("5205", {"data": {"psn_no": person.psn_no}})
    assert missing["infcode"] == -1 and "begntime" in missing["err_msg"]
    wrong = counter.call("5205", {"data": {"psn_no": person.psn_no, "begntime": "2026-01-01 00:00:00", "endtime": "tomorrow"}})
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("input.data.endtime")


def test_the_lookup_reads_by_its_indexes(db) -> None:  # type: ignore[no-untyped-def]
    """A settlement-by-person index range, then the lines by settlement and the visit and institution by key; no table
    scanned. PostgreSQL's planner prefers scanning the tiny test tables: told not to, it must still have an index path."""
    begin = clock.now() - timedelta(days=91)
    with db.unit_of_work(write=False) as session:
        if db.engine.dialect.name == "postgresql":
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = queries.drug_history_plan(session, "37010000000000000001", begin, None)
            assert not [step for step in plan if "Seq Scan" in step], plan
            assert any("settlement" in step and "psn_no" in step for step in plan), plan
        else:
            plan = queries.drug_history_plan(session, "37010000000000000001", begin, None)
            assert not [step for step in plan if step.startswith("SCAN ") and "USING" not in step], plan
            assert any(step.startswith("SEARCH settlement USING INDEX ix_settlement_psn_no_year (psn_no=?)") for step in plan), plan
            assert any(step.startswith("SEARCH fee_line USING INDEX ix_fee_line_setl_id (setl_id=?)") for step in plan), plan
