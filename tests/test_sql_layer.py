"""The typed hot-path layer (yibao.store.sql): Core statements compiled once per dialect, typed rows, on both engines."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, bindparam, select

from conftest import engine_name
from yibao.gateway.service import record_nonce
from yibao.registry import service as registry
from yibao.registry.rows import PersonRow
from yibao.store import sql
from yibao.store.db import Database

METADATA = MetaData()
ITEMS = Table("sql_layer_item", METADATA, Column("id", Integer, primary_key=True), Column("kind", String(10)),
              Column("label", String(20), default="unnamed"), Column("made", DateTime, default=datetime.now),
              Column("day", Date))


class ItemRow(msgspec.Struct):
    id: int
    kind: str
    label: str
    day: date | None


BY_KIND = sql.Query(ItemRow, sql.select_of(ItemRow, ITEMS).where(ITEMS.c.kind == bindparam("kind"), ITEMS.c.label != "hidden")
                    .order_by(ITEMS.c.id))


@pytest.fixture(scope="module")
def store(db: Database) -> Database:
    METADATA.create_all(db.engine)
    return db


def test_a_row_type_must_name_the_selected_columns_in_order() -> None:
    with pytest.raises(TypeError, match="fields"):
        sql.Query(ItemRow, select(ITEMS.c.kind, ITEMS.c.id, ITEMS.c.label, ITEMS.c.day))
    with pytest.raises(TypeError, match="one column"):
        sql.Query(int, select(ITEMS.c.id, ITEMS.c.kind))
    with pytest.raises(TypeError, match="no such column"):
        sql.columns(PersonRow, ITEMS)


def test_rows_come_back_typed_with_fixed_values_and_scalar_defaults(store: Database) -> None:
    write = sql.Statement(ITEMS.insert().values(id=bindparam("id"), kind=bindparam("kind"), made=bindparam("made"), day=bindparam("day")))
    with store.unit_of_work() as session:
        # label is left out: its scalar default ("unnamed") is written, as SQLAlchemy itself would
        sql.execute_many(session, write, [{"id": i, "kind": "a", "made": datetime(2026, 1, 1), "day": date(2026, 1, i)} for i in (1, 2)])
        sql.execute(session, sql.Statement(ITEMS.insert().values(id=3, kind="a", label="hidden", made=datetime(2026, 1, 1))))
    with store.unit_of_work(write=False) as session:
        found = sql.rows(session, BY_KIND, kind="a")
    # the literal 'hidden' in the construct is a fixed parameter: row 3 is filtered out
    assert found == [ItemRow(1, "a", "unnamed", date(2026, 1, 1)), ItemRow(2, "a", "unnamed", date(2026, 1, 2))]
    assert all(type(r.day) is date for r in found)


def test_a_computed_default_left_out_is_refused_not_silently_null(store: Database) -> None:
    missing_made = sql.Statement(ITEMS.insert().values(id=bindparam("id"), kind=bindparam("kind")))
    with pytest.raises(ValueError, match="made"):
        with store.unit_of_work() as session:
            sql.execute(session, missing_made, id=9, kind="b")


def test_compiled_once_per_dialect_and_for_update_only_on_postgresql(store: Database) -> None:
    dialect = store.engine.dialect
    plan = registry.PERSON.plan(dialect)
    assert registry.PERSON.plan(dialect) is plan
    locked = sql.Query(ItemRow, sql.select_of(ItemRow, ITEMS).where(ITEMS.c.id == bindparam("id")).with_for_update())
    assert locked.plan(dialect).text.endswith("FOR UPDATE") == (engine_name() == "postgresql")
    assert "*" not in plan.text


def test_on_conflict_statements_are_built_for_each_dialect(store: Database) -> None:
    with store.unit_of_work() as session:
        assert record_nonce(session, "sql-layer", "n-1") is True
        assert record_nonce(session, "sql-layer", "n-1") is False
        assert record_nonce(session, "sql-layer", "n-2") is True
        session.rollback()


def test_a_person_is_a_typed_row(store: Database) -> None:
    with store.unit_of_work(write=False) as session:
        psn_no = session.execute(select(registry._PERSON.c.psn_no).limit(1)).scalar_one()
        person = registry.person(session, psn_no, "input.data")
    assert isinstance(person, PersonRow) and type(person.brdy) is date


def test_no_hand_written_sql_text_in_the_services() -> None:
    src = Path(__file__).resolve().parent.parent / "src" / "yibao"
    offenders = [f"{path.relative_to(src)}:{n}" for path in src.rglob("*.py") if "migrations" not in path.parts
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"SELECT\s+(\w+\.)?\*|sql\.Statement\(\s*[\"']|sql\.Record", line)]
    assert offenders == []
