"""Read-only transactions read on a read-only connection, off the event loop, without the SQLite writers' lock."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from conftest import engine_name
from yibao.audit.models import AuditEvent
from yibao.client import CounterClient
from yibao.codes import service as catalog
from yibao.core import clock
from yibao.gateway.models import GatewayNonce

READ_ONLY = {"1301", "1302", "1305", "1306", "1307", "1308", "1309", "1312", "1901", "2001", "3101", "3102", "3201", "5201", "5203",
             "5204", "5205", "5301", "6301", "7105", "9102"}


def test_the_table_marks_the_transactions_that_only_read(http) -> None:  # type: ignore[no-untyped-def]
    table = http.app.state.gateway.table
    assert {infno for infno, tx in table.items() if tx.reads_only} == READ_ONLY
    # the ones that write (sign-in, settlements, uploads, a reconciliation result file) stay on the writers' path
    assert not any(table[infno].reads_only for infno in ("9001", "1101", "2207", "9101", "3202"))


def test_a_read_only_unit_of_work_cannot_write(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DBAPIError):
        with db.unit_of_work(read_only=True) as session:
            session.execute(insert(GatewayNonce).values(access_key="ro-test", nonce="n1", seen_at=datetime(2026, 1, 1)))
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(GatewayNonce).where(GatewayNonce.access_key == "ro-test")) == 0


def test_a_read_only_transaction_that_tries_to_write_fails_and_writes_nothing(http, counter: CounterClient, db) -> None:  # type: ignore[no-untyped-def]
    table = http.app.state.gateway.table
    real = table["1312"]

    def writing(ctx, data):  # type: ignore[no-untyped-def]
        ctx.session.add(AuditEvent(kind="test.ro", actor="ro-writer", at=clock.now()))
        ctx.session.flush()
        return {}

    table["1312"] = dataclasses.replace(real, handler=writing)
    try:
        answer = counter.call("1312", {"data": {"page_num": 1}})
    finally:
        table["1312"] = real
    assert answer["infcode"] == -1
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor == "ro-writer")) == 0


def test_read_only_handlers_run_off_the_event_loop(http, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    table = http.app.state.gateway.table
    seen: dict[str, bool] = {}

    def probe(name, real):  # type: ignore[no-untyped-def]
        def handler(ctx, data):  # type: ignore[no-untyped-def]
            try:
                asyncio.get_running_loop()
                seen[name] = True
            except RuntimeError:
                seen[name] = False
            return real.handler(ctx, data)
        return dataclasses.replace(real, handler=handler)

    reads, writes = table["1901"], table["9002"]
    table["1901"] = probe("1901", reads)
    try:
        assert counter.call("1901", {"data": {"type": "gend"}})["infcode"] == 0
    finally:
        table["1901"] = reads
    assert seen["1901"] is False  # a worker thread: the loop went on serving
    if engine_name() == "sqlite":  # on SQLite the writers stay on the loop (cheaper than a thread hop); on PostgreSQL all go to threads
        table["9002"] = probe("9002", writes)
        try:
            counter.call("9002", {"signOut": {"opter_no": "0009", "sign_no": "none"}})
        finally:
            table["9002"] = writes
        assert seen["9002"] is True


def _sqlite_path(db) -> Path:  # type: ignore[no-untyped-def]
    return Path(make_url(db.url).database)


class HeldWriteLock:
    """Another process's writer: the writers' flock beside the file and a BEGIN IMMEDIATE on a connection of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> HeldWriteLock:
        self.fd = os.open(str(self.path) + ".writer-lock", os.O_RDWR)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.connection = sqlite3.connect(self.path, isolation_level=None, timeout=5)
        self.connection.execute("BEGIN IMMEDIATE")
        return self

    def release(self) -> None:
        if self.connection is not None:
            self.connection.execute("ROLLBACK")
            self.connection.close()
            self.connection = None
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def __exit__(self, *_exc: object) -> None:
        self.release()


@pytest.mark.skipif(engine_name() != "sqlite", reason="the writers' lock is SQLite's")
def test_a_catalogue_download_reads_while_another_writer_holds_the_lock(db, counter: CounterClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    built = threading.Event()
    real = catalog.build

    def build(session, infno, since, latest):  # type: ignore[no-untyped-def]
        result = real(session, infno, since, latest)
        built.set()
        return result

    monkeypatch.setattr(catalog, "build", build)
    answers: list[dict] = []
    lock = HeldWriteLock(_sqlite_path(db))
    with lock:
        with db.unit_of_work(read_only=True) as session:  # a read-only unit of work does not wait for the writer
            started = time.perf_counter()
            assert session.scalar(select(func.count()).select_from(GatewayNonce)) >= 0
            assert time.perf_counter() - started < 0.5
        caller = threading.Thread(target=lambda: answers.append(counter.call("1309", {"data": {"ver": "0"}})))
        caller.start()
        # the whole file is read and built while the other writer holds the lock; only the call's own short write waits
        assert built.wait(10), "the catalogue file was not built while another writer held the lock"
        assert not answers
        released = time.perf_counter()
        lock.release()
        caller.join(10)
    assert answers and answers[0]["infcode"] == 0, answers
    assert time.perf_counter() - released < 2


@pytest.mark.skipif(engine_name() != "sqlite", reason="the writers' lock is SQLite's")
def test_a_writer_does_not_wait_for_a_long_read(db, counter: CounterClient, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    reading, finish = threading.Event(), threading.Event()
    real = catalog.build

    def build(session, infno, since, latest):  # type: ignore[no-untyped-def]
        result = real(session, infno, since, latest)
        reading.set()
        finish.wait(10)  # a long read: its read transaction stays open until the test lets it go
        return result

    monkeypatch.setattr(catalog, "build", build)
    answers: list[dict] = []
    caller = threading.Thread(target=lambda: answers.append(counter.call("1305", {"data": {"ver": "0"}})))
    caller.start()
    try:
        assert reading.wait(10)
        started = time.perf_counter()
        with db.unit_of_work() as session:  # takes the writers' lock and BEGIN IMMEDIATE
            session.execute(insert(GatewayNonce).values(access_key="ro-test-writer", nonce="n2", seen_at=datetime(2026, 1, 1)))
        waited = time.perf_counter() - started
    finally:
        finish.set()
        caller.join(10)
    assert waited < 0.5, f"a writer waited {waited:.2f} s for a read"
    assert answers and answers[0]["infcode"] == 0, answers


def test_the_read_only_hint_reads_bodies_as_the_gateway_does(http) -> None:  # type: ignore[no-untyped-def]
    """The hint only chooses where a call runs; it must see what the reader sees, byte-order mark included (.NET)."""
    gateway = http.app.state.gateway
    body = b'{"infno": "1301", "input": {"data": {"ver": "0"}}}'
    assert gateway.reads_only(None, body) and gateway.reads_only(None, b"\xef\xbb\xbf" + body)
    assert not gateway.reads_only(None, b'{"infno": "2207"}') and not gateway.reads_only(None, b"\xef\xbb\xbf{oops")
    assert gateway.reads_only("1301", b"not json")  # a path naming the transaction decides
