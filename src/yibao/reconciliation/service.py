"""Compare an institution's books with the platform's for a period.

Totals are net: a reversal counts as minus one settlement and its negated amounts. The
detail comparison matches rows by setl_id and reports each row that only one side has or
whose amounts differ.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from yibao.core.errors import InputError
from yibao.core.money import to_fen, yuan
from yibao.encounter.models import Settlement


@dataclass(frozen=True)
class Totals:
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    cash_payamt: int
    count: int


def _period(begin: date, end: date) -> tuple[datetime, datetime]:
    if end < begin:
        raise InputError("is before stmt_begndate", field="input.data.stmt_enddate")
    return datetime.combine(begin, time.min), datetime.combine(end + timedelta(days=1), time.min)


def platform_totals(session: Session, fixmedins_code: str, begin: date, end: date, insutype: str = "", clr_type: str = "") -> Totals:
    start, stop = _period(begin, end)
    stmt = select(func.coalesce(func.sum(Settlement.medfee_sumamt), 0), func.coalesce(func.sum(Settlement.fund_pay_sumamt), 0),
                  func.coalesce(func.sum(Settlement.acct_pay + Settlement.acct_mulaid_pay), 0),
                  func.coalesce(func.sum(Settlement.psn_cash_pay), 0),
                  func.coalesce(func.sum(case((Settlement.refd_setl_flag == "0", 1), else_=-1)), 0)).where(
        Settlement.fixmedins_code == fixmedins_code, Settlement.setl_time >= start, Settlement.setl_time < stop)
    if insutype:
        stmt = stmt.where(Settlement.insutype == insutype)
    if clr_type:
        stmt = stmt.where(Settlement.clr_type == clr_type)
    row = session.execute(stmt).one()
    return Totals(*(int(v) for v in row))


def compare_totals(ours: Totals, theirs: dict[str, int]) -> tuple[str, str]:
    """(stmt_rslt, stmt_rslt_dscr): "0" balanced, "1" not, naming each difference."""
    labels = {"medfee_sumamt": "医疗费总额", "fund_pay_sumamt": "基金支付总额", "acct_pay": "个人账户支付金额",
              "cash_payamt": "现金支付金额", "count": "结算笔数"}
    diffs = []
    for key, value in theirs.items():
        mine = getattr(ours, key)
        if mine != value:
            shown = (str(mine), str(value)) if key == "count" else (f"{yuan(mine)}", f"{yuan(value)}")
            diffs.append(f"{labels[key]}不平：平台{shown[0]}，机构{shown[1]}")
    return ("0", "对账平") if not diffs else ("1", "；".join(diffs)[:200])


DETAIL_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")


def parse_detail_file(content: bytes) -> list[dict[str, str]]:
    """The institution's detail file: tab-separated text (optionally zipped) with a header row."""
    if content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            content = archive.read(archive.namelist()[0])
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("the detail file is not UTF-8 text", field="input.data.file_qury_no") from None
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    missing = [c for c in DETAIL_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise InputError(f"the detail file lacks columns: {', '.join(missing)}", field="input.data.file_qury_no")
    return rows


def compare_details(session: Session, fixmedins_code: str, begin: date, end: date, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    start, stop = _period(begin, end)
    ours = {s.setl_id: s for s in session.scalars(select(Settlement).where(
        Settlement.fixmedins_code == fixmedins_code, Settlement.setl_time >= start, Settlement.setl_time < stop))}
    results: list[dict[str, Any]] = []
    for n, row in enumerate(rows, start=2):
        setl_id = row["setl_id"].strip()
        mine = ours.pop(setl_id, None)
        try:
            theirs = {k: to_fen(row[k], f"row {n} {k}") for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")}
        except InputError as error:
            raise InputError(f"detail file {error.message}", field="input.data.file_qury_no") from None
        if mine is None:
            results.append({"setl_id": setl_id, "mdtrt_id": row["mdtrt_id"], "psn_no": row["psn_no"], "stmt_rslt": "2",
                            "memo": "机构有、平台无", **{k: yuan(v) for k, v in theirs.items()}})
            continue
        mine_amounts = {"medfee_sumamt": mine.medfee_sumamt, "fund_pay_sumamt": mine.fund_pay_sumamt,
                        "acct_pay": mine.acct_pay + mine.acct_mulaid_pay}
        if mine_amounts != theirs or row["refd_setl_flag"].strip() not in ("", mine.refd_setl_flag):
            results.append({"setl_id": setl_id, "mdtrt_id": mine.mdtrt_id, "psn_no": mine.psn_no, "stmt_rslt": "3",
                            "memo": "金额或退费标志不一致", **{k: yuan(v) for k, v in mine_amounts.items()}})
    for mine in ours.values():
        results.append({"setl_id": mine.setl_id, "mdtrt_id": mine.mdtrt_id, "psn_no": mine.psn_no, "stmt_rslt": "1",
                        "memo": "平台有、机构无", "medfee_sumamt": yuan(mine.medfee_sumamt), "fund_pay_sumamt": yuan(mine.fund_pay_sumamt),
                        "acct_pay": yuan(mine.acct_pay + mine.acct_mulaid_pay)})
    return results


def result_file(results: list[dict[str, Any]]) -> bytes:
    columns = ("setl_id", "mdtrt_id", "psn_no", "stmt_rslt", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "memo")
    text = "\t".join(columns) + "\n" + "".join("\t".join(str(r[c]) for c in columns) + "\n" for r in results)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("stmt_detail_result.txt", text.encode("utf-8"))
    return buffer.getvalue()
