"""Filing for care away from home (异地就医备案, issue 12 item 1): the counter's 2501/2502, the person's REST API, the
ratio of a settlement in another province with and without a filing in force, and 2001's "21" finding."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from conftest import secret_of
from flows import cert, fee, ok, person_with, serial, signed_in
from yibao.client import CounterClient
from yibao.core import clock
from yibao.filing.models import CareAwayFiling
from yibao.policy.service import policy_for
from yibao.registry.models import Institution

USED: set[str] = set()


def someone(db, region: str = "370100"):  # type: ignore[no-untyped-def]
    person = person_with(db, "310", region=region, retired=False, skip=USED)
    USED.add(person.psn_no)
    return person


@pytest.fixture
def shenzhen(http, db) -> CounterClient:  # type: ignore[no-untyped-def]
    """A signed-in counter of a hospital of 440300 (another province for the people of 370100)."""
    with db.unit_of_work(write=False) as session:
        code = session.scalar(select(Institution.fixmedins_code).where(Institution.admdvs.like("4403%"),
                                                                       Institution.fixmedins_code.like("H%"))
                              .order_by(Institution.fixmedins_code).limit(1))
    assert code
    client = CounterClient("http://testserver", code, secret_of(code), http=http, mdtrtarea_admvs="440300")
    ok(client.sign_in())
    return client


def referral(person, **extra) -> dict:  # type: ignore[no-untyped-def]
    today = clock.today()
    return {"refmedin": {"psn_no": person.psn_no, "insutype": "310", "tel": "13800000000", "addr": "济南市历下区", "insu_optins": "370100",
                         "diag_code": "C34.900", "diag_name": "肺恶性肿瘤", "dise_cond_dscr": "", "reflin_medins_no": "H44030000001",
                         "reflin_medins_name": "深圳市人民医院", "mdtrtarea_admdvs": "440300", "hosp_agre_refl_flag": "1", "refl_type": "2",
                         "refl_date": today.isoformat(), "refl_rea": "本院无法诊治", "refl_opnn": "同意转院", "begndate": "",
                         "enddate": (today + timedelta(days=90)).isoformat(), **extra}}


def presettle(counter: CounterClient, person, lines: list[tuple[str, str]]) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                             **cert(person), "ipt_otp_no": serial("MZ"), "atddr_no": "D44030000001", "dr_name": "医生",
                                             "dept_code": "A03", "dept_name": "内科", "caty": "A03", "med_type": "11"}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]}))
    return mdtrt_id, settle(counter, person, mdtrt_id, lines, post=False)


def settle(counter: CounterClient, person, mdtrt_id: str, lines, *, post: bool) -> dict:  # type: ignore[no-untyped-def]
    data = {"psn_no": person.psn_no, **cert(person), "med_type": "11", "medfee_sumamt": sum(Decimal(a) for _, a in lines),
            "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    return ok(counter.call("2207" if post else "2206", {"data": data}))["setlinfo"]


def figures(setlinfo: dict) -> tuple:  # type: ignore[type-arg]
    """What the ratio moves (the settlement numbers aside)."""
    return tuple(str(setlinfo[k]) for k in ("hifp_pay", "fund_pay_sumamt", "psn_cash_pay", "act_pay_dedc", "inscp_scp_amt"))


def check(counter: CounterClient, person) -> dict:  # type: ignore[no-untyped-def]
    rows = ok(counter.call("2001", {"data": {"psn_no": person.psn_no, "insutype": "310", "fixmedins_code": counter.fixmedins_code,
                                             "med_type": "11", "begntime": clock.fmt_datetime(clock.now())}}))["trtinfo"]
    return {row["trt_chk_type"]: row for row in rows}


def file_in_app(db, person, filing_type: str = "1", target: str = "440300", **extra):  # type: ignore[no-untyped-def]
    """A filing made as the app makes it (the service the REST API calls)."""
    from yibao.filing import service

    with db.unit_of_work() as session:
        row = service.file(session, service.Request(psn_no=person.psn_no, insutype="", filing_type=filing_type, target_admdvs=target,
                                                     begndate=extra.get("begndate", clock.today()), enddate=extra.get("enddate")),
                           source=service.FROM_APP, where="")
        return row.trt_dcla_detl_sn


# -- the counter ---------------------------------------------------------------------------------------------------------

def test_2501_files_a_referral_and_2502_cancels_it(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    sn = ok(counter.call("2501", referral(person)))["result"]["trt_dcla_detl_sn"]
    assert len(sn) == 30 and sn.startswith("370100")
    with db.unit_of_work(write=False) as session:
        row = session.get(CareAwayFiling, sn)
        assert (row.filing_type, row.target_admdvs, row.status, row.dcla_souc, row.fixmedins_code) == \
            ("3", "440300", "active", "01", counter.fixmedins_code)
        assert row.begndate == clock.today() and row.refl_opnn == "同意转院"
    # one filing in force per person and target
    again = counter.call("2501", referral(person))
    assert again["infcode"] == -1 and again["err_msg"].startswith("input.refmedin.mdtrtarea_admdvs:") and sn in again["err_msg"]
    ok(counter.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": "患者放弃转院"}}))
    with db.unit_of_work(write=False) as session:
        row = session.get(CareAwayFiling, sn)
        assert row.status == "cancelled" and row.cancel_memo == "患者放弃转院" and row.cancelled_at is not None
    twice = counter.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": ""}})
    assert twice["infcode"] == -1 and "已于" in twice["err_msg"]
    # after the cancellation a new referral to the same place may be filed
    ok(counter.call("2501", referral(person)))


def test_2501_and_2502_refuse_bad_input_naming_the_field(counter: CounterClient, shenzhen: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    cases = {
        "input.refmedin.diag_code": referral(person, diag_code=""),
        "input.refmedin.mdtrtarea_admdvs": referral(person, mdtrtarea_admdvs="44"),
        "input.refmedin.refl_date": referral(person, refl_date="tomorrow"),
        "input.refmedin.insu_optins": referral(person, insu_optins="440300"),
        "input.refmedin.enddate": referral(person, enddate="2000-01-01"),
        "input.refmedin.psn_no": referral(person, psn_no="nobody"),
    }
    for field, body in cases.items():
        answer = counter.call("2501", body)
        assert answer["infcode"] == -1 and answer["err_msg"].startswith(f"{field}:"), (field, answer)
    # a place inside the insured region needs no filing
    home = counter.call("2501", referral(person, mdtrtarea_admdvs="370000", reflin_medins_no="H37999999999"))
    assert home["infcode"] == -1 and home["err_msg"].startswith("input.refmedin.mdtrtarea_admdvs:") and "无需备案" in home["err_msg"]
    # an institution this node knows must lie in the target region
    with db.unit_of_work(write=False) as session:
        jinan = session.scalar(select(Institution.fixmedins_code).where(Institution.admdvs.like("3701%")).limit(1))
    wrong = counter.call("2501", referral(person, reflin_medins_no=jinan))
    assert wrong["infcode"] == -1 and wrong["err_msg"].startswith("input.refmedin.mdtrtarea_admdvs:")
    sn = ok(counter.call("2501", referral(person)))["result"]["trt_dcla_detl_sn"]
    # only the filing institution cancels, and only the person's own filing
    other = shenzhen.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no}})
    assert other["infcode"] == -1 and other["err_msg"].startswith("input.data.trt_dcla_detl_sn:")
    stranger = counter.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": someone(db).psn_no}})
    assert stranger["infcode"] == -1 and stranger["err_msg"].startswith("input.data.psn_no:")
    missing = counter.call("2502", {"data": {"psn_no": person.psn_no}})
    assert missing["infcode"] == -1 and "trt_dcla_detl_sn" in missing["err_msg"]


# -- settlement and 2001 -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lines(db) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from flows import catalogue_codes

    codes = catalogue_codes(db)
    # in-scope care well above any outpatient deductible, so the pooled fund pays
    return [(codes["jia"], "3000.00")]


def reduction(kind: str = "unfiled") -> Decimal:
    """What the insured region's policy takes off the ratio of care in another province: unfiled, or under a referral."""
    return Decimal(str(policy_for("370100", "310", "in_service", clock.today()).get(f"pool_ratio.{kind}_reduction.all")))


def test_a_filing_in_force_gives_the_full_ratio_a_trip_or_none_the_reduced_one(shenzhen: CounterClient, db, lines) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id, unfiled = presettle(shenzhen, person, lines)
    assert "21" in check(shenzhen, person) and "未备案" in check(shenzhen, person)["21"]["trt_chk_rslt"]
    # a temporary trip is filed, but settles as unfiled care
    trip = file_in_app(db, person, "4", "440000")
    assert figures(settle(shenzhen, person, mdtrt_id, lines, post=False)) == figures(unfiled)
    found = check(shenzhen, person)["21"]
    assert "其他临时外出就医" in found["trt_chk_rslt"] and "降低" in found["trt_chk_rslt"] and trip in found["trt_chk_rslt"]
    # long-term residence in the city of care: the full ratio
    residence = file_in_app(db, person, "1", "440300")
    filed = settle(shenzhen, person, mdtrt_id, lines, post=False)
    base = Decimal(str(filed["inscp_scp_amt"])) - Decimal(str(filed["act_pay_dedc"]))
    assert base > 0 and Decimal(str(unfiled["act_pay_dedc"])) == Decimal(str(filed["act_pay_dedc"]))
    difference = Decimal(str(filed["hifp_pay"])) - Decimal(str(unfiled["hifp_pay"]))
    assert difference > 0
    assert abs(difference - (base * reduction()).quantize(Decimal("0.01"))) <= Decimal("0.01"), (filed, unfiled)
    found = check(shenzhen, person)["21"]
    assert found["trt_enjymnt_flag"] == "1" and "异地长期居住" in found["trt_chk_rslt"] and "长期有效" in found["trt_chk_rslt"]
    assert residence in found["trt_chk_rslt"]
    # the settlement posts at the full ratio
    posted = settle(shenzhen, person, mdtrt_id, lines, post=True)
    assert posted["hifp_pay"] == filed["hifp_pay"]


def test_a_cancelled_or_expired_filing_or_one_for_elsewhere_is_reduced(shenzhen: CounterClient, counter: CounterClient, db,
                                                                       lines) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    mdtrt_id, unfiled = presettle(shenzhen, person, lines)
    # a filing for another province changes nothing here
    file_in_app(db, person, "2", "110000")
    assert figures(settle(shenzhen, person, mdtrt_id, lines, post=False)) == figures(unfiled)
    # a referral in force: the policy's referral reduction (temporary care, at most 10 points), less than unfiled care's;
    # cancelled: the unfiled reduction again
    sn = ok(counter.call("2501", referral(person)))["result"]["trt_dcla_detl_sn"]
    referred = settle(shenzhen, person, mdtrt_id, lines, post=False)
    base = Decimal(str(referred["inscp_scp_amt"])) - Decimal(str(referred["act_pay_dedc"]))
    gained = Decimal(str(referred["hifp_pay"])) - Decimal(str(unfiled["hifp_pay"]))
    assert abs(gained - (base * (reduction() - reduction("referral"))).quantize(Decimal("0.01"))) <= Decimal("0.01"), (referred, unfiled)
    assert "异地转诊" in check(shenzhen, person)["21"]["trt_chk_rslt"] and "转诊备案降低" in check(shenzhen, person)["21"]["trt_chk_rslt"]
    ok(counter.call("2502", {"data": {"trt_dcla_detl_sn": sn, "psn_no": person.psn_no, "memo": ""}}))
    assert figures(settle(shenzhen, person, mdtrt_id, lines, post=False)) == figures(unfiled)
    # a posted-to-work filing that ended yesterday: reduced
    today = clock.today()
    sn = file_in_app(db, person, "2", "440000", begndate=today - timedelta(days=20), enddate=today + timedelta(days=20))
    posted = settle(shenzhen, person, mdtrt_id, lines, post=False)
    assert abs(Decimal(str(posted["hifp_pay"])) - Decimal(str(unfiled["hifp_pay"])) - (base * reduction()).quantize(Decimal("0.01"))) \
        <= Decimal("0.01"), (posted, unfiled)
    with db.unit_of_work() as session:
        session.execute(update(CareAwayFiling).where(CareAwayFiling.trt_dcla_detl_sn == sn).values(enddate=today - timedelta(days=1)))
    assert figures(settle(shenzhen, person, mdtrt_id, lines, post=False)) == figures(unfiled)
    assert "未备案" in check(shenzhen, person)["21"]["trt_chk_rslt"]


# -- the person's REST API ---------------------------------------------------------------------------------------------------



def test_the_person_files_lists_and_cancels_in_the_app_api(http, db) -> None:  # type: ignore[no-untyped-def]
    person = someone(db)
    auth = signed_in(http, person)
    options = http.get("/api/v1/filing-options", headers=auth).json()
    assert [t["code"] for t in options["types"]] == ["1", "2", "4"] and "440300" in options["regions"] and "440000" in options["regions"]
    base = f"/api/v1/people/{person.psn_no}/filings"
    made = http.post(base, headers=auth, json={"filing_type": "4", "target_admdvs": "440000", "reason": "探亲"})
    assert made.status_code == 201, made.text
    trip = made.json()
    assert trip["filing_type_name"] == "其他临时外出就医" and trip["state"] == "有效" and not trip["full_ratio"]
    assert trip["enddate"] == (clock.today() + timedelta(days=183)).isoformat() and trip["may_cancel"]
    listed = http.get(base, headers=auth).json()
    assert [f["trt_dcla_detl_sn"] for f in listed] == [trip["trt_dcla_detl_sn"]]
    # refusals are Chinese and name the field
    for body, field in (({"filing_type": "3", "target_admdvs": "440300"}, "filing_type"),
                        ({"filing_type": "1", "target_admdvs": "370100"}, "target_admdvs"),
                        ({"filing_type": "1", "target_admdvs": "abc"}, "target_admdvs"),
                        ({"filing_type": "4", "target_admdvs": "440000"}, "target_admdvs"),
                        ({"filing_type": "1", "target_admdvs": "440300", "enddate": "明天"}, "enddate"),
                        ({"target_admdvs": "440300"}, "filing_type")):
        refused = http.post(base, headers=auth, json=body)
        assert refused.status_code in (400, 409) and refused.json()["field"] == field, (body, refused.text)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.json()["detail"]), refused.text
    cancelled = http.post(f"{base}/{trip['trt_dcla_detl_sn']}/cancel", headers=auth, json={"memo": "行程取消"})
    assert cancelled.status_code == 201 and cancelled.json()["state"] == "已撤销" and not cancelled.json()["may_cancel"]
    again = http.post(f"{base}/{trip['trt_dcla_detl_sn']}/cancel", headers=auth, json={})
    assert again.status_code == 409 and "已于" in again.json()["detail"]
    # another person's filings are not mine to see or cancel
    stranger = someone(db)
    theirs = file_in_app(db, stranger, "1", "440300")
    assert http.get(f"/api/v1/people/{stranger.psn_no}/filings", headers=auth).status_code in (403, 404)
    assert http.post(f"{base}/{theirs}/cancel", headers=auth, json={}).status_code == 404
    assert http.get(base).status_code == 401
