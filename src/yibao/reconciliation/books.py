"""`yibao ledger check`: prove that the books agree with themselves.

1. every settlement's ledger entries sum to zero, and match the settlement's own amounts;
2. every year-to-date row (and every chronic disease's, med_type 14) equals the sum of what its settlements and
   reversals posted;
3. every personal account's balance equals opening + contributions credited − payments posted (settlements and credit
   care's repayments from the account).
All three are aggregate queries, so the check runs in seconds on a large region.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from yibao.credit.models import CreditRepayment
from yibao.encounter.models import Settlement
from yibao.encounter.service import home_share
from yibao.federation.models import AwaySettlement
from yibao.ledger.models import ChronicYearTotal, LedgerEntry, YearTotal
from yibao.registry.models import Account, Contribution

YTD_FIELDS = ("otp_dedc", "hifp_otp", "hifp", "hifob", "cvlserv", "hifmi", "maf", "inscp_self", "admissions", "settlements")


@dataclass
class CheckReport:
    settlements: int = 0
    entries: int = 0
    year_rows: int = 0
    chronic_rows: int = 0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session, limit: int = 50) -> CheckReport:
    report = CheckReport()

    def problem(text: str) -> None:
        if len(report.problems) < limit:
            report.problems.append(text)

    # 1. balanced entries that agree with the settlement rows
    kind = case((LedgerEntry.account.like("acct:%"), "acct"), (LedgerEntry.account.like("medins:%"), "medins"),
                (LedgerEntry.account.like("clearing:%"), "clearing"), else_=LedgerEntry.account)
    posted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for setl_id, k, amount, count in session.execute(select(LedgerEntry.setl_id, kind, func.sum(LedgerEntry.amount_fen), func.count())
                                                     .group_by(LedgerEntry.setl_id, kind)):
        posted[setl_id][k] += int(amount)
        report.entries += count
    for s in session.execute(select(Settlement.setl_id, Settlement.insutype, Settlement.medfee_sumamt, Settlement.fund_pay_sumamt,
                                    Settlement.hifp_pay, Settlement.hifob_pay, Settlement.cvlserv_pay, Settlement.hifmi_pay,
                                    Settlement.maf_pay, Settlement.acct_pay, Settlement.acct_mulaid_pay, Settlement.psn_cash_pay,
                                    Settlement.hosp_part_amt, Settlement.paid_by)):
        report.settlements += 1
        sums = posted.pop(s.setl_id, {})
        if sum(sums.values()) != 0:
            problem(f"settlement {s.setl_id}: entries sum to {sum(sums.values())}, not 0")
        if s.fund_pay_sumamt != s.hifp_pay + s.hifob_pay + s.cvlserv_pay + s.hifmi_pay + s.maf_pay:
            problem(f"settlement {s.setl_id}: fund_pay_sumamt {s.fund_pay_sumamt} is not the sum of its funds")
        if s.paid_by:  # another province's node paid the funds and accounts (a federation): it owes them to this node
            expected = {"clearing": home_share(s), "cash": s.psn_cash_pay,
                        "hosp": s.hosp_part_amt, "medins": -s.medfee_sumamt}
        else:
            expected = {**_home_part(s), "cash": s.psn_cash_pay, "hosp": s.hosp_part_amt, "medins": -s.medfee_sumamt}
        _compare(s.setl_id, sums, expected, problem)
    # 1b. care away from home this node paid for (a federation): its funds and accounts, owed to the place of care
    for a in session.execute(select(AwaySettlement.setl_id, AwaySettlement.insutype, AwaySettlement.fund_pay_sumamt,
                                    AwaySettlement.hifp_pay, AwaySettlement.hifob_pay, AwaySettlement.cvlserv_pay,
                                    AwaySettlement.hifmi_pay, AwaySettlement.maf_pay, AwaySettlement.acct_pay,
                                    AwaySettlement.acct_mulaid_pay)):
        report.settlements += 1
        sums = posted.pop(a.setl_id, {})
        if sum(sums.values()) != 0:
            problem(f"settlement {a.setl_id}: entries sum to {sum(sums.values())}, not 0")
        _compare(a.setl_id, sums, {**_home_part(a), "clearing": -home_share(a)}, problem)
    # 1c. credit care: a personal account's repayment of a bank's advance (yibao.credit) is posted under its number
    for repayment_no, bank_code, amount in session.execute(
            select(CreditRepayment.repayment_no, CreditRepayment.bank_code, CreditRepayment.amount_fen)
            .where(CreditRepayment.source == "acct")).tuples():
        sums = posted.pop(repayment_no, {})
        _compare(repayment_no, sums, {"acct": amount, f"bank:{bank_code}": -amount}, problem)
    for setl_id in posted:
        problem(f"entries for unknown settlement {setl_id}")
    # 2. year-to-date rows equal their settlements' postings (those this node paid: here and, on a federation, away)
    computed: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(YTD_FIELDS, 0))
    for table, paid_here in ((Settlement, Settlement.paid_by == ""), (AwaySettlement, true())):
        row_sign = case((table.refd_setl_flag == "0", 1), else_=-1)
        for r in session.execute(select(
                table.psn_no, table.year, func.sum(table.ytd_otp_dedc).label("otp_dedc"),
                func.sum(table.ytd_hifp_otp).label("hifp_otp"), func.sum(table.hifp_pay).label("hifp"),
                func.sum(table.hifob_pay).label("hifob"), func.sum(table.cvlserv_pay).label("cvlserv"),
                func.sum(table.hifmi_pay).label("hifmi"), func.sum(table.maf_pay).label("maf"),
                func.sum(table.ytd_inscp_self).label("inscp_self"), func.sum(table.ytd_admission).label("admissions"),
                func.sum(row_sign).label("settlements"),
        ).where(paid_here).group_by(table.psn_no, table.year)):
            totals = computed[(r.psn_no, r.year)]
            for name in YTD_FIELDS:
                totals[name] += int(getattr(r, name))
    for row in session.scalars(select(YearTotal)):
        report.year_rows += 1
        expected_row = computed.pop((row.psn_no, row.year), None)
        for name in YTD_FIELDS:
            want = expected_row[name] if expected_row is not None else 0
            if getattr(row, name) != want:
                problem(f"year total {row.psn_no}/{row.year}: {name} is {getattr(row, name)}, settlements say {want}")
    for (psn_no, year) in computed:
        problem(f"settlements of {psn_no} in {year} have no year-total row")

    # 2b. each chronic disease's year-to-date row equals its med_type 14 settlements' postings
    chronic: dict[tuple[str, int, str], dict[str, int]] = defaultdict(lambda: {"dedc": 0, "hifp": 0, "settlements": 0})
    for table, paid_here in ((Settlement, Settlement.paid_by == ""), (AwaySettlement, true())):
        row_sign = case((table.refd_setl_flag == "0", 1), else_=-1)
        for r in session.execute(select(
                table.psn_no, table.year, table.opsp_dise_code, func.sum(table.ytd_opsp_dedc).label("dedc"),
                func.sum(table.hifp_pay).label("hifp"), func.sum(row_sign).label("settlements"),
        ).where(table.opsp_dise_code != "", paid_here).group_by(table.psn_no, table.year, table.opsp_dise_code)):
            disease = chronic[(r.psn_no, r.year, r.opsp_dise_code)]
            for name in ("dedc", "hifp", "settlements"):
                disease[name] += int(getattr(r, name))
    for total in session.scalars(select(ChronicYearTotal)):
        report.chronic_rows += 1
        expected_chronic = chronic.pop((total.psn_no, total.year, total.opsp_dise_code), None)
        for name in ("dedc", "hifp", "settlements"):
            want = expected_chronic[name] if expected_chronic is not None else 0
            if getattr(total, name) != want:
                problem(f"chronic year total {total.psn_no}/{total.year}/{total.opsp_dise_code}: {name} is {getattr(total, name)}, "
                        f"settlements say {want}")
    for (psn_no, year, code) in chronic:
        problem(f"chronic settlements of {psn_no} in {year} for {code} have no year-total row")

    # 3. account balances
    credits = dict(session.execute(select(Contribution.psn_no, func.sum(Contribution.acct_cred_fen))
                                   .group_by(Contribution.psn_no)).tuples().all())
    payments: dict[str, int] = dict(session.execute(select(func.substr(LedgerEntry.account, 6), func.sum(LedgerEntry.amount_fen))
                                    .where(LedgerEntry.account.like("acct:%")).group_by(LedgerEntry.account)).tuples().all())
    for account in session.scalars(select(Account)):
        report.accounts += 1
        want = account.opening_fen + int(credits.get(account.psn_no, 0)) - int(payments.get(account.psn_no, 0))
        if account.balance_fen != want:
            problem(f"account {account.psn_no}: balance {account.balance_fen}, opening + contributions − payments = {want}")
        if account.balance_fen < 0:
            problem(f"account {account.psn_no} is overdrawn: {account.balance_fen}")
    return report


def _home_part(s: Any) -> dict[str, int]:
    """The entries the insured person's side of a settlement posts: each fund, and the accounts that paid."""
    basic = "fund:310100" if s.insutype == "310" else "fund:390100"
    return {basic: s.hifp_pay, "fund:330100": s.hifob_pay, "fund:320100": s.cvlserv_pay, "fund:390200": s.hifmi_pay,
            "fund:610100": s.maf_pay, "acct": s.acct_pay + s.acct_mulaid_pay}


def _compare(setl_id: str, sums: dict[str, int], expected: dict[str, int], problem: Callable[[str], None]) -> None:
    for k in sums:
        if k not in expected:
            problem(f"settlement {setl_id}: unexpected posting to {k}")
    for k, value in expected.items():
        if sums.get(k, 0) != value:
            problem(f"settlement {setl_id}: {k} entries {sums.get(k, 0)} ≠ settlement {value}")
