"""Filing care away from home (异地就医备案): by the person in the app, by a hospital's referral (2501), cancelled (2502
or in the app), and the question settlement and 2001 ask: which filing for this place of care is in force on a day.

Filing types (our codes: the interface notes give none for 异地就医备案; the kinds are those of 医保发〔2022〕22号 第7条):

- ``1`` 异地长期居住 (long-term residence away, the retired living away included), ``2`` 常驻异地工作 (posted to work
  away), ``3`` 异地转诊 (a referral, filed by the referring hospital with 2501), ``4`` 其他临时外出就医 (a temporary trip).
- Types 1 and 2 in force give the full ratio of the insured region's policy; a referral its own smaller reduction
  (``pool_ratio.referral_reduction``); a temporary trip settles like unfiled care (``pool_ratio.unfiled_reduction``).

The target is a region code: a province's (``440000``) covers every place of care in it, a city's (``440300``) the
city, any other code that county. One filing in force per person and target: a second one overlapping it in time is
refused until the first is cancelled. Cancelling keeps the row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, or_, select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.filing.models import CareAwayFiling
from yibao.filing.rows import FilingRow
from yibao.registry import service as registry
from yibao.registry.models import Institution
from yibao.store import sql

TYPES = {"1": "异地长期居住", "2": "常驻异地工作", "3": "异地转诊", "4": "其他临时外出就医"}
# the types that give the home ratio (a referral has its own reduction, a temporary trip is paid as unfiled care)
FULL_RATIO = frozenset({"1", "2"})
# what a person may file in the app (a referral comes from the referring hospital, 2501)
BY_PERSON = ("1", "2", "4")
REFERRAL, TRIP = "3", "4"
FROM_INSTITUTION, FROM_APP = "01", "04"  # 申报来源 dcla_souc
SOURCES = {FROM_INSTITUTION: "定点医药机构", FROM_APP: "本人手机办理"}  # what the app shows: Chinese words only
TRIP_DAYS = 183  # a temporary filing without an end date: six months (22号: valid at least six months)

_FILING = CareAwayFiling.__table__
_ON = bindparam("on", type_=Date())
# settlement's hot path: one indexed read of the person's filings for the province, city or county of the place of care;
# the full-ratio types sort first
IN_FORCE = sql.Query(FilingRow, sql.select_of(FilingRow, _FILING)
                     .where(_FILING.c.psn_no == bindparam("psn_no"),
                            _FILING.c.target_admdvs.in_([bindparam("province"), bindparam("city"), bindparam("county")]),
                            _FILING.c.status == "active", _FILING.c.begndate <= _ON,
                            or_(_FILING.c.enddate.is_(None), _FILING.c.enddate >= _ON))
                     .order_by(_FILING.c.filing_type, _FILING.c.begndate.desc()))


def scope(admdvs: str) -> str:
    """The prefix of place codes a target covers: 440000 → 44, 440300 → 4403, 440305 → 440305."""
    if admdvs.endswith("0000"):
        return admdvs[:2]
    if admdvs.endswith("00"):
        return admdvs[:4]
    return admdvs


def covers(target: str, place: str) -> bool:
    return place.startswith(scope(target))


def in_force(session: Session, psn_no: str, place: str, on: date) -> FilingRow | None:
    """The person's filing for the place of care in force on the day, the most favourable first (an indexed read)."""
    return sql.first(session, IN_FORCE, psn_no=psn_no, province=f"{place[:2]}0000", city=f"{place[:4]}00", county=place, on=on)


def full_ratio(filing: FilingRow | None) -> bool:
    return filing is not None and filing.filing_type in FULL_RATIO


def is_referral(filing: FilingRow | None) -> bool:
    return filing is not None and filing.filing_type == REFERRAL


def describe(filing: FilingRow | None) -> str:
    """How 2001 and the app name a filing: type, region and validity."""
    if filing is None:
        return "未备案"
    until = f"至{filing.enddate.isoformat()}" if filing.enddate else "长期有效"
    kind = TYPES.get(filing.filing_type, filing.filing_type)
    return f"已备案（{kind}，备案地{filing.target_admdvs}，{filing.begndate.isoformat()}起{until}）"


def _at(where: str, name: str) -> str:
    """The field at fault: under the transaction's node (``input.refmedin.psn_no``), or bare for the app (``psn_no``)."""
    return f"{where}.{name}" if where else name


def _serial(admdvs: str) -> str:
    """30 characters like the platform's other numbers: region (6) + time (14) + 10 random digits."""
    return f"{admdvs}{clock.now():%Y%m%d%H%M%S}{secrets.randbelow(10**10):010d}"


def region_code(text: str, field: str) -> str:
    code = text.strip()
    if len(code) != 6 or not code.isdigit() or code[:2] in ("00", "99"):
        raise InputError(f"'{code[:20]}'不是六位行政区划代码", field=field)
    return code


@dataclass(frozen=True)
class Request:
    """A filing as the app or 2501 sends it, dates parsed."""

    psn_no: str
    insutype: str
    filing_type: str
    target_admdvs: str
    begndate: date
    enddate: date | None
    tel: str = ""
    addr: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Referral:
    """2501's referral fields beyond `Request`."""

    diag_code: str
    diag_name: str
    dise_cond_dscr: str
    reflin_medins_no: str
    reflin_medins_name: str
    hosp_agre_refl_flag: str
    refl_type: str
    refl_date: date
    refl_opnn: str


def file(session: Session, request: Request, *, source: str, fixmedins_code: str = "", opter: str = "", opter_name: str = "",
         referral: Referral | None = None, insu_optins: str = "", where: str = "input.data",
         target_field: str = "target_admdvs") -> CareAwayFiling:
    """A filing for care away from the insured region; refused for a place inside that region, a person not insured
    (under ``insutype`` when given), a bad period, or one overlapping a standing filing for the same target."""
    person = registry.person(session, request.psn_no, where)
    today = clock.today()
    enrolments = registry.enrolments_of(session, person.psn_no)
    if request.insutype:
        home = registry.active_enrolment(enrolments, request.insutype, today, where).insuplc_admdvs
    else:
        active = [e for e in enrolments if e.psn_insu_stas == "1"]
        if not active:
            raise InputError("该人员没有正常参保的险种，不能办理异地就医备案", field=_at(where, "psn_no"))
        home = max(active, key=lambda e: e.psn_insu_date).insuplc_admdvs
    if insu_optins and insu_optins != home:
        raise InputError(f"该人员参保地为{home}，不是{insu_optins[:6]}", field=_at(where, "insu_optins"))
    if request.filing_type not in TYPES:
        raise InputError(f"备案类型'{request.filing_type[:6]}'无效（1 异地长期居住，2 常驻异地工作，3 异地转诊，4 其他临时外出就医）",
                         field=_at(where, "filing_type"))
    target = request.target_admdvs
    if covers(target, home) or covers(home, target):
        raise InputError(f"备案地{target}与参保地{home}相同或互相包含：在参保地就医无需备案", field=_at(where, target_field))
    if request.begndate < today - timedelta(days=31):
        raise InputError(f"开始日期{request.begndate.isoformat()}早于一个月前", field=_at(where, "begndate"))
    enddate = request.enddate
    if enddate is None and request.filing_type == TRIP:
        enddate = request.begndate + timedelta(days=TRIP_DAYS)
    if enddate is not None and enddate < request.begndate:
        raise InputError(f"结束日期{enddate.isoformat()}早于开始日期{request.begndate.isoformat()}", field=_at(where, "enddate"))
    for other in session.scalars(select(CareAwayFiling).where(CareAwayFiling.psn_no == person.psn_no,
                                                               CareAwayFiling.target_admdvs == target,
                                                               CareAwayFiling.status == "active")):
        if (other.enddate is None or other.enddate >= request.begndate) and (enddate is None or enddate >= other.begndate):
            raise Conflict(f"已有{other.begndate.isoformat()}起对{target}的{TYPES.get(other.filing_type, '')}备案"
                           f"（{other.trt_dcla_detl_sn}），请先撤销", field=_at(where, target_field))
    r = referral
    row = CareAwayFiling(
        trt_dcla_detl_sn=_serial(home), psn_no=person.psn_no, insutype=request.insutype, filing_type=request.filing_type,
        target_admdvs=target, insu_optins=home, begndate=request.begndate, enddate=enddate, status="active", dcla_souc=source,
        fixmedins_code=fixmedins_code, tel=request.tel[:50], addr=request.addr[:200], reason=request.reason[:500],
        diag_code=r.diag_code[:30] if r else "", diag_name=r.diag_name[:300] if r else "",
        dise_cond_dscr=r.dise_cond_dscr[:500] if r else "",
        reflin_medins_no=r.reflin_medins_no[:30] if r else "", reflin_medins_name=r.reflin_medins_name[:200] if r else "",
        hosp_agre_refl_flag=r.hosp_agre_refl_flag[:3] if r else "", refl_type=r.refl_type[:6] if r else "",
        refl_date=r.refl_date if r else None, refl_opnn=r.refl_opnn[:500] if r else "", opter=opter[:30], opter_name=opter_name[:50],
        filed_at=clock.now(), cancelled_at=None, cancel_memo="")
    session.add(row)
    return row


def refer(session: Session, request: Request, referral: Referral, *, insu_optins: str, fixmedins_code: str, opter: str,
          opter_name: str, where: str = "input.refmedin") -> CareAwayFiling:
    """2501: the referring hospital files a referral to an institution of ``target_admdvs``. An institution this node
    knows must lie in that region; one it does not know (another node's) is taken as sent."""
    known = session.get(Institution, referral.reflin_medins_no.strip())
    if known is not None and not covers(request.target_admdvs, known.admdvs):
        raise InputError(f"转往机构{known.fixmedins_code}位于{known.admdvs}，不在就医地{request.target_admdvs}",
                         field=_at(where, "mdtrtarea_admdvs"))
    if referral.refl_date > clock.today():
        raise InputError(f"转院日期{referral.refl_date.isoformat()}晚于今天", field=_at(where, "refl_date"))
    if known is not None and not referral.reflin_medins_name.strip():
        referral = Referral(**{**referral.__dict__, "reflin_medins_name": known.fixmedins_name})
    return file(session, request, source=FROM_INSTITUTION, fixmedins_code=fixmedins_code, opter=opter, opter_name=opter_name,
                referral=referral, insu_optins=insu_optins, where=where, target_field="mdtrtarea_admdvs")


def cancel(session: Session, *, trt_dcla_detl_sn: str, psn_no: str, memo: str, fixmedins_code: str = "",
           where: str = "input.data") -> CareAwayFiling:
    """2502 (``fixmedins_code``: only a filing that institution made) or the person in the app (``""``: only their own
    filings). The row stays, cancelled; settlements made under it keep their figures."""
    row = session.get(CareAwayFiling, trt_dcla_detl_sn.strip(), with_for_update=True)
    if row is None or (fixmedins_code and row.fixmedins_code != fixmedins_code):
        raise NotFound(f"没有{'本机构办理的' if fixmedins_code else ''}备案{trt_dcla_detl_sn[:30]}", field=_at(where, "trt_dcla_detl_sn"))
    if row.psn_no != psn_no:
        if not fixmedins_code:
            raise NotFound(f"没有备案{trt_dcla_detl_sn[:30]}", field=_at(where, "trt_dcla_detl_sn"))
        raise InputError(f"备案{row.trt_dcla_detl_sn}不属于该人员", field=_at(where, "psn_no"))
    if not fixmedins_code and row.dcla_souc != FROM_APP:
        raise Conflict(f"备案{row.trt_dcla_detl_sn}由定点医药机构办理，请到该机构撤销", field=_at(where, "trt_dcla_detl_sn"))
    if row.status == "cancelled":
        raise Conflict(f"备案{row.trt_dcla_detl_sn}已于{clock.fmt_datetime(row.cancelled_at)}撤销", field=_at(where, "trt_dcla_detl_sn"))
    row.status, row.cancelled_at, row.cancel_memo = "cancelled", clock.now(), memo[:500]
    return row


def filings_of(session: Session, psn_no: str) -> list[CareAwayFiling]:
    """Every filing of the person, newest first (cancelled and ended ones too: the app shows the history)."""
    return list(session.scalars(select(CareAwayFiling).where(CareAwayFiling.psn_no == psn_no)
                                .order_by(CareAwayFiling.filed_at.desc(), CareAwayFiling.trt_dcla_detl_sn)))


def shown(row: CareAwayFiling, today: date) -> dict[str, Any]:
    """One filing as the app shows it."""
    state = ("已撤销" if row.status == "cancelled" else "已到期" if row.enddate is not None and row.enddate < today
             else "未生效" if row.begndate > today else "有效")
    return {"trt_dcla_detl_sn": row.trt_dcla_detl_sn, "filing_type": row.filing_type, "filing_type_name": TYPES.get(row.filing_type, ""),
            "target_admdvs": row.target_admdvs, "begndate": clock.fmt_date(row.begndate), "enddate": clock.fmt_date(row.enddate),
            "status": row.status, "state": state, "full_ratio": row.filing_type in FULL_RATIO, "source": SOURCES.get(row.dcla_souc, ""),
            "reflin_medins_name": row.reflin_medins_name, "reason": row.reason, "cancelled_at": clock.fmt_datetime(row.cancelled_at),
            "cancel_memo": row.cancel_memo, "may_cancel": row.status == "active" and row.dcla_souc == FROM_APP}


def regions(session: Session) -> list[str]:
    """Region codes of places of care this node knows (its institutions' regions and their provinces)."""
    places = set(session.scalars(select(Institution.admdvs).distinct()))
    return sorted(places | {f"{p[:2]}0000" for p in places if len(p) == 6})
