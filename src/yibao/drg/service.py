"""Settlement lists (4101) in, grouped at upload; the month's cases of a hospital out, paid by group against by item.

An upload names a settled inpatient stay (its final settlement, not reversed, of the uploading hospital) and carries
the stay's diagnoses and procedures; the grouper (pure) answers the DRG group and the DIP packet, which are stored with
the list. Uploading the list of the same settlement again replaces it (the hospital corrected a code).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import InputError, NotFound
from yibao.drg import grouper, payment
from yibao.drg.models import DrgCase
from yibao.encounter.models import Settlement
from yibao.policy.service import policy_for
from yibao.registry.models import Institution


@dataclass(frozen=True)
class SettlementList:
    """4101 as the service needs it (parsed by the transaction)."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    case: grouper.Case
    diseinfo: list[dict[str, str]]
    oprninfo: list[dict[str, str]]


def _serial(admdvs: str) -> str:
    return f"{admdvs}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}"


def upload(session: Session, listing: SettlementList, *, fixmedins_code: str, opter: str, where: str = "input.setlinfo",
           tables: grouper.Tables | None = None) -> DrgCase:
    """4101: store the list of a settled stay with its DRG group and DIP packet (replacing an earlier upload of it)."""
    setl = session.scalar(select(Settlement).where(Settlement.setl_id == listing.setl_id.strip()))
    if setl is None or setl.fixmedins_code != fixmedins_code:
        raise NotFound(f"no settlement {listing.setl_id[:30]} of this institution", field=f"{where}.setl_id")
    if setl.kind != "inpatient":
        raise InputError(f"settlement {setl.setl_id} is not of an inpatient stay: a settlement list (4101) is uploaded for stays",
                         field=f"{where}.setl_id")
    if setl.refd_setl_flag == "1" or setl.revs_setl_id:
        raise InputError(f"settlement {setl.setl_id} is reversed or a reversal", field=f"{where}.setl_id")
    if setl.mid_setl_flag == "1":
        raise InputError(f"settlement {setl.setl_id} is a mid-stay settlement: upload the list with the stay's final settlement",
                         field=f"{where}.setl_id")
    if listing.mdtrt_id.strip() and listing.mdtrt_id.strip() != setl.mdtrt_id:
        raise InputError(f"settlement {setl.setl_id} belongs to visit {setl.mdtrt_id}", field=f"{where}.mdtrt_id")
    if listing.psn_no.strip() and listing.psn_no.strip() != setl.psn_no:
        raise InputError(f"settlement {setl.setl_id} belongs to another person", field=f"{where}.psn_no")
    t = tables or grouper.demo_tables()
    drg = grouper.group(listing.case, t)
    dip = grouper.packet(listing.case, t)
    institution = session.get(Institution, fixmedins_code)
    main = next((d.code for d in listing.case.diagnoses if d.main), "")
    values = {
        "mdtrt_id": setl.mdtrt_id, "psn_no": setl.psn_no, "fixmedins_code": setl.fixmedins_code, "insutype": setl.insutype,
        "insuplc_admdvs": setl.clr_optins, "hosp_lv": (institution.medins_lv if institution else None) or 0, "setl_time": setl.setl_time,
        "medfee_sumamt": setl.medfee_sumamt, "fund_pay_sumamt": setl.fund_pay_sumamt, "psn_part_amt": setl.psn_part_amt,
        "main_diag_code": main[:30], "diseinfo": json.dumps(listing.diseinfo, ensure_ascii=False),
        "oprninfo": json.dumps(listing.oprninfo, ensure_ascii=False), "age": listing.case.age, "gend": listing.case.gend[:6],
        "act_ipt_days": listing.case.los, "dscg_way": listing.case.dscg_way[:6], "nwb_bir_wt": listing.case.nwb_bir_wt,
        "tables_version": f"{t.version} / {t.dip_version}"[:100], "drg_code": drg.code, "drg_name": drg.name[:200],
        "drg_weight": drg.weight, "mdc": drg.mdc, "adrg": drg.adrg, "drg_reason": drg.reason[:500],
        "drg_trace": json.dumps(drg.trace, ensure_ascii=False), "dip_code": dip.code, "dip_name": dip.name[:200], "dip_score": dip.score,
        "dip_kind": dip.kind, "dip_reason": dip.reason[:500], "dip_trace": json.dumps(dip.trace, ensure_ascii=False),
        "opter": opter[:30], "uploaded_at": clock.now(),
    }
    row = session.scalar(select(DrgCase).where(DrgCase.setl_id == setl.setl_id).with_for_update())
    if row is None:
        row = DrgCase(setl_list_id=_serial(setl.clr_optins), setl_id=setl.setl_id, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    return row


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-11' → [2026-11-01 00:00, 2026-12-01 00:00)."""
    try:
        first = date.fromisoformat(f"{month.strip()}-01")
    except ValueError:
        raise InputError(f"'{month[:20]}' is not a month (yyyy-mm)", field="month") from None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return datetime(first.year, first.month, 1), datetime(following.year, following.month, 1)


@dataclass(frozen=True)
class MonthCase:
    """A month's case as the report reads it: the stored grouping and the payment under the policy in force."""

    fixmedins_code: str
    fixmedins_name: str
    hosp_lv: int
    method: str
    drg_code: str
    dip_code: str
    trace: tuple[str, ...]
    reason: str
    paid: payment.Paid


def month_cases(session: Session, month: str, hospital: str | None = None, method: str | None = None) -> list[MonthCase]:
    """The cases whose settlement fell in the month (not reversed since), each paid by the method of its insured region's
    policy on the day of settlement (or ``method``: drg or dip)."""
    start, end = month_bounds(month)
    stmt = (select(DrgCase, Institution.fixmedins_name)
            .join(Settlement, Settlement.setl_id == DrgCase.setl_id)
            .join(Institution, Institution.fixmedins_code == DrgCase.fixmedins_code)
            .where(DrgCase.setl_time >= start, DrgCase.setl_time < end, Settlement.revs_setl_id.is_(None))
            .order_by(DrgCase.fixmedins_code, DrgCase.setl_time, DrgCase.setl_id))
    if hospital:
        stmt = stmt.where(DrgCase.fixmedins_code == hospital)
    out = []
    for row, name in session.execute(stmt):
        category = "in_service" if row.insutype == "310" else "all"
        terms = policy_for(row.insuplc_admdvs, row.insutype, category, row.setl_time.date()).drg
        used = method or terms.method
        if used != terms.method:
            terms = type(terms)(used, terms.rate, terms.point_value, terms.level_coefficient, terms.high, terms.low)
        if used == "drg":
            facts = payment.CaseFacts(row.setl_id, row.drg_code, row.drg_name, Decimal(str(row.drg_weight)), not row.drg_reason,
                                      row.hosp_lv, row.medfee_sumamt, row.psn_part_amt, row.fund_pay_sumamt)
            trace, reason = tuple(json.loads(row.drg_trace)), row.drg_reason
        else:
            facts = payment.CaseFacts(row.setl_id, row.dip_code, row.dip_name, Decimal(str(row.dip_score)), not row.dip_reason,
                                      row.hosp_lv, row.medfee_sumamt, row.psn_part_amt, row.fund_pay_sumamt)
            trace, reason = tuple(json.loads(row.dip_trace)), row.dip_reason
        out.append(MonthCase(row.fixmedins_code, name, row.hosp_lv, used, row.drg_code, row.dip_code, trace, reason,
                             payment.pay(facts, terms)))
    return out


def wire(row: DrgCase) -> dict[str, object]:
    """4101's answer: the spec's setl_list_id, then the grouping (yibao's additions, named in the spec's style)."""
    return {"setl_list_id": row.setl_list_id, "setl_id": row.setl_id, "drg_code": row.drg_code, "drg_name": row.drg_name,
            "drg_weight": Decimal(str(row.drg_weight)), "mdc": row.mdc, "adrg": row.adrg, "drg_reason": row.drg_reason,
            "drg_trace": json.loads(row.drg_trace), "dip_code": row.dip_code, "dip_name": row.dip_name,
            "dip_score": Decimal(str(row.dip_score)), "dip_reason": row.dip_reason}

