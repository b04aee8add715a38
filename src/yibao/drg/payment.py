"""What the fund pays a hospital for one grouped inpatient case, against what it paid by item. Pure: policy terms in.

    case payment (standard) = weight × rate × level coefficient           (DRG; DIP: score × point value × coefficient)
    fund pays the hospital  = case payment − the patient's share by item   (the settlement's psn_part_amt), not below 0
    difference              = fund pays the hospital − the item-based fund payment (fund_pay_sumamt): + over, − under

A case is paid by item instead (fund pays the hospital = fund_pay_sumamt, difference 0) when the grouper could not
group it (0000, QY, no DIP packet), when its item total is above ``high`` × its case payment (高倍率) or below ``low`` ×
it (低倍率). All amounts in fen; the products are rounded half up to the fen once, at the case payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from yibao.core.money import round_fen
from yibao.policy.service import DrgTerms

BY_GROUP = "group"
HIGH = "high"  # 高倍率
LOW = "low"  # 低倍率
UNGROUPED = "ungrouped"


@dataclass(frozen=True)
class CaseFacts:
    setl_id: str
    code: str  # the DRG group or DIP packet the region's method pays by ("" or 0000/QY: not grouped)
    name: str
    weight: Decimal  # relative weight (DRG) or score (DIP)
    grouped: bool
    hosp_lv: int
    medfee_sumamt: int
    psn_part_amt: int
    fund_pay_sumamt: int


@dataclass(frozen=True)
class Paid:
    setl_id: str
    code: str
    name: str
    standard: int  # the case payment (0 when not grouped)
    fund_to_hospital: int
    item_fund: int  # what the fund paid by item
    difference: int  # fund_to_hospital − item_fund
    paid_by: str  # group | high | low | ungrouped


def standard(weight: Decimal, hosp_lv: int, terms: DrgTerms) -> int:
    """The case payment in fen: weight × rate (DRG) or score × point value (DIP), × the level's coefficient."""
    per_unit = terms.rate if terms.method == "drg" else terms.point_value
    coefficient = terms.level_coefficient.get(hosp_lv, Decimal(1))
    return round_fen(weight * per_unit * coefficient)


def pay(case: CaseFacts, terms: DrgTerms) -> Paid:
    if not case.grouped:
        return Paid(case.setl_id, case.code, case.name, 0, case.fund_pay_sumamt, case.fund_pay_sumamt, 0, UNGROUPED)
    amount = standard(case.weight, case.hosp_lv, terms)
    if case.medfee_sumamt > terms.high * amount:
        kind = HIGH
    elif case.medfee_sumamt < terms.low * amount:
        kind = LOW
    else:
        to_hospital = max(0, amount - case.psn_part_amt)
        return Paid(case.setl_id, case.code, case.name, amount, to_hospital, case.fund_pay_sumamt, to_hospital - case.fund_pay_sumamt,
                    BY_GROUP)
    return Paid(case.setl_id, case.code, case.name, amount, case.fund_pay_sumamt, case.fund_pay_sumamt, 0, kind)
