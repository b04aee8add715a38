"""Registering a person's chronic or special disease (2503), cancelling it (2504), listing (5301), and the question
settlement asks: which registration of this disease is in force for the person on a day.

A registration names a disease of the 1309 catalogue (门诊慢特病病种目录: national codes such as M03900 高血压病), the
institution and doctor who assessed it, and the period it is in force. Only a disease the insured region's policy pays
as chronic care (``policy/data/<admdvs>/chronic.yaml``) can be registered: a registration that could never be settled
helps nobody.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Date, bindparam, or_, select
from sqlalchemy.orm import Session

from yibao.chronic.models import ChronicRegistration
from yibao.chronic.rows import DiseaseRow, RegistrationRow
from yibao.codes.models import DiseaseCode
from yibao.core import clock
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.policy.parameters import PolicyError
from yibao.policy.service import category_of, policy_for
from yibao.registry import service as registry
from yibao.registry.models import Institution
from yibao.store import sql

OPSP = "opsp"  # disease_code.kind of the 1309 catalogue
_REGISTRATION = ChronicRegistration.__table__
_DISEASE = DiseaseCode.__table__
_ON = bindparam("on", type_=Date())
IN_FORCE = sql.Query(RegistrationRow, sql.select_of(RegistrationRow, _REGISTRATION)
                     .where(_REGISTRATION.c.psn_no == bindparam("psn_no"), _REGISTRATION.c.opsp_dise_code == bindparam("opsp_dise_code"),
                            _REGISTRATION.c.status == "active", _REGISTRATION.c.begndate <= _ON,
                            or_(_REGISTRATION.c.enddate.is_(None), _REGISTRATION.c.enddate >= _ON))
                     .order_by(_REGISTRATION.c.begndate.desc()))
CATALOGUE = sql.Query(DiseaseRow, sql.select_of(DiseaseRow, _DISEASE).where(_DISEASE.c.kind == OPSP, _DISEASE.c.code == bindparam("code"),
                                                                           _DISEASE.c.vali_flag == "1"))


def _serial(admdvs: str) -> str:
    """30 characters like the platform's other numbers: region (6) + time (14) + 10 random digits."""
    return f"{admdvs}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}"


def catalogue_entry(session: Session, code: str) -> DiseaseRow | None:
    """The 1309 catalogue's row of a disease code (valid ones only)."""
    return sql.first(session, CATALOGUE, code=code.strip().upper())


def in_force(session: Session, psn_no: str, opsp_dise_code: str, on: date) -> RegistrationRow | None:
    """The person's registration of the disease in force on the day, if any (an indexed read: settlement's hot path)."""
    return sql.first(session, IN_FORCE, psn_no=psn_no, opsp_dise_code=opsp_dise_code.strip().upper(), on=on)


def registered(session: Session, psn_no: str, on: date) -> list[ChronicRegistration]:
    """The person's registrations that stand (not cancelled) and have not ended before the day."""
    stmt = (select(ChronicRegistration).where(ChronicRegistration.psn_no == psn_no, ChronicRegistration.status == "active")
            .where((ChronicRegistration.enddate.is_(None)) | (ChronicRegistration.enddate >= on))
            .order_by(ChronicRegistration.begndate, ChronicRegistration.opsp_dise_code))
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Filing:
    """2503 ``data``, dates parsed."""

    psn_no: str
    insutype: str
    opsp_dise_code: str
    opsp_dise_name: str
    tel: str
    addr: str
    insu_optins: str
    ide_fixmedins_no: str
    ide_fixmedins_name: str
    hosp_ide_date: date
    diag_dr_codg: str
    diag_dr_name: str
    begndate: date
    enddate: date | None


def register(session: Session, filing: Filing, *, fixmedins_code: str, admdvs: str, opter: str, opter_name: str,
             where: str = "input.data") -> ChronicRegistration:
    """2503: a registration of one disease; refused for a disease outside the catalogue or the insured region's policy,
    a person not insured under ``insutype``, or a period that overlaps a standing registration of the same disease."""
    person = registry.person(session, filing.psn_no, where)
    today = clock.today()
    enrolment = registry.active_enrolment(registry.enrolments_of(session, person.psn_no), filing.insutype, today, where)
    if filing.insu_optins != enrolment.insuplc_admdvs:
        raise InputError(f"the person is insured in {enrolment.insuplc_admdvs}, not {filing.insu_optins[:6]} (1101 insuplc_admdvs)",
                         field=f"{where}.insu_optins")
    code = filing.opsp_dise_code.strip().upper()
    entry = catalogue_entry(session, code)
    if entry is None:
        raise InputError(f"'{code[:30]}' is not a disease of the chronic and special disease catalogue (1309)",
                         field=f"{where}.opsp_dise_code")
    try:
        terms = policy_for(enrolment.insuplc_admdvs, filing.insutype, category_of(filing.insutype, enrolment.psn_type), today).chronic
    except PolicyError as error:
        raise InputError(f"the insured region's policy cannot pay chronic care: {error.message}", field=f"{where}.insutype") from None
    if code not in terms:
        raise InputError(f"the policy of {enrolment.insuplc_admdvs} pays no chronic care for {code} {entry.name} under insutype "
                         f"{filing.insutype}", field=f"{where}.opsp_dise_code")
    assessor = session.get(Institution, filing.ide_fixmedins_no.strip())
    if assessor is None:
        raise NotFound(f"{filing.ide_fixmedins_no[:30]} is not a designated institution", field=f"{where}.ide_fixmedins_no")
    if filing.hosp_ide_date > today:
        raise InputError(f"{filing.hosp_ide_date.isoformat()} is in the future", field=f"{where}.hosp_ide_date")
    if filing.begndate < filing.hosp_ide_date:
        raise InputError(f"{filing.begndate.isoformat()} is before the assessment ({filing.hosp_ide_date.isoformat()})",
                         field=f"{where}.begndate")
    if filing.enddate is not None and filing.enddate < filing.begndate:
        raise InputError(f"{filing.enddate.isoformat()} is before begndate {filing.begndate.isoformat()}", field=f"{where}.enddate")
    for other in session.scalars(select(ChronicRegistration).where(ChronicRegistration.psn_no == person.psn_no,
                                                                    ChronicRegistration.opsp_dise_code == code,
                                                                    ChronicRegistration.status == "active")):
        if (other.enddate is None or other.enddate >= filing.begndate) and (filing.enddate is None or filing.enddate >= other.begndate):
            raise Conflict(f"{code} is already registered for the person from {other.begndate.isoformat()} "
                           f"(trt_dcla_detl_sn {other.trt_dcla_detl_sn}); cancel it (2504) first", field=f"{where}.opsp_dise_code")
    row = ChronicRegistration(
        trt_dcla_detl_sn=_serial(admdvs), psn_no=person.psn_no, insutype=filing.insutype, opsp_dise_code=code, opsp_dise_name=entry.name,
        tel=filing.tel[:50], addr=filing.addr[:200], insu_optins=filing.insu_optins, ide_fixmedins_no=assessor.fixmedins_code,
        ide_fixmedins_name=assessor.fixmedins_name, hosp_ide_date=filing.hosp_ide_date, diag_dr_codg=filing.diag_dr_codg[:30],
        diag_dr_name=filing.diag_dr_name[:50], begndate=filing.begndate, enddate=filing.enddate, status="active",
        fixmedins_code=fixmedins_code, opter=opter[:30], opter_name=opter_name[:50], filed_at=clock.now(), cancelled_at=None,
        cancel_memo="")
    session.add(row)
    return row


def cancel(session: Session, *, trt_dcla_detl_sn: str, psn_no: str, memo: str, fixmedins_code: str, where: str = "input.data") -> None:
    """2504: the filing institution cancels a registration; settlements made under it keep their reference to it."""
    row = session.get(ChronicRegistration, trt_dcla_detl_sn.strip(), with_for_update=True)
    if row is None or row.fixmedins_code != fixmedins_code:
        raise NotFound(f"no registration {trt_dcla_detl_sn[:30]} filed by this institution", field=f"{where}.trt_dcla_detl_sn")
    if row.psn_no != psn_no:
        raise InputError(f"registration {row.trt_dcla_detl_sn} belongs to another person", field=f"{where}.psn_no")
    if row.status == "cancelled":
        raise Conflict(f"registration {row.trt_dcla_detl_sn} was cancelled on {clock.fmt_datetime(row.cancelled_at)}",
                       field=f"{where}.trt_dcla_detl_sn")
    row.status, row.cancelled_at, row.cancel_memo = "cancelled", clock.now(), memo[:500]


def wire(row: ChronicRegistration) -> dict[str, Any]:
    """One registration as 5301 answers it (``feedetail[]``): the spec's four fields first, then the rest of the filing."""
    return {
        "opsp_dise_code": row.opsp_dise_code, "opsp_dise_name": row.opsp_dise_name, "begndate": clock.fmt_date(row.begndate),
        "enddate": clock.fmt_date(row.enddate), "trt_dcla_detl_sn": row.trt_dcla_detl_sn, "psn_no": row.psn_no, "insutype": row.insutype,
        "insu_optins": row.insu_optins, "ide_fixmedins_no": row.ide_fixmedins_no, "ide_fixmedins_name": row.ide_fixmedins_name,
        "hosp_ide_date": clock.fmt_date(row.hosp_ide_date), "diag_dr_codg": row.diag_dr_codg, "diag_dr_name": row.diag_dr_name,
    }
