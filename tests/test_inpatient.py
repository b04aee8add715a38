"""Inpatient: admission, fee lines, mid-stay settlement, discharge, settlement, reversal; second admission's deductible."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from flows import catalogue_codes, cert, fee, fresh_person, ok, person_with, serial
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
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                 "diag_name": "急性阑尾炎"}]}))
    return out["result"]["mdtrt_id"]


def settle_data(person, mdtrt_id: str, total: str, *, mid: str = "0") -> dict:  # type: ignore[no-untyped-def]
    return {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal(total), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
                     "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": mid}}


def test_inpatient_stay_with_mid_stay_settlement(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", retired=False)
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
    person = fresh_person(db, "390")
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

    person = fresh_person(db, "310", retired=True)
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


# -- 2403 住院信息变更: an open stay's details change; every client's inpatient walk completes ------------------------

def change(mdtrt_id: str, person, **details):  # type: ignore[no-untyped-def]
    return {"adminfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "insutype": "310", "med_type": "21", **details},
            "diseinfo": [{"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1",
                          "diag_code": "K80.200", "diag_name": "胆囊结石不伴有胆囊炎", "diag_dept": "外科", "dise_dor_no": "D37010000002",
                          "dise_dor_name": "医生", "diag_time": clock.fmt_datetime(clock.now())}]}


def test_2403_changes_an_open_stay(http, counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    from conftest import HOSPITAL, secret_of
    from helpers import encode, post_signed

    person = fresh_person(db, "310", retired=True)
    mdtrt_id = admit(counter, person)
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["jia"], "100.00")]}))
    # the ward and the diagnosis are corrected during the stay, through the per-transaction path clients use
    body = encode(counter.envelope("2403", change(mdtrt_id, person, adm_dept_codg="A05", adm_dept_name="普外科", adm_bed="21",
                                                  dise_codg="K80.200", dise_name="胆囊结石", coner_name="家属", tel="13800000000",
                                                  ipt_otp_no="")))
    answer = post_signed(http, body, HOSPITAL, secret_of(HOSPITAL), path="/fsi/api/hospitalRegisterService/hospitalRegisterEdit")
    assert answer["infcode"] == 0, answer["err_msg"]
    visit = ok(counter.call("5201", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id}}))["mdtrtinfo"][0]
    assert (visit["adm_dept_codg"], visit["adm_dept_name"], visit["adm_bed"]) == ("A05", "普外科", "21")
    assert (visit["dise_codg"], visit["dscg_maindiag_code"], visit["coner_name"], visit["tel"]) == ("K80.200", "K80.200", "家属",
                                                                                                    "13800000000")
    # what a change may not do: end an open stay (2402 does), turn it into outpatient care, or touch another person's stay
    still_open = counter.call("2403", change(mdtrt_id, person, endtime=clock.fmt_datetime(clock.now())))
    assert still_open["infcode"] == -1 and still_open["err_msg"].startswith("input.adminfo.endtime:")
    outpatient = counter.call("2403", change(mdtrt_id, person, med_type="11"))
    assert outpatient["infcode"] == -1 and outpatient["err_msg"].startswith("input.adminfo.med_type:")
    other = person_with(db, "310", retired=True, skip={person.psn_no})
    stranger = counter.call("2403", change(mdtrt_id, other))
    assert stranger["infcode"] == -1 and stranger["err_msg"].startswith("input.adminfo.psn_no:")
    # after discharge the end time may be corrected; once settled the stay is closed to changes
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now())}}))
    ok(counter.call("2403", change(mdtrt_id, person, endtime=clock.fmt_datetime(clock.now()))))
    ok(counter.call("2304", settle_data(person, mdtrt_id, "100.00")))
    closed = counter.call("2403", change(mdtrt_id, person, adm_bed="22"))
    assert closed["infcode"] == -1 and closed["err_msg"].startswith("input.adminfo.mdtrt_id:") and "2305" in closed["err_msg"]


def test_a_cancelled_inpatient_line_can_be_uploaded_again(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "390")
    mdtrt_id = admit(counter, person, "390")
    line = fee(mdtrt_id, person.psn_no, codes["jia"], "80.00")
    ok(counter.call("2301", {"feedetail": [line]}))
    ok(counter.call("2302", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "feedetl_sn": line["feedetl_sn"]}}))
    again = ok(counter.call("2301", {"feedetail": [line]}))["result"]
    assert again[0]["feedetl_sn"] == line["feedetl_sn"]


def test_5201_answers_what_the_stay_was_admitted_and_discharged_with(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", retired=False)
    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()), "coner_name": "配偶",
                                                 "tel": "13900000000", "medrcdno": "BA0001", "adm_diag_dscr": "腹痛", "geso_val": "0",
                                                 "fetts": 2, "oprn_oprt_code": "47.0100", "oprn_oprt_name": "腹腔镜下阑尾切除术"}}))
    mdtrt_id = out["result"]["mdtrt_id"]
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1", "dscg_dept_codg": "A04", "dscg_dept_name": "外科", "dscg_bed": "12",
                                          "cop_flag": "0"}}))
    visit = ok(counter.call("5201", {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id}}))["mdtrtinfo"][0]
    assert (visit["coner_name"], visit["tel"], visit["medrcdno"], visit["fetts"]) == ("配偶", "13900000000", "BA0001", 2)
    assert (visit["oprn_oprt_code"], visit["dscg_dept_codg"], visit["dscg_dept_name"], visit["dscg_bed"]) == ("47.0100", "A04", "外科",
                                                                                                              "12")
    assert visit["ipt_days"] == 0 and visit["inhosp_stas"] == "0" and visit["opter_id"] == counter.opter
    bad = counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                              "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()), "fetts": "two"}})
    assert bad["infcode"] == -1 and bad["err_msg"].startswith("input.mdtrtinfo.fetts:")
