"""The storage plumbing under the hot path: driver statements, the writers' lock, the WAL checkpointer."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from conftest import engine_name
from yibao.core.errors import Unavailable
from yibao.store import sql
from yibao.store.db import Database, WriterLock, _is_unavailable

METADATA = MetaData()
SAMPLE = Table("store_sample", METADATA, Column("id", Integer, primary_key=True), Column("name", String(20), unique=True),
               Column("at", DateTime), Column("on_day", Date), Column("ratio", Numeric(5, 4)), Column("fen", BigInteger))


class SampleRow(msgspec.Struct):
    id: int
    name: str | None
    at: datetime | None
    on_day: date | None
    ratio: Decimal | None
    fen: int | None


INSERT = sql.Statement(sql.insert_into(SAMPLE))
BY_ID = sql.Query(SampleRow, sql.select_of(SampleRow, SAMPLE).where(SAMPLE.c.id == bindparam("id")))
BY_ID_LOCKED = sql.Query(SampleRow, sql.select_of(SampleRow, SAMPLE).where(SAMPLE.c.id == bindparam("id")).with_for_update())
AFTER = sql.Query(str, select(SAMPLE.c.name).where(SAMPLE.c.at > bindparam("moment", type_=DateTime()), SAMPLE.c.name.like("n%"))
                  .order_by(SAMPLE.c.id))
MOVE = sql.Statement(update(SAMPLE).where(SAMPLE.c.id == bindparam("id")).values(fen=SAMPLE.c.fen + bindparam("delta")))


@pytest.fixture(scope="module")
def store(db: Database) -> Database:
    METADATA.create_all(db.engine)
    return db


def test_values_pass_through_the_column_types_both_ways(store: Database) -> None:
    at = datetime(2026, 11, 22, 9, 30)  # no microseconds: must still compare equal to what SQLAlchemy stores
    with store.unit_of_work() as session:
        sql.execute(session, INSERT, id=1, name="n1", at=at, on_day=date(2026, 1, 2), ratio=Decimal("0.1500"), fen=12345)
        sql.execute_many(session, INSERT, [{"id": i, "name": f"n{i}", "at": datetime(2026, 11, 22, 10, i), "on_day": None,
                                            "ratio": None, "fen": i} for i in (2, 3)])
    with store.unit_of_work(write=False) as session:
        row = sql.first(session, BY_ID, id=1)
        assert row is not None
        assert (row.at, row.on_day, row.fen) == (at, date(2026, 1, 2), 12345)
        assert Decimal(str(row.ratio)) == Decimal("0.15")
        # what the ORM/Core reads back is the same value: one storage format, two ways in
        assert session.execute(select(SAMPLE.c.at).where(SAMPLE.c.id == 1)).scalar() == at
        # a literal % (LIKE) and a typed parameter that is not a column
        assert sql.rows(session, AFTER, moment=at) == ["n2", "n3"]
        assert sql.first(session, BY_ID, id=99) is None


def test_records_change_and_locked_reads_work_on_both_engines(store: Database) -> None:
    with store.unit_of_work() as session:  # a row of its own: the tests run in any order
        sql.execute(session, INSERT, id=4, name="locked", at=None, on_day=None, ratio=None, fen=12345)
    with store.unit_of_work() as session:
        row = sql.first(session, BY_ID_LOCKED, id=4)
        assert row is not None
        assert sql.execute(session, MOVE, id=4, delta=-45) == 1
        assert row.fen is not None
        row.fen -= 45
        assert sql.first(session, BY_ID, id=4).fen == row.fen == 12300  # type: ignore[union-attr]
    assert BY_ID_LOCKED.plan(store.engine.dialect).text.endswith("FOR UPDATE") == (engine_name() == "postgresql")


def test_driver_errors_come_back_as_sqlalchemy_errors_and_roll_back(store: Database) -> None:
    with pytest.raises(IntegrityError):
        with store.unit_of_work() as session:
            sql.execute(session, INSERT, id=10, name="fresh", at=None, on_day=None, ratio=None, fen=0)
            sql.execute(session, INSERT, id=11, name="fresh", at=None, on_day=None, ratio=None, fen=0)  # name is unique
    with store.unit_of_work(write=False) as session:
        assert sql.first(session, BY_ID, id=10) is None  # the whole unit of work was rolled back


def test_a_lost_or_read_only_postgresql_is_unavailable_not_a_fault() -> None:
    """While a primary fails over, a pooled connection breaks, a new one finds no server that takes writes, or a write
    reaches a server that is read-only: each is "unavailable, retry with the same msgid", not an internal error."""
    import psycopg
    from sqlalchemy.exc import DBAPIError, InternalError, OperationalError

    lost = OperationalError("COMMIT", {}, psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"))
    assert _is_unavailable(lost)
    read_only = InternalError("INSERT", {}, psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"))
    assert _is_unavailable(read_only)
    assert _is_unavailable(OperationalError("x", {}, psycopg.errors.AdminShutdown("terminating connection")))
    assert not _is_unavailable(DBAPIError("x", {}, psycopg.errors.UniqueViolation("duplicate key")))
    assert not _is_unavailable(OperationalError("x", {}, sqlite3.OperationalError("database is locked")))


@pytest.mark.skipif(engine_name() != "postgresql", reason="PostgreSQL's connections and read-only transactions")
def test_a_connection_killed_mid_transaction_answers_unavailable_and_the_pool_recovers(store: Database) -> None:
    from sqlalchemy import text

    with pytest.raises(Unavailable, match="retry with the same msgid"):
        with store.unit_of_work() as session:
            session.execute(text("SET TRANSACTION READ ONLY"))
            sql.execute(session, INSERT, id=20, name="read-only", at=None, on_day=None, ratio=None, fen=0)
    with pytest.raises(Unavailable):
        with store.unit_of_work() as session:
            sql.execute(session, INSERT, id=21, name="killed", at=None, on_day=None, ratio=None, fen=0)
            with store.engine.connect() as other:  # the server goes away under the open transaction
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": session.execute(text("SELECT pg_backend_pid()")).scalar()})
            sql.execute(session, INSERT, id=22, name="killed-2", at=None, on_day=None, ratio=None, fen=0)
    with store.unit_of_work() as session:  # the broken connection was thrown away: the next unit of work runs
        sql.execute(session, INSERT, id=23, name="after", at=None, on_day=None, ratio=None, fen=0)
    with store.unit_of_work(write=False) as session:
        assert [sql.first(session, BY_ID, id=i) is not None for i in (20, 21, 22, 23)] == [False, False, False, True]


def test_what_the_orm_holds_back_is_written_before_a_driver_read(store: Database) -> None:
    from yibao.gateway.models import GatewayNonce

    nonces = GatewayNonce.__table__
    count = sql.Query(int, select(func.count()).select_from(nonces).where(nonces.c.access_key == bindparam("access_key")))
    with store.unit_of_work() as session:
        session.add(GatewayNonce(access_key="store-test", nonce="n-1", seen_at=datetime(2026, 11, 22)))
        assert sql.rows(session, count, access_key="store-test") == [1]
        session.rollback()


def _hold(path: str, seconds: float, started: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    with WriterLock(path):
        started.set()
        time.sleep(seconds)


@pytest.mark.skipif(engine_name() != "sqlite", reason="the writers' lock is SQLite's")
def test_writers_queue_across_processes_and_the_lock_is_reentrant(tmp_path: Path) -> None:
    path = str(tmp_path / "lock.db")
    lock = WriterLock(path)
    with lock, lock:  # re-entrant in one thread
        pass
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    other = ctx.Process(target=_hold, args=(path, 0.6, started))
    other.start()
    try:
        assert started.wait(30)
        began = time.monotonic()
        with lock:
            waited = time.monotonic() - began
        assert waited > 0.3, "the second process's writer must wait for the first"
    finally:
        other.join(30)
        lock.close()


@pytest.mark.skipif(engine_name() != "sqlite", reason="the write-ahead log is SQLite's")
def test_the_log_is_copied_back_in_the_background_and_stays_bounded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    database = Database(url)
    try:
        METADATA.create_all(database.engine)
        blob = "x" * 3000
        wal = tmp_path / "wal.db-wal"
        sizes = []
        for round_ in range(12):
            for i in range(300):
                with database.unit_of_work() as session:
                    sql.execute(session, INSERT, id=round_ * 1000 + i, name=f"{round_}-{i}-{blob}", at=None, on_day=None, ratio=None, fen=0)
            time.sleep(0.6)  # a checkpoint round
            sizes.append(wal.stat().st_size if wal.exists() else 0)
        written = (tmp_path / "wal.db").stat().st_size
        # ~30 MB went through the log; without restarts it would hold all of it, with them it is reused
        assert written > 25 * 2**20 and max(sizes) < written / 2, (written, sizes)
        connection = sqlite3.connect(tmp_path / "wal.db")
        assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # our own connections turn it off, not the file
        _, pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert copied == pages
        assert connection.execute("SELECT count(*) FROM store_sample").fetchone()[0] == 12 * 300
        connection.close()
    finally:
        database.dispose()


def test_a_held_back_write_runs_before_the_next_statement_or_the_commit_and_a_rollback_drops_it(store: Database) -> None:
    from sqlalchemy import bindparam, insert, select

    from yibao.audit import service as audit
    from yibao.gateway.models import GatewayNonce

    nonces = GatewayNonce.__table__
    put = sql.Statement(insert(nonces).values(access_key=bindparam("k"), nonce=bindparam("n"), seen_at=bindparam("at")))
    seen = sql.Query(str, select(nonces.c.nonce).where(nonces.c.access_key == bindparam("k")))
    at = datetime(2026, 11, 23, 9, 0)
    with store.unit_of_work() as session:
        sql.defer(session, put, k="held", n="a", at=at)
        sql.defer(session, put, k="held", n="b", at=at)
        assert sorted(sql.rows(session, seen, k="held")) == ["a", "b"]  # sent before the read
        sql.defer(session, put, k="held", n="c", at=at)
        audit.record(session, "test.held_back")  # an ORM flush in between keeps what is held back
        session.flush()
        sql.defer(session, put, k="held", n="d", at=at)
    with store.unit_of_work(write=False) as session:
        assert sorted(sql.rows(session, seen, k="held")) == ["a", "b", "c", "d"]
    with pytest.raises(RuntimeError), store.unit_of_work() as session:
        sql.defer(session, put, k="dropped", n="x", at=at)
        raise RuntimeError("rolled back")
    with store.unit_of_work() as session:
        assert sql.rows(session, seen, k="dropped") == []
    with pytest.raises(IntegrityError), store.unit_of_work() as session:  # its error surfaces at the commit at the latest
        sql.defer(session, put, k="held", n="e", at=at)
        sql.defer(session, put, k="held", n="a", at=at)
    with store.unit_of_work(write=False) as session:
        assert sorted(sql.rows(session, seen, k="held")) == ["a", "b", "c", "d"]


def test_only_a_transaction_marked_losable_commits_without_waiting_for_the_disk(store: Database) -> None:
    """`unit_of_work(durable=False)` (a read-only call's bookkeeping) does not wait for the disk; every other write does,
    before and after it on the same pooled connection."""
    def level(durable: bool) -> str:
        with store.unit_of_work(durable=durable) as session:
            if store.is_sqlite:
                found = session.connection().exec_driver_sql("PRAGMA synchronous").scalar()
                return {1: "lazy", 2: "durable"}.get(found, str(found))
            found = session.connection().exec_driver_sql("SHOW synchronous_commit").scalar()
            return "lazy" if found == "off" else "durable"

    configured = "lazy" if store.is_sqlite and store.durability.synchronous == "NORMAL" else "durable"
    assert [level(True), level(False), level(True), level(False), level(True)] == [configured, "lazy", configured, "lazy", configured]
