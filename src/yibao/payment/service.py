"""Mobile payment (医保移动支付) and admission by phone: orders, their settlement and the own-money part.

The hospital posts the bill of a visit (6201; for a stay after discharge, or the person in the app): the order is
pre-settled at once (nothing written) with the order's own token as the credential (mdtrt_cert_type 01), so the
person sees in the app what the funds, the personal account and they themselves will pay. The person (or the
bound family member who holds the phone) confirms with the 6-digit password or a face check; then

1. one transaction settles (post, as 2207/2304 would) and records a charge ``pending``: the order is ``paying``;
2. outside any transaction the payment channel is asked for the own-money part (``psn_cash_pay``);
3. one transaction records the answer: ``paid``; or, refused or no answer in time, the settlement is reversed (ledger,
   totals, balances and fee lines back to where they were; the visit open again) and the order is ``failed``: the
   person may try again, or cancel.

Credit care (信用就医) is the other method (``credit``): the same confirmation and settlement, then the partner bank
advances the own-money part (`yibao.credit.service.advance_settlement`) in its own transaction; what is over the
available limit is charged through the payment channel as above. A bank that refuses or does not answer: the
settlement is reversed as a refused payment is (the order ``failed``, payable again by either method).

A success the provider reports afterwards for a charge that was rolled back (a late callback) is refunded through the
channel and recorded on the charge; the order is never settled again for it. A callback is recorded once (by the
provider's transaction number); a repeated one changes nothing. An order has at most one charge pending or succeeded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import clock
from yibao.core.errors import Conflict, InputError, NotFound, YibaoError
from yibao.core.money import yuan
from yibao.credential import service as credential
from yibao.credential.models import Credential
from yibao.credit import service as credit
from yibao.credit.models import CreditAdvance, CreditBank
from yibao.encounter import service as encounter
from yibao.encounter.models import FeeLine, Visit
from yibao.payment.channel import PayResult
from yibao.payment.models import AdmissionRequest, PayCharge, PayOrder
from yibao.registry.models import Institution, Person

log = structlog.get_logger("yibao.payment")

METHODS = ("mobile", "credit")  # how the own-money part is paid: the payment channel, or the partner bank's advance (信用就医)
METHOD_NAMES = {"mobile": "移动支付", "credit": "信用就医（银行垫付）"}
LIVE = ("presettled", "paying", "paid")  # an order in one of these holds the visit's bill
class Unavailable(YibaoError):
    http_status = 503


STATUS_NAMES = {"presettled": "待支付", "paying": "支付中", "paid": "已支付", "failed": "支付未成功", "cancelled": "已取消",
                "refunded": "已退款"}
STAY_NAMES = {"admitted": "住院中", "discharged": "已出院待结算", "settled": "已结算"}
OPTER, OPTER_NAME = "mobile", "医保移动支付"


@dataclass(frozen=True)
class AppToken:
    """What settlement reads of a presented ecToken (credential.TokenRow's two fields it uses): the order's token, with
    the person's confirmation in the app once given."""

    psn_no: str
    pay_authorized_at: datetime | None


def _order_token(session: Session, ec_token: str, fixmedins_code: str, field: str) -> AppToken:
    order = session.scalar(select(PayOrder).where(PayOrder.pay_token == ec_token.strip()))
    if order is None or order.fixmedins_code != fixmedins_code:
        raise InputError("is not a mobile-payment order's token of this institution", field=field)
    return AppToken(order.psn_no, order.confirmed_at)


def _homes(_region: str) -> encounter.Home:
    # the person's policy, totals and accounts on this node (a person insured in another province pays at the counter)
    return encounter.LocalHome(_order_token)


def _caller(order: PayOrder, visit_admvs: str, msgid: str) -> encounter.Caller:
    return encounter.Caller(order.fixmedins_code, visit_admvs, msgid, OPTER, OPTER_NAME)


def _request(order: PayOrder) -> encounter.SettleRequest:
    return encounter.SettleRequest(psn_no=order.psn_no, mdtrt_id=order.mdtrt_id, insutype="", med_type="",
                                   medfee_sumamt=order.medfee_sumamt, acct_used=order.acct_used, cert_type="01",
                                   cert_no=order.pay_token)


def _open_total(session: Session, mdtrt_id: str) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(FeeLine.det_item_fee_sumamt_fen), 0))
                              .where(FeeLine.mdtrt_id == mdtrt_id, FeeLine.status == "open")) or 0)


def _fen(setlinfo: dict[str, Any], name: str) -> int:
    return int((setlinfo[name] * 100).to_integral_value())


# -- the hospital posts a bill (6201) --------------------------------------------------------------------------

def post_bill(session: Session, *, fixmedins_code: str, mdtrt_id: str, psn_no: str, medins_ord_no: str = "", acct_used: bool = True,
              method: str = "mobile", where: str = "input.data") -> PayOrder:
    """An order for the visit's unsettled fee lines, pre-settled (nothing settled yet)."""
    if method not in METHODS:
        raise InputError(f"'{method[:12]}' is not a payment method ({', '.join(METHODS)})", field=f"{where}.method")
    visit = session.get(Visit, mdtrt_id)
    if visit is None or visit.fixmedins_code != fixmedins_code or (psn_no and visit.psn_no != psn_no):
        raise NotFound(f"no visit {mdtrt_id[:30]} of this person at this institution", field=f"{where}.mdtrt_id")
    if visit.kind == "inpatient" and visit.status != "discharged":
        raise Conflict(f"admission {mdtrt_id} is {visit.status}: discharge it (2402) before the bill is paid in the app",
                       field=f"{where}.mdtrt_id")
    if visit.kind != "inpatient" and visit.status not in ("registered", "settled"):
        raise Conflict(f"visit {mdtrt_id} is {visit.status}", field=f"{where}.mdtrt_id")
    live = session.scalar(select(PayOrder.pay_ord_id).where(PayOrder.mdtrt_id == mdtrt_id, PayOrder.status.in_(("presettled", "paying"))))
    if live:
        raise Conflict(f"order {live} is already waiting for this visit's payment: cancel it (6401) first", field=f"{where}.mdtrt_id")
    total = _open_total(session, mdtrt_id)
    if total <= 0:
        raise Conflict("there are no unsettled fee lines to pay", field=f"{where}.mdtrt_id")
    now = clock.now()
    order = PayOrder(pay_ord_id=encounter.new_id(visit.mdtrtarea_admvs), pay_token=f"{fixmedins_code[1:7]}ec{secrets.token_hex(16)}",
                     fixmedins_code=fixmedins_code, mdtrt_id=mdtrt_id, psn_no=visit.psn_no, kind=visit.kind, method=method,
                     medins_ord_no=medins_ord_no[:40], acct_used=acct_used, status="presettled", medfee_sumamt=total,
                     fund_pay_sumamt=0, acct_pay=0, psn_cash_pay=0, created_at=now, updated_at=now)
    session.add(order)
    session.flush()
    out, _ = encounter.settle(session, _caller(order, visit.mdtrtarea_admvs, order.pay_ord_id), _request(order), post=False,
                              homes=_homes, where=where)
    _amounts(order, out["setlinfo"])
    return order


def _amounts(order: PayOrder, info: dict[str, Any]) -> None:
    order.fund_pay_sumamt = _fen(info, "fund_pay_sumamt")
    order.acct_pay = _fen(info, "acct_pay") + _fen(info, "acct_mulaid_pay")
    order.psn_cash_pay = _fen(info, "psn_cash_pay")


def order_of(session: Session, pay_ord_id: str, *, lock: bool = False, field: str = "pay_ord_id") -> PayOrder:
    stmt = select(PayOrder).where(PayOrder.pay_ord_id == pay_ord_id)
    order = session.scalar(stmt.with_for_update() if lock else stmt)
    if order is None:
        raise NotFound("没有这个支付订单", field=field)
    return order


def hospital_order(session: Session, fixmedins_code: str, pay_ord_id: str, *, lock: bool = False) -> PayOrder:
    stmt = select(PayOrder).where(PayOrder.pay_ord_id == pay_ord_id, PayOrder.fixmedins_code == fixmedins_code)
    order = session.scalar(stmt.with_for_update() if lock else stmt)
    if order is None:
        raise NotFound(f"no order {pay_ord_id[:30]} at this institution", field="input.data.pay_ord_id")
    return order


def cancel(session: Session, order: PayOrder, reason: str, where: str = "pay_ord_id") -> PayOrder:
    """The person or the hospital (6401) withdraws an unpaid order; nothing is settled then."""
    if order.status not in ("presettled", "failed"):
        raise Conflict(f"订单{STATUS_NAMES.get(order.status, order.status)}，不能取消", field=where)
    order.status, order.reason, order.updated_at = "cancelled", reason[:200], clock.now()
    return order


def shown(session: Session, order: PayOrder) -> dict[str, Any]:
    """An order as the app and 6301 show it (amounts in yuan)."""
    name = session.scalar(select(Institution.fixmedins_name).where(Institution.fixmedins_code == order.fixmedins_code)) or ""
    person = session.scalar(select(Person.psn_name).where(Person.psn_no == order.psn_no)) or ""
    charges = session.scalars(select(PayCharge).where(PayCharge.pay_ord_id == order.pay_ord_id).order_by(PayCharge.created_at)).all()
    advance = session.scalars(select(CreditAdvance).where(CreditAdvance.setl_id == order.setl_id, CreditAdvance.status != "cancelled")
                              ).first() if order.setl_id else None
    offer = credit_offer(session, order.psn_no) if order.status in ("presettled", "failed") else None
    return {"pay_ord_id": order.pay_ord_id, "ord_stas": order.status, "ord_stas_name": STATUS_NAMES.get(order.status, order.status),
            "psn_no": order.psn_no, "psn_name": person, "fixmedins_code": order.fixmedins_code, "fixmedins_name": name,
            "mdtrt_id": order.mdtrt_id, "kind": order.kind, "method": order.method,
            "method_name": METHOD_NAMES.get(order.method, order.method), "medins_ord_no": order.medins_ord_no,
            "medfee_sumamt": str(yuan(order.medfee_sumamt)), "fund_pay_sumamt": str(yuan(order.fund_pay_sumamt)),
            "acct_pay": str(yuan(order.acct_pay)), "psn_cash_pay": str(yuan(order.psn_cash_pay)), "setl_id": order.setl_id or "",
            "reason": order.reason, "crte_time": clock.fmt_datetime(order.created_at),
            "paid_time": clock.fmt_datetime(order.paid_at) if order.paid_at else "",
            # what the partner bank advanced of the own-money part (信用就医), and what it may advance (the offer)
            "credit_adv_amt": str(yuan(advance.amount_fen if advance else 0)), "credit_advance_no": advance.advance_no if advance else "",
            "channel_amt": str(yuan(order.psn_cash_pay - (advance.amount_fen if advance else 0))),
            "credit_offer": offer or {},
            "charges": [{"charge_id": c.charge_id, "status": c.status, "amount": str(yuan(c.amount_fen)),
                         "refunded": c.refunded_at is not None} for c in charges]}


# -- the person pays in the app -----------------------------------------------------------------------------

def orders_for(session: Session, psn_nos: list[str], *, open_only: bool = True) -> list[PayOrder]:
    stmt = select(PayOrder).where(PayOrder.psn_no.in_(psn_nos))
    if open_only:
        stmt = stmt.where(PayOrder.status.in_(("presettled", "paying", "failed")))
    return list(session.scalars(stmt.order_by(PayOrder.created_at.desc()).limit(100)))


def confirm_holder(session: Session, settings: Settings, holder_psn_no: str, *, password: str,
                   face_pass: credential.FacePass | None) -> str:
    """The signed-in holder confirms with their password (a wrong one raises credential.WrongPassword, to be counted) or a
    face check already passed for them; answers how."""
    holder = session.get(Person, holder_psn_no)
    cred = session.scalar(select(Credential).where(Credential.psn_no == holder_psn_no))
    assert holder is not None and cred is not None
    if face_pass is not None:
        if face_pass.certno != holder.certno.strip().upper() or face_pass.name != holder.psn_name.strip():
            raise credential.Refused("face", "刷脸未通过：与本人照片不符，请重新刷脸", "face", cause="face check was for someone else")
        return "face"
    credential.verify_password(cred, password, settings)
    return "password"


def credit_offer(session: Session, psn_no: str) -> dict[str, str] | None:
    """The person's credit care the app may offer for an order: an active agreement with some limit available."""
    agreement = credit.standing_agreement(session, psn_no)
    if agreement is None or agreement.status != "active" or agreement.available_fen <= 0:
        return None
    bank = session.get(CreditBank, agreement.bank_code)
    return {"bank_name": bank.bank_name if bank else agreement.bank_code, "available": str(yuan(agreement.available_fen))}


@dataclass(frozen=True)
class Started:
    pay_ord_id: str
    charge_id: str  # "" when nothing is owed in cash (the order is paid already) or the bank is asked first
    amount_fen: int
    # credit care: the partner bank is to advance the own-money part (`advance`) before anything is charged
    advance: bool = False


def start(session: Session, order: PayOrder, holder_psn_no: str, method: str = "") -> Started:
    """Settle the confirmed order (post) and open a charge for its own-money part (``mobile``), or leave it to the partner
    bank's advance (``credit``, then `advance`): one transaction. ``method`` is the person's choice (else the order's)."""
    if order.status in ("paying", "paid"):
        raise Conflict("该订单已支付或正在支付，请勿重复支付", field="pay_ord_id")
    if order.status not in ("presettled", "failed"):
        raise Conflict(f"订单{STATUS_NAMES.get(order.status, order.status)}，不能支付", field="pay_ord_id")
    method = method or order.method
    if method not in METHODS:
        raise InputError("请选择支付方式：移动支付或信用就医", field="method")
    if method == "credit" and credit_offer(session, order.psn_no) is None:
        raise Conflict("没有可用的信用就医额度（需已签约合作银行且额度未用完），请选择移动支付", field="method")
    order.method = method
    visit = session.get(Visit, order.mdtrt_id)
    assert visit is not None
    if _open_total(session, order.mdtrt_id) != order.medfee_sumamt:
        raise Conflict("医院已变更费用明细，请等待医院重新上传账单", field="pay_ord_id")
    now = clock.now()
    order.confirmed_at, order.confirmed_by, order.updated_at = now, holder_psn_no, now
    session.flush()
    charge_id = f"PC{now:%Y%m%d%H%M%S}{secrets.token_hex(8)}"
    try:
        out, _ = encounter.settle(session, _caller(order, visit.mdtrtarea_admvs, charge_id), _request(order), post=True, homes=_homes)
    except YibaoError as error:
        log.info("mobile payment: settlement refused", pay_ord_id=order.pay_ord_id, cause=str(error)[:200])
        raise Conflict("医保结算未通过，请到医院窗口办理", field="pay_ord_id") from None
    info = out["setlinfo"]
    shown_cash, shown_acct = order.psn_cash_pay, order.acct_pay
    _amounts(order, info)
    if order.psn_cash_pay > shown_cash or order.acct_pay > shown_acct:
        # the person confirmed less than the settlement now asks, in cash or from their personal (or family-aid) account
        # (another settlement moved their totals or balance since the bill): nothing is settled (the caller's transaction
        # rolls back); they look again (`refresh`) and confirm anew
        raise AmountsChanged("医保结算金额有变化，请查看最新金额后重新确认", field="pay_ord_id")
    order.setl_id, order.reason = info["setl_id"], ""
    if order.psn_cash_pay == 0:
        order.status, order.paid_at = "paid", now
        return Started(order.pay_ord_id, "", 0)
    order.status = "paying"
    if order.method == "credit":
        return Started(order.pay_ord_id, "", order.psn_cash_pay, advance=True)
    session.add(PayCharge(charge_id=charge_id, pay_ord_id=order.pay_ord_id, amount_fen=order.psn_cash_pay, status="pending",
                          setl_id=order.setl_id, created_at=now))
    return Started(order.pay_ord_id, charge_id, order.psn_cash_pay)


def paid_by_mobile(session: Session, setl_id: str) -> bool:
    """Whether a settlement's own-money part was paid (or is being paid) in the app: credit care's 2802 from a counter
    must not advance it again (`yibao.credit.service.COLLECTED_ELSEWHERE`)."""
    order = session.scalar(select(PayOrder.pay_ord_id).where(PayOrder.setl_id == setl_id, PayOrder.method == "mobile",
                                                             PayOrder.status.in_(("paying", "paid"))).limit(1))
    charge = session.scalar(select(PayCharge.charge_id).where(PayCharge.setl_id == setl_id, PayCharge.status == "succeeded").limit(1))
    return order is not None or charge is not None


credit.COLLECTED_ELSEWHERE.append(paid_by_mobile)


def advance(session: Session, bank_of: credit.BankOf, pay_ord_id: str) -> Started:
    """Credit care, after `start`: the partner bank advances the settlement's own-money part up to the available limit
    (one transaction with the advance's record and schedule); what is over the limit opens a charge through the payment
    channel, as mobile payment would. The bank refusing or not answering raises: the caller rolls the settlement back
    (`credit_failed`)."""
    order = order_of(session, pay_ord_id, lock=True)
    if order.status != "paying" or order.method != "credit" or not order.setl_id:
        raise Conflict("该订单不在信用就医支付中", field="pay_ord_id")
    done = credit.advance_settlement(session, bank_of, order.setl_id, psn_no=order.psn_no, mdtrt_id=order.mdtrt_id, where="pay",
                                     confirmed_in_app=True)
    now = clock.now()
    order.updated_at = now
    if done.cash_left_fen <= 0:
        order.status, order.paid_at = "paid", now
        return Started(order.pay_ord_id, "", 0)
    charge_id = f"PC{now:%Y%m%d%H%M%S}{secrets.token_hex(8)}"
    session.add(PayCharge(charge_id=charge_id, pay_ord_id=order.pay_ord_id, amount_fen=done.cash_left_fen, status="pending",
                          setl_id=order.setl_id, created_at=now))
    return Started(order.pay_ord_id, charge_id, done.cash_left_fen)


def credit_failed(session: Session, pay_ord_id: str, reason: str) -> PayOrder:
    """The bank did not advance (refused, unavailable, or the advance's transaction failed): the settlement is reversed as a
    refused payment's is, the order ``failed`` and payable again. An order that moved on meanwhile is left as it is."""
    order = order_of(session, pay_ord_id, lock=True)
    pending = session.scalar(select(PayCharge.charge_id).where(PayCharge.pay_ord_id == pay_ord_id, PayCharge.status == "pending"))
    if order.status == "paying" and order.method == "credit" and order.setl_id and pending is None:
        _roll_back(session, order, reason)
    return order


def stale_credit_orders(session: Session, older_than: timedelta) -> list[str]:
    """Credit-care orders settled whose bank advance was never recorded (the worker died between the two steps)."""
    pending = select(PayCharge.pay_ord_id).where(PayCharge.status == "pending")
    return list(session.scalars(select(PayOrder.pay_ord_id).where(PayOrder.method == "credit", PayOrder.status == "paying",
                                                                  PayOrder.updated_at < clock.now() - older_than,
                                                                  PayOrder.pay_ord_id.not_in(pending)).limit(20)))


class AmountsChanged(Conflict):
    reason = "amounts-changed"


def refresh(session: Session, pay_ord_id: str) -> None:
    """Pre-settle an unpaid order again (its amounts as a settlement now would have them)."""
    order = order_of(session, pay_ord_id, lock=True)
    if order.status not in ("presettled", "failed"):
        return
    visit = session.get(Visit, order.mdtrt_id)
    assert visit is not None
    order.confirmed_at = None
    session.flush()
    out, _ = encounter.settle(session, _caller(order, visit.mdtrtarea_admvs, order.pay_ord_id), _request(order), post=False,
                              homes=_homes)
    _amounts(order, out["setlinfo"])
    order.updated_at = clock.now()


def _charge(session: Session, charge_id: str) -> PayCharge | None:
    return session.scalar(select(PayCharge).where(PayCharge.charge_id == charge_id).with_for_update())


def _roll_back(session: Session, order: PayOrder, reason: str) -> None:
    """Reverse the order's settlement (as 2208/2305 would): ledger, totals, balances and fee lines back; the visit open."""
    visit = session.get(Visit, order.mdtrt_id)
    assert visit is not None and order.setl_id
    encounter.reverse(session, _caller(order, visit.mdtrtarea_admvs, f"RB{order.setl_id}"[:40]), setl_id=order.setl_id,
                      mdtrt_id=order.mdtrt_id, psn_no=order.psn_no, homes=_homes)
    order.status, order.setl_id, order.reason, order.updated_at = "failed", None, reason[:200], clock.now()


def finish(session: Session, charge_id: str, result: PayResult) -> PayOrder:
    """Record the channel's answer to a charge: paid, or the settlement rolled back. A callback that came first wins."""
    charge = _charge(session, charge_id)
    assert charge is not None
    order = order_of(session, charge.pay_ord_id, lock=True)
    if charge.status != "pending":
        return order  # the provider's callback recorded it already
    charge.answered_at = clock.now()
    if result.status == "succeeded":
        charge.status, charge.provider_txn_id = "succeeded", result.txn_id
        order.status, order.paid_at, order.updated_at = "paid", clock.now(), clock.now()
        return order
    charge.status, charge.reason = ("refused" if result.status == "refused" else "timed_out"), result.reason[:200]
    if result.txn_id and result.status == "refused":
        charge.provider_txn_id = result.txn_id
    _roll_back(session, order, "支付被拒绝" if result.status == "refused" else "支付超时，已撤销本次医保结算")
    return order


@dataclass(frozen=True)
class CallbackOutcome:
    """What a callback did; ``refund`` names the charge to refund through the channel (outside the transaction)."""

    status: str
    refund: tuple[str, str, str, int] | None = None  # trade_no, txn_id, refund_no, amount


def record_callback(session: Session, *, trade_no: str, txn_id: str, status: str, amount_fen: int) -> CallbackOutcome:
    """The provider reports a payment. Idempotent by its transaction number; a success for a charge that was rolled back
    is refunded, never settled again."""
    charge = _charge(session, trade_no)
    if charge is None:
        raise NotFound("unknown trade_no", field="trade_no")
    if amount_fen != charge.amount_fen:
        raise InputError(f"amount {yuan(amount_fen)} is not the charge's {yuan(charge.amount_fen)}", field="amount")
    if charge.provider_txn_id and charge.provider_txn_id != txn_id and charge.status not in ("refused",):
        raise Conflict("the charge was paid under another transaction number", field="txn_id")
    if status != "SUCCESS":
        return CallbackOutcome(charge.status)  # only a success moves money; the synchronous answer records refusals
    order = order_of(session, charge.pay_ord_id, lock=True)
    if charge.status == "pending":
        charge.status, charge.provider_txn_id, charge.answered_at = "succeeded", txn_id, clock.now()
        order.status, order.paid_at, order.updated_at = "paid", clock.now(), clock.now()
        return CallbackOutcome("succeeded")
    if charge.status in ("succeeded", "refunded"):
        return CallbackOutcome(charge.status)  # a repeated callback
    # refused or timed out, the settlement rolled back: the money the provider took goes back
    charge.provider_txn_id = txn_id
    charge.refund_id = refund_no(charge.charge_id)
    charge.status = "refunding"
    return CallbackOutcome("refunding", (charge.charge_id, txn_id, charge.refund_id, charge.amount_fen))


def refund_no(charge_id: str) -> str:
    """A charge's one refund number: asking again (a retry, a repeated callback) cannot give back twice."""
    return f"RF{charge_id[2:]}"


def refund_paid(session: Session, order: PayOrder, reason: str, refund: Callable[[str, str, str, int], bool]) -> PayOrder:
    """6203: the hospital gives a paid order back: the settlement reversed (as 2208/2305) and the own-money part refunded
    through the channel, in the caller's transaction (a refusal by the channel undoes the reversal with it)."""
    if order.status != "paid":
        raise Conflict(f"order is {order.status}: only a paid order is refunded", field="input.data.pay_ord_id")
    charge = session.scalar(select(PayCharge).where(PayCharge.pay_ord_id == order.pay_ord_id, PayCharge.status == "succeeded")
                            .with_for_update())
    visit = session.get(Visit, order.mdtrt_id)
    assert visit is not None and order.setl_id
    encounter.reverse(session, _caller(order, visit.mdtrtarea_admvs, f"RF{order.setl_id}"[:40]), setl_id=order.setl_id,
                      mdtrt_id=order.mdtrt_id, psn_no=order.psn_no, homes=_homes, where="input.data")
    if charge is not None:
        charge.refund_id = refund_no(charge.charge_id)
        if not refund(charge.charge_id, charge.provider_txn_id or "", charge.refund_id, charge.amount_fen):
            raise Unavailable("the payment channel did not confirm the refund: nothing was changed; try again")
        charge.status, charge.refunded_at = "refunded", clock.now()
    order.status, order.setl_id, order.reason, order.updated_at = "refunded", None, reason[:200], clock.now()
    return order


def refunded(session: Session, charge_id: str, ok: bool) -> str:
    charge = _charge(session, charge_id)
    assert charge is not None
    if charge.status == "refunding":
        charge.status = "refunded" if ok else "refund_failed"
        if ok:
            charge.refunded_at = clock.now()
    return charge.status


def stale_charges(session: Session, older_than: timedelta) -> list[str]:
    """Charges still pending well past the channel's timeout: the worker that settled them died before it recorded the
    channel's answer. They are rolled back as a timeout is (`finish`); a success the provider reports later is refunded."""
    return list(session.scalars(select(PayCharge.charge_id).where(PayCharge.status == "pending",
                                                                   PayCharge.created_at < clock.now() - older_than).limit(20)))


# -- admission by phone -------------------------------------------------------------------------------------

def request_admission(session: Session, *, psn_no: str, fixmedins_code: str, dept_name: str, reason: str, tel: str,
                      requested_by: str) -> AdmissionRequest:
    inst = session.scalar(select(Institution).where(Institution.fixmedins_code == fixmedins_code))
    if inst is None or inst.fixmedins_type == "2":
        raise InputError("请选择办理住院的医院", field="fixmedins_code")
    if not dept_name.strip():
        raise InputError("请填写科室", field="dept_name")
    pending = session.scalar(select(AdmissionRequest.adm_req_id).where(AdmissionRequest.psn_no == psn_no,
                                                                       AdmissionRequest.status == "pending"))
    if pending:
        raise Conflict("已有待医院确认的入院申请，请先等待确认或撤销", field="fixmedins_code")
    row = AdmissionRequest(adm_req_id=encounter.new_id(fixmedins_code[1:7]), psn_no=psn_no, fixmedins_code=fixmedins_code,
                           dept_name=dept_name.strip()[:50], reason=reason.strip()[:200], tel=tel.strip()[:50], status="pending",
                           requested_by=requested_by, created_at=clock.now())
    session.add(row)
    return row


def link_admissions(session: Session, requests: list[AdmissionRequest]) -> None:
    """A pending request is admitted once the hospital's 2401 admitted the person there on or after its day."""
    for row in requests:
        if row.status != "pending":
            continue
        stay = session.scalar(select(Visit.mdtrt_id).where(Visit.psn_no == row.psn_no, Visit.fixmedins_code == row.fixmedins_code,
                                                           Visit.kind == "inpatient", Visit.status != "cancelled",
                                                           Visit.begntime >= row.created_at - timedelta(days=1))
                              .order_by(Visit.begntime).limit(1))
        if stay:
            row.status, row.mdtrt_id = "admitted", stay


def pending_requests(session: Session, fixmedins_code: str) -> list[AdmissionRequest]:
    rows = list(session.scalars(select(AdmissionRequest).where(AdmissionRequest.fixmedins_code == fixmedins_code,
                                                               AdmissionRequest.status == "pending")
                                .order_by(AdmissionRequest.created_at)))
    link_admissions(session, rows)
    return [r for r in rows if r.status == "pending"]


def stays(session: Session, psn_no: str) -> list[dict[str, Any]]:
    """The person's stays of the last year with their running costs (fee lines uploaded with 2301) and bills."""
    visits = session.scalars(select(Visit).where(Visit.psn_no == psn_no, Visit.kind == "inpatient", Visit.status != "cancelled",
                                                 Visit.begntime >= clock.now() - timedelta(days=366))
                             .order_by(Visit.begntime.desc()).limit(20)).all()
    shown_stays = []
    for v in visits:
        lines = session.execute(select(func.count(FeeLine.id), func.coalesce(func.sum(FeeLine.det_item_fee_sumamt_fen), 0))
                                .where(FeeLine.mdtrt_id == v.mdtrt_id, FeeLine.status != "cancelled")).one()
        name = session.scalar(select(Institution.fixmedins_name).where(Institution.fixmedins_code == v.fixmedins_code)) or ""
        order = session.scalar(select(PayOrder).where(PayOrder.mdtrt_id == v.mdtrt_id, PayOrder.status.in_(LIVE + ("failed",)))
                               .order_by(PayOrder.created_at.desc()).limit(1))
        shown_stays.append({"mdtrt_id": v.mdtrt_id, "fixmedins_code": v.fixmedins_code, "fixmedins_name": name,
                            "dept_name": v.dept_name or "", "status": v.status,
                            "status_name": STAY_NAMES.get(v.status, v.status),
                            "begntime": clock.fmt_datetime(v.begntime), "endtime": clock.fmt_datetime(v.endtime) if v.endtime else "",
                            "lines": int(lines[0]), "running_total": str(yuan(int(lines[1]))),
                            "pay_ord_id": order.pay_ord_id if order else "", "ord_stas": order.status if order else "",
                            **_paid_how(session, order)})
    return shown_stays


def _paid_how(session: Session, order: PayOrder | None) -> dict[str, str]:
    """How a paid stay's own part was paid: the method, and what the partner bank advanced (信用就医)."""
    if order is None or order.status != "paid":
        return {"pay_method_name": "", "credit_adv_amt": ""}
    advanced = session.scalar(select(func.coalesce(func.sum(CreditAdvance.amount_fen), 0))
                              .where(CreditAdvance.setl_id == order.setl_id, CreditAdvance.status != "cancelled")) or 0
    return {"pay_method_name": METHOD_NAMES.get(order.method, order.method), "credit_adv_amt": str(yuan(int(advanced)))}


def requests_of(session: Session, psn_no: str) -> list[AdmissionRequest]:
    rows = list(session.scalars(select(AdmissionRequest).where(AdmissionRequest.psn_no == psn_no)
                                .order_by(AdmissionRequest.created_at.desc()).limit(20)))
    link_admissions(session, rows)
    return rows


def request_shown(session: Session, row: AdmissionRequest) -> dict[str, Any]:
    name = session.scalar(select(Institution.fixmedins_name).where(Institution.fixmedins_code == row.fixmedins_code)) or ""
    return {"adm_req_id": row.adm_req_id, "psn_no": row.psn_no, "fixmedins_code": row.fixmedins_code, "fixmedins_name": name,
            "dept_name": row.dept_name, "reason": row.reason, "status": row.status,
            "status_name": {"pending": "待医院确认", "admitted": "已入院", "cancelled": "已撤销"}.get(row.status, row.status),
            "mdtrt_id": row.mdtrt_id, "req_time": clock.fmt_datetime(row.created_at)}

