"""The rule library (智能审核规则库) as data: ``review/data/rules.yaml`` read once, checked, and indexed in memory by
item code prefix, so a claim is reviewed in one pass without a read (docs/review.md)."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RULES_FILE = Path(__file__).parent / "data" / "rules.yaml"

KINDS = ("sex", "age", "duplicate", "quantity", "hospital_level", "indication", "split_admission", "readmission", "drug_diagnosis")
# kinds about the stay as a whole (no item): checked once per inpatient claim
VISIT_KINDS = ("split_admission", "readmission")
SEVERITIES = {"1": "明确违规", "2": "高度可疑", "3": "轻度可疑"}
ACTIONS = {"refuse": "拒付", "selfpay": "转自费", "warn": "提示"}
ACTION_OF_SEVERITY = {"1": "refuse", "2": "selfpay", "3": "warn"}
# 违规行为分类 (vola_bhvr_type) of each kind
BEHAVIOUR = {"sex": "1", "age": "1", "duplicate": "2", "quantity": "3", "hospital_level": "1", "indication": "4",
             "split_admission": "5", "readmission": "5", "drug_diagnosis": "4"}


class RuleError(ValueError):
    """The rule file is wrong: the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    kind: str
    name: str
    severity: str
    action: str
    message: str
    basis: str = ""
    items: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    gend: str = ""
    age_min: int | None = None
    age_max: int | None = None
    per_day: int | None = None
    per_visit: int | None = None
    min_level: int | None = None
    max_level: int | None = None
    days: int = 0

    @property
    def limit(self) -> int | None:
        return self.per_day if self.per_day is not None else self.per_visit

    def text(self, name: str = "", code: str = "") -> str:
        return self.message.format(name=name or code, code=code, limit=self.limit, days=self.days)


@dataclass(frozen=True)
class RuleBook:
    """Rules indexed for one pass: by item code prefix (its lengths kept to look a code up in a few probes) and the
    stay-level ones apart."""

    rules: tuple[Rule, ...]
    by_prefix: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()
    visit_rules: tuple[Rule, ...] = ()

    def for_code(self, code: str) -> list[Rule]:
        found: list[Rule] = []
        for length in self.prefix_lengths:
            if len(code) >= length:
                found.extend(self.by_prefix.get(code[:length], ()))
        return found

    def only(self, rule_ids: set[str]) -> RuleBook:
        return book([r for r in self.rules if r.rule_id in rule_ids])

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)


def book(rules: list[Rule]) -> RuleBook:
    index: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules:
        for item in rule.items:
            index[item].append(rule)
    return RuleBook(tuple(rules), {k: tuple(v) for k, v in index.items()}, tuple(sorted({len(k) for k in index})),
                    tuple(r for r in rules if r.kind in VISIT_KINDS))


def _int(raw: dict[str, Any], name: str, where: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError(f"{where}.{name}: a whole number ≥ 0, not {value!r}")
    return value


def parse(data: Any) -> RuleBook:
    """Check and index a rule file's content."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError("the rule file holds `rules:`, a list")
    rules, seen = [], set()
    for i, raw in enumerate(data["rules"]):
        where = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise RuleError(f"{where}: a mapping")
        rule_id = str(raw.get("id", "")).strip()
        if not rule_id or rule_id in seen:
            raise RuleError(f"{where}.id: missing or repeated ({rule_id!r})")
        seen.add(rule_id)
        where = f"rule {rule_id}"
        kind = raw.get("kind")
        if kind not in KINDS:
            raise RuleError(f"{where}.kind: one of {', '.join(KINDS)}, not {kind!r}")
        severity = str(raw.get("severity", ""))
        if severity not in SEVERITIES:
            raise RuleError(f"{where}.severity: 1, 2 or 3, not {severity!r}")
        action = str(raw.get("action") or ACTION_OF_SEVERITY[severity])
        if action not in ACTIONS:
            raise RuleError(f"{where}.action: refuse, selfpay or warn, not {action!r}")
        if kind in VISIT_KINDS and action == "selfpay":
            raise RuleError(f"{where}.action: a stay-level rule refuses or warns (it names no line to self-pay)")
        items = tuple(str(c).strip().upper() for c in raw.get("items") or ())
        diagnoses = tuple(str(c).strip().upper() for c in raw.get("diagnoses") or ())
        if kind not in VISIT_KINDS and not items:
            raise RuleError(f"{where}.items: the catalogue codes (or prefixes) the rule applies to")
        if kind in ("indication", "drug_diagnosis") and not diagnoses:
            raise RuleError(f"{where}.diagnoses: the diagnosis codes (or prefixes)")
        rule = Rule(rule_id, kind, str(raw.get("name") or kind), severity, action, str(raw.get("message") or raw.get("name") or kind),
                    str(raw.get("basis") or ""), items, diagnoses, str(raw.get("gend") or ""), _int(raw, "age_min", where),
                    _int(raw, "age_max", where), _int(raw, "per_day", where), _int(raw, "per_visit", where),
                    _int(raw, "min_level", where), _int(raw, "max_level", where), _int(raw, "days", where) or 0)
        if kind == "sex" and rule.gend not in ("1", "2"):
            raise RuleError(f"{where}.gend: 1 (男) or 2 (女), the sex the item is for")
        if kind == "age" and rule.age_min is None and rule.age_max is None:
            raise RuleError(f"{where}: age_min or age_max")
        if kind == "quantity" and rule.per_day is None and rule.per_visit is None:
            raise RuleError(f"{where}: per_day or per_visit")
        if kind == "hospital_level" and rule.min_level is None and rule.max_level is None:
            raise RuleError(f"{where}: min_level or max_level")
        if kind in VISIT_KINDS and rule.days <= 0:
            raise RuleError(f"{where}.days: the number of days after a discharge")
        try:
            rule.text("名称", "code")
        except (KeyError, IndexError, ValueError) as error:
            raise RuleError(f"{where}.message: {error}") from None
        rules.append(rule)
    return book(rules)


def load(path: Path) -> RuleBook:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RuleError(f"{path}: {error}") from None
    return parse(data)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> RuleBook:
    return load(Path(path))


def current(path: Path = RULES_FILE) -> RuleBook:
    """The rule book in force, read once and again only when the file changes (a stat per call)."""
    return _cached(str(path), path.stat().st_mtime_ns)
