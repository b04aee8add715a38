"""Ratios and quantities are stored exactly on both engines: ExactNumeric (TEXT on SQLite, NUMERIC on PostgreSQL), and
migration 0010 turning an older SQLite database's doubles into exact text."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from conftest import engine_name, fresh_database_url
from flows import catalogue_codes, fee, ok, person_with
from yibao.client import CounterClient
from yibao.codes.models import CatalogItem
from yibao.core import clock
from yibao.encounter.models import FeeLine
from yibao.store.db import Database
from yibao.store.migrate import alembic_config, upgrade
from yibao.store.types import ExactNumeric

EXACT = [Decimal("0.1"), Decimal("1.0001"), Decimal("12345678901.123456"), Decimal("-0.000001"), Decimal("0")]


@pytest.fixture
def probe(tmp_path: Path) -> Any:
    """A table with one (18, 6) column in a fresh database of the engine under test."""
    database = Database(fresh_database_url(tmp_path))
    table = Table("exact_probe", MetaData(), Column("id", Integer, primary_key=True), Column("v", ExactNumeric(18, 6)))
    table.create(database.engine)
    yield database, table
    database.dispose()


def test_values_round_trip_exactly(probe: Any) -> None:
    database, table = probe
    with database.engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "v": v} for i, v in enumerate(EXACT)] + [{"id": 99, "v": None}])
    with database.engine.connect() as conn:
        back = dict(conn.execute(select(table.c.id, table.c.v)).all())
        assert [back[i] for i in range(len(EXACT))] == EXACT and back[99] is None
        # at the column's scale on both engines, as PostgreSQL's numeric(18, 6) answers
        assert [str(back[i]) for i in range(len(EXACT))] == ["0.100000", "1.000100", "12345678901.123456", "-0.000001", "0.000000"]
        assert all(type(back[i]) is Decimal for i in range(len(EXACT)))
        if engine_name() == "sqlite":
            stored = conn.execute(text("SELECT typeof(v), v FROM exact_probe WHERE id = 2")).one()
            assert tuple(stored) == ("text", "12345678901.123456")


def test_extra_places_round_half_away_from_zero_and_too_large_is_refused(probe: Any) -> None:
    database, table = probe
    with database.engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "v": Decimal("0.0000005")}, {"id": 2, "v": Decimal("-0.0000005")}, {"id": 3, "v": 0.1}])
    with database.engine.connect() as conn:
        assert dict(conn.execute(select(table.c.id, table.c.v)).all()) == {1: Decimal("0.000001"), 2: Decimal("-0.000001"),
                                                                            3: Decimal("0.1")}
    with pytest.raises(StatementError), database.engine.begin() as conn:  # 13 digits before the point in (18, 6)
        conn.execute(insert(table), {"id": 4, "v": Decimal("1234567890123.5")})


def test_fee_lines_through_the_counter_are_exact(counter: CounterClient, db: Database) -> None:
    """2204 writes fee lines on the hot path (the driver's connection, the columns' own types): the quantity and price stay
    exact, and on SQLite they are text, as are the catalogue's ratios the demo wrote through the ORM."""
    codes = catalogue_codes(db)
    person = person_with(db, "310")
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                             "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno, "ipt_otp_no": "MZ-EXACT-1",
                                             "atddr_no": "D37010000001", "dr_name": "医生", "dept_code": "A03", "dept_name": "内科",
                                             "caty": "A03", "med_type": "11"}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    line = fee(mdtrt_id, person.psn_no, codes["jia"], "10.00", cnt="1.0001")
    ok(counter.call("2204", {"feedetail": [line]}))
    with db.unit_of_work(write=False) as session:
        stored = session.scalars(select(FeeLine).where(FeeLine.mdtrt_id == mdtrt_id)).one()
        assert (stored.cnt, stored.pric) == (Decimal("1.0001"), line["pric"]) and line["pric"] == Decimal("9.999000")
        if engine_name() == "sqlite":
            kinds = session.execute(text("SELECT typeof(cnt), cnt, typeof(pric), typeof(selfpay_prop), typeof(prd_days) FROM fee_line "
                                         "WHERE mdtrt_id = :m"), {"m": mdtrt_id}).one()
            assert tuple(kinds) == ("text", "1.0001", "text", "text", "text")
            assert session.scalar(text("SELECT count(*) FROM catalog_item WHERE typeof(selfpay_prop) <> 'text'")) == 0
        ratio = session.scalar(select(CatalogItem.selfpay_prop).where(CatalogItem.med_list_codg == codes["yi"]).limit(1))
        assert type(ratio) is Decimal and ratio.as_tuple().exponent == -4 and 0 < ratio < 1


# -- migration 0010 ------------------------------------------------------------------------------------------------

def _raw_insert(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
    """A row as a database before 0010 held it: ``values`` as given (floats stay REAL), every other required column filled."""
    row = dict(values)
    for _, name, kind, notnull, default, pk in conn.execute(f"PRAGMA table_info({table})"):
        if name in row or not notnull or default is not None or pk:
            continue
        kind = kind.upper()
        row[name] = (0 if kind.startswith(("INT", "BIGINT", "NUMERIC", "BOOL")) else "2026-01-01" if kind == "DATE"
                     else "2026-01-01 00:00:00.000000" if kind.startswith("DATETIME") else "x")
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


def _stored(path: Path) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return {
            "catalog_item": conn.execute("SELECT typeof(selfpay_prop), selfpay_prop FROM catalog_item").fetchone(),
            "fee_line": conn.execute("SELECT typeof(cnt), cnt, typeof(pric), pric, selfpay_prop, prd_days FROM fee_line").fetchone(),
            "settlement": conn.execute("SELECT typeof(pool_prop_selfpay), pool_prop_selfpay FROM settlement").fetchone(),
            "indexes": tuple(sorted(conn.execute(  # a UNIQUE constraint's own index has no SQL
                "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE tbl_name IN ('catalog_item', 'fee_line', 'settlement') "
                "AND type = 'index'"))),
        }


def _migrate(database: Database, revision: str, *, down: bool = False) -> None:
    if not down:
        upgrade(database.engine, revision)
        return
    config = alembic_config(database.engine)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@pytest.mark.skipif(engine_name() != "sqlite", reason="a SQLite file of its own: the SQLite run covers it")
def test_migration_0010_turns_sqlite_doubles_into_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = Database(f"sqlite:///{path}")
    try:
        _migrate(database, "0009")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA foreign_keys = OFF")  # the rows stand alone: no visit for the fee line and settlement
            _raw_insert(conn, "catalog_item", {"selfpay_prop": 0.0333})
            _raw_insert(conn, "fee_line", {"cnt": 1.0001, "pric": 1234567890.123456, "selfpay_prop": 0.1, "prd_days": 7})
            _raw_insert(conn, "settlement", {"setl_id": "S1", "pool_prop_selfpay": 0.05})
        old = _stored(path)
        assert old["catalog_item"] == ("real", 0.0333) and old["fee_line"][:2] == ("real", 1.0001)

        _migrate(database, "0010")
        new = _stored(path)
        assert new["catalog_item"] == ("text", "0.0333")
        # all the double's digits survive (repr), not the 15 SQLite's own text conversion keeps
        assert new["fee_line"] == ("text", "1.0001", "text", "1234567890.123456", "0.1000", "7.00")
        assert new["settlement"] == ("text", "0.0500")
        assert new["indexes"] == old["indexes"]  # the partial unique index on fee_line and every other index stand as they were
        with database.unit_of_work(write=False) as session:
            assert session.scalar(select(FeeLine.pric)) == Decimal("1234567890.123456")

        _migrate(database, "0009", down=True)
        assert _stored(path) == old  # NUMERIC affinity again: the same REALs as before
    finally:
        database.dispose()


@pytest.mark.skipif(engine_name() != "postgresql", reason="PostgreSQL's own columns")
def test_migration_0010_leaves_postgresql_numeric(tmp_path: Path) -> None:
    database = Database(fresh_database_url(tmp_path))
    try:
        upgrade(database.engine)
        with database.engine.connect() as conn:
            columns = conn.execute(text("SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
                                        "FROM information_schema.columns WHERE table_schema = 'public' AND data_type IN "
                                        "('numeric', 'text') AND column_name IN ('cnt', 'pric', 'selfpay_prop', 'prd_days', "
                                        "'pool_prop_selfpay') AND table_name NOT IN (SELECT inhrelid::regclass::text FROM pg_inherits) "
                                        "ORDER BY 1, 2")).all()  # a partition (settlement_y2026…) has its parent's columns
        assert [tuple(c) for c in columns] == [
            ("catalog_item", "selfpay_prop", "numeric", 5, 4), ("fee_line", "cnt", "numeric", 16, 4),
            ("fee_line", "prd_days", "numeric", 6, 2), ("fee_line", "pric", "numeric", 16, 6),
            ("fee_line", "selfpay_prop", "numeric", 5, 4), ("settlement", "pool_prop_selfpay", "numeric", 5, 4)]
    finally:
        database.dispose()
