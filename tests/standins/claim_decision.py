"""An insurer's claim decision, standing in for its own system: it reads the FHIR Bundle yibao answers with the
``fhir.resources`` models (as any FHIR tooling would: nothing of yibao but the code-system names) and decides.

The rules are those of a simple supplementary medical policy (补充医疗保险): the claim pays what the person paid
themselves (cash and personal account) on settlements that still stand, above a deductible, at a ratio, up to a cap;
a cancelled (reversed) settlement pays nothing; an excluded diagnosis (here: ICD-10 chapter O, pregnancy, or Z, no
illness) denies the line of care it is on; nothing standing → deny.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from fhir.resources.R4B.bundle import Bundle

FUND = "urn:yibao:cs:fund"
ICD10 = "urn:yibao:cs:icd10-nhsa"
OWN_SHARE = ("psn_cash_pay", "acct_pay", "acct_mulaid_pay")


@dataclass
class Decision:
    outcome: str  # pay | deny
    amount_fen: int
    claims: int
    reasons: list[str] = field(default_factory=list)


def _fen(value: object) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def decide(bundle_json: bytes, *, deductible_fen: int = 0, ratio: Decimal = Decimal("0.8"), cap_fen: int = 2_000_000,
           excluded_chapters: tuple[str, ...] = ("O", "Z")) -> Decision:
    bundle = Bundle.model_validate_json(bundle_json)
    own, claims, reasons = 0, 0, []
    for entry in bundle.entry or []:
        eob = entry.resource
        if eob.__resource_type__ != "ExplanationOfBenefit":
            continue
        claims += 1
        if eob.status != "active":
            reasons.append(f"{eob.id}: settlement reversed")
            continue
        codes = [c.code for d in eob.diagnosis or [] for c in d.diagnosisCodeableConcept.coding or [] if c.system == ICD10]
        if any(code[:1] in excluded_chapters for code in codes):
            reasons.append(f"{eob.id}: diagnosis excluded ({', '.join(codes)})")
            continue
        for total in eob.total or []:
            if any(c.system == FUND and c.code in OWN_SHARE for c in total.category.coding or []):
                own += _fen(total.amount.value)
    payable = min(cap_fen, int((Decimal(max(0, own - deductible_fen)) * ratio).to_integral_value()))
    if payable <= 0:
        return Decision("deny", 0, claims, reasons or ["nothing payable above the deductible"])
    return Decision("pay", payable, claims, reasons)
