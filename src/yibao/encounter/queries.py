"""Queries 5201 (visits), 5203 (a settlement), 5204 (fee lines), 5205 (chronic-disease drug history)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import NotFound
from yibao.core.money import yuan
from yibao.encounter.models import Diagnosis, FeeLine, Settlement, Visit
from yibao.encounter.service import setlinfo, wire_detail
from yibao.registry import service as registry
from yibao.registry.models import Enrolment, Institution, Person


def visits(session: Session, fixmedins_code: str, psn_no: str, begin: datetime | None, end: datetime | None, med_type: str,
           mdtrt_id: str) -> list[dict[str, Any]]:
    person = registry.person(session, psn_no, "input.data")
    stmt = select(Visit).where(Visit.psn_no == psn_no, Visit.fixmedins_code == fixmedins_code)
    if begin:
        stmt = stmt.where(Visit.begntime >= begin)
    if end:
        stmt = stmt.where(Visit.begntime <= end)
    if med_type:
        stmt = stmt.where(Visit.med_type == med_type)
    if mdtrt_id:
        stmt = stmt.where(Visit.mdtrt_id == mdtrt_id)
    rows = session.scalars(stmt.order_by(Visit.begntime)).all()
    enrolments = {e.insutype: e for e in session.scalars(select(Enrolment).where(Enrolment.psn_no == psn_no))}
    out = []
    for v in rows:
        e = enrolments.get(v.insutype)
        main = session.scalar(select(Diagnosis).where(Diagnosis.mdtrt_id == v.mdtrt_id).order_by(Diagnosis.diag_srt_no).limit(1))
        out.append({
            "mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "psn_cert_type": person.psn_cert_type, "certno": person.certno,
            "psn_name": person.psn_name, "gend": person.gend, "naty": person.naty, "brdy": clock.fmt_date(person.brdy),
            "age": registry.age_in_years(person.brdy, v.begntime.date()), "tel": person.tel, "insutype": v.insutype,
            "psn_type": e.psn_type if e else "", "cvlserv_flag": e.cvlserv_flag if e else "0", "insu_optins": v.insuplc_admdvs,
            "begntime": clock.fmt_datetime(v.begntime), "endtime": clock.fmt_datetime(v.endtime), "mdtrt_cert_type": v.mdtrt_cert_type,
            "med_type": v.med_type, "ipt_otp_no": v.ipt_otp_no, "atddr_no": v.atddr_no, "chfpdr_name": v.dr_name,
            "adm_dept_codg": v.dept_code, "adm_dept_name": v.dept_name, "adm_bed": v.adm_bed,
            "dscg_maindiag_code": main.diag_code if main else "", "dscg_maindiag_name": main.diag_name if main else "",
            "dscg_way": v.dscg_way, "main_cond_dscr": v.main_cond_dscr, "dise_codg": v.dise_codg, "dise_name": v.dise_name,
            "inhosp_stas": "1" if v.status == "admitted" else "0",
            "ipt_days": Decimal(((v.endtime or clock.now()) - v.begntime).days) if v.kind == "inpatient" else None,
            "vali_flag": "0" if v.status == "cancelled" else "1",
        })
    return out


def settlement(session: Session, fixmedins_code: str, psn_no: str, setl_id: str, mdtrt_id: str) -> dict[str, Any]:
    row = session.get(Settlement, setl_id)
    if row is None or row.fixmedins_code != fixmedins_code or row.psn_no != psn_no or (mdtrt_id and row.mdtrt_id != mdtrt_id):
        raise NotFound(f"no settlement {setl_id} of this person at this institution", field="input.data.setl_id")
    person = session.get(Person, row.psn_no)
    institution = session.get(Institution, row.fixmedins_code)
    visit = session.get(Visit, row.mdtrt_id)
    assert person is not None and institution is not None and visit is not None
    info = setlinfo(row, person)
    info.update({
        "psn_pay": yuan(row.psn_part_amt), "cash_payamt": yuan(row.psn_cash_pay), "refd_setl_flag": row.refd_setl_flag,
        "year": str(row.year), "fixmedins_code": row.fixmedins_code, "fixmedins_name": institution.fixmedins_name,
        "hosp_lv": str(institution.medins_lv or ""), "begndate": clock.fmt_date(visit.begntime.date()),
        "enddate": clock.fmt_date((visit.endtime or row.setl_time).date()), "dise_codg": visit.dise_codg, "dise_name": visit.dise_name,
        "invono": row.invono, "opter_id": row.opter, "opter_name": row.opter_name, "opt_time": clock.fmt_datetime(row.setl_time),
        "insu_optins": visit.insuplc_admdvs,
    })
    sign = -1 if row.refd_setl_flag == "1" else 1
    return {"setlinfo": info, "setldetail": wire_detail(json.loads(row.setldetail), sign)}


def fee_lines(session: Session, fixmedins_code: str, psn_no: str, mdtrt_id: str, setl_id: str) -> list[dict[str, Any]]:
    visit = session.get(Visit, mdtrt_id)
    if visit is None or visit.fixmedins_code != fixmedins_code or visit.psn_no != psn_no:
        raise NotFound(f"no visit {mdtrt_id} of this person at this institution", field="input.data.mdtrt_id")
    stmt = select(FeeLine).where(FeeLine.mdtrt_id == mdtrt_id, FeeLine.status != "cancelled")
    if setl_id:
        stmt = stmt.where(FeeLine.setl_id == setl_id)
    return [line_detail(line, visit) for line in session.scalars(stmt.order_by(FeeLine.id))]


def line_detail(line: FeeLine, visit: Visit) -> dict[str, Any]:
    return {
        "mdtrt_id": line.mdtrt_id, "setl_id": line.setl_id or "", "feedetl_sn": line.feedetl_sn, "rx_drord_no": line.rxno,
        "med_type": visit.med_type, "fee_ocur_time": clock.fmt_datetime(line.fee_ocur_time), "cnt": Decimal(str(line.cnt)),
        "pric": Decimal(str(line.pric)), "det_item_fee_sumamt": yuan(line.det_item_fee_sumamt_fen),
        "pric_uplmt_amt": yuan(line.pric_uplmt_fen) if line.pric_uplmt_fen is not None else None,
        "selfpay_prop": Decimal(str(line.selfpay_prop)).quantize(Decimal("0.0001")), "fulamt_ownpay_amt": yuan(line.fulamt_ownpay_fen),
        "overlmt_amt": yuan(line.overlmt_fen), "preselfpay_amt": yuan(line.preselfpay_fen), "inscp_scp_amt": yuan(line.inscp_scp_fen),
        "chrgitm_lv": line.chrgitm_lv, "hilist_code": line.med_list_codg, "hilist_name": line.med_list_name, "list_type": line.list_type,
        "med_list_codg": line.med_list_codg, "medins_list_codg": line.medins_list_codg, "med_chrgitm_type": line.med_chrgitm_type,
        "bilg_dept_codg": line.bilg_dept_codg, "bilg_dept_name": line.bilg_dept_name, "bilg_dr_codg": line.bilg_dr_codg,
        "bilg_dr_name": line.bilg_dr_name, "lmt_used_flag": line.lmt_used_flag, "memo": line.memo,
    }


def chronic_drug_history(session: Session, psn_no: str, begin: datetime, end: datetime | None) -> list[dict[str, Any]]:
    """Drugs settled for chronic/special-disease care (med_type 14) at any institution: what a doctor checks before prescribing."""
    registry.person(session, psn_no, "input.data")
    stmt = (select(FeeLine, Visit).join(Visit, Visit.mdtrt_id == FeeLine.mdtrt_id)
            .where(Visit.psn_no == psn_no, Visit.med_type == "14", FeeLine.status == "settled", FeeLine.list_type.in_(("101", "102")),
                   FeeLine.fee_ocur_time >= begin))
    if end:
        stmt = stmt.where(FeeLine.fee_ocur_time <= end)
    return [{"mdtrt_id": line.mdtrt_id, "fixmedins_code": visit.fixmedins_code, "opsp_dise_code": visit.dise_codg,
             "opsp_dise_name": visit.dise_name, "med_list_codg": line.med_list_codg, "drug_name": line.med_list_name,
             "fee_ocur_time": clock.fmt_datetime(line.fee_ocur_time), "cnt": Decimal(str(line.cnt)), "pric": Decimal(str(line.pric)),
             "det_item_fee_sumamt": yuan(line.det_item_fee_sumamt_fen)}
            for line, visit in session.execute(stmt.order_by(FeeLine.fee_ocur_time)).tuples()]
