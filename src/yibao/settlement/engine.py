"""The pure settlement engine.

`classify` splits one fee line by the catalogue; `settle` turns the splits, the person's
year-to-date totals and the policy into fund payments, the patient's part, the account
payment and the year-to-date changes to post. All amounts are integer fen; each fund's
payment is rounded half-up once and the patient's part is the difference, so sums are exact.
Nothing here reads or writes storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from yibao.policy.service import Policy

Kind = Literal["outpatient", "inpatient", "pharmacy"]
ZERO = Decimal(0)

FUND_NAMES = {
    "310100": "城镇职工基本医疗保险统筹基金",
    "390100": "城乡居民基本医疗保险基金",
    "330100": "大额医疗费用补助基金",
    "320100": "公务员医疗补助基金",
    "390200": "城乡居民大病医疗保险基金",
    "610100": "医疗救助基金",
}


def rnd(value: Decimal) -> int:
    """Half-up to whole fen."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_text(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def pct(ratio: Decimal) -> str:
    return f"{(ratio * 100).normalize():f}%"


@dataclass(frozen=True)
class CatalogRule:
    """What the catalogue of the place of care says about one code."""

    med_list_codg: str
    chrgitm_lv: str
    med_chrgitm_type: str
    list_type: str = "101"
    pric_uplmt_fen: int | None = None
    lmt_gend: str | None = None
    lmt_age_min: int | None = None
    lmt_age_max: int | None = None
    lmt_hosp_lv: int | None = None
    rx_flag: str = "0"
    lmt_used_flag: str = "0"


@dataclass(frozen=True)
class FeeLine:
    feedetl_sn: str
    med_list_codg: str
    amount_fen: int
    cnt: Decimal = Decimal(1)
    pric: Decimal = ZERO


@dataclass(frozen=True)
class LineSplit:
    feedetl_sn: str
    amount: int
    fulamt_ownpay: int
    overlmt: int
    preselfpay: int
    inscp: int
    chrgitm_lv: str
    med_chrgitm_type: str
    selfpay_prop: Decimal
    pric_uplmt_fen: int | None
    lmt_used_flag: str
    memo: str


@dataclass(frozen=True)
class Patient:
    age: int
    gend: str


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


def classify(line: FeeLine, rule: CatalogRule | None, patient: Patient, hosp_lv: int, yi_selfpay_prop: Decimal) -> LineSplit:
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


@dataclass(frozen=True)
class YearToDate:
    """A person's totals for the calendar year, as maintained in storage."""

    otp_dedc: int = 0       # outpatient deductible met
    hifp_otp: int = 0       # pooled fund paid for outpatient and pharmacy care
    hifp: int = 0           # pooled fund paid in all
    hifob: int = 0          # large-amount subsidy (330)
    cvlserv: int = 0        # civil-servant subsidy (320)
    hifmi: int = 0          # residents' catastrophic insurance (392)
    maf: int = 0            # medical assistance (610)
    inscp_self: int = 0     # personal in-scope burden after the basic fund (catastrophic threshold)

    def plus(self, other: YearToDate, sign: int = 1) -> YearToDate:
        return YearToDate(**{k: getattr(self, k) + sign * getattr(other, k) for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class ChronicYearToDate:
    """A person's totals for one registered chronic or special disease in the calendar year (门诊慢特病)."""

    dedc: int = 0  # the disease's deductible met
    hifp: int = 0  # the pooled fund paid for it (bounded by the disease's annual cap)

    def plus(self, other: ChronicYearToDate, sign: int = 1) -> ChronicYearToDate:
        return ChronicYearToDate(self.dedc + sign * other.dedc, self.hifp + sign * other.hifp)


@dataclass(frozen=True)
class Claim:
    kind: Kind
    hosp_lv: int
    enrolled: frozenset[str]
    cvlserv: bool = False
    assistance_identity: str | None = None
    unfiled_cross_province: bool = False
    admission_no: int = 1            # 1 for the first admission of the year
    admission_dedc_paid: int = 0     # deductible already met in this admission (mid-stay settlements)
    acct_balance: int = 0
    mulaid_balance: int = 0
    acct_used: bool = False
    # med_type 14: the registered disease (national 1309 code) this care is for, paid by its own terms in the policy,
    # and what was met and paid for it so far this year
    opsp_dise_code: str = ""
    chronic_ytd: ChronicYearToDate = ChronicYearToDate()


@dataclass(frozen=True)
class FundPayment:
    fund_pay_type: str
    inscp_scp_amt: int
    crt_payb_lmt_amt: int  # 本次可支付限额: what is left of a capped fund, else the amount the fund applies to
    fund_payamt: int
    setl_proc_info: str

    @property
    def name(self) -> str:
        return FUND_NAMES.get(self.fund_pay_type, self.fund_pay_type)


@dataclass(frozen=True)
class Outcome:
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    hifp_pay: int
    pool_prop_selfpay: Decimal
    cvlserv_pay: int
    hifmi_pay: int
    hifob_pay: int
    maf_pay: int
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    acct_mulaid_pay: int
    psn_cash_pay: int
    balc: int
    funds: tuple[FundPayment, ...]
    ytd_delta: YearToDate
    steps: tuple[str, ...]
    lines: tuple[LineSplit, ...] = field(default=())
    hifes_pay: int = 0
    oth_pay: int = 0
    hosp_part_amt: int = 0
    # the change to the chronic disease's year-to-date row (med_type 14 only)
    chronic_delta: ChronicYearToDate = ChronicYearToDate()


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


def settle(policy: Policy, claim: Claim, ytd: YearToDate, lines: tuple[LineSplit, ...] | list[LineSplit]) -> Outcome:
    lines = tuple(lines)
    total = sum(s.amount for s in lines)
    fulamt = sum(s.fulamt_ownpay for s in lines)
    over = sum(s.overlmt for s in lines)
    pre = sum(s.preselfpay for s in lines)
    inscp = sum(s.inscp for s in lines)
    steps = [f"医疗费总额{yuan_text(total)}元 = 全自费{yuan_text(fulamt)} + 超限价{yuan_text(over)} + 先行自付{yuan_text(pre)} + 政策范围内{yuan_text(inscp)}"]
    funds: list[FundPayment] = []
    outpatient_like = claim.kind != "inpatient"
    basic_fund = "310100" if policy.insutype == "310" else "390100"
    chronic = None
    if claim.opsp_dise_code:
        # chronic care is paid by the disease's own terms, never the general outpatient deductible, ratio and cap
        chronic = policy.chronic.get(claim.opsp_dise_code)
        if chronic is None or claim.kind != "outpatient":
            raise ValueError(f"the policy of {policy.admdvs} pays no {claim.kind} chronic care for {claim.opsp_dise_code} "
                             f"under insutype {policy.insutype}")
        steps.append(f"门诊慢特病{claim.opsp_dise_code}：{chronic}")

    # 1. ratio of the basic pooled fund
    if chronic is not None:
        ratio = chronic.ratio
    elif claim.kind == "inpatient":
        ratio = policy.ipt_ratio[claim.hosp_lv]
    elif claim.kind == "outpatient":
        ratio = policy.otp_ratio[claim.hosp_lv]
    else:
        ratio = policy.pharmacy_ratio
    if claim.unfiled_cross_province and ratio > 0:
        ratio = max(ZERO, ratio - policy.unfiled_reduction)
        steps.append(f"跨省未备案就医，支付比例降低{pct(policy.unfiled_reduction)}")

    # 2. deductible (only where the pooled fund pays)
    if ratio == 0:
        remaining_dedc = 0
        steps.append("本类就医统筹基金不予支付")
    elif chronic is not None:
        remaining_dedc = max(0, chronic.deductible - claim.chronic_ytd.dedc)
        steps.append(f"门诊慢特病{claim.opsp_dise_code}起付线{yuan_text(chronic.deductible)}元，本年已付{yuan_text(claim.chronic_ytd.dedc)}元")
    elif outpatient_like:
        remaining_dedc = max(0, policy.otp_deductible - ytd.otp_dedc)
        steps.append(f"门诊起付线{yuan_text(policy.otp_deductible)}元，本年已付{yuan_text(ytd.otp_dedc)}元")
    else:
        full = policy.ipt_deductible[claim.hosp_lv]
        if claim.admission_no > 1:
            full = rnd(Decimal(full) * policy.later_admission_share)
        remaining_dedc = max(0, full - claim.admission_dedc_paid)
        steps.append(f"住院起付线{yuan_text(full)}元（本年第{claim.admission_no}次住院），本次住院已付{yuan_text(claim.admission_dedc_paid)}元")
    dedc = min(inscp, remaining_dedc)
    base = inscp - dedc

    # 3. basic pooled fund, bounded by the caps
    cap_left = max(0, policy.basic_fund_cap - ytd.hifp)
    if chronic is not None:
        cap_left = min(cap_left, max(0, chronic.annual_cap - claim.chronic_ytd.hifp))
    elif outpatient_like:
        cap_left = min(cap_left, max(0, policy.otp_fund_cap - ytd.hifp_otp))
    uncapped = rnd(Decimal(base) * ratio)
    hifp = min(uncapped, cap_left)
    info = (f"门诊慢特病{claim.opsp_dise_code}：" if chronic is not None else "") + \
        f"({yuan_text(inscp)}−起付线{yuan_text(dedc)})×{pct(ratio)}={yuan_text(uncapped)}元"
    if hifp < uncapped:
        info += f"，年度限额剩余{yuan_text(cap_left)}元，支付{yuan_text(hifp)}元"
    funds.append(FundPayment(basic_fund, inscp, cap_left, hifp, info))
    steps.append(f"基本统筹：{info}")

    # 4. second tier
    hifob = 0
    if claim.kind == "inpatient" and "330" in claim.enrolled and hifp < uncapped and ratio > 0:
        covered_base = min(base, rnd(Decimal(hifp) / ratio))
        excess = base - covered_base
        la_left = max(0, policy.large_amount_cap - ytd.hifob)
        hifob = min(rnd(Decimal(excess) * policy.large_amount_ratio), la_left)
        info = f"超基本封顶部分{yuan_text(excess)}元×{pct(policy.large_amount_ratio)}，年度限额剩余{yuan_text(la_left)}元"
        funds.append(FundPayment("330100", excess, la_left, hifob, info))
        steps.append(f"职工大额补助：{info}")
    burden = inscp - hifp - hifob
    cvlserv = 0
    if claim.cvlserv and "320" in claim.enrolled and burden > 0:
        cvl_ratio = policy.cvlserv_ipt_ratio if claim.kind == "inpatient" else policy.cvlserv_otp_ratio
        cvlserv = rnd(Decimal(burden) * cvl_ratio)
        info = f"个人负担政策范围内{yuan_text(burden)}元×{pct(cvl_ratio)}"
        # a fund without an annual cap may pay this time up to the amount it applies to (本次可支付限额)
        funds.append(FundPayment("320100", burden, burden, cvlserv, info))
        steps.append(f"公务员医疗补助：{info}")
    hifmi = 0
    cat_burden = inscp - hifp
    # residents' catastrophic insurance pays on inpatient and chronic/special-disease care (rules.md)
    if (claim.kind == "inpatient" or chronic is not None) and "392" in claim.enrolled and cat_burden > 0:
        exact, notes = _tiers(ytd.inscp_self, ytd.inscp_self + cat_burden, policy.catastrophic_tiers)
        hifmi = min(rnd(exact), cat_burden - cvlserv)
        info = (f"年度累计个人负担{yuan_text(ytd.inscp_self)}→{yuan_text(ytd.inscp_self + cat_burden)}元，起付"
                f"{yuan_text(policy.catastrophic_tiers[0][0])}元" + ("；" + "；".join(notes) if notes else "，未达起付标准"))
        funds.append(FundPayment("390200", cat_burden, cat_burden, hifmi, info))
        steps.append(f"居民大病保险：{info}")
    maf = 0
    assistance = policy.assistance_ratio.get(claim.assistance_identity or "")
    left = inscp - hifp - hifob - cvlserv - hifmi
    if assistance is not None and left > 0:
        maf_left = max(0, policy.assistance_cap - ytd.maf)
        maf = min(rnd(Decimal(left) * assistance), maf_left)
        info = f"剩余政策范围内{yuan_text(left)}元×{pct(assistance)}，年度限额剩余{yuan_text(maf_left)}元"
        funds.append(FundPayment("610100", left, maf_left, maf, info))
        steps.append(f"医疗救助：{info}")

    # 5. the patient's part: personal account first, family mutual aid next, cash the rest
    fund_sum = hifp + hifob + cvlserv + hifmi + maf
    psn_part = total - fund_sum
    acct = min(claim.acct_balance, psn_part) if claim.acct_used else 0
    mulaid = min(claim.mulaid_balance, psn_part - acct) if claim.acct_used else 0
    cash = psn_part - acct - mulaid
    steps.append(f"基金支付{yuan_text(fund_sum)}元，个人负担{yuan_text(psn_part)}元：个人账户{yuan_text(acct)}元"
                 + (f"，共济账户{yuan_text(mulaid)}元" if mulaid else "") + f"，现金{yuan_text(cash)}元")
    general_outpatient = outpatient_like and chronic is None
    delta = YearToDate(otp_dedc=dedc if general_outpatient else 0, hifp_otp=hifp if general_outpatient else 0, hifp=hifp, hifob=hifob,
                       cvlserv=cvlserv, hifmi=hifmi, maf=maf, inscp_self=cat_burden)
    return Outcome(
        medfee_sumamt=total, fulamt_ownpay_amt=fulamt, overlmt_selfpay=over, preselfpay_amt=pre, inscp_scp_amt=inscp,
        act_pay_dedc=dedc, hifp_pay=hifp, pool_prop_selfpay=ratio, cvlserv_pay=cvlserv, hifmi_pay=hifmi, hifob_pay=hifob,
        maf_pay=maf, fund_pay_sumamt=fund_sum, psn_part_amt=psn_part, acct_pay=acct, acct_mulaid_pay=mulaid, psn_cash_pay=cash,
        balc=claim.acct_balance - acct, funds=tuple(funds), ytd_delta=delta, steps=tuple(steps), lines=lines,
        chronic_delta=ChronicYearToDate(dedc, hifp) if chronic is not None else ChronicYearToDate(),
    )
