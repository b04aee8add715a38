"""Each settlement formula on its own (settlement/formulas.py), and the invariants they keep."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.policy.parameters import bundled
from yibao.policy.service import READS, snapshot
from yibao.settlement import formulas as f
from yibao.settlement.model import ChronicYearToDate, Claim, YearToDate

ON = date(2026, 6, 1)
EMPLOYEE = snapshot(bundled(), "370100", "310", "in_service", ON)
RETIRED = snapshot(bundled(), "370100", "310", "retired", ON)
RESIDENT = snapshot(bundled(), "370100", "390", "all", ON)
SHENZHEN = snapshot(bundled(), "440300", "310", "in_service", ON)
EMPLOYEE_FUNDS = frozenset({"310", "330", "320"})


def claim(kind: str = "outpatient", lv: int = 1, **kw) -> Claim:  # type: ignore[no-untyped-def]
    return Claim(kind, lv, kw.pop("enrolled", frozenset({"310", "330"})), **kw)  # type: ignore[arg-type]


def test_each_formula_declares_the_parameters_it_reads() -> None:
    assert "second_tier.catastrophic.threshold_counts.all" in f.threshold_burden.reads  # type: ignore[attr-defined]
    assert set(f.basic_fund.reads) <= READS  # type: ignore[attr-defined]
    # a declared path that is missing from a region's files is refused when the policy is loaded
    for path in READS:
        assert path.split(".")[0] in bundled().regions["370100"], path


def test_care_kind_and_which_funds_pay() -> None:
    assert f.care_kind(claim()) == "outpatient"
    assert f.care_kind(claim(opsp_dise_code="M03900")) == "chronic"
    assert f.pays(EMPLOYEE, "inpatient", "330100") and not f.pays(EMPLOYEE, "outpatient", "330100")
    assert not any(f.pays(EMPLOYEE, "pharmacy", code) for code in ("310100", "320100", "390200", "610100"))
    assert f.pays(SHENZHEN, "pharmacy", "310100") and not f.pays(SHENZHEN, "pharmacy", "610100")


def test_basic_ratio_by_kind_level_and_filing() -> None:
    assert f.basic_ratio(EMPLOYEE, claim("inpatient", 3), "inpatient", None) == (Decimal("0.85"), [])
    assert f.basic_ratio(RETIRED, claim("outpatient", 2), "outpatient", None)[0] == Decimal("0.70")
    assert f.basic_ratio(EMPLOYEE, claim("pharmacy"), "pharmacy", None)[0] == 0  # 370100 pools no pharmacy purchase
    assert f.basic_ratio(SHENZHEN, claim("pharmacy"), "pharmacy", None)[0] == Decimal("0.5")
    ratio, notes = f.basic_ratio(EMPLOYEE, claim("inpatient", 3, unfiled_cross_province=True), "inpatient", None)
    assert ratio == Decimal("0.75") and "跨省未备案" in notes[0]
    terms = EMPLOYEE.chronic["M03900"]
    assert f.basic_ratio(EMPLOYEE, claim(opsp_dise_code="M03900"), "chronic", terms)[0] == Decimal("0.75")


def test_deductible_outpatient_yearly_inpatient_per_admission_chronic_per_disease() -> None:
    ratio = Decimal("0.7")
    assert f.deductible(EMPLOYEE, claim(), YearToDate(otp_dedc=50_000), "outpatient", None, ratio, 100_000).met == 30_000
    assert f.deductible(EMPLOYEE, claim(), YearToDate(otp_dedc=50_000), "outpatient", None, ratio, 10_000).met == 10_000
    assert f.deductible(EMPLOYEE, claim("inpatient", 3), YearToDate(), "inpatient", None, ratio, 10**7).met == 100_000
    assert f.deductible(EMPLOYEE, claim("inpatient", 3, admission_no=2), YearToDate(), "inpatient", None, ratio, 10**7).met == 50_000
    mid_stay = claim("inpatient", 3, admission_dedc_paid=40_000)
    assert f.deductible(EMPLOYEE, mid_stay, YearToDate(), "inpatient", None, ratio, 10**7).met == 60_000
    cancer = EMPLOYEE.chronic["M00503"]
    met = claim(opsp_dise_code="M00503", chronic_ytd=ChronicYearToDate(dedc=10_000))
    assert f.deductible(EMPLOYEE, met, YearToDate(), "chronic", cancer, ratio, 10**7).met == 20_000
    assert f.deductible(EMPLOYEE, claim("pharmacy"), YearToDate(), "pharmacy", None, Decimal(0), 10_000).met == 0


def test_basic_fund_stops_at_the_tightest_cap() -> None:
    ratio = Decimal("0.85")
    free = f.basic_fund(EMPLOYEE, claim("inpatient", 3), YearToDate(), "inpatient", None, ratio, 1_100_000, 100_000)
    assert (free.paid, free.uncapped) == (850_000, 850_000)
    capped = f.basic_fund(EMPLOYEE, claim("inpatient", 3), YearToDate(hifp=14_800_000), "inpatient", None, ratio, 1_100_000, 100_000)
    assert (capped.paid, capped.uncapped, capped.payment.crt_payb_lmt_amt) == (200_000, 850_000, 200_000)
    # outpatient care: the outpatient cap (4,000.00 a year) is tighter than the basic fund's
    otp = f.basic_fund(EMPLOYEE, claim(), YearToDate(hifp_otp=390_000), "outpatient", None, Decimal("0.7"), 100_000, 0)
    assert otp.paid == 10_000


def test_large_amount_turns_the_cap_left_back_into_in_scope_amount() -> None:
    # docs/policy.md §4 C: 2,000.00 of the cap left covers 2,352.94 of in-scope amount at 85%; 330 pays 90% of 7,647.06
    ratio = Decimal("0.85")
    basic = f.basic_fund(EMPLOYEE, claim("inpatient", 3), YearToDate(hifp=14_800_000), "inpatient", None, ratio, 1_100_000, 100_000)
    hifob = f.large_amount(EMPLOYEE, claim("inpatient", 3), YearToDate(), "inpatient", 1_000_000, ratio, basic)
    assert hifob is not None and (hifob.inscp_scp_amt, hifob.fund_payamt) == (764_706, 688_235)
    not_enrolled = claim("inpatient", 3, enrolled=frozenset({"310"}))
    assert f.large_amount(EMPLOYEE, not_enrolled, YearToDate(), "inpatient", 1_000_000, ratio, basic) is None
    spent = f.large_amount(EMPLOYEE, claim("inpatient", 3), YearToDate(hifob=39_900_000), "inpatient", 1_000_000, ratio, basic)
    assert spent is not None and spent.fund_payamt == 100_000  # 400,000.00 a year


def test_civil_servant_catastrophic_and_assistance() -> None:
    civil = claim("inpatient", enrolled=EMPLOYEE_FUNDS, cvlserv=True)
    assert f.civil_servant(EMPLOYEE, civil, "inpatient", 10_000).fund_payamt == 5_000  # type: ignore[union-attr]
    assert f.civil_servant(EMPLOYEE, civil, "pharmacy", 10_000) is None
    assert f.civil_servant(EMPLOYEE, claim("inpatient", cvlserv=False), "inpatient", 10_000) is None
    resident = claim("inpatient", enrolled=frozenset({"390", "392"}))
    below = f.catastrophic(RESIDENT, resident, YearToDate(inscp_self=1_000_000), "inpatient", 400_000, 0)
    assert below is not None and below.fund_payamt == 0 and "未达起付标准" in below.setl_proc_info
    across = f.catastrophic(RESIDENT, resident, YearToDate(inscp_self=1_400_000), "inpatient", 200_000, 0)
    assert across is not None and across.fund_payamt == 60_000  # 1,000.00 above 15,000.00 at 60%
    assert f.catastrophic(RESIDENT, resident, YearToDate(inscp_self=2_000_000), "outpatient", 200_000, 0) is None
    assert f.threshold_burden(RESIDENT, "inpatient", 7) == 7 and f.threshold_burden(RESIDENT, "chronic", 7) == 7
    assert f.threshold_burden(RESIDENT, "outpatient", 7) == 0 and f.threshold_burden(RESIDENT, "pharmacy", 7) == 0
    poor = claim("outpatient", assistance_identity="2101")
    assert f.assistance(EMPLOYEE, poor, YearToDate(), "outpatient", 10_000).fund_payamt == 10_000  # type: ignore[union-attr]
    assert f.assistance(EMPLOYEE, poor, YearToDate(maf=2_999_000), "outpatient", 10_000).fund_payamt == 1_000  # type: ignore[union-attr]
    assert f.assistance(EMPLOYEE, poor, YearToDate(), "pharmacy", 10_000) is None


def test_patient_part_account_first_then_mutual_aid_then_cash() -> None:
    assert f.patient_part(claim(acct_balance=300, mulaid_balance=200, acct_used=True), 1_000) == f.PatientPart(300, 200, 500)
    assert f.patient_part(claim(acct_balance=300, acct_used=False), 1_000) == f.PatientPart(0, 0, 1_000)


def test_a_disease_the_policy_does_not_pay_is_refused() -> None:
    with pytest.raises(ValueError, match="M99999"):
        f.chronic_terms(EMPLOYEE, claim(opsp_dise_code="M99999"))


# -- invariants ---------------------------------------------------------------------------------------------------

policies = st.sampled_from([EMPLOYEE, RETIRED, RESIDENT, SHENZHEN])
kinds = st.sampled_from(["outpatient", "inpatient", "pharmacy"])
fen = st.integers(0, 50_000_000)


@settings(max_examples=300, deadline=None)
@given(policies, kinds, st.integers(1, 3), fen, fen, st.integers(0, 25_000_000), st.integers(0, 2_000_000))
def test_the_basic_fund_never_pays_above_its_caps_or_the_amount(policy, kind, lv, inscp, dedc_seen, hifp_ytd, otp_ytd) -> None:  # type: ignore[no-untyped-def]
    c = claim(kind, lv)
    ytd = YearToDate(hifp=hifp_ytd, hifp_otp=otp_ytd, otp_dedc=dedc_seen % 200_000)
    ratio, _ = f.basic_ratio(policy, c, kind, None)
    dedc = f.deductible(policy, c, ytd, kind, None, ratio, inscp)
    assert 0 <= dedc.met <= inscp
    basic = f.basic_fund(policy, c, ytd, kind, None, ratio, inscp, dedc.met)
    assert 0 <= basic.paid <= min(basic.uncapped, basic.payment.crt_payb_lmt_amt) and basic.paid <= inscp - dedc.met
    assert hifp_ytd + basic.paid <= max(hifp_ytd, policy.get("caps.basic_fund.{insutype}.all"))
    hifob = f.large_amount(policy, c, ytd, kind, inscp - dedc.met, ratio, basic)
    if hifob is not None:
        # 330 pays on what the basic fund's cap left out of scope, never on more than there is
        assert 0 <= hifob.fund_payamt <= hifob.inscp_scp_amt <= inscp - dedc.met
        assert basic.paid + hifob.fund_payamt <= inscp


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 20_000_000), st.integers(0, 5_000_000), st.integers(0, 5_000_000))
def test_catastrophic_tiers_add_up_whatever_the_split(before, first, second) -> None:  # type: ignore[no-untyped-def]
    # paying a burden in two settlements gives what paying it at once gives (up to the fen each rounding costs)
    tiers = RESIDENT.get("second_tier.catastrophic.tiers")
    whole, _ = f._tiers(before, before + first + second, tiers)
    one, _ = f._tiers(before, before + first, tiers)
    two, _ = f._tiers(before + first, before + first + second, tiers)
    assert one + two == whole
    assert 0 <= whole <= first + second


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000_000), st.integers(0, 10_000_000), st.integers(0, 10_000_000), st.booleans())
def test_the_patients_part_is_paid_exactly(psn_part, balance, mulaid, used) -> None:  # type: ignore[no-untyped-def]
    part = f.patient_part(claim(acct_balance=balance, mulaid_balance=mulaid, acct_used=used), psn_part)
    assert part.acct + part.mulaid + part.cash == psn_part
    assert 0 <= part.acct <= balance and 0 <= part.mulaid <= mulaid and part.cash >= 0
