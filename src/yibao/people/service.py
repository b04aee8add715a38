"""What an insured person may see and do about themselves and bound family members.

Each public function is one request's work in the transactions it needs: the views parse, call one of these and
shape the answer, and never open a transaction themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.core import clock
from yibao.core.errors import AuthError, Conflict, InputError, NotFound, YibaoError
from yibao.core.money import to_fen, yuan
from yibao.credential import realperson
from yibao.credential import service as credential
from yibao.credential.models import Channel, Device, FamilyBinding, UserSession
from yibao.credit import bank as credit_bank
from yibao.credit import service as credit
from yibao.encounter.models import Settlement, Visit
from yibao.filing import service as filing
from yibao.gateway.service import record_nonce
from yibao.ledger.models import LedgerEntry
from yibao.maternity import service as maternity_service
from yibao.payment import channel as paychannel
from yibao.payment import service as payment
from yibao.prescription import service as rx
from yibao.prescription.models import Prescription
from yibao.registry.models import Account, Contribution, Employer, Enrolment, Institution, Person
from yibao.sharing import service as sharing
from yibao.store.db import Database

log = structlog.get_logger("yibao.people")
T = TypeVar("T")

LABELS = {"310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "390": "城乡居民基本医疗保险",
          "392": "城乡居民大病医疗保险", "510": "生育保险"}
RELATIONS = {"02": "配偶", "03": "子女", "04": "父母"}


def counter_decode(db: Database, settings: Settings, clients: Any, headers: dict[str, str], body: bytes, code: str,
                   business_type: str) -> dict[str, Any]:
    """The counter's REST decode: signed like the gateway's calls, its nonce recorded the gateway's one way, then 1162's answer."""
    from yibao.credential.transactions import decoded_answer
    from yibao.gateway import auth
    from yibao.gateway.service import record_nonce

    with db.unit_of_work() as session:
        caller = auth.authenticate(clients, headers, body, {}, settings.signature_window_s)
        if not record_nonce(session, caller.access_key, caller.nonce):
            raise AuthError("nonce was already used: replayed request")
        token, person = credential.decode(session, settings, code, caller.fixmedins_code, business_type)
        return decoded_answer(session, token, person)


def mask(certno: str) -> str:
    return certno[:4] + "*" * (len(certno) - 8) + certno[-4:] if len(certno) > 8 else certno


def _family(session: Session, user_psn_no: str) -> list[dict[str, Any]]:
    return [{"id": b.id, "psn_no": p.psn_no, "name": p.psn_name, "relation": b.relation, "relation_name": RELATIONS.get(b.relation, ""),
             "status": b.status} for b, p in credential.family_members(session, user_psn_no)]


def _profile(session: Session, user_psn_no: str) -> dict[str, Any]:
    me = session.get(Person, user_psn_no)
    assert me is not None
    family = _family(session, user_psn_no)
    requests = [{"id": b.id, "holder_name": p.psn_name, "relation": b.relation}
                for b, p in session.execute(select(FamilyBinding, Person).join(Person, Person.psn_no == FamilyBinding.holder_psn_no)
                                            .where(FamilyBinding.member_psn_no == user_psn_no, FamilyBinding.status == "pending")).tuples()]
    return {"psn_no": me.psn_no, "name": me.psn_name, "certno": mask(me.certno), "gend": me.gend, "brdy": clock.fmt_date(me.brdy),
            "family": family, "requests": requests}


def _person_card(session: Session, psn_no: str) -> dict[str, Any]:
    person = session.get(Person, psn_no)
    assert person is not None
    account = session.get(Account, psn_no)
    enrolments = session.execute(select(Enrolment, Employer.emp_name).outerjoin(Employer, Employer.emp_no == Enrolment.emp_no)
                                 .where(Enrolment.psn_no == psn_no).order_by(Enrolment.insutype)).tuples().all()
    return {
        "psn_no": psn_no, "name": person.psn_name, "certno": mask(person.certno), "age": clock.age_on(person.brdy, clock.today()),
        "balance": yuan(account.balance_fen) if account else None,
        "enrolments": [{"insutype": e.insutype, "insutype_name": LABELS.get(e.insutype, e.insutype), "psn_type": e.psn_type,
                        "status": e.psn_insu_stas, "since": clock.fmt_date(e.psn_insu_date), "region": e.insuplc_admdvs,
                        "employer": emp or ""} for e, emp in enrolments],
    }


def _contributions(session: Session, psn_no: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(Contribution).where(Contribution.psn_no == psn_no).order_by(Contribution.cntr_ym.desc())).all()
    return [{"period": r.cntr_ym, "insutype": r.insutype, "base": yuan(r.cntr_base_fen), "employer": yuan(r.emp_pay_fen),
             "personal": yuan(r.psn_pay_fen), "to_account": yuan(r.acct_cred_fen), "paid_on": clock.fmt_date(r.paid_on)} for r in rows]


def _settlements(session: Session, psn_no: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.execute(select(Settlement, Institution.fixmedins_name)
                           .join(Institution, Institution.fixmedins_code == Settlement.fixmedins_code)
                           .where(Settlement.psn_no == psn_no).order_by(Settlement.setl_time.desc()).limit(limit)).tuples()
    return [{"setl_id": s.setl_id, "mdtrt_id": s.mdtrt_id, "time": clock.fmt_datetime(s.setl_time), "institution": name,
             "med_type": s.med_type, "kind": s.kind, "total": yuan(s.medfee_sumamt), "funds": yuan(s.fund_pay_sumamt),
             "account": yuan(s.acct_pay + s.acct_mulaid_pay), "cash": yuan(s.psn_cash_pay), "reversal": s.refd_setl_flag == "1",
             "reversed": bool(s.revs_setl_id) and s.refd_setl_flag == "0"}
            for s, name in rows]


def _account_movements(session: Session, psn_no: str, limit: int = 100) -> dict[str, Any]:
    account = session.get(Account, psn_no)
    if account is None:
        return {"balance": None, "movements": []}
    payments = session.execute(select(LedgerEntry.amount_fen, LedgerEntry.posted_at, LedgerEntry.psn_no, Settlement.fixmedins_code)
                               .join(Settlement, Settlement.setl_id == LedgerEntry.setl_id)
                               .where(LedgerEntry.account == f"acct:{psn_no}").order_by(LedgerEntry.posted_at.desc()).limit(limit)).all()
    credits = session.scalars(select(Contribution).where(Contribution.psn_no == psn_no, Contribution.acct_cred_fen > 0)
                              .order_by(Contribution.cntr_ym.desc()).limit(limit)).all()
    moves = [{"time": clock.fmt_datetime(t), "amount": yuan(-a), "what": "结算支付" if a > 0 else "结算撤销退回",
              "for_family": patient != psn_no, "institution": code} for a, t, patient, code in payments]
    moves += [{"time": f"{c.paid_on} 00:00:00", "amount": yuan(c.acct_cred_fen), "what": f"{c.cntr_ym} 划入", "for_family": False,
               "institution": ""} for c in credits]
    moves.sort(key=lambda m: str(m["time"]), reverse=True)
    return {"balance": yuan(account.balance_fen), "opening": yuan(account.opening_fen), "movements": moves[:limit]}


def _devices(session: Session, psn_no: str) -> list[dict[str, Any]]:
    return [{"device_id": d.device_id, "label": d.label, "channel": d.chnl_id, "status": d.status,
             "registered_at": clock.fmt_datetime(d.registered_at)}
            for d in session.scalars(select(Device).where(Device.psn_no == psn_no).order_by(Device.registered_at))]


# -- one request's work, in the transactions it needs ----------------------------------------------

@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the view read it: the bearer token ("" when none) and the peer address (for the trail)."""

    token: str
    ip: str


def _signed_in(db: Database, token: str, work: Callable[[Session, UserSession], T], *, write: bool = False) -> T:
    with db.unit_of_work(write=write) as session:
        return work(session, credential.session_person(session, token))


def _why(error: YibaoError) -> str:
    reason = getattr(error, "reason", type(error).__name__)
    cause = getattr(error, "cause", "")
    return f"{reason}: {cause}" if cause else reason


def _refused(db: Database, kind: str, subject: str, ip: str, error: YibaoError) -> None:
    audit.record_apart(db, kind, subject=subject, outcome="refused", reason=_why(error), ip=ip)


_ABOUT_THE_PERSON = ("person.signin", "person.activation")


def _attempt(db: Database, kind: str, subject: str, ip: str, work: Callable[[Session], T]) -> T:
    """`work` in one write transaction. A refusal is audited in a transaction of its own; a wrong password is also
    counted in its own (the attempt's transaction rolls back), and the refusal says what the count now is."""
    try:
        with db.unit_of_work() as session:
            return work(session)
    except credential.WrongPassword as wrong:
        with db.unit_of_work() as session:
            refusal = credential.count_wrong_password(session, wrong.psn_no)
            # signing in or activating, the ID number and name matched: the person is the subject, not the number typed
            audit.record(session, kind, actor=wrong.psn_no, subject=wrong.psn_no if kind in _ABOUT_THE_PERSON else subject,
                         outcome="refused", reason=_why(refusal), ip=ip)
        raise refusal from None
    except YibaoError as error:
        _refused(db, kind, subject, ip, error)
        raise


def _face_check(db: Database, settings: Settings, kind: str, subject: str, ip: str, certno: str, name: str, face: str,
                liveness: float) -> credential.FacePass:
    """The real-person check, outside any transaction (a provider may take seconds; SQLite has one writer)."""
    try:
        with db.unit_of_work(write=False) as session:
            checker = realperson.provider(session, settings)
        return credential.real_person(checker, certno, name, face, liveness)
    except YibaoError as error:
        if isinstance(error, (realperson.Unavailable, realperson.NotConfigured)):
            log.warning("real-person check unavailable", cause=error.cause)
        _refused(db, kind, subject, ip, error)
        raise


def count_attempt(db: Database, settings: Settings, action: str, limits: list[tuple[str, str, int]]) -> int | None:
    """Count one attempt in each (kind, key, limit) bucket, committed whatever follows; the seconds to wait if over."""
    with db.unit_of_work() as session:
        return credential.rate_limit(session, settings, action, limits)


def count_bind_attempt(db: Database, settings: Settings, caller: Caller) -> int | None:
    """As `count_attempt`, for binding: the account is the signed-in person, so strangers cannot use up its budget."""
    with db.unit_of_work() as session:
        user = credential.session_person(session, caller.token)
        return credential.rate_limit(session, settings, "bind", [("acct", user.psn_no, settings.rate_bind_account),
                                                                 ("ip", caller.ip, settings.rate_bind_ip)])


def channels(db: Database) -> list[dict[str, str]]:
    with db.unit_of_work(write=False) as session:
        return [{"chnl_id": c.chnl_id, "chnl_name": c.chnl_name, "kind": c.kind}
                for c in session.scalars(select(Channel).where(Channel.active).order_by(Channel.chnl_id))]


def activate(db: Database, settings: Settings, caller: Caller, *, chnl_id: str, psn_cert_type: str, certno: str, name: str,
             password: str, face: str, liveness: float, device_label: str, timestamp: str, signature: str, body: bytes) -> dict[str, Any]:
    """A new phone. ``timestamp``, ``signature`` and ``body``: a third-party channel's signature over the request."""
    kind, subject = "person.activation", mask(certno.strip().upper())
    try:
        with db.unit_of_work(write=False) as session:
            chnl = credential.channel(session, chnl_id)
            if chnl.kind != "platform_web":
                # third-party channels (apps, WeChat, Alipay, banks) sign with their own key; the platform's web app needs none
                credential.verify_channel_signature(session, chnl_id, timestamp, signature, body)
        if psn_cert_type not in ("", "01"):
            raise InputError("网上激活仅支持居民身份证（01）", field="psn_cert_type")
        # before the face is taken: a password that cannot be right (or set) wastes no face check
        credential.check_password_rules(password)
    except YibaoError as error:
        _refused(db, kind, subject, caller.ip, error)
        raise
    face_pass = _face_check(db, settings, kind, subject, caller.ip, certno, name, face, liveness)

    def go(session: Session) -> dict[str, Any]:
        done = credential.activate(session, settings, chnl_id=chnl_id, psn_cert_type=psn_cert_type, certno=certno, name=name,
                                   face_pass=face_pass, password=password, device_label=device_label)
        psn_no = done.credential.psn_no
        audit.record(session, kind, actor=psn_no, subject=psn_no, reason=f"channel {chnl_id}, device {done.device.device_id}", ip=caller.ip)
        return {"token": done.token, "device_id": done.device.device_id, "psn_no": psn_no, "ec_index_no": done.credential.ec_index_no}

    return _attempt(db, kind, subject, caller.ip, go)


def sign_in(db: Database, settings: Settings, caller: Caller, *, certno: str, name: str, password: str, device_id: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        person, token = credential.sign_in(session, settings, certno=certno, name=name, password=password, device_id=device_id)
        audit.record(session, "person.signin", actor=person.psn_no, subject=person.psn_no, reason=f"device {device_id}", ip=caller.ip)
        return {"token": token, "psn_no": person.psn_no, "name": person.psn_name}

    return _attempt(db, "person.signin", mask(certno.strip().upper()), caller.ip, go)


def sign_out(db: Database, token: str) -> None:
    _signed_in(db, token, lambda session, user: session.delete(user), write=True)


def reset_password(db: Database, settings: Settings, caller: Caller, *, certno: str, name: str, face: str, liveness: float,
                   password: str) -> None:
    kind, subject = "person.password_reset", mask(certno.strip().upper())
    try:
        credential.check_password_rules(password)
    except YibaoError as error:
        _refused(db, kind, subject, caller.ip, error)
        raise
    face_pass = _face_check(db, settings, kind, subject, caller.ip, certno, name, face, liveness)

    def go(session: Session) -> None:
        person = credential.reset_password(session, settings, certno=certno, name=name, face_pass=face_pass, password=password)
        audit.record(session, kind, actor=person.psn_no, subject=person.psn_no, reason="sessions ended, devices revoked", ip=caller.ip)

    _attempt(db, kind, subject, caller.ip, go)


def profile(db: Database, token: str) -> dict[str, Any]:
    return _signed_in(db, token, lambda session, user: _profile(session, user.psn_no))


def family(db: Database, token: str) -> list[dict[str, Any]]:
    return _signed_in(db, token, lambda session, user: _family(session, user.psn_no))


def _about(db: Database, token: str, psn_no: str, read: Callable[[Session, str], T]) -> T:
    """``read`` about ``psn_no``: the signed-in person or a family member bound to them."""
    def go(session: Session, user: UserSession) -> T:
        credential.require_access(session, user.psn_no, psn_no)
        return read(session, psn_no)

    return _signed_in(db, token, go)


def person_card(db: Database, token: str, psn_no: str) -> dict[str, Any]:
    return _about(db, token, psn_no, _person_card)


def account(db: Database, token: str, psn_no: str) -> dict[str, Any]:
    return _about(db, token, psn_no, _account_movements)


def contributions(db: Database, token: str, psn_no: str) -> list[dict[str, Any]]:
    return _about(db, token, psn_no, _contributions)


def settlements(db: Database, token: str, psn_no: str) -> list[dict[str, Any]]:
    return _about(db, token, psn_no, _settlements)


def issue_code(db: Database, settings: Settings, token: str, psn_no: str) -> credential.Code:
    return _signed_in(db, token, lambda session, user: credential.issue_code(session, settings, user, psn_no))


def bind(db: Database, caller: Caller, *, certno: str, name: str, relation: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        holder = session.get(Person, user.psn_no)
        assert holder is not None
        binding = credential.bind(session, holder, certno=certno, name=name, relation=relation)
        audit.record(session, "family.bind", actor=user.psn_no, subject=binding.member_psn_no,
                     reason=f"binding {binding.id} {binding.status}", ip=caller.ip)
        return {"id": binding.id, "status": binding.status, "member_psn_no": binding.member_psn_no}

    return _attempt(db, "family.bind", mask(certno.strip().upper()), caller.ip, go)


def approve(db: Database, settings: Settings, caller: Caller, binding_id: int, password: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        binding = credential.approve(session, settings, user.psn_no, binding_id, password)
        audit.record(session, "family.approve", actor=user.psn_no, subject=binding.holder_psn_no, reason=f"binding {binding.id}",
                     ip=caller.ip)
        return {"id": binding.id, "status": binding.status}

    return _attempt(db, "family.approve", f"binding {binding_id}", caller.ip, go)


def unbind(db: Database, caller: Caller, binding_id: int) -> None:
    def go(session: Session) -> None:
        user = credential.session_person(session, caller.token)
        binding = credential.unbind(session, user.psn_no, binding_id)
        other = binding.member_psn_no if user.psn_no == binding.holder_psn_no else binding.holder_psn_no
        audit.record(session, "family.unbind", actor=user.psn_no, subject=other, reason=f"binding {binding.id}", ip=caller.ip)

    _attempt(db, "family.unbind", f"binding {binding_id}", caller.ip, go)


def devices(db: Database, token: str) -> list[dict[str, Any]]:
    return _signed_in(db, token, lambda session, user: _devices(session, user.psn_no))


def revoke_device(db: Database, token: str, device_id: str) -> None:
    _signed_in(db, token, lambda session, user: credential.revoke_device(session, user.psn_no, device_id), write=True)


def visits(db: Database, token: str) -> list[dict[str, Any]]:
    """Live visit tokens (codes scanned at a counter) of the signed-in person and their active family."""
    def go(session: Session, user: UserSession) -> list[dict[str, Any]]:
        people = [user.psn_no] + [p.psn_no for b, p in credential.family_members(session, user.psn_no) if b.status == "active"]
        return [{"ec_token": t.ec_token, "psn_no": t.psn_no, "fixmedins_code": t.fixmedins_code, "business_type": t.business_type,
                 "expires_at": t.expires_at.isoformat(sep=" "), "pay_authorized": t.pay_authorized_at is not None}
                for t in credential.live_tokens(session, people)]

    return _signed_in(db, token, go)


def authorize_payment(db: Database, settings: Settings, caller: Caller, *, ec_token: str, password: str, face: str,
                      liveness: float) -> dict[str, Any]:
    """Paying a visit from the personal account, confirmed by the password or by a face check of the signed-in person."""
    kind = "person.pay_authorize"
    face_pass = None
    if face:
        with db.unit_of_work(write=False) as session:
            user = credential.session_person(session, caller.token)
            credential.payable_visit(session, user, ec_token)
            holder = session.get(Person, user.psn_no)
            assert holder is not None
            psn_no, certno, name = user.psn_no, holder.certno, holder.psn_name
        face_pass = _face_check(db, settings, kind, psn_no, caller.ip, certno, name, face, liveness)

    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        token = credential.authorize_payment(session, settings, user, ec_token=ec_token, password=password, face_pass=face_pass)
        audit.record(session, kind, actor=user.psn_no, subject=token.psn_no, reason="face" if face_pass else "password", ip=caller.ip)
        return {"ec_token": token.ec_token, "pay_authorized": True}

    return _attempt(db, kind, ec_token[:64], caller.ip, go)


def demo_faces_available(db: Database, settings: Settings) -> bool:
    # the database decides, not the environment: a production database has no demo faces whatever is set
    with db.unit_of_work(write=False) as session:
        return realperson.demo_faces_available(session, settings)


# -- filings for care away from home (异地就医备案) -----------------------------------------------------------------

def _date(text: str, field: str, label: str) -> date | None:
    if not text.strip():
        return None
    try:
        return clock.parse_date(text, field)
    except InputError:
        raise InputError(f"{label}的格式不正确（年-月-日）", field=field) from None


def filing_options(db: Database, token: str) -> dict[str, Any]:
    """What the app's form offers: the types a person may file and the regions this node knows."""
    def go(session: Session, _: UserSession) -> dict[str, Any]:
        return {"types": [{"code": c, "name": filing.TYPES[c], "full_ratio": c in filing.FULL_RATIO} for c in filing.BY_PERSON],
                "regions": filing.regions(session), "trip_days": filing.TRIP_DAYS}

    return _signed_in(db, token, go)


def filings(db: Database, token: str, psn_no: str) -> list[dict[str, Any]]:
    today = clock.today()
    return _about(db, token, psn_no, lambda session, who: [filing.shown(row, today) for row in filing.filings_of(session, who)])


def file_care_away(db: Database, caller: Caller, psn_no: str, *, filing_type: str, target_admdvs: str, begndate: str, enddate: str,
                   tel: str, addr: str, reason: str) -> dict[str, Any]:
    """The person files for themselves or a bound family member (not a referral: the referring hospital files that)."""
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        credential.require_access(session, user.psn_no, psn_no)
        if filing_type not in filing.BY_PERSON:
            raise InputError("请选择备案类型：异地长期居住、常驻异地工作或其他临时外出就医（转诊备案由转出医院办理）", field="filing_type")
        begin = _date(begndate, "begndate", "开始日期") or clock.today()
        request = filing.Request(psn_no=psn_no, insutype="", filing_type=filing_type,
                                 target_admdvs=filing.region_code(target_admdvs, "target_admdvs"), begndate=begin,
                                 enddate=_date(enddate, "enddate", "结束日期"), tel=tel, addr=addr, reason=reason)
        row = filing.file(session, request, source=filing.FROM_APP, where="")
        audit.record(session, "filing.file", actor=user.psn_no, subject=psn_no, reason=f"filing {row.trt_dcla_detl_sn}", ip=caller.ip)
        return filing.shown(row, clock.today())

    return _attempt(db, "filing.file", psn_no[:30], caller.ip, go)


def cancel_care_away(db: Database, caller: Caller, psn_no: str, trt_dcla_detl_sn: str, memo: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        credential.require_access(session, user.psn_no, psn_no)
        row = filing.cancel(session, trt_dcla_detl_sn=trt_dcla_detl_sn, psn_no=psn_no, memo=memo or "本人撤销", where="")
        audit.record(session, "filing.cancel", actor=user.psn_no, subject=psn_no, reason=f"filing {row.trt_dcla_detl_sn}", ip=caller.ip)
        return filing.shown(row, clock.today())

    return _attempt(db, "filing.cancel", trt_dcla_detl_sn[:30], caller.ip, go)


# -- mobile payment (医保移动支付) and admission by phone ---------------------------------------------------------

def _people_of(session: Session, user: UserSession) -> list[str]:
    return [user.psn_no] + [p.psn_no for b, p in credential.family_members(session, user.psn_no) if b.status == "active"]


def pay_orders(db: Database, settings: Settings, token: str) -> list[dict[str, Any]]:
    """Bills waiting for me or my bound family to pay (and those whose payment did not go through)."""
    with db.unit_of_work(write=False) as session:
        credential.session_person(session, token)  # signed in first: an anonymous look does no work
    recover_stale_charges(db, settings)

    def go(session: Session, user: UserSession) -> list[dict[str, Any]]:
        return [payment.shown(session, o) for o in payment.orders_for(session, _people_of(session, user))]

    return _signed_in(db, token, go)


def recover_stale_charges(db: Database, settings: Settings) -> int:
    """Charges a dead worker left pending (settled, the channel's answer never recorded) are rolled back as a timeout."""
    with db.unit_of_work(write=False) as session:
        stale = payment.stale_charges(session, timedelta(seconds=settings.pay_timeout_s * 3 + 60))
    for charge_id in stale:
        with db.unit_of_work() as session:
            payment.finish(session, charge_id, paychannel.PayResult("timed_out", reason="no answer recorded: rolled back"))
        log.warning("stale mobile-payment charge rolled back", charge=charge_id)
    with db.unit_of_work(write=False) as session:
        orders = payment.stale_credit_orders(session, timedelta(seconds=settings.pay_timeout_s * 3 + 60))
    for pay_ord_id in orders:
        with db.unit_of_work() as session:
            payment.credit_failed(session, pay_ord_id, "银行垫付未完成，已撤销本次医保结算")
        log.warning("stale credit-care order rolled back", pay_ord_id=pay_ord_id)
    return len(stale) + len(orders)


def pay_order(db: Database, token: str, pay_ord_id: str) -> dict[str, Any]:
    def go(session: Session, user: UserSession) -> dict[str, Any]:
        order = payment.order_of(session, pay_ord_id)
        credential.require_access(session, user.psn_no, order.psn_no)
        return payment.shown(session, order)

    return _signed_in(db, token, go)


def pay(db: Database, settings: Settings, caller: Caller, pay_ord_id: str, *, password: str, face: str, liveness: float,
        method: str = "", bank_of: credit.BankOf | None = None) -> dict[str, Any]:
    """Confirm (password or face), settle, take the own-money part through the payment channel, record the answer.

    Three steps, so no transaction waits for the provider: settle and open the charge; ask the channel; record its
    answer (paid, or the settlement rolled back). By credit care (``method`` ``credit``) the partner bank advances the
    own-money part between the first two (its own transaction); only what is over the limit goes to the channel, and a
    bank that refuses or does not answer has the settlement rolled back as a refused payment does."""
    kind = "person.mobile_pay"
    with db.unit_of_work(write=False) as session:
        user = credential.session_person(session, caller.token)
        order = payment.order_of(session, pay_ord_id)
        credential.require_access(session, user.psn_no, order.psn_no)
        channel = paychannel.channel(session, settings) if order.psn_cash_pay else None
        holder = session.get(Person, user.psn_no)
        assert holder is not None
        psn_no, certno, name = user.psn_no, holder.certno, holder.psn_name
    face_pass = _face_check(db, settings, kind, psn_no, caller.ip, certno, name, face, liveness) if face else None

    def settle(session: Session) -> payment.Started:
        user = credential.session_person(session, caller.token)
        order = payment.order_of(session, pay_ord_id, lock=True)
        credential.require_access(session, user.psn_no, order.psn_no)
        how = payment.confirm_holder(session, settings, user.psn_no, password=password, face_pass=face_pass)
        started = payment.start(session, order, user.psn_no, method)
        audit.record(session, kind, actor=user.psn_no, subject=order.psn_no, reason=f"order {pay_ord_id} by {how}, {order.method}",
                     ip=caller.ip)
        return started

    try:
        started = _attempt(db, kind, pay_ord_id[:30], caller.ip, settle)
    except payment.AmountsChanged:
        with db.unit_of_work() as session:
            payment.refresh(session, pay_ord_id)
        raise
    if started.advance:
        started = _credit_advance(db, pay_ord_id, bank_of or credit.bank_client)
    if started.charge_id:
        try:
            if channel is None:  # the pre-settlement owed nothing in cash, the settlement did
                with db.unit_of_work(write=False) as session:
                    channel = paychannel.channel(session, settings)
            result = channel.pay(started.charge_id, started.amount_fen, "医保移动支付个人自付")
        except paychannel.NotConfigured:
            result = paychannel.PayResult("refused", reason="no payment channel configured")
        except Exception as error:  # whatever went wrong, the money's fate is unknown: roll back, refund a late success
            result = paychannel.PayResult("timed_out", reason=f"channel error: {type(error).__name__}")
        if result.status != "succeeded":
            log.info("mobile payment not taken", pay_ord_id=pay_ord_id, charge=started.charge_id, status=result.status, cause=result.reason)
        with db.unit_of_work() as session:
            payment.finish(session, started.charge_id, result)
    return pay_order(db, caller.token, pay_ord_id)


def _credit_advance(db: Database, pay_ord_id: str, bank_of: credit.BankOf) -> payment.Started:
    """The partner bank advances the settled order's own-money part; refused or unanswered, the settlement is rolled back."""
    try:
        with db.unit_of_work() as session:
            return payment.advance(session, bank_of, pay_ord_id)
    except Exception as error:  # refused, unavailable, or the advance not recorded: nothing of it stands; undo the settlement
        if isinstance(error, credit_bank.BankUnavailable) or not isinstance(error, YibaoError):
            reason = "合作银行暂时无法垫付，请稍后重试或选择移动支付"
        else:
            reason = f"{str(error)[:120]}；可选择移动支付"
        log.info("credit care advance not made", pay_ord_id=pay_ord_id, cause=str(error)[:200])
        with db.unit_of_work() as session:
            payment.credit_failed(session, pay_ord_id, reason)
        return payment.Started(pay_ord_id, "", 0)


def cancel_pay_order(db: Database, caller: Caller, pay_ord_id: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        order = payment.order_of(session, pay_ord_id, lock=True)
        credential.require_access(session, user.psn_no, order.psn_no)
        payment.cancel(session, order, "本人取消")
        audit.record(session, "person.mobile_pay_cancel", actor=user.psn_no, subject=order.psn_no, reason=f"order {pay_ord_id}",
                     ip=caller.ip)
        return payment.shown(session, order)

    return _attempt(db, "person.mobile_pay_cancel", pay_ord_id[:30], caller.ip, go)


def payment_callback(db: Database, settings: Settings, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The payment provider reports a payment: verified by its signature, recorded once; a late success is refunded."""
    with db.unit_of_work(write=False) as session:
        channel = paychannel.channel(session, settings)
    nonce = headers.get("x-yb-nonce", "")
    if not channel.verify_callback(headers.get("x-yb-timestamp", ""), nonce, headers.get("x-yb-signature", ""), body,
                                   settings.signature_window_s):
        raise AuthError("callback signature does not verify (or its timestamp is outside the window)")
    try:
        note = msgspec.json.decode(body, type=Callback)
        amount = to_fen(note.amount, "amount")
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise InputError(f"not a callback: {str(error)[:100]}") from None
    if note.merchant_id != settings.pay_merchant_id:
        raise InputError("another merchant's callback", field="merchant_id")
    with db.unit_of_work() as session:
        # the nonce recorded with what the callback did (one transaction): the same signed callback again is a replay
        if not record_nonce(session, f"paycb:{settings.pay_merchant_id}"[:64], nonce):
            raise AuthError("callback nonce was already used: replayed callback")
        outcome = payment.record_callback(session, trade_no=note.trade_no, txn_id=note.txn_id, status=note.status, amount_fen=amount)
        audit.record(session, "payment.callback", subject=note.trade_no[:64],
                     reason=f"{note.status[:20]} {note.txn_id[:40]} → {outcome.status}")
    if outcome.refund is not None:
        trade_no, txn_id, refund_no, amount_fen = outcome.refund
        ok = channel.refund(trade_no, txn_id, refund_no, amount_fen)
        with db.unit_of_work() as session:
            status = payment.refunded(session, trade_no, ok)
            audit.record(session, "payment.refund", subject=trade_no[:64], outcome="ok" if ok else "refused",
                         reason=f"late success {txn_id[:40]}")
        log.warning("late payment success after rollback: refunded", trade_no=trade_no, ok=ok)
        return {"code": "SUCCESS", "status": status}
    return {"code": "SUCCESS", "status": outcome.status}


class Callback(msgspec.Struct, forbid_unknown_fields=False):
    merchant_id: str
    trade_no: str
    txn_id: str
    status: str
    amount: str


def request_admission(db: Database, caller: Caller, psn_no: str, *, fixmedins_code: str, dept_name: str, reason: str,
                      tel: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        credential.require_access(session, user.psn_no, psn_no)
        row = payment.request_admission(session, psn_no=psn_no, fixmedins_code=fixmedins_code, dept_name=dept_name, reason=reason,
                                        tel=tel, requested_by=user.psn_no)
        audit.record(session, "person.admission_request", actor=user.psn_no, subject=psn_no, reason=f"request {row.adm_req_id}",
                     ip=caller.ip)
        return payment.request_shown(session, row)

    return _attempt(db, "person.admission_request", psn_no[:30], caller.ip, go)


def admission(db: Database, token: str, psn_no: str) -> dict[str, Any]:
    """My admission requests, my stays with their running costs, and the hospitals I may ask."""
    def go(session: Session, user: UserSession) -> dict[str, Any]:
        credential.require_access(session, user.psn_no, psn_no)
        hospitals = [{"code": c, "name": n} for c, n in session.execute(
            select(Institution.fixmedins_code, Institution.fixmedins_name).where(Institution.fixmedins_type == "1")
            .order_by(Institution.fixmedins_code).limit(200))]
        return {"requests": [payment.request_shown(session, r) for r in payment.requests_of(session, psn_no)],
                "stays": payment.stays(session, psn_no), "hospitals": hospitals}

    return _signed_in(db, token, go, write=True)


def bill_stay(db: Database, caller: Caller, psn_no: str, mdtrt_id: str) -> dict[str, Any]:
    """At discharge the person asks for the stay's bill in the app (no counter): an order, pre-settled, to pay."""
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        credential.require_access(session, user.psn_no, psn_no)
        stay = session.get(Visit, mdtrt_id)
        if stay is None or stay.psn_no != psn_no or stay.kind != "inpatient":
            raise NotFound("没有找到这次住院", field="mdtrt_id")
        if stay.status != "discharged":
            raise Conflict("出院手续办理后才能在手机上结算", field="mdtrt_id")
        live = [o for o in payment.orders_for(session, [psn_no]) if o.mdtrt_id == mdtrt_id and o.status in ("presettled", "paying")]
        if live:
            return payment.shown(session, live[0])
        try:
            order = payment.post_bill(session, fixmedins_code=stay.fixmedins_code, mdtrt_id=mdtrt_id, psn_no=psn_no, where="mdtrt_id")
        except YibaoError as error:
            log.info("stay bill refused", mdtrt_id=mdtrt_id, cause=str(error)[:200])
            raise Conflict("暂时无法在手机上结算这次住院，请到医院窗口办理", field="mdtrt_id") from None
        audit.record(session, "person.stay_bill", actor=user.psn_no, subject=psn_no, reason=f"order {order.pay_ord_id}", ip=caller.ip)
        return payment.shown(session, order)

    return _attempt(db, "person.stay_bill", mdtrt_id[:30], caller.ip, go)


# -- 生育津贴 -----------------------------------------------------------------------------------------

def maternity(db: Database, token: str, psn_no: str) -> dict[str, Any]:
    """The person's (or a bound family member's) maternity allowances and the account benefits are paid to."""
    return _about(db, token, psn_no, lambda session, who: {"allowances": maternity_service.allowances_of(session, who),
                                                           "account": maternity_service.account_of(session, who)})


def set_benefit_account(db: Database, settings: Settings, caller: Caller, psn_no: str, *, bank_name: str, account_no: str,
                        password: str) -> dict[str, str]:
    """Only the person, with the consumption password, names the account their benefits are paid to."""
    def go(session: Session) -> dict[str, str]:
        user = credential.session_person(session, caller.token)
        if user.psn_no != psn_no:
            raise credential.Refused("family", "待遇发放账户只能由本人登记", "psn_no")
        credential.confirm_with_password(session, settings, user.psn_no, password)
        shown = maternity_service.set_account(session, psn_no, bank_name, account_no)
        audit.record(session, "benefit_account.set", actor=user.psn_no, subject=psn_no, reason=f"account …{shown['account_tail']}",
                     ip=caller.ip)
        return shown

    return _attempt(db, "benefit_account.set", psn_no[:30], caller.ip, go)


# -- e-prescriptions (电子处方) --------------------------------------------------------------------------------------------

def _rx_shown(session: Session, row: Any) -> dict[str, Any]:
    """A prescription as the app shows it; the pickup code only while it may be dispensed."""
    state = rx.shown_state(row)
    chosen = session.get(Institution, row.chosen_fixmedins_code) if row.chosen_fixmedins_code else None
    dispensable = state == "uploaded"
    return {"hi_rxno": row.hi_rxno, "fixmedins_name": row.fixmedins_name, "prsc_dept_name": row.prsc_dept_name,
            "prsc_dr_name": row.prsc_dr_name, "diag_name": row.diag_name, "prsc_time": clock.fmt_datetime(row.prsc_time),
            "valid_end_time": clock.fmt_datetime(row.valid_end_time), "state": rx.SHOWN[state], "state_code": state,
            "renewal": row.med_type == "14",
            "drugs": [{"name": d.get("drug_genname") or d.get("drug_prodname") or d.get("med_list_codg"), "spec": d.get("drug_spec", ""),
                       "cnt": d.get("drug_cnt", ""), "unit": d.get("drug_cnt_unit", ""), "usage": d.get("used_frqu_name", "")}
                      for d in rx.drugs_of(row)],
            "pharmacy_code": row.chosen_fixmedins_code or "", "pharmacy_name": chosen.fixmedins_name if chosen else "",
            "pharmacy_fixed": row.rx_circ_flag == "0", "delivery_mode": row.delivery_mode,
            "delivery_mode_name": rx.MODES.get(row.delivery_mode, ""), "delv_addr": row.delv_addr, "delv_stas_name": row.delv_stas_name,
            "may_choose": dispensable and row.downloaded_at is None, "epc_qrcd": row.epc_qrcd if dispensable else ""}


def prescriptions(db: Database, token: str, psn_no: str) -> list[dict[str, Any]]:
    return _about(db, token, psn_no, lambda session, who: [_rx_shown(session, row) for row in rx.prescriptions_of(session, who)])


def prescription(db: Database, token: str, psn_no: str, hi_rxno: str) -> dict[str, Any]:
    """One of the person's prescriptions, with the designated pharmacies of their region to choose from."""
    def read(session: Session, who: str) -> dict[str, Any]:
        row = session.get(Prescription, hi_rxno)
        if row is None or row.psn_no != who or row.status in ("prechecked", "signed"):
            raise NotFound("没有这张处方", field="hi_rxno")
        shown = _rx_shown(session, row)
        shown["pharmacies"] = ([{"code": p.fixmedins_code, "name": p.fixmedins_name, "addr": p.addr}
                                for p in rx.pharmacies(session, row.insuplc_admdvs)] if row.rx_circ_flag == "1" else [])
        return shown

    return _about(db, token, psn_no, read)


def choose_pharmacy(db: Database, caller: Caller, psn_no: str, hi_rxno: str, *, fixmedins_code: str, delivery_mode: str,
                    delv_addr: str) -> dict[str, Any]:
    """The person (or the family member holding the binding) chooses where the prescription is dispensed and how."""
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        credential.require_access(session, user.psn_no, psn_no)
        row = rx.choose(session, psn_no, hi_rxno, fixmedins_code=fixmedins_code, mode=delivery_mode, addr=delv_addr)
        audit.record(session, "prescription.choose", actor=user.psn_no, subject=psn_no,
                     reason=f"prescription {row.hi_rxno} at {row.chosen_fixmedins_code} mode {row.delivery_mode}", ip=caller.ip)
        return _rx_shown(session, row)

    return _attempt(db, "prescription.choose", hi_rxno[:30], caller.ip, go)
# -- 保医通: authorisations for commercial insurers ---------------------------------------------------------------

def share_options(db: Database, token: str) -> dict[str, Any]:
    """What the app's form offers: the registered insurers and the longest an authorisation may last."""
    return _signed_in(db, token, lambda session, _: {"insurers": sharing.insurers(session), "max_days": sharing.MAX_VALID_DAYS})


def consents(db: Database, token: str, psn_no: str) -> list[dict[str, Any]]:
    return _about(db, token, psn_no, sharing.consents_of)


def grant_consent(db: Database, settings: Settings, caller: Caller, psn_no: str, *, insurer_code: str, setl_ids: list[str],
                  begin_date: str, end_date: str, valid_until: str, purpose: str, password: str) -> dict[str, Any]:
    """The person signs a per-matter authorisation with the 6-digit password (a wrong one counts as anywhere else)."""
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        until = _date(valid_until, "valid_until", "授权截止日期")
        if until is None:
            raise InputError("请填写授权截止日期", field="valid_until")
        consent = sharing.grant(session, settings, user.psn_no, psn_no, insurer_code=insurer_code, setl_ids=setl_ids,
                                begin=_date(begin_date, "begin_date", "开始日期"), end=_date(end_date, "end_date", "结束日期"),
                                valid_until=until, purpose=purpose, password=password)
        audit.record(session, "sharing.consent", actor=user.psn_no, subject=psn_no,
                     reason=f"consent {consent.consent_id} to {consent.insurer_code} until {consent.valid_until}", ip=caller.ip)
        return sharing.shown(session, consent)

    return _attempt(db, "sharing.consent", psn_no[:30], caller.ip, go)


def revoke_consent(db: Database, caller: Caller, psn_no: str, consent_id: str) -> dict[str, Any]:
    def go(session: Session) -> dict[str, Any]:
        user = credential.session_person(session, caller.token)
        consent = sharing.revoke(session, user.psn_no, psn_no, consent_id)
        audit.record(session, "sharing.revoke", actor=user.psn_no, subject=psn_no, reason=f"consent {consent.consent_id}", ip=caller.ip)
        return sharing.shown(session, consent)

    return _attempt(db, "sharing.revoke", consent_id[:30], caller.ip, go)
