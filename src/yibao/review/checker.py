"""The pure claim checker: a claim (person, visit, diagnoses, fee lines, and the person's recent history gathered
beforehand) against the rule book, in one pass over the claim's lines; no database here.

Each line looks its rules up in the book's in-memory index (by item code prefix); per-day and per-visit counts run
as the pass goes, seeded with the visit's earlier (already settled) lines; the stay-level rules (split admission,
readmission) look once at the previous stays handed in."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from yibao.review.rules import Rule, RuleBook


@dataclass(frozen=True)
class Line:
    key: str                # feedetl_sn (settlement) or rx_id (3101/3102)
    code: str               # med_list_codg / hilist_code
    name: str
    cnt: Decimal
    amount: int             # fen
    day: date
    index: int = 0          # its place in the request (feedetail[i] / fsi_order_dtos[i])


@dataclass(frozen=True)
class Stay:
    """A previous inpatient stay of the person: its discharge and main diagnosis."""

    mdtrt_id: str
    main_diagnosis: str
    discharged: datetime


@dataclass(frozen=True)
class Claim:
    patn_id: str
    mdtrt_id: str
    gend: str               # 1 男, 2 女
    age: int                # whole years on the day of care (-1: unknown, age rules pass)
    kind: str               # outpatient / inpatient / pharmacy
    hosp_lv: int            # 1–3 (0: unknown, level rules pass)
    begin: datetime         # registration / admission
    diagnoses: tuple[str, ...]
    main_diagnosis: str
    lines: tuple[Line, ...]
    earlier_lines: tuple[Line, ...] = ()       # the visit's lines settled before (count toward duplicates and limits)
    previous_stays: tuple[Stay, ...] = ()


@dataclass(frozen=True)
class Violation:
    rule: Rule
    line: Line | None       # None: the stay as a whole
    amount: int             # fen: the line's amount (a stay-level violation: 0)
    content: str            # 违规内容

    @property
    def action(self) -> str:
        return self.rule.action


@dataclass
class _Counts:
    per_day: dict[tuple[str, str, date], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    per_visit: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    seen: dict[tuple[str, str, date], int] = field(default_factory=lambda: defaultdict(int))


def _matches(diagnoses: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    return any(d.startswith(p) for d in diagnoses for p in prefixes)


def _count(rule: Rule, line: Line, counts: _Counts) -> tuple[bool, bool]:
    """Add a line to its rule's counts: whether the same item was already charged that day, and whether the counts now
    pass the rule's limits."""
    day_key = (rule.rule_id, line.code, line.day)
    visit_key = (rule.rule_id, line.code)
    repeated = counts.seen[day_key] > 0
    counts.seen[day_key] += 1
    counts.per_day[day_key] += line.cnt
    counts.per_visit[visit_key] += line.cnt
    over = ((rule.per_day is not None and counts.per_day[day_key] > rule.per_day)
            or (rule.per_visit is not None and counts.per_visit[visit_key] > rule.per_visit))
    return repeated, over


def _line_fails(rule: Rule, line: Line, claim: Claim, diagnoses: tuple[str, ...], counts: _Counts) -> bool:
    kind = rule.kind
    if kind == "sex":
        return claim.gend in ("1", "2") and claim.gend != rule.gend
    if kind == "age":
        return claim.age >= 0 and ((rule.age_min is not None and claim.age < rule.age_min)
                                   or (rule.age_max is not None and claim.age > rule.age_max))
    if kind == "hospital_level":
        return claim.hosp_lv > 0 and ((rule.min_level is not None and claim.hosp_lv < rule.min_level)
                                      or (rule.max_level is not None and claim.hosp_lv > rule.max_level))
    if kind == "indication":
        return not _matches(diagnoses, rule.diagnoses)
    if kind == "drug_diagnosis":
        return _matches(diagnoses, rule.diagnoses)
    repeated, over = _count(rule, line, counts)
    return repeated if kind == "duplicate" else over


def check(book: RuleBook, claim: Claim) -> list[Violation]:
    """Every rule that fires on the claim: the lines' in their order, then the stay's."""
    diagnoses = tuple(d.upper() for d in (*claim.diagnoses, claim.main_diagnosis) if d)
    counts = _Counts()
    for line in claim.earlier_lines:
        for rule in book.for_code(line.code):
            if rule.kind in ("duplicate", "quantity"):
                _count(rule, line, counts)
    found: list[Violation] = []
    for line in claim.lines:
        for rule in book.for_code(line.code):
            if _line_fails(rule, line, claim, diagnoses, counts):
                found.append(Violation(rule, line, line.amount, rule.text(line.name, line.code)))
    if claim.kind == "inpatient":
        main = claim.main_diagnosis.upper()
        for rule in book.visit_rules:
            for stay in claim.previous_stays:
                gap = (claim.begin.date() - stay.discharged.date()).days
                if not 0 <= gap <= rule.days or stay.mdtrt_id == claim.mdtrt_id:
                    continue
                # the same main diagnosis: the same ICD-10 category (its first three characters)
                if rule.kind == "split_admission" and not (main and stay.main_diagnosis.upper()[:3] == main[:3]):
                    continue
                found.append(Violation(rule, None, 0, f"{rule.text()}（前次就诊 {stay.mdtrt_id}，间隔{gap}日）"))
                break
    return found
