"""Posting settlements: year-to-date rows, account balances and balanced ledger entries.

Everything here runs inside the settlement's own transaction. Rows that concurrent
settlements of one person share (the year total, the accounts) are locked in a fixed order
(year total, then accounts by psn_no) so two settlements never interleave or deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.ledger.models import LedgerEntry, YearTotal
from yibao.registry.models import Account


def year_total(session: Session, psn_no: str, year: int, *, lock: bool) -> YearTotal:
    """The person's row for the year, created if missing; locked for update when settling."""
    if lock:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(YearTotal).values(psn_no=psn_no, year=year, otp_dedc=0, hifp_otp=0, hifp=0, hifob=0, cvlserv=0,
                                                 hifmi=0, maf=0, inscp_self=0, admissions=0, settlements=0)
                        .on_conflict_do_nothing())
        return session.scalars(select(YearTotal).where(YearTotal.psn_no == psn_no, YearTotal.year == year).with_for_update()
                               .execution_options(populate_existing=True)).one()
    row = session.get(YearTotal, (psn_no, year))
    return row if row is not None else YearTotal(psn_no=psn_no, year=year, otp_dedc=0, hifp_otp=0, hifp=0, hifob=0, cvlserv=0,
                                                 hifmi=0, maf=0, inscp_self=0, admissions=0, settlements=0)


def accounts(session: Session, psn_nos: Iterable[str], *, lock: bool) -> dict[str, Account]:
    ordered = sorted(set(psn_nos))
    if not ordered:
        return {}
    stmt = select(Account).where(Account.psn_no.in_(ordered)).order_by(Account.psn_no)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return {a.psn_no: a for a in session.scalars(stmt)}


@dataclass
class Posting:
    setl_id: str
    psn_no: str
    entries: list[tuple[str, int]] = field(default_factory=list)

    def add(self, account: str, amount: int) -> None:
        if amount:
            self.entries.append((account, amount))

    def write(self, session: Session) -> None:
        total = sum(a for _, a in self.entries)
        if total != 0:
            raise AssertionError(f"settlement {self.setl_id} does not balance: {total}")
        now = clock.now()
        session.add_all(LedgerEntry(setl_id=self.setl_id, account=a, amount_fen=v, psn_no=self.psn_no, posted_at=now)
                        for a, v in self.entries)


def account_entries(session: Session, setl_id: str) -> list[tuple[str, int]]:
    """The personal-account postings of a settlement (own account and relatives' through mutual aid)."""
    return list(session.execute(select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen))
                                .where(LedgerEntry.setl_id == setl_id, LedgerEntry.account.like("acct:%"))
                                .group_by(LedgerEntry.account)).tuples())
