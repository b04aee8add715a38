"""REST API for insured people (bearer sessions) and the counter's decode endpoint; problem+json errors.

People see the ``detail`` of a refusal, so every detail the people's API writes is plain Chinese; the
machine-readable reason is the problem's ``title`` and the input at fault its ``field``. Bad input of
any shape (numbers out of range, invalid UTF-8, deep nesting, oversized bodies) is a 4xx, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import anyio
import msgspec
import structlog
from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.core.errors import AuthError, InputError, NotFound, YibaoError
from yibao.credential import realperson
from yibao.credential import service as credential
from yibao.credential.models import Channel, UserSession
from yibao.credential.realperson import demo_face
from yibao.people import service
from yibao.registry.models import Person
from yibao.store.db import Database

log = structlog.get_logger("yibao.people")
T = TypeVar("T")
# ids are 32-bit in storage: larger numbers are refused as bad input, not sent to the database
BindingId = Annotated[int, Parameter(ge=1, le=2**31 - 1)]
# a face image (base64) or a vendor SDK's liveness token fits well within this; nothing else a person sends is large
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH_ERROR = "请求内容嵌套层数过多"

CertNo = Annotated[str, msgspec.Meta(max_length=32)]
Name = Annotated[str, msgspec.Meta(max_length=50)]
Password = Annotated[str, msgspec.Meta(max_length=32)]
Face = Annotated[str, msgspec.Meta(max_length=900_000)]
Liveness = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Short = Annotated[str, msgspec.Meta(max_length=20)]

# field names → what a person calls them (details name the field in Chinese; `field` names it for programs)
LABELS = {"certno": "身份证号", "name": "姓名", "password": "消费密码", "face": "刷脸信息", "liveness": "活体检测结果",
          "chnl_id": "激活渠道", "psn_cert_type": "证件类型", "device_label": "设备名称", "device_id": "设备", "relation": "关系",
          "binding_id": "亲情账户申请编号", "ec_token": "就诊凭证", "psn_no": "人员编号", "code": "医保码", "business_type": "业务类型",
          "svg": "图形格式"}
GENERIC = {400: "输入有误，请检查后重试", 401: "请重新登录", 403: "未通过验证，无法继续", 404: "未找到相关信息",
           405: "不支持这种操作", 409: "操作未完成，请刷新后重试", 413: "提交的内容过大", 415: "请以 JSON 格式提交",
           429: "操作过于频繁，请稍后再试", 503: "服务暂时不可用，请稍后再试", 507: "服务暂时不可用，请稍后再试"}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def problem(status: int, title: str, detail: str, field: str | None = None,
            headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field:
        body["field"] = field
    return Response(body, status_code=status, media_type="application/problem+json", headers=headers)


def _detail(error: YibaoError) -> str:
    """The message without the ``field: `` prefix (the field is a member of its own)."""
    prefix = f"{error.field}: " if error.field else ""
    return error.message[len(prefix):] if prefix and error.message.startswith(prefix) else error.message


def _headers(error: YibaoError) -> dict[str, str] | None:
    retry_after = getattr(error, "retry_after", None)
    return {"retry-after": str(retry_after)} if retry_after else None


def yibao_error_handler(_: Request[Any, Any, Any], error: YibaoError) -> Response[dict[str, Any]]:
    return problem(error.http_status, getattr(error, "reason", type(error).__name__), _detail(error), error.field, _headers(error))


def people_error_handler(_: Request[Any, Any, Any], error: YibaoError) -> Response[dict[str, Any]]:
    """As `yibao_error_handler`, but a person reads it: a detail that is not Chinese becomes the status's plain words."""
    detail = _detail(error)
    if not _CJK.search(detail):
        detail = GENERIC.get(error.http_status, GENERIC[400] if error.http_status < 500 else GENERIC[503])
    return problem(error.http_status, getattr(error, "reason", type(error).__name__), detail, error.field, _headers(error))


def _field_problem(field: str, message: str) -> str:
    """A msgspec/Litestar validation message about ``field`` in plain Chinese."""
    label = LABELS.get(field.split(".")[-1].split("[")[0], field or "提交的内容")
    if "missing required field" in message or "is missing" in message:
        return f"请填写{label}"
    if "of length <=" in message:
        return f"{label}过长"
    if "of length >=" in message:
        return f"{label}过短"
    if "out of range" in message or "<=" in message or ">=" in message or "< " in message or "> " in message:
        return f"{label}超出允许的范围"
    if message.startswith("Expected"):
        return f"{label}的格式不正确"
    return f"{label}无效"


def _msgspec_problem(message: str) -> tuple[str | None, str]:
    path = re.search(r"at `\$\.?([^`]*)`", message)
    # an untyped decode cannot name a member ("$[...]"): then the body as a whole is at fault
    field = path.group(1) if path and path.group(1) and "..." not in path.group(1) else None
    missing = re.search(r"missing required field `([^`]+)`", message)
    if missing:
        field = ((field + ".") if field else "") + missing.group(1)
    return field, _field_problem(field or "", message)


def validation_error_handler(_: Request[Any, Any, Any], error: ValidationException) -> Response[dict[str, Any]]:
    extra = error.extra if isinstance(error.extra, list) else []
    found = [(str(e.get("key", "")), str(e.get("message", ""))) for e in extra if isinstance(e, dict)]
    if not found:
        field, detail = _msgspec_problem(str(error.detail))
        return problem(400, "invalid-input", detail, field)
    fields = [key for key, _ in found if key]
    details = list(dict.fromkeys(_field_problem(key, message) for key, message in found))
    return problem(400, "invalid-input", "；".join(details), ", ".join(fields) or None)


def http_error_handler(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own refusals (a body too large, a body that is not JSON…) as problems, in Chinese."""
    status = error.status_code if 400 <= error.status_code < 600 else 500
    if status == 400:
        field, detail = _msgspec_problem(str(error.detail))
        return problem(400, "invalid-input", detail, field)
    return problem(status, f"http-{status}", GENERIC.get(status, "服务出错了，请稍后再试"), headers=error.headers)


def internal_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    # a bug, not the caller's fault: answered without a traceback (the app's exception logging writes it to the log, once)
    return problem(500, "internal-error", "服务出错了，请稍后再试")


class BadInput(InputError):
    reason = "invalid-input"


async def check_body(request: Request[Any, Any, Any]) -> None:
    """Before Litestar parses a body, decode it ourselves, so every kind of bad input (invalid UTF-8, nesting deep
    enough to exhaust the decoder, numbers out of range — also in fields nobody asked for) is a 400 naming the field."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    if parameter is None:
        return None
    body = await request.body()
    # typed first, so a known field is named; then untyped, which is what Litestar itself will do with every member
    for target in (parameter.annotation, Any):
        try:
            msgspec.json.decode(body, type=target)
        except msgspec.ValidationError as error:
            field, detail = _msgspec_problem(str(error))
            raise BadInput(detail, field=field or "body") from None
        except msgspec.DecodeError:
            raise BadInput("提交的内容不是有效的 JSON", field="body") from None
        except UnicodeDecodeError:
            raise BadInput("提交的内容不是有效的 UTF-8 文本", field="body") from None
        except RecursionError:
            raise BadInput(MAX_JSON_DEPTH_ERROR, field="body") from None
    return None


class ActivationIn(msgspec.Struct):
    chnl_id: Short
    certno: CertNo
    name: Name
    password: Password
    face: Face
    # what the app's camera thought of liveness: the demo checker uses it; a real provider judges the face itself
    liveness: Liveness = 1.0
    psn_cert_type: Short = "01"
    device_label: Annotated[str, msgspec.Meta(max_length=200)] = ""


class SignInIn(msgspec.Struct):
    certno: CertNo
    name: Name
    password: Password
    device_id: Annotated[str, msgspec.Meta(max_length=64)]


class ResetIn(msgspec.Struct):
    certno: CertNo
    name: Name
    face: Face
    password: Password
    liveness: Liveness = 1.0


class BindIn(msgspec.Struct):
    certno: CertNo
    name: Name
    relation: Short


class ApproveIn(msgspec.Struct):
    password: Password


class PayAuthIn(msgspec.Struct):
    password: Password = ""
    face: Face = ""
    liveness: Liveness = 1.0


class DecodeIn(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(max_length=512)]
    business_type: Short = "01101"


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _ip(request: Request[Any, Any, Any]) -> str:
    # the peer address; behind a reverse proxy run uvicorn with --proxy-headers and --forwarded-allow-ips
    client = request.client
    return ((client.host if client else "") or "unknown")[:64]


def _run(request: Request[Any, Any, Any], fn: Callable[[Session, UserSession | None], T], *, write: bool = False, auth: bool = True) -> T:
    db: Database = request.app.state.db
    with db.unit_of_work(write=write) as session:
        user = credential.session_person(session, _bearer(request)) if auth else None
        return fn(session, user)


def _check_person(session: Session, user: UserSession | None, psn_no: str) -> None:
    assert user is not None
    credential.require_access(session, user.psn_no, psn_no)


def _why(error: YibaoError) -> str:
    reason = getattr(error, "reason", type(error).__name__)
    cause = getattr(error, "cause", "")
    return f"{reason}: {cause}" if cause else reason


def _limit(request: Request[Any, Any, Any], action: str, account: str, per_account: int, per_ip: int) -> None:
    """Count this attempt (committed whatever follows) and refuse with 429 when the account or the IP is over its limit."""
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    with db.unit_of_work() as session:
        wait = credential.rate_limit(session, settings, action, [("acct", account, per_account), ("ip", _ip(request), per_ip)])
    if wait is not None:
        # logged, not audited: a flood must not grow the append-only trail a row per request
        log.info("rate limited", action=action, ip=_ip(request), retry_after=wait)
        raise credential.RateLimited(wait, action)


_ABOUT_THE_PERSON = ("person.signin", "person.activation")


def _attempt(request: Request[Any, Any, Any], kind: str, subject: str, work: Callable[[Session], T]) -> T:
    """`work` in one write transaction. A refusal is audited in a transaction of its own; a wrong password is also
    counted in its own (the attempt's transaction rolls back), and the refusal says what the count now is."""
    db: Database = request.app.state.db
    try:
        with db.unit_of_work() as session:
            return work(session)
    except credential.WrongPassword as wrong:
        with db.unit_of_work() as session:
            refusal = credential.count_wrong_password(session, wrong.psn_no)
            # signing in or activating, the ID number and name matched: the person is the subject, not the number typed
            audit.record(session, kind, actor=wrong.psn_no, subject=wrong.psn_no if kind in _ABOUT_THE_PERSON else subject,
                         outcome="refused", reason=_why(refusal), ip=_ip(request))
        raise refusal from None
    except YibaoError as error:
        audit.record_apart(db, kind, subject=subject, outcome="refused", reason=_why(error), ip=_ip(request))
        raise


def _face_check(request: Request[Any, Any, Any], kind: str, subject: str, certno: str, name: str, face: str,
                liveness: float) -> credential.FacePass:
    """The real-person check, outside any transaction (a provider may take seconds; SQLite has one writer)."""
    db: Database = request.app.state.db
    try:
        with db.unit_of_work(write=False) as session:
            checker = realperson.provider(session, request.app.state.settings)
        return credential.real_person(checker, certno, name, face, liveness)
    except YibaoError as error:
        if isinstance(error, (realperson.Unavailable, realperson.NotConfigured)):
            log.warning("real-person check unavailable", cause=error.cause)
        audit.record_apart(db, kind, subject=subject, outcome="refused", reason=_why(error), ip=_ip(request))
        raise


class PeopleController(Controller):
    path = "/api/v1"
    tags = ["people"]
    request_max_body_size = MAX_BODY_BYTES
    before_request = check_body
    exception_handlers = {YibaoError: people_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @get("/channels", sync_to_thread=True, summary="Activation channels")
    def channels(self, request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        return _run(request, lambda s, _: [{"chnl_id": c.chnl_id, "chnl_name": c.chnl_name, "kind": c.kind}
                                           for c in s.scalars(select(Channel).where(Channel.active).order_by(Channel.chnl_id))], auth=False)

    @post("/activations", status_code=201, summary="Activate the e-credential on this device (real person, real name, password)")
    async def activate(self, request: Request[Any, Any, Any], data: ActivationIn) -> dict[str, Any]:
        body = await request.body()
        return await anyio.to_thread.run_sync(lambda: self._activate(request, data, body))

    def _activate(self, request: Request[Any, Any, Any], data: ActivationIn, body: bytes) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        db: Database = request.app.state.db
        kind, subject = "person.activation", service.mask(data.certno.strip().upper())
        _limit(request, "activation", credential.account_key(data.certno), settings.rate_activation_account, settings.rate_activation_ip)
        try:
            with db.unit_of_work(write=False) as session:
                chnl = credential.channel(session, data.chnl_id)
                if chnl.kind != "platform_web":
                    # third-party channels (apps, WeChat, Alipay, banks) sign with their own key; the platform's web app needs none
                    credential.verify_channel_signature(session, data.chnl_id, request.headers.get("x-yb-timestamp", ""),
                                                        request.headers.get("x-yb-signature", ""), body)
            if data.psn_cert_type not in ("", "01"):
                raise InputError("网上激活仅支持居民身份证（01）", field="psn_cert_type")
            # before the face is taken: a password that cannot be right (or set) wastes no face check
            credential.check_password_rules(data.password)
        except YibaoError as error:
            audit.record_apart(db, kind, subject=subject, outcome="refused", reason=_why(error), ip=_ip(request))
            raise
        face_pass = _face_check(request, kind, subject, data.certno, data.name, data.face, data.liveness)

        def go(session: Session) -> dict[str, Any]:
            done = credential.activate(session, settings, chnl_id=data.chnl_id, psn_cert_type=data.psn_cert_type, certno=data.certno,
                                       name=data.name, face_pass=face_pass, password=data.password,
                                       device_label=data.device_label or request.headers.get("user-agent", "")[:100])
            psn_no = done.credential.psn_no
            audit.record(session, kind, actor=psn_no, subject=psn_no, reason=f"channel {data.chnl_id}, device {done.device.device_id}",
                         ip=_ip(request))
            return {"token": done.token, "device_id": done.device.device_id, "psn_no": psn_no, "ec_index_no": done.credential.ec_index_no}

        return _attempt(request, kind, subject, go)

    @post("/sessions", sync_to_thread=True, status_code=201, summary="Sign in with ID number, name and the 6-digit password")
    def sign_in(self, request: Request[Any, Any, Any], data: SignInIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        _limit(request, "signin", credential.account_key(data.certno), settings.rate_sign_in_account, settings.rate_sign_in_ip)

        def go(session: Session) -> dict[str, Any]:
            person, token = credential.sign_in(session, settings, certno=data.certno, name=data.name, password=data.password,
                                               device_id=data.device_id)
            audit.record(session, "person.signin", actor=person.psn_no, subject=person.psn_no, reason=f"device {data.device_id}",
                         ip=_ip(request))
            return {"token": token, "psn_no": person.psn_no, "name": person.psn_name}

        return _attempt(request, "person.signin", service.mask(data.certno.strip().upper()), go)

    @delete("/sessions/current", sync_to_thread=True, status_code=204)
    def sign_out(self, request: Request[Any, Any, Any]) -> None:
        def go(session: Session, user: UserSession | None) -> None:
            session.delete(user)

        _run(request, go, write=True)

    @post("/password/reset", sync_to_thread=True,
          summary="Reset the password through a real-person check (lifts a lockout; every session and phone must sign in again)")
    def reset(self, request: Request[Any, Any, Any], data: ResetIn) -> dict[str, str]:
        settings: Settings = request.app.state.settings
        kind, subject = "person.password_reset", service.mask(data.certno.strip().upper())
        _limit(request, "reset", credential.account_key(data.certno), settings.rate_reset_account, settings.rate_reset_ip)
        try:
            credential.check_password_rules(data.password)
        except YibaoError as error:
            audit.record_apart(request.app.state.db, kind, subject=subject, outcome="refused", reason=_why(error), ip=_ip(request))
            raise
        face_pass = _face_check(request, kind, subject, data.certno, data.name, data.face, data.liveness)

        def go(session: Session) -> dict[str, str]:
            person = credential.reset_password(session, settings, certno=data.certno, name=data.name, face_pass=face_pass,
                                               password=data.password)
            audit.record(session, kind, actor=person.psn_no, subject=person.psn_no, reason="sessions ended, devices revoked",
                         ip=_ip(request))
            return {"status": "ok"}

        return _attempt(request, kind, subject, go)

    @get("/me", sync_to_thread=True, summary="Who I am, my family and pending family requests")
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return _run(request, lambda s, u: service.profile(s, u.psn_no))  # type: ignore[union-attr]

    @get("/people/{psn_no:str}", sync_to_thread=True, summary="Enrolments and balance of me or a bound family member")
    def person(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        def go(session: Session, user: UserSession | None) -> dict[str, Any]:
            _check_person(session, user, psn_no)
            return service.person_card(session, psn_no)

        return _run(request, go)

    @get("/people/{psn_no:str}/account", sync_to_thread=True, summary="Personal-account balance and movements")
    def account(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        def go(session: Session, user: UserSession | None) -> dict[str, Any]:
            _check_person(session, user, psn_no)
            return service.account_movements(session, psn_no)

        return _run(request, go)

    @get("/people/{psn_no:str}/contributions", sync_to_thread=True, summary="Contribution history")
    def contributions(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        def go(session: Session, user: UserSession | None) -> list[dict[str, Any]]:
            _check_person(session, user, psn_no)
            return service.contributions(session, psn_no)

        return _run(request, go)

    @get("/people/{psn_no:str}/settlements", sync_to_thread=True, summary="Visits and settlements")
    def settlements(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        def go(session: Session, user: UserSession | None) -> list[dict[str, Any]]:
            _check_person(session, user, psn_no)
            return service.settlements(session, psn_no)

        return _run(request, go)

    @post("/people/{psn_no:str}/codes", status_code=201, summary="A fresh dynamic QR code (refresh every minute)")
    async def code(self, request: Request[Any, Any, Any], psn_no: str, svg: bool = True) -> dict[str, Any]:
        """``svg=false`` for an app that draws the QR symbol itself from ``code`` (saves the server ~2 ms a code)."""
        settings: Settings = request.app.state.settings

        def go(session: Session, user: UserSession | None) -> dict[str, Any]:
            assert user is not None
            issued = credential.issue_code(session, settings, user, psn_no)
            return {"code": issued.text, "psn_no": psn_no, "ttl_s": issued.ttl_s, "expires_at": issued.expires_at.isoformat(sep=" "),
                    "svg": render_svg(issued.text) if svg else None}

        # every visit starts here: run like the gateway's calls (see Database.run), not in Litestar's thread pool
        return await request.app.state.db.run(lambda: _run(request, go))

    @get("/me/family", sync_to_thread=True)
    def family(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return _run(request, lambda s, u: service.profile(s, u.psn_no)["family"])  # type: ignore[union-attr]

    @post("/me/family", sync_to_thread=True, status_code=201, summary="Bind a parent, child or spouse (亲情账户)")
    def bind(self, request: Request[Any, Any, Any], data: BindIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        db: Database = request.app.state.db
        with db.unit_of_work() as session:
            user = credential.session_person(session, _bearer(request))
            wait = credential.rate_limit(session, settings, "bind", [("acct", user.psn_no, settings.rate_bind_account),
                                                                     ("ip", _ip(request), settings.rate_bind_ip)])
        if wait is not None:
            log.info("rate limited", action="bind", ip=_ip(request), retry_after=wait)
            raise credential.RateLimited(wait, "bind")

        def go(session: Session) -> dict[str, Any]:
            user = credential.session_person(session, _bearer(request))
            holder = session.get(Person, user.psn_no)
            assert holder is not None
            binding = credential.bind(session, holder, certno=data.certno, name=data.name, relation=data.relation)
            audit.record(session, "family.bind", actor=user.psn_no, subject=binding.member_psn_no,
                         reason=f"binding {binding.id} {binding.status}", ip=_ip(request))
            return {"id": binding.id, "status": binding.status, "member_psn_no": binding.member_psn_no}

        return _attempt(request, "family.bind", service.mask(data.certno.strip().upper()), go)

    @post("/me/family/{binding_id:int}/approve", sync_to_thread=True,
          summary="Approve a family request addressed to me, with my password")
    def approve(self, request: Request[Any, Any, Any], binding_id: BindingId, data: ApproveIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings

        def go(session: Session) -> dict[str, Any]:
            user = credential.session_person(session, _bearer(request))
            binding = credential.approve(session, settings, user.psn_no, binding_id, data.password)
            audit.record(session, "family.approve", actor=user.psn_no, subject=binding.holder_psn_no, reason=f"binding {binding.id}",
                         ip=_ip(request))
            return {"id": binding.id, "status": binding.status}

        return _attempt(request, "family.approve", f"binding {binding_id}", go)

    @delete("/me/family/{binding_id:int}", sync_to_thread=True, status_code=204)
    def unbind(self, request: Request[Any, Any, Any], binding_id: BindingId) -> None:
        def go(session: Session) -> None:
            user = credential.session_person(session, _bearer(request))
            binding = credential.unbind(session, user.psn_no, binding_id)
            other = binding.member_psn_no if user.psn_no == binding.holder_psn_no else binding.holder_psn_no
            audit.record(session, "family.unbind", actor=user.psn_no, subject=other, reason=f"binding {binding.id}", ip=_ip(request))

        _attempt(request, "family.unbind", f"binding {binding_id}", go)

    @get("/me/devices", sync_to_thread=True)
    def devices(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return _run(request, lambda s, u: service.devices(s, u.psn_no))  # type: ignore[union-attr]

    @post("/me/devices/{device_id:str}/revoke", sync_to_thread=True, summary="Report a phone lost: its codes stop working at once")
    def revoke(self, request: Request[Any, Any, Any], device_id: str) -> dict[str, str]:
        def go(session: Session, user: UserSession | None) -> dict[str, str]:
            assert user is not None
            credential.revoke_device(session, user.psn_no, device_id)
            return {"status": "revoked"}

        return _run(request, go, write=True)

    @get("/me/visits", sync_to_thread=True, summary="Live visit tokens (codes scanned at a counter) of me and my family")
    def visits(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        def go(session: Session, user: UserSession | None) -> list[dict[str, Any]]:
            assert user is not None
            people = [user.psn_no] + [p.psn_no for b, p in credential.family_members(session, user.psn_no) if b.status == "active"]
            return [{"ec_token": t.ec_token, "psn_no": t.psn_no, "fixmedins_code": t.fixmedins_code, "business_type": t.business_type,
                     "expires_at": t.expires_at.isoformat(sep=" "), "pay_authorized": t.pay_authorized_at is not None}
                    for t in credential.live_tokens(session, people)]

        return _run(request, go)

    @post("/me/visits/{ec_token:str}/authorize-payment", sync_to_thread=True,
          summary="Confirm paying this visit from the personal account (password or face)")
    def authorize(self, request: Request[Any, Any, Any], ec_token: str, data: PayAuthIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        db: Database = request.app.state.db
        face_pass = None
        if data.face:
            with db.unit_of_work(write=False) as session:
                user = credential.session_person(session, _bearer(request))
                credential.payable_visit(session, user, ec_token)
                holder = session.get(Person, user.psn_no)
                assert holder is not None
                certno, name = holder.certno, holder.psn_name
            face_pass = _face_check(request, "person.pay_authorize", user.psn_no, certno, name, data.face, data.liveness)

        def go(session: Session) -> dict[str, Any]:
            user = credential.session_person(session, _bearer(request))
            token = credential.authorize_payment(session, settings, user, ec_token=ec_token, password=data.password, face_pass=face_pass)
            audit.record(session, "person.pay_authorize", actor=user.psn_no, subject=token.psn_no, reason="face" if face_pass else "password",
                         ip=_ip(request))
            return {"ec_token": token.ec_token, "pay_authorized": True}

        return _attempt(request, "person.pay_authorize", ec_token[:64], go)

    @get("/demo/face", sync_to_thread=True, summary="Demo databases only: the face the deterministic real-person checker accepts")
    def face(self, request: Request[Any, Any, Any], certno: Annotated[str, Parameter(max_length=32)]) -> dict[str, str]:
        # the database decides, not the environment: a production database has no demo faces whatever is set
        with request.app.state.db.unit_of_work(write=False) as session:
            if not realperson.demo_faces_available(session, request.app.state.settings):
                raise NotFound("没有这个接口")
        return {"face": demo_face(certno)}


class CounterController(Controller):
    """For institutions: decode a scanned code (the same as 1162), signed like the national gateway."""

    path = "/api/v1/counter"
    tags = ["counter"]
    request_max_body_size = 64 * 1024
    before_request = check_body
    exception_handlers = {HTTPException: http_error_handler, Exception: internal_error_handler}

    @post("/decode", summary="Scanned code → who it is and an ecToken for this visit")
    async def decode(self, request: Request[Any, Any, Any], data: DecodeIn) -> dict[str, Any]:
        body = await request.body()
        return await anyio.to_thread.run_sync(lambda: self._decode(request, data, body))

    def _decode(self, request: Request[Any, Any, Any], data: DecodeIn, body: bytes) -> dict[str, Any]:
        from yibao.core import clock
        from yibao.credential.transactions import decoded_answer
        from yibao.gateway import auth
        from yibao.gateway.models import GatewayNonce

        settings: Settings = request.app.state.settings
        db: Database = request.app.state.db
        headers = {k.lower(): v for k, v in request.headers.items()}
        with db.unit_of_work() as session:
            caller = auth.authenticate(request.app.state.gateway.clients, headers, body, {}, settings.signature_window_s)
            if session.get(GatewayNonce, (caller.access_key, caller.nonce)) is not None:
                raise AuthError("nonce was already used: replayed request")
            session.add(GatewayNonce(access_key=caller.access_key, nonce=caller.nonce, seen_at=clock.now()))
            token, person = credential.decode(session, settings, data.code, caller.fixmedins_code, data.business_type)
            session.flush()
            return _jsonable(decoded_answer(session, token, person))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def render_svg(text: str) -> str:
    import segno

    # mask 0: one mask instead of eight, ~4× faster and still a valid symbol
    return segno.make(text, error="m", mask=0).svg_inline(border=2, dark="#1d1d1f", omitsize=True)
