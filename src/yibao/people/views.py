"""REST API for insured people (bearer sessions) and the counter's decode endpoint; problem+json errors.

People see the ``detail`` of a refusal, so every detail the people's API writes is plain Chinese; the
machine-readable reason is the problem's ``title`` and the input at fault its ``field``. Bad input of
any shape (numbers out of range, invalid UTF-8, deep nesting, oversized bodies) is a 4xx, never a 500.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import anyio
import msgspec
import structlog
from litestar import Controller, Request, delete, get, post, put
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter

from yibao.api.problems import (
    check_body,
    http_error_handler,
    internal_error_handler,
    people_error_handler,
    validation_error_handler,
    yibao_error_handler,
)
from yibao.api.request import bearer_token, client_ip
from yibao.config import Settings
from yibao.core.errors import NotFound, YibaoError
from yibao.credential import service as credential
from yibao.credential.realperson import demo_face
from yibao.people import service

log = structlog.get_logger("yibao.people")
# ids are 32-bit in storage: larger numbers are refused as bad input, not sent to the database
BindingId = Annotated[int, Parameter(ge=1, le=2**31 - 1)]
# a face image (base64) or a vendor SDK's liveness token fits well within this; nothing else a person sends is large
MAX_BODY_BYTES = 1024 * 1024

CertNo = Annotated[str, msgspec.Meta(max_length=32)]
Name = Annotated[str, msgspec.Meta(max_length=50)]
Password = Annotated[str, msgspec.Meta(max_length=32)]
Face = Annotated[str, msgspec.Meta(max_length=900_000)]
Liveness = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Short = Annotated[str, msgspec.Meta(max_length=20)]

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


class PayIn(msgspec.Struct):
    password: Password = ""
    face: Face = ""
    liveness: Liveness = 1.0
    # mobile (移动支付) | credit (信用就医, the partner bank advances); "" = the order's method
    method: Annotated[str, msgspec.Meta(max_length=12)] = ""


class AdmissionIn(msgspec.Struct):
    fixmedins_code: Annotated[str, msgspec.Meta(max_length=12)]
    dept_name: Annotated[str, msgspec.Meta(max_length=50)]
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""
    tel: Annotated[str, msgspec.Meta(max_length=50)] = ""


class DecodeIn(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(max_length=512)]
    business_type: Short = "01101"


class FilingIn(msgspec.Struct):
    filing_type: Annotated[str, msgspec.Meta(max_length=3)]
    target_admdvs: Annotated[str, msgspec.Meta(max_length=6)]
    begndate: Annotated[str, msgspec.Meta(max_length=10)] = ""
    enddate: Annotated[str, msgspec.Meta(max_length=10)] = ""
    tel: Annotated[str, msgspec.Meta(max_length=50)] = ""
    addr: Annotated[str, msgspec.Meta(max_length=200)] = ""
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class BenefitAccountIn(msgspec.Struct):
    bank_name: Annotated[str, msgspec.Meta(max_length=50)]
    account_no: Annotated[str, msgspec.Meta(max_length=40)]
    password: Annotated[str, msgspec.Meta(max_length=6)]


class ChoiceIn(msgspec.Struct):
    # 1 到店自取, 2 配送到家
    delivery_mode: Annotated[str, msgspec.Meta(max_length=1)]
    fixmedins_code: Annotated[str, msgspec.Meta(max_length=12)] = ""
    delv_addr: Annotated[str, msgspec.Meta(max_length=200)] = ""


class FilingCancelIn(msgspec.Struct):
    memo: Annotated[str, msgspec.Meta(max_length=500)] = ""


class ConsentIn(msgspec.Struct):
    insurer_code: Annotated[str, msgspec.Meta(max_length=20)]
    valid_until: Annotated[str, msgspec.Meta(max_length=10)]
    password: Password
    setl_ids: Annotated[list[Annotated[str, msgspec.Meta(max_length=30)]], msgspec.Meta(max_length=200)] = []
    begin_date: Annotated[str, msgspec.Meta(max_length=10)] = ""
    end_date: Annotated[str, msgspec.Meta(max_length=10)] = ""
    purpose: Annotated[str, msgspec.Meta(max_length=100)] = ""


def _caller(request: Request[Any, Any, Any]) -> service.Caller:
    return service.Caller(bearer_token(request), client_ip(request))


def _too_many(request: Request[Any, Any, Any], action: str, wait: int | None) -> None:
    """A 429 when the attempt just counted was over a limit (the count itself is committed either way)."""
    if wait is not None:
        # logged, not audited: a flood must not grow the append-only trail a row per request
        log.info("rate limited", action=action, ip=client_ip(request), retry_after=wait)
        raise credential.RateLimited(wait, action)


def _limit(request: Request[Any, Any, Any], action: str, certno: str, per_account: int, per_ip: int) -> None:
    limits = [("acct", credential.account_key(certno), per_account), ("ip", client_ip(request), per_ip)]
    _too_many(request, action, service.count_attempt(request.app.state.db, request.app.state.settings, action, limits))


class PeopleController(Controller):
    path = "/api/v1"
    tags = ["people"]
    request_max_body_size = MAX_BODY_BYTES
    before_request = staticmethod(check_body)  # Litestar calls the class's function with the request
    exception_handlers = {YibaoError: people_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @get("/channels", sync_to_thread=True, summary="Activation channels")
    def channels(self, request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        return service.channels(request.app.state.db)

    @post("/activations", status_code=201, summary="Activate the e-credential on this device (real person, real name, password)")
    async def activate(self, request: Request[Any, Any, Any], data: ActivationIn) -> dict[str, Any]:
        body = await request.body()
        return await anyio.to_thread.run_sync(lambda: self._activate(request, data, body))

    def _activate(self, request: Request[Any, Any, Any], data: ActivationIn, body: bytes) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        _limit(request, "activation", data.certno, settings.rate_activation_account, settings.rate_activation_ip)
        return service.activate(request.app.state.db, settings, _caller(request), chnl_id=data.chnl_id, psn_cert_type=data.psn_cert_type,
                                certno=data.certno, name=data.name, password=data.password, face=data.face, liveness=data.liveness,
                                device_label=data.device_label or request.headers.get("user-agent", "")[:100],
                                timestamp=request.headers.get("x-yb-timestamp", ""), signature=request.headers.get("x-yb-signature", ""),
                                body=body)

    @post("/sessions", sync_to_thread=True, status_code=201, summary="Sign in with ID number, name and the 6-digit password")
    def sign_in(self, request: Request[Any, Any, Any], data: SignInIn) -> dict[str, Any]:
        settings: Settings = request.app.state.settings
        _limit(request, "signin", data.certno, settings.rate_sign_in_account, settings.rate_sign_in_ip)
        return service.sign_in(request.app.state.db, settings, _caller(request), certno=data.certno, name=data.name, password=data.password,
                               device_id=data.device_id)

    @delete("/sessions/current", sync_to_thread=True, status_code=204)
    def sign_out(self, request: Request[Any, Any, Any]) -> None:
        service.sign_out(request.app.state.db, bearer_token(request))

    @post("/password/reset", sync_to_thread=True,
          summary="Reset the password through a real-person check (lifts a lockout; every session and phone must sign in again)")
    def reset(self, request: Request[Any, Any, Any], data: ResetIn) -> dict[str, str]:
        settings: Settings = request.app.state.settings
        _limit(request, "reset", data.certno, settings.rate_reset_account, settings.rate_reset_ip)
        service.reset_password(request.app.state.db, settings, _caller(request), certno=data.certno, name=data.name, face=data.face,
                               liveness=data.liveness, password=data.password)
        return {"status": "ok"}

    @get("/me", sync_to_thread=True, summary="Who I am, my family and pending family requests")
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return service.profile(request.app.state.db, bearer_token(request))

    @get("/people/{psn_no:str}", sync_to_thread=True, summary="Enrolments and balance of me or a bound family member")
    def person(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return service.person_card(request.app.state.db, bearer_token(request), psn_no)

    @get("/people/{psn_no:str}/account", sync_to_thread=True, summary="Personal-account balance and movements")
    def account(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return service.account(request.app.state.db, bearer_token(request), psn_no)

    @get("/people/{psn_no:str}/contributions", sync_to_thread=True, summary="Contribution history")
    def contributions(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return service.contributions(request.app.state.db, bearer_token(request), psn_no)

    @get("/people/{psn_no:str}/settlements", sync_to_thread=True, summary="Visits and settlements")
    def settlements(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return service.settlements(request.app.state.db, bearer_token(request), psn_no)

    @post("/people/{psn_no:str}/codes", status_code=201, summary="A fresh dynamic QR code (refresh every minute)")
    async def code(self, request: Request[Any, Any, Any], psn_no: str, svg: bool = True) -> dict[str, Any]:
        """``svg=false`` for an app that draws the QR symbol itself from ``code`` (saves the server ~2 ms a code)."""
        db, settings, token = request.app.state.db, request.app.state.settings, bearer_token(request)

        def go() -> dict[str, Any]:
            issued = service.issue_code(db, settings, token, psn_no)
            return {"code": issued.text, "psn_no": psn_no, "ttl_s": issued.ttl_s, "expires_at": issued.expires_at.isoformat(sep=" "),
                    "svg": render_svg(issued.text) if svg else None}

        # every visit starts here: run like the gateway's calls (see Database.run), not in Litestar's thread pool
        return await db.run(go)

    @get("/filing-options", sync_to_thread=True, summary="Filing for care away from home: the types a person may file and known regions")
    def filing_options(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return service.filing_options(request.app.state.db, bearer_token(request))

    @get("/people/{psn_no:str}/filings", sync_to_thread=True, summary="Filings for care away from home (异地就医备案), newest first")
    def filings(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return service.filings(request.app.state.db, bearer_token(request), psn_no)

    @post("/people/{psn_no:str}/filings", sync_to_thread=True, status_code=201,
          summary="File care away from home: long-term residence, posted to work or a temporary trip")
    def file_care_away(self, request: Request[Any, Any, Any], psn_no: str, data: FilingIn) -> dict[str, Any]:
        return service.file_care_away(request.app.state.db, _caller(request), psn_no, filing_type=data.filing_type,
                                      target_admdvs=data.target_admdvs, begndate=data.begndate, enddate=data.enddate, tel=data.tel,
                                      addr=data.addr, reason=data.reason)

    @post("/people/{psn_no:str}/filings/{trt_dcla_detl_sn:str}/cancel", sync_to_thread=True, summary="Cancel a filing I made")
    def cancel_care_away(self, request: Request[Any, Any, Any], psn_no: str, trt_dcla_detl_sn: str,
                         data: FilingCancelIn) -> dict[str, Any]:
        return service.cancel_care_away(request.app.state.db, _caller(request), psn_no, trt_dcla_detl_sn, data.memo)

    @get("/people/{psn_no:str}/maternity", sync_to_thread=True,
         summary="Maternity allowances (生育津贴): amount, days, how they were counted, when paid; and the benefit account")
    def maternity(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return service.maternity(request.app.state.db, bearer_token(request), psn_no)

    @put("/people/{psn_no:str}/benefit-account", sync_to_thread=True,
         summary="Name the bank account cash benefits are paid to (the person only, with the consumption password)")
    def set_benefit_account(self, request: Request[Any, Any, Any], psn_no: str, data: BenefitAccountIn) -> dict[str, str]:
        return service.set_benefit_account(request.app.state.db, request.app.state.settings, _caller(request), psn_no,
                                           bank_name=data.bank_name, account_no=data.account_no, password=data.password)

    @get("/people/{psn_no:str}/prescriptions", sync_to_thread=True, summary="E-prescriptions (电子处方) written for me, newest first")
    def prescriptions(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return service.prescriptions(request.app.state.db, bearer_token(request), psn_no)

    @get("/people/{psn_no:str}/prescriptions/{hi_rxno:str}", sync_to_thread=True,
         summary="One e-prescription, with the designated pharmacies to choose from")
    def prescription(self, request: Request[Any, Any, Any], psn_no: str, hi_rxno: str) -> dict[str, Any]:
        return service.prescription(request.app.state.db, bearer_token(request), psn_no, hi_rxno)

    @post("/people/{psn_no:str}/prescriptions/{hi_rxno:str}/choice", sync_to_thread=True,
          summary="Choose where an e-prescription is dispensed (a designated pharmacy) and whether it is delivered")
    def choose_pharmacy(self, request: Request[Any, Any, Any], psn_no: str, hi_rxno: str, data: ChoiceIn) -> dict[str, Any]:
        return service.choose_pharmacy(request.app.state.db, _caller(request), psn_no, hi_rxno, fixmedins_code=data.fixmedins_code,
                                       delivery_mode=data.delivery_mode, delv_addr=data.delv_addr)
    @get("/share-options", sync_to_thread=True, summary="保医通: the insurers a person may authorise")
    def share_options(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return service.share_options(request.app.state.db, bearer_token(request))

    @get("/people/{psn_no:str}/consents", sync_to_thread=True, summary="保医通: my authorisations for insurers, newest first")
    def consents(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return service.consents(request.app.state.db, bearer_token(request), psn_no)

    @post("/people/{psn_no:str}/consents", sync_to_thread=True, status_code=201,
          summary="保医通: authorise one insurer to read these settlements until a date (一事一授权), with the password")
    def grant_consent(self, request: Request[Any, Any, Any], psn_no: str, data: ConsentIn) -> dict[str, Any]:
        return service.grant_consent(request.app.state.db, request.app.state.settings, _caller(request), psn_no,
                                     insurer_code=data.insurer_code, setl_ids=data.setl_ids, begin_date=data.begin_date,
                                     end_date=data.end_date, valid_until=data.valid_until, purpose=data.purpose, password=data.password)

    @post("/people/{psn_no:str}/consents/{consent_id:str}/revoke", sync_to_thread=True, summary="保医通: revoke an authorisation")
    def revoke_consent(self, request: Request[Any, Any, Any], psn_no: str, consent_id: str) -> dict[str, Any]:
        return service.revoke_consent(request.app.state.db, _caller(request), psn_no, consent_id)

    @get("/me/family", sync_to_thread=True)
    def family(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.family(request.app.state.db, bearer_token(request))

    @post("/me/family", sync_to_thread=True, status_code=201, summary="Bind a parent, child or spouse (亲情账户)")
    def bind(self, request: Request[Any, Any, Any], data: BindIn) -> dict[str, Any]:
        db, caller = request.app.state.db, _caller(request)
        _too_many(request, "bind", service.count_bind_attempt(db, request.app.state.settings, caller))
        return service.bind(db, caller, certno=data.certno, name=data.name, relation=data.relation)

    @post("/me/family/{binding_id:int}/approve", sync_to_thread=True,
          summary="Approve a family request addressed to me, with my password")
    def approve(self, request: Request[Any, Any, Any], binding_id: BindingId, data: ApproveIn) -> dict[str, Any]:
        return service.approve(request.app.state.db, request.app.state.settings, _caller(request), binding_id, data.password)

    @delete("/me/family/{binding_id:int}", sync_to_thread=True, status_code=204)
    def unbind(self, request: Request[Any, Any, Any], binding_id: BindingId) -> None:
        service.unbind(request.app.state.db, _caller(request), binding_id)

    @get("/me/devices", sync_to_thread=True)
    def devices(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.devices(request.app.state.db, bearer_token(request))

    @post("/me/devices/{device_id:str}/revoke", sync_to_thread=True, summary="Report a phone lost: its codes stop working at once")
    def revoke(self, request: Request[Any, Any, Any], device_id: str) -> dict[str, str]:
        service.revoke_device(request.app.state.db, bearer_token(request), device_id)
        return {"status": "revoked"}

    @get("/me/visits", sync_to_thread=True, summary="Live visit tokens (codes scanned at a counter) of me and my family")
    def visits(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.visits(request.app.state.db, bearer_token(request))

    @post("/me/visits/{ec_token:str}/authorize-payment", sync_to_thread=True,
          summary="Confirm paying this visit from the personal account (password or face)")
    def authorize(self, request: Request[Any, Any, Any], ec_token: str, data: PayAuthIn) -> dict[str, Any]:
        return service.authorize_payment(request.app.state.db, request.app.state.settings, _caller(request), ec_token=ec_token,
                                         password=data.password, face=data.face, liveness=data.liveness)

    @get("/me/pay-orders", sync_to_thread=True, summary="Mobile payment: bills waiting for me or my family to pay in the app")
    def pay_orders(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        return service.pay_orders(request.app.state.db, request.app.state.settings, bearer_token(request))

    @get("/me/pay-orders/{pay_ord_id:str}", sync_to_thread=True, summary="A bill and its pre-settlement (funds, account, own money)")
    def pay_order(self, request: Request[Any, Any, Any], pay_ord_id: str) -> dict[str, Any]:
        return service.pay_order(request.app.state.db, bearer_token(request), pay_ord_id)

    @post("/me/pay-orders/{pay_ord_id:str}/pay", sync_to_thread=True, status_code=200,
          summary="Confirm with the password or face: settle, and pay the own-money part through the payment channel "
                  "(mobile) or by the partner bank's advance (credit, 信用就医)")
    def pay(self, request: Request[Any, Any, Any], pay_ord_id: str, data: PayIn) -> dict[str, Any]:
        return service.pay(request.app.state.db, request.app.state.settings, _caller(request), pay_ord_id, password=data.password,
                           face=data.face, liveness=data.liveness, method=data.method)

    @post("/me/pay-orders/{pay_ord_id:str}/cancel", sync_to_thread=True, status_code=200, summary="Cancel an unpaid bill")
    def cancel_pay_order(self, request: Request[Any, Any, Any], pay_ord_id: str) -> dict[str, Any]:
        return service.cancel_pay_order(request.app.state.db, _caller(request), pay_ord_id)

    @get("/people/{psn_no:str}/admission", sync_to_thread=True, summary="Admission by phone: requests, stays with running costs")
    def admission(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return service.admission(request.app.state.db, bearer_token(request), psn_no)

    @post("/people/{psn_no:str}/admission-requests", sync_to_thread=True, status_code=201,
          summary="Ask a hospital to admit me (it confirms with 2401)")
    def request_admission(self, request: Request[Any, Any, Any], psn_no: str, data: AdmissionIn) -> dict[str, Any]:
        return service.request_admission(request.app.state.db, _caller(request), psn_no, fixmedins_code=data.fixmedins_code,
                                         dept_name=data.dept_name, reason=data.reason, tel=data.tel)

    @post("/people/{psn_no:str}/stays/{mdtrt_id:str}/bill", sync_to_thread=True, status_code=201,
          summary="At discharge: the stay's bill, to pay in the app")
    def bill_stay(self, request: Request[Any, Any, Any], psn_no: str, mdtrt_id: str) -> dict[str, Any]:
        return service.bill_stay(request.app.state.db, _caller(request), psn_no, mdtrt_id)

    @get("/demo/face", sync_to_thread=True, summary="Demo databases only: the face the deterministic real-person checker accepts")
    def face(self, request: Request[Any, Any, Any], certno: Annotated[str, Parameter(max_length=32)]) -> dict[str, str]:
        if not service.demo_faces_available(request.app.state.db, request.app.state.settings):
            raise NotFound("没有这个接口")
        return {"face": demo_face(certno)}


class CounterController(Controller):
    """For institutions: decode a scanned code (the same as 1162), signed like the national gateway."""

    path = "/api/v1/counter"
    tags = ["counter"]
    request_max_body_size = 64 * 1024
    before_request = staticmethod(check_body)  # Litestar calls the class's function with the request
    exception_handlers = {HTTPException: http_error_handler, Exception: internal_error_handler}

    @post("/decode", summary="Scanned code → who it is and an ecToken for this visit")
    async def decode(self, request: Request[Any, Any, Any], data: DecodeIn) -> dict[str, Any]:
        body = await request.body()
        return await anyio.to_thread.run_sync(lambda: self._decode(request, data, body))

    def _decode(self, request: Request[Any, Any, Any], data: DecodeIn, body: bytes) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = service.counter_decode(request.app.state.db, request.app.state.settings, request.app.state.gateway.clients, headers,
                                        body, data.code, data.business_type)
        return _jsonable(answer)


class PaymentCallbackController(Controller):
    """The payment provider's callback (docs/mobile-payment.md): signed with the key both sides hold, recorded once."""

    path = "/api/v1/payment"
    tags = ["payment"]
    request_max_body_size = 16 * 1024
    exception_handlers = {YibaoError: yibao_error_handler, HTTPException: http_error_handler, Exception: internal_error_handler}

    @post("/callback", status_code=200, summary="Payment provider → platform: a payment's outcome")
    async def callback(self, request: Request[Any, Any, Any]) -> dict[str, str]:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await anyio.to_thread.run_sync(
            lambda: service.payment_callback(request.app.state.db, request.app.state.settings, headers, body))


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
