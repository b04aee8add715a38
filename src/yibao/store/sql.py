"""Hot-path SQL: statements written once, run on the driver's connection inside the session's transaction.

Why not the ORM here: building, cache-keying and loading cost ~100 µs of Python per statement
(profiled; SQLite itself spends ~6 µs), and a settlement runs about fifteen. A `Statement` is
SQL text bound to the tables it reads, so values still pass through each column's own
SQLAlchemy type (dates kept as text on SQLite, Decimal) and driver errors come back as
SQLAlchemy's exceptions (IntegrityError, OperationalError), exactly as the ORM would raise them.
The ORM stays everywhere else: migrations, models, administration and the rarely used transactions.

Placeholders are ``:name``; ``lock=True`` adds ``FOR UPDATE`` on PostgreSQL (SQLite writers are
already serialised by ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Table, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


class Record:
    """One result row: attributes named after its columns, changeable (services update and write back)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values

    def __repr__(self) -> str:
        return f"Record({self.__dict__!r})"


class _Plan:
    __slots__ = ("binds", "dbapi_error", "dialect", "results", "text")

    def __init__(self, text: str, binds: dict[str, Any], dialect: Dialect) -> None:
        self.text, self.binds, self.dialect = text, binds, dialect
        self.results: tuple[tuple[str, Any], ...] | None = None
        self.dbapi_error = dialect.loaded_dbapi.Error


class Statement:
    """SQL text bound to the tables whose columns it reads or writes (their types convert the values)."""

    def __init__(self, sql: str, *tables: Table, lock: bool = False, types: Mapping[str, TypeEngine[Any]] | None = None) -> None:
        self.sql = " ".join(sql.split())
        self.lock = lock
        self._types: dict[str, TypeEngine[Any]] = {}
        for table in reversed(tables):
            self._types.update({column.name: column.type for column in table.columns})
        self._types.update(types or {})
        self._plans: dict[str, _Plan] = {}

    @classmethod
    def insert(cls, table: Table, *, skip: tuple[str, ...] = ()) -> Statement:
        """INSERT of every column of ``table`` but ``skip`` (e.g. an autoincrement id), one :name per column."""
        names = [c.name for c in table.columns if c.name not in skip]
        return cls(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})", table)

    def plan(self, dialect: Dialect) -> _Plan:
        found = self._plans.get(dialect.name)
        if found is not None:
            return found
        names = set(_PLACEHOLDER.findall(self.sql))
        if dialect.name == "sqlite":  # sqlite3 takes :name itself
            text = self.sql
        else:  # psycopg: %(name)s, and a literal % doubled
            text = _PLACEHOLDER.sub(lambda m: f"%({m.group(1)})s", self.sql.replace("%", "%%"))
        if self.lock and dialect.name == "postgresql":
            text += " FOR UPDATE"
        binds = {}
        for name in names:
            kind = self._types.get(name)
            processor = _bind(kind, dialect) if kind is not None else None
            if processor is not None:
                binds[name] = processor
        found = self._plans[dialect.name] = _Plan(text, binds, dialect)
        return found

    def _results(self, plan: _Plan, description: Any) -> tuple[tuple[str, Any], ...]:
        if plan.results is None:
            columns = []
            for entry in description:
                kind = self._types.get(entry[0])
                columns.append((entry[0], _result(kind, plan.dialect, entry[1]) if kind is not None else None))
            plan.results = tuple(columns)
        return plan.results


_HELD = "yibao.sql.connection"


@event.listens_for(Session, "after_transaction_end")
def _forget_connection(session: Session, _transaction: Any) -> None:
    session.info.pop(_HELD, None)


def _bind(kind: TypeEngine[Any], dialect: Dialect) -> Any:
    if dialect.name == "sqlite" and isinstance(kind, (DateTime, Date)) and not getattr(kind, "timezone", False):
        # the text SQLAlchemy's SQLite types store ('2026-11-22 09:30:00.000000', '2026-11-22'), written without
        # their generic formatter: these run several times a call
        return _datetime_text if isinstance(kind, DateTime) else date.isoformat
    return kind.dialect_impl(dialect).bind_processor(dialect)


def _result(kind: TypeEngine[Any], dialect: Dialect, type_code: Any) -> Any:
    if dialect.name == "sqlite" and isinstance(kind, (DateTime, Date)) and not getattr(kind, "timezone", False):
        return datetime.fromisoformat if isinstance(kind, DateTime) else date.fromisoformat
    return kind.dialect_impl(dialect).result_processor(dialect, type_code)


def _datetime_text(value: datetime) -> str:
    if type(value) is date:  # a date where a datetime is stored: midnight, as SQLAlchemy writes it
        value = datetime(value.year, value.month, value.day)
    elif value.tzinfo is not None:  # SQLAlchemy's SQLite type keeps the wall time and drops the zone
        value = value.replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _connection(session: Session) -> tuple[Any, Dialect]:
    """The driver's connection of the session's transaction (asked of SQLAlchemy once per transaction)."""
    # what the ORM holds back goes first, as its own autoflush would do (the hot path loads no entities,
    # so an empty identity map and no pending objects answer this without walking anything)
    if (len(session.identity_map) and (session.dirty or session.deleted)) or session.new:
        session.flush()
    held = session.info.get(_HELD)
    if held is None:
        connection = session.connection()
        held = session.info[_HELD] = (connection.connection.driver_connection, connection.dialect)
    return held


def _bound(plan: _Plan, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Parameters converted by their columns' types (only those that have a converter)."""
    if not plan.binds:
        return params
    return {k: (plan.binds[k](v) if k in plan.binds and v is not None else v) for k, v in params.items()}


def _cursor(session: Session, statement: Statement, params: Mapping[str, Any]) -> tuple[Any, _Plan]:
    driver, dialect = _connection(session)
    plan = statement.plan(dialect)
    params = _bound(plan, params)
    cursor = driver.cursor()
    try:
        cursor.execute(plan.text, params)
    except plan.dbapi_error as error:
        cursor.close()
        raise DBAPIError.instance(plan.text, params, error, plan.dbapi_error, dialect=plan.dialect) from error
    return cursor, plan


def fetch(session: Session, statement: Statement, **params: Any) -> list[Record]:
    cursor, plan = _cursor(session, statement, params)
    try:
        columns = statement._results(plan, cursor.description)
        return [Record({name: (convert(value) if convert is not None and value is not None else value)
                        for (name, convert), value in zip(columns, row)}) for row in cursor.fetchall()]
    finally:
        cursor.close()


def first(session: Session, statement: Statement, **params: Any) -> Record | None:
    found = fetch(session, statement, **params)
    return found[0] if found else None


def values(session: Session, statement: Statement, **params: Any) -> list[Any]:
    """The first column of every row."""
    cursor, plan = _cursor(session, statement, params)
    try:
        (_, convert), *_ = statement._results(plan, cursor.description)
        return [convert(row[0]) if convert is not None and row[0] is not None else row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()


def execute(session: Session, statement: Statement, **params: Any) -> int:
    """Run a change; the number of rows it touched."""
    cursor, _ = _cursor(session, statement, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(session: Session, statement: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
    driver, dialect = _connection(session)
    plan = statement.plan(dialect)
    batch = [_bound(plan, row) for row in rows]
    if not batch:
        return
    cursor = driver.cursor()
    try:
        cursor.executemany(plan.text, batch)
    except plan.dbapi_error as error:
        raise DBAPIError.instance(plan.text, batch, error, plan.dbapi_error, dialect=plan.dialect, ismulti=True) from error
    finally:
        cursor.close()
