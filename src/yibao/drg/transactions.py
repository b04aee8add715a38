"""4101 医疗保障基金结算清单信息上传 (4101A alike): a settled inpatient stay's list, grouped by DRG and DIP at upload.

Field names as HIS clients send them (表 154 setlinfo, 157 diseinfo, 159 oprninfo of the interface specification, read
from public client code): ``diseinfo[]`` carries ``diag_code`` and ``maindiag_flag`` (1 = the main diagnosis),
``oprninfo[]`` carries ``oprn_oprt_code`` and ``oprn_oprt_type`` (1 = the main procedure; some clients send
``main_oprn_flag`` 1 instead: either is read). The answer is the spec's ``data.setl_list_id`` with the grouping beside it.
"""

from __future__ import annotations

import msgspec

from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.drg import grouper, service
from yibao.gateway.contract import Context, TransactionSet

TRANSACTIONS = TransactionSet()


class Setlinfo(msgspec.Struct):
    setl_id: Required
    mdtrt_id: str = ""
    psn_no: str = ""
    gend: str = ""
    age: str = ""
    nwb_bir_wt: str = ""
    act_ipt_days: str = ""
    dscg_way: str = ""


class Diseinfo(msgspec.Struct):
    diag_code: Required
    diag_name: str = ""
    diag_type: str = ""
    maindiag_flag: str = ""
    adm_cond_type: str = ""


class Oprninfo(msgspec.Struct):
    oprn_oprt_code: Required
    oprn_oprt_name: str = ""
    oprn_oprt_type: str = ""
    main_oprn_flag: str = ""
    oprn_oprt_date: str = ""


class In4101(msgspec.Struct):
    setlinfo: Setlinfo
    diseinfo: list[Diseinfo] = []
    oprninfo: list[Oprninfo] = []


def _whole(text: str, field: str, *, most: int) -> int:
    """A whole number sent as text ('' = 0); decimals as real lists have them (age 43.8, weight 3250.0) are cut."""
    text = text.strip()
    if not text:
        return 0
    try:
        value = int(float(text))
    except ValueError:
        raise InputError(f"'{text[:20]}' is not a number", field=field) from None
    if not 0 <= value <= most:
        raise InputError(f"{value} is out of range (0–{most})", field=field)
    return value


def _parse(body: In4101) -> service.SettlementList:
    s = body.setlinfo
    if not body.diseinfo:
        raise InputError("a settlement list names the stay's diagnoses (at least the main one, maindiag_flag 1)", field="input.diseinfo")
    diagnoses = tuple(grouper.Diagnosis(d.diag_code.strip().upper(), d.maindiag_flag.strip() == "1") for d in body.diseinfo)
    procedures = tuple(grouper.Procedure(p.oprn_oprt_code.strip(), p.oprn_oprt_type.strip() == "1" or p.main_oprn_flag.strip() == "1")
                       for p in body.oprninfo)
    case = grouper.Case(diagnoses, procedures, age=_whole(s.age, "input.setlinfo.age", most=150), gend=s.gend.strip(),
                        los=_whole(s.act_ipt_days, "input.setlinfo.act_ipt_days", most=36600), dscg_way=s.dscg_way.strip(),
                        nwb_bir_wt=_whole(s.nwb_bir_wt, "input.setlinfo.nwb_bir_wt", most=10000))
    return service.SettlementList(
        setl_id=s.setl_id, mdtrt_id=s.mdtrt_id, psn_no=s.psn_no, case=case,
        diseinfo=[{"diag_code": d.diag_code[:30], "diag_name": d.diag_name[:100], "diag_type": d.diag_type[:3],
                   "maindiag_flag": d.maindiag_flag[:1]} for d in body.diseinfo],
        oprninfo=[{"oprn_oprt_code": p.oprn_oprt_code[:30], "oprn_oprt_name": p.oprn_oprt_name[:100],
                   "main": "1" if procedure.main else "0"} for p, procedure in zip(body.oprninfo, procedures, strict=True)])


@TRANSACTIONS.register("4101", "医疗保障基金结算清单信息上传", In4101, paths=("/fsi/api/medinfoupload/setllistinfoupld",))
def upload_settlement_list(ctx: Context, body: In4101) -> dict:
    row = service.upload(ctx.session, _parse(body), fixmedins_code=ctx.fixmedins_code, opter=ctx.envelope.opter)
    return {"data": service.wire(row)}


@TRANSACTIONS.register("4101A", "医疗保障基金结算清单信息上传", In4101)
def upload_settlement_list_a(ctx: Context, body: In4101) -> dict:
    return upload_settlement_list(ctx, body)
