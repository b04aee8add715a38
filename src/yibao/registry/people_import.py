"""Import insured people from the bureau's register (CSV or .xlsx): validate every row, then apply in one transaction.

One row is one enrolment (a person in one insurance type); a person enrolled in 310 and 330 has
two rows with the same ID number. Columns (header row, UTF-8):

| column | required | meaning |
|---|---|---|
| certno | yes | resident ID number (GB 11643, check digit verified); birth date and sex come from it |
| psn_name | yes | name as on the ID card |
| insutype | yes | 310 employees, 320 civil-servant subsidy, 330 large-amount, 390 residents, 392 residents' catastrophic, 510 maternity |
| psn_type | yes | person type code (1101 in service, 1201 retired, 1501 adult resident, …; code table psn_type) |
| insuplc_admdvs | yes | the insuring region (6 digits, known to the platform) |
| psn_insu_date | yes | enrolment date, yyyy-MM-dd |
| psn_no | no | the person's number; generated as region + 14 digits when empty |
| naty | no | ethnicity code, default 01 |
| tel | no | telephone |
| psn_insu_stas | no | 1 insured (default), 2 paused, 4 terminated |
| cvlserv_flag | no | 1 civil servant, default 0 |
| emp_no, emp_name | no | employer (an unknown emp_no needs emp_name) |
| card_no, card_sn | no | social-security card number and its serial (mdtrt_cert_type 03) |
| acct_balance | no | opening personal-account balance in yuan (insutype 310 only) |

Rows that fail are listed with their row number, column and reason and nothing of them is
written; the good rows land together. Importing the same file again adds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.codes import code_tables
from yibao.codes.importer import Rejected
from yibao.core import clock, idcard
from yibao.core.errors import YibaoError
from yibao.core.money import to_fen
from yibao.registry.models import Account, Employer, Enrolment, Person, Region

REQUIRED = ("certno", "psn_name", "insutype", "psn_type", "insuplc_admdvs", "psn_insu_date")
OPTIONAL = ("psn_no", "naty", "tel", "psn_insu_stas", "cvlserv_flag", "emp_no", "emp_name", "card_no", "card_sn", "acct_balance")
COLUMNS = REQUIRED + OPTIONAL


@dataclass
class PeopleReport:
    rows_read: int = 0
    people_added: int = 0
    enrolments_added: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejected})


def _codes() -> dict[str, set[str]]:
    _, _, values = code_tables.bundled_code_tables()
    tables: dict[str, set[str]] = {}
    for v in values:
        tables.setdefault(v.type, set()).add(v.value)
    return tables


def validate_row(raw: dict[str, str], row_no: int, codes: dict[str, set[str]]) -> tuple[dict[str, Any] | None, list[Rejected]]:
    problems: list[Rejected] = []

    def reject(column: str, reason: str) -> None:
        problems.append(Rejected(row_no, column, reason))

    unknown = [k for k in raw if k and k not in COLUMNS]
    if unknown:
        reject(unknown[0], f"unknown column (known: {', '.join(COLUMNS)})")
    for column in REQUIRED:
        if not raw.get(column, "").strip():
            reject(column, "required")
    if problems:
        return None, problems
    row: dict[str, Any] = {k: raw.get(k, "").strip() for k in COLUMNS}
    try:
        row["certno"] = row["certno"].upper()
        row["brdy"], row["gend"] = idcard.validate(row["certno"], "certno")
    except YibaoError as error:
        reject("certno", error.message.removeprefix("certno: "))
    if len(row["psn_name"]) > 50:
        reject("psn_name", "at most 50 characters")
    for column, table in (("insutype", "insutype"), ("psn_type", "psn_type")):
        if row[column] not in codes.get(table, set()):
            reject(column, f"'{row[column]}' is not in the code table {table}")
    row["naty"] = row["naty"] or "01"
    if row["naty"] not in codes.get("naty", {row["naty"]}):
        reject("naty", f"'{row['naty']}' is not an ethnicity code")
    if not re.fullmatch(r"\d{6}", row["insuplc_admdvs"]):
        reject("insuplc_admdvs", "is 6 digits")
    try:
        row["psn_insu_date"] = clock.parse_date(row["psn_insu_date"], "psn_insu_date")
    except YibaoError:
        reject("psn_insu_date", f"'{raw.get('psn_insu_date')}' is not a date (yyyy-MM-dd)")
    row["psn_insu_stas"] = row["psn_insu_stas"] or "1"
    if row["psn_insu_stas"] not in ("1", "2", "4"):
        reject("psn_insu_stas", "is 1, 2 or 4")
    row["cvlserv_flag"] = row["cvlserv_flag"] or "0"
    if row["cvlserv_flag"] not in ("0", "1"):
        reject("cvlserv_flag", "is 0 or 1")
    if row["psn_no"] and not re.fullmatch(r"[0-9A-Za-z]{6,30}", row["psn_no"]):
        reject("psn_no", "is 6 to 30 letters or digits")
    if bool(row["card_no"]) != bool(row["card_sn"]):
        reject("card_sn" if row["card_no"] else "card_no", "card_no and card_sn go together")
    row["acct_balance_fen"] = None
    if row["acct_balance"]:
        if row["insutype"] != "310":
            reject("acct_balance", "only employees' insurance (310) has a personal account")
        else:
            try:
                row["acct_balance_fen"] = to_fen(row["acct_balance"], "acct_balance")
                if row["acct_balance_fen"] < 0:
                    reject("acct_balance", "cannot be negative")
            except YibaoError as error:
                reject("acct_balance", error.message.removeprefix("acct_balance: "))
    return (None, problems) if problems else (row, [])


def validate(rows: Iterable[dict[str, str]]) -> tuple[list[dict[str, Any]], list[Rejected], int]:
    codes = _codes()
    good: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    seen: dict[tuple[str, str], int] = {}
    names: dict[str, str] = {}
    count = 0
    for row_no, raw in enumerate(rows, start=2):  # row 1 is the header
        count += 1
        row, problems = validate_row(raw, row_no, codes)
        if row is None:
            rejected.extend(problems)
            continue
        key = (row["certno"], row["insutype"])
        if key in seen:
            rejected.append(Rejected(row_no, "insutype", f"duplicate of row {seen[key]} (same certno and insutype)"))
            continue
        if names.setdefault(row["certno"], row["psn_name"]) != row["psn_name"]:
            rejected.append(Rejected(row_no, "psn_name", "another row gives this certno another name"))
            continue
        seen[key] = row_no
        row["_row"] = row_no  # so a clash found while writing can name its row
        good.append(row)
    return good, rejected, count


def apply(session: Session, rows: list[dict[str, Any]], report: PeopleReport, progress: Callable[[int], None] | None = None,
          actor: str = "cli") -> None:
    """Write the validated rows; rows that clash with the register (a card number taken, an unknown region) are rejected."""
    regions = set(session.scalars(select(Region.admdvs)))
    employers = set(session.scalars(select(Employer.emp_no)))
    next_no: dict[str, int] = {}
    today = clock.today()
    for row in rows:
        row_no = row.get("_row", 0)
        if row["insuplc_admdvs"] not in regions:
            report.rejected.append(Rejected(row_no, "insuplc_admdvs", f"region {row['insuplc_admdvs']} is not known to the platform"))
            _advance(progress)
            continue
        person = session.scalar(select(Person).where(Person.psn_cert_type == "01", Person.certno == row["certno"]))
        if person is None:
            if row["card_no"] and session.scalar(select(Person.psn_no).where(Person.card_no == row["card_no"])) is not None:
                report.rejected.append(Rejected(row_no, "card_no", "this card number belongs to another person"))
                _advance(progress)
                continue
            psn_no = row["psn_no"] or _next_psn_no(session, row["insuplc_admdvs"], next_no)
            if session.get(Person, psn_no) is not None:
                report.rejected.append(Rejected(row_no, "psn_no", f"{psn_no} belongs to another person"))
                _advance(progress)
                continue
            person = Person(psn_no=psn_no, psn_cert_type="01", certno=row["certno"], psn_name=row["psn_name"], gend=row["gend"],
                            naty=row["naty"], brdy=row["brdy"], tel=row["tel"], card_no=row["card_no"] or None,
                            card_sn=row["card_sn"] or None)
            session.add(person)
            session.flush()
            report.people_added += 1
        elif person.psn_name != row["psn_name"]:
            report.rejected.append(Rejected(row_no, "psn_name", f"the register has {row['certno']} under another name"))
            _advance(progress)
            continue
        enrolled = session.scalar(select(Enrolment.id).where(Enrolment.psn_no == person.psn_no, Enrolment.insutype == row["insutype"]))
        if enrolled is not None:
            report.unchanged += 1
            _advance(progress)
            continue
        emp_no = row["emp_no"] or None
        if emp_no and emp_no not in employers:
            if not row["emp_name"]:
                report.rejected.append(Rejected(row_no, "emp_name", f"employer {emp_no} is new: give its name"))
                _advance(progress)
                continue
            session.add(Employer(emp_no=emp_no, emp_name=row["emp_name"], admdvs=row["insuplc_admdvs"]))
            session.flush()
            employers.add(emp_no)
        session.execute(insert(Enrolment), [{"psn_no": person.psn_no, "insutype": row["insutype"], "psn_type": row["psn_type"],
                                             "psn_insu_stas": row["psn_insu_stas"], "psn_insu_date": row["psn_insu_date"],
                                             "paus_insu_date": None, "insuplc_admdvs": row["insuplc_admdvs"], "emp_no": emp_no,
                                             "cvlserv_flag": row["cvlserv_flag"]}])
        if row["insutype"] == "310" and session.get(Account, person.psn_no) is None:
            opening = row["acct_balance_fen"] or 0
            session.add(Account(psn_no=person.psn_no, insutype="310", opening_fen=opening, opened_on=today, balance_fen=opening))
        report.enrolments_added += 1
        _advance(progress)
    session.flush()
    audit.record(session, "people.import", actor=actor, reason=f"{report.people_added} people, {report.enrolments_added} enrolments, "
                                                                f"{report.rejected_rows} rows rejected")


def _advance(progress: Callable[[int], None] | None) -> None:
    if progress:
        progress(1)


def _next_psn_no(session: Session, admdvs: str, cache: dict[str, int]) -> str:
    if admdvs not in cache:
        highest = session.scalar(select(func.max(Person.psn_no)).where(Person.psn_no.like(f"{admdvs}%"), func.length(Person.psn_no) == 20))
        cache[admdvs] = int(highest[6:]) if highest and highest[6:].isdigit() else 0
    while True:
        cache[admdvs] += 1
        candidate = f"{admdvs}{cache[admdvs]:014d}"
        if session.get(Person, candidate) is None:
            return candidate
