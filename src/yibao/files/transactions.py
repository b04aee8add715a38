"""9101 file upload, 9102 file download."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from typing import Any

import msgspec

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.schema import Required
from yibao.files import service
from yibao.gateway.contract import Context, TransactionSet
from yibao.gateway.envelope import Answer

TRANSACTIONS = TransactionSet()
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NAME = 100  # stored_file.filename


def file_name(name: str, field: str) -> str:
    """A name that 9102 can send back in a header: no control characters (a CR or LF would split the header), no
    invisible format characters (a right-to-left override disguises an extension), and one that fits the column."""
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise InputError(f"contains the control character U+{ord(bad):04X}", field=field)
    if len(name) > MAX_NAME:
        raise InputError(f"is longer than {MAX_NAME} characters", field=field)
    if not name.strip():
        raise InputError("required field is empty (必填项为空)", field=field)
    return name


class UploadIn(msgspec.Struct):
    filename: Required
    # file bytes: Base64 text (how .NET serialises byte[]) or a list of byte values
    in_: Any = msgspec.field(name="in", default=None)
    fixmedins_code: str = ""


class In9101(msgspec.Struct):
    fsUploadIn: UploadIn


@TRANSACTIONS.register("9101", "文件上传", In9101, paths=("/fsi/api/fileupload/upload",))
def upload(ctx: Context, data: In9101) -> dict:
    body = data.fsUploadIn
    field = "input.fsUploadIn.in"
    if isinstance(body.in_, str):
        try:
            content = base64.b64decode(body.in_, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("is not Base64", field=field) from None
    elif isinstance(body.in_, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in body.in_):
        content = bytes(body.in_)
    else:
        raise InputError("file content is required (Base64 text or a list of bytes)", field=field)
    if len(content) > MAX_FILE_BYTES:
        raise InputError(f"file is larger than {MAX_FILE_BYTES} bytes", field=field)
    name = file_name(body.filename, "input.fsUploadIn.filename")
    stored = service.save(ctx.session, name, content, owner_code=ctx.fixmedins_code)
    return {"file_qury_no": stored.file_qury_no, "filename": stored.filename, "dld_endtime": clock.fmt_date(stored.dld_end_time)}


class DownloadIn(msgspec.Struct):
    file_qury_no: Required
    filename: str = ""
    fixmedins_code: str = ""


class In9102(msgspec.Struct):
    fsDownloadIn: DownloadIn


@TRANSACTIONS.register("9102", "文件下载", In9102, paths=("/fsi/api/fileupload/download",), store_answer=False, reads_only=True)
def download(ctx: Context, data: In9102) -> Answer:
    stored = service.fetch(ctx.session, data.fsDownloadIn.file_qury_no, data.fsDownloadIn.filename, ctx.fixmedins_code)
    return Answer(file_name=stored.filename, file_content=stored.content)
