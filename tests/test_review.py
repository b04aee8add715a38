"""Claim review (智能审核): each rule kind through the pure checker, the rule file's checks, 3101/3102 on the gateway,
and settlement (事中) where a line becomes wholly self-paid, one refuses the settlement, and the findings are recorded."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from flows import fee, fresh_person, ok, register, settle_input
from yibao.client import CounterClient
from yibao.core import clock
from yibao.review import checker, rules
from yibao.review.models import ReviewFinding

BOOK = rules.current()
DAY = date(2026, 11, 20)
AT = datetime(2026, 11, 20, 9, 0)

# demo catalogue codes (src/yibao/codes/data/demo_catalog.csv)
TAMSULOSIN = "XG04CAA061A003010237965"      # 坦索罗辛: 限男性 (R0101)
MONTELUKAST = "XR03DCA041A008010698832"     # 孟鲁司特钠咀嚼片: 限14岁及以下 (R0201)
VISIT_FEE = "001102000010000"               # 普通门诊诊查费: 同日不得重复 (R0301)
BED = "001109000010000"                     # 普通病房床位费: 每日1次 (R0401)
MRI = "002102000010000"                     # 磁共振平扫: 限二级及以上 (R0501)
DAPAGLIFLOZIN = "XA10BKA016A002010862237"   # 达格列净: 限糖尿病 (R0601)
METFORMIN = "XA10BAA012A002010407612"       # 二甲双胍: 禁用于慢性肾脏病 (R0901)
AMOXICILLIN = "XJ01CAA001A001010319629"     # 阿莫西林: no rule


def line(code: str, *, key: str = "", cnt: str = "1", amount: int = 1000, day: date = DAY, index: int = 0) -> checker.Line:
    return checker.Line(key or f"L{index}", code, "", Decimal(cnt), amount, day, index)


def claim(*lines: checker.Line, gend: str = "1", age: int = 40, kind: str = "outpatient", hosp_lv: int = 3,
          diagnoses: tuple[str, ...] = ("J06.900",), main: str = "", **more: Any) -> checker.Claim:
    return checker.Claim("P1", "M1", gend, age, kind, hosp_lv, AT, diagnoses, main, tuple(lines), **more)


def fired(c: checker.Claim) -> list[tuple[str, str]]:
    return [(v.rule.rule_id, v.line.key if v.line else "") for v in checker.check(BOOK, c)]


# -- each rule kind, through the pure checker -------------------------------------------------------------------------

def test_sex_restriction() -> None:
    assert fired(claim(line(TAMSULOSIN), gend="2")) == [("R0101", "L0")]
    assert fired(claim(line(TAMSULOSIN), gend="1")) == []


def test_age_restriction() -> None:
    assert fired(claim(line(MONTELUKAST), age=30)) == [("R0201", "L0")]
    assert fired(claim(line(MONTELUKAST), age=8)) == []
    assert fired(claim(line(MONTELUKAST), age=-1)) == []  # unknown age: the rule passes


def test_duplicate_charge_same_day_in_the_claim_and_after_an_earlier_settlement() -> None:
    first, second = line(VISIT_FEE, key="A", index=0), line(VISIT_FEE, key="B", index=1)
    assert fired(claim(first, second)) == [("R0301", "B")]
    assert fired(claim(first, line(VISIT_FEE, key="C", day=DAY + timedelta(days=1)))) == []  # another day
    assert fired(claim(second, earlier_lines=(first,))) == [("R0301", "B")]  # settled before, in the same visit


def test_quantity_limit_per_day() -> None:
    one, two = line(BED, key="D1"), line(BED, key="D1b", index=1)
    assert fired(claim(one, kind="inpatient")) == []
    assert ("R0401", "D1b") in fired(claim(one, two, kind="inpatient"))
    assert fired(claim(line(BED, key="X", cnt="2"), kind="inpatient")) == [("R0401", "X")]


def test_quantity_limit_per_visit() -> None:
    oseltamivir = "XJ05AHA072A001010444147"
    assert fired(claim(line(oseltamivir, cnt="2"))) == []
    assert fired(claim(line(oseltamivir, cnt="2", key="a"), line(oseltamivir, cnt="1", key="b", index=1))) == [("R0402", "b")]


def test_hospital_level_restriction() -> None:
    assert fired(claim(line(MRI), hosp_lv=1)) == [("R0501", "L0")]
    assert fired(claim(line(MRI), hosp_lv=2)) == []


def test_indication_restriction() -> None:
    assert fired(claim(line(DAPAGLIFLOZIN))) == [("R0601", "L0")]
    assert fired(claim(line(DAPAGLIFLOZIN), diagnoses=("E11.900",))) == []


def test_drug_diagnosis_mismatch() -> None:
    assert fired(claim(line(METFORMIN), diagnoses=("E11.900", "N18.900"))) == [("R0901", "L0")]
    assert fired(claim(line(METFORMIN), diagnoses=("E11.900",))) == []


def test_split_admission_and_readmission() -> None:
    before = checker.Stay("M0", "I63.900", AT - timedelta(days=5))
    both = fired(claim(line(AMOXICILLIN), kind="inpatient", main="I63.901", previous_stays=(before,)))
    assert both == [("R0701", ""), ("R0801", "")]
    other = checker.Stay("M0", "J18.900", AT - timedelta(days=5))
    assert fired(claim(line(AMOXICILLIN), kind="inpatient", main="I63.900", previous_stays=(other,))) == [("R0801", "")]
    long_ago = checker.Stay("M0", "I63.900", AT - timedelta(days=40))
    assert fired(claim(line(AMOXICILLIN), kind="inpatient", main="I63.900", previous_stays=(long_ago,))) == []
    assert fired(claim(line(AMOXICILLIN), kind="outpatient", main="I63.900", previous_stays=(before,))) == []


def test_one_pass_over_many_lines_finds_each_violation_once() -> None:
    lines = [line(AMOXICILLIN, key=f"x{i}", index=i) for i in range(2000)] + [line(TAMSULOSIN, key="t", index=2000)]
    assert fired(claim(*lines, gend="2")) == [("R0101", "t")]


def test_severity_gives_the_action_and_the_rule_file_is_checked() -> None:
    assert {r.rule_id: r.action for r in BOOK.rules}["R0301"] == "refuse"
    assert {r.rule_id: r.action for r in BOOK.rules}["R0601"] == "selfpay"
    assert {r.rule_id: r.action for r in BOOK.rules}["R0801"] == "warn"
    assert {r.kind for r in BOOK.rules} == set(rules.KINDS)
    with pytest.raises(rules.RuleError, match="kind"):
        rules.parse({"rules": [{"id": "X1", "kind": "nonsense", "severity": 1, "items": ["A"]}]})
    with pytest.raises(rules.RuleError, match="gend"):
        rules.parse({"rules": [{"id": "X1", "kind": "sex", "severity": 1, "items": ["A"]}]})
    with pytest.raises(rules.RuleError, match="repeated"):
        rules.parse({"rules": [{"id": "X1", "kind": "age", "severity": 3, "items": ["A"], "age_min": 1}] * 2})
    with pytest.raises(rules.RuleError, match="stay-level"):
        rules.parse({"rules": [{"id": "X1", "kind": "readmission", "severity": 2, "days": 3}]})


# -- 3101 / 3102 on the gateway ---------------------------------------------------------------------------------------

def _patient(orders: list[dict[str, Any]], *, gend: str = "2", diagnoses: tuple[str, ...] = ("J06.900",),
             history: list[dict[str, Any]] | None = None, med_type: str = "11") -> dict[str, Any]:
    encounter = {"mdtrt_id": "MD0001", "medins_id": "H37010000001", "medins_name": "医院", "medins_admdvs": "370100",
                 "medins_type": "1", "medins_lv": "08", "adm_date": "2026-11-20 09:00:00", "dscg_date": "",
                 "dscg_main_dise_codg": diagnoses[0], "med_type": med_type, "medfee_sumamt": "100.00", "insutype": "310",
                 "fsi_diagnose_dtos": [{"dise_codg": d, "dise_name": "", "maindise_flag": "1" if i == 0 else "0"}
                                       for i, d in enumerate(diagnoses)],
                 "fsi_order_dtos": orders, "fsi_operation_dtos": []}
    return {"patn_id": "37010000000000000001", "patn_name": "张三", "gend": gend, "brdy": "1980-01-01", "poolarea": "370100",
            "curr_mdtrt_id": "MD0001", "fsi_encounter_dtos": [encounter, *(history or [])]}


def _order(rx_id: str, code: str, sumamt: str = "50.00", cnt: str = "1") -> dict[str, Any]:
    return {"rx_id": rx_id, "rxno": "RX1", "hilist_code": code, "hilist_name": "", "hosplist_code": "H1", "hosplist_name": "药",
            "cnt": cnt, "pric": sumamt, "sumamt": sumamt, "drord_begn_date": "2026-11-20 09:10:00", "curr_drord_flag": "1"}


def test_3101_before_the_visit_lists_the_violations_per_line(counter: CounterClient) -> None:
    ok(counter.sign_in())
    body = {"data": {"syscode": "HIS", "task_id": "T1", "trig_scen": "2", "patient_dtos": [_patient([
        _order("rx1", TAMSULOSIN, "55.20"), _order("rx2", AMOXICILLIN), _order("rx3", MRI, "450.00")])]}}
    result = ok(counter.call("3101", body))["result"]
    assert [(r["rule_id"], r["judge_result_detail_dtos"][0]["rx_id"]) for r in result] == [("R0101", "rx1"), ("R0501", "rx3")]
    first = result[0]
    assert first["sev_deg"] == "2" and first["patn_id"] == "37010000000000000001" and first["mdtrt_id"] == "MD0001"
    assert first["vola_amt"] == 55.2 or Decimal(str(first["vola_amt"])) == Decimal("55.20")
    assert first["task_id"] == "T1" and first["vola_evid"] and "女性" in first["vola_cont"] and first["jr_id"]
    assert first["judge_result_detail_dtos"][0]["vola_item_type"] == "1"
    # 3101 serves scenes 1–5 only; 3102 scenes 6–10
    wrong = counter.call("3101", {"data": {**body["data"], "trig_scen": "7"}})
    assert wrong["infcode"] == -1 and "input.data.trig_scen" in wrong["err_msg"]
    nothing = counter.call("3101", {"data": {"patient_dtos": body["data"]["patient_dtos"]}})
    assert nothing["infcode"] == -1 and "trig_scen" in nothing["err_msg"]


def test_a_flood_of_orders_is_refused_and_reviews_are_not_stored(counter: CounterClient, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from yibao.gateway.models import GatewayMessage
    from yibao.review import transactions

    MAX_ORDERS = 40  # the real cap (5,000) is above this suite's body limit
    monkeypatch.setattr(transactions, "MAX_ORDERS", MAX_ORDERS)
    ok(counter.sign_in())
    flood = {"data": {"trig_scen": "2", "patient_dtos": [_patient([_order(f"rx{i}", AMOXICILLIN) for i in range(MAX_ORDERS + 1)])]}}
    refused = counter.call("3101", flood)
    assert refused["infcode"] == -1 and "fsi_encounter_dtos" in refused["err_msg"] and str(MAX_ORDERS) in refused["err_msg"]
    with db.unit_of_work(write=False) as session:
        before = session.scalar(select(func.count()).select_from(GatewayMessage).where(GatewayMessage.infno == "3101"))
    body = {"data": {"trig_scen": "2", "patient_dtos": [_patient([_order("rx1", TAMSULOSIN, "55.20")])]}}
    assert ok(counter.call("3101", body))["result"]
    with db.unit_of_work(write=False) as session:
        after = session.scalar(select(func.count()).select_from(GatewayMessage).where(GatewayMessage.infno == "3101"))
    assert after == before  # the answer follows from the request: nothing kept for a repeat


def test_3102_during_the_visit_with_history_and_chosen_rules(counter: CounterClient) -> None:
    ok(counter.sign_in())
    earlier = {"mdtrt_id": "MD0000", "adm_date": "2026-11-01 08:00:00", "dscg_date": "2026-11-12 10:00:00",
               "dscg_main_dise_codg": "I63.900", "fsi_order_dtos": []}
    patient = _patient([_order("r1", METFORMIN, "12.00")], diagnoses=("I63.900", "N18.900"), history=[earlier], med_type="21")
    result = ok(counter.call("3102", {"data": {"trig_scen": "9", "patient_dtos": [patient]}}))["result"]
    assert {r["rule_id"] for r in result} == {"R0901", "R0701", "R0801"}
    chosen = ok(counter.call("3102", {"data": {"rule_ids": "R0901", "patient_dtos": [patient]}}))["result"]
    assert [r["rule_id"] for r in chosen] == ["R0901"]
    unknown = counter.call("3102", {"data": {"rule_ids": "R9999", "patient_dtos": [patient]}})
    assert unknown["infcode"] == -1 and "input.data.rule_ids" in unknown["err_msg"]


# -- settlement (事中): a line wholly self-paid, one refused ---------------------------------------------------------

def _visit(counter: CounterClient, db, lines: list[tuple[str, str]]) -> tuple[Any, str, str]:  # type: ignore[no-untyped-def]
    ok(counter.sign_in())
    person = fresh_person(db, "310")
    mdtrt_id = register(counter, person, "310")
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": "11",
                                           "begntime": clock.fmt_datetime(clock.now())},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
                                           "diag_dept": "内科", "dise_dor_no": "D1", "dise_dor_name": "医生",
                                           "diag_time": clock.fmt_datetime(clock.now()), "vali_flag": "1"}]}))
    feedetail = [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]
    ok(counter.call("2204", {"feedetail": feedetail}))
    total = str(sum(Decimal(a) for _, a in lines))
    return person, mdtrt_id, total


def test_2207_makes_a_line_outside_its_indication_wholly_self_paid(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id, total = _visit(counter, db, [(DAPAGLIFLOZIN, "71.30"), (AMOXICILLIN, "14.37")])
    pre = counter.call("2206", settle_input(person, mdtrt_id, "310", total))
    assert pre["infcode"] == 0 and "R0601" in pre["warn_msg"], pre
    answer = counter.call("2207", settle_input(person, mdtrt_id, "310", total))
    assert answer["infcode"] == 0, answer["err_msg"]
    setl = answer["output"]["setlinfo"]
    assert Decimal(str(setl["fulamt_ownpay_amt"])) == Decimal("71.30")
    assert "R0601" in answer["warn_msg"] and "转自费" in answer["warn_msg"]
    with db.unit_of_work(write=False) as session:
        found = session.scalars(select(ReviewFinding).where(ReviewFinding.setl_id == setl["setl_id"])).all()
    assert [(f.rule_id, f.action, f.amount_fen, f.med_list_codg) for f in found] == [("R0601", "selfpay", 7130, DAPAGLIFLOZIN)]
    assert found[0].fixmedins_code == counter.fixmedins_code and found[0].mdtrt_id == mdtrt_id


def test_2207_refuses_a_duplicate_charge_naming_the_line_and_the_rule(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id, total = _visit(counter, db, [(VISIT_FEE, "10.00"), (VISIT_FEE, "10.00")])
    answer = counter.call("2207", settle_input(person, mdtrt_id, "310", total))
    assert answer["infcode"] == -1
    assert "R0301" in answer["err_msg"] and "重复收费" in answer["err_msg"] and "feedetl_sn=" in answer["err_msg"], answer["err_msg"]
    # nothing was settled or recorded; the HIS takes the lines back (2205), uploads the fee once and settles
    with db.unit_of_work(write=False) as session:
        assert not session.scalars(select(ReviewFinding).where(ReviewFinding.mdtrt_id == mdtrt_id)).all()
    ok(counter.call("2205", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "chrg_bchno": "0000"}}))
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, VISIT_FEE, "10.00")]}))
    ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "10.00")))


def test_a_settlement_without_rule_items_reads_nothing_more(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    person, mdtrt_id, total = _visit(counter, db, [(AMOXICILLIN, "14.37")])
    answer = counter.call("2207", settle_input(person, mdtrt_id, "310", total))
    assert answer["infcode"] == 0 and "智能审核" not in answer["warn_msg"]


def _admit(counter: CounterClient, person: Any) -> str:
    from flows import cert, serial

    out = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now()),
                                                 "adm_dept_codg": "A04", "adm_dept_name": "外科", "adm_bed": "12",
                                                 "dise_codg": "K35.900", "dise_name": "急性阑尾炎", "atddr_no": "D37010000002"},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900", "diag_name": "急性阑尾炎",
                                                 "maindiag_flag": "1"}]}))
    return out["result"]["mdtrt_id"]


def _stay(counter: CounterClient, person: Any, lines: list[tuple[str, str]]) -> dict[str, Any]:
    from flows import cert

    mdtrt_id = _admit(counter, person)
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    total = sum(Decimal(a) for _, a in lines)
    answer = counter.call("2304", {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": total, "psn_setlway": "01",
                                            "mdtrt_id": mdtrt_id, "insutype": "310", "acct_used_flag": "0", "mid_setl_flag": "0"}})
    assert answer["infcode"] == 0, answer["err_msg"]
    return answer


def test_2304_self_pays_a_second_bed_day_and_warns_of_a_split_admission(counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    ok(counter.sign_in())
    person = fresh_person(db, "310", retired=False)
    first = _stay(counter, person, [(BED, "40.00"), (BED, "40.00"), (AMOXICILLIN, "14.37")])
    assert Decimal(str(first["output"]["setlinfo"]["fulamt_ownpay_amt"])) == Decimal("40.00")
    assert "R0401" in first["warn_msg"] and "R0701" not in first["warn_msg"]
    # admitted again the same day with the same main diagnosis: split admission and readmission, warned and recorded
    second = _stay(counter, person, [(AMOXICILLIN, "14.37")])
    assert "R0701" in second["warn_msg"] and "R0801" in second["warn_msg"]
    assert Decimal(str(second["output"]["setlinfo"]["fulamt_ownpay_amt"])) == Decimal("0.00")
    with db.unit_of_work(write=False) as session:
        found = session.scalars(select(ReviewFinding).where(ReviewFinding.setl_id == second["output"]["setlinfo"]["setl_id"])).all()
    assert sorted((f.rule_id, f.action, f.feedetl_sn) for f in found) == [("R0701", "warn", ""), ("R0801", "warn", "")]
