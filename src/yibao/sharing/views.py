"""The insurers' API: FHIR search over the settlements a person authorised (保医通), signed requests, problem+json refusals."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import Parameter

from yibao.api.problems import http_error_handler, internal_error_handler, validation_error_handler, yibao_error_handler
from yibao.api.request import client_ip
from yibao.core.errors import YibaoError
from yibao.sharing import fhir, service


class InsurerController(Controller):
    path = "/fhir"
    tags = ["insurers"]
    request_max_body_size = 16 * 1024
    exception_handlers = {YibaoError: yibao_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @get("/ExplanationOfBenefit", sync_to_thread=True,
         summary="Insurers: the settlements a person authorised, as a FHIR R4 (4.3.0) searchset Bundle of ExplanationOfBenefit")
    def explanation_of_benefit(self, request: Request[Any, Any, Any],
                               consent: Annotated[str, Parameter(max_length=32, description="the authorisation's number")],
                               setl_id: Annotated[list[str] | None, Parameter(description="only these settlements of it")] = None,
                               patient: Annotated[str, Parameter(max_length=30, description="the person's psn_no (checked)")] = ""
                               ) -> Response[bytes]:
        query = request.url.query
        target = request.url.path + (f"?{query}" if query else "")
        ids = tuple(s.strip() for value in setl_id or [] for s in value.split(",") if s.strip())
        base = str(request.base_url).rstrip("/") + "/fhir/"
        answer = service.fetch(request.app.state.db, request.app.state.settings, {k.lower(): v for k, v in request.headers.items()},
                               request.method, target, b"", service.Ask(consent, ids, patient), client_ip(request), base)
        return Response(content=answer, media_type=fhir.MEDIA_TYPE)
