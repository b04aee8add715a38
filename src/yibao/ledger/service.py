"""Posting settlements: year-to-date rows, account balances and balanced ledger entries.

Everything here runs inside the settlement's own transaction. Rows that concurrent
settlements of one person share (the year total, a chronic disease's year total, the accounts)
are locked in a fixed order (year total, chronic year total, then accounts by psn_no) so two
settlements never interleave or deadlock.
These are hot-path statements (`yibao.store.sql`): records in, one statement per change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.ledger.models import ChronicYearTotal, LedgerEntry, YearTotal
from yibao.registry import service as registry
from yibao.registry.models import Account
from yibao.store import sql

TOTALS = ("otp_dedc", "hifp_otp", "hifp", "hifob", "cvlserv", "hifmi", "maf", "inscp_self", "admissions", "settlements")
_YEAR = YearTotal.__table__
# created if missing and locked in one statement (the no-op update takes PostgreSQL's row lock)
YEAR_TOTAL_LOCKED = sql.Statement(
    f"INSERT INTO year_total (psn_no, year, {', '.join(TOTALS)}) VALUES (:psn_no, :year, {', '.join('0' for _ in TOTALS)}) "
    "ON CONFLICT (psn_no, year) DO UPDATE SET settlements = year_total.settlements RETURNING *", _YEAR)
YEAR_TOTAL = sql.Statement("SELECT * FROM year_total WHERE psn_no = :psn_no AND year = :year", _YEAR)
WRITE_YEAR_TOTAL = sql.Statement(f"UPDATE year_total SET {', '.join(f'{t} = :{t}' for t in TOTALS)} WHERE psn_no = :psn_no AND year = :year",
                                 _YEAR)
_CHRONIC = ChronicYearTotal.__table__
CHRONIC_TOTALS = ("dedc", "hifp", "settlements")
CHRONIC_TOTAL_LOCKED = sql.Statement(
    "INSERT INTO chronic_year_total (psn_no, year, opsp_dise_code, dedc, hifp, settlements) VALUES (:psn_no, :year, :opsp_dise_code, 0, 0, 0) "
    "ON CONFLICT (psn_no, year, opsp_dise_code) DO UPDATE SET settlements = chronic_year_total.settlements RETURNING *", _CHRONIC)
CHRONIC_TOTAL = sql.Statement("SELECT * FROM chronic_year_total WHERE psn_no = :psn_no AND year = :year AND opsp_dise_code = :opsp_dise_code",
                              _CHRONIC)
WRITE_CHRONIC_TOTAL = sql.Statement("UPDATE chronic_year_total SET dedc = :dedc, hifp = :hifp, settlements = :settlements "
                                    "WHERE psn_no = :psn_no AND year = :year AND opsp_dise_code = :opsp_dise_code", _CHRONIC)
ACCOUNT_LOCKED = sql.Statement("SELECT * FROM account WHERE psn_no = :psn_no", Account.__table__, lock=True)
MOVE_BALANCE = sql.Statement("UPDATE account SET balance_fen = balance_fen + :delta WHERE psn_no = :psn_no", Account.__table__)
INSERT_ENTRY = sql.Statement.insert(LedgerEntry.__table__, skip=("id",))
ENTRIES = sql.Statement("SELECT account, amount_fen FROM ledger_entry WHERE setl_id = :setl_id ORDER BY id", LedgerEntry.__table__)


def year_total(session: Session, psn_no: str, year: int, *, lock: bool) -> sql.Record:
    """The person's row for the year, created if missing and locked when settling; zeros when reading an absent one."""
    if lock:
        found = sql.first(session, YEAR_TOTAL_LOCKED, psn_no=psn_no, year=year)
        assert found is not None
        return found
    return sql.first(session, YEAR_TOTAL, psn_no=psn_no, year=year) or sql.Record({"psn_no": psn_no, "year": year, **{t: 0 for t in TOTALS}})


def write_year_total(session: Session, total: sql.Record) -> None:
    sql.execute(session, WRITE_YEAR_TOTAL, **{t: getattr(total, t) for t in ("psn_no", "year", *TOTALS)})


def chronic_year_total(session: Session, psn_no: str, year: int, opsp_dise_code: str, *, lock: bool) -> sql.Record:
    """The person's row for one chronic disease and year (locked after ``year_total``, before the accounts); zeros when
    reading an absent one."""
    key = {"psn_no": psn_no, "year": year, "opsp_dise_code": opsp_dise_code}
    if lock:
        found = sql.first(session, CHRONIC_TOTAL_LOCKED, **key)
        assert found is not None
        return found
    return sql.first(session, CHRONIC_TOTAL, **key) or sql.Record({**key, **{t: 0 for t in CHRONIC_TOTALS}})


def write_chronic_year_total(session: Session, total: sql.Record) -> None:
    sql.execute(session, WRITE_CHRONIC_TOTAL, **{t: getattr(total, t) for t in ("psn_no", "year", "opsp_dise_code", *CHRONIC_TOTALS)})


def accounts(session: Session, psn_nos: Iterable[str], *, lock: bool) -> dict[str, sql.Record]:
    """Personal accounts by psn_no, read (and locked) in psn_no order."""
    found = {}
    for psn_no in sorted(set(psn_nos)):
        row = sql.first(session, ACCOUNT_LOCKED if lock else registry.ACCOUNT, psn_no=psn_no)
        if row is not None:
            found[psn_no] = row
    return found


def move_balance(session: Session, account: sql.Record, delta: int) -> None:
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
    return [(e.account, e.amount_fen) for e in sql.fetch(session, ENTRIES, setl_id=setl_id)]


def account_entries(session: Session, setl_id: str) -> list[tuple[str, int]]:
    """The personal-account postings of a settlement (own account and relatives' through mutual aid), summed per account."""
    sums: dict[str, int] = {}
    for account, amount in entries(session, setl_id):
        if account.startswith("acct:"):
            sums[account] = sums.get(account, 0) + amount
    return list(sums.items())
