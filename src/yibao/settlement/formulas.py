"""One small pure function per step of a settlement, each reading only the policy parameters it declares.

The order (docs/policy.md §1): classify each fee line; the kind of care and which funds pay for it; the basic fund's
ratio; the deductible; the basic fund under its caps; the large-amount subsidy (330) above the basic cap; the
civil-servant subsidy (320); the residents' catastrophic insurance (392); medical assistance (610); the patient's part
from the account, the family mutual-aid account and cash. `engine.settle` runs them in that order.

Each fund's payment is rounded half-up to the fen once; the patient's part is what the funds leave, so sums are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from yibao.policy.service import ChronicTerms, Policy, reads
from yibao.settlement.model import (
    ZERO,
    CatalogRule,
    Claim,
    FeeLine,
    FundPayment,
    LineSplit,
    Patient,
    YearToDate,
    pct,
    rnd,
    yuan_text,
)

# -- 1. classification -------------------------------------------------------------------------------------------


def restriction_failure(rule: CatalogRule, patient: Patient, hosp_lv: int) -> str | None:
    if rule.lmt_gend and rule.lmt_gend != patient.gend:
        return f"限{'男' if rule.lmt_gend == '1' else '女'}性使用"
    if rule.lmt_age_min is not None and patient.age < rule.lmt_age_min:
        return f"限{rule.lmt_age_min}岁及以上使用"
    if rule.lmt_age_max is not None and patient.age > rule.lmt_age_max:
        return f"限{rule.lmt_age_max}岁及以下使用"
    if rule.lmt_hosp_lv is not None and hosp_lv < rule.lmt_hosp_lv:
        return f"限{rule.lmt_hosp_lv}级及以上医疗机构使用"
    return None


@reads("catalogue.yi_selfpay_prop.all")
def yi_selfpay_prop(policy: Policy) -> Decimal:
    return policy.get("catalogue.yi_selfpay_prop.all")


def classify(line: FeeLine, rule: CatalogRule | None, patient: Patient, hosp_lv: int, yi_selfpay_prop: Decimal) -> LineSplit:
    """Split one fee line by the catalogue of the place of care: self-paid, above the price cap, 乙 first share, in scope."""
    amount = line.amount_fen

    def whole_selfpay(level: str, kind: str, memo: str) -> LineSplit:
        return LineSplit(line.feedetl_sn, amount, amount, 0, 0, 0, level, kind, Decimal(1),
                         rule.pric_uplmt_fen if rule else None, rule.lmt_used_flag if rule else "0", memo)

    if rule is None:
        return whole_selfpay("03", "14", "目录外项目，全自费")
    if rule.chrgitm_lv == "03":
        return whole_selfpay("03", rule.med_chrgitm_type, "丙类，全自费")
    failure = restriction_failure(rule, patient, hosp_lv)
    if failure:
        return whole_selfpay(rule.chrgitm_lv, rule.med_chrgitm_type, f"{failure}，不符合限制条件，全自费")
    allowed = amount
    memo = ""
    if rule.pric_uplmt_fen is not None:
        allowed = min(amount, rnd(Decimal(rule.pric_uplmt_fen) * line.cnt))
        if allowed < amount:
            memo = f"超限价{yuan_text(amount - allowed)}元"
    over = amount - allowed
    prop = yi_selfpay_prop if rule.chrgitm_lv == "02" else ZERO
    pre = rnd(Decimal(allowed) * prop)
    return LineSplit(line.feedetl_sn, amount, 0, over, pre, allowed - pre, rule.chrgitm_lv, rule.med_chrgitm_type, prop,
                     rule.pric_uplmt_fen, rule.lmt_used_flag, memo)


# -- 2. the kind of care and which funds pay for it --------------------------------------------------------------


def care_kind(claim: Claim) -> str:
    """outpatient | inpatient | pharmacy | chronic (outpatient care of a registered chronic or special disease)."""
    return "chronic" if claim.opsp_dise_code else claim.kind


@reads("funds.pays_for.{kind}")
def pays(policy: Policy, kind: str, fund_pay_type: str) -> bool:
    """Whether the fund pays anything for this kind of care (funds.yaml)."""
    return fund_pay_type in policy.get("funds.pays_for.{kind}", kind=kind)


def basic_fund_code(policy: Policy) -> str:
    return "310100" if policy.insutype == "310" else "390100"


def chronic_terms(policy: Policy, claim: Claim) -> ChronicTerms | None:
    """The registered disease's own terms (chronic.yaml); care of a disease the policy does not pay is refused."""
    if not claim.opsp_dise_code:
        return None
    terms = policy.chronic.get(claim.opsp_dise_code)
    if terms is None or claim.kind != "outpatient":
        raise ValueError(f"the policy of {policy.admdvs} pays no {claim.kind} chronic care for {claim.opsp_dise_code} "
                         f"under insutype {policy.insutype}")
    return terms


# -- 3. the basic fund's ratio ------------------------------------------------------------------------------------


@reads("pool_ratio.inpatient.{insutype}.{category}.level_{level}", "pool_ratio.outpatient.{insutype}.{category}.level_{level}",
       "pool_ratio.pharmacy.{insutype}.all", "pool_ratio.unfiled_reduction.all", "pool_ratio.referral_reduction.all")
def basic_ratio(policy: Policy, claim: Claim, kind: str, chronic: ChronicTerms | None) -> tuple[Decimal, list[str]]:
    """The share of the in-scope amount above the deductible the basic fund pays, and why."""
    notes: list[str] = []
    if not pays(policy, kind, basic_fund_code(policy)):
        return ZERO, notes
    if chronic is not None:
        ratio = chronic.ratio
    elif kind == "pharmacy":
        ratio = policy.get("pool_ratio.pharmacy.{insutype}.all")
    else:
        ratio = policy.get(f"pool_ratio.{kind}.{{insutype}}.{{category}}.level_{{level}}", level=claim.hosp_lv)
    if claim.unfiled_cross_province and ratio > 0:
        reduction = policy.get("pool_ratio.unfiled_reduction.all")
        ratio = max(ZERO, ratio - reduction)
        notes.append(f"跨省未备案就医，支付比例降低{pct(reduction)}")
    elif claim.referral_cross_province and ratio > 0:
        reduction = policy.get("pool_ratio.referral_reduction.all")
        ratio = max(ZERO, ratio - reduction)
        if reduction:
            notes.append(f"跨省转诊备案就医，支付比例降低{pct(reduction)}")
    return ratio, notes


# -- 4. the deductible --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deductible:
    met: int  # what this settlement meets (act_pay_dedc)
    note: str


@reads("deductible.outpatient.{insutype}.{category}", "deductible.inpatient.{insutype}.level_{level}",
       "deductible.later_admission_share.all")
def deductible(policy: Policy, claim: Claim, ytd: YearToDate, kind: str, chronic: ChronicTerms | None, ratio: Decimal,
               inscp: int) -> Deductible:
    """起付线: only where the basic fund pays. Outpatient once a year; chronic once a year per disease; inpatient per
    admission by hospital level, a share of it from the year's second admission."""
    if ratio == 0:
        return Deductible(0, "本类就医统筹基金不予支付")
    if chronic is not None:
        left = max(0, chronic.deductible - claim.chronic_ytd.dedc)
        note = f"门诊慢特病{claim.opsp_dise_code}起付线{yuan_text(chronic.deductible)}元，本年已付{yuan_text(claim.chronic_ytd.dedc)}元"
    elif kind != "inpatient":
        full = policy.get("deductible.outpatient.{insutype}.{category}")
        left = max(0, full - ytd.otp_dedc)
        note = f"门诊起付线{yuan_text(full)}元，本年已付{yuan_text(ytd.otp_dedc)}元"
    else:
        full = policy.get("deductible.inpatient.{insutype}.level_{level}", level=claim.hosp_lv)
        if claim.admission_no > 1:
            full = rnd(Decimal(full) * policy.get("deductible.later_admission_share.all"))
        left = max(0, full - claim.admission_dedc_paid)
        note = f"住院起付线{yuan_text(full)}元（本年第{claim.admission_no}次住院），本次住院已付{yuan_text(claim.admission_dedc_paid)}元"
    return Deductible(min(inscp, left), note)


# -- 5. the basic pooled fund under its caps ----------------------------------------------------------------------


@dataclass(frozen=True)
class BasicFund:
    payment: FundPayment
    uncapped: int  # what the ratio alone would pay: above the payment, the cap stopped it

    @property
    def paid(self) -> int:
        return self.payment.fund_payamt


@reads("caps.basic_fund.{insutype}.all", "caps.outpatient_fund.{insutype}.{category}")
def basic_fund(policy: Policy, claim: Claim, ytd: YearToDate, kind: str, chronic: ChronicTerms | None, ratio: Decimal,
               inscp: int, dedc: int) -> BasicFund:
    """(in scope − deductible) × ratio, bounded by the basic fund's annual cap and, for outpatient and pharmacy care,
    the outpatient cap (chronic care: the disease's own cap instead)."""
    cap_left = max(0, policy.get("caps.basic_fund.{insutype}.all") - ytd.hifp)
    if chronic is not None:
        cap_left = min(cap_left, max(0, chronic.annual_cap - claim.chronic_ytd.hifp))
    elif kind != "inpatient":
        cap_left = min(cap_left, max(0, policy.get("caps.outpatient_fund.{insutype}.{category}") - ytd.hifp_otp))
    uncapped = rnd(Decimal(inscp - dedc) * ratio)
    paid = min(uncapped, cap_left)
    info = (f"门诊慢特病{claim.opsp_dise_code}：" if chronic is not None else "") + \
        f"({yuan_text(inscp)}−起付线{yuan_text(dedc)})×{pct(ratio)}={yuan_text(uncapped)}元"
    if paid < uncapped:
        info += f"，年度限额剩余{yuan_text(cap_left)}元，支付{yuan_text(paid)}元"
    return BasicFund(FundPayment(basic_fund_code(policy), inscp, cap_left, paid, info), uncapped)


# -- 6. second-tier funds, each on what the earlier ones left -----------------------------------------------------


@reads("second_tier.large_amount.ratio", "second_tier.large_amount.annual_cap.all")
def large_amount(policy: Policy, claim: Claim, ytd: YearToDate, kind: str, base: int, ratio: Decimal, basic: BasicFund
                 ) -> FundPayment | None:
    """330: above the basic fund's cap. The cap left is turned back into the in-scope amount it covers at the basic
    ratio (paid ÷ ratio); the rest of the in-scope amount is above the cap and 330 pays its ratio of it."""
    if not (pays(policy, kind, "330100") and "330" in claim.enrolled and basic.paid < basic.uncapped and ratio > 0):
        return None
    covered = min(base, rnd(Decimal(basic.paid) / ratio))
    excess = base - covered
    la_ratio = policy.get("second_tier.large_amount.ratio")
    left = max(0, policy.get("second_tier.large_amount.annual_cap.all") - ytd.hifob)
    paid = min(rnd(Decimal(excess) * la_ratio), left)
    info = f"超基本封顶部分{yuan_text(excess)}元×{pct(la_ratio)}，年度限额剩余{yuan_text(left)}元"
    return FundPayment("330100", excess, left, paid, info)


@reads("second_tier.civil_servant.outpatient", "second_tier.civil_servant.inpatient")
def civil_servant(policy: Policy, claim: Claim, kind: str, burden: int) -> FundPayment | None:
    """320: a share of the personal in-scope burden, for a civil servant enrolled in it."""
    if not (pays(policy, kind, "320100") and claim.cvlserv and "320" in claim.enrolled and burden > 0):
        return None
    ratio = policy.get("second_tier.civil_servant.inpatient" if kind == "inpatient" else "second_tier.civil_servant.outpatient")
    info = f"个人负担政策范围内{yuan_text(burden)}元×{pct(ratio)}"
    # a fund without an annual cap may pay this time up to the amount it applies to (本次可支付限额)
    return FundPayment("320100", burden, burden, rnd(Decimal(burden) * ratio), info)


def _tiers(before: int, after: int, tiers: tuple[tuple[int, Decimal], ...]) -> tuple[Decimal, list[str]]:
    """Catastrophic insurance on the part of [before, after) above each tier's threshold."""
    total = ZERO
    notes = []
    for i, (start, ratio) in enumerate(tiers):
        end = tiers[i + 1][0] if i + 1 < len(tiers) else None
        low = max(before, start)
        high = after if end is None else min(after, end)
        if high > low:
            total += Decimal(high - low) * ratio
            notes.append(f"{yuan_text(low)}–{yuan_text(high)}元×{pct(ratio)}")
    return total, notes


@reads("second_tier.catastrophic.threshold_counts.all")
def threshold_burden(policy: Policy, kind: str, burden: int) -> int:
    """What this settlement adds to the year's burden toward the catastrophic threshold: the personal in-scope burden
    after the basic fund, for the kinds of care the policy counts (second_tier.yaml), else nothing."""
    return burden if kind in policy.get("second_tier.catastrophic.threshold_counts.all") else 0


@reads("second_tier.catastrophic.tiers")
def catastrophic(policy: Policy, claim: Claim, ytd: YearToDate, kind: str, burden: int, cvlserv: int) -> FundPayment | None:
    """392: on the year's cumulative personal in-scope burden above the threshold, in tiers; never more than what the
    civil-servant subsidy left of this settlement's burden."""
    if not (pays(policy, kind, "390200") and "392" in claim.enrolled and burden > 0):
        return None
    tiers = policy.get("second_tier.catastrophic.tiers")
    exact, notes = _tiers(ytd.inscp_self, ytd.inscp_self + burden, tiers)
    info = (f"年度累计个人负担{yuan_text(ytd.inscp_self)}→{yuan_text(ytd.inscp_self + burden)}元，起付"
            f"{yuan_text(tiers[0][0])}元" + ("；" + "；".join(notes) if notes else "，未达起付标准"))
    return FundPayment("390200", burden, burden, min(rnd(exact), burden - cvlserv), info)


@reads("second_tier.medical_assistance.annual_cap.all")
def assistance(policy: Policy, claim: Claim, ytd: YearToDate, kind: str, left: int) -> FundPayment | None:
    """610: the identity's share of the in-scope amount the other funds left, up to the annual cap."""
    ratio = policy.assistance_ratio.get(claim.assistance_identity or "")
    if not (pays(policy, kind, "610100") and ratio is not None and left > 0):
        return None
    cap_left = max(0, policy.get("second_tier.medical_assistance.annual_cap.all") - ytd.maf)
    info = f"剩余政策范围内{yuan_text(left)}元×{pct(ratio)}，年度限额剩余{yuan_text(cap_left)}元"
    return FundPayment("610100", left, cap_left, min(rnd(Decimal(left) * ratio), cap_left), info)


# -- 7. the patient's part ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientPart:
    acct: int
    mulaid: int
    cash: int


def patient_part(claim: Claim, psn_part: int) -> PatientPart:
    """With account use on: the personal account first (never above its balance), the family mutual-aid accounts next,
    cash the rest."""
    acct = min(claim.acct_balance, psn_part) if claim.acct_used else 0
    mulaid = min(claim.mulaid_balance, psn_part - acct) if claim.acct_used else 0
    return PatientPart(acct, mulaid, psn_part - acct - mulaid)
