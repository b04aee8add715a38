"""The pure settlement engine: the formulas of `formulas.py` run in order.

`classify` splits one fee line by the catalogue; `settle` turns the splits, the person's year-to-date totals and the
policy into fund payments, the patient's part, the account payment and the year-to-date changes to post. All amounts
are integer fen; each fund's payment is rounded half-up once and the patient's part is the difference, so sums are
exact. Nothing here reads or writes storage.
"""

from __future__ import annotations

from yibao.policy.service import Policy
from yibao.settlement import formulas as f
from yibao.settlement.formulas import classify, restriction_failure
from yibao.settlement.model import (
    FUND_NAMES,
    ZERO,
    CatalogRule,
    ChronicYearToDate,
    Claim,
    FeeLine,
    FundPayment,
    Kind,
    LineSplit,
    Outcome,
    Patient,
    YearToDate,
    pct,
    rnd,
    yuan_text,
)

__all__ = ["FUND_NAMES", "ZERO", "CatalogRule", "ChronicYearToDate", "Claim", "FeeLine", "FundPayment", "Kind", "LineSplit",
           "Outcome", "Patient", "YearToDate", "classify", "pct", "restriction_failure", "rnd", "settle", "yuan_text"]


def settle(policy: Policy, claim: Claim, ytd: YearToDate, lines: tuple[LineSplit, ...] | list[LineSplit]) -> Outcome:
    lines = tuple(lines)
    total = sum(s.amount for s in lines)
    fulamt = sum(s.fulamt_ownpay for s in lines)
    over = sum(s.overlmt for s in lines)
    pre = sum(s.preselfpay for s in lines)
    inscp = sum(s.inscp for s in lines)
    steps = [f"医疗费总额{yuan_text(total)}元 = 全自费{yuan_text(fulamt)} + 超限价{yuan_text(over)} + 先行自付{yuan_text(pre)} "
             f"+ 政策范围内{yuan_text(inscp)}"]
    kind = f.care_kind(claim)
    chronic = f.chronic_terms(policy, claim)
    if chronic is not None:
        steps.append(f"门诊慢特病{claim.opsp_dise_code}：{chronic}")

    ratio, notes = f.basic_ratio(policy, claim, kind, chronic)
    steps += notes
    dedc = f.deductible(policy, claim, ytd, kind, chronic, ratio, inscp)
    steps.append(dedc.note)
    basic = f.basic_fund(policy, claim, ytd, kind, chronic, ratio, inscp, dedc.met)
    funds = [basic.payment]
    steps.append(f"基本统筹：{basic.payment.setl_proc_info}")

    hifob = f.large_amount(policy, claim, ytd, kind, inscp - dedc.met, ratio, basic)
    burden = inscp - basic.paid - (hifob.fund_payamt if hifob else 0)
    cvlserv = f.civil_servant(policy, claim, kind, burden)
    cat_burden = inscp - basic.paid
    hifmi = f.catastrophic(policy, claim, ytd, kind, cat_burden, cvlserv.fund_payamt if cvlserv else 0)
    paid_before = basic.paid + sum(p.fund_payamt for p in (hifob, cvlserv, hifmi) if p)
    maf = f.assistance(policy, claim, ytd, kind, inscp - paid_before)
    for label, payment in (("职工大额补助", hifob), ("公务员医疗补助", cvlserv), ("居民大病保险", hifmi), ("医疗救助", maf)):
        if payment is not None:
            funds.append(payment)
            steps.append(f"{label}：{payment.setl_proc_info}")

    fund_sum = sum(p.fund_payamt for p in funds)
    psn_part = total - fund_sum
    part = f.patient_part(claim, psn_part)
    steps.append(f"基金支付{yuan_text(fund_sum)}元，个人负担{yuan_text(psn_part)}元：个人账户{yuan_text(part.acct)}元"
                 + (f"，共济账户{yuan_text(part.mulaid)}元" if part.mulaid else "") + f"，现金{yuan_text(part.cash)}元")

    def amount(payment: FundPayment | None) -> int:
        return payment.fund_payamt if payment else 0

    # general outpatient and pharmacy care have their own deductible and cap; chronic care keeps its disease's books
    general_outpatient = kind in ("outpatient", "pharmacy")
    delta = YearToDate(otp_dedc=dedc.met if general_outpatient else 0, hifp_otp=basic.paid if general_outpatient else 0,
                       hifp=basic.paid, hifob=amount(hifob), cvlserv=amount(cvlserv), hifmi=amount(hifmi), maf=amount(maf),
                       inscp_self=f.threshold_burden(policy, kind, cat_burden))
    return Outcome(
        medfee_sumamt=total, fulamt_ownpay_amt=fulamt, overlmt_selfpay=over, preselfpay_amt=pre, inscp_scp_amt=inscp,
        act_pay_dedc=dedc.met, hifp_pay=basic.paid, pool_prop_selfpay=ratio, cvlserv_pay=amount(cvlserv), hifmi_pay=amount(hifmi),
        hifob_pay=amount(hifob), maf_pay=amount(maf), fund_pay_sumamt=fund_sum, psn_part_amt=psn_part, acct_pay=part.acct,
        acct_mulaid_pay=part.mulaid, psn_cash_pay=part.cash, balc=claim.acct_balance - part.acct, funds=tuple(funds),
        ytd_delta=delta, steps=tuple(steps), lines=lines,
        chronic_delta=ChronicYearToDate(dedc.met, basic.paid) if chronic is not None else ChronicYearToDate(),
    )
