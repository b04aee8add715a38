"""Chronic and special diseases (门诊慢特病): the 1309 catalogue, 2503/2504 registrations, 5301, settlement with med_type 14
by the disease's own deductible, ratio and annual cap, reversal, 5205 (issue 10, item 5)."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from flows import catalogue_codes, ok, person_with, register, settle_input, upload
from yibao.chronic.models import ChronicRegistration
from yibao.client import CounterClient
from yibao.core import clock
from yibao.ledger.models import ChronicYearTotal, YearTotal
from yibao.reconciliation.books import check

USED: set[str] = set()


def d(value) -> Decimal:  # type: ignore[no-untyped-def]
    return Decimal(str(value))


@pytest.fixture(scope="module")
def codes(db):  # type: ignore[no-untyped-def]
    return catalogue_codes(db)


def someone(db, insutype: str = "310", region: str = "370100"):  # type: ignore[no-untyped-def]
    """A person without a registration of their own (the demo seeds some) whom no other test of the module uses."""
    with db.unit_of_work(write=False) as session:
        registered = set(session.scalars(select(ChronicRegistration.psn_no)))
    person = person_with(db, insutype, region=region, retired=False if insutype == "310" else None, skip=USED | registered)
    USED.add(person.psn_no)
    return person


def filing(person, code: str, *, insutype: str = "310", begndate: str = "", enddate: str = "", region: str = "370100") -> dict:  # type: ignore[no-untyped-def]
    today = clock.today()
    return {"data": {"psn_no": person.psn_no, "insutype": insutype, "opsp_dise_code": code, "opsp_dise_name": "", "tel": "13800000000",
                     "addr": "济南市历下区", "insu_optins": region, "ide_fixmedins_no": "H37010000001",
                     "ide_fixmedins_name": "济南市第1人民医院",
                     "hosp_ide_date": (today - timedelta(days=30)).isoformat(), "diag_dr_codg": "D37010000001", "diag_dr_name": "医生",
                     "begndate": begndate or (today - timedelta(days=10)).isoformat(), "enddate": enddate}}


def chronic_visit(counter: CounterClient, person, code: str, lines, *, insutype: str = "310", post: bool = True) -> dict:  # type: ignore[no-untyped-def]
    mdtrt_id = register(counter, person, insutype, med_type="14")
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14", "dise_codg": code,
                                           "dise_name": "", "begntime": clock.fmt_datetime(clock.now())},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "高血压"}]}))
    upload(counter, mdtrt_id, person, lines)
    total = str(sum(Decimal(a) for _, a in lines))
    ok(counter.call("2206", settle_input(person, mdtrt_id, insutype, total, med_type="14")))
    if not post:
        return {"mdtrt_id": mdtrt_id}
    return ok(counter.call("2207", settle_input(person, mdtrt_id, insutype, total, med_type="14")))["setlinfo"]


def chronic_total(db, psn_no: str, code: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        row = session.get(ChronicYearTotal, (psn_no, clock.now().year, code))
        return (row.dedc, row.hifp) if row else (0, 0)


def test_the_1309_catalogue_downloads_like_the_other_13xx(counter: CounterClient) -> None:
    answer = ok(counter.call("1309", {"data": {"ver": "0"}}))
    assert answer["data_cnt"] >= 12
    fetched = counter.call("9102", {"fsDownloadIn": {"file_qury_no": answer["file_qury_no"], "filename": answer["filename"],
                                                     "fixmedins_code": "plc"}})
    archive = zipfile.ZipFile(io.BytesIO(fetched["file"]))
    header, *rows = archive.read(archive.namelist()[0]).decode().splitlines()
    assert header.split("\t")[:3] == ["opsp_dise_code", "opsp_dise_name", "opsp_dise_majcls_name"]
    assert "M03900\t高血压病\t门诊慢病" in rows[0] or any(r.startswith("M03900\t高血压病\t门诊慢病") for r in rows)


def test_a_registration_is_filed_listed_and_cancelled(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    sn = ok(counter.call("2503", filing(person, "M01600")))["result"]["trt_dcla_detl_sn"]
    assert len(sn) == 30
    listed = ok(counter.call("5301", {"data": {"psn_no": person.psn_no}}))["feedetail"]
    assert [(x["opsp_dise_code"], x["opsp_dise_name"], x["enddate"], x["trt_dcla_detl_sn"]) for x in listed] == [("M01600", "糖尿病", None,
                                                                                                                  sn)]
    assert listed[0]["begndate"] == (clock.today() - timedelta(days=10)).isoformat()
    again = counter.call("2503", filing(person, "M01600"))
    assert again["infcode"] == -1 and again["err_msg"].startswith("input.data.opsp_dise_code:") and sn in again["err_msg"]
    ok(counter.call("2504", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": "诊断有误"}}))
    assert ok(counter.call("5301", {"data": {"psn_no": person.psn_no}}))["feedetail"] == []
    twice = counter.call("2504", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": "x"}})
    assert twice["infcode"] == -1 and twice["err_msg"].startswith("input.data.trt_dcla_detl_sn:")
    # after the cancellation the disease may be registered again
    ok(counter.call("2503", filing(person, "M01600")))


def test_registration_refusals_name_the_field(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    person = someone(db)
    cases = {
        "opsp_dise_code": filing(person, "I10.x00"),  # a diagnosis code, not a 1309 disease
        "enddate": filing(person, "M03900", begndate=(clock.today() - timedelta(days=5)).isoformat(),
                          enddate=(clock.today() - timedelta(days=6)).isoformat()),
        "begndate": filing(person, "M03900", begndate=(clock.today() - timedelta(days=60)).isoformat()),  # before the assessment
        "insutype": filing(person, "M03900", insutype="390"),
        "insu_optins": filing(person, "M03900", region="440300"),
    }
    unknown_assessor = filing(person, "M03900")
    unknown_assessor["data"]["ide_fixmedins_no"] = "H37019999999"
    cases["ide_fixmedins_no"] = unknown_assessor
    no_name = filing(person, "M03900")
    del no_name["data"]["diag_dr_name"]
    cases["diag_dr_name"] = no_name
    for field, body in cases.items():
        answer = counter.call("2503", body)
        assert answer["infcode"] == -1 and answer["err_msg"].startswith(f"input.data.{field}:"), (field, answer["err_msg"])
    # the insured region must pay the disease as chronic care: 440300's policy has no 再生障碍性贫血 (M01102)
    shenzhen = someone(db, region="440300")
    outside = counter.call("2503", filing(shenzhen, "M01102", region="440300"))
    assert outside["infcode"] == -1 and outside["err_msg"].startswith("input.data.opsp_dise_code:") and "440300" in outside["err_msg"]
    # only the filing institution cancels, and only for the right person
    sn = ok(counter.call("2503", filing(person, "M03900")))["result"]["trt_dcla_detl_sn"]
    other = CounterClient("http://testserver", "H37010000002", secret_of("H37010000002"), http=http)
    ok(other.sign_in())
    foreign = other.call("2504", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": "x"}})
    assert foreign["infcode"] == -1 and foreign["err_msg"].startswith("input.data.trt_dcla_detl_sn:")
    wrong_person = counter.call("2504", {"data": {"trt_dcla_detl_sn": sn, "psn_no": shenzhen.psn_no, "memo": "x"}})
    assert wrong_person["infcode"] == -1 and wrong_person["err_msg"].startswith("input.data.psn_no:")


def test_chronic_care_is_settled_by_the_diseases_own_terms(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)  # an employee in service at a level-3 hospital: 800.00 outpatient deductible, 50% outpatient ratio
    ok(counter.call("2503", filing(person, "M03900")))  # 370100 employees: no deductible, 75%, 3,000.00 a year
    first = chronic_visit(counter, person, "M03900", [(codes["jia"], "1000.00")])
    assert (d(first["act_pay_dedc"]), d(first["hifp_pay"]), d(first["pool_prop_selfpay"])) == (0, Decimal("750.00"), Decimal("0.75"))
    assert first["med_type"] == "14"
    assert chronic_total(db, person.psn_no, "M03900") == (0, 75_000)
    with db.unit_of_work(write=False) as session:
        year = session.get(YearTotal, (person.psn_no, clock.now().year))
        assert (year.otp_dedc, year.hifp_otp, year.hifp) == (0, 0, 75_000)  # the general outpatient books did not move
    # the annual cap carries from visit to visit: 2,250.00 of it is left
    second = chronic_visit(counter, person, "M03900", [(codes["jia"], "4000.00")])
    assert d(second["hifp_pay"]) == Decimal("2250.00")
    assert chronic_total(db, person.psn_no, "M03900") == (0, 300_000)
    history = ok(counter.call("5205", {"data": {"psn_no": person.psn_no, "begntime": "2020-01-01 00:00:00"}}))["feedetail"]
    assert [(h["opsp_dise_code"], h["med_list_codg"], h["med_type"]) for h in history] == [("M03900", codes["jia"], "14")] * 2
    assert all(h["fixmedins_code"] == "H37010000001" and h["fixmedins_name"] for h in history)
    query = ok(counter.call("5203", {"data": {"psn_no": person.psn_no, "setl_id": second["setl_id"], "mdtrt_id": second["mdtrt_id"]}}))
    assert query["setlinfo"]["dise_codg"] == "M03900" and query["setlinfo"]["med_type"] == "14"
    # reversing the second visit gives the cap back; settling it again pays the same
    ok(counter.call("2208", {"data": {"setl_id": second["setl_id"], "mdtrt_id": second["mdtrt_id"], "psn_no": person.psn_no}}))
    assert chronic_total(db, person.psn_no, "M03900") == (0, 75_000)
    again = ok(counter.call("2207", settle_input(person, second["mdtrt_id"], "310", "4000.00", med_type="14")))["setlinfo"]
    assert again["hifp_pay"] == second["hifp_pay"]
    with db.unit_of_work(write=False) as session:
        report = check(session)
    assert report.ok, report.problems
    assert report.chronic_rows >= 1


def test_a_special_disease_meets_its_own_deductible_once_a_year(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, "390")  # residents, 370100: 恶性肿瘤放化疗 300.00 deductible, 70%
    ok(counter.call("2503", filing(person, "M00503", insutype="390")))
    first = chronic_visit(counter, person, "M00503", [(codes["jia"], "1000.00")], insutype="390")
    assert (d(first["act_pay_dedc"]), d(first["hifp_pay"])) == (Decimal("300.00"), Decimal("490.00"))
    second = chronic_visit(counter, person, "M00503", [(codes["jia"], "1000.00")], insutype="390")
    assert (d(second["act_pay_dedc"]), d(second["hifp_pay"])) == (0, Decimal("700.00"))
    assert chronic_total(db, person.psn_no, "M00503") == (30_000, 119_000)


def test_med_type_14_needs_a_registration_in_force(counter: CounterClient, db, codes) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id = register(counter, person, "310", med_type="14")
    unregistered = counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14",
                                                       "dise_codg": "M03900"}})
    assert unregistered["infcode"] == -1 and unregistered["err_msg"].startswith("input.mdtrtinfo.dise_codg:")
    # a registration that ended yesterday is not in force today
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    ok(counter.call("2503", filing(person, "M03900", begndate=(clock.today() - timedelta(days=20)).isoformat(), enddate=yesterday)))
    ended = counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14", "dise_codg": "M03900"}})
    assert ended["infcode"] == -1 and ended["err_msg"].startswith("input.mdtrtinfo.dise_codg:")
    # settling med_type 14 without a registered disease on the visit is refused too
    upload(counter, mdtrt_id, person, [(codes["jia"], "50.00")])
    refused = counter.call("2207", settle_input(person, mdtrt_id, "310", "50.00", med_type="14"))
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.data.med_type:")
    # registered today, the same visit settles; a registration cancelled later stops the next settlement
    sn = ok(counter.call("2503", filing(person, "M03900", begndate=clock.today().isoformat())))["result"]["trt_dcla_detl_sn"]
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "14", "dise_codg": "M03900"}}))
    ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "50.00", med_type="14")))
    upload(counter, mdtrt_id, person, [(codes["jia"], "30.00")], batch="B2")
    ok(counter.call("2504", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": "撤销"}}))
    after = counter.call("2207", settle_input(person, mdtrt_id, "310", "30.00", batch="B2", med_type="14"))
    assert after["infcode"] == -1 and after["err_msg"].startswith("input.data.med_type:")


def test_the_demo_seeds_registrations(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        # the people this module's tests filed for are not the demo's (someone() skips anyone registered)
        seeded = session.scalars(select(ChronicRegistration).where(ChronicRegistration.psn_no.not_in(USED))
                                 .order_by(ChronicRegistration.trt_dcla_detl_sn)).all()
    assert len(seeded) >= 5 and {r.opsp_dise_code for r in seeded} >= {"M03900", "M01600"}
    sample = seeded[0]
    listed = ok(counter.call("5301", {"data": {"psn_no": sample.psn_no}}))["feedetail"]
    assert sample.opsp_dise_code in {x["opsp_dise_code"] for x in listed}
