"""Posting settlements: year-to-date rows, account balances and balanced ledger entries.

Everything here runs inside the settlement's own transaction. Rows that concurrent
settlements of one person share (the year total, a chronic disease's year total, the accounts)
are locked in a fixed order (year total, chronic year total, then accounts by psn_no) so two
settlements never interleave or deadlock.
These are hot-path statements (`yibao.store.sql`): typed rows (`ledger/rows.py`) in, one statement per change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.ledger.models import ChronicYearTotal, LedgerEntry, MutualAidGrant, YearTotal
from yibao.ledger.rows import ChronicYearTotalRow, EntryRow, YearTotalRow
from yibao.registry import service as registry
from yibao.registry.models import Account
from yibao.registry.rows import AccountRow
from yibao.store import sql

TOTALS = ("otp_dedc", "hifp_otp", "hifp", "hifob", "cvlserv", "hifmi", "maf", "inscp_self", "admissions", "settlements")
CHRONIC_TOTALS = ("dedc", "hifp", "settlements")
_YEAR, _CHRONIC, _ACCOUNT = sql.table_of(YearTotal), sql.table_of(ChronicYearTotal), sql.table_of(Account)
_ENTRY, _GRANT = LedgerEntry.__table__, MutualAidGrant.__table__


def _created_locked(table: Any, row: type[Any], keys: tuple[str, ...], totals: tuple[str, ...]) -> Callable[[str], Any]:
    """Created if missing and locked in one statement (the no-op update takes PostgreSQL's row lock); the row comes back."""
    def build(dialect_name: str) -> Any:
        upsert = sql.dialect_insert(dialect_name)(table).values({**{k: bindparam(k) for k in keys}, **{t: 0 for t in totals}})
        return (upsert.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_={"settlements": table.c.settlements})
                .returning(*sql.columns(row, table)))
    return build


def _of(table: Any, keys: tuple[str, ...]) -> Any:
    return and_(*(table.c[k] == bindparam(k) for k in keys))


_YEAR_KEY, _CHRONIC_KEY = ("psn_no", "year"), ("psn_no", "year", "opsp_dise_code")
YEAR_TOTAL_LOCKED = sql.Query(YearTotalRow, _created_locked(_YEAR, YearTotalRow, _YEAR_KEY, TOTALS))
YEAR_TOTAL = sql.Query(YearTotalRow, sql.select_of(YearTotalRow, _YEAR).where(_of(_YEAR, _YEAR_KEY)))
WRITE_YEAR_TOTAL = sql.Statement(update(_YEAR).where(_of(_YEAR, _YEAR_KEY)).values({t: bindparam(t) for t in TOTALS}))
CHRONIC_TOTAL_LOCKED = sql.Query(ChronicYearTotalRow, _created_locked(_CHRONIC, ChronicYearTotalRow, _CHRONIC_KEY, CHRONIC_TOTALS))
CHRONIC_TOTAL = sql.Query(ChronicYearTotalRow, sql.select_of(ChronicYearTotalRow, _CHRONIC).where(_of(_CHRONIC, _CHRONIC_KEY)))
WRITE_CHRONIC_TOTAL = sql.Statement(update(_CHRONIC).where(_of(_CHRONIC, _CHRONIC_KEY)).values({t: bindparam(t) for t in CHRONIC_TOTALS}))
ACCOUNT_LOCKED = sql.Query(AccountRow, sql.select_of(AccountRow, _ACCOUNT).where(_ACCOUNT.c.psn_no == bindparam("psn_no"))
                           .with_for_update())
MOVE_BALANCE = sql.Statement(update(_ACCOUNT).where(_ACCOUNT.c.psn_no == bindparam("psn_no"))
                             .values(balance_fen=_ACCOUNT.c.balance_fen + bindparam("delta")))
INSERT_ENTRY = sql.Statement(sql.insert_into(_ENTRY, skip=("id",)))
GRANTORS = sql.Query(str, select(_GRANT.c.grantor_psn_no).where(_GRANT.c.beneficiary_psn_no == bindparam("psn_no"), _GRANT.c.active == 1)
                     .order_by(_GRANT.c.grantor_psn_no))
ENTRIES = sql.Query(EntryRow, sql.select_of(EntryRow, _ENTRY).where(_ENTRY.c.setl_id == bindparam("setl_id")).order_by(_ENTRY.c.id))


def year_total(session: Session, psn_no: str, year: int, *, lock: bool) -> YearTotalRow:
    """The person's row for the year, created if missing and locked when settling; zeros when reading an absent one."""
    if lock:
        found = sql.first(session, YEAR_TOTAL_LOCKED, psn_no=psn_no, year=year)
        assert found is not None
        return found
    return sql.first(session, YEAR_TOTAL, psn_no=psn_no, year=year) or YearTotalRow(psn_no, year, *(0 for _ in TOTALS))


def write_year_total(session: Session, total: YearTotalRow) -> None:
    sql.execute(session, WRITE_YEAR_TOTAL, **sql.as_params(total))


def chronic_year_total(session: Session, psn_no: str, year: int, opsp_dise_code: str, *, lock: bool) -> ChronicYearTotalRow:
    """The person's row for one chronic disease and year (locked after ``year_total``, before the accounts); zeros when
    reading an absent one."""
    key = {"psn_no": psn_no, "year": year, "opsp_dise_code": opsp_dise_code}
    if lock:
        found = sql.first(session, CHRONIC_TOTAL_LOCKED, **key)
        assert found is not None
        return found
    return sql.first(session, CHRONIC_TOTAL, **key) or ChronicYearTotalRow(psn_no, year, opsp_dise_code, *(0 for _ in CHRONIC_TOTALS))


def write_chronic_year_total(session: Session, total: ChronicYearTotalRow) -> None:
    sql.execute(session, WRITE_CHRONIC_TOTAL, **sql.as_params(total))


def accounts(session: Session, psn_nos: Iterable[str], *, lock: bool) -> dict[str, AccountRow]:
    """Personal accounts by psn_no, read (and locked) in psn_no order."""
    found = {}
    for psn_no in sorted(set(psn_nos)):
        row = sql.first(session, ACCOUNT_LOCKED if lock else registry.ACCOUNT, psn_no=psn_no)
        if row is not None:
            found[psn_no] = row
    return found


def move_balance(session: Session, account: AccountRow, delta: int) -> None:
    """Change an account by ``delta`` fen (negative pays out), in storage and in the record."""
    sql.execute(session, MOVE_BALANCE, psn_no=account.psn_no, delta=delta)
    account.balance_fen += delta


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
        sql.execute_many(session, INSERT_ENTRY, [{"setl_id": self.setl_id, "account": a, "amount_fen": v, "psn_no": self.psn_no,
                                                  "posted_at": now} for a, v in self.entries])


def entries(session: Session, setl_id: str) -> list[tuple[str, int]]:
    return [(e.account, e.amount_fen) for e in sql.rows(session, ENTRIES, setl_id=setl_id)]


def account_entries(session: Session, setl_id: str) -> list[tuple[str, int]]:
    """The personal-account postings of a settlement (own account and relatives' through mutual aid), summed per account."""
    sums: dict[str, int] = {}
    for account, amount in entries(session, setl_id):
        if account.startswith("acct:"):
            sums[account] = sums.get(account, 0) + amount
    return list(sums.items())


def grantors_of(session: Session, psn_no: str) -> list[str]:
    """Family members whose accounts may pay for this person (mutual aid), in a fixed order."""
    return sql.rows(session, GRANTORS, psn_no=psn_no)
