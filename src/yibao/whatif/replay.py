"""Replaying one person's settlements of a year under a policy book: pure, no storage.

A settlement is replayed from what it recorded: the fee split it was settled on (total, wholly self-paid, over the
price cap, paid first by the patient, in scope — the engine only sums its lines, so one line with those sums is the
same claim), the visit's facts (kind, hospital level, region, day of care) and the person's facts then (enrolments,
civil-servant flag, identities, filings for care away). What the earlier settlements of the year moved — deductible
met, fund caps used, the catastrophic threshold, admissions — is carried from one replayed settlement to the next, so
a lower deductible in March changes what a stay in October pays.

The personal account is taken as it was before each settlement (its recorded balance after plus what it paid), not
replayed: a changed policy moves money between the funds and the person, and the account only decides how the
person's part is paid. Relatives' accounts (共济) are taken as able to pay what they paid then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from yibao.policy.parameters import PolicyBook, PolicyError
from yibao.policy.service import Policy, category_of, snapshot
from yibao.settlement import engine

FUNDS = ("hifp_pay", "cvlserv_pay", "hifob_pay", "hifmi_pay", "maf_pay")


@dataclass(frozen=True)
class Recorded:
    """What the settlement paid when it was made, to compare a replay with."""

    fund_pay_sumamt: int
    hifp_pay: int
    cvlserv_pay: int
    hifob_pay: int
    hifmi_pay: int
    maf_pay: int
    psn_part_amt: int
    acct_pay: int
    psn_cash_pay: int


@dataclass(frozen=True)
class SettlementFacts:
    """One standing settlement of the year and everything its claim was built from."""

    setl_id: str
    psn_no: str
    mdtrt_id: str
    setl_time: datetime
    care_day: date
    kind: str                   # outpatient | inpatient | pharmacy
    med_type: str
    insutype: str
    psn_type: str
    insuplc_admdvs: str
    fixmedins_code: str
    hosp_lv: int
    cvlserv: bool
    enrolled: frozenset[str]
    identities: tuple[str, ...]
    unfiled: bool
    referral: bool
    opsp_dise_code: str
    mid_setl: bool
    acct_balance: int           # the person's own account before the settlement
    mulaid_balance: int
    acct_used: bool
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    recorded: Recorded


@dataclass(frozen=True)
class Replayed:
    """A settlement's outcome under one book (or why the book cannot settle it)."""

    facts: SettlementFacts
    fund_pay_sumamt: int = 0
    hifp_pay: int = 0
    cvlserv_pay: int = 0
    hifob_pay: int = 0
    hifmi_pay: int = 0
    maf_pay: int = 0
    psn_part_amt: int = 0
    acct_pay: int = 0
    psn_cash_pay: int = 0
    refused: str = ""


@dataclass
class _Year:
    """What a person's earlier settlements of the year moved, as the replay goes."""

    ytd: engine.YearToDate = field(default_factory=engine.YearToDate)
    admissions: int = 0
    chronic: dict[str, engine.ChronicYearToDate] = field(default_factory=dict)
    stays: dict[str, tuple[int, int]] = field(default_factory=dict)  # mdtrt_id → (admission number, deductible met)


class Books:
    """Policy snapshots of one book, cached: a year's replay asks the same few (region, type, category, day)."""

    def __init__(self, book: PolicyBook) -> None:
        self.book = book
        self._cache: dict[tuple[str, str, str, date], Policy] = {}
        self._dates: dict[str, list[date]] = {}

    def _in_force_since(self, admdvs: str, day: date) -> date:
        """The day the values in force on ``day`` took effect: a policy reads every parameter as of its day, so all the
        days between two changes share one checked snapshot (a year has a few changes, not 365 policies)."""
        dates = self._dates.get(admdvs)
        if dates is None:
            dates = self._dates[admdvs] = self.book.effective_dates(admdvs)
        at = bisect_right(dates, day)
        return dates[at - 1] if at else day

    def policy(self, facts: SettlementFacts) -> Policy:
        key = (facts.insuplc_admdvs, facts.insutype, category_of(facts.insutype, facts.psn_type),
               self._in_force_since(facts.insuplc_admdvs, facts.care_day))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = snapshot(self.book, *key)
        return found


def _line(facts: SettlementFacts) -> engine.LineSplit:
    return engine.LineSplit("", facts.medfee_sumamt, facts.fulamt_ownpay_amt, facts.overlmt_selfpay, facts.preselfpay_amt,
                            facts.inscp_scp_amt, "", "", Decimal(0), None, "0", "")


def replay_person(books: Books, settlements: Sequence[SettlementFacts]) -> list[Replayed]:
    """One person's standing settlements of one year, in the order they were made."""
    year = _Year()
    answers = []
    for facts in settlements:
        try:
            policy = books.policy(facts)
        except PolicyError as error:
            answers.append(Replayed(facts, refused=error.message))
            continue
        stay_no, stay_dedc = year.stays.get(facts.mdtrt_id, (0, 0))
        chronic = year.chronic.get(facts.opsp_dise_code, engine.ChronicYearToDate()) if facts.opsp_dise_code else engine.ChronicYearToDate()
        assistance = max((i for i in facts.identities if i in policy.assistance_ratio), key=lambda i: policy.assistance_ratio[i],
                         default=None)
        claim = engine.Claim(
            kind=facts.kind, hosp_lv=facts.hosp_lv, enrolled=facts.enrolled, cvlserv=facts.cvlserv,  # type: ignore[arg-type]
            assistance_identity=assistance, unfiled_cross_province=facts.unfiled, referral_cross_province=facts.referral,
            admission_no=stay_no or (year.admissions + 1), admission_dedc_paid=stay_dedc,
            acct_balance=facts.acct_balance, mulaid_balance=facts.mulaid_balance, acct_used=facts.acct_used,
            opsp_dise_code=facts.opsp_dise_code, chronic_ytd=chronic)
        try:
            out = engine.settle(policy, claim, year.ytd, [_line(facts)])
        except PolicyError as error:
            answers.append(Replayed(facts, refused=error.message))
            continue
        year.ytd = year.ytd.plus(out.ytd_delta)
        if facts.opsp_dise_code:
            year.chronic[facts.opsp_dise_code] = chronic.plus(out.chronic_delta)
        if facts.kind == "inpatient":
            counts = stay_no == 0 and out.medfee_sumamt > 0
            if counts:
                year.admissions += 1
            year.stays[facts.mdtrt_id] = (claim.admission_no if counts else stay_no, stay_dedc + out.act_pay_dedc)
        answers.append(Replayed(facts, out.fund_pay_sumamt, out.hifp_pay, out.cvlserv_pay, out.hifob_pay, out.hifmi_pay, out.maf_pay,
                                out.psn_part_amt, out.acct_pay, out.psn_cash_pay))
    return answers


def replay(books: Books, people: Iterable[Sequence[SettlementFacts]]) -> list[Replayed]:
    return [answer for settlements in people for answer in replay_person(books, settlements)]


def as_recorded(facts: SettlementFacts) -> Replayed:
    r = facts.recorded
    return Replayed(facts, r.fund_pay_sumamt, r.hifp_pay, r.cvlserv_pay, r.hifob_pay, r.hifmi_pay, r.maf_pay, r.psn_part_amt,
                    r.acct_pay, r.psn_cash_pay)


def same_amounts(a: Replayed, b: Replayed) -> bool:
    return replace(a, facts=b.facts) == b
