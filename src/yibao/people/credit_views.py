"""The people's REST API for credit care (信用就医): the page's overview, signing up with a partner bank, repaying what is
due now, closing. Views parse and call `yibao.credit.service`, which owns the transactions."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, ValidationException

from yibao.api.problems import check_body, http_error_handler, internal_error_handler, people_error_handler, validation_error_handler
from yibao.api.request import bearer_token, client_ip
from yibao.core.errors import YibaoError
from yibao.credit import service as credit


class CreditApplyIn(msgspec.Struct):
    bank_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    # let due instalments be taken from the personal account first (where the policy allows)
    auto_account: bool = True
    # the consumption password confirms the agreement (a wrong one counts toward the lockout)
    password: Annotated[str, msgspec.Meta(max_length=64)] = ""


class CreditCloseIn(msgspec.Struct):
    password: Annotated[str, msgspec.Meta(max_length=64)] = ""


class CreditController(Controller):
    path = "/api/v1/people/{psn_no:str}/credit"
    tags = ["people"]
    request_max_body_size = 16 * 1024
    before_request = staticmethod(check_body)  # Litestar calls the class's function with the request
    exception_handlers = {YibaoError: people_error_handler, ValidationException: validation_error_handler,
                          HTTPException: http_error_handler, Exception: internal_error_handler}

    @get("", sync_to_thread=True, summary="Credit care: partner banks, my agreement, advances with their schedules, totals")
    def overview(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return credit.app_overview(request.app.state.db, bearer_token(request), psn_no)

    @post("", sync_to_thread=True, status_code=201, summary="Sign a credit agreement with a partner bank (the bank sets the limit)")
    def apply(self, request: Request[Any, Any, Any], psn_no: str, data: CreditApplyIn) -> dict[str, Any]:
        return credit.app_apply(request.app.state.db, request.app.state.settings, bearer_token(request), client_ip(request), psn_no,
                                data.bank_code, data.auto_account, data.password)

    @post("/repay", sync_to_thread=True, status_code=200, summary="Repay now what is due (overdue instalments first)")
    def repay(self, request: Request[Any, Any, Any], psn_no: str) -> dict[str, Any]:
        return credit.app_repay(request.app.state.db, bearer_token(request), psn_no)

    @post("/close", sync_to_thread=True, status_code=200, summary="Close my credit agreement (nothing may be owed)")
    def close(self, request: Request[Any, Any, Any], psn_no: str, data: CreditCloseIn) -> dict[str, Any]:
        return credit.app_close(request.app.state.db, request.app.state.settings, bearer_token(request), client_ip(request), psn_no,
                                data.password)
