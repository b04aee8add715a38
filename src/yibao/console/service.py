"""The vendors' console: the message log the gateway writes, and what the console reads, signs and shows.

Writing (`MessageLog`) is on the gateway's hot path: one INSERT on the driver inside the call's own transaction
(a refusal: inside the refusal's), and nothing else; pruning runs in the gateway's housekeeping. Everything else —
warnings, the msgid flags, pretty-printing, signing a curl command — happens when a console user reads a message.

Sign-in. An institution proves its access key's secret without sending it: the console hands out a one-time
challenge and the browser answers hex(HMAC-SHA256(secret, "yibao-console\\n" + access_key + "\\n" + challenge)).
WebCrypto has HMAC-SHA256 but no SM3, and HMAC-SHA256 under the secret is computed nowhere else on the platform
(the gateway's schemes are HMAC-SM3, CSB's HMAC-SHA1 and TIF's plain SHA-256), so the answer is good for nothing
but this sign-in; the secret never crosses the network and a captured answer dies with its challenge. Staff sign
in with a name and a generated password (`yibao console staff-add`), stored as scrypt. Either way the browser gets
a random session token, kept server-side only as its SM3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from prometheus_client import Counter
from sqlalchemy import bindparam, case, delete, func, select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.console import checks
from yibao.console.models import ConsoleChallenge, ConsoleMessage, ConsoleSession, ConsoleStaff
from yibao.core import clock, crypto
from yibao.core.errors import AuthError, Conflict, InputError, NotFound, YibaoError
from yibao.credential.service import ScryptParams, rate_limit
from yibao.gateway import auth
from yibao.gateway.calllog import Trace
from yibao.gateway.models import GatewayClient, GatewayMessage
from yibao.review import service as review
from yibao.store import sql
from yibao.store.db import Database

if TYPE_CHECKING:
    from yibao.gateway.contract import Transaction

log = structlog.get_logger("yibao.console")

# what is kept of a request body and of an answer (a 2204 of a long stay can be larger; its head is what a vendor reads)
REQUEST_CAP = 64 * 1024
RESPONSE_CAP = 64 * 1024
GATEWAY_PATH = "/fsi/api/rsfComIfsService/callService"
SIGN_IN_PREFIX = "yibao-console"
CHALLENGE_TTL = timedelta(seconds=120)
SESSION_TTL = timedelta(hours=8)
STAFF_NAME = re.compile(r"[A-Za-z0-9_.\-\u4e00-\u9fff]{1,40}")
# sign-in attempts per window (the people's API's rate_counter): per access key or staff name, and per address
RATE_ACCOUNT, RATE_IP = 20, 200
# the scheme a message was signed with (gateway.auth.Caller.scheme) → the key's scheme name (gateway.models.SCHEMES)
SCHEME_NAMES = {"HMAC-SM3": "yibao", "CSB": "csb", "TIF": "tif"}
_MSGID = re.compile(rb'"msgid"\s*:\s*"([^"\\]{1,40})')
_INFNO = re.compile(rb'"infno"\s*:\s*"?([0-9A-Za-z]{1,6})')


@dataclass(frozen=True)
class Retention:
    """How much of the log is kept: the last ``keep`` messages of each institution, none older than ``days``."""

    keep: int = 1000
    days: int = 7

    @classmethod
    def from_env(cls) -> Retention:
        return cls(max(1, int(os.environ.get("YIBAO_CONSOLE_KEEP", "1000"))), max(1, int(os.environ.get("YIBAO_CONSOLE_DAYS", "7"))))


# -- writing: the gateway's side -----------------------------------------------------------------------

_TABLE = sql.table_of(ConsoleMessage)
INSERT = sql.Statement(sql.insert_into(_TABLE, skip=("id",)))
# the institution's messages beyond its newest ``keep`` (the index on (fixmedins_code, id) answers both parts)
_OLDEST_KEPT = (select(_TABLE.c.id).where(_TABLE.c.fixmedins_code == bindparam("code")).order_by(_TABLE.c.id.desc())
                .limit(1).offset(bindparam("keep")).scalar_subquery())
PRUNE_INSTITUTION = sql.Statement(delete(_TABLE).where(_TABLE.c.fixmedins_code == bindparam("code"), _TABLE.c.id <= _OLDEST_KEPT))
PRUNE_OLD = sql.Statement(delete(_TABLE).where(_TABLE.c.at < bindparam("cutoff")))


class MessageLog:
    """The gateway's writer of console_message. Remembers which institutions it wrote for since the last prune, so
    pruning touches only those (no scan of the whole table while holding SQLite's one writer lock)."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention.from_env()
        self._written: set[str] = set()

    def answered(self, session: Session, trace: Trace, caller: auth.Caller, infno: str, msgid: str, reply: Any) -> Any:
        """Log a served call in its own transaction (one INSERT on the driver) and hand its reply back."""
        self._insert(session, trace, caller, infno, msgid, 0, "", reply)
        return reply

    def refused(self, session: Session, trace: Trace, caller: auth.Caller, infno: str, err_msg: str, reply: Any) -> None:
        """Log a verified caller's refusal, in the refusal's transaction. The envelope may not have parsed: infno and
        msgid are read off the bytes as far as they go."""
        head = trace.body[:REQUEST_CAP]
        msgid = _MSGID.search(head)
        if not infno:
            found = _INFNO.search(head)
            infno = found.group(1).decode() if found else ""
        self._insert(session, trace, caller, infno, msgid.group(1).decode("utf-8", "replace") if msgid else "", -1, err_msg, reply)

    def refused_apart(self, db: Any, trace: Trace, caller: auth.Caller, infno: str, err_msg: str, reply: Any) -> None:
        """A call that failed inside the platform (no transaction left to join): logged in one of its own. Never raises."""
        try:
            with db.unit_of_work() as session:
                self.refused(session, trace, caller, infno, err_msg, reply)
        except Exception:  # noqa: BLE001 - e.g. the database is what failed: logged, and the answer still goes out
            log.exception("console message not recorded", infno=infno)

    def _insert(self, session: Session, trace: Trace, caller: auth.Caller, infno: str, msgid: str, infcode: int, err_msg: str,
                reply: Any) -> None:
        if reply.content_type.startswith("application/json"):
            response = reply.body[:RESPONSE_CAP].decode("utf-8", "ignore")
        else:  # a 9102 file: its bytes are the file, not a message
            response = f"(file, {len(reply.body)} bytes; {(reply.headers or {}).get('content-disposition', '')})"
        # held back (sql.defer): on PostgreSQL it goes with the call's other last writes, in one statement
        sql.defer(session, INSERT, fixmedins_code=caller.fixmedins_code, access_key=caller.access_key, at=trace.received or clock.now(),
                    infno=infno[:6], msgid=msgid[:40], scheme=caller.scheme[:10], dialect=trace.dialect[:20], infcode=infcode,
                    err_msg=err_msg[:200],
                    duration_us=int((time.perf_counter() - trace.started) * 1_000_000), ip=trace.ip[:64],
                    request=trace.body[:REQUEST_CAP], request_size=len(trace.body), response=response, response_size=len(reply.body))
        self._written.add(caller.fixmedins_code)

    def prune(self, session: Session) -> None:
        """Drop what retention no longer keeps (called from the gateway's housekeeping, every few thousand calls)."""
        sql.execute(session, PRUNE_OLD, cutoff=clock.now() - timedelta(days=self.retention.days))
        written, self._written = self._written, set()  # a code added meanwhile by another thread waits for the next prune
        for code in sorted(written):
            sql.execute(session, PRUNE_INSTITUTION, code=code, keep=self.retention.keep)


# -- who reads -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Viewer:
    """A signed-in console user: an institution (``fixmedins_code``) or platform staff (``staff``)."""

    fixmedins_code: str = ""
    access_key: str = ""
    staff: str = ""

    @property
    def is_staff(self) -> bool:
        return bool(self.staff)

    @property
    def actor(self) -> str:
        return f"staff:{self.staff}" if self.staff else self.access_key

    def sees(self, fixmedins_code: str) -> bool:
        return self.is_staff or fixmedins_code == self.fixmedins_code


def sign_in_message(access_key: str, challenge: str) -> bytes:
    return f"{SIGN_IN_PREFIX}\n{access_key}\n{challenge}".encode()


def sign_in_answer(secret: str, access_key: str, challenge: str) -> str:
    """What the browser computes (console.js does the same with WebCrypto)."""
    return hmac.new(secret.encode(), sign_in_message(access_key, challenge), hashlib.sha256).hexdigest()


def new_challenge(session: Session, access_key: str) -> str:
    """A one-time challenge for an access key. Issued for any key (a stranger learns nothing about which exist)."""
    now = clock.now()
    session.execute(delete(ConsoleChallenge).where(ConsoleChallenge.expires_at < now))
    challenge = secrets.token_hex(32)
    session.add(ConsoleChallenge(challenge=challenge, access_key=access_key[:64], expires_at=now + CHALLENGE_TTL))
    return challenge


def take_challenge(session: Session, access_key: str, challenge: str) -> bool:
    """Spend a challenge (the caller commits this before checking the answer, so a wrong answer spends it too)."""
    row = session.get(ConsoleChallenge, challenge[:64])
    if row is None:
        return False
    session.delete(row)
    return row.access_key == access_key and row.expires_at >= clock.now()


def verify_institution(session: Session, access_key: str, challenge: str, answer: str) -> Viewer:
    """The key's owner if ``answer`` is the HMAC of a challenge just taken, under its secret (or the previous one in its grace)."""
    client = session.get(GatewayClient, access_key)
    if client is None or not client.active:
        raise AuthError("接入密钥（access key）或密钥（secret）不正确", field="access_key")
    credentials = auth.Credentials(access_key=client.access_key, fixmedins_code=client.fixmedins_code, secret=client.secret,
                                   previous_secret=client.previous_secret, previous_valid_until=client.previous_valid_until)
    answer = answer.strip().lower()
    if not any(crypto.equal(sign_in_answer(secret, access_key, challenge), answer) for secret in credentials.secrets()):
        raise AuthError("接入密钥（access key）或密钥（secret）不正确", field="answer")
    return Viewer(fixmedins_code=client.fixmedins_code, access_key=client.access_key)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=params.n, r=params.r, p=params.p, dklen=32,
                          maxmem=256 * params.n * params.r * params.p + 2**20)


def add_staff(session: Session, name: str, n: int, *, replace: bool = False, actor: str = "cli") -> str:
    """A staff member with a new generated password (returned once, stored as scrypt)."""
    if not STAFF_NAME.fullmatch(name or ""):
        raise InputError("1–40 letters, digits, Chinese characters, '.', '_' or '-'", field="name")
    staff = session.get(ConsoleStaff, name)
    if staff is not None and not replace:
        raise Conflict(f"staff member {name} exists already (--replace gives a new password)", field="name")
    password = secrets.token_urlsafe(15)
    params = ScryptParams(n).checked()
    salt = os.urandom(16)
    digest = _scrypt(password, salt, params)
    if staff is None:
        session.add(ConsoleStaff(name=name, pwd_hash=digest, pwd_salt=salt, pwd_params=params.text(), active=True, created_at=clock.now()))
    else:
        staff.pwd_hash, staff.pwd_salt, staff.pwd_params, staff.active = digest, salt, params.text(), True
    audit.record(session, "console.staff_add", actor=actor, subject=f"staff:{name}", reason="new password" if staff else "added")
    return password


_DUMMY_SALT = os.urandom(16)


def account_exists(db: Any, who: str) -> bool:
    """Whether a console sign-in names a real account (``staff:NAME`` or an access key): only those refusals are audited."""
    with db.unit_of_work(write=False) as session:
        if who.startswith("staff:"):
            return session.get(ConsoleStaff, who[len("staff:"):][:40]) is not None
        return session.get(GatewayClient, who[:64]) is not None


def verify_staff(session: Session, name: str, password: str, n: int) -> Viewer:
    staff = session.get(ConsoleStaff, name[:40])
    params = ScryptParams.parse(staff.pwd_params) if staff is not None else ScryptParams(n).checked()
    # an unknown name costs the same scrypt as a known one: the time taken says nothing about who exists
    digest = _scrypt(password, staff.pwd_salt if staff is not None else _DUMMY_SALT, params)
    if staff is None or not staff.active or not crypto.equal(digest, staff.pwd_hash):
        raise AuthError("用户名或密码不正确", field="password")
    return Viewer(staff=staff.name)


def open_session(session: Session, viewer: Viewer) -> str:
    now = clock.now()
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_sm3=crypto.sm3_hex(token.encode()), fixmedins_code=viewer.fixmedins_code, access_key=viewer.access_key,
                               staff=viewer.staff, created_at=now, expires_at=now + SESSION_TTL))
    return token


def viewer_of(session: Session, token: str) -> Viewer:
    row = session.get(ConsoleSession, crypto.sm3_hex(token.encode())) if token else None
    if row is None or row.expires_at < clock.now():
        raise AuthError("请先登录", field="authorization")
    if row.staff:
        staff = session.get(ConsoleStaff, row.staff)
        if staff is None or not staff.active:
            raise AuthError("请先登录", field="authorization")
    else:
        client = session.get(GatewayClient, row.access_key)
        if client is None or not client.active:  # a revoked key closes its console sessions too
            raise AuthError("请先登录", field="authorization")
    return Viewer(fixmedins_code=row.fixmedins_code, access_key=row.access_key, staff=row.staff)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_sm3 == crypto.sm3_hex(token.encode())))


# -- reading ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    infno: str = ""
    msgid: str = ""
    outcome: str = ""  # ok | refused | ""
    fixmedins_code: str = ""  # staff only
    before: int = 0  # page: messages with a smaller id
    limit: int = 50


def _visible(viewer: Viewer, filters: Filters) -> Any:
    query = select(ConsoleMessage)
    if not viewer.is_staff:
        query = query.where(ConsoleMessage.fixmedins_code == viewer.fixmedins_code)
    elif filters.fixmedins_code:
        query = query.where(ConsoleMessage.fixmedins_code == filters.fixmedins_code)
    return query


def messages(session: Session, viewer: Viewer, filters: Filters, table: Mapping[str, Transaction]) -> list[dict[str, Any]]:
    """The newest messages the viewer may see, filtered, each with its warning count and msgid flags."""
    if filters.outcome not in ("", "ok", "refused"):
        raise InputError("只能是 ok 或 refused", field="outcome")
    query = _visible(viewer, filters)
    if filters.infno:
        query = query.where(ConsoleMessage.infno == filters.infno)
    if filters.msgid:
        query = query.where(ConsoleMessage.msgid == filters.msgid)
    if filters.outcome == "ok":
        query = query.where(ConsoleMessage.infcode == 0)
    elif filters.outcome == "refused":
        query = query.where(ConsoleMessage.infcode != 0)
    if filters.before:
        query = query.where(ConsoleMessage.id < filters.before)
    rows = list(session.scalars(query.order_by(ConsoleMessage.id.desc()).limit(max(1, min(filters.limit, 200)))))
    flags = msgid_flags(session, rows)
    names = _institution_names(session, {r.fixmedins_code for r in rows}) if viewer.is_staff else {}
    rules = checks.bundled()
    types = input_types(table)
    return [{**_summary(r, table), "fixmedins_name": names.get(r.fixmedins_code, ""),
             "warnings": len(checks.findings(r.request, types, rules, _translator(r.dialect))), "flags": sorted(flags.get(r.id, ()))}
            for r in rows]


def _translator(name: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """A dialect's inbound translation, so a province's own node and field names are read as the gateway read them."""
    if not name:
        return None
    from yibao.gateway import dialect

    dialects = dialect.bundled()
    try:
        speaking = dialects[name]
    except KeyError:
        return None
    return lambda document: dialect.Translation(speaking).inbound(document)


def message(session: Session, viewer: Viewer, message_id: int, table: Mapping[str, Transaction]) -> dict[str, Any]:
    row = _one(session, viewer, message_id)
    flags = msgid_flags(session, [row])
    found = checks.findings(row.request, input_types(table), checks.bundled(), _translator(row.dialect))
    return {**_summary(row, table), "flags": sorted(flags.get(row.id, ())),
            "request": pretty(row.request), "request_truncated": row.request_size > len(row.request),
            "response": pretty(row.response.encode()), "response_truncated": row.response_size > len(row.response.encode()),
            "findings": [{"path": f.path, "kind": f.kind, "message": f.message} for f in found]}


def institutions(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    """Staff: every institution with messages in the log, the most recently active first."""
    if not viewer.is_staff:
        raise AuthError("仅平台人员可以查看所有机构", field="authorization")
    refused = func.sum(case((ConsoleMessage.infcode != 0, 1), else_=0))
    rows = session.execute(select(ConsoleMessage.fixmedins_code, func.count(), refused, func.max(ConsoleMessage.at))
                           .group_by(ConsoleMessage.fixmedins_code).order_by(func.max(ConsoleMessage.at).desc()).limit(500)).all()
    names = _institution_names(session, {r[0] for r in rows})
    return [{"fixmedins_code": code, "fixmedins_name": names.get(code, ""), "messages": count, "refused": int(bad or 0),
             "last_at": clock.fmt_datetime(last)} for code, count, bad, last in rows]


def _one(session: Session, viewer: Viewer, message_id: int) -> ConsoleMessage:
    row = session.get(ConsoleMessage, message_id)
    # another institution's message is "not found", exactly like one that does not exist
    if row is None or not viewer.sees(row.fixmedins_code):
        raise NotFound("没有这条报文", field="id")
    return row


def _summary(row: ConsoleMessage, table: Mapping[str, Transaction]) -> dict[str, Any]:
    tx = table.get(row.infno)
    return {"id": row.id, "at": f"{row.at:%Y-%m-%d %H:%M:%S}.{row.at.microsecond // 1000:03d}", "fixmedins_code": row.fixmedins_code,
            "infno": row.infno, "name": tx.name if tx else "", "msgid": row.msgid, "infcode": row.infcode, "err_msg": row.err_msg,
            "duration_ms": round(row.duration_us / 1000, 1), "scheme": row.scheme, "access_key": row.access_key, "ip": row.ip,
            "request_size": row.request_size}


def _institution_names(session: Session, codes: set[str]) -> dict[str, str]:
    from yibao.registry.models import Institution

    if not codes:
        return {}
    return dict(session.execute(select(Institution.fixmedins_code, Institution.fixmedins_name)
                                .where(Institution.fixmedins_code.in_(sorted(codes)))).all())


def input_types(table: Mapping[str, Transaction]) -> dict[str, type]:
    return {infno: tx.input_type for infno, tx in table.items()}


def fingerprint(request: bytes, size: int) -> str:
    """What tells a retry from a different request: SM3 of the canonical (infno, input), as the gateway compares them;
    a body that is not JSON, or was cut, by its bytes."""
    document = checks.decode(request) if size == len(request) else None
    if isinstance(document, dict):
        canonical = [str(document.get("infno", "")), checks.request_input(document)]
        try:
            return crypto.sm3_hex(msgspec.json.encode(canonical, order="sorted"))
        except (TypeError, msgspec.EncodeError):
            pass
    return crypto.sm3_hex(request + str(size).encode())


def msgid_flags(session: Session, rows: Iterable[ConsoleMessage]) -> dict[int, set[str]]:
    """Per message: ``msgid_reused`` when the institution sent the same msgid with a different body (the counter's msgid
    generator repeats: served as a new request, never refused), ``retry`` when an earlier message had the same msgid and
    body (the stored first answer was returned)."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        if r.msgid:
            wanted.setdefault(r.fixmedins_code, set()).add(r.msgid)
    flags: dict[int, set[str]] = {}
    for code, msgids in wanted.items():
        siblings = session.execute(select(ConsoleMessage.id, ConsoleMessage.msgid, ConsoleMessage.request, ConsoleMessage.request_size)
                                   .where(ConsoleMessage.fixmedins_code == code, ConsoleMessage.msgid.in_(sorted(msgids)))).all()
        by_msgid: dict[str, list[tuple[int, str]]] = {}
        for sid, msgid, request, size in siblings:
            by_msgid.setdefault(msgid, []).append((sid, fingerprint(request, size)))
        # the gateway's own record of answers (one per msgid and request) also knows reuses the log has pruned
        counted = (select(GatewayMessage.msgid, func.count())
                   .where(GatewayMessage.fixmedins_code == code, GatewayMessage.msgid.in_(sorted(msgids))).group_by(GatewayMessage.msgid))
        answered = {msgid for msgid, count in session.execute(counted).all() if count > 1}
        for msgid, group in by_msgid.items():
            for sid, print_ in group:
                mine = flags.setdefault(sid, set())
                if msgid in answered or any(p != print_ for _, p in group):
                    mine.add("msgid_reused")
                if any(other < sid and p == print_ for other, p in group):
                    mine.add("retry")
    return {sid: found for sid, found in flags.items() if found}


def pretty(raw: bytes) -> str:
    """JSON indented with its numbers exactly as sent; other bytes as text (UTF-8, else GBK), never an error."""
    for encoding in ("utf-8", "gbk"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        try:
            return msgspec.json.format(text, indent=2)
        except msgspec.DecodeError:
            return text
    return raw.decode("utf-8", "replace")


# -- a message as a signed curl command ------------------------------------------------------------------

@dataclass(frozen=True)
class Curl:
    command: str
    scheme: str
    valid_s: int
    notes: list[str] = field(default_factory=list)


def curl(session: Session, viewer: Viewer, message_id: int, base_url: str, window_s: int) -> Curl:
    """The message's exact body as a `curl` command, signed now (fresh timestamp and nonce) with the institution's
    secret; valid for the platform's signature window. Staff get only a body-covering signature (HMAC-SM3): CSB and TIF
    sign headers only, and a platform user must not get headers that would carry any body as the institution."""
    from yibao.gateway import keys

    row = _one(session, viewer, message_id)
    if row.request_size > len(row.request):
        raise Conflict(f"这条报文有 {row.request_size} 字节，只保存了前 {len(row.request)} 字节，无法重放", field="id")
    active = [k for k in keys.of_institution(session, row.fixmedins_code) if k.active]
    if not active:
        raise NotFound(f"{row.fixmedins_code} 没有有效的接入密钥", field="fixmedins_code")
    key = next((k for k in active if k.access_key == row.access_key), active[0])
    allowed = [s for s in key.schemes.split(",") if s]
    used = SCHEME_NAMES.get(row.scheme, "yibao")
    if viewer.is_staff:
        if "yibao" not in allowed:
            raise Conflict(f"{key.access_key} 只允许 {key.schemes} 签名方式，这些方式不签报文体，平台人员不能生成；"
                           "请机构自己登录后复制", field="scheme")
        scheme = "yibao"
    else:
        scheme = used if used in allowed else ("yibao" if "yibao" in allowed else allowed[0])
    headers = signed_headers(scheme, key.access_key, key.secret, row.request, row.infno)
    url = base_url.rstrip("/") + GATEWAY_PATH
    audit.record(session, "console.curl", actor=viewer.actor, subject=f"message {row.id}", fixmedins_code=row.fixmedins_code,
                 infno=row.infno, reason=f"signed with {scheme}")
    notes = [] if scheme == used else [f"原报文用 {row.scheme} 签名，该密钥现在不允许，改用 {scheme}"]
    return Curl(command(url, headers, row.request), scheme, window_s, notes)


def signed_headers(scheme: str, access_key: str, secret: str, body: bytes, infno: str) -> dict[str, str]:
    now_ms = int(time.time() * 1000)
    if scheme == "yibao":
        return auth.sign_headers(access_key, secret, body, timestamp_ms=now_ms)
    if scheme == "csb":
        params = {"_api_name": f"hsa-fsi-{infno}", "_api_version": "1.0.0", "_api_timestamp": str(now_ms), "_api_access_key": access_key}
        return {**params, "_api_signature": crypto.csb_signature(secret, params)}
    if scheme == "tif":
        timestamp, nonce = str(now_ms // 1000), secrets.token_hex(16)
        return {"x-tif-paasid": access_key, "x-tif-timestamp": timestamp, "x-tif-nonce": nonce,
                "x-tif-signature": crypto.tif_signature(timestamp, secret, nonce)}
    raise YibaoError(f"unknown scheme {scheme}")


def command(url: str, headers: Mapping[str, str], body: bytes) -> str:
    """A POSIX shell command that sends ``body`` byte for byte. Text goes in single quotes (readable); a body that is not
    UTF-8, or holds control characters a clipboard may rewrite (CR, NUL…), goes through base64."""
    try:
        text = body.decode("utf-8")
        plain = not any(ord(c) < 32 and c not in "\n\t" for c in text)
    except UnicodeDecodeError:
        text, plain = "", False
    charset = "utf-8" if plain or _is_utf8(body) else "GBK"
    lines = [f"curl -sS -X POST {shlex.quote(url)}", f"-H {shlex.quote(f'Content-Type: application/json; charset={charset}')}"]
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
    if plain:
        return " \\\n  ".join([*lines, f"--data-binary {shlex.quote(text)}"])
    encoded = base64.b64encode(body).decode()
    return f"printf %s {shlex.quote(encoded)} | base64 -d | " + " \\\n  ".join([*lines, "--data-binary @-"])


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# -- one request of the console's API, in the transactions it needs (the views parse and shape) ---------------------

SIGN_IN_UNKNOWN = Counter("yibao_console_signin_unknown_total",
                          "Console sign-ins refused for an access key or staff name that does not exist")


def sign_in_account(access_key: str, staff: str) -> str:
    """The account a sign-in names: ``staff:NAME`` for staff, else the access key ("" when neither was given)."""
    return f"staff:{staff}" if staff else access_key


def count_sign_in(db: Database, settings: Settings, ip: str, account: str | None) -> int | None:
    """Count a sign-in attempt (committed whatever follows); the seconds to wait when over a limit. A challenge counts
    for its address only (``account`` None: it proves nothing; the answer is the attempt)."""
    limits = [("ip", ip, RATE_IP)]
    if account is not None:
        # per account *and address*: an institution's access key is its public code, so a count per account alone
        # would let anyone lock an institution out of its console; the per-address count bounds guessing anyway
        limits.append(("acct", crypto.sm3_hex(f"{account}\n{ip}".encode())[:32], RATE_ACCOUNT))
    with db.unit_of_work() as session:
        return rate_limit(session, settings, "console", limits)


def challenge_for(db: Database, access_key: str) -> str:
    with db.unit_of_work() as session:
        return new_challenge(session, access_key)


def sign_in(db: Database, settings: Settings, ip: str, *, access_key: str, challenge: str, answer: str, staff: str,
            password: str) -> tuple[str, Viewer]:
    """Staff (``staff`` and ``password``) or an institution (``access_key``, ``challenge`` and its ``answer``): a new
    session's token and who it is. A refusal of an existing account is audited; a stranger's is only counted."""
    who = sign_in_account(access_key, staff)
    try:
        if not staff:
            with db.unit_of_work() as session:  # spent before the answer is checked: one guess per challenge
                fresh = take_challenge(session, access_key, challenge)
            if not fresh:
                raise AuthError("挑战码无效或已过期，请重新登录", field="challenge")
        with db.unit_of_work() as session:
            if staff:
                viewer = verify_staff(session, staff, password, settings.password_scrypt_n)
            else:
                viewer = verify_institution(session, access_key, challenge, answer)
            token = open_session(session, viewer)
            audit.record(session, "console.signin", actor=viewer.actor, fixmedins_code=viewer.fixmedins_code, ip=ip)
    except YibaoError as error:
        # only for an account that exists: a stranger's guesses are counted, never stored (issue 9)
        if account_exists(db, who):
            audit.record_apart(db, "console.signin", actor=who[:64], outcome="refused", reason=error.message, ip=ip)
        else:
            SIGN_IN_UNKNOWN.inc()
        raise
    return token, viewer


def sign_out(db: Database, token: str) -> None:
    with db.unit_of_work() as session:
        close_session(session, token)


def signed_in(db: Database, token: str) -> Viewer:
    with db.unit_of_work(write=False) as session:
        return viewer_of(session, token)


def list_institutions(db: Database, token: str) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return institutions(session, viewer_of(session, token))


def list_messages(db: Database, token: str, filters: Filters, table: Mapping[str, Transaction]) -> list[dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        return messages(session, viewer_of(session, token), filters, table)


def show_message(db: Database, token: str, message_id: int, table: Mapping[str, Transaction], ip: str) -> dict[str, Any]:
    with db.unit_of_work(write=False) as session:
        viewer = viewer_of(session, token)
        shown = message(session, viewer, message_id, table)
    if viewer.is_staff:  # the platform reading an institution's messages (personal data) is on the record
        audit.record_apart(db, "console.view", actor=viewer.actor, subject=f"message {message_id}", fixmedins_code=shown["fixmedins_code"],
                           infno=shown["infno"], ip=ip)
    return shown


def curl_for(db: Database, token: str, message_id: int, base_url: str, window_s: int) -> Curl:
    with db.unit_of_work() as session:
        return curl(session, viewer_of(session, token), message_id, base_url, window_s)


# -- claim review (智能审核): the settlements rules fired on -----------------------------------------------------

def review_findings(db: Database, token: str, filters: review.FindingFilters) -> list[dict[str, Any]]:
    """Flagged settlements with the rules that fired: every institution's for staff, an institution its own."""
    with db.unit_of_work(write=False) as session:
        viewer = viewer_of(session, token)
        if not viewer.is_staff:
            filters = review.FindingFilters(filters.rule_id, filters.severity, viewer.fixmedins_code, filters.begin, filters.end,
                                            filters.limit)
        return review.findings(session, filters)


def review_rules(db: Database, token: str) -> list[dict[str, Any]]:
    """The rules in force (for the page's filter)."""
    with db.unit_of_work(write=False) as session:
        viewer_of(session, token)
    return review.rules_listing()
