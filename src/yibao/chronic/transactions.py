"""Chronic and special disease transactions: 2503 registration, 2504 cancellation, 5301 listing.

No per-transaction path of 2503/2504 was found in public client code: they are served on the single endpoint (and the
gateway's CSB forms); 5301 also on the path clients use.
"""

from __future__ import annotations

import msgspec

from yibao.chronic import service
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.gateway.contract import Context, TransactionSet
from yibao.registry import service as registry

TRANSACTIONS = TransactionSet()


class Filing(msgspec.Struct):
    psn_no: Required
    insutype: Required
    opsp_dise_code: Required
    insu_optins: Required
    ide_fixmedins_no: Required
    hosp_ide_date: Required
    diag_dr_codg: Required
    diag_dr_name: Required
    begndate: Required
    opsp_dise_name: str = ""
    ide_fixmedins_name: str = ""
    tel: str = ""
    addr: str = ""
    enddate: str = ""


class In2503(msgspec.Struct):
    data: Filing


@TRANSACTIONS.register("2503", "人员慢特病备案", In2503)
def file_registration(ctx: Context, body: In2503) -> dict:
    d, where = body.data, "input.data"
    if len(d.insu_optins.strip()) != 6 or not d.insu_optins.strip().isdigit():
        raise InputError(f"'{d.insu_optins[:20]}' is not a six-digit region code", field=f"{where}.insu_optins")
    filing = service.Filing(
        psn_no=d.psn_no, insutype=d.insutype, opsp_dise_code=d.opsp_dise_code, opsp_dise_name=d.opsp_dise_name, tel=d.tel, addr=d.addr,
        insu_optins=d.insu_optins.strip(), ide_fixmedins_no=d.ide_fixmedins_no, ide_fixmedins_name=d.ide_fixmedins_name,
        hosp_ide_date=clock.parse_date(d.hosp_ide_date, f"{where}.hosp_ide_date"), diag_dr_codg=d.diag_dr_codg, diag_dr_name=d.diag_dr_name,
        begndate=clock.parse_date(d.begndate, f"{where}.begndate"),
        enddate=clock.parse_date(d.enddate, f"{where}.enddate") if d.enddate.strip() else None)
    e = ctx.envelope
    row = service.register(ctx.session, filing, fixmedins_code=ctx.fixmedins_code, admdvs=e.mdtrtarea_admvs, opter=e.opter,
                           opter_name=e.opter_name)
    return {"result": {"trt_dcla_detl_sn": row.trt_dcla_detl_sn}}


class Cancellation(msgspec.Struct):
    trt_dcla_detl_sn: Required
    psn_no: Required
    # 撤销原因: the spec requires it; a blank one is kept blank rather than refusing the cancellation
    memo: str = ""


class In2504(msgspec.Struct):
    data: Cancellation


@TRANSACTIONS.register("2504", "人员慢特病备案撤销", In2504)
def cancel_registration(ctx: Context, body: In2504) -> dict:
    d = body.data
    service.cancel(ctx.session, trt_dcla_detl_sn=d.trt_dcla_detl_sn, psn_no=d.psn_no, memo=d.memo, fixmedins_code=ctx.fixmedins_code)
    return {}


class PersonRef(msgspec.Struct):
    psn_no: Required


class In5301(msgspec.Struct):
    data: PersonRef


@TRANSACTIONS.register("5301", "人员慢特病备案查询", In5301, paths=("/fsi/api/fsiIntegratedQueryService/queryPsnOpspReg",), reads_only=True)
def list_registrations(ctx: Context, body: In5301) -> dict:
    """The person's registrations that stand today or later (clients read the list node as ``feedetail``)."""
    person = registry.person(ctx.session, body.data.psn_no, "input.data")
    return {"feedetail": [service.wire(row) for row in service.registered(ctx.session, person.psn_no, clock.today())]}
