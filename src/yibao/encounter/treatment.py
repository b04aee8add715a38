"""2001 人员待遇享受检查: may this person be treated under this insurance type and medical type at this institution?

`facts` reads what the checks need (indexed reads of one person); `assess` is pure and answers one `Finding` per
check that did not pass: the check's code (``trt_chk_type``, the 1901 table of that name), the fund it concerns,
whether benefits are still enjoyed (``trt_enjymnt_flag`` 1: a warning, 0: not paid) and the reason (``trt_chk_rslt``).
No finding means all is well: the answer's ``trtinfo`` is then an empty list.

The checks: enrolment in the insurance type (12) active and not paused on the day (11); contribution arrears (13:
employees in service, the months before the month of care as ``treatment.yaml`` says; residents, the year's
contribution); care away from the insured region (21: the filing in force for the place of care, its type and
validity; without one, or on a temporary trip, care in another province is paid at the policy's reduced ratio); a
chronic-disease registration where ``med_type`` 14 needs one
(31); a stay still open at any institution (41).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.chronic import service as chronic
from yibao.core import clock
from yibao.core.errors import NotFound
from yibao.encounter.models import Visit
from yibao.filing import service as filing
from yibao.filing.rows import FilingRow
from yibao.policy.parameters import PolicyError
from yibao.policy.service import category_of, policy_for
from yibao.registry import service as registry
from yibao.registry.models import Contribution, Institution

# trt_chk_type: the check's code and name (codes/data/code_tables.yaml serves them through 1901)
CHECKS = {"11": "参保状态", "12": "险种参保", "13": "缴费状态", "21": "异地就医备案", "31": "门诊慢特病备案", "41": "在院状态"}
CHRONIC_MED_TYPE = "14"


@dataclass(frozen=True)
class Enrolled:
    insutype: str
    psn_type: str
    psn_insu_stas: str
    psn_insu_date: date
    paus_insu_date: date | None
    insuplc_admdvs: str


@dataclass(frozen=True)
class Facts:
    """Everything the checks read, gathered once."""

    insutype: str
    med_type: str
    day: date
    enrolments: tuple[Enrolled, ...]  # of the insurance type asked about
    paid_months: frozenset[str]  # yyyyMM with a contribution to the insurance type
    arrears_months: int  # from the insured region's policy (treatment.yaml)
    institution_admdvs: str
    dise_codg: str
    registered: frozenset[str]  # chronic diseases registered and in force on the day
    open_stays: tuple[tuple[str, str], ...]  # (mdtrt_id, fixmedins_code) of stays still open
    filing: FilingRow | None = None  # the filing for the place of care in force on the day (care away only)


@dataclass(frozen=True)
class Finding:
    code: str
    enjoyed: bool
    message: str


def months_before(day: date, count: int) -> list[str]:
    """The ``count`` whole months before the month of ``day`` (yyyyMM, most recent first)."""
    out, first = [], day.replace(day=1)
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(f"{first:%Y%m}")
    return out


def assess(f: Facts) -> list[Finding]:
    """The checks that did not pass (pure: no storage)."""
    current = [e for e in f.enrolments if e.psn_insu_date <= f.day]
    if not f.enrolments:
        return [Finding("12", False, f"未参加{f.insutype}险种，不享受该险种待遇")]
    found: list[Finding] = []
    enrolment = max(current, key=lambda e: e.psn_insu_date) if current else None
    if enrolment is None:
        first = min(e.psn_insu_date for e in f.enrolments)
        found.append(Finding("11", False, f"{f.insutype}险种自{first.isoformat()}起参保，就医日期尚未参保"))
    elif enrolment.psn_insu_stas != "1" and (enrolment.paus_insu_date is None or enrolment.paus_insu_date <= f.day):
        since = f"自{enrolment.paus_insu_date.isoformat()}起" if enrolment.paus_insu_date else ""
        state = {"2": "暂停参保", "4": "终止参保"}.get(enrolment.psn_insu_stas, "未正常参保")
        found.append(Finding("11", False, f"{f.insutype}险种{since}{state}（参保状态{enrolment.psn_insu_stas}），不享受待遇"))
    if enrolment is not None:
        if f.insutype == "310" and enrolment.psn_type.startswith("11") and f.arrears_months > 0:
            start = f"{enrolment.psn_insu_date:%Y%m}"
            due = [m for m in months_before(f.day, f.arrears_months) if m >= start]
            missing = [m for m in due if m not in f.paid_months]
            if missing:
                stopped = len(missing) >= f.arrears_months
                found.append(Finding("13", not stopped, f"欠缴{'、'.join(sorted(missing))}月份职工医保费" +
                                     (f"，连续{f.arrears_months}个月未缴费，暂停待遇" if stopped else "，请及时补缴")))
        elif f.insutype == "390" and not any(m.startswith(str(f.day.year)) for m in f.paid_months):
            found.append(Finding("13", False, f"未缴纳{f.day.year}年度城乡居民医保费，不享受待遇"))
        home = enrolment.insuplc_admdvs
        if home != f.institution_admdvs:
            across = home[:2] != f.institution_admdvs[:2]
            where = f"{'跨省' if across else '省内'}异地就医"
            if f.filing is None:
                found.append(Finding("21", True, f"{where}未备案：参保地{home}，就医地{f.institution_admdvs}" +
                                                 ("，按未备案降低统筹基金支付比例" if across else "")))
            else:
                full = filing.full_ratio(f.filing)
                terms = ("按参保地政策支付" if full or not across else
                         "转诊就医按转诊备案降低后的统筹基金支付比例" if filing.is_referral(f.filing) else
                         "临时外出就医按降低后的统筹基金支付比例")
                found.append(Finding("21", True, f"{where}{filing.describe(f.filing)}，备案号{f.filing.trt_dcla_detl_sn}：{terms}"))
    if f.med_type == CHRONIC_MED_TYPE:
        wanted = f.dise_codg.strip().upper()
        if wanted and wanted not in f.registered:
            found.append(Finding("31", False, f"{wanted}未办理门诊慢特病备案或不在有效期内（{f.day.isoformat()}），请先备案(2503)"))
        elif not wanted and not f.registered:
            found.append(Finding("31", False, "门诊慢特病就医须先办理慢特病备案(2503)"))
    for mdtrt_id, where in f.open_stays:
        found.append(Finding("41", False, f"在{where}住院未出院（就诊ID {mdtrt_id}），请先办理出院"))
    return found


def facts(session: Session, *, psn_no: str, insutype: str, fixmedins_code: str, med_type: str, day: date, dise_codg: str,
          where: str = "input.data") -> Facts:
    institution = session.get(Institution, fixmedins_code)
    if institution is None:
        raise NotFound(f"{fixmedins_code[:30]} is not a designated institution", field=f"{where}.fixmedins_code")
    return facts_at(session, psn_no=psn_no, insutype=insutype, place=institution.admdvs, med_type=med_type, day=day,
                    dise_codg=dise_codg, where=where)


def facts_at(session: Session, *, psn_no: str, insutype: str, place: str, med_type: str, day: date, dise_codg: str,
             where: str = "input.data") -> Facts:
    """What the checks read about a person, for care in the region ``place`` (on a federation the home node answers
    this for the place of care: it holds the person's enrolments, contributions, registrations and filings)."""
    registry.person(session, psn_no, where)
    rows = [e for e in registry.enrolments_of(session, psn_no) if e.insutype == insutype]
    enrolments = tuple(Enrolled(e.insutype, e.psn_type, e.psn_insu_stas, e.psn_insu_date, e.paus_insu_date, e.insuplc_admdvs) for e in rows)
    arrears, paid = 0, frozenset[str]()
    if rows:
        latest = max(rows, key=lambda e: e.psn_insu_date)
        try:
            arrears = policy_for(latest.insuplc_admdvs, insutype if insutype in ("310", "390") else "310",
                                 category_of(insutype, latest.psn_type), day).employee_arrears_months
        except PolicyError:
            arrears = 0  # a region without policy data checks no arrears (settlement refuses it anyway)
        since = min([f"{day.year}01", *months_before(day, arrears)])  # the months the checks look at
        paid = frozenset(session.scalars(select(Contribution.cntr_ym).where(Contribution.psn_no == psn_no,
                                                                            Contribution.insutype == insutype,
                                                                            Contribution.cntr_ym >= since)))
    registered = frozenset(r.opsp_dise_code for r in chronic.registered(session, psn_no, day)
                           if r.begndate <= day and r.insutype == insutype)
    stays = tuple(session.execute(select(Visit.mdtrt_id, Visit.fixmedins_code).where(Visit.psn_no == psn_no, Visit.kind == "inpatient",
                                                                                     Visit.status == "admitted")).tuples())
    away = any(e.insuplc_admdvs != place for e in enrolments)
    found = filing.in_force(session, psn_no, place, day) if away else None
    return Facts(insutype=insutype, med_type=med_type, day=day, enrolments=enrolments, paid_months=paid, arrears_months=arrears,
                 institution_admdvs=place, dise_codg=dise_codg, registered=registered, open_stays=stays, filing=found)


def trtinfo(psn_no: str, insutype: str, begin: datetime, end: datetime | None, findings: list[Finding]) -> list[dict[str, Any]]:
    """``trtinfo[]`` as clients read it: every field a string or a date, the dates always set (C# models hold them as DateTime)."""
    fund = f"{insutype}100" if insutype.isdigit() and len(insutype) == 3 else insutype
    return [{"psn_no": psn_no, "trt_chk_type": f.code, "trt_chk_type_name": CHECKS[f.code], "fund_pay_type": fund,
             "trt_enjymnt_flag": "1" if f.enjoyed else "0", "begndate": clock.fmt_date(begin.date()),
             "enddate": clock.fmt_date((end or begin).date()), "trt_chk_rslt": f.message[:500]} for f in findings]
