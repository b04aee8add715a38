"""Visits and settlements: the services behind 2201–2208, 2301–2305, 2401–2405 and 2101–2103.

Handlers parse and shape; these functions check the business rules, read what the pure
engine needs (catalogue rules, policy, year-to-date totals, balances), call it, and post
the result (settlement row, year-to-date row, accounts, ledger) in the caller's transaction.
Visits, fee lines and settlements are read and written with hot-path statements (`yibao.store.sql`) as
typed rows (`encounter/rows.py`): one `load_visit`, and `save_visit` after the rarer transactions that
change a visit (cancel, discharge, 2403); the rarely used lists (diagnoses, cancelled fee lines) stay ORM.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

import msgspec
from sqlalchemy import Date, and_, bindparam, func, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.chronic import service as chronic
from yibao.chronic.rows import RegistrationRow
from yibao.codes.models import CatalogItem
from yibao.core import clock
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.core.money import to_fen, yuan
from yibao.credential.service import use_token
from yibao.encounter import reviewing
from yibao.encounter.models import Diagnosis, FeeLine, Settlement, Visit
from yibao.encounter.rows import CatalogItemRow, FeeLineRow, SettlementRow, VisitRow
from yibao.filing import service as filing
from yibao.ledger import service as ledger
from yibao.policy.parameters import PolicyError
from yibao.policy.service import category_of, policy_for
from yibao.prescription import service as prescription
from yibao.registry import service as registry
from yibao.registry.models import Institution
from yibao.registry.rows import EnrolmentRow, InstitutionRow, PersonRow
from yibao.settlement import engine
from yibao.store import sql

CLR_TYPE = {"outpatient": "11", "inpatient": "21", "pharmacy": "41"}

_VISIT, _LINE, _SETTLEMENT = sql.table_of(Visit), sql.table_of(FeeLine), sql.table_of(Settlement)
_INSTITUTION, _ITEM = Institution.__table__, CatalogItem.__table__
INSTITUTION = sql.Query(InstitutionRow, sql.select_of(InstitutionRow, _INSTITUTION)
                        .where(_INSTITUTION.c.fixmedins_code == bindparam("fixmedins_code")))
VISIT = sql.Query(VisitRow, sql.select_of(VisitRow, _VISIT).where(_VISIT.c.mdtrt_id == bindparam("mdtrt_id")))
VISIT_LOCKED = sql.Query(VisitRow, sql.select_of(VisitRow, _VISIT).where(_VISIT.c.mdtrt_id == bindparam("mdtrt_id")).with_for_update())
ADMITTED = sql.Query(str, select(_VISIT.c.mdtrt_id).where(_VISIT.c.psn_no == bindparam("psn_no"), _VISIT.c.kind == "inpatient",
                                                          _VISIT.c.status == "admitted"))
SAME_NUMBER = sql.Query(str, select(_VISIT.c.mdtrt_id).where(_VISIT.c.fixmedins_code == bindparam("fixmedins_code"),
                                                             _VISIT.c.ipt_otp_no == bindparam("ipt_otp_no"),
                                                             _VISIT.c.kind == bindparam("kind"),
                                                             _VISIT.c.status != "cancelled"))
INSERT_VISIT = sql.Statement(sql.insert_into(_VISIT))
VISIT_DEFAULTS = {column.name: getattr(column.default, "arg", None) for column in _VISIT.columns}
# what settling and reversing change of a visit
UPDATE_VISIT = sql.Statement(update(_VISIT).where(_VISIT.c.mdtrt_id == bindparam("mdtrt_id"))
                             .values(status=bindparam("status"), dedc_paid_fen=bindparam("dedc_paid_fen"),
                                     admission_no=bindparam("admission_no")))
# a visit written back whole, after the rarer transactions that change any of it (2203, 2402–2405, cancelling)
SAVE_VISIT = sql.Statement(update(_VISIT).where(_VISIT.c.mdtrt_id == bindparam("mdtrt_id"))
                           .values({c.name: bindparam(c.name) for c in _VISIT.columns if c.name != "mdtrt_id"}))
_ON = bindparam("on", type_=Date())
CATALOG_ITEM = sql.Query(CatalogItemRow, sql.select_of(CatalogItemRow, _ITEM)
                         .where(_ITEM.c.med_list_codg == bindparam("med_list_codg"), _ITEM.c.begndate <= _ON,
                                or_(_ITEM.c.enddate.is_(None), _ITEM.c.enddate >= _ON), _ITEM.c.vali_flag == "1"))
# the visit's lines that stand: a line cancelled by 2205/2302 may be uploaded again under its number
UPLOADED_SNS = sql.Query(str, select(_LINE.c.feedetl_sn).where(_LINE.c.mdtrt_id == bindparam("mdtrt_id"), _LINE.c.status != "cancelled"))
BATCH_UPLOADED = sql.Query(str, select(_LINE.c.feedetl_sn).where(_LINE.c.mdtrt_id == bindparam("mdtrt_id"),
                                                                 _LINE.c.chrg_bchno == bindparam("chrg_bchno"),
                                                                 _LINE.c.status != "cancelled"))
INSERT_LINE = sql.Statement(sql.insert_into(_LINE, skip=("id",)))
OPEN_LINES = sql.Query(FeeLineRow, sql.select_of(FeeLineRow, _LINE).where(_LINE.c.mdtrt_id == bindparam("mdtrt_id"),
                                                                          _LINE.c.status == "open")
                       .order_by(_LINE.c.id))
SETTLE_LINE = sql.Statement(update(_LINE).where(_LINE.c.id == bindparam("id")).values(status="settled", setl_id=bindparam("setl_id")))
REOPEN_LINES = sql.Statement(update(_LINE).where(_LINE.c.setl_id == bindparam("setl_id")).values(status="open", setl_id=null()))
INSERT_SETTLEMENT = sql.Statement(sql.insert_into(_SETTLEMENT))
SETTLEMENT_LOCKED = sql.Query(SettlementRow, sql.select_of(SettlementRow, _SETTLEMENT).where(_SETTLEMENT.c.setl_id == bindparam("setl_id"))
                              .with_for_update())
MARK_REVERSED = sql.Statement(update(_SETTLEMENT).where(_SETTLEMENT.c.setl_id == bindparam("setl_id"))
                              .values(revs_setl_id=bindparam("revs_setl_id")))
STANDING_SETTLEMENT = sql.Query(str, select(_SETTLEMENT.c.setl_id).where(_SETTLEMENT.c.mdtrt_id == bindparam("mdtrt_id"),
                                                                         _SETTLEMENT.c.refd_setl_flag == "0",
                                                                         _SETTLEMENT.c.revs_setl_id.is_(None)))
INPATIENT_MED_TYPES = {"21", "22", "23", "24", "25", "26", "28", "52"}
CHRONIC_MED_TYPE = "14"  # 门诊慢特病: paid by the registered disease's own terms


def new_id(admdvs: str) -> str:
    """30 characters: region (6) + time (14) + 10 random digits, as real mdtrt_id / setl_id look."""
    return f"{admdvs}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}"


def _visit_facts(session: Session, mdtrt_id: str) -> tuple[str, str, str, str] | None:
    """What the prescription centre may know of a visit a prescription names (prescription sits below encounter)."""
    visit = sql.first(session, VISIT, mdtrt_id=mdtrt_id)
    return None if visit is None else (visit.fixmedins_code, visit.psn_no, visit.med_type, visit.status)


prescription.use_visits(_visit_facts)


def kind_of(med_type: str) -> str:
    if med_type == "41":
        return "pharmacy"
    return "inpatient" if med_type in INPATIENT_MED_TYPES or (len(med_type) > 2 and med_type[:1] == "2") else "outpatient"


@dataclass(frozen=True)
class Caller:
    """Who is calling, from the envelope."""

    fixmedins_code: str
    mdtrtarea_admvs: str
    msgid: str
    opter: str
    opter_name: str


# -- visits ---------------------------------------------------------------------------------

def institution(session: Session, code: str) -> InstitutionRow:
    found = sql.first(session, INSTITUTION, fixmedins_code=code)
    if found is None:
        raise NotFound(f"institution {code} is not registered", field="fixmedins_code")
    return found


def open_visit(session: Session, caller: Caller, *, psn_no: str, insutype: str, med_type: str, begntime: datetime,
               ipt_otp_no: str, cert_type: str, cert_no: str, card_sn: str, where: str, **details: str) -> VisitRow:
    """Register an outpatient visit or pharmacy purchase (2201) or admit (2401)."""
    inst = institution(session, caller.fixmedins_code)
    kind = kind_of(med_type)
    if kind == "pharmacy" and inst.fixmedins_type != "2":
        raise InputError("med_type 41 (pharmacy purchase) is for designated pharmacies", field=f"{where}.med_type")
    if inst.fixmedins_type == "2" and kind != "pharmacy":
        raise InputError(f"a pharmacy settles med_type 41, not {med_type}", field=f"{where}.med_type")
    person = registry.person(session, psn_no, where)
    registry.verify_credential(session, person, cert_type, cert_no, card_sn, where, caller.fixmedins_code, use_token)
    enrolment = registry.active_enrolment(registry.enrolments_of(session, psn_no), insutype, begntime.date(), where)
    if enrolment.insutype not in ("310", "390"):
        raise InputError("settle under the basic insurance (310 or 390)", field=f"{where}.insutype")
    if kind == "inpatient":
        already = sql.rows(session, ADMITTED, psn_no=psn_no)
        if already:
            raise Conflict(f"the person is already admitted (mdtrt_id {already[0]}); discharge first", field=f"{where}.psn_no")
    number_field = f"{where}.ipt_otp_no" if kind != "inpatient" else f"{where}.ipt_no"
    duplicate = sql.rows(session, SAME_NUMBER, fixmedins_code=caller.fixmedins_code, ipt_otp_no=ipt_otp_no, kind=kind)
    if duplicate:
        raise Conflict(f"already registered as mdtrt_id {duplicate[0]}", field=number_field)
    visit = VisitRow(**cast(dict[str, Any], {
        **VISIT_DEFAULTS,
        **dict(
        mdtrt_id=new_id(caller.mdtrtarea_admvs), psn_no=psn_no, insutype=insutype, fixmedins_code=caller.fixmedins_code,
        kind=kind, med_type=med_type, ipt_otp_no=ipt_otp_no, mdtrt_cert_type=cert_type, mdtrt_cert_no=cert_no[:64],
        begntime=begntime, status="admitted" if kind == "inpatient" else "registered", opter=caller.opter,
        opter_name=caller.opter_name, opt_time=clock.now(),
        mdtrtarea_admvs=caller.mdtrtarea_admvs, insuplc_admdvs=enrolment.insuplc_admdvs, dedc_paid_fen=0, admission_no=0,
        **{k: v for k, v in details.items() if v is not None})}))
    try:
        sql.execute(session, INSERT_VISIT, **sql.as_params(visit))
    except IntegrityError as error:
        # the one unique rule of a new visit (its number among the institution's open visits), met by a concurrent call
        if "ipt_otp_no" in str(error.orig) or "ux_visit_open_number" in str(error.orig):
            raise Conflict("was registered by a concurrent call; query it with 5201", field=number_field) from None
        raise
    return visit


def _check_visit(visit: Any, caller: Caller, mdtrt_id: str, psn_no: str, where: str) -> None:
    if visit is None or visit.fixmedins_code != caller.fixmedins_code:
        raise NotFound(f"no visit {mdtrt_id} at this institution", field=f"{where}.mdtrt_id")
    if psn_no and visit.psn_no != psn_no:
        raise InputError(f"visit {mdtrt_id} belongs to another person", field=f"{where}.psn_no")
    if visit.status == "cancelled":
        raise InputError(f"visit {mdtrt_id} was cancelled", field=f"{where}.mdtrt_id")


def load_visit(session: Session, caller: Caller, mdtrt_id: str, psn_no: str, where: str, *, lock: bool = False) -> VisitRow:
    """The caller's visit (locked to change it); a transaction that changes it writes it back with `save_visit`."""
    visit = sql.first(session, VISIT_LOCKED if lock else VISIT, mdtrt_id=mdtrt_id)
    _check_visit(visit, caller, mdtrt_id, psn_no, where)
    assert visit is not None
    return visit


def save_visit(session: Session, visit: VisitRow) -> None:
    sql.execute(session, SAVE_VISIT, **sql.as_params(visit))


def has_settlements(session: Session, mdtrt_id: str) -> bool:
    return session.scalar(select(Settlement.setl_id).where(Settlement.mdtrt_id == mdtrt_id, Settlement.refd_setl_flag == "0",
                                                           Settlement.revs_setl_id.is_(None)).limit(1)) is not None


def cancel_visit(session: Session, visit: VisitRow, where: str) -> None:
    """2202 / 2404: only a visit with nothing settled; its open fee lines go with it."""
    if has_settlements(session, visit.mdtrt_id):
        raise Conflict(f"visit {visit.mdtrt_id} has a settlement; reverse it first", field=f"{where}.mdtrt_id")
    for line in session.scalars(select(FeeLine).where(FeeLine.mdtrt_id == visit.mdtrt_id, FeeLine.status == "open")):
        line.status = "cancelled"
    visit.status = "cancelled"
    save_visit(session, visit)


def record_diagnoses(session: Session, visit: VisitRow, diagnoses: Sequence[Any], where: str = "input.diseinfo") -> None:
    """Replace the visit's diagnoses with the uploaded list (2203 / 2401 / 2402)."""
    for old in session.scalars(select(Diagnosis).where(Diagnosis.mdtrt_id == visit.mdtrt_id)):
        session.delete(old)
    for i, d in enumerate(diagnoses):
        number = (d.diag_srt_no or "0").strip()
        if not number.isdecimal() or len(number) > 4:  # diag_srt_no is 数值型(2): a small whole number
            raise InputError(f"'{number[:20]}' is not a diagnosis sequence number (0–9999)", field=f"{where}[{i}].diag_srt_no")
        session.add(Diagnosis(mdtrt_id=visit.mdtrt_id, diag_type=d.diag_type, diag_srt_no=int(number), diag_code=d.diag_code,
                              diag_name=d.diag_name, maindiag_flag=d.maindiag_flag or ("1" if number == "1" else "0"),
                              diag_time=clock.parse_datetime(d.diag_time, f"{where}[{i}].diag_time") if d.diag_time else None,
                              vali_flag=d.vali_flag or "1"))


def discharge(session: Session, visit: VisitRow, endtime: datetime, where: str, **details: Any) -> None:
    if visit.kind != "inpatient":
        raise InputError(f"visit {visit.mdtrt_id} is not an admission", field=f"{where}.mdtrt_id")
    if visit.status != "admitted":
        raise Conflict(f"visit {visit.mdtrt_id} is {visit.status}, not admitted", field=f"{where}.mdtrt_id")
    if endtime < visit.begntime:
        raise InputError("is before the admission time", field=f"{where}.endtime")
    visit.endtime = endtime
    visit.status = "discharged"
    for k, v in details.items():
        if v:
            setattr(visit, k, v)
    save_visit(session, visit)


def change_admission(session: Session, visit: VisitRow, where: str, *, insutype: str, med_type: str, begntime: datetime | None,
                     ipt_no: str, endtime: datetime | None, tolerance: timedelta, details: dict[str, Any]) -> None:
    """2403 住院信息变更: correct a stay that is not settled (admitted, or discharged and waiting for 2304).

    The person, the insurance type and the institution are the stay's identity and do not change (cancel with 2404 and
    admit again); the med_type only while no mid-stay settlement was made under the old one; the admission time only
    so far that the stay's fee lines still lie inside it (they were classified on their own dates)."""
    if visit.kind != "inpatient":
        raise InputError(f"visit {visit.mdtrt_id} is not an admission", field=f"{where}.mdtrt_id")
    if visit.status not in ("admitted", "discharged"):
        raise Conflict(f"admission {visit.mdtrt_id} is {visit.status}: reverse its settlement (2305) before changing it",
                       field=f"{where}.mdtrt_id")
    if insutype and insutype != visit.insutype:
        raise InputError(f"the stay was admitted under {visit.insutype}: cancel it (2404) and admit again", field=f"{where}.insutype")
    if med_type and med_type != visit.med_type:
        if kind_of(med_type) != "inpatient":
            raise InputError(f"{med_type} is not an inpatient med_type (21…)", field=f"{where}.med_type")
        if has_settlements(session, visit.mdtrt_id):
            raise Conflict(f"a mid-stay settlement was made under med_type {visit.med_type}: reverse it (2305) first",
                           field=f"{where}.med_type")
        visit.med_type = med_type
    if begntime is not None and begntime != visit.begntime:
        earliest = session.scalar(select(func.min(FeeLine.fee_ocur_time)).where(FeeLine.mdtrt_id == visit.mdtrt_id,
                                                                                 FeeLine.status != "cancelled"))
        if earliest is not None and earliest < begntime - tolerance:
            raise InputError(f"{clock.fmt_datetime(begntime)} is after fee lines of the stay (the first on {clock.fmt_datetime(earliest)})",
                             field=f"{where}.begntime")
        if visit.endtime is not None and begntime > visit.endtime:
            raise InputError("is after the discharge time", field=f"{where}.begntime")
        visit.begntime = begntime
    if ipt_no and ipt_no != visit.ipt_otp_no:
        duplicate = sql.rows(session, SAME_NUMBER, fixmedins_code=visit.fixmedins_code, ipt_otp_no=ipt_no, kind=visit.kind)
        if duplicate:
            raise Conflict(f"already registered as mdtrt_id {duplicate[0]}", field=f"{where}.ipt_otp_no")
        visit.ipt_otp_no = ipt_no
    if endtime is not None:
        if visit.status != "discharged":
            raise InputError("the stay is open: discharge it with 2402", field=f"{where}.endtime")
        if endtime < visit.begntime:
            raise InputError("is before the admission time", field=f"{where}.endtime")
        visit.endtime = endtime
    for name, value in details.items():
        if value not in ("", None):
            setattr(visit, name, value)
    save_visit(session, visit)


def undo_discharge(session: Session, visit: VisitRow, where: str) -> None:
    if visit.status != "discharged":
        raise Conflict(f"visit {visit.mdtrt_id} is {visit.status}; only a discharged, unsettled admission can be reopened",
                       field=f"{where}.mdtrt_id")
    visit.status = "admitted"
    visit.endtime = None
    save_visit(session, visit)


# -- fee lines ------------------------------------------------------------------------------

def catalogue_rules(session: Session, codes: set[str], on: date) -> dict[str, CatalogItemRow]:
    """The catalogue rows in force on a day for the given codes (an indexed read each)."""
    found = {}
    for code in sorted(codes):
        rows = sql.rows(session, CATALOG_ITEM, med_list_codg=code, on=on)
        if rows:
            found[code] = rows[-1]
    return found


def rule_of(item: Any) -> engine.CatalogRule | None:
    if item is None:
        return None
    return engine.CatalogRule(item.med_list_codg, item.chrgitm_lv, item.med_chrgitm_type, item.list_type, item.pric_uplmt_fen,
                              item.lmt_gend, item.lmt_age_min, item.lmt_age_max, item.lmt_hosp_lv, item.rx_flag, item.lmt_used_flag)


@dataclass
class VisitContext:
    """Everything about a visit the engine reads, gathered once."""

    visit: VisitRow
    person: PersonRow
    enrolments: list[EnrolmentRow]
    enrolment: EnrolmentRow
    hosp_lv: int
    policy: Any


def visit_context(session: Session, visit: VisitRow, on: date, person: PersonRow | None = None) -> VisitContext:
    person = person or registry.person(session, visit.psn_no, "input.data")
    enrolments = registry.enrolments_of(session, visit.psn_no)
    enrolment = registry.active_enrolment(enrolments, visit.insutype, on, "input.data")
    inst = institution(session, visit.fixmedins_code)
    try:
        policy = policy_for(enrolment.insuplc_admdvs, visit.insutype, category_of(visit.insutype, enrolment.psn_type), on)
    except PolicyError as error:
        raise InputError(f"the insured region's policy cannot settle this: {error.message}", field="insuplc_admdvs") from None
    return VisitContext(visit, person, enrolments, enrolment, inst.medins_lv or 1, policy)


@dataclass(frozen=True)
class FeeWindow:
    """When a fee line may have happened: from its visit's begin (less ``before``) to now plus ``ahead`` (clock skew).

    A line dated outside its visit would be classified on the wrong day: a back-dated line could escape an age
    restriction the patient has since grown into (or out of)."""

    before: timedelta
    ahead: timedelta


def upload_fees(session: Session, caller: Caller, lines: Sequence[Any], window: FeeWindow, where: str = "input.feedetail"
                ) -> list[dict[str, Any]]:
    """2204 / 2301: store fee lines with their catalogue split; answer one result per line."""
    if not lines:
        raise InputError("at least one fee line is required", field=where)
    latest = clock.now() + window.ahead
    visits: dict[str, VisitContext] = {}
    seen: set[tuple[str, str]] = set()
    prepared = []
    for i, raw in enumerate(lines):
        at = f"{where}[{i}]"
        if (raw.mdtrt_id, raw.feedetl_sn) in seen:
            raise InputError(f"feedetl_sn {raw.feedetl_sn} appears twice", field=f"{at}.feedetl_sn")
        seen.add((raw.mdtrt_id, raw.feedetl_sn))
        if raw.mdtrt_id not in visits:
            visit = load_visit(session, caller, raw.mdtrt_id, raw.psn_no, at)
            # an outpatient visit takes new lines after a settlement (prescriptions after the registration fee); an
            # admission only while it is open (a discharged stay is reopened with 2405 first)
            if visit.status not in ("registered", "admitted") and not (visit.status == "settled" and visit.kind != "inpatient"):
                raise Conflict(f"visit {visit.mdtrt_id} is {visit.status}: no more fee lines", field=f"{at}.mdtrt_id")
            visits[raw.mdtrt_id] = visit_context(session, visit, clock.today())
        amount = to_fen(raw.det_item_fee_sumamt, f"{at}.det_item_fee_sumamt")
        cnt, pric = _decimal(raw.cnt, f"{at}.cnt", MAX_CNT), _decimal(raw.pric, f"{at}.pric", MAX_PRIC)
        if amount < 0 or cnt <= 0 or pric < 0:
            raise InputError("amounts must not be negative and cnt must be positive", field=f"{at}.det_item_fee_sumamt")
        if abs(cnt * pric * 100 - amount) > max(Decimal(1), cnt / 100):
            raise InputError(f"{yuan(amount)} is not cnt × pric ({cnt} × {pric})", field=f"{at}.det_item_fee_sumamt")
        when = clock.parse_datetime(raw.fee_ocur_time, f"{at}.fee_ocur_time")
        begun = visits[raw.mdtrt_id].visit.begntime
        if when < begun - window.before:
            raise InputError(f"{clock.fmt_datetime(when)} is before the visit began ({clock.fmt_datetime(begun)})",
                             field=f"{at}.fee_ocur_time")
        if when > latest:
            raise InputError(f"{clock.fmt_datetime(when)} is in the future", field=f"{at}.fee_ocur_time")
        prepared.append((at, raw, amount, cnt, pric, when))
    existing = {(mdtrt_id, sn) for mdtrt_id in visits for sn in sql.rows(session, UPLOADED_SNS, mdtrt_id=mdtrt_id)}
    uploaded_at = clock.now()
    rules = catalogue_rules(session, {p[1].med_list_codg.strip().upper() for p in prepared}, clock.today())
    results, rows = [], []
    for at, raw, amount, cnt, pric, when in prepared:
        if (raw.mdtrt_id, raw.feedetl_sn) in existing:
            raise Conflict(f"feedetl_sn {raw.feedetl_sn} was already uploaded for this visit", field=f"{at}.feedetl_sn")
        ctx = visits[raw.mdtrt_id]
        item = rules.get(raw.med_list_codg.strip().upper())
        if ctx.visit.kind == "pharmacy" and item is not None and item.rx_flag == "1" and not raw.rxno.strip():
            raise InputError(f"{item.med_list_name} is a prescription-only drug: a prescription number is required", field=f"{at}.rxno")
        circulation = (getattr(raw, "rx_circ_flag", "") or "").strip()
        if raw.rxno.strip() or (ctx.visit.kind == "pharmacy" and circulation == "1"):
            # an e-prescription (hi_rxno) is dispensed only where the person chose, once, before it expires
            prescription.check_line(session, rxno=raw.rxno, rx_circ_flag=circulation, med_list_codg=raw.med_list_codg,
                                    fixmedins_code=caller.fixmedins_code, at_pharmacy=ctx.visit.kind == "pharmacy", where=at)
        patient = engine.Patient(clock.age_on(ctx.person.brdy, when.date()), ctx.person.gend)
        split = engine.classify(engine.FeeLine(raw.feedetl_sn, raw.med_list_codg, amount, cnt, pric), rule_of(item), patient,
                                ctx.hosp_lv, ctx.policy.yi_selfpay_prop)
        row = dict(mdtrt_id=raw.mdtrt_id, feedetl_sn=raw.feedetl_sn, chrg_bchno=raw.chrg_bchno,
                   med_list_codg=raw.med_list_codg.strip().upper(), medins_list_codg=raw.medins_list_codg,
                   med_list_name=item.med_list_name if item else "", list_type=item.list_type if item else "",
                   rxno=raw.rxno, fee_ocur_time=when, cnt=cnt, pric=pric, det_item_fee_sumamt_fen=amount,
                   bilg_dept_codg=raw.bilg_dept_codg, bilg_dept_name=raw.bilg_dept_name, bilg_dr_codg=raw.bilg_dr_codg,
                   bilg_dr_name=raw.bilg_dr_name, chrgitm_lv=split.chrgitm_lv, med_chrgitm_type=split.med_chrgitm_type,
                   selfpay_prop=split.selfpay_prop, pric_uplmt_fen=split.pric_uplmt_fen, fulamt_ownpay_fen=split.fulamt_ownpay,
                   overlmt_fen=split.overlmt, preselfpay_fen=split.preselfpay, inscp_scp_fen=split.inscp,
                   lmt_used_flag=split.lmt_used_flag, memo=split.memo, status="open", setl_id=None,
                   dise_codg=_given(raw, "dise_codg"), drord_no=_given(raw, "drord_no"), init_feedetl_sn=_given(raw, "init_feedetl_sn"),
                   prd_days=_prd_days(getattr(raw, "prd_days", ""), f"{at}.prd_days"),
                   **{name: _given(raw, name) for name in AS_SENT}, opter=caller.opter, opter_name=caller.opter_name, opt_time=uploaded_at)
        rows.append(row)
        results.append(line_result(row))
    sql.execute_many(session, INSERT_LINE, rows)
    return results


# fee-line fields kept as the HIS sent them (for 5204/5205), cut to their columns
AS_SENT = ("sin_dos_dscr", "used_frqu_dscr", "medc_way_dscr", "acord_dept_codg", "acord_dept_name", "orders_dr_code", "orders_dr_name",
           "hosp_appr_flag", "tcmdrug_used_way", "etip_flag", "etip_hosp_code", "dscg_tkdrug_flag", "matn_fee_flag")
_LINE_LENGTHS = {c.name: getattr(c.type, "length") for c in _LINE.columns if getattr(c.type, "length", None)}  # noqa: B009


def _given(raw: Any, name: str) -> str:
    """An optional text field of an uploaded line (absent or null: empty), cut to its column."""
    value = getattr(raw, name, "") or ""
    return str(value).strip()[:_LINE_LENGTHS[name]]


def _prd_days(value: Any, field: str) -> Decimal:
    """周期天数 数值型(4,2): blank is 0."""
    if value is None or str(value).strip() == "":
        return Decimal(0)
    days = _decimal(value, field, Decimal("9999.99"))
    if days < 0 or days != days.quantize(Decimal("0.01")):
        raise InputError(f"'{str(value)[:24]}' is not a number of days (at most 2 decimals)", field=field)
    return days


# fee_line.cnt is Numeric(16,4) and pric Numeric(16,6): larger values would not fit the columns
MAX_CNT = Decimal("999999999999.9999")
MAX_PRIC = Decimal("9999999999.999999")


def _decimal(value: Any, field: str, largest: Decimal) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except Exception:
        raise InputError(f"'{str(value)[:24]}' is not a number", field=field) from None
    if not number.is_finite():
        raise InputError(f"'{str(value)[:24]}' is not a number", field=field)
    if number.copy_abs() > largest:  # copy_abs: abs() would overflow on 1e999999999
        raise InputError(f"'{str(value)[:24]}' is larger than {largest}", field=field)
    return number


def line_result(row: dict[str, Any]) -> dict[str, Any]:
    """One line's answer to 2204/2301, from the fee_line row as it is inserted."""
    return {
        "feedetl_sn": row["feedetl_sn"], "det_item_fee_sumamt": yuan(row["det_item_fee_sumamt_fen"]), "cnt": Decimal(str(row["cnt"])),
        "pric": Decimal(str(row["pric"])), "pric_uplmt_amt": yuan(row["pric_uplmt_fen"]) if row["pric_uplmt_fen"] is not None else None,
        "selfpay_prop": Decimal(str(row["selfpay_prop"])).quantize(Decimal("0.0001")), "fulamt_ownpay_amt": yuan(row["fulamt_ownpay_fen"]),
        "overlmt_amt": yuan(row["overlmt_fen"]), "preselfpay_amt": yuan(row["preselfpay_fen"]), "inscp_scp_amt": yuan(row["inscp_scp_fen"]),
        "chrgitm_lv": row["chrgitm_lv"], "med_chrgitm_type": row["med_chrgitm_type"], "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
        "chld_medc_flag": "0", "list_sp_item_flag": "0", "lmt_used_flag": row["lmt_used_flag"], "drt_reim_flag": "0", "memo": row["memo"],
    }


def cancel_fees(session: Session, visit: VisitRow, *, chrg_bchno: str = "", feedetl_sn: str = "", where: str) -> int:
    """2205 (by batch, "0000" = all unsettled) / 2302 (by line, "0000" = all unsettled)."""
    stmt = select(FeeLine).where(FeeLine.mdtrt_id == visit.mdtrt_id, FeeLine.status == "open")
    if chrg_bchno and chrg_bchno != "0000":
        stmt = stmt.where(FeeLine.chrg_bchno == chrg_bchno)
    if feedetl_sn and feedetl_sn != "0000":
        stmt = stmt.where(FeeLine.feedetl_sn == feedetl_sn)
    rows = session.scalars(stmt).all()
    if not rows:
        raise NotFound("no unsettled fee lines match", field=f"{where}.{'feedetl_sn' if feedetl_sn else 'chrg_bchno'}")
    for row in rows:
        row.status = "cancelled"
    return len(rows)


# -- care away from home (异地就医) ----------------------------------------------------------------------

def care_away(session: Session, psn_no: str, place: str, home: str, on: date) -> tuple[bool, bool]:
    """(unfiled, under a referral) for care in another province, by the filing in force on the day of care for the place
    of care: long-term residence or posted work → neither (the home ratio); a referral → the policy's referral
    reduction; a temporary trip or none → the unfiled reduction. One indexed read, only for care away."""
    if place[:2] == home[:2]:
        return False, False
    found = filing.in_force(session, psn_no, place, on)
    referral = filing.is_referral(found)
    return not (filing.full_ratio(found) or referral), referral


# -- chronic and special diseases (med_type 14) ------------------------------------------------------

def chronic_registration(session: Session, psn_no: str, insutype: str, code: str, on: date, field: str) -> RegistrationRow:
    """The person's registration (2503) of the disease in force on the day, under the visit's insurance type."""
    code = code.strip().upper()
    if not code:
        raise InputError("med_type 14 (门诊慢特病) needs the registered disease: send its 1309 code (e.g. M03900) as dise_codg",
                         field=field)
    found = chronic.in_force(session, psn_no, code, on)
    if found is None:
        raise InputError(f"{code[:30]} is not a chronic or special disease registered for the person and in force on {on.isoformat()} "
                         "(register it with 2503; 5301 lists the person's registrations)", field=field)
    if found.insutype != insutype:
        raise InputError(f"{code} is registered under insutype {found.insutype}, the visit under {insutype}", field=field)
    return found


def chronic_code(visit: Any, lines: Sequence[Any], where: str) -> str:
    """The disease a med_type 14 settlement is for, as the place of care knows it: the visit's dise_codg (2203), else
    the one code its fee lines all name (2204 dise_codg). The home checks the registration (`chronic_disease`)."""
    if visit.kind != "outpatient":
        raise InputError(f"med_type 14 (门诊慢特病) is outpatient care, not a {visit.kind} visit", field=f"{where}.med_type")
    named = {line.dise_codg.strip().upper() for line in lines if line.dise_codg.strip()}
    return visit.dise_codg.strip().upper() or (next(iter(named)) if len(named) == 1 else "")


def chronic_disease(session: Session, facts: CareFacts, policy: Any, where: str) -> str:
    """The registered disease a med_type 14 settlement pays for: registered for the person and paid by the policy."""
    chronic_registration(session, facts.psn_no, facts.insutype, facts.dise_codg, facts.care_day, f"{where}.med_type")
    if facts.dise_codg not in policy.chronic:
        raise InputError(f"the policy of {policy.admdvs} pays no chronic care for {facts.dise_codg} under insutype {policy.insutype}",
                         field=f"{where}.med_type")
    return facts.dise_codg


# -- settlement -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SettleRequest:
    psn_no: str
    mdtrt_id: str
    insutype: str
    med_type: str
    medfee_sumamt: int
    acct_used: bool
    cert_type: str
    cert_no: str
    card_sn: str = ""
    chrg_bchno: str = ""
    mid_setl: bool = False
    invono: str = ""


@dataclass(frozen=True)
class CareFacts:
    """What the place of care hands the insured person's home for one settlement: the fee lines classified with its
    catalogue and prices, and the visit's facts ("catalogue of the place of care, policy of the place of insurance").
    Plain data: on a federation it travels to the home province's node."""

    psn_no: str
    insutype: str
    med_type: str
    kind: str
    care_day: date
    setl_time: datetime
    hosp_lv: int
    fixmedins_code: str
    mdtrtarea_admvs: str
    mdtrt_id: str
    admission_no: int       # the stay's number of the year, 0 until a settlement counted it
    dedc_paid_fen: int      # deductible already met in this stay (mid-stay settlements)
    acct_used: bool
    cert_type: str
    cert_no: str
    card_sn: str
    dise_codg: str          # med_type 14: the disease the place of care names ("" otherwise)
    lines: tuple[engine.LineSplit, ...]


@dataclass(frozen=True)
class HomeAnswer:
    """The home's part of a settlement: what its funds and the person's accounts pay."""

    setl_id: str
    out: engine.Outcome
    warning: str
    psn_type: str
    cvlserv_flag: str
    opsp_dise_code: str
    admission_no: int
    counts_admission: bool
    # the region whose node paid (a federation's other province), "" when this node did
    paid_by: str = ""
    # this node's own entries (funds, accounts), to which the place of care adds its own; None when another node paid
    posting: ledger.Posting | None = None
    # when another node paid: the settlement's time there (a retry's answer keeps the first attempt's), so both nodes
    # date it alike and clear it in the same month
    setl_time: datetime | None = None


class Home(Protocol):
    """Where the insured person's policy, totals and accounts are: this node (`LocalHome`) or another province's node
    reached through the federation's hub (`yibao.federation`)."""

    def settle(self, session: Session, facts: CareFacts, *, post: bool, setl_id: str, msgid: str, where: str,
               person: PersonRow | None = None) -> HomeAnswer:
        """The home's part; ``person``: the record the place of care read, when it is this node's own (one read less)."""

    def settled(self, session: Session, row: SettlementRow) -> None: ...

    def reverse(self, session: Session, original: SettlementRow, reversal_id: str, msgid: str, where: str) -> tuple[int, str]:
        """Undo the home's part; the person's balance after it and the reversal's number (a retry gets the first one's)."""


def home_settle(session: Session, facts: CareFacts, *, post: bool, setl_id: str, where: str, use_token: registry.TokenCheck,
                person: PersonRow | None = None) -> HomeAnswer:
    """The insured person's side: prove the person, then their enrolment, policy, year-to-date totals, identities,
    filing and accounts applied to the classified lines; with ``post`` the totals and balances move and the fund and
    account entries are returned for the posting (nothing is written without ``post``)."""
    person = person if person is not None and person.psn_no == facts.psn_no else registry.person(session, facts.psn_no, where)
    ec_token = registry.verify_credential(session, person, facts.cert_type, facts.cert_no, facts.card_sn, where,
                                          facts.fixmedins_code, use_token)
    enrolments = registry.enrolments_of(session, facts.psn_no)
    enrolment = registry.active_enrolment(enrolments, facts.insutype, facts.care_day, where)
    try:
        policy = policy_for(enrolment.insuplc_admdvs, facts.insutype, category_of(facts.insutype, enrolment.psn_type), facts.care_day)
    except PolicyError as error:
        raise InputError(f"the insured region's policy cannot settle this: {error.message}", field="insuplc_admdvs") from None
    ytd = ledger.year_total(session, facts.psn_no, facts.care_day.year, lock=post)
    opsp_dise_code, chronic_total = "", None
    if facts.med_type == CHRONIC_MED_TYPE:
        opsp_dise_code = chronic_disease(session, facts, policy, where)
        chronic_total = ledger.chronic_year_total(session, facts.psn_no, facts.care_day.year, opsp_dise_code, lock=post)
    grants = ledger.grantors_of(session, facts.psn_no) if facts.acct_used else []
    accounts = ledger.accounts(session, [facts.psn_no, *grants], lock=post)
    own = accounts.get(facts.psn_no)
    relatives = [accounts[g] for g in sorted(grants) if g in accounts]
    identities = registry.identities_on(session, facts.psn_no, clock.now())
    assistance = max((i for i in identities if i in policy.assistance_ratio), key=lambda i: policy.assistance_ratio[i], default=None)
    admission_no = facts.admission_no or (ytd.admissions + 1)
    unfiled, referral = care_away(session, facts.psn_no, facts.mdtrtarea_admvs, enrolment.insuplc_admdvs, facts.care_day)
    claim = engine.Claim(
        kind=cast(engine.Kind, facts.kind), hosp_lv=facts.hosp_lv, enrolled=registry.enrolled_types(enrolments),
        cvlserv=enrolment.cvlserv_flag == "1", assistance_identity=assistance,
        unfiled_cross_province=unfiled, referral_cross_province=referral,
        admission_no=admission_no, admission_dedc_paid=facts.dedc_paid_fen,
        acct_balance=own.balance_fen if own else 0, mulaid_balance=sum(a.balance_fen for a in relatives), acct_used=facts.acct_used,
        opsp_dise_code=opsp_dise_code,
        chronic_ytd=engine.ChronicYearToDate(chronic_total.dedc, chronic_total.hifp) if chronic_total else engine.ChronicYearToDate(),
    )
    out = engine.settle(policy, claim, _ytd(ytd), list(facts.lines))
    from_account = out.acct_pay + out.acct_mulaid_pay
    warning = ""
    if (from_account > policy.pay_auth_threshold and facts.cert_type in policy.pay_auth_cert_types
            and (ec_token is None or ec_token.pay_authorized_at is None)):
        # The patient confirms in the app, on the visit's ecToken (credential/service.authorize_payment).
        if ec_token is not None:
            # The token is in hand (01, or 02 with it in card_sn): the patient can confirm now, so the settlement waits.
            if post:
                raise InputError(f"paying {yuan(from_account)} from the personal account needs the patient's consumption password or face "
                                 "check: ask them to confirm the payment in the app, then settle again", field=f"{where}.acct_used_flag")
        else:
            # An ID number or a card carries no confirmation: the account does not pay and the patient pays in cash.
            # Pre-settlement (2206/2303) answers the same, so the counter shows the patient what 2207/2304 will charge.
            out = engine.settle(policy, dataclasses.replace(claim, acct_used=False), _ytd(ytd), list(facts.lines))
            warning = (f"the personal account did not pay: {yuan(from_account)} from it needs the patient's confirmation, and credential "
                       f"type {facts.cert_type} carries none (present the e-credential: mdtrt_cert_type 01 or its ecToken in card_sn)")
    if unfiled or referral:  # the counter tells the patient why the fund paid less than at home
        reduction = ("under a referral filing the pooled fund pays the policy's referral ratio" if referral else
                     "without a long-term filing (long-term residence or work) for the place of care the pooled fund pays "
                     "the policy's reduced ratio (file care away: 2501 or the app)")
        warning = "; ".join(filter(None, (warning, f"care away from the insured province: {reduction}")))
    counts_admission = facts.kind == "inpatient" and facts.admission_no == 0 and out.medfee_sumamt > 0
    answer = HomeAnswer(setl_id, out, warning, enrolment.psn_type, enrolment.cvlserv_flag, opsp_dise_code, admission_no, counts_admission)
    if not post:
        return answer
    totals = YearToDateChange.of(out, counts_admission)
    _apply_totals(ytd, totals, +1)
    ledger.write_year_total(session, ytd)
    if chronic_total is not None:
        _apply_chronic_totals(chronic_total, totals, +1)
        ledger.write_chronic_year_total(session, chronic_total)
    posting = ledger.Posting(setl_id, facts.psn_no)
    for fund in out.funds:
        posting.add(f"fund:{fund.fund_pay_type}", fund.fund_payamt)
    if own is not None and out.acct_pay:
        ledger.move_balance(session, own, -out.acct_pay)
        posting.add(f"acct:{own.psn_no}", out.acct_pay)
    remaining = out.acct_mulaid_pay
    for relative in relatives:
        take = min(remaining, relative.balance_fen)
        if take:
            ledger.move_balance(session, relative, -take)
            posting.add(f"acct:{relative.psn_no}", take)
            remaining -= take
    return dataclasses.replace(answer, posting=posting)


def home_share(row: Any) -> int:
    """What the insured person's side pays of a settlement (its funds and the personal accounts): on a federation, what
    the home owes the place of care for it."""
    return int(row.fund_pay_sumamt + row.acct_pay + row.acct_mulaid_pay)


@dataclass(frozen=True)
class YearToDateChange:
    """What a settlement moves of the year-to-date rows, named as a settlement row names them (for `_apply_totals`)."""

    ytd_otp_dedc: int
    ytd_hifp_otp: int
    hifp_pay: int
    hifob_pay: int
    cvlserv_pay: int
    hifmi_pay: int
    maf_pay: int
    ytd_inscp_self: int
    ytd_admission: int
    ytd_opsp_dedc: int

    @classmethod
    def of(cls, out: engine.Outcome, counts_admission: bool) -> YearToDateChange:
        return cls(out.ytd_delta.otp_dedc, out.ytd_delta.hifp_otp, out.hifp_pay, out.hifob_pay, out.cvlserv_pay, out.hifmi_pay,
                   out.maf_pay, out.ytd_delta.inscp_self, 1 if counts_admission else 0, out.chronic_delta.dedc)


def home_reverse(session: Session, original: Any) -> int:
    """Undo what a settlement moved on the insured person's side: year-to-date totals (and its disease's, med_type 14)
    and the accounts that paid (their postings name them). Answers the person's balance after it."""
    ytd = ledger.year_total(session, original.psn_no, original.year, lock=True)
    chronic_total = (ledger.chronic_year_total(session, original.psn_no, original.year, original.opsp_dise_code, lock=True)
                     if original.opsp_dise_code else None)
    account_moves = ledger.account_entries(session, original.setl_id)
    accounts = ledger.accounts(session, [a.split(":", 1)[1] for a, _ in account_moves], lock=True)
    for account, amount in account_moves:
        ledger.move_balance(session, accounts[account.split(":", 1)[1]], amount)
    _apply_totals(ytd, original, -1)
    ledger.write_year_total(session, ytd)
    if chronic_total is not None:
        _apply_chronic_totals(chronic_total, original, -1)
        ledger.write_chronic_year_total(session, chronic_total)
    own = accounts.get(original.psn_no) or ledger.accounts(session, [original.psn_no], lock=False).get(original.psn_no)
    return own.balance_fen if own else 0


@dataclass(frozen=True)
class LocalHome:
    """The insured person's home is this node."""

    use_token: registry.TokenCheck

    def settle(self, session: Session, facts: CareFacts, *, post: bool, setl_id: str, msgid: str, where: str,
               person: PersonRow | None = None) -> HomeAnswer:
        return home_settle(session, facts, post=post, setl_id=setl_id, where=where, use_token=self.use_token, person=person)

    def settled(self, session: Session, row: SettlementRow) -> None:
        return None

    def reverse(self, session: Session, original: SettlementRow, reversal_id: str, msgid: str, where: str) -> tuple[int, str]:
        return home_reverse(session, original), reversal_id


def settle(session: Session, caller: Caller, request: SettleRequest, *, post: bool, homes: Callable[[str], Home],
           kind: str = "", where: str = "input.data") -> tuple[dict[str, Any], str]:
    """Pre-settle (post=False: nothing written) or settle (post=True: one atomic posting): the output and a warning.

    The place of care's part: the visit, its fee lines classified with this node's catalogue, the settlement row and
    the institution's claim. ``homes`` (insured region → `Home`) gives what applies the insured person's policy, totals
    and accounts to them: this node's (`LocalHome`) or, for a person insured in another province of a federation, that
    province's node's.
    ``kind`` (outpatient / inpatient) is what the transaction settles; another kind of visit is refused.
    """
    visit = load_visit(session, caller, request.mdtrt_id, request.psn_no, where, lock=post)
    if kind and (visit.kind == "inpatient") != (kind == "inpatient"):
        use = "2303/2304" if visit.kind == "inpatient" else "2206/2207"
        raise InputError(f"is a{'n admission' if visit.kind == 'inpatient' else ' ' + visit.kind + ' visit'}: settle it with {use}",
                         field=f"{where}.mdtrt_id")
    if request.insutype and request.insutype != visit.insutype:
        raise InputError(f"the visit was registered under {visit.insutype}", field=f"{where}.insutype")
    person = registry.person(session, visit.psn_no, where)
    if visit.kind == "inpatient" and not request.mid_setl and visit.status != "discharged":
        raise Conflict(f"admission {visit.mdtrt_id} is {visit.status}: discharge it (2402) or settle mid-stay (mid_setl_flag 1)",
                       field=f"{where}.mdtrt_id")
    if visit.kind == "inpatient" and request.mid_setl and visit.status != "admitted":
        raise Conflict(f"admission {visit.mdtrt_id} is {visit.status}: a mid-stay settlement needs an open admission",
                       field=f"{where}.mid_setl_flag")
    lines = sql.rows(session, OPEN_LINES, mdtrt_id=visit.mdtrt_id)
    batch = request.chrg_bchno.strip()
    if batch and batch != "0000" and visit.kind != "inpatient":
        # A visit is settled in parts (the registration fee at once, the prescriptions later): each settles the unsettled
        # lines of the batch it names. A number that names no uploaded batch (some clients send their own registration
        # number there) settles every unsettled line, as "0000" does.
        of_batch = [line for line in lines if line.chrg_bchno == batch]
        if not of_batch and sql.rows(session, BATCH_UPLOADED, mdtrt_id=visit.mdtrt_id, chrg_bchno=batch):
            raise Conflict(f"there are no unsettled fee lines in batch {batch[:30]}: it is settled", field=f"{where}.chrg_bchno")
        lines = of_batch or lines
    if not lines:
        raise Conflict("there are no unsettled fee lines to settle", field=f"{where}.mdtrt_id")
    # the e-prescriptions the lines dispense: checked again now (a pre-settlement refuses what settling would), claimed below
    dispensed = {found.hi_rxno for line in lines if line.rxno.strip()
                 for found in [prescription.check_line(session, rxno=line.rxno, rx_circ_flag="", med_list_codg=line.med_list_codg,
                                                       fixmedins_code=caller.fixmedins_code, at_pharmacy=visit.kind == "pharmacy",
                                                       where=where)] if found is not None}
    uploaded = sum(line.det_item_fee_sumamt_fen for line in lines)
    if uploaded != request.medfee_sumamt:
        raise InputError(f"{yuan(request.medfee_sumamt)} does not match the unsettled fee lines ({yuan(uploaded)})",
                         field=f"{where}.medfee_sumamt")
    now = clock.now()
    # The day of care (a stay: its admission) decides the policy in force and the year whose totals the settlement reads
    # and moves: a stay admitted 2026-12-30 and settled 2027-01-02 meets the 2026 deductible under the 2026 caps.
    care_day = care_day_of(visit)
    med_type = request.med_type or visit.med_type
    hosp_lv = institution(session, visit.fixmedins_code).medins_lv or 1
    # 事中审核 (yibao.review): refuses here, or makes lines wholly self-paid before the engine runs
    verdict = reviewing.review_claim(session, visit, person.gend, person.brdy, hosp_lv, lines, where)
    facts = CareFacts(
        psn_no=visit.psn_no, insutype=visit.insutype, med_type=med_type, kind=visit.kind, care_day=care_day, setl_time=now,
        hosp_lv=hosp_lv, fixmedins_code=caller.fixmedins_code,
        mdtrtarea_admvs=visit.mdtrtarea_admvs, mdtrt_id=visit.mdtrt_id, admission_no=visit.admission_no,
        dedc_paid_fen=visit.dedc_paid_fen, acct_used=request.acct_used, cert_type=request.cert_type, cert_no=request.cert_no,
        card_sn=request.card_sn, dise_codg=chronic_code(visit, lines, where) if med_type == CHRONIC_MED_TYPE else "",
        lines=tuple(reviewing.self_pay(engine.LineSplit(line.feedetl_sn, line.det_item_fee_sumamt_fen, line.fulamt_ownpay_fen,
                                                        line.overlmt_fen, line.preselfpay_fen, line.inscp_scp_fen, line.chrgitm_lv,
                                                        line.med_chrgitm_type, Decimal(str(line.selfpay_prop)), line.pric_uplmt_fen,
                                                        line.lmt_used_flag, line.memo), verdict)
                    for line in lines))
    home = homes(visit.insuplc_admdvs)
    answer = home.settle(session, facts, post=post, setl_id=new_id(caller.mdtrtarea_admvs), msgid=caller.msgid, where=where,
                         person=person)
    out = answer.out
    now = answer.setl_time or now
    row = SettlementRow(
        setl_id=answer.setl_id, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no, fixmedins_code=caller.fixmedins_code,
        insutype=visit.insutype, psn_type=answer.psn_type, cvlserv_flag=answer.cvlserv_flag,
        med_type=med_type, kind=visit.kind, setl_time=now, year=care_day.year, refd_setl_flag="0",
        revs_setl_id=None, mid_setl_flag="1" if request.mid_setl else "0",
        medins_setl_id=caller.msgid, mdtrt_cert_type=request.cert_type, clr_type=CLR_TYPE[visit.kind], clr_way="1",
        clr_optins=visit.insuplc_admdvs, mdtrtarea_admvs=visit.mdtrtarea_admvs, invono=request.invono,
        medfee_sumamt=out.medfee_sumamt, fulamt_ownpay_amt=out.fulamt_ownpay_amt, overlmt_selfpay=out.overlmt_selfpay,
        preselfpay_amt=out.preselfpay_amt, inscp_scp_amt=out.inscp_scp_amt, act_pay_dedc=out.act_pay_dedc, hifp_pay=out.hifp_pay,
        pool_prop_selfpay=out.pool_prop_selfpay, cvlserv_pay=out.cvlserv_pay, hifes_pay=0, hifmi_pay=out.hifmi_pay,
        hifob_pay=out.hifob_pay, maf_pay=out.maf_pay, oth_pay=0, fund_pay_sumamt=out.fund_pay_sumamt, psn_part_amt=out.psn_part_amt,
        acct_pay=out.acct_pay, acct_mulaid_pay=out.acct_mulaid_pay, psn_cash_pay=out.psn_cash_pay, hosp_part_amt=0, balc=out.balc,
        ytd_otp_dedc=out.ytd_delta.otp_dedc, ytd_hifp_otp=out.ytd_delta.hifp_otp, ytd_inscp_self=out.ytd_delta.inscp_self,
        ytd_admission=1 if answer.counts_admission else 0, opsp_dise_code=answer.opsp_dise_code, ytd_opsp_dedc=out.chronic_delta.dedc,
        setldetail=json.dumps([fund_json(f) for f in out.funds], ensure_ascii=False), opter=caller.opter, opter_name=caller.opter_name,
        paid_by=answer.paid_by,
    )
    if post:
        sql.execute(session, INSERT_SETTLEMENT, **sql.as_params(row))
        # the place of care's side of the posting: the home's share (its funds and accounts; on this node, posted by
        # home_settle under the same number), the patient's cash and the institution's claim
        posting = answer.posting or ledger.Posting(row.setl_id, visit.psn_no)
        if answer.paid_by:
            posting.add(f"clearing:{answer.paid_by}", home_share(out))
        posting.add("cash", out.psn_cash_pay)
        posting.add(f"medins:{caller.fixmedins_code}", -out.medfee_sumamt)
        posting.write(session)
        sql.execute_many(session, SETTLE_LINE, [{"id": line.id, "setl_id": row.setl_id} for line in lines])
        if dispensed:
            prescription.claim(session, dispensed, fixmedins_code=caller.fixmedins_code, setl_id=row.setl_id, where=where)
        if visit.kind == "inpatient":
            visit.dedc_paid_fen += out.act_pay_dedc
            if answer.counts_admission:
                visit.admission_no = answer.admission_no
            if not request.mid_setl:
                visit.status = "settled"
        else:
            visit.status = "settled"
        sql.execute(session, UPDATE_VISIT, mdtrt_id=visit.mdtrt_id, status=visit.status, dedc_paid_fen=visit.dedc_paid_fen,
                    admission_no=visit.admission_no)
        home.settled(session, row)
        reviewing.record(session, verdict, setl_id=row.setl_id, visit=visit, fixmedins_code=caller.fixmedins_code, at=now)
    warning = "; ".join(filter(None, (answer.warning, verdict.warning)))
    return {"setlinfo": setlinfo(row, person), "setldetail": wire_detail(json.loads(row.setldetail))}, warning


def care_day_of(visit: Any) -> date:
    """The day of care: the visit's begin (a stay's admission), never later than today."""
    return min(visit.begntime.date(), clock.today())


def later_settlements(session: Session, original: Any) -> list[tuple[str, str]]:
    """The person's settlements of the same year, standing, settled after this one (latest first), with their
    institutions: they read the totals it moved. "After" is (setl_time, setl_id), the order they are listed in, so
    two settlements of the same instant never name each other."""
    later = or_(Settlement.setl_time > original.setl_time,
                and_(Settlement.setl_time == original.setl_time, Settlement.setl_id > original.setl_id))
    stmt = (select(Settlement.setl_id, Settlement.fixmedins_code)
            .where(Settlement.psn_no == original.psn_no, Settlement.year == original.year, Settlement.refd_setl_flag == "0",
                   Settlement.revs_setl_id.is_(None), later)
            .order_by(Settlement.setl_time.desc(), Settlement.setl_id.desc()))
    return [(setl_id, code) for setl_id, code in session.execute(stmt)]


def _ytd(row: Any) -> engine.YearToDate:
    return engine.YearToDate(otp_dedc=row.otp_dedc, hifp_otp=row.hifp_otp, hifp=row.hifp, hifob=row.hifob, cvlserv=row.cvlserv,
                             hifmi=row.hifmi, maf=row.maf, inscp_self=row.inscp_self)


def _apply_totals(ytd: Any, row: Any, sign: int) -> None:
    """Post a settlement's year-to-date changes (sign -1 undoes them)."""
    ytd.otp_dedc += sign * row.ytd_otp_dedc
    ytd.hifp_otp += sign * row.ytd_hifp_otp
    ytd.hifp += sign * row.hifp_pay
    ytd.hifob += sign * row.hifob_pay
    ytd.cvlserv += sign * row.cvlserv_pay
    ytd.hifmi += sign * row.hifmi_pay
    ytd.maf += sign * row.maf_pay
    ytd.inscp_self += sign * row.ytd_inscp_self
    ytd.admissions += sign * row.ytd_admission
    ytd.settlements += sign


def _apply_chronic_totals(total: Any, row: Any, sign: int) -> None:
    """Post a med_type 14 settlement's change to its disease's year-to-date row (sign -1 undoes it)."""
    total.dedc += sign * row.ytd_opsp_dedc
    total.hifp += sign * row.hifp_pay
    total.settlements += sign


def fund_json(fund: engine.FundPayment) -> dict[str, Any]:
    return {"fund_pay_type": fund.fund_pay_type, "fund_pay_type_name": fund.name, "inscp_scp_amt": fund.inscp_scp_amt,
            "crt_payb_lmt_amt": fund.crt_payb_lmt_amt, "fund_payamt": fund.fund_payamt, "setl_proc_info": fund.setl_proc_info}


AMOUNTS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay",
           "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
           "psn_cash_pay", "hosp_part_amt", "balc", "acct_mulaid_pay")


def setlinfo(row: Any, person: Any) -> dict[str, Any]:
    """``setlinfo`` as 2206/2207/2303/2304 answer it (amounts in yuan, 2 places)."""
    info: dict[str, Any] = {
        "mdtrt_id": row.mdtrt_id, "setl_id": row.setl_id, "psn_no": row.psn_no, "psn_name": person.psn_name,
        "psn_cert_type": person.psn_cert_type, "certno": person.certno, "gend": person.gend, "naty": person.naty,
        "brdy": clock.fmt_date(person.brdy), "age": registry.age_in_years(person.brdy, row.setl_time.date()), "insutype": row.insutype,
        "psn_type": row.psn_type, "cvlserv_flag": row.cvlserv_flag, "setl_time": clock.fmt_datetime(row.setl_time),
        "mdtrt_cert_type": row.mdtrt_cert_type, "med_type": row.med_type,
    }
    for name in AMOUNTS:
        info[name] = yuan(getattr(row, name))
    info["pool_prop_selfpay"] = Decimal(str(row.pool_prop_selfpay)).quantize(Decimal("0.0001"))
    info.update({"medins_setl_id": row.medins_setl_id, "clr_optins": row.clr_optins, "clr_way": row.clr_way, "clr_type": row.clr_type})
    return info


def wire_detail(detail: list[dict[str, Any]], sign: int = 1) -> list[dict[str, Any]]:
    return [{**d, "inscp_scp_amt": yuan(sign * d["inscp_scp_amt"]), "fund_payamt": yuan(sign * d["fund_payamt"]),
             # settlements stored before every fund had a limit: an uncapped fund's limit is the amount it applied to
             "crt_payb_lmt_amt": yuan(d["crt_payb_lmt_amt"] if d["crt_payb_lmt_amt"] is not None else d["inscp_scp_amt"])} for d in detail]


# What domains above this one do when a settlement is reversed, inside the reversal's transaction and before anything of
# it is written (credit care cancels the bank's advance of the cash part, or refuses); composed by yibao.app.
REVERSAL_HOOKS: list[Callable[[Session, Any], None]] = []


def on_reversal(hook: Callable[[Session, Any], None]) -> None:
    if hook not in REVERSAL_HOOKS:
        REVERSAL_HOOKS.append(hook)


def reverse(session: Session, caller: Caller, *, setl_id: str, mdtrt_id: str, psn_no: str, homes: Callable[[str], Home],
            where: str = "input.data"
            ) -> dict[str, Any]:
    """2208 / 2305 / 2103: compensating entries; totals, balances and fee lines restored exactly."""
    original = sql.first(session, SETTLEMENT_LOCKED, setl_id=setl_id)
    if original is None or original.fixmedins_code != caller.fixmedins_code:
        raise NotFound(f"no settlement {setl_id} at this institution", field=f"{where}.setl_id")
    if original.mdtrt_id != mdtrt_id:
        raise InputError(f"settlement {setl_id} belongs to visit {original.mdtrt_id}", field=f"{where}.mdtrt_id")
    if psn_no and original.psn_no != psn_no:
        raise InputError(f"settlement {setl_id} belongs to another person", field=f"{where}.psn_no")
    if original.refd_setl_flag == "1":
        raise InputError(f"{setl_id} is itself a reversal", field=f"{where}.setl_id")
    if original.revs_setl_id:
        raise Conflict(f"settlement {setl_id} was already reversed by {original.revs_setl_id}", field=f"{where}.setl_id")
    visit = load_visit(session, caller, mdtrt_id, psn_no, where, lock=True)
    if not original.paid_by:
        # the person's year row first, locked: no settlement of theirs commits between the check below and the undoing
        ledger.year_total(session, original.psn_no, original.year, lock=True)
    if original.kind == "inpatient":
        # A stay moved what every later settlement of the year read (the admission number, the deductible, the caps and
        # the catastrophic threshold): reversing it alone would leave those settled on totals that no longer hold.
        # Refuse, naming them; the counter reverses them (latest first), then this one, and settles them again.
        # Only this institution's settlements are named: another's numbers (and that the person went there) are not
        # this counter's to see; those are counted, and their institutions reverse them. The latest is named (it is
        # the one to reverse next; the next refusal names the one after), so the answer fits err_msg's 200 characters.
        later = later_settlements(session, original)
        if later:
            here = [number for number, code in later if code == caller.fixmedins_code]
            elsewhere = len(later) - len(here)
            if here:
                todo = f"reverse {here[0]} first ({len(later)} later: {len(here)} here, {elsewhere} at other institutions)"
            else:
                todo = f"{elsewhere} later settlement(s) at other institutions must be reversed there first"
            raise InputError(f"settlement {setl_id} is not the person's latest of {original.year}: {todo}",
                             field=f"{where}.setl_id")
    for hook in REVERSAL_HOOKS:
        hook(session, original)
    reversal = msgspec.structs.replace(original, setl_id=new_id(caller.mdtrtarea_admvs), setl_time=clock.now(), refd_setl_flag="1",
                                       revs_setl_id=original.setl_id, medins_setl_id=caller.msgid, opter=caller.opter,
                                       opter_name=caller.opter_name)
    for name in _NEGATED:
        setattr(reversal, name, -getattr(original, name))
    # the home's side first (on a federation another province's node: if it does not answer, nothing here changed)
    home = homes(original.paid_by)
    reversal.balc, reversal.setl_id = home.reverse(session, original, reversal.setl_id, caller.msgid, where)
    posted = ledger.entries(session, setl_id)
    sql.execute(session, INSERT_SETTLEMENT, **sql.as_params(reversal))
    sql.execute(session, MARK_REVERSED, setl_id=original.setl_id, revs_setl_id=reversal.setl_id)
    posting = ledger.Posting(reversal.setl_id, original.psn_no)
    for account, amount in posted:
        posting.add(account, -amount)
    posting.write(session)
    home.settled(session, reversal)
    sql.execute(session, REOPEN_LINES, setl_id=setl_id)
    prescription.release(session, setl_id)  # what it dispensed may be dispensed again (until it expires)
    if visit.kind == "inpatient":
        visit.dedc_paid_fen -= original.act_pay_dedc
        if original.ytd_admission:
            visit.admission_no = 0
        visit.status = "discharged" if visit.endtime else "admitted"
    else:
        # the visit's other settlements stand (a visit is settled in parts): it stays settled while one does
        visit.status = "settled" if sql.rows(session, STANDING_SETTLEMENT, mdtrt_id=visit.mdtrt_id) else "registered"
    sql.execute(session, UPDATE_VISIT, mdtrt_id=visit.mdtrt_id, status=visit.status, dedc_paid_fen=visit.dedc_paid_fen,
                admission_no=visit.admission_no)
    person = registry.person(session, original.psn_no, where)
    return {"setlinfo": setlinfo(reversal, person), "setldetail": wire_detail(json.loads(original.setldetail), -1)}


_NEGATED = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay",
            "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
            "acct_mulaid_pay", "psn_cash_pay", "hosp_part_amt", "ytd_otp_dedc", "ytd_hifp_otp", "ytd_inscp_self", "ytd_admission",
            "ytd_opsp_dedc")
