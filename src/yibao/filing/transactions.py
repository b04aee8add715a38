"""Filing transactions at the counter: 2501 转院备案 (a referral filed by the referring hospital) and 2502 its cancellation.

The input of 2501 is the ``refmedin`` node (interface notes); ``mdtrtarea_admdvs`` (转往医院区划) is the filing's target
region. A referral in force settles at the policy's referral reduction at places of care in that region (`yibao.filing.service`).
"""

from __future__ import annotations

import msgspec

from yibao.core import clock
from yibao.core.schema import Required
from yibao.filing import service
from yibao.gateway.contract import Context, TransactionSet

TRANSACTIONS = TransactionSet()


class Refmedin(msgspec.Struct):
    psn_no: Required
    diag_code: Required
    diag_name: Required
    reflin_medins_no: Required
    reflin_medins_name: Required
    mdtrtarea_admdvs: Required
    refl_type: Required
    refl_date: Required
    refl_rea: Required
    refl_opnn: Required
    insutype: str = ""
    tel: str = ""
    addr: str = ""
    # 参保机构医保区划: when sent, it must be the person's insured region
    insu_optins: str = ""
    dise_cond_dscr: str = ""
    hosp_agre_refl_flag: str = ""
    # blank: from the referral date; blank end: open until cancelled
    begndate: str = ""
    enddate: str = ""
    refl_used_flag: str = ""


class In2501(msgspec.Struct):
    refmedin: Refmedin


@TRANSACTIONS.register("2501", "转院备案", In2501)
def file_referral(ctx: Context, body: In2501) -> dict:
    d, where = body.refmedin, "input.refmedin"
    target = service.region_code(d.mdtrtarea_admdvs, f"{where}.mdtrtarea_admdvs")
    insu_optins = service.region_code(d.insu_optins, f"{where}.insu_optins") if d.insu_optins.strip() else ""
    refl_date = clock.parse_date(d.refl_date, f"{where}.refl_date")
    request = service.Request(
        psn_no=d.psn_no, insutype=d.insutype.strip(), filing_type=service.REFERRAL, target_admdvs=target,
        begndate=clock.parse_date(d.begndate, f"{where}.begndate") if d.begndate.strip() else refl_date,
        enddate=clock.parse_date(d.enddate, f"{where}.enddate") if d.enddate.strip() else None, tel=d.tel, addr=d.addr, reason=d.refl_rea)
    referral = service.Referral(
        diag_code=d.diag_code, diag_name=d.diag_name, dise_cond_dscr=d.dise_cond_dscr, reflin_medins_no=d.reflin_medins_no.strip(),
        reflin_medins_name=d.reflin_medins_name, hosp_agre_refl_flag=d.hosp_agre_refl_flag, refl_type=d.refl_type, refl_date=refl_date,
        refl_opnn=d.refl_opnn)
    e = ctx.envelope
    row = service.refer(ctx.session, request, referral, insu_optins=insu_optins, fixmedins_code=ctx.fixmedins_code, opter=e.opter,
                        opter_name=e.opter_name, where=where)
    return {"result": {"trt_dcla_detl_sn": row.trt_dcla_detl_sn}}


class Cancellation(msgspec.Struct):
    trt_dcla_detl_sn: Required
    psn_no: Required
    memo: str = ""  # 撤销原因


class In2502(msgspec.Struct):
    data: Cancellation


@TRANSACTIONS.register("2502", "转院备案撤销", In2502)
def cancel_referral(ctx: Context, body: In2502) -> dict:
    d = body.data
    service.cancel(ctx.session, trt_dcla_detl_sn=d.trt_dcla_detl_sn, psn_no=d.psn_no, memo=d.memo, fixmedins_code=ctx.fixmedins_code)
    return {}
