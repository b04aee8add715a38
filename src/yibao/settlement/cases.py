"""Test cases written beside a region's policy: inputs → expected splits, in yuan, checked by the engine.

``<policy dir>/<admdvs>/tests/*.yaml`` holds ``cases:``, a list of claims a policy author writes without Python. They
run in the suite (tests/test_policy_cases.py), with ``yibao policy test [ADMDVS]`` (one line per case) and before
``yibao policy reload`` signals a running server. A case names only what it needs; the rest takes the defaults below.

    - name: "§4 C: above the basic fund's cap"
      day: 2026-06-01          # the day of care: the policy in force then
      insutype: "310"            # 310 employees, 390 residents
      category: in_service       # in_service | retired (employees); residents: all
      enrolled: ["310", "330"]   # the insurance types the person holds (330 large-amount, 320 civil-servant, 392 ...)
      kind: inpatient            # outpatient | inpatient | pharmacy; with `disease`: chronic care (outpatient)
      hosp_lv: 3
      ytd: {hifp: "148000.00"}   # the person's year-to-date totals (engine.YearToDate), yuan
      lines:                     # class 甲 / 乙 / 丙 / none (not in the catalogue); price_cap per unit; cnt
        - {class: 甲, amount: "11000.00"}
      expect:                    # any settlement amount, pool_prop_selfpay, funds by fund_pay_type, ytd_delta, steps
        hifp_pay: "2000.00"
        funds: {"330100": "6882.35"}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from yibao.policy.parameters import PolicyBook, PolicyError
from yibao.policy.service import snapshot
from yibao.settlement import engine
from yibao.settlement.model import CatalogRule, ChronicYearToDate, Claim, FeeLine, Outcome, Patient, YearToDate, yuan_text

CLASSES = {"甲": "01", "乙": "02", "丙": "03", "01": "01", "02": "02", "03": "03"}
INPUTS = {"name", "day", "insutype", "category", "enrolled", "kind", "hosp_lv", "cvlserv", "assistance", "unfiled_cross_province",
          "referral_cross_province",
          "admission_no", "admission_dedc_paid", "account", "mulaid", "acct_used", "disease", "ytd", "chronic_ytd", "patient",
          "lines", "expect", "note"}
AMOUNTS = [f.name for f in dataclasses.fields(Outcome) if f.type == "int"]


@dataclass(frozen=True)
class Case:
    source: str  # admdvs/tests/file.yaml
    admdvs: str
    name: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Result:
    case: Case
    failures: tuple[str, ...]  # empty: the case passes

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        head = f"{'ok  ' if self.passed else 'FAIL'} {self.case.source}: {self.case.name}"
        return head if self.passed else f"{head}: {'; '.join(self.failures)}"


def load_cases(root: Path, admdvs: str | None = None) -> list[Case]:
    cases = []
    for region in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        if admdvs and region.name != admdvs:
            continue
        for path in sorted((region / "tests").glob("*.yaml")):
            source = f"{region.name}/tests/{path.name}"
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                raise PolicyError(f"{source}: not valid YAML ({' '.join(str(error).split())})") from None
            if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
                raise PolicyError(f"{source}: must hold 'cases:', a list of cases")
            for i, spec in enumerate(document["cases"]):
                if not isinstance(spec, dict) or not str(spec.get("name", "")).strip():
                    raise PolicyError(f"{source}: case {i + 1} must be a mapping with a 'name'")
                cases.append(Case(source, region.name, str(spec["name"]), spec))
    return cases


def _fen(value: Any, where: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PolicyError(f"{where}: '{value}' is not an amount in yuan") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise PolicyError(f"{where}: '{value}' is not an amount in yuan with at most 2 decimals")
    return int(amount * 100)


def _totals(kind: type, values: Any, where: str) -> Any:
    if values is None:
        return kind()
    names = {f.name for f in dataclasses.fields(kind)}
    if not isinstance(values, dict) or set(values) - names:
        raise PolicyError(f"{where}: must map some of {', '.join(sorted(names))} to yuan")
    return kind(**{k: _fen(v, f"{where}.{k}") for k, v in values.items()})


def _inputs(book: PolicyBook, case: Case) -> tuple[Any, Claim, YearToDate, list[Any]]:
    spec, where = case.spec, f"{case.source}: {case.name}"
    unknown = set(spec) - INPUTS
    if unknown:
        raise PolicyError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))} (use {', '.join(sorted(INPUTS))})")
    on = spec.get("day")  # not `on`: YAML reads an unquoted `on` as true
    if not isinstance(on, date):
        raise PolicyError(f"{where}: 'day' must be the day of care (yyyy-mm-dd)")
    insutype = str(spec.get("insutype", "310"))
    category = str(spec.get("category", "in_service" if insutype == "310" else "all"))
    policy = snapshot(book, case.admdvs, insutype, category, on)
    kind = spec.get("kind", "outpatient")
    if kind not in ("outpatient", "inpatient", "pharmacy"):
        raise PolicyError(f"{where}: kind must be outpatient, inpatient or pharmacy (chronic care: outpatient with a disease)")
    hosp_lv = int(spec.get("hosp_lv", 1))
    patient = Patient(age=int((spec.get("patient") or {}).get("age", 40)), gend=str((spec.get("patient") or {}).get("gend", "1")))
    lines = spec.get("lines")
    if not isinstance(lines, list) or not lines:
        raise PolicyError(f"{where}: 'lines' must list at least one fee line")
    splits = []
    for i, line in enumerate(lines):
        at = f"{where}: lines[{i}]"
        if not isinstance(line, dict) or set(line) - {"class", "amount", "price_cap", "cnt"}:
            raise PolicyError(f"{at}: must be {{class, amount[, price_cap, cnt]}}")
        level = str(line.get("class", ""))
        if level not in (*CLASSES, "none"):
            raise PolicyError(f"{at}: class must be 甲, 乙, 丙 or none")
        cap = line.get("price_cap")
        rule = None if level == "none" else CatalogRule(f"CASE{i}", CLASSES[level], "09",
                                                       pric_uplmt_fen=None if cap is None else _fen(cap, f"{at}.price_cap"))
        fee = FeeLine(str(i + 1), f"CASE{i}", _fen(line.get("amount"), f"{at}.amount"), cnt=Decimal(str(line.get("cnt", 1))))
        splits.append(engine.classify(fee, rule, patient, hosp_lv, policy.yi_selfpay_prop))
    claim = Claim(kind=kind, hosp_lv=hosp_lv, enrolled=frozenset(str(t) for t in spec.get("enrolled", [insutype])),
                  cvlserv=bool(spec.get("cvlserv", False)),
                  assistance_identity=str(spec["assistance"]) if spec.get("assistance") else None,
                  unfiled_cross_province=bool(spec.get("unfiled_cross_province", False)),
                  referral_cross_province=bool(spec.get("referral_cross_province", False)),
                  admission_no=int(spec.get("admission_no", 1)),
                  admission_dedc_paid=_fen(spec.get("admission_dedc_paid", 0), f"{where}.admission_dedc_paid"),
                  acct_balance=_fen(spec.get("account", 0), f"{where}.account"),
                  mulaid_balance=_fen(spec.get("mulaid", 0), f"{where}.mulaid"),
                  acct_used=bool(spec.get("acct_used", False)), opsp_dise_code=str(spec.get("disease", "")),
                  chronic_ytd=_totals(ChronicYearToDate, spec.get("chronic_ytd"), f"{where}.chronic_ytd"))
    return policy, claim, _totals(YearToDate, spec.get("ytd"), f"{where}.ytd"), splits


def run(book: PolicyBook, case: Case) -> Result:
    """Settle the case with the book and compare every expected figure (a malformed case raises PolicyError)."""
    policy, claim, ytd, splits = _inputs(book, case)
    where = f"{case.source}: {case.name}"
    try:
        out = engine.settle(policy, claim, ytd, splits)
    except ValueError as error:
        return Result(case, (str(error),))
    expect = case.spec.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise PolicyError(f"{where}: 'expect' must name at least one expected figure")
    failures = []

    def compare(name: str, got: str, want: Any) -> None:
        if got != want:
            failures.append(f"{name} {got}, expected {want}")

    for key, want in expect.items():
        if key in AMOUNTS:
            compare(key, yuan_text(getattr(out, key)), yuan_text(_fen(want, f"{where}: expect.{key}")))
        elif key == "pool_prop_selfpay":
            compare(key, str(out.pool_prop_selfpay.normalize()), str(Decimal(str(want)).normalize()))
        elif key == "funds":
            paid = {f.fund_pay_type: f.fund_payamt for f in out.funds}
            if not isinstance(want, dict):
                raise PolicyError(f"{where}: expect.funds must map fund_pay_type to yuan")
            for code, amount in want.items():
                compare(f"fund {code}", yuan_text(paid.get(str(code), 0)), yuan_text(_fen(amount, f"{where}: expect.funds.{code}")))
        elif key in ("ytd_delta", "chronic_delta"):
            kind = YearToDate if key == "ytd_delta" else ChronicYearToDate
            wanted = _totals(kind, want, f"{where}: expect.{key}")
            for field in want:
                compare(f"{key}.{field}", yuan_text(getattr(getattr(out, key), field)), yuan_text(getattr(wanted, field)))
        elif key == "steps":
            # each expected text appears in one of the steps (the 结算过程 a counter can print)
            for text in want if isinstance(want, list) else [want]:
                if not any(str(text) in step for step in out.steps):
                    failures.append(f"no step says '{text}'")
        else:
            raise PolicyError(f"{where}: expect.{key} is not a settlement figure (use {', '.join(AMOUNTS)}, pool_prop_selfpay, "
                              "funds, ytd_delta, chronic_delta, steps)")
    return Result(case, tuple(failures))


def run_all(book: PolicyBook, root: Path, admdvs: str | None = None) -> list[Result]:
    return [run(book, case) for case in load_cases(root, admdvs)]
