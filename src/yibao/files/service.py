"""Files exchanged with institutions, stored in the database so every engine and worker sees them."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
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


def describe(session: Session, file_qury_no: str) -> tuple[str, int, date] | None:
    """(filename, data_cnt, dld_end_time) of a stored file, without reading its content."""
    row = session.execute(select(StoredFile.filename, StoredFile.data_cnt, StoredFile.dld_end_time)
                          .where(StoredFile.file_qury_no == file_qury_no)).first()
    return (row.filename, row.data_cnt, row.dld_end_time) if row is not None else None


def save_once(session: Session, file_qury_no: str, filename: str, content: bytes, *, data_cnt: int, dld_end_time: date) -> None:
    """A platform-made file under a number derived from what it holds: when a concurrent twin stored it first, its copy
    (the same bytes) stays and this one is dropped, without an error."""
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(StoredFile)
    session.execute(insert.values(file_qury_no=file_qury_no, filename=filename, owner_code=None, content=content,
                                  sm3=crypto.sm3_hex(content), data_cnt=data_cnt, created_at=clock.now(), dld_end_time=dld_end_time)
                    .on_conflict_do_nothing(index_elements=["file_qury_no"]))


def extend(session: Session, file_qury_no: str, until: date) -> None:
    """Keep a stored file downloadable until ``until`` (never shortens it)."""
    session.execute(update(StoredFile).where(StoredFile.file_qury_no == file_qury_no, StoredFile.dld_end_time < until)
                    .values(dld_end_time=until))


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
