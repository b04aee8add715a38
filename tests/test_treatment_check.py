"""2001 人员待遇享受检查: before registering, may this person be treated under this insurance and medical type here?
(issue 10, item 4). Each failed check is a trtinfo row with its code, name and message; all well is an empty list."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, select

from flows import cert, ok, person_with, registered_disease, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.registry.models import Contribution, Enrolment, Person

PATH = "/fsi/api/fsiPsnPriorityInfoService/queryPsnPriorityInfo"
USED: set[str] = set()


def someone(db, insutype: str = "310", **kwargs):  # type: ignore[no-untyped-def]
    person = person_with(db, insutype, skip=USED, **kwargs)
    USED.add(person.psn_no)
    return person


def check_input(person, insutype: str = "310", med_type: str = "11", **extra) -> dict:  # type: ignore[no-untyped-def]
    now = clock.now()
    return {"data": {"psn_no": person.psn_no, "insutype": insutype, "fixmedins_code": "H37010000001", "med_type": med_type,
                     "begntime": clock.fmt_datetime(now), "endtime": "", "dise_codg": "", "dise_name": "", "oprn_oprt_code": "",
                     "oprn_oprt_name": "", "matn_type": "", "birctrl_type": "", **extra}}


def checks(counter: CounterClient, body: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = ok(counter.call("2001", body))["trtinfo"]
    for row in rows:
        assert set(row) >= {"psn_no", "trt_chk_type", "trt_chk_type_name", "fund_pay_type", "trt_enjymnt_flag", "begndate", "enddate",
                            "trt_chk_rslt"}, row
        assert row["trt_enjymnt_flag"] in ("0", "1") and row["trt_chk_rslt"] and row["begndate"] and row["enddate"]
    return {row["trt_chk_type"]: row for row in rows}


def test_all_well_is_an_empty_list_on_the_clients_path(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from conftest import HOSPITAL, secret_of
    from helpers import encode, post_signed

    person = someone(db, "310", retired=False)
    answer = post_signed(http, encode(counter.envelope("2001", check_input(person))), HOSPITAL, secret_of(HOSPITAL), path=PATH)
    assert answer["infcode"] == 0, answer["err_msg"]
    assert answer["output"] == {"trtinfo": []}
    resident = someone(db, "390")
    assert checks(counter, check_input(resident, "390")) == {}


def test_insurance_not_held_and_enrolment_paused(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    resident = someone(db, "390")
    found = checks(counter, check_input(resident, "310"))
    assert list(found) == ["12"] and found["12"]["trt_enjymnt_flag"] == "0" and found["12"]["fund_pay_type"] == "310100"
    assert found["12"]["trt_chk_type_name"] == "险种参保" and "310" in found["12"]["trt_chk_rslt"]
    with db.unit_of_work(write=False) as session:
        paused = session.scalars(select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                 .where(Enrolment.insutype.in_(("310", "390")), Enrolment.psn_insu_stas == "2")).first()
        insutype = session.scalar(select(Enrolment.insutype).where(Enrolment.psn_no == paused.psn_no,
                                                                   Enrolment.insutype.in_(("310", "390"))))
    found = checks(counter, check_input(paused, insutype))
    assert found["11"]["trt_enjymnt_flag"] == "0" and "暂停" in found["11"]["trt_chk_rslt"]
    # a day before the pause the person was insured: that check passes
    with db.unit_of_work(write=False) as session:
        since = session.scalar(select(Enrolment.paus_insu_date).where(Enrolment.psn_no == paused.psn_no, Enrolment.insutype == insutype))
    earlier = check_input(paused, insutype, begntime=f"{since - timedelta(days=1)} 09:00:00")
    assert "11" not in checks(counter, earlier)


def test_contribution_arrears(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    employee = someone(db, "310", retired=False)
    today = clock.today()
    months = []
    first = today.replace(day=1)
    for _ in range(3):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(f"{first:%Y%m}")
    with db.unit_of_work() as session:
        session.execute(delete(Contribution).where(Contribution.psn_no == employee.psn_no, Contribution.cntr_ym == months[0]))
    one_missing = checks(counter, check_input(employee))
    assert one_missing["13"]["trt_enjymnt_flag"] == "1" and months[0] in one_missing["13"]["trt_chk_rslt"]
    with db.unit_of_work() as session:
        session.execute(delete(Contribution).where(Contribution.psn_no == employee.psn_no, Contribution.cntr_ym.in_(months)))
    all_missing = checks(counter, check_input(employee))
    assert all_missing["13"]["trt_enjymnt_flag"] == "0" and all_missing["13"]["fund_pay_type"] == "310100"
    # retirees contribute nothing: no arrears
    retiree = someone(db, "310", retired=True)
    with db.unit_of_work() as session:
        session.execute(delete(Contribution).where(Contribution.psn_no == retiree.psn_no))
    assert "13" not in checks(counter, check_input(retiree))
    # residents pay for the year of care
    resident = someone(db, "390")
    with db.unit_of_work() as session:
        session.execute(delete(Contribution).where(Contribution.psn_no == resident.psn_no, Contribution.insutype == "390"))
    unpaid = checks(counter, check_input(resident, "390"))
    assert unpaid["13"]["trt_enjymnt_flag"] == "0" and str(today.year) in unpaid["13"]["trt_chk_rslt"]


def test_care_away_from_home_without_a_filing_is_a_warning(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    shenzhen = someone(db, "310", region="440300", retired=False)
    found = checks(counter, check_input(shenzhen))
    assert list(found) == ["21"] and found["21"]["trt_enjymnt_flag"] == "1" and "跨省" in found["21"]["trt_chk_rslt"]


def test_chronic_care_needs_a_registration(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from yibao.chronic.models import ChronicRegistration

    with db.unit_of_work(write=False) as session:
        registered = set(session.scalars(select(ChronicRegistration.psn_no)))
    person = person_with(db, "310", retired=False, skip=USED | registered)
    USED.add(person.psn_no)
    unregistered = checks(counter, check_input(person, med_type="14", dise_codg="M03900"))
    assert unregistered["31"]["trt_enjymnt_flag"] == "0" and "M03900" in unregistered["31"]["trt_chk_rslt"]
    registered_disease(counter, person, "310", "M03900")
    assert checks(counter, check_input(person, med_type="14", dise_codg="M03900")) == {}
    assert checks(counter, check_input(person, med_type="14")) == {}  # some registration stands
    other = checks(counter, check_input(person, med_type="14", dise_codg="M01600"))
    assert other["31"]["trt_enjymnt_flag"] == "0"


def test_a_stay_still_open_at_another_hospital(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    person = someone(db, "390")
    elsewhere = CounterClient("http://testserver", "H37010000002", secret_of("H37010000002"), http=http)
    ok(elsewhere.sign_in())
    stay = ok(elsewhere.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "390", **cert(person), "med_type": "21",
                                                    "ipt_no": serial("ZY"),
                                                    "begntime": clock.fmt_datetime(clock.now())}}))["result"]["mdtrt_id"]
    found = checks(counter, check_input(person, "390"))
    assert list(found) == ["41"] and found["41"]["trt_enjymnt_flag"] == "0" and stay in found["41"]["trt_chk_rslt"]
    ok(elsewhere.call("2404", {"data": {"mdtrt_id": stay, "psn_no": person.psn_no}}))
    assert checks(counter, check_input(person, "390")) == {}


def test_bad_input_names_the_field(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = someone(db, "390")
    body = check_input(person, "390")
    del body["data"]["psn_no"]
    missing = counter.call("2001", body)
    assert missing["infcode"] == -1 and missing["err_msg"].startswith("input.data.psn_no:")
    bad_time = counter.call("2001", check_input(person, "390", begntime="yesterday"))
    assert bad_time["infcode"] == -1 and bad_time["err_msg"].startswith("input.data.begntime:")
    stranger = counter.call("2001", check_input(person, "390", fixmedins_code="H37019999999"))
    assert stranger["infcode"] == -1 and stranger["err_msg"].startswith("input.data.fixmedins_code:")
    assert date.today()  # the checks above ran on the platform's clock


def test_the_checks_are_a_pure_function_of_the_facts() -> None:
    from yibao.encounter.treatment import Enrolled, Facts, assess, months_before

    day = date(2026, 3, 15)
    assert months_before(day, 3) == ["202602", "202601", "202512"]
    employee = Enrolled("310", "1101", "1", date(2026, 1, 20), None, "370100")
    base = Facts(insutype="310", med_type="11", day=day, enrolments=(employee,), paid_months=frozenset({"202602"}), arrears_months=3,
                 institution_admdvs="370100", dise_codg="", registered=frozenset(), open_stays=())
    # enrolled in January: December is not due; January unpaid of the two due months is a warning only
    (arrears,) = assess(base)
    assert (arrears.code, arrears.enjoyed, "202601" in arrears.message, "202512" in arrears.message) == ("13", True, True, False)
    later = Enrolled("310", "1101", "1", date(2026, 4, 1), None, "370100")
    (not_yet,) = assess(Facts(**{**base.__dict__, "enrolments": (later,)}))
    assert (not_yet.code, not_yet.enjoyed) == ("11", False)
    same_province = assess(Facts(**{**base.__dict__, "paid_months": frozenset({"202601", "202602"}), "institution_admdvs": "370200"}))
    assert [(f.code, f.enjoyed, "省内" in f.message) for f in same_province] == [("21", True, True)]
