"""Inpatient: admission, fee lines, mid-stay settlement, discharge, settlement, reversal; second admission's deductible."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from flows import catalogue_codes, cert, fee, ok, person_with, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter.models import Visit


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def admit(counter: CounterClient, person, insutype: str = "310") -> str:  # type: ignore[no-untyped-def]
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": insutype, **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900", "diag_name": "急性阑尾炎"}]}))
    return out["result"]["mdtrt_id"]


def settle_data(person, mdtrt_id: str, total: str, *, mid: str = "0") -> dict:  # type: ignore[no-untyped-def]
    return {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal(total), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
                     "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": mid}}


def test_inpatient_stay_with_mid_stay_settlement(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False, skip=set())
    mdtrt_id = admit(counter, person)
    twice = counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now())}})
    assert twice["infcode"] == -1 and "already admitted" in twice["err_msg"]
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "600.00")]}))
    early = counter.call("2304", settle_data(person, mdtrt_id, "600.00"))
    assert early["infcode"] == -1 and "discharge it" in early["err_msg"]
    # mid-stay settlement: the level-3 deductible (1,000) takes the whole 600 in scope
    mid = ok(counter.call("2304", settle_data(person, mdtrt_id, "600.00", mid="1")))["setlinfo"]
    assert Decimal(str(mid["act_pay_dedc"])) == Decimal("600.00") and mid["clr_type"] == "21"
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "1400.00")]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    pre = ok(counter.call("2303", settle_data(person, mdtrt_id, "1400.00")))["setlinfo"]
    final = ok(counter.call("2304", settle_data(person, mdtrt_id, "1400.00")))["setlinfo"]
    assert pre["hifp_pay"] == final["hifp_pay"]
    # the same admission: only the remaining 400 of the deductible, then 85% of 1,000
    assert Decimal(str(final["act_pay_dedc"])) == Decimal("400.00") and Decimal(str(final["hifp_pay"])) == Decimal("850.00")
    with db.unit_of_work(write=False) as session:
        assert session.get(Visit, mdtrt_id).status == "settled"
    undo = counter.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}})
    assert undo["infcode"] == -1
    back = ok(counter.call("2305", {"data": {"setl_id": final["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))["setlinfo"]
    assert Decimal(str(back["hifp_pay"])) == Decimal("-850.00")
    with db.unit_of_work(write=False) as session:
        assert session.get(Visit, mdtrt_id).status == "discharged"
    again = ok(counter.call("2304", settle_data(person, mdtrt_id, "1400.00")))["setlinfo"]
    assert again["hifp_pay"] == final["hifp_pay"]

    # a second admission in the year pays half the deductible
    second = admit(counter, person)
    ok(counter.call("2301", {"feedetail": [fee(second, person.psn_no, codes["jia"], "2000.00")]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": second, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now())}}))
    out = ok(counter.call("2304", settle_data(person, second, "2000.00")))["setlinfo"]
    assert Decimal(str(out["act_pay_dedc"])) == Decimal("500.00")


def test_cancel_admission_and_discharge(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "390")
    mdtrt_id = admit(counter, person, "390")
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now())}}))
    ok(counter.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["yi"], "100.00")]}))
    ok(counter.call("2302", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "feedetl_sn": "0000"}}))
    ok(counter.call("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}))
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(Visit.status).where(Visit.mdtrt_id == mdtrt_id)) == "cancelled"
    gone = counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["yi"], "100.00")]})
    assert gone["infcode"] == -1 and "cancelled" in gone["err_msg"]


def test_an_inpatient_fee_line_lies_within_the_admission(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    person = person_with(db, "310", retired=True)
    mdtrt_id = admit(counter, person)
    line = fee(mdtrt_id, person.psn_no, codes["jia"], "100.00")
    line["fee_ocur_time"] = clock.fmt_datetime(clock.now() - timedelta(days=2))
    before = counter.call("2301", {"feedetail": [line]})
    assert before["infcode"] == -1 and before["err_msg"].startswith("input.feedetail[0].fee_ocur_time:"), before["err_msg"]
    assert "before the visit began" in before["err_msg"]
    line["fee_ocur_time"] = clock.fmt_datetime(clock.now() + timedelta(hours=1))
    ahead = counter.call("2301", {"feedetail": [line]})
    assert ahead["infcode"] == -1 and "in the future" in ahead["err_msg"]
    line["fee_ocur_time"] = clock.fmt_datetime(clock.now())
    ok(counter.call("2301", {"feedetail": [line]}))
