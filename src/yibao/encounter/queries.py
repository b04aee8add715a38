"""Queries 5201 (visits), 5203 (a settlement), 5204 (fee lines), 5205 (chronic-disease drug history).

Each answer carries every field of the spec's answer (interface-fields.md, Out5201/Out5203/Out5204/Out5205) with what the
platform knows: what the HIS sent (kept with the visit and its fee lines), the registry and the catalogue. A value nobody
sent is empty text, or 0 for a number; a date nobody sent is null, as the gateway's writer answers it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Date, DateTime, bindparam, or_, select
from sqlalchemy.orm import Session

from yibao.codes.models import CatalogItem
from yibao.core import clock
from yibao.core.errors import NotFound
from yibao.core.money import yuan
from yibao.encounter.models import Diagnosis, FeeLine, Settlement, Visit
from yibao.encounter.service import setlinfo, wire_detail
from yibao.registry import service as registry
from yibao.registry.models import Identity, Institution, Person
from yibao.store import sql

# psn_idet_type of people medical assistance (610) covers: 特困供养, 低保, 低保边缘 (code_tables.yaml)
ASSISTANCE_IDENTITIES = ("2101", "2102", "2103")


def _flags(psn_type: str) -> dict[str, str]:
    """灵活就业 (psn_type 1103/1203) and 新生儿 (1401) flags, from the person category."""
    return {"flxempe_flag": "1" if psn_type in ("1103", "1203") else "0", "nwb_flag": "1" if psn_type == "1401" else "0"}


def _enrolment(session: Session, psn_no: str, insutype: str) -> Any:
    rows = [e for e in registry.enrolments_of(session, psn_no) if e.insutype == insutype]
    return max(rows, key=lambda e: e.psn_insu_date) if rows else None


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
    enrolments = {e.insutype: e for e in sorted(registry.enrolments_of(session, psn_no), key=lambda e: e.psn_insu_date)}
    assisted = session.scalar(select(Identity.id).where(Identity.psn_no == psn_no, Identity.psn_idet_type.in_(ASSISTANCE_IDENTITIES),
                                                        Identity.endtime.is_(None)).limit(1)) is not None
    now = clock.now()
    out = []
    for v in rows:
        e = enrolments.get(v.insutype)
        main = session.scalar(select(Diagnosis).where(Diagnosis.mdtrt_id == v.mdtrt_id).order_by(Diagnosis.diag_srt_no).limit(1))
        inpatient = v.kind == "inpatient"
        out.append({
            "mdtrt_id": v.mdtrt_id, "psn_no": v.psn_no, "psn_cert_type": person.psn_cert_type, "certno": person.certno,
            "psn_name": person.psn_name, "gend": person.gend, "naty": person.naty, "brdy": clock.fmt_date(person.brdy),
            "age": registry.age_in_years(person.brdy, v.begntime.date()), "coner_name": v.coner_name, "tel": v.tel or person.tel,
            "insutype": v.insutype, "psn_type": e.psn_type if e else "", "maf_psn_flag": "1" if assisted else "0",
            "cvlserv_flag": e.cvlserv_flag if e else "0", **_flags(e.psn_type if e else ""), "insu_optins": v.insuplc_admdvs,
            "emp_name": (e.emp_name or "") if e else "", "begntime": clock.fmt_datetime(v.begntime),
            "endtime": clock.fmt_datetime(v.endtime),
            "mdtrt_cert_type": v.mdtrt_cert_type, "med_type": v.med_type,
            # a stay that crosses a new year (跨年度住院) is settled against both years' policy in some regions
            "ars_year_ipt_flag": "1" if inpatient and (v.endtime or now).year != v.begntime.year else "0", "pre_pay_flag": "0",
            "ipt_otp_no": v.ipt_otp_no, "medrcdno": v.medrcdno, "atddr_no": v.atddr_no, "chfpdr_name": v.dr_name,
            "adm_dept_codg": v.dept_code, "adm_dept_name": v.dept_name, "adm_bed": v.adm_bed,
            "dscg_maindiag_code": main.diag_code if main else "", "dscg_maindiag_name": main.diag_name if main else "",
            "dscg_dept_codg": v.dscg_dept_codg, "dscg_dept_name": v.dscg_dept_name, "dscg_bed": v.dscg_bed, "dscg_way": v.dscg_way,
            "main_cond_dscr": v.main_cond_dscr, "dise_codg": v.dise_codg, "dise_name": v.dise_name, "oprn_oprt_code": v.oprn_oprt_code,
            "oprn_oprt_name": v.oprn_oprt_name,
            "otp_diag_info": f"{main.diag_code} {main.diag_name}"[:200] if main and not inpatient else "",
            "inhosp_stas": "1" if v.status == "admitted" else "0", "die_date": clock.fmt_date(v.die_date),
            "ipt_days": Decimal(((v.endtime or now) - v.begntime).days) if inpatient else Decimal(0),
            "fpsc_no": v.fpsc_no, "matn_type": v.matn_type, "birctrl_type": v.birctrl_type, "latechb_flag": v.latechb_flag,
            "geso_val": v.geso_val, "fetts": v.fetts, "fetus_cnt": v.fetus_cnt, "pret_flag": v.pret_flag,
            "birctrl_matn_date": clock.fmt_date(v.birctrl_matn_date), "cop_flag": v.cop_flag, "opter_id": v.opter,
            "opter_name": v.opter_name,
            "opt_time": clock.fmt_datetime(v.opt_time or v.begntime), "memo": "",
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
    enrolment = _enrolment(session, row.psn_no, row.insutype)
    hosp_lv = str(institution.medins_lv or "")
    info = setlinfo(row, person)
    info.update({
        "psn_pay": yuan(row.psn_part_amt), "cash_payamt": yuan(row.psn_cash_pay), "refd_setl_flag": row.refd_setl_flag,
        "year": str(row.year), "fixmedins_code": row.fixmedins_code, "fixmedins_name": institution.fixmedins_name,
        # the institution's level set the price caps and the deductible of this settlement; its region is where it belongs
        "hosp_lv": hosp_lv, "lmtpric_hosp_lv": hosp_lv, "dedc_hosp_lv": hosp_lv, "fixmedins_poolarea": institution.admdvs,
        **_flags(row.psn_type), "emp_name": (enrolment.emp_name or "") if enrolment else "",
        # 支付地点类别: the dictionary's values were not found in the sources; left empty rather than guessed
        "pay_loc": "",
        "begndate": clock.fmt_date(visit.begntime.date()), "enddate": clock.fmt_date((visit.endtime or row.setl_time).date()),
        # a chronic-disease settlement names the registered disease it paid for (门诊慢特病病种目录代码)
        "dise_codg": row.opsp_dise_code or visit.dise_codg, "dise_name": visit.dise_name,
        "invono": row.invono, "opter_id": row.opter, "opter_name": row.opter_name, "opt_time": clock.fmt_datetime(row.setl_time),
        "insu_optins": visit.insuplc_admdvs,
    })
    sign = -1 if row.refd_setl_flag == "1" else 1
    return {"setlinfo": info, "setldetail": wire_detail(json.loads(row.setldetail), sign)}


class CatalogNames(msgspec.Struct, gc=False):
    """What 5204/5205 answer of a line's catalogue row: its name, spec and dosage form."""

    med_list_name: str
    spec: str
    dosform: str


_ITEM = sql.table_of(CatalogItem)
# the catalogue row of a code in force on a day: the latest version begun by then (the unique (code, begndate) index)
CATALOG_NAMES = sql.Query(CatalogNames, sql.select_of(CatalogNames, _ITEM)
                          .where(_ITEM.c.med_list_codg == bindparam("med_list_codg"), _ITEM.c.begndate <= bindparam("on", type_=Date()))
                          .order_by(_ITEM.c.begndate.desc()).limit(1))


def _catalogue(session: Session, lines: Sequence[FeeLine]) -> dict[str, CatalogNames]:
    """The catalogue rows the lines were classified by (their code, in force on the line's day), for name, spec and form."""
    found: dict[str, CatalogNames] = {}
    for line in lines:
        if line.med_list_codg in found:
            continue
        item = sql.first(session, CATALOG_NAMES, med_list_codg=line.med_list_codg, on=line.fee_ocur_time.date())
        if item is not None:
            found[line.med_list_codg] = item
    return found


def _line_fields(line: FeeLine | DrugLineRow, item: CatalogNames | None, med_type: str) -> dict[str, Any]:
    """What 5204 and 5205 both answer about one fee line."""
    return {
        "feedetl_sn": line.feedetl_sn, "rx_drord_no": line.rxno or line.drord_no, "med_type": med_type,
        "fee_ocur_time": clock.fmt_datetime(line.fee_ocur_time), "cnt": Decimal(str(line.cnt)), "pric": Decimal(str(line.pric)),
        "chrgitm_lv": line.chrgitm_lv, "hilist_code": line.med_list_codg, "hilist_name": line.med_list_name, "list_type": line.list_type,
        "med_list_codg": line.med_list_codg, "medins_list_codg": line.medins_list_codg,
        # the institution's own name of the item is not sent by 2204: the catalogue's name stands in for it
        "medins_list_name": line.med_list_name, "med_chrgitm_type": line.med_chrgitm_type,
        "prodname": item.med_list_name if item else "", "spec": item.spec if item else "", "dosform_name": item.dosform if item else "",
        "lmt_used_flag": line.lmt_used_flag, "hosp_prep_flag": "1" if line.list_type == "103" else "0",
        "hosp_appr_flag": line.hosp_appr_flag,
        "tcmdrug_used_way": line.tcmdrug_used_way, "prodplac_type": "", "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
        "chld_medc_flag": "0", "etip_flag": line.etip_flag, "etip_hosp_code": line.etip_hosp_code,
        "dscg_tkdrug_flag": line.dscg_tkdrug_flag,
        "list_sp_item_flag": "0", "matn_fee_flag": line.matn_fee_flag,
    }


def fee_lines(session: Session, fixmedins_code: str, psn_no: str, mdtrt_id: str, setl_id: str) -> list[dict[str, Any]]:
    visit = session.get(Visit, mdtrt_id)
    if visit is None or visit.fixmedins_code != fixmedins_code or visit.psn_no != psn_no:
        raise NotFound(f"no visit {mdtrt_id} of this person at this institution", field="input.data.mdtrt_id")
    stmt = select(FeeLine).where(FeeLine.mdtrt_id == mdtrt_id, FeeLine.status != "cancelled")
    if setl_id:
        stmt = stmt.where(FeeLine.setl_id == setl_id)
    lines = list(session.scalars(stmt.order_by(FeeLine.id)))
    items = _catalogue(session, lines)
    return [line_detail(line, visit, items.get(line.med_list_codg)) for line in lines]


def line_detail(line: FeeLine, visit: Visit, item: CatalogNames | None = None) -> dict[str, Any]:
    return {
        "mdtrt_id": line.mdtrt_id, "setl_id": line.setl_id or "", **_line_fields(line, item, visit.med_type),
        "sin_dos_dscr": line.sin_dos_dscr, "used_frqu_dscr": line.used_frqu_dscr, "prd_days": Decimal(str(line.prd_days or 0)),
        "medc_way_dscr": line.medc_way_dscr, "det_item_fee_sumamt": yuan(line.det_item_fee_sumamt_fen),
        "pric_uplmt_amt": yuan(line.pric_uplmt_fen) if line.pric_uplmt_fen is not None else None,
        "selfpay_prop": Decimal(str(line.selfpay_prop)).quantize(Decimal("0.0001")), "fulamt_ownpay_amt": yuan(line.fulamt_ownpay_fen),
        "overlmt_amt": yuan(line.overlmt_fen), "preselfpay_amt": yuan(line.preselfpay_fen), "inscp_scp_amt": yuan(line.inscp_scp_fen),
        "bilg_dept_codg": line.bilg_dept_codg, "bilg_dept_name": line.bilg_dept_name, "bilg_dr_codg": line.bilg_dr_codg,
        "bilg_dr_name": line.bilg_dr_name, "acord_dept_codg": line.acord_dept_codg, "acord_dept_name": line.acord_dept_name,
        "orders_dr_code": line.orders_dr_code, "orders_dr_name": line.orders_dr_name, "drt_reim_flag": "0", "memo": line.memo,
        "opter_id": line.opter, "opter_name": line.opter_name, "opt_time": clock.fmt_datetime(line.opt_time or line.fee_ocur_time),
    }


class DrugLineRow(msgspec.Struct, gc=False):
    """A drug line of 5205: the fee line's fields it answers, the settlement that paid it, the institution, the visit."""

    id: int
    mdtrt_id: str
    feedetl_sn: str
    rxno: str
    drord_no: str
    med_list_codg: str
    medins_list_codg: str
    med_list_name: str
    list_type: str
    fee_ocur_time: datetime
    cnt: Decimal
    pric: Decimal
    det_item_fee_sumamt_fen: int
    chrgitm_lv: str
    med_chrgitm_type: str
    lmt_used_flag: str
    hosp_appr_flag: str
    tcmdrug_used_way: str
    etip_flag: str
    etip_hosp_code: str
    dscg_tkdrug_flag: str
    matn_fee_flag: str
    setl_id: str
    med_type: str
    fixmedins_code: str
    opsp_dise_code: str
    fixmedins_name: str
    visit_dise_codg: str
    visit_dise_name: str
    # the catalogue row in force on the line's day (None: none is)
    item_name: str | None
    item_spec: str | None
    item_dosform: str | None


_LINE, _SETTLEMENT, _VISIT = sql.table_of(FeeLine), sql.table_of(Settlement), sql.table_of(Visit)
_INSTITUTION = sql.table_of(Institution)
# each field from the first of the tables that has it (setl_id: the line's, equal to its settlement's)
_DRUG_COLUMNS = [next(t.c[f] for t in (_LINE, _SETTLEMENT, _INSTITUTION) if f in t.c)
                 for f in DrugLineRow.__struct_fields__ if not f.startswith(("visit_", "item_"))]


def _in_force(column: Any, label: str) -> Any:
    """A column of the line's catalogue row in force on its day (the latest version begun by then; the unique (code,
    begndate) index): read in the same statement, so 5205 is one round trip to PostgreSQL, not one per drug."""
    return (select(column).where(_ITEM.c.med_list_codg == _LINE.c.med_list_codg, _ITEM.c.begndate <= _LINE.c.fee_ocur_time)
            .order_by(_ITEM.c.begndate.desc()).limit(1).correlate(_LINE).scalar_subquery().label(label))


# 5205's one statement: the person's standing med_type 14 settlements (ix_settlement_psn_no_year), their drug lines
# (ix_fee_line_setl_id) in the period, each with its institution and visit (primary keys) and its catalogue row. Drugs: list_type 101 西药,
# 102 中成药, 103 医疗机构制剂. A settlement's year is its day of care, which may lie before the lines' (a visit left
# open), so the period bounds the lines, not the settlements.
DRUG_HISTORY = sql.Query(DrugLineRow, select(
    *_DRUG_COLUMNS,
    _VISIT.c.dise_codg.label("visit_dise_codg"), _VISIT.c.dise_name.label("visit_dise_name"),
    _in_force(_ITEM.c.med_list_name, "item_name"), _in_force(_ITEM.c.spec, "item_spec"), _in_force(_ITEM.c.dosform, "item_dosform"))
    .select_from(_SETTLEMENT.join(_LINE, _LINE.c.setl_id == _SETTLEMENT.c.setl_id)
                 .join(_VISIT, _VISIT.c.mdtrt_id == _LINE.c.mdtrt_id)
                 .join(_INSTITUTION, _INSTITUTION.c.fixmedins_code == _SETTLEMENT.c.fixmedins_code))
    .where(_SETTLEMENT.c.psn_no == bindparam("psn_no"), _SETTLEMENT.c.med_type == "14", _SETTLEMENT.c.refd_setl_flag == "0",
           _SETTLEMENT.c.revs_setl_id.is_(None), _LINE.c.status == "settled", or_(*(_LINE.c.list_type == t for t in ("101", "102", "103"))),
           _LINE.c.fee_ocur_time >= bindparam("begin", type_=DateTime()), _LINE.c.fee_ocur_time <= bindparam("end", type_=DateTime()))
    .order_by(_LINE.c.fee_ocur_time, _LINE.c.id))
# no endtime: up to any time (a line is never dated more than the signature window ahead)
_NO_END = datetime(9999, 12, 31, 23, 59, 59)


def chronic_drug_history(session: Session, psn_no: str, begin: datetime, end: datetime | None) -> list[dict[str, Any]]:
    """Drugs settled for chronic/special-disease care (med_type 14) at any institution: what a doctor checks before prescribing.

    A line counts when a standing med_type 14 settlement paid it (a visit may be settled in parts under different
    med_types); the disease is the registered one that settlement paid for."""
    rows = sql.rows(session, DRUG_HISTORY, psn_no=psn_no, begin=begin, end=end or _NO_END)
    if not rows:
        registry.person(session, psn_no, "input.data")  # none: an insured person without any, or no such person
    return [{**_line_fields(row, CatalogNames(row.item_name, row.item_spec or "", row.item_dosform or "") if row.item_name is not None
                            else None, row.med_type), "fixmedins_code": row.fixmedins_code,
             "fixmedins_name": row.fixmedins_name, "psn_no": psn_no, "mdtrt_id": row.mdtrt_id, "setl_id": row.setl_id,
             "opsp_dise_code": row.opsp_dise_code or row.visit_dise_codg, "opsp_dise_name": row.visit_dise_name,
             "drug_name": row.med_list_name, "det_item_fee_sumamt": yuan(row.det_item_fee_sumamt_fen)}
            for row in rows]


def drug_history_plan(session: Session, psn_no: str, begin: datetime, end: datetime | None) -> list[str]:
    """The engine's plan of 5205's statement for these parameters (EXPLAIN), for benchmarks and tests."""
    return sql.explain(session, DRUG_HISTORY, psn_no=psn_no, begin=begin, end=end or _NO_END)
