"""Claim review's records and lists: the findings of a settlement written with it, and the reviewers' list of them
(console). The checking itself is pure (`checker`); the facts a settlement's review needs are gathered by its caller
(encounter) in a few indexed reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core.errors import InputError
from yibao.core.money import yuan
from yibao.review.checker import Violation
from yibao.review.models import ReviewFinding
from yibao.review.rules import ACTIONS, SEVERITIES, RuleBook, current
from yibao.store import sql

_FINDING = sql.table_of(ReviewFinding)
INSERT_FINDING = sql.Statement(sql.insert_into(_FINDING, skip=("id",)))


def rule_book() -> RuleBook:
    return current()


def record(session: Session, violations: Sequence[Violation], *, setl_id: str, mdtrt_id: str, psn_no: str, fixmedins_code: str,
           at: datetime) -> None:
    """Write each fired rule against the settlement (in the settlement's transaction)."""
    if not violations:
        return
    sql.execute_many(session, INSERT_FINDING, [
        {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "fixmedins_code": fixmedins_code,
         "feedetl_sn": v.line.key[:30] if v.line else "", "med_list_codg": v.line.code[:50] if v.line else "",
         "med_list_name": v.line.name[:200] if v.line else "", "rule_id": v.rule.rule_id[:20], "rule_name": v.rule.name[:100],
         "kind": v.rule.kind, "severity": v.rule.severity, "action": v.action, "amount_fen": v.amount, "content": v.content[:500],
         "found_at": at}
        for v in violations])


@dataclass(frozen=True)
class FindingFilters:
    rule_id: str = ""
    severity: str = ""
    fixmedins_code: str = ""
    begin: date | None = None
    end: date | None = None
    limit: int = 100


def _day(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"日期格式应为 YYYY-MM-DD：{text[:20]}", field=field) from None


def filters_of(rule_id: str = "", severity: str = "", fixmedins_code: str = "", begin: str = "", end: str = "",
               limit: int = 100) -> FindingFilters:
    severity = severity.strip()
    if severity and severity not in SEVERITIES:
        raise InputError("严重程度应为 1、2 或 3", field="severity")
    return FindingFilters(rule_id.strip().upper(), severity, fixmedins_code.strip(), _day(begin, "begin"), _day(end, "end"), limit)


def findings(session: Session, filters: FindingFilters) -> list[dict[str, Any]]:
    """Flagged settlements, newest first: one entry per settlement with the rules that fired on it."""
    query = select(ReviewFinding).order_by(ReviewFinding.found_at.desc(), ReviewFinding.id)
    if filters.rule_id:
        query = query.where(ReviewFinding.rule_id == filters.rule_id)
    if filters.severity:
        query = query.where(ReviewFinding.severity == filters.severity)
    if filters.fixmedins_code:
        query = query.where(ReviewFinding.fixmedins_code == filters.fixmedins_code)
    if filters.begin:
        query = query.where(ReviewFinding.found_at >= datetime.combine(filters.begin, time()))
    if filters.end:
        query = query.where(ReviewFinding.found_at < datetime.combine(filters.end + timedelta(days=1), time()))
    grouped: dict[str, dict[str, Any]] = {}
    for f in session.scalars(query.limit(filters.limit * 20)):
        entry = grouped.get(f.setl_id)
        if entry is None:
            if len(grouped) >= filters.limit:
                continue
            entry = grouped[f.setl_id] = {"setl_id": f.setl_id, "mdtrt_id": f.mdtrt_id, "psn_no": f.psn_no,
                                          "fixmedins_code": f.fixmedins_code, "found_at": f.found_at.isoformat(sep=" ", timespec="seconds"),
                                          "severity": f.severity, "findings": []}
        entry["severity"] = min(entry["severity"], f.severity)
        entry["findings"].append({
            "rule_id": f.rule_id, "rule_name": f.rule_name, "kind": f.kind, "severity": f.severity,
            "severity_name": SEVERITIES.get(f.severity, ""), "action": f.action, "action_name": ACTIONS.get(f.action, ""),
            "feedetl_sn": f.feedetl_sn, "med_list_codg": f.med_list_codg, "med_list_name": f.med_list_name,
            "amount": str(yuan(f.amount_fen)), "content": f.content})
    return list(grouped.values())


def rules_listing() -> list[dict[str, Any]]:
    """The rules in force (the reviewer page's rule filter)."""
    return [{"rule_id": r.rule_id, "name": r.name, "kind": r.kind, "severity": r.severity, "action": r.action,
             "action_name": ACTIONS[r.action]} for r in rule_book().rules]
