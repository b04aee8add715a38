"""The policy in force for one person's claim: a typed snapshot the pure engine reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache

from yibao.policy.parameters import PolicyBook, PolicyError, bundled

LEVELS = (1, 2, 3)


@dataclass(frozen=True)
class ChronicTerms:
    """One chronic or special disease's own terms (门诊慢特病, ``chronic.yaml``) for an insurance type."""

    deductible: int  # fen, met once a calendar year for the disease
    ratio: Decimal  # of the in-scope amount above the deductible, paid by the basic pooled fund
    annual_cap: int  # fen, the most the pooled fund pays for the disease in a calendar year

    def __str__(self) -> str:
        return f"deductible {self.deductible / 100:,.2f}, {self.ratio * 100:.0f}%, cap {self.annual_cap / 100:,.2f} a year"


@dataclass(frozen=True)
class Policy:
    """Every number the engine needs for one region, insurance type, person category and day (fen and ratios)."""

    admdvs: str
    insutype: str
    category: str  # in_service | retired | all
    on: date
    yi_selfpay_prop: Decimal
    otp_deductible: int
    ipt_deductible: dict[int, int]
    later_admission_share: Decimal
    otp_ratio: dict[int, Decimal]
    ipt_ratio: dict[int, Decimal]
    pharmacy_ratio: Decimal
    unfiled_reduction: Decimal
    otp_fund_cap: int
    basic_fund_cap: int
    large_amount_ratio: Decimal
    large_amount_cap: int
    cvlserv_otp_ratio: Decimal
    cvlserv_ipt_ratio: Decimal
    catastrophic_tiers: tuple[tuple[int, Decimal], ...]
    assistance_ratio: dict[str, Decimal]
    assistance_cap: int
    # personal-account payments above this (fen) need the patient's password or face check in the app ...
    pay_auth_threshold: int = 0
    # ... when the counter presents one of these credential types (mdtrt_cert_type)
    pay_auth_cert_types: frozenset[str] = frozenset(("01",))
    # med_type 14: the terms of each chronic or special disease (national 1309 code) this insurance type pays for
    chronic: dict[str, ChronicTerms] = field(default_factory=dict)
    # 2001: an employee in service with no contribution in each of this many months before the month of care has no benefits
    employee_arrears_months: int = 3


def category_of(insutype: str, psn_type: str) -> str:
    if insutype == "310":
        return "retired" if psn_type.startswith("12") or psn_type.startswith("13") else "in_service"
    return "all"


def snapshot(book: PolicyBook, admdvs: str, insutype: str, category: str, on: date) -> Policy:
    if insutype not in ("310", "390"):
        raise PolicyError(f"insutype {insutype} is not a basic insurance (310 employees, 390 residents)")
    v = book.value
    cat = category if insutype == "310" else "all"
    assistance_keys = [k.split(".")[1] for k in book.regions.get(admdvs, {}).get("second_tier", {})
                       if k.startswith("medical_assistance.") and k.split(".")[1].isdigit()]
    # ratio.<disease>.<insutype>: the diseases this insurance type pays as chronic care (each needs all three terms)
    diseases = sorted(k.split(".")[1] for k in book.regions.get(admdvs, {}).get("chronic", {})
                      if k.startswith("ratio.") and k.endswith(f".{insutype}"))
    return Policy(
        admdvs=admdvs, insutype=insutype, category=cat, on=on,
        yi_selfpay_prop=v(admdvs, "catalogue", "yi_selfpay_prop.all", on),
        otp_deductible=v(admdvs, "deductible", f"outpatient.{insutype}.{cat}", on),
        ipt_deductible={lv: v(admdvs, "deductible", f"inpatient.{insutype}.level_{lv}", on) for lv in LEVELS},
        later_admission_share=v(admdvs, "deductible", "later_admission_share.all", on),
        otp_ratio={lv: v(admdvs, "pool_ratio", f"outpatient.{insutype}.{cat}.level_{lv}", on) for lv in LEVELS},
        ipt_ratio={lv: v(admdvs, "pool_ratio", f"inpatient.{insutype}.{cat}.level_{lv}", on) for lv in LEVELS},
        pharmacy_ratio=v(admdvs, "pool_ratio", f"pharmacy.{insutype}.all", on),
        unfiled_reduction=v(admdvs, "pool_ratio", "unfiled_reduction.all", on),
        otp_fund_cap=v(admdvs, "caps", f"outpatient_fund.{insutype}.{cat}", on),
        basic_fund_cap=v(admdvs, "caps", f"basic_fund.{insutype}.all", on),
        large_amount_ratio=v(admdvs, "second_tier", "large_amount.ratio", on),
        large_amount_cap=v(admdvs, "second_tier", "large_amount.annual_cap.all", on),
        cvlserv_otp_ratio=v(admdvs, "second_tier", "civil_servant.outpatient", on),
        cvlserv_ipt_ratio=v(admdvs, "second_tier", "civil_servant.inpatient", on),
        catastrophic_tiers=v(admdvs, "second_tier", "catastrophic.tiers", on),
        assistance_ratio={k: v(admdvs, "second_tier", f"medical_assistance.{k}", on) for k in assistance_keys},
        assistance_cap=v(admdvs, "second_tier", "medical_assistance.annual_cap.all", on),
        pay_auth_threshold=v(admdvs, "credential", "pay_auth_threshold.all", on),
        pay_auth_cert_types=v(admdvs, "credential", "pay_auth_cert_types.all", on),
        chronic={code: ChronicTerms(deductible=v(admdvs, "chronic", f"deductible.{code}.{insutype}", on),
                                    ratio=v(admdvs, "chronic", f"ratio.{code}.{insutype}", on),
                                    annual_cap=v(admdvs, "chronic", f"annual_cap.{code}.{insutype}", on)) for code in diseases},
        employee_arrears_months=v(admdvs, "treatment", "employee_arrears_months.all", on),
    )


@lru_cache(maxsize=4096)
def policy_for(admdvs: str, insutype: str, category: str, on: date) -> Policy:
    """Cached snapshot of the bundled policy (the hot path asks the same few questions all day)."""
    return snapshot(bundled(), admdvs, insutype, category, on)
