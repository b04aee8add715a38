"""The credential service: activation, password, sessions, family, codes, decoding, visit tokens."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core import clock, crypto, idcard
from yibao.core.errors import AuthError, Conflict, InputError, NotFound, YibaoError
from yibao.credential import codec
from yibao.credential.models import (
    Channel,
    Credential,
    Device,
    FamilyBinding,
    QrKey,
    RateCounter,
    UsedCode,
    UserSession,
    VisitToken,
)
from yibao.credential.realperson import RealPersonProvider
from yibao.credential.rows import DeviceRow, TokenRow
from yibao.registry.models import Enrolment, Person
from yibao.registry.rows import PersonRow
from yibao.registry.service import PERSON
from yibao.store import sql

MAX_PASSWORD_FAILURES = 5
LOCKOUT = timedelta(minutes=30)
ADULT_AGE = 16  # below this a guardian holds the credential
KEY_ROTATION = timedelta(days=1)

# One answer for every real-name failure (a malformed or unknown ID number, a wrong name, nobody insured, not
# activated…), with one status and one query behind it, so nobody can use these endpoints to learn who is insured.
REAL_NAME = "身份证号与姓名不一致，或未查到参保信息"
SIGN_IN_REAL_NAME = "身份证号与姓名不一致、未查到参保信息或尚未激活医保码（新手机请先刷脸激活）"


class Refused(AuthError):
    """A credential refusal with a machine-readable reason (expired, replayed, forged, revoked, locked…).

    ``cause`` says more than the caller may learn (e.g. which real-name check failed): it goes to the audit
    trail, never into the answer.
    """

    def __init__(self, reason: str, message: str, field: str | None = None, cause: str = "") -> None:
        self.reason = reason
        self.cause = cause
        super().__init__(message, field=field)
        # not signed in → 401; signed in but not allowed (or a failed check) → 403
        self.http_status = 401 if reason in ("session", "revoked") else 403


class WrongPassword(Refused):
    """A wrong password. The caller's transaction rolls back; `count_wrong_password` then counts it in its own."""

    def __init__(self, psn_no: str) -> None:
        super().__init__("wrong-password", "消费密码错误", "password")
        self.psn_no = psn_no


class RateLimited(YibaoError):
    http_status = 429

    def __init__(self, retry_after: int, action: str) -> None:
        self.reason = "rate-limited"
        self.retry_after = retry_after
        self.cause = action
        wait = f"{retry_after}秒" if retry_after < 120 else f"{-(-retry_after // 60)}分钟"
        super().__init__(f"操作过于频繁，请于{wait}后再试")


# -- passwords (scrypt, parameters stored with each hash) -----------------------------------------

@dataclass(frozen=True)
class ScryptParams:
    n: int
    r: int = 8
    p: int = 1

    def text(self) -> str:
        return f"scrypt:n={self.n},r={self.r},p={self.p}"

    @property
    def cost(self) -> int:
        return self.n * self.r * self.p

    @classmethod
    def parse(cls, text: str | None) -> ScryptParams:
        if not text:
            return LEGACY_PARAMS  # hashes written before parameters were stored
        found = re.fullmatch(r"scrypt:n=(\d{1,7}),r=(\d{1,2}),p=(\d{1,2})", text)
        if found is None:
            raise ValueError(f"unknown password hash parameters {text!r}")
        return cls(*(int(v) for v in found.groups())).checked()

    def checked(self) -> ScryptParams:
        # bounded: a stored or configured value must not make one sign-in take seconds or gigabytes
        if self.n & (self.n - 1) or not 2**10 <= self.n <= 2**17 or not 1 <= self.r <= 16 or not 1 <= self.p <= 4:
            raise ValueError(f"scrypt parameters out of range: {self.text()}")
        return self


LEGACY_PARAMS = ScryptParams(2**14, 8, 1)
# each scrypt holds 128·n·r bytes (16 MiB by default): at most this many at once per process, whoever asks
_HASHING = threading.BoundedSemaphore(4)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    with _HASHING:
        return hashlib.scrypt(password.encode(), salt=salt, n=params.n, r=params.r, p=params.p, dklen=32,
                              maxmem=256 * params.n * params.r * params.p + 2**20)


def current_params(settings: Settings) -> ScryptParams:
    return ScryptParams(settings.password_scrypt_n).checked()


def check_password_rules(password: str, field: str = "password") -> None:
    if not re.fullmatch(r"\d{6}", password or ""):
        raise InputError("消费密码为6位数字", field=field)
    if len(set(password)) == 1 or password in "0123456789" or password in "9876543210":
        raise InputError("消费密码不能是相同或连续的数字", field=field)


def set_password(credential: Credential, password: str, settings: Settings) -> None:
    check_password_rules(password)
    params = current_params(settings)
    credential.pwd_salt = os.urandom(16)
    credential.pwd_hash = _scrypt(password, credential.pwd_salt, params)
    credential.pwd_params = params.text()
    credential.pwd_failures = 0
    credential.locked_until = None


def verify_password(credential: Credential, password: str, settings: Settings) -> None:
    """Check the password with the parameters it was hashed with; a wrong one raises `WrongPassword` (to be counted).

    Every entry point (sign-in, activation on another phone, pay authorisation, family approval) comes here, so the
    lock after five wrong passwords holds for all of them.
    """
    now = clock.now()
    if credential.locked_until and credential.locked_until > now:
        raise Refused("locked", f"消费密码错误次数过多，已锁定至{credential.locked_until:%H:%M}，可稍后再试或刷脸重置密码",
                      "password")
    if credential.pwd_hash is None or credential.pwd_salt is None:
        raise Refused("no-password", "尚未设置消费密码，请刷脸重置密码", "password")
    try:
        params = ScryptParams.parse(credential.pwd_params)
    except ValueError:
        raise Refused("no-password", "消费密码需要重新设置，请刷脸重置密码", "password", cause="bad pwd_params") from None
    if not crypto.equal(_scrypt(password or "", credential.pwd_salt, params), credential.pwd_hash):
        raise WrongPassword(credential.psn_no)
    credential.pwd_failures = 0
    credential.locked_until = None
    current = current_params(settings)
    if current.cost > params.cost:  # the platform raised its parameters since this hash was made
        credential.pwd_salt = os.urandom(16)
        credential.pwd_hash = _scrypt(password, credential.pwd_salt, current)
        credential.pwd_params = current.text()
    elif credential.pwd_params is None:
        credential.pwd_params = params.text()  # a hash from before parameters were stored: write down what it used


def count_wrong_password(session: Session, psn_no: str) -> Refused:
    """Count a wrong password (one atomic increment, so parallel guesses all count); the fifth locks for 30 minutes."""
    failures = session.execute(update(Credential).where(Credential.psn_no == psn_no)
                               .values(pwd_failures=Credential.pwd_failures + 1).returning(Credential.pwd_failures)).scalar()
    if failures is not None and failures >= MAX_PASSWORD_FAILURES:
        until = clock.now() + LOCKOUT
        session.execute(update(Credential).where(Credential.psn_no == psn_no).values(locked_until=until, pwd_failures=0))
        return Refused("locked", f"消费密码连续错误{MAX_PASSWORD_FAILURES}次，已锁定至{until:%H:%M}，可稍后再试或刷脸重置密码",
                       "password", cause="wrong-password")
    left = MAX_PASSWORD_FAILURES - (failures or 0)
    return Refused("wrong-password", f"消费密码错误，还可尝试{left}次", "password")


# -- rate limits (fixed windows in rate_counter, shared by every worker) ---------------------------

_RATE = sql.table_of(RateCounter)


def _rate_hit(dialect_name: str) -> Any:
    """One hit in a bucket: a new window starts at 1, the same window counts on; the count comes back."""
    hit = sql.dialect_insert(dialect_name)(_RATE).values(bucket=bindparam("bucket"), window_start=bindparam("window_start"), hits=1)
    return hit.on_conflict_do_update(
        index_elements=[_RATE.c.bucket],
        set_={"hits": case((_RATE.c.window_start == hit.excluded.window_start, _RATE.c.hits + 1), else_=1),
              "window_start": hit.excluded.window_start}).returning(_RATE.c.hits)


RATE_HIT = sql.Query(int, _rate_hit)
RATE_PURGE = sql.Statement(delete(_RATE).where(_RATE.c.window_start < bindparam("cutoff")))
_PURGED: dict[str, float] = {}


def account_key(certno: str) -> str:
    """A bucket for the ID number typed, known or not, so a 429 says nothing about the registry (hashed: what strangers
    typed is not kept in clear, and the row is gone two windows later)."""
    return crypto.sm3_hex((certno or "").strip().upper().encode())[:32]


def rate_limit(session: Session, settings: Settings, action: str, limits: list[tuple[str, str, int]]) -> int | None:
    """Count one attempt of ``action`` in each (kind, key, limit) bucket; the seconds to wait if any is over its limit.

    The caller commits this (the attempt counts even when refused) and raises `RateLimited` afterwards.
    """
    window = max(1, settings.rate_window_s)
    now_s = time.time()
    start = int(now_s // window) * window
    window_start = datetime.fromtimestamp(start, clock.BEIJING).replace(tzinfo=None)
    over = False
    for kind, key, limit in limits:
        hits = sql.rows(session, RATE_HIT, bucket=f"{action}:{kind}:{key}"[:200], window_start=window_start)
        over = over or (hits[0] if hits else 0) > limit
    # buckets expire: whoever passes first in a window removes the previous windows' rows (bounded table)
    url = str(session.get_bind().engine.url)
    if _PURGED.get(url, 0.0) < start:
        _PURGED[url] = start
        sql.execute(session, RATE_PURGE, cutoff=window_start - timedelta(seconds=window))
    return max(1, int(start + window - now_s + 0.999)) if over else None


# -- real name and real person -----------------------------------------------------------------

def _insured() -> Any:
    return select(Enrolment.id).where(Enrolment.psn_no == Person.psn_no, Enrolment.psn_insu_stas == "1").exists()


def real_name(session: Session, certno: str, name: str, *, activated: bool = False, message: str = REAL_NAME,
              field: str = "certno") -> Person:
    """实名: a valid ID number of an insured person whose name matches (and, with ``activated``, an active credential).

    Every failure is the same refusal after the same single query; which check failed is only in ``cause``.
    """
    number = (certno or "").strip().upper()
    try:
        idcard.validate(number, field)
    except InputError:
        raise Refused("real-name", message, field, cause="invalid-id") from None
    row = session.execute(select(Person, _insured(), Credential.status).outerjoin(Credential, Credential.psn_no == Person.psn_no)
                          .where(Person.psn_cert_type == "01", Person.certno == number)).first()
    cause = ""
    if row is None:
        raise Refused("real-name", message, field, cause="unknown-id")
    if row[0].psn_name != (name or "").strip():
        cause = "wrong-name"
    elif not row[1]:
        cause = "not-insured"
    elif activated and row[2] != "active":
        cause = "not-activated"
    if cause:
        raise Refused("real-name", message, field, cause=cause)
    return row[0]


@dataclass(frozen=True)
class FacePass:
    """Proof that a real-person check passed for this ID number and name (only `real_person` makes one)."""

    certno: str
    name: str
    score: float


def real_person(checker: RealPersonProvider, certno: str, name: str, face: str, liveness: float) -> FacePass:
    """实人: a live face matching the ID number's photo. Call it outside any transaction: the provider may take seconds.

    It runs before the registry is read, so its answer says nothing about who is insured.
    """
    number = (certno or "").strip().upper()
    try:
        idcard.validate(number)
    except InputError:  # public arithmetic (the check digit), not the registry: refused before asking the provider
        raise Refused("real-name", REAL_NAME, "certno", cause="invalid-id") from None
    result = checker.verify(number, (name or "").strip(), face or "", liveness)
    if not result.live:
        raise Refused("liveness", "刷脸未通过：未检测到真人，请重新刷脸", "face", cause=result.reason)
    if not result.matched:
        raise Refused("face", "刷脸未通过：与本人照片不符，请重新刷脸", "face", cause=result.reason)
    return FacePass(number, (name or "").strip(), result.score)


def _require_face(face_pass: FacePass, certno: str, name: str) -> None:
    if not isinstance(face_pass, FacePass) or face_pass.certno != (certno or "").strip().upper() \
            or face_pass.name != (name or "").strip():
        raise Refused("face", "刷脸未通过：与本人照片不符，请重新刷脸", "face", cause="face check was for someone else")


def channel(session: Session, chnl_id: str) -> Channel:
    found = session.get(Channel, chnl_id)
    if found is None or not found.active:
        raise Refused("channel", "激活渠道不存在或已停用", "chnl_id")
    return found


def verify_channel_signature(session: Session, chnl_id: str, timestamp: str, signature: str, body: bytes, window_s: int = 300) -> Channel:
    """Channels (apps, WeChat, Alipay, banks) sign activation calls: hex HMAC-SM3(secret, timestamp ⏎ body)."""
    found = channel(session, chnl_id)
    try:
        skew = abs(time.time() * 1000 - int(timestamp))
    except ValueError:
        raise Refused("channel", "渠道签名缺少有效的时间戳（x-yb-timestamp，Unix 毫秒）") from None
    if skew > window_s * 1000:
        raise Refused("channel", "渠道签名已过期")
    if not crypto.equal(crypto.hmac_sm3_hex(found.secret.encode(), f"{timestamp}\n".encode() + body), (signature or "").lower()):
        raise Refused("channel", "渠道签名不正确")
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
    raise Conflict("设备编号分配失败，请重试")


def open_session(session: Session, psn_no: str, device_id: str, settings: Settings) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(UserSession(token_sm3=crypto.sm3_hex(token.encode()), psn_no=psn_no, device_id=device_id, created_at=now,
                            expires_at=now + timedelta(seconds=settings.session_ttl_s)))
    return token


def activate(session: Session, settings: Settings, *, chnl_id: str, psn_cert_type: str, certno: str, name: str, face_pass: FacePass,
             password: str, device_label: str) -> Activated:
    """A new phone: real person (already checked: ``face_pass``), real name, and the person's password if they have one."""
    if psn_cert_type not in ("", "01"):
        raise InputError("网上激活仅支持居民身份证（01）", field="psn_cert_type")
    channel(session, chnl_id)
    _require_face(face_pass, certno, name)
    person = real_name(session, certno, name)
    if clock.age_on(person.brdy, clock.today()) < ADULT_AGE:
        raise Refused("minor", "未成年人的医保码由监护人在“亲情账户”中添加", "certno")
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    if credential is None:
        credential = Credential(ec_index_no=secrets.token_hex(16).upper(), psn_no=person.psn_no, chnl_id=chnl_id, status="active",
                                activated_at=clock.now(), pwd_failures=0)
        set_password(credential, password, settings)
        session.add(credential)
    elif credential.pwd_hash is None:
        set_password(credential, password, settings)
    else:
        # another phone or channel: the face is not enough, the password must be the person's (and a wrong one counts)
        verify_password(credential, password, settings)
    credential.status = "active"
    session.flush()
    device = _new_device(session, person.psn_no, chnl_id, device_label)
    return Activated(credential, device, open_session(session, person.psn_no, device.device_id, settings))


def sign_in(session: Session, settings: Settings, *, certno: str, name: str, password: str, device_id: str) -> tuple[Person, str]:
    person = real_name(session, certno, name, activated=True, message=SIGN_IN_REAL_NAME)
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    assert credential is not None
    # The phone before the password, and its refusal the same as a wrong name: someone who only knows a stranger's ID
    # number and name learns nothing (not whether they are insured or activated) and cannot lock the stranger out by
    # guessing from another phone. Wrong passwords count from the person's own registered phones.
    device = session.get(Device, device_id) if device_id else None
    if device is None or device.psn_no != person.psn_no or device.status != "active":
        raise Refused("real-name", SIGN_IN_REAL_NAME, "certno")
    verify_password(credential, password, settings)
    return person, open_session(session, person.psn_no, device.device_id, settings)


def session_person(session: Session, token: str) -> UserSession:
    row = session.get(UserSession, crypto.sm3_hex(token.encode())) if token else None
    if row is None or row.expires_at < clock.now():
        raise Refused("session", "未登录或登录已过期，请重新登录")
    device = session.get(Device, row.device_id)
    if device is None or device.status != "active":
        raise Refused("revoked", "本机已停用，请重新刷脸激活")
    return row


def reset_password(session: Session, settings: Settings, *, certno: str, name: str, face_pass: FacePass, password: str) -> Person:
    """A new password after a real-person check; lifts a lock, ends every session and stops every phone of the person.

    Whoever reset it may have been someone else (or the old password leaked): each phone activates again.
    """
    check_password_rules(password)
    _require_face(face_pass, certno, name)
    person = real_name(session, certno, name, activated=True)
    credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
    assert credential is not None
    set_password(credential, password, settings)
    session.execute(delete(UserSession).where(UserSession.psn_no == person.psn_no))
    session.execute(update(Device).where(Device.psn_no == person.psn_no, Device.status == "active")
                    .values(status="revoked", revoked_at=clock.now()))
    return person


def revoke_device(session: Session, psn_no: str, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.psn_no != psn_no:
        raise NotFound("没有找到您的这台设备", field="device_id")
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
        raise Refused("family", "只能查看和使用本人或已绑定家庭成员的医保码", "psn_no")


def bind(session: Session, holder: Person, *, certno: str, name: str, relation: str) -> FamilyBinding:
    if relation not in ("02", "03", "04"):
        raise InputError("关系须为 02（配偶）、03（子女）或 04（父母）", field="relation")
    member = real_name(session, certno, name)
    if member.psn_no == holder.psn_no:
        raise InputError("不能绑定本人", field="certno")
    existing = session.scalar(select(FamilyBinding).where(FamilyBinding.holder_psn_no == holder.psn_no,
                                                          FamilyBinding.member_psn_no == member.psn_no))
    if existing is not None and existing.status != "revoked":
        raise Conflict("已添加过这位家庭成员，或正在等待对方确认", field="certno")
    same_household = holder.hshld_id is not None and holder.hshld_id == member.hshld_id
    minor = clock.age_on(member.brdy, clock.today()) < ADULT_AGE
    if minor and not same_household:
        raise Refused("family", "未成年人只能由同一户口簿中的监护人绑定", "certno")
    # the household register proves the relation, unless the member removed this binding themselves: then only
    # the member's own approval brings it back
    removed_by_member = existing is not None and existing.removed_by == member.psn_no
    now = clock.now()
    binding = existing or FamilyBinding(holder_psn_no=holder.psn_no, member_psn_no=member.psn_no, created_at=now)
    binding.relation = relation
    binding.status = "active" if same_household and not removed_by_member else "pending"
    binding.approved_at = now if binding.status == "active" else None
    session.add(binding)
    session.flush()
    return binding


def confirm_with_password(session: Session, settings: Settings, psn_no: str, password: str) -> None:
    """The signed-in person confirms an act with their consumption password (a wrong one counts like anywhere else)."""
    credential = session.scalar(select(Credential).where(Credential.psn_no == psn_no))
    if credential is None:
        raise Refused("no-password", "尚未设置消费密码，请刷脸重置密码", "password")
    verify_password(credential, password, settings)


def approve(session: Session, settings: Settings, member_psn_no: str, binding_id: int, password: str) -> FamilyBinding:
    """The member lets the holder act for them: with the member's password (a wrong one counts like anywhere else)."""
    binding = session.get(FamilyBinding, binding_id)
    if binding is None or binding.member_psn_no != member_psn_no or binding.status != "pending":
        raise NotFound("没有待您确认的这条亲情账户申请", field="binding_id")
    credential = session.scalar(select(Credential).where(Credential.psn_no == member_psn_no))
    if credential is None:
        raise Refused("no-password", "尚未设置消费密码，请刷脸重置密码", "password")
    verify_password(credential, password, settings)
    binding.status, binding.approved_at = "active", clock.now()
    binding.removed_by, binding.removed_at = None, None
    return binding


def unbind(session: Session, psn_no: str, binding_id: int) -> FamilyBinding:
    binding = session.get(FamilyBinding, binding_id)
    if binding is None or psn_no not in (binding.holder_psn_no, binding.member_psn_no) or binding.status == "revoked":
        raise NotFound("没有找到您的这条亲情账户绑定", field="binding_id")
    binding.status = "revoked"
    binding.removed_by, binding.removed_at = psn_no, clock.now()
    return binding


# -- codes --------------------------------------------------------------------------------------

def _material(row: QrKey) -> codec.KeyMaterial:
    return codec.KeyMaterial(row.kid, row.enc_key, row.mac_key)


# Per database: the keys read in the last 30 s (every worker reads the same rows).
_KEY_CACHE: dict[str, dict[str, object]] = {}


def keys(session: Session) -> tuple[codec.KeyMaterial, dict[int, codec.KeyMaterial]]:
    """The current sealing key and every key still able to open codes; rotated daily, shared by all workers."""
    cache = _KEY_CACHE.setdefault(str(session.get_bind().engine.url), {"loaded": 0.0, "keys": {}, "current": None})
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


_DEVICE, _CREDENTIAL = Device.__table__, Credential.__table__
DEVICE = sql.Query(DeviceRow, sql.select_of(DeviceRow, _DEVICE).where(_DEVICE.c.device_id == bindparam("device_id")))
CREDENTIAL_STATUS = sql.Query(str, select(_CREDENTIAL.c.status).where(_CREDENTIAL.c.psn_no == bindparam("psn_no")))


def issue_code(session: Session, settings: Settings, user: UserSession, subject_psn_no: str) -> Code:
    """A display code, sealed without writing anything: one HMAC and one SM4 pass after two indexed reads."""
    require_access(session, user.psn_no, subject_psn_no)
    device = sql.first(session, DEVICE, device_id=user.device_id)
    assert device is not None
    status = sql.rows(session, CREDENTIAL_STATUS, psn_no=subject_psn_no)
    if subject_psn_no == user.psn_no and status != ["active"]:
        raise Refused("revoked", "医保码未激活或已停用，请重新激活")
    current, _ = keys(session)
    issued = int(time.time())
    text = codec.seal(codec.Claims(subject_psn_no, device.chnl_id, device.device_no, issued, settings.qr_ttl_s), current)
    return Code(text, subject_psn_no, clock.now() + timedelta(seconds=settings.qr_ttl_s), settings.qr_ttl_s)


_TOKEN, _USED, _FAMILY = sql.table_of(VisitToken), UsedCode.__table__, FamilyBinding.__table__
DEVICE_BY_NO = sql.Query(DeviceRow, sql.select_of(DeviceRow, _DEVICE).where(_DEVICE.c.device_no == bindparam("device_no")))


def _use_code(dialect_name: str) -> Any:
    """Record a code as used, unless it was: no row back means it was."""
    return (sql.dialect_insert(dialect_name)(_USED).values(nonce=bindparam("nonce"), used_at=bindparam("used_at"),
                                                           fixmedins_code=bindparam("fixmedins_code"))
            .on_conflict_do_nothing().returning(_USED.c.nonce))


USE_CODE = sql.Query(str, _use_code)
ISSUE_TOKEN = sql.Statement(sql.insert_into(_TOKEN))
# the phone that showed the code, and — when it showed a family member's code — the binding it was shown through
TOKEN = sql.Query(TokenRow, select(*_TOKEN.columns, _DEVICE.c.status.label("device_status"),
                                   _DEVICE.c.psn_no.label("device_psn_no"), _FAMILY.c.status.label("family_status"))
                  .select_from(_TOKEN.outerjoin(_DEVICE, _DEVICE.c.device_id == _TOKEN.c.device_id)
                               .outerjoin(_FAMILY, (_FAMILY.c.holder_psn_no == _DEVICE.c.psn_no)
                                          & (_FAMILY.c.member_psn_no == _TOKEN.c.psn_no)))
                  .where(_TOKEN.c.ec_token == bindparam("ec_token")))
COUNT_USE = sql.Statement(update(_TOKEN).where(_TOKEN.c.ec_token == bindparam("ec_token")).values(uses=_TOKEN.c.uses + 1))


def decode(session: Session, settings: Settings, code_text: str, fixmedins_code: str, business_type: str) -> tuple[TokenRow, PersonRow]:
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
    if not sql.rows(session, USE_CODE, nonce=claims.code_id, used_at=now, fixmedins_code=fixmedins_code):
        raise Refused("replayed", "this code was already used: a screenshot or a copy; show the live code", "ecQrCode")
    person = sql.first(session, PERSON, psn_no=claims.psn_no)
    if person is None:
        raise Refused("forged", "the code names no insured person", "ecQrCode")
    token = TokenRow(ec_token=f"{fixmedins_code[1:7]}ec{secrets.token_hex(16)}", psn_no=person.psn_no, fixmedins_code=fixmedins_code,
                     business_type=business_type or "01101", device_id=device.device_id, issued_at=now,
                     expires_at=now + timedelta(seconds=settings.ec_token_ttl_s), uses=0, max_uses=settings.ec_token_max_uses,
                     pay_authorized_at=None, device_status=device.status, device_psn_no=device.psn_no, family_status=None)
    sql.execute(session, ISSUE_TOKEN, **{name: getattr(token, name) for name in _TOKEN.c.keys()})
    return token, person


def use_token(session: Session, ec_token: str, fixmedins_code: str, field: str) -> TokenRow:
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
    if token.device_psn_no != token.psn_no and token.family_status != "active":
        raise Refused("family", "the family binding behind this ecToken was removed", field)
    sql.execute(session, COUNT_USE, ec_token=token.ec_token)
    token.uses += 1
    return token


def payable_visit(session: Session, user: UserSession, ec_token: str) -> VisitToken:
    token = session.get(VisitToken, ec_token)
    if token is None or not can_act_for(session, user.psn_no, token.psn_no) or token.expires_at < clock.now():
        raise NotFound("没有找到您或家人这次就诊的医保码记录", field="ec_token")
    return token


def authorize_payment(session: Session, settings: Settings, user: UserSession, *, ec_token: str, password: str = "",
                      face_pass: FacePass | None = None) -> VisitToken:
    """The patient confirms in the app that the visit may pay from the personal account (password, or a face check
    already passed for the signed-in person: ``face_pass``)."""
    token = payable_visit(session, user, ec_token)
    holder = session.get(Person, user.psn_no)
    credential = session.scalar(select(Credential).where(Credential.psn_no == user.psn_no))
    assert holder is not None and credential is not None
    if face_pass is not None:
        _require_face(face_pass, holder.certno, holder.psn_name)
    else:
        verify_password(credential, password, settings)
    token.pay_authorized_at = clock.now()
    return token


def live_tokens(session: Session, psn_nos: list[str]) -> list[VisitToken]:
    return list(session.scalars(select(VisitToken).where(VisitToken.psn_no.in_(psn_nos), VisitToken.expires_at > clock.now())
                                .order_by(VisitToken.issued_at.desc())))
