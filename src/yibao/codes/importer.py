"""Catalogue import from CSV or Excel: validate every row first (pure), then apply as one version.

Validation and writing are separate steps so a bad file is reported whole, row by row, and a
good one lands in one transaction. Applying compares each row with the version in force:
new codes are added, changed ones close the old row and open a new one, unchanged ones are
skipped, so re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.codes.models import CatalogItem, CatalogVersion, DiseaseCode
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.money import to_fen

CODE_SHAPES = {
    "101": re.compile(r"^[XZ][A-Z0-9]{5,49}$"),
    "102": re.compile(r"^T[0-9A-Z]{5,49}$"),
    "103": re.compile(r"^[A-Z0-9]{6,50}$"),
    "104": re.compile(r"^[A-Z0-9]{6,50}$"),
    "201": re.compile(r"^[0-9][0-9A-Z-]{5,49}$"),
    "301": re.compile(r"^C[0-9A-Z]{5,49}$"),
}
CHRGITM_TYPES = {f"{n:02d}" for n in range(1, 15)}
COMPARED = (
    "med_list_name", "list_type", "med_chrgitm_type", "chrgitm_lv", "selfpay_prop", "pric_uplmt_fen", "lmt_gend",
    "lmt_age_min", "lmt_age_max", "lmt_hosp_lv", "rx_flag", "spec", "dosform", "pacunt", "prodentp_name", "enddate", "memo",
)


@dataclass
class Rejected:
    row: int
    column: str
    reason: str


@dataclass
class ImportReport:
    ver: str = ""
    rows_read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a .csv (UTF-8, optional BOM) or .xlsx file as header → text."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                yield {(k or "").strip(): (v or "").strip() for k, v in row.items()}
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        for values in rows:
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            yield {h: _cell_text(v) for h, v in zip(header, values, strict=False)}
        book.close()
    else:
        raise InputError(f"{path.name}: unsupported file type (use .csv or .xlsx)")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def validate_row(raw: dict[str, str], row_no: int) -> tuple[dict[str, Any] | None, list[Rejected]]:
    """Check one catalogue row; returns the typed row or the reasons it was rejected."""
    problems: list[Rejected] = []

    def reject(column: str, reason: str) -> None:
        problems.append(Rejected(row_no, column, reason))

    def text(column: str, required: bool = False, max_len: int = 200) -> str:
        value = (raw.get(column) or "").strip()
        if required and not value:
            reject(column, "required")
        elif len(value) > max_len:
            reject(column, f"longer than {max_len} characters")
        return value

    def integer(column: str, low: int, high: int) -> int | None:
        value = (raw.get(column) or "").strip()
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            reject(column, f"'{value}' is not a whole number")
            return None
        if not low <= number <= high:
            reject(column, f"{number} is outside {low}..{high}")
        return number

    def day(column: str, required: bool) -> date | None:
        value = (raw.get(column) or "").strip()
        if not value:
            if required:
                reject(column, "required")
            return None
        try:
            return clock.parse_date(value, column)
        except InputError as error:
            reject(column, error.message.split(": ", 1)[-1])
            return None

    code = text("med_list_codg", required=True, max_len=50).upper()
    list_type = text("list_type", required=True, max_len=3)
    if list_type and list_type not in CODE_SHAPES:
        reject("list_type", f"'{list_type}' is not a catalogue type ({', '.join(CODE_SHAPES)})")
    elif code and list_type and not CODE_SHAPES[list_type].match(code):
        reject("med_list_codg", f"'{code}' does not have the national code shape for list_type {list_type}")
    chrgitm_type = text("med_chrgitm_type", required=True, max_len=2)
    if chrgitm_type and chrgitm_type not in CHRGITM_TYPES:
        reject("med_chrgitm_type", f"'{chrgitm_type}' is not a med_chrgitm_type (01..14)")
    level = text("chrgitm_lv", required=True, max_len=2)
    if level and level not in ("01", "02", "03"):
        reject("chrgitm_lv", f"'{level}' is not 01 (甲), 02 (乙) or 03 (丙)")
    prop_text = text("selfpay_prop") or {"01": "0", "02": "0.1", "03": "1"}.get(level, "0")
    try:
        selfpay_prop = Decimal(prop_text)
        if not Decimal(0) <= selfpay_prop <= Decimal(1):
            reject("selfpay_prop", f"{prop_text} is outside 0..1")
    except InvalidOperation:
        reject("selfpay_prop", f"'{prop_text}' is not a number")
        selfpay_prop = Decimal(0)
    cap_text = text("pric_uplmt_amt")
    cap_fen = None
    if cap_text:
        try:
            cap_fen = to_fen(cap_text, "pric_uplmt_amt")
            if cap_fen < 0:
                reject("pric_uplmt_amt", "must not be negative")
        except InputError as error:
            reject("pric_uplmt_amt", error.message.split(": ", 1)[-1])
    gend = text("lmt_gend", max_len=1)
    if gend and gend not in ("1", "2"):
        reject("lmt_gend", f"'{gend}' is not 1 (male) or 2 (female)")
    rx_flag = text("rx_flag", max_len=1) or "0"
    if rx_flag not in ("0", "1"):
        reject("rx_flag", f"'{rx_flag}' is not 0 or 1")
    begndate = day("begndate", required=True)
    enddate = day("enddate", required=False)
    if begndate and enddate and enddate < begndate:
        reject("enddate", "is before begndate")
    row = {
        "med_list_codg": code,
        "med_list_name": text("med_list_name", required=True),
        "list_type": list_type,
        "med_chrgitm_type": chrgitm_type,
        "chrgitm_lv": level,
        "selfpay_prop": selfpay_prop,
        "pric_uplmt_fen": cap_fen,
        "lmt_gend": gend or None,
        "lmt_age_min": integer("lmt_age_min", 0, 150),
        "lmt_age_max": integer("lmt_age_max", 0, 150),
        "lmt_hosp_lv": integer("lmt_hosp_lv", 1, 3),
        "rx_flag": rx_flag,
        "spec": text("spec"),
        "dosform": text("dosform", max_len=50),
        "pacunt": text("pacunt", max_len=20),
        "prodentp_name": text("prodentp_name"),
        "memo": text("memo", max_len=500),
        "begndate": begndate,
        "enddate": enddate,
    }
    return (None, problems) if problems else (row, [])


def validate(rows: Iterable[dict[str, str]]) -> tuple[list[dict[str, Any]], list[Rejected], int]:
    good: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    seen: dict[tuple[str, date], int] = {}
    count = 0
    for row_no, raw in enumerate(rows, start=2):  # row 1 is the header
        count += 1
        row, problems = validate_row(raw, row_no)
        if row is not None:
            key = (row["med_list_codg"], row["begndate"])
            if key in seen:
                rejected.append(Rejected(row_no, "med_list_codg", f"duplicate of row {seen[key]} (same code and begndate)"))
                continue
            seen[key] = row_no
            good.append(row)
        rejected.extend(problems)
    return good, rejected, count


def new_version(session: Session, name: str, source: str) -> CatalogVersion:
    now = clock.now()
    prefix = now.strftime("%Y%m%d%H%M%S")
    latest = session.scalar(select(CatalogVersion.ver).where(CatalogVersion.ver.like(prefix + "%")).order_by(CatalogVersion.ver.desc()))
    sequence = int(latest[-3:]) + 1 if latest else 1
    version = CatalogVersion(ver=f"{prefix}{sequence:03d}", ver_name=name, source=source, created_at=now)
    session.add(version)
    session.flush()
    return version


def apply(
    session: Session, rows: list[dict[str, Any]], version: CatalogVersion, progress: Callable[[int], None] | None = None
) -> tuple[int, int, int]:
    """Write validated rows as ``version``; returns (added, changed, unchanged)."""
    added = changed = unchanged = 0
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        current = {
            item.med_list_codg: item
            for item in session.scalars(
                select(CatalogItem).where(CatalogItem.med_list_codg.in_([r["med_list_codg"] for r in chunk]), CatalogItem.enddate.is_(None))
            )
        }
        for row in chunk:
            old = current.get(row["med_list_codg"])
            if old is None:
                session.add(CatalogItem(**row, vali_flag="1", ver=version.ver))
                added += 1
            elif all(_same(getattr(old, name), row[name]) for name in COMPARED):
                unchanged += 1
            elif row["begndate"] <= old.begndate:
                # a correction of the version in force: rewrite it in place
                for name in COMPARED:
                    setattr(old, name, row[name])
                old.begndate = row["begndate"]
                old.ver = version.ver
                changed += 1
            else:
                old.enddate = row["begndate"] - timedelta(days=1)
                old.ver = version.ver
                session.add(CatalogItem(**row, vali_flag="1", ver=version.ver))
                changed += 1
        session.flush()
        if progress:
            progress(len(chunk))
    version.rows_added, version.rows_changed = added, changed
    return added, changed, unchanged


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(str(a or 0)) == Decimal(str(b or 0))
    return (a or None) == (b or None)


def import_catalog(
    session: Session, path: Path, name: str | None = None, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Validate the file and, if any row is good, apply the good rows as a new version."""
    good, rejected, count = validate(read_rows(path))
    report = ImportReport(rows_read=count, rejected=rejected)
    if good:
        version = new_version(session, name or path.name, str(path))
        version.rows_rejected = len(rejected)
        report.ver = version.ver
        report.added, report.changed, report.unchanged = apply(session, good, version, progress)
    return report


def import_diseases(session: Session, rows: Iterable[dict[str, str]], ver: str) -> int:
    """Diagnosis, procedure and chronic/special disease codes (kind diag, oprn or opsp; code, name, chapter: for opsp the
    1309 catalogue's major class, 门诊慢病 or 门诊特病); existing codes are left as they are."""
    existing = set(session.execute(select(DiseaseCode.kind, DiseaseCode.code)).tuples())
    added = 0
    for row_no, raw in enumerate(rows, start=2):
        kind, code, name = raw.get("kind", "").strip(), raw.get("code", "").strip(), raw.get("name", "").strip()
        if kind not in ("diag", "oprn", "opsp") or not code or not name:
            raise InputError(f"row {row_no}: kind must be diag, oprn or opsp and code and name are required")
        if (kind, code) in existing:
            continue
        session.add(DiseaseCode(kind=kind, code=code, name=name, chapter=raw.get("chapter", "").strip(), ver=ver))
        existing.add((kind, code))
        added += 1
    return added


def rows_from_text(text: str) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(text))
