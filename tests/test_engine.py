"""The pure engine: rules.md examples A and B to the fen, and properties over random claims."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.policy.parameters import PolicyError, bundled, parse_family
from yibao.policy.service import snapshot
from yibao.settlement.engine import CatalogRule, ChronicYearToDate, Claim, FeeLine, Patient, YearToDate, classify, settle

ON = date(2026, 6, 1)
EMPLOYEE = snapshot(bundled(), "370100", "310", "in_service", ON)
RESIDENT = snapshot(bundled(), "370100", "390", "all", ON)
JIA = CatalogRule("J", "01", "09")
YI = CatalogRule("Y", "02", "09")
BING = CatalogRule("B", "03", "09")
YI_CAPPED = CatalogRule("C", "02", "08", list_type="301", pric_uplmt_fen=40000)
ADULT = Patient(age=40, gend="1")


def split(rule: CatalogRule | None, fen: int, sn: str, lv: int = 3):  # type: ignore[no-untyped-def]
    return classify(FeeLine(sn, rule.med_list_codg if rule else "X", fen), rule, ADULT, lv, EMPLOYEE.yi_selfpay_prop)


def test_example_a_inpatient_employee_level_3() -> None:
    lines = [split(JIA, 1_200_000, "1"), split(YI, 600_000, "2"), split(BING, 150_000, "3"), split(YI_CAPPED, 50_000, "4")]
    out = settle(EMPLOYEE, Claim("inpatient", 3, frozenset({"310", "330"}), acct_balance=300_000, acct_used=True), YearToDate(), lines)
    assert (out.fulamt_ownpay_amt, out.overlmt_selfpay, out.preselfpay_amt, out.inscp_scp_amt) == (150_000, 10_000, 64_000, 1_776_000)
    assert (out.act_pay_dedc, out.hifp_pay, out.fund_pay_sumamt, out.psn_part_amt) == (100_000, 1_424_600, 1_424_600, 575_400)
    assert (out.acct_pay, out.psn_cash_pay, out.balc) == (300_000, 275_400, 0)
    assert out.pool_prop_selfpay == Decimal("0.85")


def test_example_b_outpatient_employee_level_1_and_second_visit() -> None:
    lines = [split(JIA, 30_000, "1", 1), split(YI, 20_000, "2", 1), split(BING, 5_000, "3", 1)]
    claim = Claim("outpatient", 1, frozenset({"310", "330"}), acct_balance=100_000, acct_used=True)
    first = settle(EMPLOYEE, claim, YearToDate(otp_dedc=50_000), lines)
    assert (first.fulamt_ownpay_amt, first.preselfpay_amt, first.inscp_scp_amt) == (5_000, 2_000, 48_000)
    assert (first.act_pay_dedc, first.hifp_pay, first.psn_part_amt, first.acct_pay, first.psn_cash_pay, first.balc) == (
        30_000, 12_600, 42_400, 42_400, 0, 57_600)
    ytd = YearToDate(otp_dedc=50_000).plus(first.ytd_delta)
    second = settle(EMPLOYEE, Claim("outpatient", 1, frozenset({"310", "330"}), acct_balance=first.balc, acct_used=True), ytd, lines)
    assert (second.act_pay_dedc, second.hifp_pay) == (0, 33_600)
    # reversing the first restores the totals: settling again gives the first answer
    assert ytd.plus(first.ytd_delta, -1) == YearToDate(otp_dedc=50_000)
    assert settle(EMPLOYEE, claim, ytd.plus(first.ytd_delta, -1), lines) == first


def test_classification_rules() -> None:
    woman_only = CatalogRule("W", "02", "09", lmt_gend="2")
    assert classify(FeeLine("1", "W", 10_000), woman_only, ADULT, 3, Decimal("0.1")).fulamt_ownpay == 10_000
    child_only = CatalogRule("K", "01", "09", lmt_age_max=14)
    assert classify(FeeLine("1", "K", 10_000), child_only, ADULT, 3, Decimal("0.1")).fulamt_ownpay == 10_000
    tertiary = CatalogRule("T", "01", "09", lmt_hosp_lv=3)
    assert classify(FeeLine("1", "T", 10_000), tertiary, ADULT, 2, Decimal("0.1")).fulamt_ownpay == 10_000
    assert classify(FeeLine("1", "T", 10_000), tertiary, ADULT, 3, Decimal("0.1")).inscp == 10_000
    assert classify(FeeLine("1", "?", 777), None, ADULT, 3, Decimal("0.1")).fulamt_ownpay == 777
    per_unit = CatalogRule("U", "01", "08", pric_uplmt_fen=150)
    capped = classify(FeeLine("1", "U", 1_000, cnt=Decimal("4")), per_unit, ADULT, 3, Decimal("0.1"))
    assert (capped.overlmt, capped.inscp) == (400, 600)


def test_caps_and_second_tier_for_a_large_inpatient_bill() -> None:
    # 300,000 in scope: the basic fund stops at its 150,000 cap, the large-amount subsidy pays 90% beyond
    lines = [split(JIA, 30_000_000, "1")]
    out = settle(EMPLOYEE, Claim("inpatient", 3, frozenset({"310", "330"})), YearToDate(), lines)
    assert out.hifp_pay == 15_000_000
    covered = round(15_000_000 / Decimal("0.85"))
    assert out.hifob_pay == round((30_000_000 - 100_000 - covered) * Decimal("0.9"))
    assert {f.fund_pay_type for f in out.funds} == {"310100", "330100"}


def test_residents_catastrophic_tiers_and_assistance() -> None:
    lines = [split(JIA, 5_000_000, "1")]
    claim = Claim("inpatient", 3, frozenset({"390", "392"}), assistance_identity="2102")
    out = settle(RESIDENT, claim, YearToDate(), lines)
    # basic: (50,000 − 1,000) × 60% = 29,400; personal burden 20,600: 5,600 above 15,000 at 60% = 3,360
    assert out.hifp_pay == 2_940_000 and out.hifmi_pay == 336_000
    left = 5_000_000 - 2_940_000 - 336_000
    assert out.maf_pay == round(left * Decimal("0.7"))
    assert out.fund_pay_sumamt == 2_940_000 + 336_000 + out.maf_pay


def test_policy_errors_name_file_key_and_date() -> None:
    with pytest.raises(PolicyError, match=r"x/deductible.yaml: outpatient.310 on 2024-01-01: -5 must be a non-negative amount"):
        parse_family({"reference": "r", "unit": "yuan", "outpatient": {"310": {date(2024, 1, 1): -5}}}, "x/deductible.yaml")
    with pytest.raises(PolicyError, match="ratio between 0 and 1"):
        parse_family({"reference": "r", "unit": "ratio", "a": {date(2024, 1, 1): 1.5}}, "x/pool_ratio.yaml")
    with pytest.raises(PolicyError, match="'reference'"):
        parse_family({"unit": "ratio"}, "x/pool_ratio.yaml")
    with pytest.raises(PolicyError, match="no value in force on 2020-01-01"):
        bundled().value("370100", "deductible", "outpatient.310.in_service", date(2020, 1, 1))


def test_effective_dates_and_regions_differ() -> None:
    book = bundled()
    assert book.value("440300", "deductible", "outpatient.310.in_service", date(2025, 12, 31)) == 60_000
    assert book.value("440300", "deductible", "outpatient.310.in_service", date(2026, 1, 1)) == 50_000
    level_1 = "pool_ratio.outpatient.{insutype}.{category}.level_1"
    assert snapshot(book, "440300", "310", "in_service", ON).get(level_1) != EMPLOYEE.get(level_1)


# -- properties -------------------------------------------------------------------------------

rules = st.builds(CatalogRule, med_list_codg=st.just("R"), chrgitm_lv=st.sampled_from(["01", "02", "03"]),
                  med_chrgitm_type=st.just("09"), pric_uplmt_fen=st.one_of(st.none(), st.integers(1, 500_000)),
                  lmt_hosp_lv=st.one_of(st.none(), st.integers(1, 3)))
line_inputs = st.lists(st.tuples(st.one_of(st.none(), rules), st.integers(0, 3_000_000)), min_size=1, max_size=8)
ytds = st.builds(YearToDate, otp_dedc=st.integers(0, 100_000), hifp_otp=st.integers(0, 600_000), hifp=st.integers(0, 21_000_000),
                 hifob=st.integers(0, 41_000_000), maf=st.integers(0, 3_100_000), inscp_self=st.integers(0, 12_000_000))
claims = st.builds(Claim, kind=st.sampled_from(["outpatient", "inpatient", "pharmacy"]), hosp_lv=st.integers(1, 3),
                   enrolled=st.sampled_from([frozenset({"310", "330"}), frozenset({"310", "330", "320"}), frozenset({"390", "392"})]),
                   cvlserv=st.booleans(), assistance_identity=st.sampled_from([None, "2101", "2102", "2103"]),
                   unfiled_cross_province=st.booleans(), admission_no=st.integers(1, 4), admission_dedc_paid=st.integers(0, 100_000),
                   acct_balance=st.integers(0, 2_000_000), mulaid_balance=st.integers(0, 500_000), acct_used=st.booleans())
policies = st.sampled_from([EMPLOYEE, RESIDENT, snapshot(bundled(), "440300", "310", "retired", ON),
                            snapshot(bundled(), "440300", "390", "all", ON)])


def make(policy, lines):  # type: ignore[no-untyped-def]
    return [classify(FeeLine(str(i), "R", fen), rule, ADULT, 2, policy.yi_selfpay_prop) for i, (rule, fen) in enumerate(lines)]


@settings(max_examples=400, deadline=None)
@given(policies, claims, ytds, line_inputs)
def test_sums_are_exact_nothing_negative_caps_hold(policy, claim, ytd, lines) -> None:  # type: ignore[no-untyped-def]
    out = settle(policy, claim, ytd, make(policy, lines))
    assert out.medfee_sumamt == out.fulamt_ownpay_amt + out.overlmt_selfpay + out.preselfpay_amt + out.inscp_scp_amt
    assert out.medfee_sumamt == out.fund_pay_sumamt + out.psn_part_amt + out.hosp_part_amt
    assert out.psn_part_amt == out.acct_pay + out.acct_mulaid_pay + out.psn_cash_pay
    assert sum(f.fund_payamt for f in out.funds) == out.fund_pay_sumamt
    assert out.fund_pay_sumamt == out.hifp_pay + out.hifob_pay + out.cvlserv_pay + out.hifmi_pay + out.maf_pay
    # every fund states what it could pay this time (本次可支付限额, a number on the wire), and paid no more
    assert all(isinstance(f.crt_payb_lmt_amt, int) and 0 <= f.fund_payamt <= f.crt_payb_lmt_amt for f in out.funds)
    for name in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "cvlserv_pay",
                 "hifmi_pay", "hifob_pay", "maf_pay", "psn_part_amt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay", "balc"):
        assert getattr(out, name) >= 0, name
    assert out.fund_pay_sumamt <= out.inscp_scp_amt
    assert out.acct_pay <= claim.acct_balance and out.acct_mulaid_pay <= claim.mulaid_balance
    after = ytd.plus(out.ytd_delta)
    assert out.hifp_pay == 0 or after.hifp <= policy.get("caps.basic_fund.{insutype}.all")
    if claim.kind != "inpatient":
        assert out.hifp_pay == 0 or after.hifp_otp <= policy.get("caps.outpatient_fund.{insutype}.{category}")
    assert out.hifob_pay == 0 or after.hifob <= policy.get("second_tier.large_amount.annual_cap.all")
    assert out.maf_pay == 0 or after.maf <= policy.get("second_tier.medical_assistance.annual_cap.all")


@settings(max_examples=400, deadline=None)
@given(policies, claims, ytds, line_inputs, st.tuples(st.one_of(st.none(), rules), st.integers(0, 3_000_000)))
def test_more_fees_never_lower_the_patients_part(policy, claim, ytd, lines, extra) -> None:  # type: ignore[no-untyped-def]
    before = settle(policy, claim, ytd, make(policy, lines))
    after = settle(policy, claim, ytd, make(policy, [*lines, extra]))
    assert after.psn_part_amt >= before.psn_part_amt
    assert after.fund_pay_sumamt >= before.fund_pay_sumamt


# -- chronic and special diseases (门诊慢特病, med_type 14): each disease's own deductible, ratio and annual cap ------------

HYPERTENSION, CANCER = "M03900", "M00503"  # 370100: 0 / 75% / 3,000 and 300 / 85% / 80,000 for employees


def test_chronic_care_pays_by_the_diseases_own_terms_not_the_outpatient_ones() -> None:
    lines = [split(JIA, 100_000, "1", 1)]
    general = settle(EMPLOYEE, Claim("outpatient", 1, frozenset({"310", "330"})), YearToDate(), lines)
    assert (general.act_pay_dedc, general.hifp_pay) == (80_000, 14_000)  # the outpatient deductible, then 70% at level 1
    chronic = settle(EMPLOYEE, Claim("outpatient", 1, frozenset({"310", "330"}), opsp_dise_code=HYPERTENSION), YearToDate(), lines)
    assert (chronic.act_pay_dedc, chronic.hifp_pay, chronic.pool_prop_selfpay) == (0, 75_000, Decimal("0.75"))
    # the general outpatient deductible and cap are untouched; the disease's own totals move
    assert (chronic.ytd_delta.otp_dedc, chronic.ytd_delta.hifp_otp, chronic.ytd_delta.hifp) == (0, 0, 75_000)
    assert chronic.chronic_delta == ChronicYearToDate(dedc=0, hifp=75_000)
    assert "M03900" in chronic.funds[0].setl_proc_info


def test_a_special_disease_has_its_own_yearly_deductible() -> None:
    lines = [split(JIA, 100_000, "1")]
    claim = Claim("outpatient", 3, frozenset({"310", "330"}), opsp_dise_code=CANCER)
    first = settle(EMPLOYEE, claim, YearToDate(otp_dedc=80_000), lines)
    assert (first.act_pay_dedc, first.hifp_pay) == (30_000, 59_500)  # (1,000 − 300) × 85%
    later = settle(EMPLOYEE, Claim("outpatient", 3, frozenset({"310", "330"}), opsp_dise_code=CANCER,
                                   chronic_ytd=ChronicYearToDate().plus(first.chronic_delta)), YearToDate(), lines)
    assert (later.act_pay_dedc, later.hifp_pay) == (0, 85_000)


def test_the_diseases_annual_cap_bounds_its_fund() -> None:
    lines = [split(JIA, 100_000, "1")]
    near_cap = ChronicYearToDate(dedc=0, hifp=290_000)  # 2,900.00 of the 3,000.00 paid this year
    out = settle(EMPLOYEE, Claim("outpatient", 3, frozenset({"310", "330"}), opsp_dise_code=HYPERTENSION, chronic_ytd=near_cap),
                 YearToDate(hifp=290_000), lines)
    assert out.hifp_pay == 10_000 and out.funds[0].crt_payb_lmt_amt == 10_000
    # the basic fund's annual cap still bounds it too
    spent = settle(EMPLOYEE, Claim("outpatient", 3, frozenset({"310", "330"}), opsp_dise_code=HYPERTENSION),
                   YearToDate(hifp=EMPLOYEE.get("caps.basic_fund.{insutype}.all") - 5_000), lines)
    assert spent.hifp_pay == 5_000


def test_residents_chronic_care_counts_toward_catastrophic_insurance() -> None:
    lines = [split(JIA, 1_000_000, "1")]
    above = YearToDate(inscp_self=2_000_000)  # already past the 15,000.00 threshold this year
    out = settle(RESIDENT, Claim("outpatient", 3, frozenset({"390", "392"}), opsp_dise_code=CANCER), above, lines)
    hifp = round((1_000_000 - 30_000) * Decimal("0.70"))
    assert out.hifp_pay == hifp and out.hifmi_pay == round((1_000_000 - hifp) * Decimal("0.60"))
    assert out.ytd_delta.inscp_self == 1_000_000 - hifp


def test_a_disease_the_policy_does_not_pay_for_is_refused() -> None:
    with pytest.raises(ValueError, match="M99999"):
        settle(EMPLOYEE, Claim("outpatient", 3, frozenset({"310"}), opsp_dise_code="M99999"), YearToDate(), [split(JIA, 100, "1")])


chronic_claims = st.builds(Claim, kind=st.just("outpatient"), hosp_lv=st.integers(1, 3),
                           enrolled=st.sampled_from([frozenset({"310", "330"}), frozenset({"310", "330", "320"}),
                                                     frozenset({"390", "392"})]),
                           cvlserv=st.booleans(), assistance_identity=st.sampled_from([None, "2102"]), unfiled_cross_province=st.booleans(),
                           acct_balance=st.integers(0, 2_000_000), acct_used=st.booleans(),
                           opsp_dise_code=st.sampled_from(sorted(set(EMPLOYEE.chronic) & set(RESIDENT.chronic))),
                           chronic_ytd=st.builds(ChronicYearToDate, dedc=st.integers(0, 40_000), hifp=st.integers(0, 9_000_000)))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([EMPLOYEE, RESIDENT]), chronic_claims, ytds, line_inputs)
def test_chronic_settlements_keep_their_own_books(policy, claim, ytd, lines) -> None:  # type: ignore[no-untyped-def]
    terms = policy.chronic[claim.opsp_dise_code]
    out = settle(policy, claim, ytd, make(policy, lines))
    assert out.medfee_sumamt == out.fund_pay_sumamt + out.psn_part_amt
    assert out.fund_pay_sumamt == out.hifp_pay + out.hifob_pay + out.cvlserv_pay + out.hifmi_pay + out.maf_pay <= out.inscp_scp_amt
    # the general outpatient books do not move; the disease's do, by exactly what was met and paid
    assert (out.ytd_delta.otp_dedc, out.ytd_delta.hifp_otp) == (0, 0)
    assert out.chronic_delta == ChronicYearToDate(dedc=out.act_pay_dedc, hifp=out.hifp_pay)
    after = claim.chronic_ytd.plus(out.chronic_delta)
    assert out.act_pay_dedc == 0 or after.dedc <= terms.deductible
    assert out.hifp_pay == 0 or (after.hifp <= terms.annual_cap and ytd.hifp + out.hifp_pay <= policy.get("caps.basic_fund.{insutype}.all"))
    # a reversal restores the disease's totals, and settling again gives the same answer
    assert after.plus(out.chronic_delta, -1) == claim.chronic_ytd
    assert settle(policy, claim, ytd, make(policy, lines)) == out


def test_chronic_terms_are_policy_data_by_region_and_date() -> None:
    book = bundled()
    before = snapshot(book, "440300", "310", "in_service", date(2025, 6, 1)).chronic["M03900"]
    after = snapshot(book, "440300", "310", "in_service", date(2026, 6, 1)).chronic["M03900"]
    assert (before.deductible, before.ratio, before.annual_cap) == (10_000, Decimal("0.70"), 250_000)
    assert (after.deductible, after.ratio, after.annual_cap) == (0, Decimal("0.80"), 360_000)
    assert EMPLOYEE.chronic["M03900"] != after and "M01102" in EMPLOYEE.chronic
    assert "M01102" not in snapshot(book, "440300", "310", "in_service", ON).chronic  # 440300 does not pay it as chronic care
    assert EMPLOYEE.employee_arrears_months == 3 and snapshot(book, "440300", "310", "in_service", ON).employee_arrears_months == 2
    with pytest.raises(PolicyError, match="whole number"):
        parse_family({"reference": "r", "unit": "count", "a": {date(2024, 1, 1): 1.5}}, "x/treatment.yaml")
