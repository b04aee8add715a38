"""E-bills over REST: a person's bills (and a bound family member's) with their PDF; public verification and the
published signing keys, without sign-in and limited per client IP (docs/bills.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter

from yibao.api.problems import check_body, http_error_handler, internal_error_handler, people_error_handler, validation_error_handler
from yibao.api.request import bearer_token, client_ip
from yibao.bill import service as bills
from yibao.config import Settings
from yibao.core.errors import YibaoError
from yibao.people import service as people
from yibao.people.views import _too_many

Text = Annotated[str, Parameter(max_length=40)]
SetlId = Annotated[str, Parameter(max_length=30)]


class VerifyIn(msgspec.Struct):
    document: dict[str, Any]
    signature: Annotated[str, msgspec.Meta(max_length=300)]


def _limit_public(request: Request[Any, Any, Any]) -> None:
    settings: Settings = request.app.state.settings
    _too_many(request, "bill-verify", people.count_attempt(request.app.state.db, settings, "bill-verify",
                                                           [("ip", client_ip(request), settings.rate_bill_verify_ip)]))


class BillController(Controller):
    path = "/api/v1"
    tags = ["bills"]
    request_max_body_size = 64 * 1024
    before_request = staticmethod(check_body)  # Litestar calls the class's function with the request
    exception_handlers = {YibaoError: people_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @get("/bills/verify", sync_to_thread=True, summary="Public: verify a bill by its code, number and check code (no sign-in)")
    def verify(self, request: Request[Any, Any, Any], code: Text, number: Text, check: Text) -> dict[str, Any]:
        _limit_public(request)
        return bills.verify_number(request.app.state.db, code, number, check)

    @post("/bills/verify", sync_to_thread=True, status_code=200,
          summary="Public: verify a bill's content and signature as held (valid, cancelled or tampered)")
    def verify_content(self, request: Request[Any, Any, Any], data: VerifyIn) -> dict[str, Any]:
        _limit_public(request)
        return bills.verify_content(request.app.state.db, data.document, data.signature)

    @get("/bills/keys", sync_to_thread=True, summary="Public: the SM2 public keys bills are signed with (verify offline)")
    def keys(self, request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        _limit_public(request)
        return bills.public_keys(request.app.state.db)

    @get("/people/{psn_no:str}/bills", sync_to_thread=True, summary="E-bills of me or a bound family member, newest first")
    def person_bills(self, request: Request[Any, Any, Any], psn_no: str) -> list[dict[str, Any]]:
        return bills.person_bills(request.app.state.db, request.app.state.settings, bearer_token(request), psn_no)

    @get("/people/{psn_no:str}/bills/{setl_id:str}", sync_to_thread=True, summary="One e-bill: its signed content and signature")
    def person_bill(self, request: Request[Any, Any, Any], psn_no: str, setl_id: SetlId) -> dict[str, Any]:
        return bills.person_bill(request.app.state.db, request.app.state.settings, bearer_token(request), psn_no, setl_id)

    @get("/people/{psn_no:str}/bills/{setl_id:str}/pdf", sync_to_thread=True, summary="One e-bill as PDF, with its verification QR code")
    def person_bill_pdf(self, request: Request[Any, Any, Any], psn_no: str, setl_id: SetlId) -> Response[bytes]:
        name, body = bills.person_bill_pdf(request.app.state.db, request.app.state.settings, bearer_token(request), psn_no, setl_id)
        return Response(content=body, media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="{name}"'})
