"""Hot-path SQL: SQLAlchemy Core statements built from the tables, compiled once per dialect, run on the driver.

Why not the ORM (or Core's own execution) here: building, cache-keying and loading cost ~100 µs of Python per
statement (profiled; SQLite itself spends ~6 µs), and a settlement runs about fifteen. So a statement is a Core
construct built from the Table objects (the one source of the schema), compiled once per dialect; what is kept
per dialect is the SQL text, each parameter's bind processor and each result column's processor, so values still
pass through their column's SQLAlchemy type (dates kept as text on SQLite, Decimal). It runs on the session's
DBAPI connection inside its transaction, and driver errors come back as SQLAlchemy's exceptions
(IntegrityError, OperationalError), exactly as the ORM would raise them.

A `Query` declares the row it answers: a ``msgspec.Struct`` (or dataclass) whose fields are the selected
columns in order, checked when the query is defined, or a plain type for a one-column query (its values).
Parameters are ``bindparam(name)``; a value written into the construct (``status == 'open'``) is a fixed
parameter. ``.with_for_update()`` renders ``FOR UPDATE`` on PostgreSQL and nothing on SQLite (whose writers
``BEGIN IMMEDIATE`` already serialises).

Round trips: on PostgreSQL every statement waits for the server, and each wait costs both processes a wake-up. A write
whose outcome the caller does not read can be held back (`defer`) and goes with the next statement of the transaction or
at the commit (`commit`); several held back go as one statement (each an INSERT/UPDATE/DELETE in a WITH). On SQLite
(in the process) a held-back write simply runs at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar, cast

import msgspec
from sqlalchemy import Date, DateTime, Table, bindparam, event, insert, literal_column
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, FromClause, Select, visitors
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

R = TypeVar("R")
# a statement, or what builds it for a dialect's name (ON CONFLICT is written with each dialect's own insert())
Build = Executable | Callable[[str], Executable]


class _Plan:
    """What one statement is on one dialect: its text and converters, found once."""

    __slots__ = ("binds", "dbapi_error", "dialect", "fixed", "results", "text")

    def __init__(self, text: str, binds: dict[str, Any], fixed: dict[str, Any], dialect: Dialect) -> None:
        self.text, self.binds, self.fixed, self.dialect = text, binds, fixed, dialect
        self.results: tuple[Any, ...] | None = None  # the result columns' processors, known at the first execution
        self.dbapi_error = dialect.loaded_dbapi.Error


def _constant(element: Any, **kw: Any) -> Any:
    """A text or whole-number constant written into the construct (``status != 'cancelled'``), as an SQL literal."""
    if not isinstance(element, BindParameter) or element.required or element.callable is not None:
        return None
    value = element.value
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"
    return literal_column(text, type_=element.type)


def _inline_constants(stmt: Executable) -> Executable:
    """Constants in the statement become literals, as hand-written SQL has them: the planner must see them to use a
    partial index (visit's unique number ignores cancelled visits: ``WHERE status <> 'cancelled'``); as parameters
    SQLite cannot prove the index applies and scans the table."""
    return cast(Executable, visitors.replacement_traverse(cast(Any, stmt), {}, _constant))


class Statement:
    """A Core construct (or its builder per dialect name) whose compiled form is kept per dialect."""

    def __init__(self, build: Build) -> None:
        self._build = build
        self._plans: dict[str, _Plan] = {}

    def construct(self, dialect_name: str) -> Executable:
        return self._build(dialect_name) if callable(self._build) else self._build

    def plan(self, dialect: Dialect) -> _Plan:
        found = self._plans.get(dialect.name)
        if found is None:
            found = self._plans[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Plan:
        stmt = _inline_constants(self.construct(dialect.name))
        # named parameters (sqlite3 takes :name, psycopg %(name)s): the caller's keywords pass as they are
        named = dialect if dialect.paramstyle in ("named", "pyformat") else cast(Any, type(dialect))(paramstyle="named")
        compiled = cast(Any, stmt).compile(dialect=named)
        # columns left out of an INSERT or UPDATE whose Python-side default SQLAlchemy would fill in while executing
        defaults = {c.key: c.default for c in compiled.insert_prefetch}
        defaults.update({c.key: c.onupdate for c in compiled.update_prefetch})
        binds, fixed = {}, {}
        for bind in compiled.binds.values():
            name = compiled.bind_names[bind]
            processor = _bind(bind.type, dialect)
            if processor is not None:
                binds[name] = processor
            if name in defaults:
                default = cast(Any, defaults[name])
                if default is None or not default.is_scalar:
                    # computed while executing, which this path does not do: the statement must give the value
                    raise ValueError(f"{name}: a computed default; give the value in the statement")
                value = default.arg
            elif bind.required:
                continue
            else:  # a value written into the construct
                value = bind.effective_value
            fixed[name] = processor(value) if processor is not None and value is not None else value
        return _Plan(compiled.string, binds, fixed, dialect)

    def _result_types(self, dialect_name: str) -> list[TypeEngine[Any]]:
        return [c.type for c in cast(Any, self.construct(dialect_name)).exported_columns]


class Query(Statement, Generic[R]):
    """A statement that answers rows of ``row``: a struct or dataclass whose fields are its columns, in order, or a
    plain type for the values of a one-column statement."""

    def __init__(self, row: type[R], build: Build) -> None:
        super().__init__(build)
        self.row = row
        names = [c.name for c in cast(Any, self.construct("sqlite")).exported_columns]
        fields = _fields(row)
        if fields is None:
            if len(names) != 1:
                raise TypeError(f"{row.__name__} answers one column; the statement selects {names}")
            self._make: Callable[..., Any] | None = None
        else:
            if list(fields) != names:
                raise TypeError(f"{row.__name__} has fields {list(fields)}; the statement selects {names}")
            self._make = row


def _fields(row: type[Any]) -> tuple[str, ...] | None:
    if isinstance(row, type) and issubclass(row, msgspec.Struct):
        return row.__struct_fields__
    if dataclasses.is_dataclass(row):
        return tuple(f.name for f in dataclasses.fields(row))
    return None


def columns(row: type[Any], *tables: FromClause) -> list[ColumnElement[Any]]:
    """The columns named by the row type's fields, in the fields' order (what its SELECT lists); each from the first
    of ``tables`` that has it."""
    fields = _fields(row)
    assert fields is not None, f"{row.__name__} is not a struct or dataclass"
    found: list[ColumnElement[Any]] = []
    for name in fields:
        column = next((t.c[name] for t in tables if name in t.c), None)
        if column is None:
            raise TypeError(f"{row.__name__}.{name}: no such column in {[getattr(t, 'name', t) for t in tables]}")
        found.append(column)
    return found


def select_of(row: type[Any], table: FromClause) -> Select[Any]:
    from sqlalchemy import select

    return select(*columns(row, table))


def insert_into(table: FromClause, *, skip: Sequence[str] = ()) -> Insert:
    """INSERT of every column of ``table`` but ``skip`` (e.g. an autoincrement id), one parameter per column."""
    return insert(cast(Any, table)).values({c.name: bindparam(c.name) for c in table.columns if c.name not in skip})


def table_of(model: Any) -> Table:
    """A model's table, typed as the Table it is (declarative types ``__table__`` as any FromClause)."""
    return cast(Table, model.__table__)


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's own ``insert()`` (it alone writes ON CONFLICT), for a statement built per dialect."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def as_params(row: Any) -> dict[str, Any]:
    """A struct's or dataclass's fields as parameters (to write a row back)."""
    return msgspec.structs.asdict(row) if isinstance(row, msgspec.Struct) else dataclasses.asdict(row)


_HELD = "yibao.sql.connection"
_DEFERRED = "yibao.sql.deferred"


@event.listens_for(Session, "after_transaction_end")
def _forget_connection(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return  # the end of a flush's or a savepoint's inner transaction: the session's own goes on
    session.info.pop(_HELD, None)
    session.info.pop(_DEFERRED, None)  # a rollback drops what was held back with the rest


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
    return cast(tuple[Any, Dialect], held)


def _bound(plan: _Plan, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Parameters converted by their columns' types (only those that have a converter), with the fixed ones."""
    binds = plan.binds
    if binds:
        params = {k: (binds[k](v) if v is not None and k in binds else v) for k, v in params.items()}
    return {**plan.fixed, **params} if plan.fixed else params


def _cursor(session: Session, statement: Statement, params: Mapping[str, Any]) -> tuple[Any, _Plan]:
    driver, dialect = _connection(session)
    if _DEFERRED in session.info:
        _send_deferred(session, driver, dialect)
    plan = statement.plan(dialect)
    params = _bound(plan, params)
    cursor = driver.cursor()
    try:
        cursor.execute(plan.text, params)
    except plan.dbapi_error as error:
        cursor.close()
        raise DBAPIError.instance(plan.text, params, error, plan.dbapi_error, dialect=plan.dialect) from error
    return cursor, plan


def defer(session: Session, statement: Statement, **params: Any) -> None:
    """Run a write whose outcome (rows touched) the caller does not read. On PostgreSQL it is held back and sent with
    the transaction's next statement or at its commit (`commit`), together with any other held back: its error, if
    any, surfaces there (an IntegrityError from the commit). On SQLite it runs now."""
    _, dialect = _connection(session)
    if dialect.name != "postgresql" or session.in_nested_transaction():
        # inside a savepoint a held-back write could outlive its rollback (or die with one it was not part of)
        execute(session, statement, **params)
        return
    session.info.setdefault(_DEFERRED, []).append((statement, params))


def commit(session: Session) -> None:
    """Commit the session's transaction, after the writes held back by `defer` (one statement for all of them)."""
    if _DEFERRED in session.info:
        driver, dialect = _connection(session)  # what the ORM holds goes first, as at any statement
        _send_deferred(session, driver, dialect)
    session.commit()


# (statements held back, in order) → the text that runs them as one, on PostgreSQL
_COMBINED: dict[tuple[int, ...], str] = {}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _renamed(text: str, i: int) -> str:
    """The statement's parameters renamed apart (``%(name)s`` → ``%(d<i>_name)s``), to sit beside others in one WITH."""
    return _PLACEHOLDER.sub("%(d" + str(i) + r"_\1)s", text)


def _send_deferred(session: Session, driver: Any, dialect: Dialect) -> None:
    held = session.info.pop(_DEFERRED)
    plans = [statement.plan(dialect) for statement, _ in held]
    if len(held) == 1:
        text, params = plans[0].text, dict(_bound(plans[0], held[0][1]))
    else:
        key = tuple(id(plan) for plan in plans)
        text = _COMBINED.get(key) or _COMBINED.setdefault(
            key, "WITH " + ", ".join(f"d{i} AS ({_renamed(plan.text, i)})" for i, plan in enumerate(plans)) + " SELECT 1")
        params = {f"d{i}_{name}": value for i, (plan, (_, given)) in enumerate(zip(plans, held, strict=True))
                  for name, value in _bound(plan, given).items()}
    cursor = driver.cursor()
    try:
        cursor.execute(text, params)
    except plans[0].dbapi_error as error:
        raise DBAPIError.instance(text, params, error, plans[0].dbapi_error, dialect=dialect) from error
    finally:
        cursor.close()


def _processors(statement: Statement, plan: _Plan, cursor: Any) -> tuple[Any, ...]:
    if plan.results is None:
        # the description only the first time: psycopg builds it anew at every read (a column object per column)
        kinds = statement._result_types(plan.dialect.name)
        plan.results = tuple(_result(kind, plan.dialect, entry[1]) for kind, entry in zip(kinds, cursor.description, strict=True))
    return plan.results


def rows(session: Session, query: Query[R], **params: Any) -> list[R]:
    """Every row the query answers, as its row type."""
    cursor, plan = _cursor(session, query, params)
    try:
        processors = _processors(query, plan, cursor)
        found = cursor.fetchall()
    finally:
        cursor.close()
    make = query._make
    if make is None:
        (convert,) = processors
        if convert is None:
            return [row[0] for row in found]
        values: list[Any] = [convert(row[0]) if row[0] is not None else None for row in found]
        return values
    if not any(processors):
        return [make(*row) for row in found]
    return [make(*[(c(v) if c is not None and v is not None else v) for c, v in zip(processors, row, strict=True)]) for row in found]


def first(session: Session, query: Query[R], **params: Any) -> R | None:
    found = rows(session, query, **params)
    return found[0] if found else None


def explain(session: Session, statement: Statement, **params: Any) -> list[str]:
    """The engine's plan of the statement with these parameters, one line a step (SQLite's EXPLAIN QUERY PLAN, the
    detail column; PostgreSQL's EXPLAIN): for benchmarks and tests that check a statement reads by its indexes."""
    driver, dialect = _connection(session)
    plan = statement.plan(dialect)
    cursor = driver.cursor()
    try:
        cursor.execute(("EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN ") + plan.text, _bound(plan, params))
        return [str(row[3] if dialect.name == "sqlite" else row[0]) for row in cursor.fetchall()]
    finally:
        cursor.close()


def execute(session: Session, statement: Statement, **params: Any) -> int:
    """Run a change; the number of rows it touched."""
    cursor, _ = _cursor(session, statement, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_many(session: Session, statement: Statement, params: Iterable[Mapping[str, Any]]) -> None:
    driver, dialect = _connection(session)
    if _DEFERRED in session.info:
        _send_deferred(session, driver, dialect)
    plan = statement.plan(dialect)
    batch = [_bound(plan, row) for row in params]
    if not batch:
        return
    cursor = driver.cursor()
    try:
        cursor.executemany(plan.text, batch)
    except plan.dbapi_error as error:
        raise DBAPIError.instance(plan.text, batch, error, plan.dbapi_error, dialect=plan.dialect, ismulti=True) from error
    finally:
        cursor.close()
