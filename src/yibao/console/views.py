"""HTTP API of the vendors' console (/console/api); the page itself is static (console/static, served at /console/).

Bearer sessions (``Authorization: Bearer <token>``) from `POST /sessions`. Refusals are problem+json whose ``detail``
is Chinese (the console shows it) and whose ``field`` names the input at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter
from prometheus_client import Counter
from sqlalchemy.orm import Session

from yibao.audit import service as audit
from yibao.config import Settings
from yibao.console import service
from yibao.core import crypto
from yibao.core.errors import AuthError, InputError, YibaoError
from yibao.credential import service as credential
from yibao.people.views import check_body, http_error_handler, internal_error_handler, validation_error_handler, yibao_error_handler
from yibao.store.db import Database

T = TypeVar("T")
MessageId = Annotated[int, Parameter(ge=1, le=2**62)]
Short = Annotated[str, msgspec.Meta(max_length=64)]


class ChallengeIn(msgspec.Struct):
    access_key: Short


class SignInIn(msgspec.Struct):
    """An institution: access_key, challenge and answer (hex HMAC-SHA256). Staff: staff and password."""

    access_key: Short = ""
    challenge: Short = ""
    answer: Annotated[str, msgspec.Meta(max_length=128)] = ""
    staff: Annotated[str, msgspec.Meta(max_length=40)] = ""
    password: Annotated[str, msgspec.Meta(max_length=128)] = ""


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _ip(request: Request[Any, Any, Any]) -> str:
    return ((request.client.host if request.client else "") or "unknown")[:64]


def _as_viewer(request: Request[Any, Any, Any], work: Callable[[Session, service.Viewer], T], *, write: bool = False) -> T:
    db: Database = request.app.state.db
    with db.unit_of_work(write=write) as session:
        return work(session, service.viewer_of(session, _bearer(request)))


def _limit(request: Request[Any, Any, Any], account: str | None) -> None:
    """Count a sign-in attempt (committed whatever follows): too many per account or address answer 429. A challenge
    counts for its address only (it proves nothing; the answer is the attempt)."""
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    limits = [("ip", _ip(request), service.RATE_IP)]
    if account is not None:
        # per account *and address*: an institution's access key is its public code, so a count per account alone
        # would let anyone lock an institution out of its console; the per-address count bounds guessing anyway
        limits.append(("acct", crypto.sm3_hex(f"{account}\n{_ip(request)}".encode())[:32], service.RATE_ACCOUNT))
    with db.unit_of_work() as session:
        wait = credential.rate_limit(session, settings, "console", limits)
    if wait is not None:
        raise credential.RateLimited(wait, "console")


CONSOLE_SIGNIN_UNKNOWN = Counter("yibao_console_signin_unknown_total", "Console sign-ins refused for an access key or staff name that does not exist")


class ConsoleController(Controller):
    path = "/console/api"
    tags = ["console"]
    include_in_schema = True
    request_max_body_size = 16 * 1024
    before_request = check_body
    exception_handlers = {YibaoError: yibao_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @post("/challenge", sync_to_thread=True, status_code=201, summary="A one-time challenge for an institution's sign-in")
    def challenge(self, request: Request[Any, Any, Any], data: ChallengeIn) -> dict[str, Any]:
        if not data.access_key.strip():
            raise InputError("请填写接入密钥（access key）", field="access_key")
        _limit(request, None)
        with request.app.state.db.unit_of_work() as session:
            challenge = service.new_challenge(session, data.access_key.strip())
        return {"challenge": challenge, "algorithm": "HMAC-SHA256", "message": f"{service.SIGN_IN_PREFIX}\\n<access_key>\\n<challenge>",
                "expires_in_s": int(service.CHALLENGE_TTL.total_seconds())}

    @post("/sessions", sync_to_thread=True, status_code=201, summary="Sign in: an institution (challenge answered) or staff (password)")
    def sign_in(self, request: Request[Any, Any, Any], data: SignInIn) -> dict[str, Any]:
        db: Database = request.app.state.db
        settings: Settings = request.app.state.settings
        staff = bool(data.staff.strip())
        who = f"staff:{data.staff.strip()}" if staff else data.access_key.strip()
        if not who:
            raise InputError("请填写接入密钥（access key）或平台人员用户名", field="access_key")
        _limit(request, who)
        try:
            if not staff:
                with db.unit_of_work() as session:  # spent before the answer is checked: one guess per challenge
                    fresh = service.take_challenge(session, data.access_key.strip(), data.challenge)
                if not fresh:
                    raise AuthError("挑战码无效或已过期，请重新登录", field="challenge")
            with db.unit_of_work() as session:
                if staff:
                    viewer = service.verify_staff(session, data.staff.strip(), data.password, settings.password_scrypt_n)
                else:
                    viewer = service.verify_institution(session, data.access_key.strip(), data.challenge, data.answer)
                token = service.open_session(session, viewer)
                audit.record(session, "console.signin", actor=viewer.actor, fixmedins_code=viewer.fixmedins_code, ip=_ip(request))
        except YibaoError as error:
            # only for an account that exists: a stranger's guesses are counted, never stored (issue 9)
            if service.account_exists(db, who):
                audit.record_apart(db, "console.signin", actor=who[:64], outcome="refused", reason=error.message, ip=_ip(request))
            else:
                CONSOLE_SIGNIN_UNKNOWN.inc()
            raise
        return {"token": token, **_me(viewer)}

    @delete("/sessions/current", sync_to_thread=True, status_code=204)
    def sign_out(self, request: Request[Any, Any, Any]) -> None:
        with request.app.state.db.unit_of_work() as session:
            service.close_session(session, _bearer(request))

    @get("/me", sync_to_thread=True)
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return _as_viewer(request, lambda _, viewer: _me(viewer))

    @get("/institutions", sync_to_thread=True, summary="Staff: institutions with messages, most recently active first")
    def institutions(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return _as_viewer(request, service.institutions)

    @get("/messages", sync_to_thread=True, summary="The newest messages, filterable by infno, msgid and outcome")
    def messages(self, request: Request[Any, Any, Any], infno: Annotated[str, Parameter(max_length=6)] = "",
                 msgid: Annotated[str, Parameter(max_length=40)] = "", outcome: Annotated[str, Parameter(max_length=10)] = "",
                 fixmedins_code: Annotated[str, Parameter(max_length=12)] = "", before: Annotated[int, Parameter(ge=0, le=2**62)] = 0,
                 limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
        filters = service.Filters(infno.strip(), msgid.strip(), outcome.strip(), fixmedins_code.strip(), before, limit)
        table = request.app.state.gateway.table
        return _as_viewer(request, lambda session, viewer: service.messages(session, viewer, filters, table))

    @get("/messages/{message_id:int}", sync_to_thread=True, summary="One message: request, answer, timing and field-level warnings")
    def message(self, request: Request[Any, Any, Any], message_id: MessageId) -> dict[str, Any]:
        table = request.app.state.gateway.table
        shown, viewer = _as_viewer(request, lambda session, viewer: (service.message(session, viewer, message_id, table), viewer))
        if viewer.is_staff:  # the platform reading an institution's messages (personal data) is on the record
            audit.record_apart(request.app.state.db, "console.view", actor=viewer.actor, subject=f"message {message_id}",
                               fixmedins_code=shown["fixmedins_code"], infno=shown["infno"], ip=_ip(request))
        return shown

    @post("/messages/{message_id:int}/curl", sync_to_thread=True, status_code=200,
          summary="The message as a curl command, signed now with the institution's secret")
    def curl(self, request: Request[Any, Any, Any], message_id: MessageId) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        base = str(request.base_url)

        def go(session: Session, viewer: service.Viewer) -> dict[str, Any]:
            made = service.curl(session, viewer, message_id, base, settings.signature_window_s)
            return {"command": made.command, "scheme": made.scheme, "valid_s": made.valid_s, "notes": made.notes}

        return _as_viewer(request, go, write=True)


def _me(viewer: service.Viewer) -> dict[str, Any]:
    return {"kind": "staff" if viewer.is_staff else "institution", "fixmedins_code": viewer.fixmedins_code, "access_key": viewer.access_key,
            "staff": viewer.staff}
