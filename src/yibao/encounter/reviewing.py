"""Claim review at settlement (事中审核, 2206/2207 and 2303/2304): the claim's facts gathered in a few indexed reads,
checked by the pure `yibao.review.checker` against the rule book held in memory, and applied by severity before the
engine runs — a refusing rule refuses the settlement naming the line and the rule, a self-pay rule makes its line
wholly self-paid (fulamt_ownpay), a warning goes to warn_msg. The fired rules are recorded with the settlement.

Reads only what the rules touching this claim need: none when no rule names any of its items (and, for a stay, no
stay-level rule applies); the visit's diagnoses for indication and drug–diagnosis rules; its settled lines for
duplicate and quantity rules; the person's previous stays for split admission and readmission.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.encounter.models import Diagnosis, FeeLine, Visit
from yibao.encounter.rows import FeeLineRow
from yibao.review import checker
from yibao.review import service as review
from yibao.review.rules import ACTIONS, SEVERITIES
from yibao.settlement import engine
from yibao.store import sql


@dataclass(frozen=True)
class DiagnosisCode:
    diag_code: str
    maindiag_flag: str


@dataclass(frozen=True)
class SettledLine:
    feedetl_sn: str
    med_list_codg: str
    med_list_name: str
    cnt: Decimal
    det_item_fee_sumamt_fen: int
    fee_ocur_time: datetime


@dataclass(frozen=True)
class PreviousStay:
    mdtrt_id: str
    dise_codg: str
    endtime: datetime


_DIAG, _LINE, _VISIT = sql.table_of(Diagnosis), sql.table_of(FeeLine), sql.table_of(Visit)
DIAGNOSES = sql.Query(DiagnosisCode, sql.select_of(DiagnosisCode, _DIAG)
                      .where(_DIAG.c.mdtrt_id == bindparam("mdtrt_id"), _DIAG.c.vali_flag == "1"))
SETTLED_LINES = sql.Query(SettledLine, sql.select_of(SettledLine, _LINE)
                          .where(_LINE.c.mdtrt_id == bindparam("mdtrt_id"), _LINE.c.status == "settled"))
PREVIOUS_STAYS = sql.Query(PreviousStay, sql.select_of(PreviousStay, _VISIT)
                           .where(_VISIT.c.psn_no == bindparam("psn_no"), _VISIT.c.begntime >= bindparam("since"),
                                  _VISIT.c.begntime <= bindparam("before"), _VISIT.c.mdtrt_id != bindparam("mdtrt_id"),
                                  _VISIT.c.kind == "inpatient",
                                  _VISIT.c.status != "cancelled", _VISIT.c.endtime.is_not(None)))
LINE_KINDS_NEEDING_DIAGNOSES = ("indication", "drug_diagnosis")
LINE_KINDS_NEEDING_HISTORY = ("duplicate", "quantity")
# how long before an admission a previous stay may have begun and still have ended within a rule's days
LONGEST_STAY = timedelta(days=366)


@dataclass(frozen=True)
class Verdict:
    violations: list[checker.Violation] = field(default_factory=list)
    selfpaid: frozenset[str] = frozenset()
    warning: str = ""


NOTHING = Verdict()


def _line(row: FeeLineRow | SettledLine, index: int = 0) -> checker.Line:
    return checker.Line(row.feedetl_sn, row.med_list_codg, row.med_list_name, Decimal(str(row.cnt)), row.det_item_fee_sumamt_fen,
                        row.fee_ocur_time.date(), index)


def _main_diagnosis(session: Session, stays: list[PreviousStay]) -> dict[str, str]:
    """Each previous stay's main diagnosis: its discharge diagnosis flagged main, else the admission's (a rare read: an
    admission with stays before it)."""
    main = {stay.mdtrt_id: stay.dise_codg for stay in stays}
    if stays:
        query = select(Diagnosis.mdtrt_id, Diagnosis.diag_code).where(Diagnosis.mdtrt_id.in_(list(main)), Diagnosis.maindiag_flag == "1",
                                                                     Diagnosis.vali_flag == "1")
        for mdtrt_id, code in session.execute(query):
            main[mdtrt_id] = code
    return main


def review_claim(session: Session, visit: Any, gend: str, brdy: date, hosp_lv: int, lines: Sequence[FeeLineRow], where: str) -> Verdict:
    """Check a settlement's lines; a refusing rule raises (infcode -1 naming the line and the rule)."""
    book = review.rule_book()
    hits = {kind for line in lines for kind in (r.kind for r in book.for_code(line.med_list_codg))}
    stay_rules = visit.kind == "inpatient" and bool(book.visit_rules)
    if not hits and not stay_rules:
        return NOTHING
    diagnoses: list[str] = []
    main = ""
    if hits & set(LINE_KINDS_NEEDING_DIAGNOSES) or stay_rules:
        for d in sql.rows(session, DIAGNOSES, mdtrt_id=visit.mdtrt_id):
            diagnoses.append(d.diag_code)
            if d.maindiag_flag == "1":
                main = d.diag_code
        diagnoses.extend(line.dise_codg for line in lines if line.dise_codg)
        main = main or visit.dise_codg or (diagnoses[0] if diagnoses else "")
    earlier = ([_line(row) for row in sql.rows(session, SETTLED_LINES, mdtrt_id=visit.mdtrt_id)]
               if hits & set(LINE_KINDS_NEEDING_HISTORY) else [])
    stays: list[checker.Stay] = []
    if stay_rules:
        longest = max(r.days for r in book.visit_rules)
        found = sql.rows(session, PREVIOUS_STAYS, psn_no=visit.psn_no, since=visit.begntime - LONGEST_STAY - timedelta(days=longest),
                         before=visit.begntime, mdtrt_id=visit.mdtrt_id)
        mains = _main_diagnosis(session, found)
        stays = [checker.Stay(s.mdtrt_id, mains.get(s.mdtrt_id, ""), s.endtime) for s in found]
    care_day = min(visit.begntime.date(), clock.today())
    claim = checker.Claim(patn_id=visit.psn_no, mdtrt_id=visit.mdtrt_id, gend=gend, age=clock.age_on(brdy, care_day), kind=visit.kind,
                          hosp_lv=hosp_lv, begin=visit.begntime, diagnoses=tuple(diagnoses), main_diagnosis=main,
                          lines=tuple(_line(row, i) for i, row in enumerate(lines)), earlier_lines=tuple(earlier),
                          previous_stays=tuple(stays))
    violations = checker.check(book, claim)
    if not violations:
        return NOTHING
    refusal = next((v for v in violations if v.action == "refuse"), None)
    if refusal is not None:
        rule = refusal.rule
        what = f"费用明细 {refusal.line.key}（{refusal.line.name or refusal.line.code}）" if refusal.line else "本次就诊"
        raise InputError(f"智能审核拒付：{what}违反规则 {rule.rule_id} {rule.name}（{SEVERITIES[rule.severity]}）：{refusal.content}",
                         field=f"feedetail[feedetl_sn={refusal.line.key}]" if refusal.line else f"{where}.mdtrt_id")
    selfpaid = frozenset(v.line.key for v in violations if v.action == "selfpay" and v.line is not None)
    warning = "; ".join(f"智能审核{ACTIONS[v.action]} {v.rule.rule_id} {v.rule.name}"
                        f"{'（明细 ' + v.line.key + '）' if v.line else ''}：{v.content}" for v in violations)
    return Verdict(violations, selfpaid, warning)


def self_pay(split: engine.LineSplit, verdict: Verdict) -> engine.LineSplit:
    """A line a self-pay rule fired on: wholly self-paid (全自费) before the engine runs."""
    if split.feedetl_sn not in verdict.selfpaid:
        return split
    return dataclasses.replace(split, fulamt_ownpay=split.amount, overlmt=0, preselfpay=0, inscp=0,
                               memo="; ".join(filter(None, (split.memo, "智能审核转自费"))))


def record(session: Session, verdict: Verdict, *, setl_id: str, visit: Any, fixmedins_code: str, at: datetime) -> None:
    review.record(session, verdict.violations, setl_id=setl_id, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no,
                  fixmedins_code=fixmedins_code, at=at)
