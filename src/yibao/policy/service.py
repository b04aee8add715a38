"""The policy in force for one person's claim, read by each formula at the YAML path of the parameter it needs.

``policy.get("deductible.outpatient.{insutype}.{category}")`` is the value of ``outpatient.310.in_service`` in
``deductible.yaml`` for this region, insurance type, person category and day. A formula declares the paths it reads
with ``@reads(...)``: a snapshot (and a reload) checks that every declared path is present, so a missing parameter is
refused when the policy is loaded, not in the middle of a settlement, and adding a parameter touches the YAML and the
one formula that reads it.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from itertools import product
from typing import Any, TypeVar

from yibao.policy.parameters import CARE_KINDS, CHECKS, PolicyBook, PolicyError, bundled

LEVELS = (1, 2, 3)
INSUTYPES = ("310", "390")
CATEGORIES = {"310": ("in_service", "retired"), "390": ("all",)}
# the values a placeholder of a declared path takes when a book is checked; {insutype} and {category} come from the
# snapshot, names not here (a disease code, an assistance identity) are read from the YAML's own keys
PLACEHOLDERS: dict[str, tuple[str, ...]] = {"level": tuple(str(lv) for lv in LEVELS), "kind": CARE_KINDS}

READS: set[str] = set()  # every path a formula declared
F = TypeVar("F", bound=Callable[..., Any])


def reads(*paths: str) -> Callable[[F], F]:
    """Declare the policy paths a formula reads (checked whenever a policy is loaded)."""
    def mark(formula: F) -> F:
        READS.update(paths)
        formula.reads = paths  # type: ignore[attr-defined]
        return formula
    return mark


@dataclass(frozen=True)
class ChronicTerms:
    """One chronic or special disease's own terms (门诊慢特病, ``chronic.yaml``) for an insurance type."""

    deductible: int  # fen, met once a calendar year for the disease
    ratio: Decimal  # of the in-scope amount above the deductible, paid by the basic pooled fund
    annual_cap: int  # fen, the most the pooled fund pays for the disease in a calendar year

    def __str__(self) -> str:
        return f"deductible {self.deductible / 100:,.2f}, {self.ratio * 100:.0f}%, cap {self.annual_cap / 100:,.2f} a year"


@dataclass(frozen=True)
class DrgTerms:
    """How the region pays hospitals for an insurance type's inpatient cases (``drg.yaml``)."""

    method: str  # drg | dip
    rate: int  # fen per relative weight 1.0 (费率)
    point_value: int  # fen per DIP point (点值)
    level_coefficient: dict[int, Decimal]  # hospital level → 等级系数
    high: Decimal  # 高倍率: item total above high × case payment
    low: Decimal  # 低倍率: item total below low × case payment


@dataclass(frozen=True)
class CreditTerms:
    """How a credit-care advance is repaid (``credit.yaml``): the interest-free days, the instalments and whether (and up
    to how much a calendar year) the personal account may repay it."""

    grace_days: int
    instalments: int
    period_days: int
    account_may_repay: bool
    account_repay_cap: int  # fen a calendar year
    min_instalment: int  # fen


@dataclass(frozen=True)
class Policy:
    """One region's policy for an insurance type, person category and day."""

    admdvs: str
    insutype: str
    category: str  # in_service | retired (employees) | all
    on: date
    book: PolicyBook = field(repr=False, compare=False)

    def path(self, path: str, **names: Any) -> tuple[str, str]:
        family, _, key = path.format(insutype=self.insutype, category=self.category, **names).partition(".")
        return family, key

    def get(self, path: str, **names: Any) -> Any:
        """The value in force at ``family.key.key`` (placeholders: {insutype}, {category} and the names given)."""
        family, key = self.path(path, **names)
        return self.book.value(self.admdvs, family, key, self.on)

    def keys(self, path: str, **names: Any) -> list[str]:
        """The names under a node, e.g. ``keys("chronic.ratio")`` → the disease codes."""
        family, key = self.path(path, **names)
        return self.book.children(self.admdvs, family, key)

    def items(self) -> list[tuple[str, str, Any]]:
        """Every parameter of the region in force on the day for this insurance type and category (for `policy show`)."""
        own = {self.insutype, self.category, "all"}
        out = []
        for family, parameters in sorted(self.book.regions.get(self.admdvs, {}).items()):
            for key, parameter in sorted(parameters.items()):
                parts = key.split(".")
                if any(p in INSUTYPES and p != self.insutype for p in parts):
                    continue
                if any(p in ("in_service", "retired", "all") and p not in own for p in parts):
                    continue
                try:
                    out.append((f"{family}.{key}", parameter.unit, parameter.at(self.on)))
                except PolicyError:
                    continue  # not yet in force on the day
        return out

    # What the edges read (fee-line classification, account confirmation, registration, the treatment check).

    @property
    def yi_selfpay_prop(self) -> Decimal:
        return self.get("catalogue.yi_selfpay_prop.all")

    @property
    def pay_auth_threshold(self) -> int:
        return self.get("credential.pay_auth_threshold.all")

    @property
    def pay_auth_cert_types(self) -> frozenset[str]:
        return self.get("credential.pay_auth_cert_types.all")

    @property
    def employee_arrears_months(self) -> int:
        return self.get("treatment.employee_arrears_months.all")

    @cached_property
    def assistance_ratio(self) -> dict[str, Decimal]:
        """610: the share of what is left it pays, by assistance identity (psn_idet_type)."""
        return {k: self.get("second_tier.medical_assistance.{identity}", identity=k)
                for k in self.keys("second_tier.medical_assistance") if k.isdigit()}

    @cached_property
    def credit(self) -> CreditTerms:
        """Credit care's repayment terms (the same for every insurance type and category of the region)."""
        return credit_terms(self.book, self.admdvs, self.on)

    @cached_property
    def chronic(self) -> dict[str, ChronicTerms]:
        """med_type 14: the terms of each disease (national 1309 code) this insurance type pays as chronic care."""
        codes = [c for c in self.keys("chronic.ratio") if self.insutype in self.keys("chronic.ratio.{code}", code=c)]
        return {code: ChronicTerms(deductible=self.get("chronic.deductible.{code}.{insutype}", code=code),
                                   ratio=self.get("chronic.ratio.{code}.{insutype}", code=code),
                                   annual_cap=self.get("chronic.annual_cap.{code}.{insutype}", code=code)) for code in codes}

    @cached_property
    def drg(self) -> DrgTerms:
        """DRG/DIP payment of inpatient cases to hospitals (the patient's own settlement does not read it)."""
        return DrgTerms(method=self.get("drg.method.all"), rate=self.get("drg.rate.{insutype}"),
                        point_value=self.get("drg.point_value.{insutype}"),
                        level_coefficient={lv: self.get("drg.level_coefficient.level_{level}", level=lv) for lv in LEVELS},
                        high=self.get("drg.outlier.high"), low=self.get("drg.outlier.low"))


def credit_terms(book: PolicyBook, admdvs: str, on: date) -> CreditTerms:
    def value(name: str) -> Any:
        return book.value(admdvs, "credit", f"{name}.all", on)

    return CreditTerms(grace_days=value("grace_days"), instalments=max(1, value("instalments")), period_days=value("period_days"),
                       account_may_repay=value("account_may_repay") == 1, account_repay_cap=value("account_repay_cap"),
                       min_instalment=value("min_instalment"))


def region_credit_terms(admdvs: str, on: date) -> CreditTerms:
    """The credit terms in force for a region on a day (the policy in force, reloaded like the rest)."""
    return credit_terms(bundled(), admdvs, on)


def category_of(insutype: str, psn_type: str) -> str:
    if insutype == "310":
        return "retired" if psn_type.startswith("12") or psn_type.startswith("13") else "in_service"
    return "all"


def _expansions(path: str) -> list[dict[str, str]]:
    names = [n for _, n, _, _ in string.Formatter().parse(path) if n and n in PLACEHOLDERS]
    return [dict(zip(names, values, strict=True)) for values in product(*(PLACEHOLDERS[n] for n in names))]


def check(policy: Policy) -> None:
    """Every path a formula declared is in force for this snapshot (PolicyError naming the first that is not)."""
    if not policy.book.has_region(policy.admdvs):
        raise PolicyError(f"no policy for region {policy.admdvs}")
    for path in sorted(READS):
        for names in _expansions(path):
            policy.get(path, **names)
    policy.chronic  # noqa: B018 (each listed disease needs all three terms)
    policy.assistance_ratio  # noqa: B018
    # and what the edges read (classification, account confirmation, the treatment check)
    policy.yi_selfpay_prop  # noqa: B018
    policy.pay_auth_threshold  # noqa: B018
    policy.pay_auth_cert_types  # noqa: B018
    policy.employee_arrears_months  # noqa: B018
    policy.drg  # noqa: B018 (hospital payment of inpatient cases)
    policy.credit  # noqa: B018


def check_book(book: PolicyBook) -> None:
    """A whole book: every region, insurance type and category, on each day one of its parameters changes."""
    for admdvs in sorted(book.regions):
        for insutype in INSUTYPES:
            for category in CATEGORIES[insutype]:
                for day in book.effective_dates(admdvs):
                    try:
                        check(Policy(admdvs, insutype, category, day, book))
                    except PolicyError as error:
                        raise PolicyError(f"{admdvs}, insutype {insutype} ({category}) on {day.isoformat()}: {error.message}") from None


CHECKS.append(check_book)


def snapshot(book: PolicyBook, admdvs: str, insutype: str, category: str, on: date) -> Policy:
    if insutype not in INSUTYPES:
        raise PolicyError(f"insutype {insutype} is not a basic insurance (310 employees, 390 residents)")
    policy = Policy(admdvs, insutype, category if insutype == "310" else "all", on, book)
    check(policy)
    return policy


def policy_for(admdvs: str, insutype: str, category: str, on: date) -> Policy:
    """The policy in force (cached per book: the hot path asks the same few questions all day; a reload starts afresh)."""
    book = bundled()
    key = (admdvs, insutype, category, on)
    found = book.snapshots.get(key)
    if found is None:
        if len(book.snapshots) > 4096:
            book.snapshots.clear()
        found = book.snapshots[key] = snapshot(book, admdvs, insutype, category, on)
    return found
