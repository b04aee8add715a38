"""The grouper: a discharged inpatient case → its CHS-DRG-shaped group and its DIP packet. Pure: no storage, no clock.

The tables are data (``drg/data/drg_demo.yaml``, ``drg/data/dip_demo.yaml``; docs/drg.md): demo tables in the national
code formats, not CHS-DRG's own. A grouping follows CHS-DRG's three steps and says what it did at each (the trace, like
OpenDRG's messages):

1. **MDC** by the main diagnosis (longest matching prefix);
2. **ADRG** (core group): a surgical or non-operating-room group of the MDC that lists the main procedure (else another
   of the case's procedures), else the medical group of the main diagnosis; an operating-room procedure no surgical
   group of the MDC takes makes the case ambiguous (QY);
3. **DRG**: a split core group by the most severe secondary diagnosis that counts — MCC (…1), CC (…3), none (…5) — where a
   complication does not count when the main diagnosis is in its exclusion table; an unsplit group ends in 9.

A case the tables cannot group gets the ungroupable code (0000) or the ambiguous one (QY) and the reason. DIP: the
core packet of (main diagnosis at the 亚目 level, main procedure), else the comprehensive packet of the case's
procedure type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml

from yibao.core.errors import InputError

# ICD-10 医保版 (K22.301, I10.x05, E14.900x001) and ICD-9-CM-3 医保版 (47.0900, 74.1x00, 96.0800x005)
DIAGNOSIS = re.compile(r"[A-Z]\d{2}\.[0-9x]\d{2}(?:x\d{3})?")
PROCEDURE = re.compile(r"\d{2}\.\d[0-9x]\d{2}(?:x\d{3})?")
DIAGNOSIS_PREFIX = re.compile(r"(?:[A-Z](?:\d(?:\d(?:\.[0-9x]?)?)?)?)?")
SEVERITY = {"mcc": ("1", "伴严重并发症或合并症"), "cc": ("3", "伴一般并发症或合并症"), None: ("5", "不伴并发症或合并症")}
KINDS = ("surgery", "therapeutic", "diagnostic")
DIP_TYPES = ("surgery", "therapeutic", "diagnostic", "conservative")


class TableError(InputError):
    """A grouper table is malformed (named file, key and reason)."""


@dataclass(frozen=True)
class Diagnosis:
    code: str
    main: bool = False


@dataclass(frozen=True)
class Procedure:
    code: str
    main: bool = False


@dataclass(frozen=True)
class Case:
    """What the settlement list (4101) gives the grouper."""

    diagnoses: tuple[Diagnosis, ...]
    procedures: tuple[Procedure, ...] = ()
    age: int = 0
    gend: str = ""
    los: int = 0  # 实际住院天数
    dscg_way: str = ""
    nwb_bir_wt: int = 0  # grams, newborns


@dataclass(frozen=True)
class Grouping:
    """A DRG answer: the group (or 0000 / QY), its weight, and the trace of every step."""

    code: str
    name: str
    weight: Decimal
    mdc: str = ""
    adrg: str = ""
    trace: tuple[str, ...] = ()
    reason: str = ""  # why a case is ungroupable or ambiguous ("" when grouped)

    @property
    def grouped(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Packet:
    """A DIP answer: the packet (core or comprehensive), its score (分值), the trace; code "" when none."""

    code: str
    name: str
    score: Decimal
    kind: str = ""  # core | comprehensive | ""
    trace: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Adrg:
    code: str
    name: str
    mdc: str
    diagnoses: tuple[str, ...]
    procedures: frozenset[str]
    weights: tuple[Decimal, ...]  # (MCC, CC, none) when split, else (unsplit,)

    @property
    def surgical(self) -> bool:
        return "A" <= self.code[1] <= "J"

    @property
    def operating(self) -> bool:
        """Surgical (A–J) or non-operating-room procedure (K–Q): taken by procedure."""
        return self.code[1] <= "Q"


@dataclass(frozen=True)
class Tables:
    version: str
    ungroupable: tuple[str, str]
    ambiguous: tuple[str, str]
    mdc: dict[str, tuple[str, tuple[str, ...]]]  # letter → (name, diagnosis prefixes)
    procedures: dict[str, tuple[str, str]]  # code → (name, kind)
    adrg: dict[str, Adrg]
    cc: dict[str, tuple[str, str]]  # secondary diagnosis → (mcc|cc, exclusion table)
    exclusions: dict[str, tuple[str, ...]]
    dip_version: str = ""
    dip_core: dict[tuple[str, str], tuple[str, str, Decimal]] = field(default_factory=dict)  # (亚目, procedure) → (code, name, score)
    dip_comprehensive: dict[str, tuple[str, str, Decimal]] = field(default_factory=dict)  # procedure type → (code, name, score)


def _prefix_ok(prefix: str) -> bool:
    return prefix == "" or bool(DIAGNOSIS_PREFIX.fullmatch(prefix))


def _weight(value: Any, where: str) -> Decimal:
    try:
        weight = Decimal(str(value))
    except ArithmeticError:
        raise TableError(f"{where}: '{value}' is not a number") from None
    if not weight.is_finite() or weight <= 0:
        raise TableError(f"{where}: {value} must be a positive number")
    return weight


def parse(drg: dict[str, Any], dip: dict[str, Any], source: str = "drg tables") -> Tables:
    """Check and index the two documents; a TableError names the key at fault."""
    try:
        mdc: dict[str, tuple[str, tuple[str, ...]]] = {}
        for letter, entry in drg["mdc"].items():
            prefixes = tuple(str(p) for p in entry["diagnoses"])
            if not (len(letter) == 1 and letter.isupper()) or not all(_prefix_ok(p) for p in prefixes):
                raise TableError(f"{source}: mdc.{letter}: a letter and ICD-10 prefixes")
            mdc[letter] = (str(entry["name"]), prefixes)
        procedures: dict[str, tuple[str, str]] = {}
        for code, entry in drg["procedures"].items():
            if not PROCEDURE.fullmatch(str(code)) or entry["kind"] not in KINDS:
                raise TableError(f"{source}: procedures.{code}: an ICD-9-CM-3 code (NN.NNNN) of kind {', '.join(KINDS)}")
            procedures[str(code)] = (str(entry["name"]), entry["kind"])
        adrg: dict[str, Adrg] = {}
        for code, entry in drg["adrg"].items():
            where = f"{source}: adrg.{code}"
            if not re.fullmatch(r"[A-Z][A-Z]\d", code) or entry["mdc"] not in mdc or code[0] != entry["mdc"]:
                raise TableError(f"{where}: a code like GZ1 whose first letter is its MDC")
            if "weights" in entry:
                weights = tuple(_weight(w, where) for w in entry["weights"])
                if len(weights) != 3:
                    raise TableError(f"{where}: weights are three (MCC, CC, none)")
            else:
                weights = (_weight(entry["weight"], where),)
            diagnoses = tuple(str(p) for p in entry.get("diagnoses", ()))
            listed = frozenset(str(p) for p in entry.get("procedures", ()))
            if not all(_prefix_ok(p) for p in diagnoses) or not listed <= set(procedures):
                raise TableError(f"{where}: diagnoses must be ICD-10 prefixes, procedures codes of the procedures table")
            group = Adrg(code, str(entry["name"]), entry["mdc"], diagnoses, listed, weights)
            if group.operating != bool(listed) or (not group.operating and not diagnoses):
                raise TableError(f"{where}: a surgical or operating group (A–Q) lists procedures, a medical one (R–Z) diagnoses")
            adrg[code] = group
        exclusions = {str(k): tuple(str(p) for p in v) for k, v in drg["exclusions"].items()}
        cc: dict[str, tuple[str, str]] = {}
        for code, entry in drg["cc"].items():
            if not DIAGNOSIS.fullmatch(code) or entry["level"] not in ("mcc", "cc") or str(entry["exclusion"]) not in exclusions:
                raise TableError(f"{source}: cc.{code}: an ICD-10 code, level mcc or cc, and an exclusion table that exists")
            cc[code] = (entry["level"], str(entry["exclusion"]))
        core: dict[tuple[str, str], tuple[str, str, Decimal]] = {}
        for i, entry in enumerate(dip.get("core", ())):
            diagnosis, procedure = str(entry["diagnosis"]), str(entry.get("procedure") or "")
            if not re.fullmatch(r"[A-Z]\d{2}\.[0-9x]", diagnosis) or (procedure and procedure not in procedures):
                raise TableError(f"{source}: dip core[{i}]: a 亚目 like K35.9 and a procedure of the procedures table or ''")
            code = f"{diagnosis}/{procedure or '0'}"
            core[(diagnosis, procedure)] = (code, str(entry["name"]), _weight(entry["score"], f"{source}: dip core[{i}]"))
        comprehensive = {}
        for kind in DIP_TYPES:
            entry = dip["comprehensive"][kind]
            comprehensive[kind] = (str(entry["code"]), str(entry["name"]), _weight(entry["score"], f"{source}: dip comprehensive.{kind}"))
        return Tables(str(drg["version"]), (str(drg["ungroupable"]["code"]), str(drg["ungroupable"]["name"])),
                      (str(drg["ambiguous"]["code"]), str(drg["ambiguous"]["name"])), mdc, procedures, adrg, cc, exclusions,
                      str(dip.get("version", "")), core, comprehensive)
    except (KeyError, TypeError, AttributeError) as error:
        raise TableError(f"{source}: missing or malformed entry ({error})") from None


@cache
def demo_tables() -> Tables:
    """The shipped demo tables."""
    data = resources.files("yibao.drg.data")
    drg = yaml.safe_load(data.joinpath("drg_demo.yaml").read_text(encoding="utf-8"))
    dip = yaml.safe_load(data.joinpath("dip_demo.yaml").read_text(encoding="utf-8"))
    return parse(drg, dip, "drg/data")


def _longest(code: str, candidates: dict[str, tuple[str, ...]]) -> tuple[str, str] | None:
    """(key, prefix) of the candidate with the longest prefix of ``code`` (ties: the first listed)."""
    best: tuple[str, str] | None = None
    for key, prefixes in candidates.items():
        for prefix in prefixes:
            if code.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
                best = (key, prefix)
    return best


def _main(case: Case) -> tuple[str | None, str]:
    """The main diagnosis, or None and why."""
    mains = [d for d in case.diagnoses if d.main]
    if not mains:
        return None, "no main diagnosis (maindiag_flag 1)"
    if len({d.code for d in mains}) > 1:
        return None, f"{len(mains)} main diagnoses ({', '.join(d.code for d in mains)}): exactly one is the main diagnosis"
    return mains[0].code, ""


def group(case: Case, tables: Tables | None = None) -> Grouping:
    """CHS-DRG-shaped grouping of one case (see the module's docstring)."""
    t = tables or demo_tables()
    trace: list[str] = []

    def fail(reason: str, *, ambiguous: bool = False, mdc: str = "") -> Grouping:
        code, name = t.ambiguous if ambiguous else t.ungroupable
        trace.append(f"{code} {name}: {reason}")
        return Grouping(code, name, Decimal(0), mdc=mdc, trace=tuple(trace), reason=reason)

    main, why = _main(case)
    if main is None:
        return fail(why)
    for d in case.diagnoses:
        if not DIAGNOSIS.fullmatch(d.code):
            return fail(f"diagnosis '{d.code[:30]}' is not an ICD-10 医保版 code (like K22.301)")
    for p in case.procedures:
        if not PROCEDURE.fullmatch(p.code):
            return fail(f"procedure '{p.code[:30]}' is not an ICD-9-CM-3 医保版 code (like 47.0900)")
        if p.code not in t.procedures:
            return fail(f"procedure {p.code} is not in the grouper's tables ({t.version})")
    trace.append(f"主要诊断 {main}")
    found = _longest(main, {k: v[1] for k, v in t.mdc.items()})
    if found is None:
        return fail(f"main diagnosis {main} belongs to no MDC of the tables ({t.version})")
    mdc = found[0]
    trace.append(f"MDC{mdc} {t.mdc[mdc][0]} (主要诊断 {main} 属 {found[1]})")
    # procedures in order: the main one first, then the others as listed
    ordered = [p.code for p in case.procedures if p.main] + [p.code for p in case.procedures if not p.main]
    groups = [g for g in t.adrg.values() if g.mdc == mdc]
    chosen: Adrg | None = None
    for code in ordered:
        for g in groups:
            if g.operating and code in g.procedures and (not g.diagnoses or any(main.startswith(p) for p in g.diagnoses)):
                chosen = g
                trace.append(f"ADRG {g.code} {g.name} (手术操作 {code} {t.procedures[code][0]})")
                break
        if chosen:
            break
    if chosen is None:
        surgery = [c for c in ordered if t.procedures[c][1] == "surgery"]
        if surgery:
            return fail(f"operating-room procedure {surgery[0]} {t.procedures[surgery[0]][0]} is in no surgical core group of "
                        f"MDC{mdc} with main diagnosis {main}", ambiguous=True, mdc=mdc)
        medical = {g.code: g.diagnoses for g in groups if not g.operating}
        hit = _longest(main, medical)
        if hit is None:
            needing = [g.code for g in groups if g.operating and any(main.startswith(p) for p in g.diagnoses)]
            if needing:
                return fail(f"main diagnosis {main} is grouped only with a procedure ({', '.join(needing)}); the case has none of "
                            "theirs", mdc=mdc)
            return fail(f"main diagnosis {main} is in no core group of MDC{mdc}", mdc=mdc)
        chosen = t.adrg[hit[0]]
        trace.append(f"ADRG {chosen.code} {chosen.name} (内科, 主要诊断 {main})")
    if len(chosen.weights) == 1:
        code = f"{chosen.code}9"
        trace.append(f"{code} {chosen.name} (未细分)")
        return Grouping(code, chosen.name, chosen.weights[0], mdc, chosen.code, tuple(trace))
    level: str | None = None
    for d in case.diagnoses:
        if d.main or d.code == main or d.code not in t.cc:
            continue
        severity, table = t.cc[d.code]
        excluded = [p for p in t.exclusions[table] if main.startswith(p)]
        if excluded:
            trace.append(f"诊断 {d.code} 属于{severity.upper()}，排除表{table} 排除主要诊断 {main}：不计")
            continue
        trace.append(f"诊断 {d.code} 属于{severity.upper()}，排除表{table}")
        if severity == "mcc" or level is None:
            level = severity
    digit, label = SEVERITY[level]
    code = f"{chosen.code}{digit}"
    weight = chosen.weights[{"1": 0, "3": 1, "5": 2}[digit]]
    name = f"{chosen.name}，{label}"
    trace.append(f"{code} {name}")
    return Grouping(code, name, weight, mdc, chosen.code, tuple(trace))


def subcategory(code: str) -> str:
    """The 亚目 of an ICD-10 医保版 code: K35.900 → K35.9, I10.x00 → I10.x."""
    return code[:5]


def dip_type(case: Case, tables: Tables) -> str:
    kinds = {tables.procedures[p.code][1] for p in case.procedures if p.code in tables.procedures}
    return next((k for k in KINDS if k in kinds), "conservative")


def packet(case: Case, tables: Tables | None = None) -> Packet:
    """The DIP packet: core (亚目 × main procedure, or conservative), else comprehensive by procedure type."""
    t = tables or demo_tables()
    trace: list[str] = []
    main, why = _main(case)
    if main is None:
        return Packet("", "", Decimal(0), trace=(why,), reason=why)
    if not DIAGNOSIS.fullmatch(main) or _longest(main, {k: v[1] for k, v in t.mdc.items()}) is None:
        reason = f"main diagnosis {main[:30]} is not in the tables ({t.dip_version})"
        return Packet("", "", Decimal(0), trace=(reason,), reason=reason)
    unknown = [p.code for p in case.procedures if p.code not in t.procedures]
    if unknown:
        reason = f"procedure {unknown[0][:30]} is not in the tables ({t.dip_version})"
        return Packet("", "", Decimal(0), trace=(reason,), reason=reason)
    sub = subcategory(main)
    mains = [p.code for p in case.procedures if p.main] or [p.code for p in case.procedures][:1]
    key = (sub, mains[0] if mains else "")
    trace.append(f"主要诊断亚目 {sub}, 主要手术操作 {key[1] or '无（保守治疗）'}")
    core = t.dip_core.get(key)
    if core is not None:
        trace.append(f"核心病种 {core[0]} {core[1]} 分值 {core[2]}")
        return Packet(core[0], core[1], core[2], "core", tuple(trace))
    kind = dip_type(case, t)
    code, name, score = t.dip_comprehensive[kind]
    trace.append(f"无核心病种 → {code} {name} 分值 {score}")
    return Packet(code, name, score, "comprehensive", tuple(trace))
