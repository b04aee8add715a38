"""3201 reconciliation of totals, 3202 reconciliation of the detail file."""

from __future__ import annotations

from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.money import to_fen
from yibao.core.schema import Required
from yibao.files import service as files
from yibao.gateway.contract import Context, TransactionSet
from yibao.reconciliation import service

TRANSACTIONS = TransactionSet()


class TotalsData(msgspec.Struct):
    stmt_begndate: Required
    stmt_enddate: Required
    medfee_sumamt: Any
    fund_pay_sumamt: Any
    acct_pay: Any
    fixmedins_setl_cnt: Any
    insutype: str = ""
    clr_type: str = ""
    setl_optins: str = ""
    cash_payamt: Any = None


class In3201(msgspec.Struct):
    data: TotalsData


def _count(value: Any, field: str) -> int:
    from decimal import Decimal, InvalidOperation

    from yibao.core.errors import InputError

    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InputError(f"'{value}' is not a count", field=field) from None
    if not number.is_finite() or number.copy_abs() > 10**12:  # int() of 1e999999999 would take the worker for minutes
        raise InputError(f"'{str(value)[:24]}' is not a count", field=field)
    if number != number.to_integral_value():
        raise InputError(f"'{value}' is not a whole number", field=field)
    return int(number)


@TRANSACTIONS.register("3201", "医药机构费用结算对总账", In3201, paths=("/fsi/api/ybSettlementStmtService/stmtTotal",), reads_only=True)
def reconcile_totals(ctx: Context, body: In3201) -> dict:
    d = body.data
    begin = clock.parse_date(d.stmt_begndate[:10], "input.data.stmt_begndate")
    end = clock.parse_date(d.stmt_enddate[:10], "input.data.stmt_enddate")
    ours = service.platform_totals(ctx.session, ctx.fixmedins_code, begin, end, d.insutype, d.clr_type)
    theirs = {"medfee_sumamt": to_fen(d.medfee_sumamt, "input.data.medfee_sumamt"),
              "fund_pay_sumamt": to_fen(d.fund_pay_sumamt, "input.data.fund_pay_sumamt"),
              "acct_pay": to_fen(d.acct_pay, "input.data.acct_pay"),
              "count": _count(d.fixmedins_setl_cnt, "input.data.fixmedins_setl_cnt")}
    result, text = service.compare_totals(ours, theirs)
    return {"setl_optins": d.setl_optins or ctx.envelope.mdtrtarea_admvs, "stmt_rslt": result, "stmt_rslt_dscr": text}


class DetailData(msgspec.Struct):
    file_qury_no: Required
    stmt_begndate: Required
    stmt_enddate: Required
    medfee_sumamt: Any
    fund_pay_sumamt: Any
    fixmedins_setl_cnt: Any
    cash_payamt: Any = None
    setl_optins: str = ""
    clr_type: str = ""
    refd_setl_flag: str = ""


class In3202(msgspec.Struct):
    data: DetailData


@TRANSACTIONS.register("3202", "医药机构费用结算对明细账", In3202, paths=("/fsi/api/ybSettlementStmtService/stmtDetail",))
def reconcile_details(ctx: Context, body: In3202) -> dict:
    d = body.data
    begin = clock.parse_date(d.stmt_begndate[:10], "input.data.stmt_begndate")
    end = clock.parse_date(d.stmt_enddate[:10], "input.data.stmt_enddate")
    uploaded = files.fetch(ctx.session, d.file_qury_no, "", ctx.fixmedins_code)
    rows = service.parse_detail_file(uploaded.content)
    results = service.compare_details(ctx.session, ctx.fixmedins_code, begin, end, rows)
    stored = files.save(ctx.session, f"stmt_{begin:%Y%m%d}_{end:%Y%m%d}.zip", service.result_file(results),
                        owner_code=ctx.fixmedins_code, data_cnt=len(results), prefix="stmt")
    return {"file_qury_no": stored.file_qury_no, "filename": stored.filename,
            "dld_endtime": clock.fmt_datetime(clock.now().replace(hour=23, minute=59, second=59).replace(
                year=stored.dld_end_time.year, month=stored.dld_end_time.month, day=stored.dld_end_time.day)),
            "stmt_rslt": "0" if not results else "1", "data_cnt": len(results)}
