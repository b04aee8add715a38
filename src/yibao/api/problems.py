"""REST plumbing shared by the people's app and the console: bad input and errors as JSON problems (RFC 9457).

Every detail a person may read is Chinese; `field` names the member for programs. `check_body` decodes a body
before Litestar does, so any malformed body is a 400 naming the field, never a 500.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from yibao.core.errors import InputError, YibaoError

MAX_JSON_DEPTH_ERROR = "请求内容嵌套层数过多"

# field names → what a person calls them (details name the field in Chinese; `field` names it for programs)
LABELS = {"certno": "身份证号", "name": "姓名", "password": "消费密码", "face": "刷脸信息", "liveness": "活体检测结果",
          "chnl_id": "激活渠道", "psn_cert_type": "证件类型", "device_label": "设备名称", "device_id": "设备", "relation": "关系",
          "binding_id": "亲情账户申请编号", "ec_token": "就诊凭证", "psn_no": "人员编号", "code": "医保码", "business_type": "业务类型",
          "svg": "图形格式", "filing_type": "备案类型", "target_admdvs": "备案地", "begndate": "开始日期", "enddate": "结束日期",
          "tel": "联系电话", "addr": "地址", "reason": "备案原因", "memo": "撤销原因", "trt_dcla_detl_sn": "备案号",
          "insurer_code": "保险公司", "valid_until": "授权截止日期", "setl_ids": "结算记录", "begin_date": "开始日期",
          "end_date": "结束日期", "purpose": "授权事由", "consent_id": "授权编号"}
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
