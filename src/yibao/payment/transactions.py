"""The hospital's side of mobile payment (医保移动支付) and of admission by phone, on the national gateway.

The infno numbers are those of the national mobile-payment interface for institutions (6201 费用明细上传, 6203 医保退费通知,
6301 医保订单结算结果查询, 6401 费用明细上传撤销); their fields here are ours, in the spec's style (snake_case, strings), since the
platform's fee lines are already uploaded with 2204/2301: 6201 posts the bill of those lines. 6501 (线上入院申请查询)
is ours: the admission requests people made in the app, for the hospital to admit with 2401. docs/mobile-payment.md.
"""

from __future__ import annotations

import msgspec

from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.gateway.contract import Context, TransactionSet
from yibao.payment import channel as paychannel
from yibao.payment import service

TRANSACTIONS = TransactionSet()


class Bill(msgspec.Struct):
    mdtrt_id: Required
    psn_no: Required
    medins_ord_no: str = ""
    acct_used_flag: str = "1"
    method: str = "mobile"


class In6201(msgspec.Struct):
    data: Bill


@TRANSACTIONS.register("6201", "费用明细上传(移动支付下单)", In6201, paths=("/fsi/api/mobilePayService/uploadFeeDetail",))
def post_bill(ctx: Context, body: In6201) -> dict:
    """The visit's unsettled fee lines become an order the person pays in the app; the answer is its pre-settlement."""
    d = body.data
    if d.acct_used_flag not in ("0", "1", ""):
        raise InputError(f"'{d.acct_used_flag[:5]}' must be 0 or 1", field="input.data.acct_used_flag")
    order = service.post_bill(ctx.session, fixmedins_code=ctx.fixmedins_code, mdtrt_id=d.mdtrt_id, psn_no=d.psn_no,
                              medins_ord_no=d.medins_ord_no, acct_used=d.acct_used_flag != "0", method=d.method or "mobile")
    return {"data": _wire(service.shown(ctx.session, order))}


def _wire(shown: dict) -> dict:
    # the person's charges and credit limit stay in the app; the hospital reads the method and the bank's part
    return {k: v for k, v in shown.items() if k not in ("charges", "credit_offer")}


class OrderRef(msgspec.Struct):
    pay_ord_id: Required
    reason: str = ""


class InOrderRef(msgspec.Struct):
    data: OrderRef


@TRANSACTIONS.register("6301", "医保订单结算结果查询", InOrderRef, paths=("/fsi/api/mobilePayService/querySetlResult",), reads_only=True)
def query_order(ctx: Context, body: InOrderRef) -> dict:
    order = service.hospital_order(ctx.session, ctx.fixmedins_code, body.data.pay_ord_id)
    return {"data": _wire(service.shown(ctx.session, order))}


@TRANSACTIONS.register("6401", "费用明细上传撤销", InOrderRef, paths=("/fsi/api/mobilePayService/revokeFeeDetail",))
def cancel_order(ctx: Context, body: InOrderRef) -> dict:
    order = service.hospital_order(ctx.session, ctx.fixmedins_code, body.data.pay_ord_id, lock=True)
    if order.status not in ("presettled", "failed"):
        raise InputError(f"order is {order.status}: only an unpaid order can be withdrawn", field="input.data.pay_ord_id")
    service.cancel(ctx.session, order, body.data.reason or "医院撤销", where="input.data.pay_ord_id")
    return {"data": _wire(service.shown(ctx.session, order))}


@TRANSACTIONS.register("6203", "医保退费通知", InOrderRef, paths=("/fsi/api/mobilePayService/refundNotify",))
def refund_order(ctx: Context, body: InOrderRef) -> dict:
    """The hospital gives a paid order back: the settlement reversed and the own-money part refunded through the channel
    (the call waits for the channel, as a federated settlement waits for the other node)."""
    order = service.hospital_order(ctx.session, ctx.fixmedins_code, body.data.pay_ord_id, lock=True)
    channel = paychannel.channel(ctx.session, ctx.settings)
    service.refund_paid(ctx.session, order, body.data.reason or "医院退费", channel.refund)
    return {"data": _wire(service.shown(ctx.session, order))}


class In6501(msgspec.Struct):
    data: dict = {}


@TRANSACTIONS.register("6501", "线上入院申请查询", In6501, paths=("/fsi/api/mobilePayService/queryAdmissionRequests",))
def admission_requests(ctx: Context, body: In6501) -> dict:
    """Requests made in the app, not yet admitted: the hospital admits with 2401 (the person's psn_no, its credential)."""
    rows = service.pending_requests(ctx.session, ctx.fixmedins_code)
    return {"data": [service.request_shown(ctx.session, r) for r in rows]}
