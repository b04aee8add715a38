"""DRG/DIP: the grouper through each of its paths (pure), payment by group against by item, the 4101 upload through the
gateway, and the monthly report whose totals are the sums over its cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from flows import catalogue_codes, cert, fee, fresh_person, ok, serial
from yibao.client import CounterClient
from yibao.core import clock
from yibao.drg import grouper, payment, report
from yibao.drg import service as drg
from yibao.drg.grouper import Case, Diagnosis, Procedure
from yibao.policy.service import policy_for

D, P = Diagnosis, Procedure


def test_the_worked_trace_of_opendrg_groups_to_gz13() -> None:
    # rules-notes §3: K22.301|K11.901|E11.900|I10.x05 with 96.0800x005 → MDCG, GZ1, K11.901 a CC (exclusion table 110) → GZ13
    g = grouper.group(Case((D("K22.301", True), D("K11.901"), D("E11.900"), D("I10.x05")), (P("96.0800x005", True),)))
    assert (g.code, g.mdc, g.adrg, g.grouped) == ("GZ13", "G", "GZ1", True)
    assert g.name == "其他消化系统诊断，伴一般并发症或合并症" and g.weight == Decimal("0.70")
    assert any("K11.901 属于CC，排除表110" in step for step in g.trace)


def test_surgical_medical_and_non_operating_core_groups() -> None:
    surgical = grouper.group(Case((D("K35.900", True),), (P("47.0100", True),)))
    assert (surgical.adrg, surgical.code) == ("GC1", "GC15")
    medical = grouper.group(Case((D("K35.900", True),)))
    assert (medical.adrg, medical.code) == ("GZ1", "GZ15")  # appendicitis treated without surgery
    pci = grouper.group(Case((D("I21.900", True),), (P("36.0600", True),)))
    assert (pci.adrg, pci.code, pci.weight) == ("FM1", "FM15", Decimal("2.20"))
    # the main procedure decides before the others; a procedure no group lists (a gastroscopy) does not change the group
    assert grouper.group(Case((D("K29.700", True),), (P("44.1300", True),))).code == "GU25"
    unsplit = grouper.group(Case((D("H25.900", True),), (P("13.4100", True),)))
    assert unsplit.code == "CB39" and unsplit.weight == Decimal("0.62")


def test_mcc_and_cc_split_and_the_exclusion_table() -> None:
    assert grouper.group(Case((D("J18.900", True), D("J96.000")))).code == "ES31"  # acute respiratory failure: an MCC
    assert grouper.group(Case((D("K35.900", True), D("E11.200")), (P("47.0900", True),))).code == "GC13"
    # the most severe counts: a CC and an MCC make …1
    assert grouper.group(Case((D("K35.900", True), D("E11.200"), D("I50.900")), (P("47.0900", True),))).code == "GC11"
    # heart failure is no complication of hypertensive heart disease (exclusion table 21); atrial fibrillation is a CC
    g = grouper.group(Case((D("I11.900", True), D("I50.900"), D("I48.x00"))))
    assert g.code == "FT43"
    assert any("I50.900" in step and "排除表21" in step and "不计" in step for step in g.trace)
    assert grouper.group(Case((D("I11.900", True), D("I50.900")))).code == "FT45"


def test_ungroupable_and_ambiguous_cases_get_their_codes_and_a_reason() -> None:
    unknown = grouper.group(Case((D("U07.100", True),)))
    assert unknown.code == "0000" and not unknown.grouped and "U07.100 belongs to no MDC" in unknown.reason
    assert unknown.weight == 0 and unknown.trace[-1].startswith("0000 不能入组")
    no_main = grouper.group(Case((D("K35.900"),)))
    assert no_main.code == "0000" and "no main diagnosis" in no_main.reason
    missing = grouper.group(Case((D("O82.900", True),)))  # a caesarean delivery without the caesarean
    assert missing.code == "0000" and "grouped only with a procedure (OB1)" in missing.reason
    ambiguous = grouper.group(Case((D("K35.900", True),), (P("81.5400", True),)))  # appendicitis with a knee replacement
    assert ambiguous.code == "QY" and "81.5400" in ambiguous.reason
    bad = grouper.group(Case((D("K35.9", True),)))
    assert bad.code == "0000" and "not an ICD-10 医保版 code" in bad.reason
    unlisted = grouper.group(Case((D("K35.900", True),), (P("99.9900", True),)))
    assert unlisted.code == "0000" and "99.9900 is not in the grouper's tables" in unlisted.reason


def test_dip_core_and_comprehensive_packets() -> None:
    core = grouper.packet(Case((D("K35.900", True),), (P("47.0100", True),)))
    assert (core.code, core.kind, core.score) == ("K35.9/47.0100", "core", Decimal("780"))
    conservative = grouper.packet(Case((D("I10.x00", True), D("E11.900"))))
    assert (conservative.code, conservative.kind) == ("I10.x/0", "core")
    # no core packet for the combination: the comprehensive packet of the procedure type
    assert grouper.packet(Case((D("K22.301", True),), (P("96.0800x005", True),))).code == "ZH03"
    assert grouper.packet(Case((D("K29.700", True),), (P("44.1300", True),))).code == "ZH02"
    assert grouper.packet(Case((D("K35.900", True),), (P("81.5400", True),))).code == "ZH04"
    assert grouper.packet(Case((D("K22.301", True),))).code == "ZH01"
    none = grouper.packet(Case((D("U07.100", True),)))
    assert none.code == "" and "U07.100" in none.reason


def test_every_demo_diagnosis_and_procedure_is_in_the_tables() -> None:
    from importlib import resources

    tables = grouper.demo_tables()
    rows = [line.split(",") for line in resources.files("yibao.codes.data").joinpath("demo_diseases.csv").read_text().splitlines()[1:]]
    needs_procedure = {"O82.900"}
    for kind, code, *_ in rows:
        if kind == "diag" and code not in needs_procedure:
            assert grouper.group(Case((D(code, True),)), tables).grouped, code
        if kind == "oprn":
            assert code in tables.procedures, code


def test_a_malformed_table_is_refused_naming_the_key() -> None:
    from importlib import resources

    import yaml

    data = resources.files("yibao.drg.data")
    drg_doc = yaml.safe_load(data.joinpath("drg_demo.yaml").read_text(encoding="utf-8"))
    dip_doc = yaml.safe_load(data.joinpath("dip_demo.yaml").read_text(encoding="utf-8"))
    drg_doc["adrg"]["GC1"]["weights"] = [1.0, 0.5]
    with pytest.raises(grouper.TableError, match="adrg.GC1"):
        grouper.parse(drg_doc, dip_doc)


def test_payment_by_group_against_by_item_and_the_outliers() -> None:
    terms = policy_for("370100", "310", "in_service", date(2026, 11, 1)).drg
    assert (terms.method, terms.rate, terms.high, terms.low) == ("drg", 1_200_000, Decimal(2), Decimal("0.5"))
    # weight 0.86 × 12,000 yuan × level 3 (1.00) = 10,320 yuan; the patient's share by item is 2,000
    case = payment.CaseFacts("S1", "GC15", "阑尾切除术", Decimal("0.86"), True, 3, 900_000, 200_000, 700_000)
    paid = payment.pay(case, terms)
    assert (paid.standard, paid.fund_to_hospital, paid.difference, paid.paid_by) == (1_032_000, 832_000, 132_000, "group")
    level_2 = payment.pay(payment.CaseFacts("S2", "GC15", "", Decimal("0.86"), True, 2, 900_000, 200_000, 700_000), terms)
    assert level_2.standard == 928_800  # × 0.90
    high = payment.pay(payment.CaseFacts("S3", "GC15", "", Decimal("0.86"), True, 3, 2_100_000, 300_000, 1_800_000), terms)
    assert (high.paid_by, high.fund_to_hospital, high.difference) == ("high", 1_800_000, 0)
    low = payment.pay(payment.CaseFacts("S4", "GC15", "", Decimal("0.86"), True, 3, 500_000, 100_000, 400_000), terms)
    assert low.paid_by == "low" and low.fund_to_hospital == 400_000
    ungrouped = payment.pay(payment.CaseFacts("S5", "0000", "", Decimal(0), False, 3, 500_000, 100_000, 400_000), terms)
    assert (ungrouped.paid_by, ungrouped.fund_to_hospital, ungrouped.standard) == ("ungrouped", 400_000, 0)


# --- through the gateway ---------------------------------------------------------------------------------------------

def _settled_stay(counter: CounterClient, db, amount: str, code: str) -> tuple[str, str, object]:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", retired=False)
    adm = ok(counter.call("2401", {"mdtrtinfo": {"psn_no": person.psn_no, "insutype": "310", **cert(person), "med_type": "21",
                                                 "ipt_no": serial("ZY"), "begntime": clock.fmt_datetime(clock.now())},
                                   "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "K35.900",
                                                 "diag_name": "急性阑尾炎"}]}))
    mdtrt_id = adm["result"]["mdtrt_id"]
    ok(counter.call("2301", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount)]}))
    ok(counter.call("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "endtime": clock.fmt_datetime(clock.now()),
                                          "dscg_way": "1"}}))
    out = ok(counter.call("2304", {"data": {"psn_no": person.psn_no, **cert(person), "medfee_sumamt": Decimal(amount),
                                            "psn_setlway": "01", "mdtrt_id": mdtrt_id, "insutype": "310", "acct_used_flag": "0"}}))
    return out["setlinfo"]["setl_id"], mdtrt_id, person


def _list(setl_id: str, mdtrt_id: str, diagnoses: list[tuple[str, str]], procedures: list[tuple[str, str]]) -> dict:
    return {"setlinfo": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "age": "45", "gend": "1", "act_ipt_days": 5, "dscg_way": "1",
                         "medcasno": "BA0001", "hi_paymtd": "1"},
            "diseinfo": [{"diag_type": "1", "diag_code": c, "diag_name": "", "maindiag_flag": m} for c, m in diagnoses],
            "oprninfo": [{"oprn_oprt_type": t, "oprn_oprt_code": c, "oprn_oprt_name": "", "oprn_oprt_date": "2026-11-20"}
                         for c, t in procedures]}


def test_4101_groups_at_upload_and_the_month_report_sums_its_cases(counter: CounterClient, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    first, first_visit, _ = _settled_stay(counter, db, "9000.00", codes["jia"])
    second, second_visit, _ = _settled_stay(counter, db, "2000.00", codes["jia"])
    third, third_visit, person = _settled_stay(counter, db, "5000.00", codes["yi"])

    out = ok(counter.call("4101", _list(first, first_visit, [("K35.900", "1"), ("E11.200", "0")], [("47.0900", "1")])))["data"]
    assert out["setl_list_id"] and out["drg_code"] == "GC13" and out["dip_code"] == "K35.9/47.0900"
    assert out["drg_trace"][-1].startswith("GC13")
    # uploaded again with a corrected code: the same list, regrouped
    again = ok(counter.call("4101", _list(first, first_visit, [("K35.900", "1")], [("47.0900", "1")])))["data"]
    assert again["setl_list_id"] == out["setl_list_id"] and again["drg_code"] == "GC15"
    ungroupable = ok(counter.call("4101A", _list(second, second_visit, [("U07.100", "1")], [])))["data"]
    assert ungroupable["drg_code"] == "0000" and "U07.100" in ungroupable["drg_reason"] and ungroupable["dip_code"] == ""
    ok(counter.call("4101", _list(third, third_visit, [("K35.900", "1")], [("47.0100", "1")])))

    refused = counter.call("4101", _list("NO-SUCH-SETTLEMENT", first_visit, [("K35.900", "1")], []))
    assert refused["infcode"] == -1 and "input.setlinfo.setl_id" in refused["err_msg"]
    empty = counter.call("4101", {"setlinfo": {"setl_id": first}, "diseinfo": []})
    assert empty["infcode"] == -1 and "input.diseinfo" in empty["err_msg"]

    month = clock.today().strftime("%Y-%m")
    with db.unit_of_work(write=False) as session:
        cases = drg.month_cases(session, month, "H37010000001")
    found = report.build(month, cases)
    hospital = found["hospitals"][0]
    by_setl = {c["setl_id"]: c for c in hospital["cases"]}
    assert {first, second, third} <= set(by_setl)
    assert by_setl[second]["paid_by"] == "ungrouped" and by_setl[second]["difference"] == 0
    assert by_setl[first]["code"] == "GC15" and by_setl[first]["standard"] == 1_032_000  # 0.86 × 12,000 yuan × 1.00
    # the report's totals are the sums over its cases, per group and per hospital
    for name in report.FIGURES:
        assert hospital["totals"][name] == sum(c[name] for c in hospital["cases"]) == sum(g[name] for g in hospital["groups"])
        assert found["totals"][name] == sum(h["totals"][name] for h in found["hospitals"])
    assert hospital["totals"]["cases"] == len(hospital["cases"]) == sum(g["cases"] for g in hospital["groups"])
    for c in hospital["cases"]:
        assert c["difference"] == c["fund_to_hospital"] - c["item_fund"]
    assert "GC15" in report.markdown(found)
    assert report.chart(hospital, tmp_path / "chart.png", "test") and (tmp_path / "chart.png").stat().st_size > 1000

    # DIP paid by score × point value when asked; a reversed settlement leaves the report
    with db.unit_of_work(write=False) as session:
        dip = {c.paid.setl_id: c for c in drg.month_cases(session, month, "H37010000001", "dip")}
    assert dip[third].paid.code == "K35.9/47.0100" and dip[third].paid.standard == 936_000  # 780 × 12.00 yuan
    ok(counter.call("2305", {"data": {"setl_id": third, "mdtrt_id": third_visit, "psn_no": person.psn_no}}))
    with db.unit_of_work(write=False) as session:
        assert third not in {c.paid.setl_id for c in drg.month_cases(session, month, "H37010000001")}
