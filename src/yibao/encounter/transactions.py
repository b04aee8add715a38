"""Visit and settlement transactions of the national interface.

Outpatient 2201–2208, inpatient 2401/2402/2404/2405 and 2301–2305, pharmacy 2101–2103
(pharmacies may equally use 2201–2207 with med_type 41).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.money import to_fen
from yibao.core.schema import Required
from yibao.credential.service import use_token
from yibao.encounter import queries, service, treatment
from yibao.gateway.contract import Context, TransactionSet
from yibao.gateway.envelope import Answer
from yibao.registry import service as registry

TRANSACTIONS = TransactionSet()


def home_of(ctx: Context) -> Any:
    """Where the person insured in a region is settled: what yibao.app composed, else this node."""
    return ctx.home_of or _LOCAL


_LOCAL = (lambda home: lambda _region: home)(service.LocalHome(use_token))


def caller(ctx: Context) -> service.Caller:
    e = ctx.envelope
    return service.Caller(ctx.fixmedins_code, e.mdtrtarea_admvs, e.msgid, e.opter, e.opter_name)


def amount(value: Any, field: str) -> int:
    fen = to_fen(value, field)
    if fen < 0:
        raise InputError("must not be negative", field=field)
    return fen


def visit_start(ctx: Context, text: str, field: str) -> datetime:
    """A visit's begin time: not in the future (beyond clock skew) and not older than the back-dating the platform allows.

    Fee lines are classified on their own dates, which must lie inside the visit: without a bound here a visit dated years
    back would carry lines past an age restriction the patient has since grown out of."""
    begun = clock.parse_datetime(text, field)
    now = clock.now()
    if begun > now + timedelta(seconds=ctx.settings.signature_window_s):
        raise InputError(f"{clock.fmt_datetime(begun)} is in the future", field=field)
    earliest = now - timedelta(hours=ctx.settings.visit_backdate_h)
    if begun < earliest:
        raise InputError(f"{clock.fmt_datetime(begun)} is more than {ctx.settings.visit_backdate_h} hours ago: a visit is registered "
                         "when it begins (YIBAO_VISIT_BACKDATE_H)", field=field)
    return begun


def fee_window(ctx: Context) -> service.FeeWindow:
    """Fee lines may be dated a little before their visit began and no later than a signature could be (clock skew)."""
    return service.FeeWindow(timedelta(seconds=ctx.settings.fee_time_tolerance_s), timedelta(seconds=ctx.settings.signature_window_s))


def settled(result: tuple[dict, str]) -> Answer:
    output, warning = result
    return Answer(output=output, warn_msg=warning)


def flag(value: str, field: str) -> bool:
    if value not in ("0", "1"):
        raise InputError(f"'{value}' must be 0 or 1", field=field)
    return value == "1"


# -- 2001 人员待遇享受检查 ---------------------------------------------------------------------------

class TreatmentQuery(msgspec.Struct):
    psn_no: Required
    insutype: Required
    med_type: Required
    begntime: Required
    fixmedins_code: str = ""
    endtime: str = ""
    dise_codg: str = ""
    dise_name: str = ""
    oprn_oprt_code: str = ""
    oprn_oprt_name: str = ""
    matn_type: str = ""
    birctrl_type: str = ""


class In2001(msgspec.Struct):
    data: TreatmentQuery


@TRANSACTIONS.register("2001", "人员待遇享受检查", In2001, paths=("/fsi/api/fsiPsnPriorityInfoService/queryPsnPriorityInfo",),
                       reads_only=True)
def treatment_check(ctx: Context, body: In2001) -> dict:
    """Before 2201/2401: the checks that did not pass, each with its code, name and reason; all well is an empty list."""
    d = body.data
    begin = clock.parse_datetime(d.begntime, "input.data.begntime")
    end = clock.parse_datetime(d.endtime, "input.data.endtime") if d.endtime.strip() else None
    facts = treatment.facts(ctx.session, psn_no=d.psn_no, insutype=d.insutype,
                            fixmedins_code=(d.fixmedins_code or ctx.fixmedins_code).strip(),
                            med_type=d.med_type, day=begin.date(), dise_codg=d.dise_codg)
    return {"trtinfo": treatment.trtinfo(d.psn_no, d.insutype, begin, end, treatment.assess(facts))}


# -- 2201–2205 ------------------------------------------------------------------------------

class Registration(msgspec.Struct):
    psn_no: Required
    insutype: Required
    begntime: Required
    mdtrt_cert_type: Required
    ipt_otp_no: Required
    # the credential must identify the person named by psn_no (registry.verify_credential): never blank
    mdtrt_cert_no: Required
    card_sn: str = ""
    atddr_no: str = ""
    dr_name: str = ""
    dept_code: str = ""
    dept_name: str = ""
    caty: str = ""
    med_type: str = "11"


class In2201(msgspec.Struct):
    data: Registration


@TRANSACTIONS.register("2201", "门诊挂号", In2201, paths=("/fsi/api/outpatientDocInfoService/outpatientRregistration",))
def register(ctx: Context, body: In2201) -> dict:
    d = body.data
    visit = service.open_visit(ctx.session, caller(ctx), psn_no=d.psn_no, insutype=d.insutype, med_type=d.med_type or "11",
                               begntime=visit_start(ctx, d.begntime, "input.data.begntime"), ipt_otp_no=d.ipt_otp_no,
                               cert_type=d.mdtrt_cert_type, cert_no=d.mdtrt_cert_no, card_sn=d.card_sn, where="input.data",
                               atddr_no=d.atddr_no, dr_name=d.dr_name, dept_code=d.dept_code, dept_name=d.dept_name)
    # the credential the visit was registered with, as the spec's answer names it; a card's identification code is not repeated
    return {"data": {"mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no, "ipt_otp_no": visit.ipt_otp_no,
                     "mdtrt_cert_type": visit.mdtrt_cert_type, "mdtrt_cert_no": visit.mdtrt_cert_no, "card_sn": ""}}


class VisitRef(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    ipt_otp_no: str = ""


class In2202(msgspec.Struct):
    data: VisitRef


@TRANSACTIONS.register("2202", "门诊挂号撤销", In2202, paths=("/fsi/api/outpatientDocInfoService/outpatientRegistrationCancel",))
def cancel_registration(ctx: Context, body: In2202) -> dict:
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data", lock=True)
    if visit.kind == "inpatient":
        raise InputError("is an admission: cancel it with 2404", field="input.data.mdtrt_id")
    service.cancel_visit(ctx.session, visit, "input.data")
    return {}


class MdtrtInfo(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    med_type: Required
    begntime: str = ""
    main_cond_dscr: str = ""
    dise_codg: str = ""
    dise_name: str = ""
    birctrl_type: str = ""
    birctrl_matn_date: str = ""


class DiseInfo(msgspec.Struct):
    diag_type: Required
    diag_code: Required
    diag_name: Required
    diag_srt_no: str = "1"
    diag_dept: str = ""
    dise_dor_no: str = ""
    dise_dor_name: str = ""
    diag_time: str = ""
    maindiag_flag: str = ""
    vali_flag: str = "1"


class In2203(msgspec.Struct):
    mdtrtinfo: MdtrtInfo
    diseinfo: list[DiseInfo] = []


@TRANSACTIONS.register("2203", "门诊就诊信息上传", In2203, paths=("/fsi/api/outpatientDocInfoService/outpatientMdtrtinfoUp",))
def visit_info(ctx: Context, body: In2203) -> dict:
    m = body.mdtrtinfo
    visit = service.load_visit(ctx.session, caller(ctx), m.mdtrt_id, m.psn_no, "input.mdtrtinfo", lock=True)
    # a settled visit takes more care (the prescriptions after the registration fee): its details may follow
    if visit.status not in ("registered", "settled"):
        raise InputError(f"visit is {visit.status}", field="input.mdtrtinfo.mdtrt_id")
    if (m.med_type == "41") != (visit.kind == "pharmacy") or service.kind_of(m.med_type) == "inpatient":
        raise InputError(f"{m.med_type} does not fit a {visit.kind} visit", field="input.mdtrtinfo.med_type")
    if m.med_type == service.CHRONIC_MED_TYPE:
        # refused here, not only at settlement: the counter learns before the fee lines that the disease is not registered
        service.chronic_registration(ctx.session, visit.psn_no, visit.insutype, m.dise_codg, clock.today(), "input.mdtrtinfo.dise_codg")
    visit.med_type = m.med_type
    visit.main_cond_dscr, visit.dise_codg, visit.dise_name = m.main_cond_dscr, m.dise_codg, m.dise_name
    service.save_visit(ctx.session, visit)
    service.record_diagnoses(ctx.session, visit, body.diseinfo)
    return {}


TRANSACTIONS.register("2203A", "门诊就诊信息上传(A)", In2203,
                      paths=("/fsi/api/outpatientDocInfoService/outpatientMdtrtinfoUpA",))(visit_info)


class FeeDetail(msgspec.Struct):
    feedetl_sn: Required
    mdtrt_id: Required
    psn_no: Required
    med_list_codg: Required
    fee_ocur_time: Required
    det_item_fee_sumamt: Any
    cnt: Any
    pric: Any
    chrg_bchno: str = ""
    medins_list_codg: str = ""
    rxno: str = ""
    rx_circ_flag: str = "0"
    drord_no: str = ""
    med_type: str = ""
    dise_codg: str = ""
    sin_dos_dscr: str = ""
    used_frqu_dscr: str = ""
    prd_days: str = ""
    medc_way_dscr: str = ""
    bilg_dept_codg: str = ""
    bilg_dept_name: str = ""
    bilg_dr_codg: str = ""
    bilg_dr_name: str = ""
    hosp_appr_flag: str = ""
    init_feedetl_sn: str = ""
    acord_dept_codg: str = ""
    acord_dept_name: str = ""
    orders_dr_code: str = ""
    orders_dr_name: str = ""
    tcmdrug_used_way: str = ""
    etip_flag: str = ""
    etip_hosp_code: str = ""
    dscg_tkdrug_flag: str = ""
    matn_fee_flag: str = ""


class In2204(msgspec.Struct):
    feedetail: list[FeeDetail]


@TRANSACTIONS.register("2204", "门诊费用明细上传", In2204, paths=("/fsi/api/outpatientDocInfoService/outpatientFeeListUp",))
def upload_fees(ctx: Context, body: In2204) -> dict:
    """2204 and 2301 share the fee-line format and the catalogue split."""
    return {"result": service.upload_fees(ctx.session, caller(ctx), body.feedetail, fee_window(ctx))}


class FeeCancel(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    chrg_bchno: str = "0000"
    feedetl_sn: str = ""


class In2205(msgspec.Struct):
    data: FeeCancel


@TRANSACTIONS.register("2205", "门诊费用明细撤销", In2205, paths=("/fsi/api/outpatientDocInfoService/outpatientFeeListUpCancel",))
def cancel_outpatient_fees(ctx: Context, body: In2205) -> dict:
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data", lock=True)
    service.cancel_fees(ctx.session, visit, chrg_bchno=body.data.chrg_bchno or "0000", where="input.data")
    return {}


# -- settlement -----------------------------------------------------------------------------

class SettleData(msgspec.Struct):
    psn_no: Required
    mdtrt_id: Required
    mdtrt_cert_type: Required
    medfee_sumamt: Any
    mdtrt_cert_no: Required
    card_sn: str = ""
    med_type: str = ""
    psn_setlway: str = "01"
    chrg_bchno: str = ""
    acct_used_flag: str = "0"
    insutype: str = ""
    invono: str = ""
    mid_setl_flag: str = "0"
    fulamt_ownpay_amt: Any = None
    overlmt_selfpay: Any = None
    preselfpay_amt: Any = None
    inscp_scp_amt: Any = None


class InSettle(msgspec.Struct):
    data: SettleData


def settle_request(d: SettleData) -> service.SettleRequest:
    if d.psn_setlway not in ("01", "02"):
        raise InputError(f"'{d.psn_setlway}' is not 01 (by item) or 02 (by fixed amount)", field="input.data.psn_setlway")
    if d.medfee_sumamt is None:
        raise InputError("required field is missing", field="input.data.medfee_sumamt")
    return service.SettleRequest(
        psn_no=d.psn_no, mdtrt_id=d.mdtrt_id, insutype=d.insutype, med_type=d.med_type,
        medfee_sumamt=amount(d.medfee_sumamt, "input.data.medfee_sumamt"),
        acct_used=flag(d.acct_used_flag or "0", "input.data.acct_used_flag"), cert_type=d.mdtrt_cert_type, cert_no=d.mdtrt_cert_no,
        card_sn=d.card_sn, chrg_bchno=d.chrg_bchno, mid_setl=flag(d.mid_setl_flag or "0", "input.data.mid_setl_flag"), invono=d.invono,
    )


def _settle(kind: str, post: bool):
    def handler(ctx: Context, body: InSettle) -> Answer:
        return settled(service.settle(ctx.session, caller(ctx), settle_request(body.data), post=post, homes=home_of(ctx), kind=kind))

    return handler


TRANSACTIONS.register("2206", "门诊预结算", InSettle,
                      paths=("/fsi/api/outpatientSettleService/preSettletment",))(_settle("outpatient", False))
TRANSACTIONS.register("2207", "门诊结算", InSettle,
                      paths=("/fsi/api/outpatientSettleService/saveSettletmentV2",))(_settle("outpatient", True))
# The A variants some provinces' clients send (2203A above, 2206A, 2207A) are aliases: the same input, the same answer.
# 2207A's path is the older saveSettletment (2207 moved to saveSettletmentV2); 2206A's is preSettletmentA.
TRANSACTIONS.register("2206A", "门诊预结算(A)", InSettle,
                      paths=("/fsi/api/outpatientSettleService/preSettletmentA",))(_settle("outpatient", False))
TRANSACTIONS.register("2207A", "门诊结算(A)", InSettle,
                      paths=("/fsi/api/outpatientSettleService/saveSettletment",))(_settle("outpatient", True))
TRANSACTIONS.register("2303", "住院预结算", InSettle, paths=("/fsi/api/hospSettService/preSett",))(_settle("inpatient", False))
TRANSACTIONS.register("2304", "住院结算", InSettle, paths=("/fsi/api/hospSettService/settV2",))(_settle("inpatient", True))


class ReverseData(msgspec.Struct):
    setl_id: Required
    mdtrt_id: Required
    psn_no: Required


class InReverse(msgspec.Struct):
    data: ReverseData


def _reverse(ctx: Context, body: InReverse) -> dict:
    d = body.data
    return service.reverse(ctx.session, caller(ctx), setl_id=d.setl_id, mdtrt_id=d.mdtrt_id, psn_no=d.psn_no, homes=home_of(ctx))


TRANSACTIONS.register("2208", "门诊结算撤销", InReverse, paths=("/fsi/api/outpatientSettleService/cancleSettletment",))(_reverse)
TRANSACTIONS.register("2305", "住院结算撤销", InReverse, paths=("/fsi/api/hospSettService/settCl",))(_reverse)


# -- inpatient ------------------------------------------------------------------------------

class StayDetails(msgspec.Struct, kw_only=True):
    """What 2401 ``mdtrtinfo`` and 2403 ``adminfo`` both carry about a stay besides its identity."""

    coner_name: str = ""
    tel: str = ""
    medrcdno: str = ""
    atddr_no: str = ""
    chfpdr_name: str = ""
    adm_diag_dscr: str = ""
    adm_dept_codg: str = ""
    adm_dept_name: str = ""
    adm_bed: str = ""
    dscg_maindiag_code: str = ""
    dscg_maindiag_name: str = ""
    main_cond_dscr: str = ""
    dise_codg: str = ""
    dise_name: str = ""
    oprn_oprt_code: str = ""
    oprn_oprt_name: str = ""
    fpsc_no: str = ""
    matn_type: str = ""
    birctrl_type: str = ""
    latechb_flag: str = ""
    geso_val: str = ""
    fetts: str = ""
    fetus_cnt: str = ""
    pret_flag: str = ""
    birctrl_matn_date: str = ""


class Admission(StayDetails, kw_only=True):
    psn_no: Required
    insutype: Required
    mdtrt_cert_type: Required
    med_type: Required
    ipt_no: Required
    begntime: Required
    mdtrt_cert_no: Required
    card_sn: str = ""


def whole(value: str, field: str, largest: int) -> int:
    """A small whole number the spec types 数值型 (孕周数, 胎次, 胎儿数); blank is 0."""
    text = (value or "").strip()
    if not text:
        return 0
    if not text.isdecimal() or int(text) > largest:
        raise InputError(f"'{text[:20]}' is not a whole number from 0 to {largest}", field=field)
    return int(text)


def admission_details(m: Any, where: str) -> dict[str, Any]:
    """The details of a stay 2401 and 2403 carry besides its identity, as visit columns (answered by 5201)."""
    return {
        "coner_name": m.coner_name, "tel": m.tel, "medrcdno": m.medrcdno, "adm_diag_dscr": m.adm_diag_dscr,
        "oprn_oprt_code": m.oprn_oprt_code, "oprn_oprt_name": m.oprn_oprt_name, "fpsc_no": m.fpsc_no, "matn_type": m.matn_type,
        "birctrl_type": m.birctrl_type, "latechb_flag": m.latechb_flag, "pret_flag": m.pret_flag,
        "geso_val": whole(m.geso_val, f"{where}.geso_val", 99), "fetts": whole(m.fetts, f"{where}.fetts", 999),
        "fetus_cnt": whole(m.fetus_cnt, f"{where}.fetus_cnt", 999),
        "birctrl_matn_date": clock.parse_date(m.birctrl_matn_date, f"{where}.birctrl_matn_date") if m.birctrl_matn_date.strip() else None,
    }


class In2401(msgspec.Struct):
    mdtrtinfo: Admission
    diseinfo: list[DiseInfo] = []


@TRANSACTIONS.register("2401", "入院办理", In2401, paths=("/fsi/api/hospitalRegisterService/hospitalRegisterSave",))
def admit(ctx: Context, body: In2401) -> dict:
    m = body.mdtrtinfo
    if service.kind_of(m.med_type) != "inpatient":
        raise InputError(f"{m.med_type} is not an inpatient med_type (21…)", field="input.mdtrtinfo.med_type")
    visit = service.open_visit(ctx.session, caller(ctx), psn_no=m.psn_no, insutype=m.insutype, med_type=m.med_type,
                               begntime=visit_start(ctx, m.begntime, "input.mdtrtinfo.begntime"), ipt_otp_no=m.ipt_no,
                               cert_type=m.mdtrt_cert_type, cert_no=m.mdtrt_cert_no, card_sn=m.card_sn, where="input.mdtrtinfo",
                               atddr_no=m.atddr_no, dr_name=m.chfpdr_name, dept_code=m.adm_dept_codg, dept_name=m.adm_dept_name,
                               dise_codg=m.dise_codg, dise_name=m.dise_name, main_cond_dscr=m.main_cond_dscr or m.adm_diag_dscr,
                               adm_bed=m.adm_bed, **admission_details(m, "input.mdtrtinfo"))
    service.record_diagnoses(ctx.session, visit, body.diseinfo)
    return {"result": {"mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no, "ipt_otp_no": visit.ipt_otp_no}}


class Discharge(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    endtime: Required
    insutype: str = ""
    dise_codg: str = ""
    dise_name: str = ""
    oprn_oprt_code: str = ""
    oprn_oprt_name: str = ""
    dscg_dept_codg: str = ""
    dscg_dept_name: str = ""
    dscg_bed: str = ""
    dscg_way: str = ""
    die_date: str = ""
    cop_flag: str = ""


class In2402(msgspec.Struct):
    dscginfo: Discharge
    diseinfo: list[DiseInfo] = []


@TRANSACTIONS.register("2402", "出院办理", In2402, paths=("/fsi/api/dscgService/dischargeProcess",))
def discharge(ctx: Context, body: In2402) -> dict:
    d = body.dscginfo
    visit = service.load_visit(ctx.session, caller(ctx), d.mdtrt_id, d.psn_no, "input.dscginfo", lock=True)
    service.discharge(ctx.session, visit, clock.parse_datetime(d.endtime, "input.dscginfo.endtime"), "input.dscginfo", dscg_way=d.dscg_way,
                      dise_codg=d.dise_codg, dise_name=d.dise_name, dscg_dept_codg=d.dscg_dept_codg, dscg_dept_name=d.dscg_dept_name,
                      dscg_bed=d.dscg_bed, oprn_oprt_code=d.oprn_oprt_code, oprn_oprt_name=d.oprn_oprt_name, cop_flag=d.cop_flag,
                      die_date=clock.parse_date(d.die_date, "input.dscginfo.die_date") if d.die_date.strip() else None)
    if body.diseinfo:
        service.record_diagnoses(ctx.session, visit, body.diseinfo)
    return {}


class AdmissionChange(StayDetails, kw_only=True):
    """2403 ``adminfo``: the 2401 fields (the stay's number as ipt_otp_no or ipt_no), mdtrt_id and, once discharged, endtime."""

    mdtrt_id: Required
    psn_no: Required
    insutype: str = ""
    med_type: str = ""
    begntime: str = ""
    endtime: str = ""
    ipt_otp_no: str = ""
    ipt_no: str = ""
    mdtrt_cert_type: str = ""
    mdtrt_cert_no: str = ""
    card_sn: str = ""


class ChangedDiagnosis(DiseInfo):
    mdtrt_id: str = ""


class In2403(msgspec.Struct):
    adminfo: AdmissionChange
    diseinfo: list[ChangedDiagnosis] = []


@TRANSACTIONS.register("2403", "住院信息变更", In2403, paths=("/fsi/api/hospitalRegisterService/hospitalRegisterEdit",))
def change_admission(ctx: Context, body: In2403) -> dict:
    m, where = body.adminfo, "input.adminfo"
    visit = service.load_visit(ctx.session, caller(ctx), m.mdtrt_id, m.psn_no, where, lock=True)
    if m.mdtrt_cert_no.strip():
        person = registry.person(ctx.session, visit.psn_no, where)
        registry.verify_credential(ctx.session, person, m.mdtrt_cert_type or "02", m.mdtrt_cert_no, m.card_sn, where, ctx.fixmedins_code,
                                   use_token)
    for i, d in enumerate(body.diseinfo):
        if d.mdtrt_id and d.mdtrt_id != visit.mdtrt_id:
            raise InputError(f"names visit {d.mdtrt_id[:30]}, not {visit.mdtrt_id}", field=f"input.diseinfo[{i}].mdtrt_id")
    begun = m.begntime.strip()
    service.change_admission(
        ctx.session, visit, where, insutype=m.insutype, med_type=m.med_type,
        begntime=visit_start(ctx, begun, f"{where}.begntime")
        if begun and clock.parse_datetime(begun, f"{where}.begntime") != visit.begntime
        else None,
        ipt_no=(m.ipt_otp_no or m.ipt_no).strip(), tolerance=fee_window(ctx).before,
        endtime=clock.parse_datetime(m.endtime, f"{where}.endtime") if m.endtime.strip() else None,
        details={**admission_details(m, where), "atddr_no": m.atddr_no, "dr_name": m.chfpdr_name, "dept_code": m.adm_dept_codg,
                 "dept_name": m.adm_dept_name, "adm_bed": m.adm_bed, "dise_codg": m.dise_codg, "dise_name": m.dise_name,
                 "main_cond_dscr": m.main_cond_dscr})
    if body.diseinfo:
        service.record_diagnoses(ctx.session, visit, body.diseinfo)
    return {}


class AdmissionRef(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required


class InAdmissionRef(msgspec.Struct):
    data: AdmissionRef


@TRANSACTIONS.register("2404", "入院撤销", InAdmissionRef, paths=("/fsi/api/hospitalRegisterService/hospitalRegisterCancel",))
def cancel_admission(ctx: Context, body: InAdmissionRef) -> dict:
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data", lock=True)
    if visit.kind != "inpatient" or visit.status != "admitted":
        raise InputError(f"visit is {visit.kind} and {visit.status}: only an open admission can be cancelled", field="input.data.mdtrt_id")
    service.cancel_visit(ctx.session, visit, "input.data")
    return {}


@TRANSACTIONS.register("2405", "出院撤销", InAdmissionRef, paths=("/fsi/api/dscgService/dischargeUndo",))
def cancel_discharge(ctx: Context, body: InAdmissionRef) -> dict:
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data", lock=True)
    service.undo_discharge(ctx.session, visit, "input.data")
    return {}


TRANSACTIONS.register("2301", "住院费用明细上传", In2204, paths=("/fsi/api/hospFeeDtlService/feeDtlUp",))(upload_fees)


class InpatientFeeCancel(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    feedetl_sn: str = "0000"


class In2302(msgspec.Struct):
    data: InpatientFeeCancel


@TRANSACTIONS.register("2302", "住院费用明细撤销", In2302, paths=("/fsi/api/hospFeeDtlService/feeDtlCl",))
def cancel_inpatient_fees(ctx: Context, body: In2302) -> dict:
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data", lock=True)
    service.cancel_fees(ctx.session, visit, feedetl_sn=body.data.feedetl_sn or "0000", where="input.data")
    return {}


# -- pharmacy 2101–2103: one call registers, uploads the drugs and (pre-)settles ---------------

class PharmacyData(msgspec.Struct):
    psn_no: Required
    insutype: Required
    mdtrt_cert_type: Required
    medfee_sumamt: Any
    mdtrt_cert_no: Required
    card_sn: str = ""
    ipt_otp_no: str = ""
    acct_used_flag: str = "0"
    psn_setlway: str = "01"
    invono: str = ""
    begntime: str = ""


class DrugDetail(msgspec.Struct):
    feedetl_sn: Required
    med_list_codg: Required
    det_item_fee_sumamt: Any
    cnt: Any
    pric: Any
    fee_ocur_time: str = ""
    medins_list_codg: str = ""
    rxno: str = ""
    rx_circ_flag: str = "0"
    bilg_dr_codg: str = ""
    bilg_dr_name: str = ""


class In2101(msgspec.Struct):
    data: PharmacyData
    drugdetail: list[DrugDetail]


def _pharmacy(post: bool):
    def run(ctx: Context, body: In2101) -> Answer:
        d = body.data
        now = clock.now()
        visit = service.open_visit(ctx.session, caller(ctx), psn_no=d.psn_no, insutype=d.insutype, med_type="41",
                                   begntime=visit_start(ctx, d.begntime, "input.data.begntime") if d.begntime else now,
                                   ipt_otp_no=d.ipt_otp_no or ctx.envelope.msgid, cert_type=d.mdtrt_cert_type, cert_no=d.mdtrt_cert_no,
                                   card_sn=d.card_sn, where="input.data")
        lines = [FeeDetail(feedetl_sn=x.feedetl_sn, mdtrt_id=visit.mdtrt_id, psn_no=d.psn_no, med_list_codg=x.med_list_codg,
                           fee_ocur_time=x.fee_ocur_time or clock.fmt_datetime(now) or "", det_item_fee_sumamt=x.det_item_fee_sumamt,
                           cnt=x.cnt, pric=x.pric, medins_list_codg=x.medins_list_codg, rxno=x.rxno, rx_circ_flag=x.rx_circ_flag,
                           bilg_dr_codg=x.bilg_dr_codg, bilg_dr_name=x.bilg_dr_name) for x in body.drugdetail]
        service.upload_fees(ctx.session, caller(ctx), lines, fee_window(ctx), where="input.drugdetail")
        ctx.session.flush()
        request = service.SettleRequest(psn_no=d.psn_no, mdtrt_id=visit.mdtrt_id, insutype=d.insutype, med_type="41",
                                        medfee_sumamt=amount(d.medfee_sumamt, "input.data.medfee_sumamt"),
                                        acct_used=flag(d.acct_used_flag or "0", "input.data.acct_used_flag"), cert_type=d.mdtrt_cert_type,
                                        cert_no=d.mdtrt_cert_no, card_sn=d.card_sn, invono=d.invono)
        return settled(service.settle(ctx.session, caller(ctx), request, post=post, homes=home_of(ctx)))

    def handler(ctx: Context, body: In2101) -> Answer:
        if post:
            return run(ctx, body)
        # A pre-settlement leaves nothing behind: the registration and lines live in a savepoint rolled back here.
        savepoint = ctx.session.begin_nested()
        try:
            return run(ctx, body)
        finally:
            savepoint.rollback()

    return handler


TRANSACTIONS.register("2101", "药店预结算", In2101, paths=("/fsi/api/pharmacyService/preSettle",))(_pharmacy(False))
TRANSACTIONS.register("2102", "药店结算", In2101, paths=("/fsi/api/pharmacyService/settle",))(_pharmacy(True))


@TRANSACTIONS.register("2103", "药店结算撤销", InReverse, paths=("/fsi/api/pharmacyService/settleCancel",))
def pharmacy_reverse(ctx: Context, body: InReverse) -> dict:
    answer = _reverse(ctx, body)
    visit = service.load_visit(ctx.session, caller(ctx), body.data.mdtrt_id, body.data.psn_no, "input.data")
    service.cancel_visit(ctx.session, visit, "input.data")  # the one-shot purchase is undone whole
    return answer


# -- queries 5201 / 5203 / 5204 / 5205 -------------------------------------------------------

class VisitQuery(msgspec.Struct):
    psn_no: Required
    begntime: str = ""
    endtime: str = ""
    med_type: str = ""
    mdtrt_id: str = ""


class In5201(msgspec.Struct):
    data: VisitQuery


def _when(text: str, field: str):
    return clock.parse_datetime(text, field) if text else None


@TRANSACTIONS.register("5201", "就诊信息查询", In5201, paths=("/fsi/api/fsiIntegratedQueryService/queryMdtrtInfo",), reads_only=True)
def query_visits(ctx: Context, body: In5201) -> dict:
    d = body.data
    return {"mdtrtinfo": queries.visits(ctx.session, ctx.fixmedins_code, d.psn_no, _when(d.begntime, "input.data.begntime"),
                                        _when(d.endtime, "input.data.endtime"), d.med_type, d.mdtrt_id)}


class SettlementQuery(msgspec.Struct):
    psn_no: Required
    setl_id: Required
    mdtrt_id: str = ""


class In5203(msgspec.Struct):
    data: SettlementQuery


@TRANSACTIONS.register("5203", "结算信息查询", In5203, paths=("/fsi/api/fsiIntegratedQueryService/querySetlInfo",), reads_only=True)
def query_settlement(ctx: Context, body: In5203) -> dict:
    d = body.data
    return queries.settlement(ctx.session, ctx.fixmedins_code, d.psn_no, d.setl_id, d.mdtrt_id)


class FeeQuery(msgspec.Struct):
    psn_no: Required
    mdtrt_id: Required
    setl_id: str = ""


class In5204(msgspec.Struct):
    data: FeeQuery


@TRANSACTIONS.register("5204", "费用明细查询", In5204, paths=("/fsi/api/fsiIntegratedQueryService/queryFeeList",), reads_only=True)
def query_fee_lines(ctx: Context, body: In5204) -> dict:
    d = body.data
    return {"feedetail": queries.fee_lines(ctx.session, ctx.fixmedins_code, d.psn_no, d.mdtrt_id, d.setl_id)}


class DrugHistoryQuery(msgspec.Struct):
    psn_no: Required
    begntime: Required
    endtime: str = ""


class In5205(msgspec.Struct):
    data: DrugHistoryQuery


@TRANSACTIONS.register("5205", "人员慢特病用药记录查询", In5205, paths=("/fsi/api/fsiIntegratedQueryService/queryPsnOpspMedcRcd",),
                       reads_only=True)
def query_drug_history(ctx: Context, body: In5205) -> dict:
    d = body.data
    begin = clock.parse_datetime(d.begntime, "input.data.begntime")
    return {"feedetail": queries.chronic_drug_history(ctx.session, d.psn_no, begin, _when(d.endtime, "input.data.endtime"))}
