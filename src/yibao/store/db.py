"""Engines, sessions and the unit of work.

SQLite runs in WAL mode with ``synchronous=FULL`` (NORMAL in a demo) and a busy timeout; write transactions
start with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock.
PostgreSQL runs READ COMMITTED; services lock the rows they change (``SELECT … FOR UPDATE``).

Read-only work (``unit_of_work(read_only=True)``) has an engine of its own: on SQLite connections that cannot write
(``PRAGMA query_only``) and begin DEFERRED, never taking the writers' lock, so a long read holds up no writer (WAL
readers see a snapshot); on PostgreSQL ``READ ONLY`` transactions at REPEATABLE READ, one snapshot for the whole read.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from yibao.core.errors import Busy, InputError, StorageFull, Unavailable
from yibao.store import sql

if TYPE_CHECKING:
    from yibao.config import Settings

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Durability:
    """SQLite's ``synchronous`` for new connections: FULL (an acknowledged commit survives a power cut) unless
    the deployment is a demo, which may trade that for speed (NORMAL: survives a crash of the process only)."""

    def __init__(self) -> None:
        self.synchronous = os.environ.get("YIBAO_SQLITE_SYNCHRONOUS", "").upper() or "FULL"


def make_engine(url: str, *, busy_ms: int = 30_000, max_bytes: int = 0, durability: Durability | None = None,
                read_only: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # the database holds personal data: readable by its owner only, from the first byte
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        engine = create_engine(url, connect_args={"timeout": busy_ms / 1000, "check_same_thread": False}, pool_size=8, max_overflow=16)
        if read_only:
            _tune_sqlite_reader(engine, busy_ms)
        else:
            _tune_sqlite(engine, busy_ms, max_bytes, checkpoint_in_background=_background_checkpoints(url),
                         durability=durability or Durability())
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return _postgresql_engine(url)


def _postgresql_engine(url: str) -> Engine:
    """PostgreSQL through psycopg 3, a pool of connections per worker process.

    No ``pool_pre_ping``: it costs a round trip at every checkout (a transaction here is a handful of them). Instead a
    connection the driver already knows is closed or broken is replaced at checkout (no round trip), connections are
    renewed after ``pool_recycle`` seconds, and TCP keepalives find a dead peer; a connection lost all the same fails its
    call, SQLAlchemy then drops every pooled connection made before the loss, and the counter's retry (same msgid)
    gets a fresh one. psycopg prepares a statement on the server after its ``prepare_threshold`` runs on a connection
    (3: the hot path's statements are prepared within the first calls; each is planned once per connection).
    Pool: the event loop hands PostgreSQL work to anyio's worker threads (40 at most); 10 connections serve a
    worker's concurrent calls without waiting, 20 more on a burst."""
    # behind a pooler in transaction mode without prepared-statement support (pgbouncer before 1.21):
    # YIBAO_PG_PREPARE_THRESHOLD=off
    threshold = os.environ.get("YIBAO_PG_PREPARE_THRESHOLD", "3").strip().lower()
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800,
                           connect_args={"prepare_threshold": None if threshold in ("off", "none", "") else int(threshold),
                                         "keepalives": 1, "keepalives_idle": 60})

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        if connection.get_execution_options().get("yibao_durable") is False:
            # acknowledged before the WAL reaches the disk: a crash may lose this transaction, never corrupt the data
            connection.connection.driver_connection.execute("SET LOCAL synchronous_commit TO OFF")

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, _record, _proxy):
        if dbapi_connection.closed or dbapi_connection.broken:
            from sqlalchemy.exc import DisconnectionError

            raise DisconnectionError("connection closed while in the pool")

    return engine


def _tune_sqlite(engine: Engine, busy_ms: int, max_bytes: int, checkpoint_in_background: bool, durability: Durability) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if durability.synchronous == 'NORMAL' else 'FULL'}")
        _record.info["synchronous"] = durability.synchronous
        # a bigger page cache and memory-mapped reads: the hot indexes (nonces, messages, tokens) are keyed at random
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute("PRAGMA journal_size_limit=67108864")  # a restarted log is cut back to 64 MB
        if checkpoint_in_background:
            # the WAL is copied back by the Checkpointer thread, not by whichever request commits the 1000th page
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        if max_bytes:
            page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={max(1, max_bytes // page_size)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        options = connection.get_execution_options()
        mode = options.get("sqlite_begin", "IMMEDIATE")
        driver = connection.connection.driver_connection
        # a transaction that may be lost in a power cut (`Database.unit_of_work(durable=False)`) commits without
        # waiting for the disk; the next durable commit on the file syncs the log with it. Set per connection, before
        # BEGIN, and only when it changes (one dictionary look-up otherwise).
        wanted = "NORMAL" if options.get("yibao_durable") is False else durability.synchronous
        info = connection.connection.info
        if info.get("synchronous") != wanted:
            driver.execute(f"PRAGMA synchronous={'NORMAL' if wanted == 'NORMAL' else 'FULL'}")
            info["synchronous"] = wanted
        # on the driver itself: SQLAlchemy's execution path costs ~20 µs more, on every call
        statement = f"BEGIN {mode}"
        try:
            driver.execute(statement)
        except sqlite3.Error as error:
            raise DBAPIError.instance(statement, (), error, sqlite3.Error, dialect=connection.dialect) from error


def _tune_sqlite_reader(engine: Engine, busy_ms: int) -> None:
    """Connections for read-only work: any write fails ("attempt to write a readonly database"), transactions begin
    DEFERRED (a shared snapshot of the WAL, no write lock); the file's journal mode is the writers' business."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # an explicit BEGIN: without it each statement would read its own snapshot
        try:
            connection.connection.driver_connection.execute("BEGIN DEFERRED")
        except sqlite3.Error as error:
            raise DBAPIError.instance("BEGIN DEFERRED", (), error, sqlite3.Error, dialect=connection.dialect) from error


class WriterLock:
    """One writer at a time for a SQLite file, across the threads of a process and across processes.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which polls by sleeping
    (1, 2, 5 … 100 ms) and turns contention into long tails. Writers here queue instead: on a lock
    in the process, then on ``flock`` of a file beside the database, which the kernel hands over
    the moment it is released. Re-entrant within a thread.
    """

    def __init__(self, database_path: str | None) -> None:
        self._local = threading.RLock()
        self._depth = 0
        self._fd = os.open(database_path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600) if database_path else None

    def __enter__(self) -> WriterLock:
        self._local.acquire()
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._local.release()
                raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Checkpointer:
    """Copies SQLite's write-ahead log back into the database from a thread of its own.

    Left to SQLite, the request whose commit pushes the log past 1000 pages does the copy (and
    its fsync) and waits for it (~0.4 ms a call on average, measured). Here one process of those
    sharing the file (elected by a lock beside it) runs a passive checkpoint every ``interval_s``
    on its own connection, blocking no one; the sqlite3 module releases the GIL while it copies, so
    it uses the other core. Once the log holds ``restart_pages``, a short second pass under the
    writers' lock copies what was committed meanwhile: only a log copied back in full, with no commit
    in between, lets the next writer start it again from the beginning (otherwise it grows without end).
    """

    def __init__(self, path: str, writers: WriterLock, interval_s: float = 0.5, restart_pages: int = 4000) -> None:
        self._path, self._writers, self._interval, self._restart = path, writers, interval_s, restart_pages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yibao-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import sqlite3

        election = os.open(self._path + ".checkpointer", os.O_RDWR | os.O_CREAT, 0o600)
        connection = sqlite3.connect(self._path, timeout=1, check_same_thread=False)
        elected = False
        try:
            while not self._stop.wait(self._interval):
                if not elected:
                    try:
                        fcntl.flock(election, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        elected = True
                    except OSError:
                        continue  # another process checkpoints; take over if it goes
                try:
                    _, pages, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if pages >= self._restart:
                        with self._writers:
                            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or locked: the next round will do it
        finally:
            connection.close()
            os.close(election)  # releases the election lock

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Database:
    """An engine plus sessions; `unit_of_work` is the only way services get one."""

    def __init__(self, url: str, *, busy_ms: int = 30_000, max_bytes: int = 0) -> None:
        self.url = url
        self.durability = Durability()
        self.engine = make_engine(url, busy_ms=busy_ms, max_bytes=max_bytes, durability=self.durability)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        sqlite_path = _sqlite_file(url) if self.is_sqlite else None
        self._write_lock = WriterLock(sqlite_path) if self.is_sqlite else None
        self._checkpointer = (Checkpointer(sqlite_path, self._write_lock)
                              if sqlite_path and self._write_lock and _background_checkpoints(url) else None)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # what may be lost in a power cut (the record of a call that only read: its nonce, stored answer, log line)
        self._lazy_sessions = sessionmaker(self.engine.execution_options(yibao_durable=False), expire_on_commit=False,
                                           autoflush=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False, autoflush=False
        )
        self.reader = self._reader(url, busy_ms, sqlite_path)
        self._read_only_sessions = sessionmaker(self.reader, expire_on_commit=False, autoflush=False)

    def _reader(self, url: str, busy_ms: int, sqlite_path: str | None) -> Engine:
        """The engine read-only work runs on."""
        if not self.is_sqlite:
            # the same pool; the driver opens these transactions READ ONLY, and REPEATABLE READ gives a read of several
            # queries (a catalogue file and its version) one snapshot. Both are reset when the connection goes back.
            return self.engine.execution_options(postgresql_readonly=True, isolation_level="REPEATABLE READ")
        if sqlite_path:
            return make_engine(url, busy_ms=busy_ms, read_only=True)
        # in memory there is no second connection to the same data: reads share the writers' engine, DEFERRED and
        # without the lock, but not enforced read-only (throwaway databases only)
        return self.engine.execution_options(sqlite_begin="DEFERRED")

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        from yibao.core import vault

        vault.current()  # a missing or malformed master key stops the start, not the first request that needs a secret
        return cls(settings.database_url, busy_ms=settings.sqlite_busy_ms, max_bytes=settings.sqlite_max_bytes)

    async def run(self, work: Callable[[], T], *, off_loop: bool = False) -> T:
        """Run blocking storage work from async code.

        On SQLite a call is ~1 ms of CPU and writers queue on one lock anyway, so it runs on the event
        loop: handing it to a thread costs more than the call, and a second thread holding the GIL
        stretches the writers' lock (measured: ~1.1 → ~2.2 ms a hold). PostgreSQL work waits on the
        network, so it goes to a thread. ``off_loop``: work that may read for long (a catalogue file, a
        query over months) goes to a thread on SQLite too, so the loop keeps serving the writers meanwhile.
        """
        if self.is_sqlite and not off_loop:
            return work()
        return await anyio.to_thread.run_sync(work)

    @contextmanager
    def unit_of_work(self, *, write: bool = True, read_only: bool = False, durable: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises.

        ``read_only``: on the read-only engine, without the writers' lock; any write in it fails.
        ``durable=False``: a write whose commit does not wait for the disk (SQLite ``synchronous=NORMAL``, PostgreSQL
        ``synchronous_commit=off`` for this transaction): a power cut may lose it, never corrupt anything. Only for what
        can be lost: the bookkeeping of a call that read (its nonce, stored answer and log line), never a settlement."""
        if read_only:
            write = False
        session = (self._read_only_sessions if read_only else self._lazy_sessions if write and not durable
                   else self._sessions if write else self._read_sessions)()
        guard = self._write_lock if write and self._write_lock is not None else nullcontext()
        try:
            with guard:
                yield session
                sql.commit(session)  # with the writes held back by sql.defer (PostgreSQL: one statement before COMMIT)
        except OperationalError as error:
            _roll_back(session)
            if _is_full(error):
                raise StorageFull("the platform's storage is full: nothing was written; retry the same msgid later") from error
            if _is_busy(error):
                raise Busy("the database is busy: nothing was written; retry the same msgid") from error
            if _is_unavailable(error, read_only):
                raise Unavailable(UNAVAILABLE) from error
            raise
        except DataError as error:
            # e.g. a NUL character or a number out of range that PostgreSQL refuses: bad input, not a fault
            session.rollback()
            raise InputError("a value holds characters or a size the platform cannot store (NUL, out of range)") from error
        except DBAPIError as error:
            _roll_back(session)
            if _is_unavailable(error, read_only):  # e.g. a write reached a standby that is being promoted
                raise Unavailable(UNAVAILABLE) from error
            raise
        except BaseException:
            _roll_back(session)
            raise
        finally:
            session.close()

    def use_synchronous(self, level: str) -> None:
        """Set SQLite's ``synchronous`` (FULL or NORMAL) for every connection from now on; an explicit
        ``YIBAO_SQLITE_SYNCHRONOUS`` wins. Pooled connections are closed so none keeps the old level."""
        if os.environ.get("YIBAO_SQLITE_SYNCHRONOUS") or level == self.durability.synchronous:
            return
        self.durability.synchronous = level
        if self.is_sqlite:
            self.engine.dispose()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()
        if self.is_sqlite and self.reader.engine is not self.engine:
            self.reader.dispose()
        if self._write_lock is not None:
            self._write_lock.close()


def _background_checkpoints(url: str) -> bool:
    """On for a SQLite file unless YIBAO_SQLITE_CHECKPOINT=auto leaves it to SQLite."""
    return _sqlite_file(url) is not None and os.environ.get("YIBAO_SQLITE_CHECKPOINT", "background") != "auto"


def _sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    return database if database and database != ":memory:" and not database.startswith("file:") else None


def _is_full(error: OperationalError) -> bool:
    text = str(error.orig).lower() if error.orig else str(error).lower()
    return "disk is full" in text or "database or disk is full" in text or "no space left" in text or "disk full" in text


# SQLSTATEs of a PostgreSQL that is going away or not (yet) the primary: connection exceptions (class 08), shutdown and
# crash (57P01-57P03), a read-only transaction (25006: a standby, or a primary being demoted)
READ_ONLY_TRANSACTION = "25006"  # a write in a read-only transaction (a standby answers it too)
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", READ_ONLY_TRANSACTION)
UNAVAILABLE = "storage temporarily unavailable (the database is failing over to its standby); retry with the same msgid"


def _roll_back(session: Session) -> None:
    """Roll back after a failure; a connection that is gone took its transaction with it (SQLAlchemy invalidates it, and
    the pool opens a new one), so that is no second error to report."""
    try:
        session.rollback()
    except DBAPIError as error:
        if not _is_unavailable(error):
            raise


def _is_unavailable(error: DBAPIError, read_only: bool = False) -> bool:
    """PostgreSQL lost or refused while failing over: the connection broke (SQLAlchemy invalidated it), no server takes
    writes (psycopg reports a failed connect without a SQLSTATE), or the one reached is read-only. In a unit of work
    that is read-only on purpose, a write refused as read-only is the caller's bug, not a failover."""
    if error.connection_invalidated:
        return True
    orig = error.orig
    if orig is None or not type(orig).__module__.startswith("psycopg"):
        return False
    state = getattr(orig, "sqlstate", None)
    if state is None:
        return isinstance(error, OperationalError)
    if read_only and state == READ_ONLY_TRANSACTION:
        return False
    return state.startswith(_UNAVAILABLE_STATES)


def _is_busy(error: OperationalError) -> bool:
    text = str(error.orig).lower() if error.orig else str(error).lower()
    return "locked" in text or "busy" in text or "could not serialize" in text or "deadlock" in text
