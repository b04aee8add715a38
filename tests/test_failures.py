"""A locked database and a full disk give clear refusals, lose nothing and corrupt nothing."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from conftest import HOSPITAL, PG_URL, secret_of
from flows import ok
from yibao.app import create_app
from yibao.client import CounterClient
from yibao.config import Settings
from yibao.reconciliation.books import check
from yibao.store.db import Database

pytestmark = pytest.mark.skipif(bool(PG_URL),
                                reason="SQLite's own lock and size limit; PostgreSQL's are the server's (covered by its own tests)")


def test_a_locked_database_is_refused_clearly_and_the_retry_succeeds(settings: Settings, db: Database) -> None:
    path = settings.database_url.removeprefix("sqlite:///")
    impatient = Settings(database_url=settings.database_url, sqlite_busy_ms=200)
    quick = Database.from_settings(impatient)
    with TestClient(app=create_app(impatient, quick)) as http:
        counter = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
        ok(counter.sign_in())
        holder = sqlite3.connect(path, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            msgid = counter.new_msgid()
            refused = counter.call("1901", {"data": {"type": "gend"}}, msgid=msgid)
            assert refused["infcode"] == -1 and "busy" in refused["err_msg"] and "retry the same msgid" in refused["err_msg"]
        finally:
            holder.rollback()
            holder.close()
        assert counter.call("1901", {"data": {"type": "gend"}}, msgid=msgid)["infcode"] == 0
    quick.dispose()


def test_a_full_disk_is_refused_clearly_and_nothing_is_corrupted(settings: Settings, db: Database, tmp_path: Path) -> None:
    # the database's pages now (not its file plus the write-ahead log, which may hold many times as much) and 256 KB more
    with db.unit_of_work(write=False) as session:
        size = session.execute(text("PRAGMA page_count")).scalar() * session.execute(text("PRAGMA page_size")).scalar()
    tight = Settings(database_url=settings.database_url, sqlite_max_bytes=size + 256 * 1024)
    small = Database.from_settings(tight)
    with TestClient(app=create_app(tight, small)) as http:
        counter = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
        ok(counter.sign_in())
        big = base64.b64encode(bytes(range(256)) * 6000).decode()  # ~1.5 MB: more than the quota leaves
        full = counter.call("9101", {"fsUploadIn": {"filename": "big.bin", "in": big}})
        assert full["infcode"] == -1 and "storage is full" in full["err_msg"] and "nothing was written" in full["err_msg"]
        small_work = counter.call("1901", {"data": {"type": "gend"}})
        assert small_work["infcode"] == 0, small_work["err_msg"]  # small work goes on
    small.dispose()
    with db.unit_of_work(write=False) as session:
        assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert session.execute(text("SELECT count(*) FROM stored_file WHERE filename = 'big.bin'")).scalar() == 0
        assert check(session).ok
