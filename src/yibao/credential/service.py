"""The credential service: activation, password, sessions, family, codes, decoding, visit tokens."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import clock, crypto, idcard
from yibao.core.errors import AuthError, Conflict, InputError, NotFound
from yibao.credential import codec
from yibao.credential.models import (
    Channel,
    Credential,
    Device,
    FamilyBinding,
    QrKey,
    UsedCode,
    UserSession,
    VisitToken,
)
from yibao.credential.realperson import provider
from yibao.registry.models import Person
from yibao.registry.service import PERSON
from yibao.store import sql

MAX_PASSWORD_FAILURES = 5
LOCKOUT = timedelta(minutes=30)
ADULT_AGE = 16  # below this a guardian holds the credential
KEY_ROTATION = timedelta(days=1)


class Refused(AuthError):
    """A credential refusal with a machine-readable reason (expired, replayed, forged, revoked, locked…)."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        self.reason = reason
        super().__init__(message, field=field)
        # not signed in → 401; signed in but not allowed (or a failed check) → 403
        self.http_status = 401 if reason in ("session", "revoked") else 403


# -- passwords (scrypt) ------------------------------------------------------------------------

def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def check_password_rules(password: str, field: str = "password") -> None:
    if not re.fullmatch(r"\d{6}", password or ""):
        raise InputError("the consumption password is 6 digits", field=field)
    if len(set(password)) == 1 or password in "0123456789" or password in "9876543210":
        raise InputError("the password is too easy to guess (same or consecutive digits)", field=field)


def set_password(credential: Credential, password: str) -> None:
    check_password_rules(password)
    credential.pwd_salt = os.urandom(16)
    credential.pwd_hash = _scrypt(password, credential.pwd_salt)
    credential.pwd_failures = 0
    credential.locked_until = None


def verify_password(credential: Credential, password: str) -> None:
    """Check the password; five failures lock it for 30 minutes (reset through a real-person check)."""
    now = clock.now()
    if credential.locked_until and credential.locked_until > now:
        raise Refused("locked", f"the password is locked until {clock.fmt_datetime(credential.locked_until)} after "
                                f"{MAX_PASSWORD_FAILURES} wrong attempts; reset it with a face check", "password")
    if credential.pwd_hash is None or credential.pwd_salt is None:
        raise Refused("no-password", "no consumption password is set", "password")
    if not crypto.equal(_scrypt(password or "", credential.pwd_salt), credential.pwd_hash):
        credential.pwd_failures += 1
        if credential.pwd_failures >= MAX_PASSWORD_FAILURES:
            credential.locked_until = now + LOCKOUT
            credential.pwd_failures = 0
            raise Refused("locked", f"wrong password; locked for {int(LOCKOUT.total_seconds() // 60)} minutes", "password")
        left = MAX_PASSWORD_FAILURES - credential.pwd_failures
        raise Refused("wrong-password", f"wrong password; {left} attempt{'s' if left > 1 else ''} left before the lock", "password")
    credential.pwd_failures = 0
    credential.locked_until = None


# -- real name and real person -----------------------------------------------------------------

def real_name(session: Session, psn_cert_type: str, certno: str, name: str) -> Person:
    """实名: the certificate number must be valid and the name must match the registry."""
    if psn_cert_type not in ("", "01"):
        raise InputError("only resident ID cards (01) can activate online", field="psn_cert_type")
    idcard.validate(certno, "certno")
    person = session.scalar(select(Person).where(Person.psn_cert_type == "01", Person.certno == certno.strip().upper()))
    if person is None or person.psn_name != (name or "").strip():
        # one message for both, so the endpoint cannot be used to probe who is insured
        raise Refused("real-name", "the ID number and name do not match an insured person", "certno")
    return person


def real_person(person: Person, face: str, liveness: float) -> None:
    """实人: a live face that matches the person."""
    result = provider().verify(person, face or "", liveness)
    if not result.live:
        raise Refused("liveness", f"liveness check failed: {result.reason}", "face")
    if not result.matched:
        raise Refused("face", f"face check failed: {result.reason}", "face")


def channel(session: Session, chnl_id: str) -> Channel:
    found = session.get(Channel, chnl_id)
    if found is None or not found.active:
        raise Refused("channel", f"unknown or disabled channel {chnl_id}", "chnl_id")
    return found


def verify_channel_signature(session: Session, chnl_id: str, timestamp: str, signature: str, body: bytes, window_s: int = 300) -> Channel:
    """Channels (apps, WeChat, Alipay, banks) sign activation calls: hex HMAC-SM3(secret, timestamp ⏎ body)."""
    found = channel(session, chnl_id)
    try:
        skew = abs(time.time() * 1000 - int(timestamp))
    except ValueError:
        raise Refused("channel", "x-yb-timestamp must be Unix milliseconds") from None
    if skew > window_s * 1000:
        raise Refused("channel", "stale channel signature")
    if not crypto.equal(crypto.hmac_sm3_hex(found.secret.encode(), f"{timestamp}\n".encode() + body), (signature or "").lower()):
        raise Refused("channel", "the channel signature does not match")
    return found


# -- activation, devices, sessions --------------------------------------------------------------

@dataclass
class Activated:
    credential: Credential
    device: Device
    token: str


def _new_device(session: Session, psn_no: str, chnl_id: str, label: str) -> Device:
    for _ in range(5):
        device = Device(device_id=secrets.token_hex(16), psn_no=psn_no, chnl_id=chnl_id, device_no=secrets.randbelow(2**31 - 1) + 1,
                        label=label[:100], status="active", registered_at=clock.now())
        try:
            with session.begin_nested():
                session.add(device)
                session.flush()
            return device
        except IntegrityError:
            continue
    raise Conflict("could not allocate a device number; retry")


def open_session(session: Session, psn_no: str, device_id: str, settings: Settings) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(UserSession(token_sm3=crypto.sm3_hex(token.encode()), psn_no=psn_no, device_id=device_id, created_at=now,
                            expires_at=now + timedelta(seconds=settings.session_ttl_s)))
    return token


def activate(session: Session, settings: Settings, *, chnl_id: str, psn_cert_type: str, certno: str, name: str, face: str,
             liveness: float, password: str, device_label: str) -> Activated:
    channel(session, chnl_id)
    person = real_name(session, psn_cert_type, certno, name)
    if clock.age_on(person.brdy, clock.today()) < ADULT_AGE:
        raise Refused("minor", "a minor's credential is held by a guardian: the guardian adds the child under 亲情账户", "certno")
    real_person(person, face, liveness)
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    if credential is None:
        credential = Credential(ec_index_no=secrets.token_hex(16).upper(), psn_no=person.psn_no, chnl_id=chnl_id, status="active",
                                activated_at=clock.now(), pwd_failures=0)
        session.add(credential)
        set_password(credential, password)
    else:
        # activating again on another phone or channel: the same checks, and the password must be the person's
        if credential.status != "active":
            credential.status = "active"
        if credential.pwd_hash is None:
            set_password(credential, password)
        else:
            verify_password(credential, password)
    session.flush()
    device = _new_device(session, person.psn_no, chnl_id, device_label)
    return Activated(credential, device, open_session(session, person.psn_no, device.device_id, settings))


def sign_in(session: Session, settings: Settings, *, certno: str, name: str, password: str, device_id: str) -> tuple[Person, str]:
    person = real_name(session, "01", certno, name)
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    if credential is None or credential.status != "active":
        raise Refused("not-activated", "the credential is not activated: activate it first", "certno")
    device = session.get(Device, device_id) if device_id else None
    if device is None or device.psn_no != person.psn_no or device.status != "active":
        raise Refused("device", "this device is not registered or was revoked: activate the credential on it", "device_id")
    verify_password(credential, password)
    return person, open_session(session, person.psn_no, device.device_id, settings)


def session_person(session: Session, token: str) -> UserSession:
    row = session.get(UserSession, crypto.sm3_hex(token.encode())) if token else None
    if row is None or row.expires_at < clock.now():
        raise Refused("session", "not signed in or the session expired")
    device = session.get(Device, row.device_id)
    if device is None or device.status != "active":
        raise Refused("revoked", "this device was revoked")
    return row


def reset_password(session: Session, *, certno: str, name: str, face: str, liveness: float, password: str) -> None:
    person = real_name(session, "01", certno, name)
    real_person(person, face, liveness)
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    if credential is None:
        raise Refused("not-activated", "the credential is not activated", "certno")
    set_password(credential, password)


def revoke_device(session: Session, psn_no: str, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.psn_no != psn_no:
        raise NotFound("no such device of yours", field="device_id")
    device.status, device.revoked_at = "revoked", clock.now()
    return device


# -- family (亲情账户) ----------------------------------------------------------------------------

def family_members(session: Session, holder_psn_no: str) -> list[tuple[FamilyBinding, Person]]:
    rows = session.execute(select(FamilyBinding, Person).join(Person, Person.psn_no == FamilyBinding.member_psn_no)
                           .where(FamilyBinding.holder_psn_no == holder_psn_no, FamilyBinding.status != "revoked")
                           .order_by(FamilyBinding.id)).tuples()
    return list(rows)


def can_act_for(session: Session, holder_psn_no: str, subject_psn_no: str) -> bool:
    if holder_psn_no == subject_psn_no:
        return True
    return session.scalar(select(FamilyBinding.id).where(FamilyBinding.holder_psn_no == holder_psn_no,
                                                         FamilyBinding.member_psn_no == subject_psn_no,
                                                         FamilyBinding.status == "active")) is not None


def require_access(session: Session, holder_psn_no: str, subject_psn_no: str) -> None:
    if not can_act_for(session, holder_psn_no, subject_psn_no):
        raise Refused("family", "this person is not you or a bound family member", "psn_no")


def bind(session: Session, holder: Person, *, certno: str, name: str, relation: str) -> FamilyBinding:
    if relation not in ("02", "03", "04"):
        raise InputError("relation must be 02 (spouse), 03 (child) or 04 (parent)", field="relation")
    member = real_name(session, "01", certno, name)
    if member.psn_no == holder.psn_no:
        raise InputError("you cannot bind yourself", field="certno")
    existing = session.scalar(select(FamilyBinding).where(FamilyBinding.holder_psn_no == holder.psn_no,
                                                          FamilyBinding.member_psn_no == member.psn_no))
    if existing is not None and existing.status != "revoked":
        raise Conflict(f"already bound ({existing.status})", field="certno")
    same_household = holder.hshld_id is not None and holder.hshld_id == member.hshld_id
    minor = clock.age_on(member.brdy, clock.today()) < ADULT_AGE
    if minor and not same_household:
        raise Refused("family", "a minor can only be bound by a guardian in the same household register", "certno")
    now = clock.now()
    binding = existing or FamilyBinding(holder_psn_no=holder.psn_no, member_psn_no=member.psn_no, created_at=now)
    binding.relation = relation
    # the household register proves the relation; otherwise the member approves in their own app
    binding.status = "active" if same_household else "pending"
    binding.approved_at = now if same_household else None
    session.add(binding)
    session.flush()
    return binding


def approve(session: Session, member_psn_no: str, binding_id: int) -> FamilyBinding:
    binding = session.get(FamilyBinding, binding_id)
    if binding is None or binding.member_psn_no != member_psn_no or binding.status != "pending":
        raise NotFound("no pending family request for you with this id", field="id")
    binding.status, binding.approved_at = "active", clock.now()
    return binding


def unbind(session: Session, psn_no: str, binding_id: int) -> FamilyBinding:
    binding = session.get(FamilyBinding, binding_id)
    if binding is None or psn_no not in (binding.holder_psn_no, binding.member_psn_no) or binding.status == "revoked":
        raise NotFound("no such family binding of yours", field="id")
    binding.status = "revoked"
    return binding


# -- codes --------------------------------------------------------------------------------------

def _material(row: QrKey) -> codec.KeyMaterial:
    return codec.KeyMaterial(row.kid, row.enc_key, row.mac_key)


# Per database: the keys read in the last 30 s (every worker reads the same rows).
_KEY_CACHE: dict[str, dict[str, object]] = {}


def keys(session: Session) -> tuple[codec.KeyMaterial, dict[int, codec.KeyMaterial]]:
    """The current sealing key and every key still able to open codes; rotated daily, shared by all workers."""
    cache = _KEY_CACHE.setdefault(str(session.get_bind().url), {"loaded": 0.0, "keys": {}, "current": None})
    if time.monotonic() - float(cache["loaded"]) < 30 and cache["current"] is not None:  # type: ignore[arg-type]
        return cache["current"], cache["keys"]  # type: ignore[return-value]
    rows = list(session.scalars(select(QrKey).order_by(QrKey.kid)))
    now = clock.now()
    if not rows or rows[-1].created_at < now - KEY_ROTATION:
        kid = (rows[-1].kid % 255) + 1 if rows else 1
        fresh = QrKey(kid=kid, enc_key=os.urandom(16), mac_key=os.urandom(32), created_at=now)
        try:
            with session.begin_nested():
                existing = session.get(QrKey, kid)
                if existing is not None:
                    session.delete(existing)
                    session.flush()
                session.add(fresh)
                session.flush()
        except IntegrityError:
            pass
        rows = list(session.scalars(select(QrKey).order_by(QrKey.kid)))
    # keys older than two rotations can no longer have live codes
    live = [r for r in rows if r.created_at >= now - 2 * KEY_ROTATION]
    current = max(live, key=lambda r: r.created_at)
    cache.update(loaded=time.monotonic(), keys={r.kid: _material(r) for r in live}, current=_material(current))
    return cache["current"], cache["keys"]  # type: ignore[return-value]


@dataclass(frozen=True)
class Code:
    text: str
    psn_no: str
    expires_at: datetime
    ttl_s: int


DEVICE = sql.Statement("SELECT chnl_id, device_no FROM ec_device WHERE device_id = :device_id", Device.__table__)
CREDENTIAL_STATUS = sql.Statement("SELECT status FROM ec_credential WHERE psn_no = :psn_no", Credential.__table__)


def issue_code(session: Session, settings: Settings, user: UserSession, subject_psn_no: str) -> Code:
    """A display code, sealed without writing anything: one HMAC and one SM4 pass after two indexed reads."""
    require_access(session, user.psn_no, subject_psn_no)
    device = sql.first(session, DEVICE, device_id=user.device_id)
    assert device is not None
    status = sql.values(session, CREDENTIAL_STATUS, psn_no=subject_psn_no)
    if subject_psn_no == user.psn_no and status != ["active"]:
        raise Refused("revoked", "the credential is not active")
    current, _ = keys(session)
    issued = int(time.time())
    text = codec.seal(codec.Claims(subject_psn_no, device.chnl_id, device.device_no, issued, settings.qr_ttl_s), current)
    return Code(text, subject_psn_no, clock.now() + timedelta(seconds=settings.qr_ttl_s), settings.qr_ttl_s)


_TOKEN = VisitToken.__table__
DEVICE_BY_NO = sql.Statement("SELECT device_id, psn_no, status FROM ec_device WHERE device_no = :device_no", Device.__table__)
USE_CODE = sql.Statement("INSERT INTO ec_used_code (nonce, used_at, fixmedins_code) VALUES (:nonce, :used_at, :fixmedins_code) "
                         "ON CONFLICT DO NOTHING RETURNING nonce", UsedCode.__table__)
ISSUE_TOKEN = sql.Statement("INSERT INTO ec_token (ec_token, psn_no, fixmedins_code, business_type, device_id, issued_at, expires_at, uses, "
                            "max_uses, pay_authorized_at) VALUES (:ec_token, :psn_no, :fixmedins_code, :business_type, :device_id, "
                            ":issued_at, :expires_at, :uses, :max_uses, :pay_authorized_at)", _TOKEN)
TOKEN = sql.Statement("SELECT t.*, d.status AS device_status FROM ec_token t LEFT JOIN ec_device d ON d.device_id = t.device_id "
                      "WHERE t.ec_token = :ec_token", _TOKEN)
COUNT_USE = sql.Statement("UPDATE ec_token SET uses = uses + 1 WHERE ec_token = :ec_token", _TOKEN)


def decode(session: Session, settings: Settings, code_text: str, fixmedins_code: str, business_type: str) -> tuple[sql.Record, sql.Record]:
    """At the counter: a displayed code → who it is and a visit token for this institution."""
    _, material = keys(session)
    try:
        claims = codec.open_code(code_text, material, int(time.time()))
    except codec.CodeError as error:
        raise Refused(error.reason, str(error), "ecQrCode") from None
    device = sql.first(session, DEVICE_BY_NO, device_no=claims.device_no)
    if device is None or device.status != "active":
        raise Refused("revoked", "the phone that showed this code was reported lost or revoked", "ecQrCode")
    if device.psn_no != claims.psn_no and not can_act_for(session, device.psn_no, claims.psn_no):
        raise Refused("family", "the family binding behind this code was removed", "ecQrCode")
    now = clock.now()
    # one statement records the code as used; no row back means it was used before
    if not sql.values(session, USE_CODE, nonce=claims.code_id, used_at=now, fixmedins_code=fixmedins_code):
        raise Refused("replayed", "this code was already used: a screenshot or a copy; show the live code", "ecQrCode")
    person = sql.first(session, PERSON, psn_no=claims.psn_no)
    if person is None:
        raise Refused("forged", "the code names no insured person", "ecQrCode")
    token = sql.Record({"ec_token": f"{fixmedins_code[1:7]}ec{secrets.token_hex(16)}", "psn_no": person.psn_no,
                        "fixmedins_code": fixmedins_code, "business_type": business_type or "01101", "device_id": device.device_id,
                        "issued_at": now, "expires_at": now + timedelta(seconds=settings.ec_token_ttl_s), "uses": 0,
                        "max_uses": settings.ec_token_max_uses, "pay_authorized_at": None})
    sql.execute(session, ISSUE_TOKEN, **token.__dict__)
    return token, person


def use_token(session: Session, ec_token: str, fixmedins_code: str, field: str) -> sql.Record:
    """Every transaction that presents an ecToken: right institution, inside its window, within its uses."""
    token = sql.first(session, TOKEN, ec_token=ec_token.strip()) if ec_token else None
    if token is None:
        raise Refused("unknown-token", "unknown ecToken: decode the patient's code first (1162)", field)
    if token.fixmedins_code != fixmedins_code:
        raise Refused("wrong-institution", "this ecToken was issued to another institution", field)
    if token.expires_at < clock.now():
        raise Refused("expired", "the ecToken's visit window is over: scan the code again", field)
    if token.uses >= token.max_uses:
        raise Refused("exhausted", f"the ecToken was used {token.uses} times, its limit: scan the code again", field)
    if token.device_status != "active":
        raise Refused("revoked", "the phone behind this ecToken was revoked", field)
    sql.execute(session, COUNT_USE, ec_token=token.ec_token)
    token.uses += 1
    return token


def authorize_payment(session: Session, user: UserSession, *, ec_token: str, password: str = "", face: str = "",
                      liveness: float = 0.0) -> VisitToken:
    """The patient confirms in the app that the visit may pay from the personal account (password or face)."""
    token = session.get(VisitToken, ec_token)
    if token is None or not can_act_for(session, user.psn_no, token.psn_no) or token.expires_at < clock.now():
        raise NotFound("no live visit of yours with this ecToken", field="ec_token")
    holder = session.get(Person, user.psn_no)
    credential = session.scalar(select(Credential).where(Credential.psn_no == user.psn_no))
    assert holder is not None and credential is not None
    if face:
        real_person(holder, face, liveness)
    else:
        verify_password(credential, password)
    token.pay_authorized_at = clock.now()
    return token


def live_tokens(session: Session, psn_nos: list[str]) -> list[VisitToken]:
    return list(session.scalars(select(VisitToken).where(VisitToken.psn_no.in_(psn_nos), VisitToken.expires_at > clock.now())
                                .order_by(VisitToken.issued_at.desc())))
