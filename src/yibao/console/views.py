"""HTTP API of the vendors' console (/console/api); the page itself is static (console/static, served at /console/).

Bearer sessions (``Authorization: Bearer <token>``) from `POST /sessions`. Refusals are problem+json whose ``detail``
is Chinese (the console shows it) and whose ``field`` names the input at fault.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter

from yibao.api.problems import check_body, http_error_handler, internal_error_handler, validation_error_handler, yibao_error_handler
from yibao.api.request import bearer_token, client_ip
from yibao.config import Settings
from yibao.console import service
from yibao.core.errors import InputError, YibaoError
from yibao.credential import service as credential
from yibao.review import service as review

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


def _limit(request: Request[Any, Any, Any], account: str | None) -> None:
    """Count a sign-in attempt (committed whatever follows): too many per account or address answer 429."""
    wait = service.count_sign_in(request.app.state.db, request.app.state.settings, client_ip(request), account)
    if wait is not None:
        raise credential.RateLimited(wait, "console")


class ConsoleController(Controller):
    path = "/console/api"
    tags = ["console"]
    include_in_schema = True
    request_max_body_size = 16 * 1024
    before_request = staticmethod(check_body)  # Litestar calls the class's function with the request
    exception_handlers = {YibaoError: yibao_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @post("/challenge", sync_to_thread=True, status_code=201, summary="A one-time challenge for an institution's sign-in")
    def challenge(self, request: Request[Any, Any, Any], data: ChallengeIn) -> dict[str, Any]:
        if not data.access_key.strip():
            raise InputError("请填写接入密钥（access key）", field="access_key")
        _limit(request, None)
        challenge = service.challenge_for(request.app.state.db, data.access_key.strip())
        return {"challenge": challenge, "algorithm": "HMAC-SHA256", "message": f"{service.SIGN_IN_PREFIX}\\n<access_key>\\n<challenge>",
                "expires_in_s": int(service.CHALLENGE_TTL.total_seconds())}

    @post("/sessions", sync_to_thread=True, status_code=201, summary="Sign in: an institution (challenge answered) or staff (password)")
    def sign_in(self, request: Request[Any, Any, Any], data: SignInIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        staff, access_key = data.staff.strip(), data.access_key.strip()
        who = service.sign_in_account(access_key, staff)
        if not who:
            raise InputError("请填写接入密钥（access key）或平台人员用户名", field="access_key")
        _limit(request, who)
        token, viewer = service.sign_in(request.app.state.db, settings, client_ip(request), access_key=access_key, challenge=data.challenge,
                                        answer=data.answer, staff=staff, password=data.password)
        return {"token": token, **_me(viewer)}

    @delete("/sessions/current", sync_to_thread=True, status_code=204)
    def sign_out(self, request: Request[Any, Any, Any]) -> None:
        service.sign_out(request.app.state.db, bearer_token(request))

    @get("/me", sync_to_thread=True)
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return _me(service.signed_in(request.app.state.db, bearer_token(request)))

    @get("/institutions", sync_to_thread=True, summary="Staff: institutions with messages, most recently active first")
    def institutions(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.list_institutions(request.app.state.db, bearer_token(request))

    @get("/messages", sync_to_thread=True, summary="The newest messages, filterable by infno, msgid and outcome")
    def messages(self, request: Request[Any, Any, Any], infno: Annotated[str, Parameter(max_length=6)] = "",
                 msgid: Annotated[str, Parameter(max_length=40)] = "", outcome: Annotated[str, Parameter(max_length=10)] = "",
                 fixmedins_code: Annotated[str, Parameter(max_length=12)] = "", before: Annotated[int, Parameter(ge=0, le=2**62)] = 0,
                 limit: Annotated[int, Parameter(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
        filters = service.Filters(infno.strip(), msgid.strip(), outcome.strip(), fixmedins_code.strip(), before, limit)
        return service.list_messages(request.app.state.db, bearer_token(request), filters, request.app.state.gateway.table)

    @get("/messages/{message_id:int}", sync_to_thread=True, summary="One message: request, answer, timing and field-level warnings")
    def message(self, request: Request[Any, Any, Any], message_id: MessageId) -> dict[str, Any]:
        return service.show_message(request.app.state.db, bearer_token(request), message_id, request.app.state.gateway.table,
                                    client_ip(request))

    @post("/messages/{message_id:int}/curl", sync_to_thread=True, status_code=200,
          summary="The message as a curl command, signed now with the institution's secret")
    def curl(self, request: Request[Any, Any, Any], message_id: MessageId) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        made = service.curl_for(request.app.state.db, bearer_token(request), message_id, str(request.base_url), settings.signature_window_s)
        return {"command": made.command, "scheme": made.scheme, "valid_s": made.valid_s, "notes": made.notes}

    @get("/review/findings", sync_to_thread=True, summary="智能审核: flagged settlements with the rule that fired, filterable")
    def review_findings(self, request: Request[Any, Any, Any], rule_id: Annotated[str, Parameter(max_length=20)] = "",
                        severity: Annotated[str, Parameter(max_length=1)] = "",
                        fixmedins_code: Annotated[str, Parameter(max_length=12)] = "",
                        begin: Annotated[str, Parameter(max_length=10)] = "", end: Annotated[str, Parameter(max_length=10)] = "",
                        limit: Annotated[int, Parameter(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
        filters = review.filters_of(rule_id, severity, fixmedins_code, begin, end, limit)
        return service.review_findings(request.app.state.db, bearer_token(request), filters)

    @get("/review/rules", sync_to_thread=True, summary="智能审核: the rules in force")
    def review_rules(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.review_rules(request.app.state.db, bearer_token(request))


def _me(viewer: service.Viewer) -> dict[str, Any]:
    return {"kind": "staff" if viewer.is_staff else "institution", "fixmedins_code": viewer.fixmedins_code, "access_key": viewer.access_key,
            "staff": viewer.staff}
