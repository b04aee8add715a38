"""REST API for insured people (bearer sessions) and the counter's decode endpoint; problem+json errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import anyio
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import ValidationException
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.core.errors import AuthError, NotFound, YibaoError
from yibao.credential import service as credential
from yibao.credential.models import Channel, UserSession
from yibao.credential.realperson import demo_face, provider
from yibao.people import service
from yibao.registry.models import Person
from yibao.store.db import Database

T = TypeVar("T")
# ids are 32-bit in storage: larger numbers are refused as bad input, not sent to the database
BindingId = Annotated[int, Parameter(ge=1, le=2**31 - 1)]


def problem(status: int, title: str, detail: str, field: str | None = None) -> Response[dict[str, Any]]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field:
        body["field"] = field
    return Response(body, status_code=status, media_type="application/problem+json")


def yibao_error_handler(_: Request[Any, Any, Any], error: YibaoError) -> Response[dict[str, Any]]:
    return problem(error.http_status, getattr(error, "reason", type(error).__name__), error.message, error.field)


def validation_error_handler(_: Request[Any, Any, Any], error: ValidationException) -> Response[dict[str, Any]]:
    extra = error.extra if isinstance(error.extra, list) else []
    fields = [str(e.get("key", "")) for e in extra if isinstance(e, dict) and e.get("key")]
    messages = [str(e.get("message", "")) for e in extra if isinstance(e, dict)]
    return problem(400, "invalid-input", "; ".join(m for m in messages if m) or str(error.detail), ", ".join(fields) or None)


class ActivationIn(msgspec.Struct):
    chnl_id: str
    certno: str
    name: str
    password: str
    face: str
    liveness: float = 1.0
    psn_cert_type: str = "01"
    device_label: str = ""


class SignInIn(msgspec.Struct):
    certno: str
    name: str
    password: str
    device_id: str


class ResetIn(msgspec.Struct):
    certno: str
    name: str
    face: str
    password: str
    liveness: float = 1.0


class BindIn(msgspec.Struct):
    certno: str
    name: str
    relation: str


class PayAuthIn(msgspec.Struct):
    password: str = ""
    face: str = ""
    liveness: float = 1.0


class DecodeIn(msgspec.Struct):
    code: str
    business_type: str = "01101"


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _run(request: Request[Any, Any, Any], fn: Callable[[Session, UserSession | None], T], *, write: bool = False, auth: bool = True) -> T:
    db: Database = request.app.state.db
    with db.unit_of_work(write=write) as session:
        user = credential.session_person(session, _bearer(request)) if auth else None
        return fn(session, user)


def _check_person(session: Session, user: UserSession | None, psn_no: str) -> None:
    assert user is not None
    credential.require_access(session, user.psn_no, psn_no)


class PeopleController(Controller):
    path = "/api/v1"
    tags = ["people"]

    @get("/channels", sync_to_thread=True, summary="Activation channels")
    def channels(self, request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        return _run(request, lambda s, _: [{"chnl_id": c.chnl_id, "chnl_name": c.chnl_name, "kind": c.kind}
                                           for c in s.scalars(select(Channel).where(Channel.active).order_by(Channel.chnl_id))], auth=False)

    @post("/activations", status_code=201, summary="Activate the e-credential on this device (real name + real person)")
    async def activate(self, request: Request[Any, Any, Any], data: ActivationIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        body = await request.body()

        def go(session: Session, _: Any) -> dict[str, Any]:
            chnl = credential.channel(session, data.chnl_id)
            if chnl.kind != "platform_web":
                # third-party channels (apps, WeChat, Alipay, banks) sign with their own key; the platform's web app needs none
                credential.verify_channel_signature(session, data.chnl_id, request.headers.get("x-yb-timestamp", ""),
                                                    request.headers.get("x-yb-signature", ""), body)
            done = credential.activate(session, settings, chnl_id=data.chnl_id, psn_cert_type=data.psn_cert_type, certno=data.certno,
                                       name=data.name, face=data.face, liveness=data.liveness, password=data.password,
                                       device_label=data.device_label or request.headers.get("user-agent", "")[:100])
            return {"token": done.token, "device_id": done.device.device_id, "psn_no": done.credential.psn_no,
                    "ec_index_no": done.credential.ec_index_no}

        return await anyio.to_thread.run_sync(lambda: _run(request, go, write=True, auth=False))

    @post("/sessions", sync_to_thread=True, status_code=201, summary="Sign in with ID number, name and the 6-digit password")
    def sign_in(self, request: Request[Any, Any, Any], data: SignInIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings

        def go(session: Session, _: Any) -> dict[str, Any]:
            person, token = credential.sign_in(session, settings, certno=data.certno, name=data.name, password=data.password,
                                               device_id=data.device_id)
            return {"token": token, "psn_no": person.psn_no, "name": person.psn_name}

        # a wrong password must still count: commit the failure even though the call is refused
        db: Database = request.app.state.db
        with db.unit_of_work() as session:
            try:
                return go(session, None)
            except credential.Refused as error:
                session.commit()
                raise error

    @delete("/sessions/current", sync_to_thread=True, status_code=204)
    def sign_out(self, request: Request[Any, Any, Any]) -> None:
        def go(session: Session, user: UserSession | None) -> None:
            session.delete(user)

        _run(request, go, write=True)

    @post("/password/reset", sync_to_thread=True, summary="Reset the password through a real-person check (also lifts a lockout)")
    def reset(self, request: Request[Any, Any, Any], data: ResetIn) -> dict[str, str]:
        def go(session: Session, _: Any) -> dict[str, str]:
            credential.reset_password(session, certno=data.certno, name=data.name, face=data.face, liveness=data.liveness,
                                      password=data.password)
            return {"status": "ok"}

        return _run(request, go, write=True, auth=False)

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
        def go(session: Session, user: UserSession | None) -> dict[str, Any]:
            assert user is not None
            holder = session.get(Person, user.psn_no)
            binding = credential.bind(session, holder, certno=data.certno, name=data.name, relation=data.relation)
            return {"id": binding.id, "status": binding.status, "member_psn_no": binding.member_psn_no}

        return _run(request, go, write=True)

    @post("/me/family/{binding_id:int}/approve", sync_to_thread=True, summary="Approve a family request addressed to me")
    def approve(self, request: Request[Any, Any, Any], binding_id: BindingId) -> dict[str, Any]:
        def go(session: Session, user: UserSession | None) -> dict[str, Any]:
            assert user is not None
            binding = credential.approve(session, user.psn_no, binding_id)
            return {"id": binding.id, "status": binding.status}

        return _run(request, go, write=True)

    @delete("/me/family/{binding_id:int}", sync_to_thread=True, status_code=204)
    def unbind(self, request: Request[Any, Any, Any], binding_id: BindingId) -> None:
        def go(session: Session, user: UserSession | None) -> None:
            assert user is not None
            credential.unbind(session, user.psn_no, binding_id)

        _run(request, go, write=True)

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
        db: Database = request.app.state.db
        with db.unit_of_work() as session:
            user = credential.session_person(session, _bearer(request))
            try:
                token = credential.authorize_payment(session, user, ec_token=ec_token, password=data.password, face=data.face,
                                                     liveness=data.liveness)
            except credential.Refused:
                session.commit()  # keep the failure count
                raise
            return {"ec_token": token.ec_token, "pay_authorized": True}

    @get("/demo/face", sync_to_thread=True, summary="Demo only: the face the deterministic real-person provider accepts")
    def face(self, certno: str) -> dict[str, str]:
        from yibao.credential.realperson import DeterministicProvider

        if not isinstance(provider(), DeterministicProvider):
            raise NotFound("no demo faces with a real provider")
        return {"face": demo_face(certno)}


class CounterController(Controller):
    """For institutions: decode a scanned code (the same as 1162), signed like the national gateway."""

    path = "/api/v1/counter"
    tags = ["counter"]

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
