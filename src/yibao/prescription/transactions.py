"""E-prescription transactions: 7101–7105 (the prescribing hospital) and 7201–7206 (the pharmacy).

Field names as the interface lists them (interface-fields.md). Inputs are read with ``data`` or flat (clients of the
2021 and the later specification differ), every field as text. Our additions, in the spec's style: 7102/7103 take the
hospital's SM2 signature as ``fixmedins_sign_info`` (and may repeat ``sign_digest``); 7101 answers ``sign_digest``;
7202 takes an optional ``hi_rxno``.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.credential.service import use_token
from yibao.gateway.contract import Context, TransactionSet
from yibao.prescription import service
from yibao.prescription.models import Prescription
from yibao.registry.transactions import PersonQuery, look_up

TRANSACTIONS = TransactionSet()


def _struct(name: str, fields: str, required: tuple[str, ...] = ()) -> Any:
    """A struct of text fields in the interface's order ("" when absent); ``required`` ones must not be blank."""
    names = fields.split()
    return msgspec.defstruct(name, [(f, Required) for f in names if f in required] + [(f, str, "") for f in names if f not in required])


RX_DATA = ("hosp_rxno init_rxno rx_type_code prsc_time rx_drug_nums rx_way_codg rx_way_name rx_freq_codg rx_freq_name rx_dosunt "
           "rx_doscnt rx_drord_dscr valid_days valid_end_time rept_flag max_rept_cnt reptd_cnt min_inrv_days dr_sign_info phar_sign_info "
           "fixmedins_sign_info rx_cotn_flag rx_file rx_circ_flag")
RX_DRUG = ("med_list_codg fixmedins_hilist_id hosp_prep_flag rx_item_type_code rx_item_type_name tcmdrug_type_name tcmdrug_type_code "
           "tcmherb_foote medn_type_code medn_type_name main_medc_flag urgt_flag bas_medn_flag imp_drug_flag prod_barc drug_prodname "
           "genname_codg drug_genname chemname drugstdcode drug_dosform drug_spec prdr_name drug_pric drug_cnt drug_cnt_unit drug_sumamt "
           "medc_way_codg medc_way_dscr medc_starttime medc_endtime medc_days drug_dosunt sin_doscnt sin_dosunt used_frqu_codg "
           "used_frqu_name drug_totlnt drug_totlnt_emp dise_codg")
RX_MDTRT = ("mdtrt_id med_type ipt_op_no psn_no patn_name age patn_ht patn_wt gend geso_val nwb_flag nwb_age suck_prd_flag algs_his "
            "insuplc_admdvs psn_cert_type certno insutype prsc_dept_name prsc_dept_code prsc_dr_name prsc_dr_cert_type prsc_dr_certno "
            "dr_profttl_codg dr_profttl_name phar_cert_type phar_certno phar_name phar_prac_cert_no phar_chk_time mdtrt_time dise_codg "
            "dise_name sp_dise_flag diag_code diag_name dise_cond_dscr hi_feesetl_type hi_feesetl_name rgst_fee medfee_sumamt fstdiag")
RX_DISE = "diag_type maindiag_flag diag_srt_no diag_code diag_name diag_dept dise_dor_no dise_dor_name diag_time"

RxData = _struct("RxData", RX_DATA, ("hosp_rxno", "rx_type_code", "prsc_time"))
RxDrug = _struct("RxDrug", RX_DRUG, ("med_list_codg", "drug_cnt"))
RxMdtrt = _struct("RxMdtrt", RX_MDTRT, ("mdtrt_id", "med_type", "psn_no", "insutype"))
RxDise = _struct("RxDise", RX_DISE, ("diag_code",))


class In7101(msgspec.Struct):
    data: RxData  # type: ignore[valid-type]
    rxdrugdetail: list[RxDrug]  # type: ignore[valid-type]
    mdtrtinfo: RxMdtrt  # type: ignore[valid-type]
    diseinfo: list[RxDise] = []  # type: ignore[valid-type]


def _whole(text: str, field: str, default: int) -> int:
    if not text.strip():
        return default
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(f"'{text[:20]}' is not a number", field=field) from None
    if value != value.to_integral_value() or not 0 <= value <= 3650:
        raise InputError(f"'{text[:20]}' is not a whole number of days", field=field)
    return int(value)


@TRANSACTIONS.register("7101", "电子处方上传预核验", In7101)
def precheck(ctx: Context, body: In7101) -> dict:
    d: Any = body.data  # structs made by defstruct: typed as Any
    m: Any = body.mdtrtinfo
    drugs: list[Any] = body.rxdrugdetail
    diagnoses: list[Any] = body.diseinfo
    document = msgspec.to_builtins(body)
    main = next((x for x in diagnoses if x.maindiag_flag == "1"), diagnoses[0] if diagnoses else None)
    draft = service.Draft(
        document=document, hosp_rxno=d.hosp_rxno.strip(), init_rxno=d.init_rxno.strip(), rx_type_code=d.rx_type_code.strip(),
        rx_cotn_flag=d.rx_cotn_flag.strip() or "0", rx_circ_flag=d.rx_circ_flag.strip() or "1",
        prsc_time=clock.parse_datetime(d.prsc_time, "input.data.prsc_time"),
        valid_days=_whole(d.valid_days, "input.data.valid_days", ctx.settings.rx_valid_days),
        valid_end_time=clock.parse_datetime(d.valid_end_time, "input.data.valid_end_time") if d.valid_end_time.strip() else None,
        mdtrt_id=m.mdtrt_id.strip(), med_type=m.med_type.strip(), psn_no=m.psn_no.strip(), patn_name=m.patn_name.strip(),
        insutype=m.insutype.strip(), insuplc_admdvs=m.insuplc_admdvs.strip(), dise_codg=m.dise_codg,
        diag_code=(m.diag_code or (main.diag_code if main else "")).strip(),
        diag_name=(m.diag_name or (main.diag_name if main else "")).strip(),
        prsc_dept_name=m.prsc_dept_name.strip(), prsc_dr_name=m.prsc_dr_name.strip(),
        drugs=[(x.med_list_codg, x.dise_codg) for x in drugs])
    row = service.precheck(ctx.session, draft, fixmedins_code=ctx.fixmedins_code, admdvs=ctx.envelope.mdtrtarea_admvs,
                           max_valid_days=ctx.settings.rx_valid_days)
    return {"hi_rxno": row.hi_rxno, "sign_digest": row.sign_digest, "valid_end_time": clock.fmt_datetime(row.valid_end_time)}


class Sign7102(msgspec.Struct):
    hi_rxno: str = ""
    fixmedins_name: str = ""
    fixmedins_code: str = ""
    phar_cert_type: str = ""
    phar_certno: str = ""
    phar_name: str = ""
    phar_prac_cert_no: str = ""
    rchk_phar_cert_type: str = ""
    rchk_phar_certno: str = ""
    rchk_phar_name: str = ""
    rx_chk_stas_codg: str = ""
    rx_chk_opnn: str = ""
    rx_chk_time: str = ""
    # ours: the hospital's SM2 signature of sign_digest (base64 DER) and, optionally, the digest it signed
    fixmedins_sign_info: str = ""
    sign_digest: str = ""


class In7102(Sign7102):
    data: Sign7102 = msgspec.field(default_factory=Sign7102)


def _given(body: Any) -> tuple[Any, str]:
    """The input's ``data`` when it was sent (the later specification), else the input itself (flat, as 2021's clients)."""
    if any(value for value in msgspec.to_builtins(body.data).values()):
        return body.data, "input.data"
    return body, "input"


def _hi_rxno(value: str, where: str) -> str:
    if not value.strip():
        raise InputError("required field is missing (必填项为空)", field=f"{where}.hi_rxno")
    return value.strip()


def _time(text: str, field: str) -> Any:
    return clock.parse_datetime(text, field) if text.strip() else None


@TRANSACTIONS.register("7102", "电子处方医保电子签名", In7102)
def counter_sign(ctx: Context, body: In7102) -> dict:
    d, where = _given(body)
    review = service.Review(d.phar_name, d.rx_chk_stas_codg.strip() or service.PASSED, _time(d.rx_chk_time, f"{where}.rx_chk_time"))
    return service.sign(ctx.session, hi_rxno=_hi_rxno(d.hi_rxno, where), fixmedins_code=ctx.fixmedins_code, review=review,
                        signature=d.fixmedins_sign_info, digest=d.sign_digest, where=where)


class Upload7103(msgspec.Struct):
    hi_rxno: str = ""
    fixmedins_sign_info: str = ""
    sign_digest: str = ""
    rx_file: str = ""


class In7103(Upload7103):
    data: Upload7103 = msgspec.field(default_factory=Upload7103)


@TRANSACTIONS.register("7103", "电子处方上传", In7103)
def upload(ctx: Context, body: In7103) -> dict:
    d, where = _given(body)
    number = _hi_rxno(d.hi_rxno, where)
    if d.sign_digest.strip():
        row = ctx.session.get(Prescription, number)
        if row is not None and row.sign_digest != d.sign_digest.strip().lower():
            raise InputError(f"is not the SM3 of the canonical form ({row.sign_digest})", field=f"{where}.sign_digest")
    row = service.upload(ctx.session, hi_rxno=number, fixmedins_code=ctx.fixmedins_code, signature=d.fixmedins_sign_info, where=where)
    answer = service.status_answer(row)
    return {k: answer[k] for k in ("hi_rxno", "rx_stas_codg", "rx_stas_name", "valid_end_time")} | {"epc_qrcd": row.epc_qrcd}


class Revoke(msgspec.Struct):
    hi_rxno: Required
    prsc_dr_name: str = ""
    undo_dr_cert_type: str = ""
    undo_dr_certno: str = ""
    undo_rea: str = ""
    undo_time: str = ""


class In7104(msgspec.Struct):
    data: Revoke


@TRANSACTIONS.register("7104", "电子处方撤销", In7104)
def revoke(ctx: Context, body: In7104) -> dict:
    d = body.data
    row = service.revoke(ctx.session, hi_rxno=d.hi_rxno, fixmedins_code=ctx.fixmedins_code, reason=d.undo_rea)
    answer = service.status_answer(row)
    return {k: answer[k] for k in ("hi_rxno", "rx_stas_codg", "rx_stas_name")}


class Query7105(msgspec.Struct):
    hi_rxno: str = ""
    hosp_rxno: str = ""
    # the 2021 specification's clients send the payment state they know; the platform answers its own
    rx_pay_status_code: str = ""
    pay_time: str = ""


class In7105(Query7105):
    data: Query7105 = msgspec.field(default_factory=Query7105)


@TRANSACTIONS.register("7105", "电子处方信息查询", In7105, reads_only=True)
def query(ctx: Context, body: In7105) -> dict:
    d, where = _given(body)
    return {"data": service.status_answer(service.find_for_query(ctx.session, ctx.fixmedins_code, d.hi_rxno, d.hosp_rxno, where))}


# -- the pharmacy --------------------------------------------------------------------------------------------------------

class Pickup7201(msgspec.Struct):
    epc_qrcd: str = ""
    app_chnl_id: str = ""
    app_chnl_user_id: str = ""
    auth_code: str = ""
    dev_info: str = ""
    ip_info: str = ""
    opter: str = ""
    opter_name: str = ""
    optins: str = ""


class In7201(Pickup7201):
    data: Pickup7201 = msgspec.field(default_factory=Pickup7201)


def _person_of(ctx: Context, row: Prescription) -> Any:
    from yibao.registry import service as registry

    return registry.person(ctx.session, row.psn_no, "input")


@TRANSACTIONS.register("7201", "电子处方取药", In7201)
def pickup(ctx: Context, body: In7201) -> dict:
    d, where = _given(body)
    if not d.epc_qrcd.strip():
        raise InputError("required field is missing (必填项为空)", field=f"{where}.epc_qrcd")
    row = service.pickup_by_code(ctx.session, d.epc_qrcd, ctx.fixmedins_code, where)
    person = _person_of(ctx, row)
    return {"epc_token": row.access_code, "cert_type": person.psn_cert_type, "name": person.psn_name, "certno": person.certno,
            "insuplc_admdvs": row.insuplc_admdvs}


class Pickup7202(msgspec.Struct):
    mdtrt_cert_type: str = ""
    mdtrt_cert_no: str = ""
    card_sn: str = ""
    insuplc_admdvs: str = ""
    ip_info: str = ""
    opter: str = ""
    opter_name: str = ""
    optins: str = ""
    hi_rxno: str = ""


class In7202(Pickup7202):
    data: Pickup7202 = msgspec.field(default_factory=Pickup7202)


@TRANSACTIONS.register("7202", "电子处方信息查询(凭证)", In7202)
def pickup_by_credential(ctx: Context, body: In7202) -> dict:
    d, where = _given(body)
    if not d.mdtrt_cert_type.strip() or not d.mdtrt_cert_no.strip():
        raise InputError("required field is missing (必填项为空)", field=f"{where}.mdtrt_cert_no")
    person, _ = look_up(ctx.session, ctx.fixmedins_code, PersonQuery(mdtrt_cert_type=d.mdtrt_cert_type.strip(),
                                                                     mdtrt_cert_no=d.mdtrt_cert_no.strip(), card_sn=d.card_sn), use_token)
    row = service.pickup_by_person(ctx.session, person.psn_no, ctx.fixmedins_code, d.hi_rxno, where)
    return {"auth_rxno": row.access_code, "diag_name": row.diag_name, "fixmedins_code": row.fixmedins_code,
            "fixmedins_name": row.fixmedins_name, "prsc_time": clock.fmt_datetime(row.prsc_time), "dept_name": row.prsc_dept_name,
            "valid_end_time": clock.fmt_datetime(row.valid_end_time), "hi_rxno": row.hi_rxno}


class Download(msgspec.Struct):
    epc_token: str = ""
    auth_rxno: str = ""
    insuplc_admdvs: str = ""


class In7203(Download):
    data: Download = msgspec.field(default_factory=Download)


NUMBERS = {"rx_drug_nums", "rx_doscnt", "valid_days", "max_rept_cnt", "reptd_cnt", "min_inrv_days", "drug_pric", "drug_cnt", "drug_sumamt",
           "medc_days", "sin_doscnt", "age", "patn_ht", "patn_wt", "geso_val", "suck_prd_flag"}


def _out(values: dict[str, Any]) -> dict[str, Any]:
    """A stored part of the prescription as 7203 answers it: the spec's numbers as numbers (0 when blank), never null."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in NUMBERS:
            try:
                out[key] = Decimal(str(value).strip() or "0")
            except InvalidOperation:
                out[key] = Decimal(0)
        else:
            out[key] = value
    return out


@TRANSACTIONS.register("7203", "处方下载", In7203)
def download(ctx: Context, body: In7203) -> dict:
    d, where = _given(body)
    row = service.download(ctx.session, d.epc_token or d.auth_rxno, ctx.fixmedins_code, where)
    document = json.loads(row.document)
    data = {k: v for k, v in document["data"].items() if k not in service.SIGN_FIELDS and k not in ("hosp_rxno", "init_rxno")}
    data.update(hi_rxno=row.hi_rxno, fixmedins_code=row.fixmedins_code, fixmedins_name=row.fixmedins_name,
                prsc_time=clock.fmt_datetime(row.prsc_time), valid_days=str(row.valid_days),
                valid_end_time=clock.fmt_datetime(row.valid_end_time), sign_digest=row.sign_digest, hi_sign_info=row.hi_sign_info,
                fixmedins_sign_info=row.fixmedins_sign_info)
    return {"data": _out(data), "rxdrugdetail": [_out(x) for x in document.get("rxdrugdetail", [])],
            "mdtrtinfo": _out(document.get("mdtrtinfo", {})), "diseinfo": [_out(x) for x in document.get("diseinfo", [])]}


class Review7204(msgspec.Struct):
    hi_rxno: str = ""
    phar_cert_type: str = ""
    phar_certno: str = ""
    phar_name: str = ""
    phar_prac_cert_no: str = ""
    phar_sign_info: str = ""
    rchk_phar_cert_type: str = ""
    rchk_phar_certno: str = ""
    rchk_phar_name: str = ""
    rx_chk_opnn: str = ""
    rx_chk_stas_codg: str = ""
    rx_chk_time: str = ""
    rx_chk_file: str = ""


class In7204(Review7204):
    data: Review7204 = msgspec.field(default_factory=Review7204)


@TRANSACTIONS.register("7204", "药师审方", In7204)
def pharmacist_review(ctx: Context, body: In7204) -> dict:
    d, where = _given(body)
    if not d.rx_chk_stas_codg.strip():
        raise InputError("required field is missing (必填项为空)", field=f"{where}.rx_chk_stas_codg")
    row = service.review(ctx.session, _hi_rxno(d.hi_rxno, where), ctx.fixmedins_code,
                         service.Review(d.phar_name, d.rx_chk_stas_codg.strip(), _time(d.rx_chk_time, f"{where}.rx_chk_time")), where)
    return {"hi_rxno": row.hi_rxno, "rx_chk_stas_codg": row.chk_stas_codg}


class Delivery(msgspec.Struct):
    hi_rxno: str = ""
    delv_no: str = ""
    delv_addr: str = ""
    delv_dist: str = ""
    delv_entp_no: str = ""
    delv_entp_name: str = ""
    delver_cert_type: str = ""
    delver_certno: str = ""
    delver_name: str = ""
    delver_tel: str = ""
    delv_stas_codg: str = ""
    delv_stas_name: str = ""
    delv_stas_dscr: str = ""
    delv_stas_time: str = ""
    delver_lng: str = ""
    delver_lat: str = ""
    delver_geo_type: str = ""


class In7205(Delivery):
    data: Delivery = msgspec.field(default_factory=Delivery)


@TRANSACTIONS.register("7205", "配送", In7205)
def deliver(ctx: Context, body: In7205) -> dict:
    d, where = _given(body)
    if not d.delv_stas_codg.strip():
        raise InputError("required field is missing (必填项为空)", field=f"{where}.delv_stas_codg")
    _time(d.delv_stas_time, f"{where}.delv_stas_time")
    details = {k: v for k, v in msgspec.to_builtins(d).items() if k != "data" and v}
    row = service.deliver(ctx.session, _hi_rxno(d.hi_rxno, where), ctx.fixmedins_code, d.delv_stas_codg.strip(), d.delv_stas_name.strip(),
                          details, where)
    return {"hi_rxno": row.hi_rxno, "delv_stas_codg": row.delv_stas_codg, "delv_stas_name": row.delv_stas_name}


class WriteOff(msgspec.Struct):
    hi_rxno: str = ""
    phar_cert_type: str = ""
    phar_certno: str = ""
    phar_name: str = ""
    phar_prac_cert_no: str = ""
    dspeer_cert_type: str = ""
    dspeer_certno: str = ""
    dspeer_name: str = ""
    pro__cert_type: str = ""
    pro_certno: str = ""
    pro_name: str = ""
    hi_feesetl_type: str = ""
    setl_id: str = ""
    sel_retn_time: str = ""
    memo: str = ""
    download_ide_code: str = ""
    payMode: str = ""
    fund_pay_sumamt: str = ""
    psn_part_amt: str = ""
    acct_pay: str = ""
    psn_cash_pay: str = ""
    setl_time: str = ""


class In7206(WriteOff):
    data: WriteOff = msgspec.field(default_factory=WriteOff)
    selinfo: list[dict[str, Any]] = []


@TRANSACTIONS.register("7206", "核销", In7206)
def write_off(ctx: Context, body: In7206) -> dict:
    d, where = _given(body)
    row = service.write_off(ctx.session, _hi_rxno(d.hi_rxno, where), ctx.fixmedins_code, d.setl_id, where)
    return {"hi_rxno": row.hi_rxno, "setl_id": row.setl_id or "", "rx_used_stas_codg": "2", "rx_used_stas_name": "已核销"}
