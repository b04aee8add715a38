"""Files exchanged with institutions, stored in the database so every engine and worker sees them."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from yibao.core import clock, crypto
from yibao.core.errors import InputError, NotFound
from yibao.files.models import StoredFile

DOWNLOAD_DAYS = 7


def save(session: Session, filename: str, content: bytes, *, owner_code: str | None, data_cnt: int = 0, prefix: str = "F") -> StoredFile:
    now = clock.now()
    stored = StoredFile(
        file_qury_no=f"{prefix}{now:%Y%m%d%H%M%S}{secrets.token_hex(8)}",
        filename=filename,
        owner_code=owner_code,
        content=content,
        sm3=crypto.sm3_hex(content),
        data_cnt=data_cnt,
        created_at=now,
        dld_end_time=now.date() + timedelta(days=DOWNLOAD_DAYS),
    )
    session.add(stored)
    return stored


def fetch(session: Session, file_qury_no: str, filename: str, requester_code: str) -> StoredFile:
    stored = session.get(StoredFile, file_qury_no)
    # Another institution's upload is reported as absent, not as forbidden: no probing.
    if stored is None or (stored.owner_code is not None and stored.owner_code != requester_code):
        raise NotFound(f"no file with file_qury_no {file_qury_no}", field="input.fsDownloadIn.file_qury_no")
    if filename and filename != stored.filename and filename != "plc":
        raise InputError(f"does not match the file's name {stored.filename}", field="input.fsDownloadIn.filename")
    if stored.dld_end_time < clock.today():
        raise NotFound(f"file {file_qury_no} expired on {clock.fmt_date(stored.dld_end_time)}", field="input.fsDownloadIn.file_qury_no")
    return stored
