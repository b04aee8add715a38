"""What the settlement formulas work on and answer: fee lines and their splits, the claim, the year-to-date totals,
each fund's payment and the outcome. All amounts are integer fen."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

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
    referral_cross_province: bool = False  # care in another province under a referral filing (转诊备案)
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
