"""Credit care at the counter (our additions, in the national interface's style; docs/credit-care.md):

- ``2801`` 信用就医资格查询: at admission (2401) the hospital asks whether the person has a credit agreement in force with
  limit available, and so may be admitted without a deposit (``dpst_free_flag`` 1).
- ``2802`` 信用就医垫付: after the discharge settlement (2304; any posted settlement of the institution) the partner bank
  pays the patient's cash part (``psn_cash_pay``) to the institution, up to the available limit; the answer says what
  the bank paid (``crdt_pay_amt``), what stays cash, and the repayment plan. Reversing the settlement (2305/2208) before
  any repayment cancels the advance.
"""

from __future__ import annotations

from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.money import to_fen, yuan
from yibao.core.schema import Required
from yibao.credential import service as credential
from yibao.credit import service
from yibao.gateway.contract import Context, TransactionSet
from yibao.registry import service as registry

TRANSACTIONS = TransactionSet()


def _proven(ctx: Context, psn_no: str, cert_type: str, cert_no: str, card_sn: str) -> None:
    """The person's credential, checked as 2207 checks it (an ecToken from the app counts): a psn_no alone proves nothing."""
    person = registry.person(ctx.session, psn_no.strip(), "input.data")
    registry.verify_credential(ctx.session, person, cert_type.strip(), cert_no, card_sn, "input.data", ctx.fixmedins_code,
                               credential.use_token)


class Eligibility(msgspec.Struct):
    psn_no: Required
    # the person's credential (01 ecToken, 02 ID number, 03 card with card_sn), as 2207 asks
    mdtrt_cert_type: Required
    mdtrt_cert_no: Required
    card_sn: str = ""
    # the deposit the hospital would take: the flag says whether the available limit covers it ("" or 0: any limit)
    dpst_amt: Any = None


class In2801(msgspec.Struct):
    data: Eligibility


@TRANSACTIONS.register("2801", "信用就医资格查询", In2801)
def query_credit(ctx: Context, body: In2801) -> dict:
    d = body.data
    _proven(ctx, d.psn_no, d.mdtrt_cert_type, d.mdtrt_cert_no, d.card_sn)
    found = service.standing(ctx.session, d.psn_no.strip())
    a = found.agreement
    wanted = to_fen(d.dpst_amt, "input.data.dpst_amt") if d.dpst_amt not in (None, "") else 0
    free = found.deposit_free and a is not None and a.available_fen >= wanted
    return {"crdtinfo": {
        "psn_no": found.psn_no, "crdt_agre_no": a.agreement_no if a else "", "bank_code": a.bank_code if a else "",
        "bank_name": found.bank_name, "agre_stas": a.status if a else "", "agre_stas_name": service.STATES[a.status] if a else "未开通",
        "crdt_lmt_amt": yuan(a.limit_fen if a and a.status != "applied" else 0),
        "avl_lmt_amt": yuan(a.available_fen if a and a.status == "active" else 0),
        "dpst_free_flag": "1" if free else "0"}}


class AdvanceIn(msgspec.Struct):
    setl_id: Required
    psn_no: Required
    # the person's agreement: their credential, as 2207 asks
    mdtrt_cert_type: Required
    mdtrt_cert_no: Required
    card_sn: str = ""
    mdtrt_id: str = ""


class In2802(msgspec.Struct):
    data: AdvanceIn


@TRANSACTIONS.register("2802", "信用就医垫付", In2802)
def advance(ctx: Context, body: In2802) -> dict:
    d = body.data
    _proven(ctx, d.psn_no, d.mdtrt_cert_type, d.mdtrt_cert_no, d.card_sn)
    done = service.advance_settlement(ctx.session, service.bank_client, d.setl_id, fixmedins_code=ctx.fixmedins_code,
                                      psn_no=d.psn_no.strip(), mdtrt_id=d.mdtrt_id.strip())
    a = done.advance
    return {"crdtpay": {"crdt_advn_no": a.advance_no, "setl_id": a.setl_id, "mdtrt_id": a.mdtrt_id, "psn_no": a.psn_no,
                        "bank_code": a.bank_code, "crdt_pay_amt": yuan(a.amount_fen), "psn_cash_pay": yuan(done.cash_left_fen),
                        "avl_lmt_amt": yuan(done.agreement.available_fen), "advn_time": clock.fmt_datetime(a.advanced_at)},
            "repyplan": [{"seq": i.seq, "due_date": clock.fmt_date(i.due_date), "amt": yuan(i.amount_fen)} for i in done.instalments]}
