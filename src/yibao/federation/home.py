"""The insured person's home: what a province's node does for care its people had in another province.

``settle`` reserves (the policy, totals and accounts applied and posted, recorded as ``reserved``), ``confirm``
(the place of care committed), ``release`` (it never did), ``reverse`` (2208 there), ``person``/``prove`` (1101 and
the credential check of 2201 there). Each is idempotent by its key.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core import clock, crypto
from yibao.core.errors import Conflict, InputError, NotFound
from yibao.encounter import service as encounter
from yibao.encounter import treatment
from yibao.federation import outbox
from yibao.federation.models import AwaySettlement
from yibao.federation.protocol import ENCODER
from yibao.ledger import service as ledger
from yibao.registry import service as registry
from yibao.registry.models import Enrolment, Person
from yibao.registry.transactions import PersonQuery, look_up


class SettleCall(msgspec.Struct):
    key: str
    setl_id: str
    post: bool
    facts: encounter.CareFacts


class ReverseCall(msgspec.Struct):
    setl_id: str
    reversal_id: str


def _locked(session: Session, **where: str) -> AwaySettlement | None:
    column, value = next(iter(where.items()))
    return session.scalars(select(AwaySettlement).where(getattr(AwaySettlement, column) == value).with_for_update()).first()


def settle(session: Session, origin: str, call: SettleCall, use_token: registry.TokenCheck) -> dict[str, Any]:
    """2206/2207 (2303/2304) at the place of care: the home's part. A retry of a reserved request answers the same."""
    # what the request asks (a retry's clock differs: its settlement time is not part of it)
    fingerprint = crypto.sm3_hex(ENCODER.encode(dataclasses.replace(call.facts, setl_time=datetime(2000, 1, 1))))
    if not call.post:
        answer = encounter.home_settle(session, call.facts, post=False, setl_id=call.setl_id, where="input.data", use_token=use_token)
        return msgspec.to_builtins(answer)
    if call.facts.mdtrtarea_admvs[:2] != origin[:2]:
        # the reduction for care away depends on where care happened: only the node of that province may say so
        raise InputError(f"care in {call.facts.mdtrtarea_admvs[:6]} is not care in the calling node's province ({origin})",
                         field="mdtrtarea_admvs")
    found = _locked(session, msg_key=call.key)
    if found is not None:
        if found.request_sm3 != fingerprint or found.origin_admdvs != origin:
            raise Conflict("this msgid was used for another settlement of the visit: send a new msgid", field="msgid")
        if found.state in ("reserved", "confirmed"):
            return json.loads(found.answer)
        raise Conflict(f"this request's settlement was {found.state} at the insured province (no answer was taken in time): "
                       "settle again with a new msgid", field="msgid")
    answer = encounter.home_settle(session, call.facts, post=True, setl_id=call.setl_id, where="input.data", use_token=use_token)
    out, posting = answer.out, answer.posting
    assert posting is not None
    posting.add(f"clearing:{origin}", -encounter.home_share(out))
    posting.write(session)
    answer = dataclasses.replace(answer, posting=None, setl_time=call.facts.setl_time)
    document = msgspec.to_builtins(answer)
    facts = call.facts
    session.add(AwaySettlement(
        setl_id=call.setl_id, msg_key=call.key, request_sm3=fingerprint, origin_admdvs=origin, fixmedins_code=facts.fixmedins_code,
        mdtrt_id=facts.mdtrt_id, psn_no=facts.psn_no, insutype=facts.insutype, med_type=facts.med_type, kind=facts.kind,
        year=facts.care_day.year, setl_time=facts.setl_time, refd_setl_flag="0", revs_setl_id=None, state="reserved",
        medfee_sumamt=out.medfee_sumamt, hifp_pay=out.hifp_pay, hifob_pay=out.hifob_pay, cvlserv_pay=out.cvlserv_pay,
        hifmi_pay=out.hifmi_pay, maf_pay=out.maf_pay, fund_pay_sumamt=out.fund_pay_sumamt, acct_pay=out.acct_pay,
        acct_mulaid_pay=out.acct_mulaid_pay, ytd_otp_dedc=out.ytd_delta.otp_dedc, ytd_hifp_otp=out.ytd_delta.hifp_otp,
        ytd_inscp_self=out.ytd_delta.inscp_self, ytd_admission=1 if answer.counts_admission else 0,
        opsp_dise_code=answer.opsp_dise_code, ytd_opsp_dedc=out.chronic_delta.dedc, answer=json.dumps(document, ensure_ascii=False),
        created_at=clock.now(), decided_at=None))
    session.flush()
    return document


def _clearing_event(session: Session, row: AwaySettlement, home: str) -> None:
    outbox.clearing(session, side="home", setl_id=row.setl_id, home=home, care=row.origin_admdvs, amount_fen=encounter.home_share(row),
                    setl_time=row.setl_time)


def reservation(session: Session, key: str) -> AwaySettlement | None:
    return session.scalars(select(AwaySettlement).where(AwaySettlement.msg_key == key)).first()


def confirm(session: Session, key: str, home: str) -> str:
    """The place of care committed the settlement: the reservation stands, and the hub hears what the home paid."""
    row = _locked(session, msg_key=key)
    if row is None:
        raise NotFound(f"no reservation {key[:120]}", field="msg_key")
    if row.state == "reserved":
        row.state, row.decided_at = "confirmed", clock.now()
        _clearing_event(session, row, home)
    return row.state


def _undo(session: Session, row: AwaySettlement, reversal_id: str, state: str, when: datetime) -> int:
    """Undo what a settlement moved here (totals, accounts, postings) under a reversal row; the person's balance after."""
    balc = encounter.home_reverse(session, row)
    posting = ledger.Posting(reversal_id, row.psn_no)
    for account, amount in ledger.entries(session, row.setl_id):
        posting.add(account, -amount)
    posting.write(session)
    negated = {name: -getattr(row, name) for name in (
        "medfee_sumamt", "hifp_pay", "hifob_pay", "cvlserv_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "acct_pay",
        "acct_mulaid_pay", "ytd_otp_dedc", "ytd_hifp_otp", "ytd_inscp_self", "ytd_admission", "ytd_opsp_dedc")}
    session.add(AwaySettlement(
        setl_id=reversal_id, msg_key=f"reversal:{reversal_id}", request_sm3="", origin_admdvs=row.origin_admdvs,
        fixmedins_code=row.fixmedins_code, mdtrt_id=row.mdtrt_id, psn_no=row.psn_no, insutype=row.insutype, med_type=row.med_type,
        kind=row.kind, year=row.year, setl_time=when, refd_setl_flag="1", revs_setl_id=row.setl_id, state="confirmed",
        opsp_dise_code=row.opsp_dise_code, answer=json.dumps({"balc": balc}), created_at=clock.now(), decided_at=clock.now(), **negated))
    row.state, row.revs_setl_id, row.decided_at = state, reversal_id, clock.now()
    session.flush()
    return balc


def release(session: Session, key: str) -> str:
    """The place of care never committed the settlement (it said so, and can no longer): undo the reservation."""
    row = _locked(session, msg_key=key)
    if row is None:
        raise NotFound(f"no reservation {key[:120]}", field="msg_key")
    if row.state == "reserved":
        _undo(session, row, f"R{row.setl_id[1:]}", "released", clock.now())
    return row.state


def reverse(session: Session, origin: str, call: ReverseCall, home: str) -> dict[str, Any]:
    """2208/2305 at the place of care: undo the home's part under the place of care's reversal number. A retry (the
    answer was lost) gets the reversal already made, under its number, which the place of care then uses."""
    row = _locked(session, setl_id=call.setl_id)
    if row is None or row.origin_admdvs != origin:
        raise NotFound(f"the insured province has no settlement {call.setl_id} of this node", field="input.data.setl_id")
    if row.state == "reversed":
        reversal = session.get(AwaySettlement, row.revs_setl_id)
        balc = json.loads(reversal.answer).get("balc", 0) if reversal is not None else 0
        return {"balc": balc, "reversal_id": row.revs_setl_id}
    if row.state == "released":
        raise Conflict(f"settlement {call.setl_id} was released at the insured province", field="input.data.setl_id")
    if row.state == "reserved":  # the place of care has it (it asks to reverse it): it was committed
        confirm(session, row.msg_key, home)
    balc = _undo(session, row, call.reversal_id, "reversed", clock.now())
    reversal = session.get(AwaySettlement, call.reversal_id)
    assert reversal is not None
    _clearing_event(session, reversal, home)
    return {"balc": balc, "reversal_id": call.reversal_id}


def stale_reservations(session: Session, older_than: datetime, limit: int = 100) -> list[tuple[str, str]]:
    """(msg_key, place of care) of reservations still waiting for the place of care's word."""
    rows = session.execute(select(AwaySettlement.msg_key, AwaySettlement.origin_admdvs)
                           .where(AwaySettlement.state == "reserved", AwaySettlement.created_at < older_than)
                           .order_by(AwaySettlement.created_at).limit(limit))
    return [(key, origin) for key, origin in rows]


# -- the person: 1101 and the credential check of 2201/2401/2101 at the place of care ---------------------------------

def _copy(session: Session, person: Any) -> dict[str, Any]:
    """The person and their enrolments, as the place of care keeps them (to register visits and answer 1101)."""
    keep = ("psn_no", "psn_cert_type", "certno", "psn_name", "gend", "naty", "brdy", "ntly", "card_no", "card_sn")
    enrolments = session.scalars(select(Enrolment).where(Enrolment.psn_no == person.psn_no)).all()
    return {"person": {name: getattr(person, name) for name in keep},
            "enrolments": [{"insutype": e.insutype, "psn_type": e.psn_type, "psn_insu_stas": e.psn_insu_stas,
                            "psn_insu_date": e.psn_insu_date, "paus_insu_date": e.paus_insu_date,
                            "insuplc_admdvs": e.insuplc_admdvs, "cvlserv_flag": e.cvlserv_flag} for e in enrolments]}


def person(session: Session, fixmedins_code: str, query: PersonQuery, use_token: registry.TokenCheck) -> dict[str, Any]:
    found, answer = look_up(session, fixmedins_code, query, use_token)
    return {"answer": answer, **_copy(session, found)}


class ProveCall(msgspec.Struct):
    psn_no: str
    cert_type: str
    cert_no: str
    card_sn: str = ""
    fixmedins_code: str = ""


def prove(session: Session, call: ProveCall, use_token: registry.TokenCheck) -> dict[str, Any]:
    found = session.get(Person, call.psn_no)
    if found is None:
        raise NotFound(f"the insured province has no person {call.psn_no[:30]}", field="input.data.psn_no")
    if not call.cert_no.strip():
        raise InputError("required field is empty (必填项为空): the credential must identify the person", field="input.data.mdtrt_cert_no")
    registry.verify_credential(session, registry.person(session, call.psn_no, "input.data"), call.cert_type, call.cert_no,
                               call.card_sn, "input.data", call.fixmedins_code, use_token)
    return _copy(session, found)


class TreatmentCall(msgspec.Struct):
    psn_no: str
    insutype: str
    place: str
    med_type: str
    day: date
    dise_codg: str = ""


def treatment_check(session: Session, origin: str, call: TreatmentCall) -> list[dict[str, Any]]:
    """2001 at the place of care: the checks of the person's enrolment, contributions, registrations and filing for care
    in that province, as findings (code, enjoyed, message)."""
    if call.place[:2] != origin[:2]:
        raise InputError(f"care in {call.place[:6]} is not care in the calling node's province ({origin})", field="mdtrtarea_admvs")
    found = treatment.assess(treatment.facts_at(session, psn_no=call.psn_no, insutype=call.insutype, place=call.place,
                                                med_type=call.med_type, day=call.day, dise_codg=call.dise_codg))
    return [{"code": f.code, "enjoyed": f.enjoyed, "message": f.message} for f in found]
