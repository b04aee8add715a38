"""保医通: a commercial insurer reads a person's basic-insurance settlements only under the person's per-matter
authorisation (一事一授权), and every read, granted or refused, is a link of an SM3 hash chain.

- Insurers are registered by the bureau (`add_insurer`, the CLI's ``yibao insurer add``): a code and a random secret.
- The person signs an authorisation in the app with the 6-digit password (`grant`): one insurer, the settlements
  (picked, or those settled between two dates, fixed at signing), the last day the insurer may read. Revocable.
  The authorisation's number (``consent_id``) is what the person gives the insurer for the matter.
- The insurer signs each request (`authenticate`): hex HMAC-SM3(secret, METHOD ⏎ path?query ⏎ timestamp ⏎ nonce ⏎ body);
  the timestamp within the signature window, the nonce never seen before.
- `fetch` answers exactly the authorised settlements as a FHIR Bundle (sharing/fhir.py); anything else is refused.
- `append` links an access to the chain under a lock of its head row; `verify` walks it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import clock, crypto
from yibao.core.errors import AuthError, Conflict, InputError, NotFound
from yibao.credential import service as credential
from yibao.credential.models import Credential
from yibao.encounter.models import Diagnosis, FeeLine, Settlement, Visit
from yibao.gateway.service import record_nonce
from yibao.registry.models import Institution, Person
from yibao.sharing import fhir
from yibao.sharing.models import AccessRecord, ChainHead, Consent, ConsentSettlement, Insurer
from yibao.store import sql
from yibao.store.db import Database

log = structlog.get_logger("yibao.sharing")

GENESIS = "0" * 64
HEAD_ID = 1
MAX_VALID_DAYS = 366  # an authorisation lasts at most a year
MAX_SETTLEMENTS = 200  # one matter: a claim, not a person's whole history
INSURER_CODE = re.compile(r"[A-Z0-9]{4,20}")
INSUTYPES = {"310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "390": "城乡居民基本医疗保险",
             "392": "城乡居民大病医疗保险", "510": "生育保险"}
NONCE_MIN, NONCE_MAX = 8, 64
HEADERS = ("x-yb-access-key", "x-yb-timestamp", "x-yb-nonce", "x-yb-signature")


class Refused(AuthError):
    """An insurer's request refused: 401 when it is not who it says (signature, time, nonce), 403 when it asks for
    what it was not authorised to read. ``reason`` is the problem's title and the chain row's reason."""

    def __init__(self, reason: str, message: str, status: int = 403, insurer_code: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.http_status = status
        self.insurer_code = insurer_code


# -- insurers -------------------------------------------------------------------------------------------------

def add_insurer(session: Session, code: str, name: str) -> str:
    """Register an insurer; its secret (shown once by the CLI, sealed at rest)."""
    code = code.strip().upper()
    if not INSURER_CODE.fullmatch(code):
        raise InputError("an insurer's code is 4 to 20 capital letters or digits", field="code")
    if not name.strip():
        raise InputError("an insurer needs a name", field="name")
    if session.get(Insurer, code) is not None:
        raise Conflict(f"insurer {code} is registered already", field="code")
    secret = crypto.new_secret()
    session.add(Insurer(insurer_code=code, insurer_name=name.strip()[:100], secret=secret, active=True, added_at=clock.now()))
    return secret


def insurers(session: Session) -> list[dict[str, str]]:
    return [{"insurer_code": i.insurer_code, "insurer_name": i.insurer_name}
            for i in session.scalars(select(Insurer).where(Insurer.active).order_by(Insurer.insurer_code))]


# -- the person's authorisations ------------------------------------------------------------------------------

def _standing(session: Session, psn_no: str, setl_ids: list[str] | None, begin: date | None, end: date | None) -> list[str]:
    """The person's settlements that an authorisation may name: theirs, not reversal rows; by number or settled in
    [begin, end]."""
    stmt = select(Settlement.setl_id).where(Settlement.psn_no == psn_no, Settlement.refd_setl_flag == "0")
    if setl_ids is not None:
        stmt = stmt.where(Settlement.setl_id.in_(setl_ids))
    else:
        assert begin is not None and end is not None
        stmt = stmt.where(Settlement.setl_time >= datetime.combine(begin, datetime.min.time()),
                          Settlement.setl_time < datetime.combine(end + timedelta(days=1), datetime.min.time()))
    return list(session.scalars(stmt.order_by(Settlement.setl_time, Settlement.setl_id)))


def grant(session: Session, settings: Settings, user_psn_no: str, psn_no: str, *, insurer_code: str, setl_ids: list[str],
          begin: date | None, end: date | None, valid_until: date, purpose: str, password: str) -> Consent:
    """The signed-in person (``user_psn_no``) authorises ``insurer_code`` to read settlements of ``psn_no`` (themself or a
    family member they hold) until ``valid_until``, confirmed with their password (a wrong one counts toward the lock)."""
    credential.require_access(session, user_psn_no, psn_no)
    insurer = session.get(Insurer, insurer_code)
    if insurer is None or not insurer.active:
        raise InputError("请选择保险公司", field="insurer_code")
    today = clock.today()
    if valid_until < today:
        raise InputError("授权截止日期不能早于今天", field="valid_until")
    if valid_until > today + timedelta(days=MAX_VALID_DAYS):
        raise InputError("授权期限最长一年", field="valid_until")
    if setl_ids:
        if begin or end:
            raise InputError("请选择结算记录或日期范围，二者选其一", field="setl_ids")
        wanted = list(dict.fromkeys(s.strip() for s in setl_ids if s.strip()))
        if len(wanted) > MAX_SETTLEMENTS:
            raise InputError(f"一次授权最多{MAX_SETTLEMENTS}笔结算", field="setl_ids")
        found = _standing(session, psn_no, wanted, None, None)
        if len(found) != len(wanted):
            raise InputError("所选结算记录不存在或不属于本人", field="setl_ids")
        scope = "list"
    else:
        if begin is None or end is None:
            raise InputError("请选择要授权的结算记录，或填写开始和结束日期", field="setl_ids")
        if begin > end:
            raise InputError("开始日期不能晚于结束日期", field="begin_date")
        found = _standing(session, psn_no, None, begin, end)
        if not found:
            raise InputError("这段时间内没有结算记录", field="begin_date")
        if len(found) > MAX_SETTLEMENTS:
            raise InputError(f"一次授权最多{MAX_SETTLEMENTS}笔结算，请缩短日期范围", field="begin_date")
        scope = "range"
    signer = session.scalar(select(Credential).where(Credential.psn_no == user_psn_no))
    if signer is None:
        raise credential.Refused("no-password", "尚未设置消费密码，请刷脸重置密码", "password")
    credential.verify_password(signer, password, settings)
    consent = Consent(consent_id=f"{secrets.randbelow(10**20):020d}", psn_no=psn_no, insurer_code=insurer.insurer_code,
                      granted_by=user_psn_no, scope=scope, range_begin=begin if scope == "range" else None,
                      range_end=end if scope == "range" else None, valid_until=valid_until, purpose=purpose.strip()[:100],
                      granted_at=clock.now(), revoked_at=None)
    session.add(consent)
    session.flush()
    session.add_all([ConsentSettlement(consent_id=consent.consent_id, setl_id=s) for s in found])
    session.flush()
    return consent


def state_of(consent: Consent, today: date) -> str:
    if consent.revoked_at is not None:
        return "已撤销"
    return "已过期" if consent.valid_until < today else "有效"


def shown(session: Session, consent: Consent) -> dict[str, Any]:
    """An authorisation as the app lists it: what, to whom, until when, and how often the insurer has read it."""
    insurer = session.get(Insurer, consent.insurer_code)
    setl_ids = list(session.scalars(select(ConsentSettlement.setl_id).where(ConsentSettlement.consent_id == consent.consent_id)
                                    .order_by(ConsentSettlement.setl_id)))
    reads = session.scalar(select(func.count()).select_from(AccessRecord)
                           .where(AccessRecord.consent_id == consent.consent_id, AccessRecord.outcome == "ok")) or 0
    state = state_of(consent, clock.today())
    return {"consent_id": consent.consent_id, "psn_no": consent.psn_no, "insurer_code": consent.insurer_code,
            "insurer_name": insurer.insurer_name if insurer else consent.insurer_code, "scope": consent.scope,
            "range_begin": clock.fmt_date(consent.range_begin), "range_end": clock.fmt_date(consent.range_end),
            "valid_until": clock.fmt_date(consent.valid_until), "purpose": consent.purpose, "setl_ids": setl_ids,
            "granted_at": clock.fmt_datetime(consent.granted_at), "revoked_at": clock.fmt_datetime(consent.revoked_at),
            "state": state, "may_revoke": state == "有效", "reads": reads}


def consents_of(session: Session, psn_no: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(Consent).where(Consent.psn_no == psn_no).order_by(Consent.granted_at.desc(), Consent.consent_id))
    return [shown(session, c) for c in rows]


def revoke(session: Session, user_psn_no: str, psn_no: str, consent_id: str) -> Consent:
    credential.require_access(session, user_psn_no, psn_no)
    consent = session.get(Consent, consent_id)
    if consent is None or consent.psn_no != psn_no:
        raise NotFound("没有找到这条授权", field="consent_id")
    if consent.revoked_at is None:
        consent.revoked_at = clock.now()
    return consent


# -- the insurer's side ---------------------------------------------------------------------------------------

def signature(secret: str, method: str, target: str, timestamp: str, nonce: str, body: bytes = b"") -> str:
    """hex HMAC-SM3(secret, METHOD ⏎ path?query ⏎ timestamp ⏎ nonce ⏎ body): what an insurer sends in x-yb-signature."""
    return crypto.hmac_sm3_hex(secret.encode(), f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode() + body)


def sign_headers(code: str, secret: str, method: str, target: str, body: bytes = b"", *, timestamp_ms: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:
    """The headers an insurer sends (for its SDK, the bench and the tests)."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    return {"x-yb-access-key": code, "x-yb-timestamp": ts, "x-yb-nonce": nonce,
            "x-yb-signature": signature(secret, method, target, ts, nonce, body)}


def authenticate(session: Session, settings: Settings, headers: Mapping[str, str], method: str, target: str, body: bytes) -> Insurer:
    """The insurer that signed this request (its nonce recorded in ``session``), or `Refused` (401)."""
    code, timestamp, nonce, sig = (headers.get(h, "") for h in HEADERS)
    if not code or not timestamp or not nonce or not sig:
        raise Refused("unsigned", "sign the request: x-yb-access-key, x-yb-timestamp, x-yb-nonce, x-yb-signature", 401)
    insurer = session.get(Insurer, code) if INSURER_CODE.fullmatch(code) else None
    if insurer is None or not insurer.active:
        raise Refused("unknown-key", "unknown or inactive insurer key", 401)
    known = insurer.insurer_code
    try:
        skew = abs(time.time() * 1000 - int(timestamp))
    except ValueError:
        raise Refused("timestamp", "x-yb-timestamp must be Unix milliseconds", 401, known) from None
    if skew > settings.signature_window_s * 1000:
        raise Refused("timestamp", f"x-yb-timestamp is outside the {settings.signature_window_s} s window", 401, known)
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise Refused("nonce", f"x-yb-nonce must be {NONCE_MIN} to {NONCE_MAX} characters", 401, known)
    if not crypto.equal(signature(insurer.secret, method, target, timestamp, nonce, body), sig.lower()):
        raise Refused("signature", "bad signature", 401, known)
    if not record_nonce(session, f"insurer:{known}", nonce):
        raise Refused("replay", "x-yb-nonce was already used: replayed request", 401, known)
    return insurer


@dataclass(frozen=True)
class Ask:
    """What the insurer asked for: the authorisation, and optionally some of its settlements or its person."""

    consent_id: str
    setl_ids: tuple[str, ...] = ()
    patient: str = ""


def _claims(session: Session, setl_ids: list[str]) -> list[fhir.Claim]:
    claims = []
    for s, v, inst_name in session.execute(select(Settlement, Visit, Institution.fixmedins_name)
                                           .join(Visit, Visit.mdtrt_id == Settlement.mdtrt_id)
                                           .join(Institution, Institution.fixmedins_code == Settlement.fixmedins_code)
                                           .where(Settlement.setl_id.in_(setl_ids))
                                           .order_by(Settlement.setl_time, Settlement.setl_id)).tuples():
        diagnoses = [fhir.Diagnosis(d.diag_code, d.diag_name, d.maindiag_flag == "1")
                     for d in session.scalars(select(Diagnosis).where(Diagnosis.mdtrt_id == v.mdtrt_id, Diagnosis.vali_flag == "1")
                                              .order_by(Diagnosis.maindiag_flag.desc(), Diagnosis.diag_srt_no, Diagnosis.id))]
        if not diagnoses and v.dise_codg:
            diagnoses = [fhir.Diagnosis(v.dise_codg, v.dise_name, True)]
        lines = [fhir.Line(f.feedetl_sn, f.med_list_codg, f.med_list_name, f.chrgitm_lv, f.fee_ocur_time, Decimal(str(f.cnt)),
                           Decimal(str(f.pric)), f.det_item_fee_sumamt_fen,
                           {"fulamt_ownpay_fen": f.fulamt_ownpay_fen, "overlmt_fen": f.overlmt_fen, "preselfpay_fen": f.preselfpay_fen,
                            "inscp_scp_fen": f.inscp_scp_fen})
                 for f in session.scalars(select(FeeLine).where(FeeLine.setl_id == s.setl_id).order_by(FeeLine.id))]
        amounts = {col: int(getattr(s, col)) for col, _ in fhir.FUNDS + fhir.PAID_BY_PERSON}
        amounts["fund_pay_sumamt"] = s.fund_pay_sumamt
        claims.append(fhir.Claim(setl_id=s.setl_id, mdtrt_id=s.mdtrt_id, kind=s.kind, med_type=s.med_type, insutype=s.insutype,
                                 insutype_name=INSUTYPES.get(s.insutype, s.insutype), fixmedins_code=s.fixmedins_code,
                                 fixmedins_name=inst_name, setl_time=s.setl_time, begntime=v.begntime, endtime=v.endtime,
                                 reversed=bool(s.revs_setl_id), total_fen=s.medfee_sumamt, amounts=amounts, diagnoses=diagnoses,
                                 lines=lines))
    return claims


def _authorised(session: Session, insurer: Insurer, ask: Ask) -> tuple[Consent, list[str]]:
    """The authorisation and the settlements it lets this insurer read now, or `Refused` (403)."""
    consent = session.get(Consent, ask.consent_id) if ask.consent_id else None
    code = insurer.insurer_code
    if consent is None:
        raise Refused("consent-unknown", "no such authorisation", 403, code)
    if consent.insurer_code != code:
        raise Refused("consent-other-insurer", "this authorisation was given to another insurer", 403, code)
    if consent.revoked_at is not None:
        raise Refused("consent-revoked", "the person revoked this authorisation", 403, code)
    if consent.valid_until < clock.today():
        raise Refused("consent-expired", f"this authorisation ended on {consent.valid_until}", 403, code)
    if ask.patient and ask.patient != consent.psn_no:
        raise Refused("outside-consent", "this authorisation is about another person", 403, code)
    covered = list(session.scalars(select(ConsentSettlement.setl_id).where(ConsentSettlement.consent_id == consent.consent_id)
                                   .order_by(ConsentSettlement.setl_id)))
    if ask.setl_ids:
        outside = sorted(set(ask.setl_ids) - set(covered))
        if outside:
            raise Refused("outside-consent", f"not covered by this authorisation: {', '.join(outside)[:120]}", 403, code)
        covered = sorted(set(ask.setl_ids))
    return consent, covered


def fetch(db: Database, settings: Settings, headers: Mapping[str, str], method: str, target: str, body: bytes, ask: Ask,
          ip: str = "", base: str = "") -> bytes:
    """One insurer request: authenticated, checked against the authorisation, answered as a validated FHIR Bundle, and
    linked to the chain (a refusal in a transaction of its own, since the request's rolls back)."""
    try:
        # the nonce is kept in a transaction of its own: a request refused further on cannot be sent again
        with db.unit_of_work() as session:
            insurer = authenticate(session, settings, headers, method, target, body)
        with db.unit_of_work() as session:
            consent, setl_ids = _authorised(session, insurer, ask)
            person = session.get(Person, consent.psn_no)
            assert person is not None
            answer = fhir.bundle(consent.consent_id, fhir.patient(person.psn_no, person.certno, person.gend, person.brdy),
                                 _claims(session, setl_ids), clock.now(), base)
            # last, so the chain's head is locked only until the commit
            append(session, insurer.insurer_code, consent.consent_id, "ok", "", setl_ids, ip)
        return answer
    except Refused as refusal:
        if refusal.insurer_code:  # a known insurer: in the chain; a stranger's noise only in the log
            with db.unit_of_work() as session:
                append(session, refusal.insurer_code, ask.consent_id[:32], "refused", refusal.reason, list(ask.setl_ids), ip)
        log.info("insurer refused", insurer=refusal.insurer_code or headers.get("x-yb-access-key", "")[:20], reason=refusal.reason,
                 consent=ask.consent_id[:32], ip=ip)
        raise


# -- the hash chain -------------------------------------------------------------------------------------------

def canonical(seq: int, at: datetime, insurer_code: str, consent_id: str, outcome: str, reason: str, setl_ids: str, ip: str) -> bytes:
    """A row's content as hashed: a JSON array, fixed order, no spaces, UTF-8."""
    return json.dumps([seq, at.isoformat(sep=" ", timespec="microseconds"), insurer_code, consent_id, outcome, reason, setl_ids, ip],
                      ensure_ascii=False, separators=(",", ":")).encode()


def link(prev_hash: str, content: bytes) -> str:
    return crypto.sm3_hex(prev_hash.encode() + content)


def _head_insert(dialect_name: str) -> Any:
    return (sql.dialect_insert(dialect_name)(sql.table_of(ChainHead)).values(id=HEAD_ID, seq=0, hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["id"]))


def append(session: Session, insurer_code: str, consent_id: str, outcome: str, reason: str, setl_ids: list[str], ip: str) -> AccessRecord:
    """Link one access to the chain. The head row is locked (FOR UPDATE on PostgreSQL; SQLite has one writer), so
    appends are serialised and each row's prev_hash is the row before it."""
    session.execute(_head_insert(session.get_bind().dialect.name))
    head = session.scalars(select(ChainHead).where(ChainHead.id == HEAD_ID).with_for_update()
                           .execution_options(populate_existing=True)).one()
    seq, at, ids = head.seq + 1, clock.now(), ",".join(setl_ids)[:4000]
    record = AccessRecord(seq=seq, at=at, insurer_code=insurer_code[:20], consent_id=consent_id[:32], outcome=outcome[:10],
                          reason=reason[:200], setl_ids=ids, ip=ip[:64], prev_hash=head.hash, hash="")
    record.hash = link(head.hash, canonical(seq, at, record.insurer_code, record.consent_id, record.outcome, record.reason, ids,
                                            record.ip))
    session.add(record)
    head.seq, head.hash = seq, record.hash
    session.flush()
    return record


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    broken_seq: int | None = None
    why: str = ""
    head: str = GENESIS  # the last row's hash (of a whole chain): what to publish

    def line(self) -> str:
        if self.ok:
            return f"OK: {self.count} accesses, the chain is unbroken"
        return f"BROKEN at access {self.broken_seq}: {self.why}"


def verify(session: Session, batch: int = 5000) -> Verdict:
    """Walk the chain from the first row: each row's number follows the last, its prev_hash is the last row's hash and
    its hash is SM3 of its content; the head names the last row. The first row that fails is reported."""
    prev, expected, count, after = GENESIS, 1, 0, 0
    while True:
        rows = session.scalars(select(AccessRecord).where(AccessRecord.seq > after).order_by(AccessRecord.seq).limit(batch)).all()
        for r in rows:
            if r.seq != expected:
                return Verdict(False, count, expected, f"row {expected} is missing (next is {r.seq})")
            if r.prev_hash != prev:
                return Verdict(False, count, r.seq, "its prev_hash is not the previous row's hash (a row was removed, inserted or changed)")
            if link(prev, canonical(r.seq, r.at, r.insurer_code, r.consent_id, r.outcome, r.reason, r.setl_ids, r.ip)) != r.hash:
                return Verdict(False, count, r.seq, "its content does not match its hash (the row was changed)")
            prev, expected, count, after = r.hash, expected + 1, count + 1, r.seq
        if len(rows) < batch:
            break
    head = session.get(ChainHead, HEAD_ID)
    if head is None:
        return Verdict(True, 0) if count == 0 else Verdict(False, count, count, "the chain's head row is missing")
    if head.seq != count or head.hash != prev:
        return Verdict(False, count, count + 1, f"the head names access {head.seq} but the log ends at {count} (rows cut off the end)")
    return Verdict(True, count, head=prev)


def accesses(session: Session, limit: int = 50, insurer_code: str | None = None) -> list[AccessRecord]:
    stmt = select(AccessRecord).order_by(AccessRecord.seq.desc()).limit(limit)
    if insurer_code:
        stmt = stmt.where(AccessRecord.insurer_code == insurer_code.strip().upper())
    return list(session.scalars(stmt))
