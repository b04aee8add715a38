"""Every hot-path statement is an indexed read on SQLite: none scans its table (EXPLAIN QUERY PLAN).

A statement compiled from SQLAlchemy Core once bound its constants as parameters, and SQLite, unable to see that
`status != ?` meant 'cancelled', stopped using the partial unique index of visit numbers: every 2201 scanned
every visit. This keeps that from coming back, for every statement the services define.
"""

from __future__ import annotations

import importlib
import re
import sqlite3
from pathlib import Path

import pytest

from yibao.store import sql
from yibao.store.db import Database
from yibao.store.migrate import upgrade

HOT_PATH = ("yibao.encounter.service", "yibao.encounter.queries", "yibao.ledger.service", "yibao.registry.service",
            "yibao.credential.service", "yibao.credential.transactions", "yibao.chronic.service", "yibao.filing.service",
            "yibao.gateway.service", "yibao.gateway.signin",
            "yibao.console.service", "yibao.encounter.reviewing", "yibao.review.service")
# purges of bounded bookkeeping tables, run at most once a window: a scan of rows past their window is what they do
MAY_SCAN = {("yibao.credential.service", "RATE_PURGE")}
# statements only PostgreSQL runs (an INSERT inside WITH, which SQLite cannot write); SQLite runs their parts one by one
POSTGRESQL_ONLY = {("yibao.gateway.service", "CALL_START")}


def statements() -> list[tuple[str, str, sql.Statement]]:
    found = []
    for module_name in HOT_PATH:
        module = importlib.import_module(module_name)
        found += [(module_name, name, value) for name, value in vars(module).items() if isinstance(value, sql.Statement)]
    return found


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, Path]:
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    return db, path


def test_the_services_define_hot_path_statements() -> None:
    assert len(statements()) > 40


@pytest.mark.parametrize(("module_name", "name", "statement"), statements(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_hot_path_statement_scans_a_table(schema: tuple[Database, Path], module_name: str, name: str,
                                             statement: sql.Statement) -> None:
    if (module_name, name) in POSTGRESQL_ONLY:
        pytest.skip("PostgreSQL only; its parts are checked one by one")
    db, path = schema
    text = statement.plan(db.engine.dialect).text
    with sqlite3.connect(path) as connection:
        plan = connection.execute("EXPLAIN QUERY PLAN " + text, dict.fromkeys(re.findall(r":(\w+)", text))).fetchall()
    scans = [row[3] for row in plan if row[3].startswith("SCAN ") and "USING" not in row[3]]
    if (module_name, name) not in MAY_SCAN:
        assert not scans, f"{module_name}.{name} scans: {scans}\n{text}"


def test_constants_are_literals_so_partial_indexes_apply(schema: tuple[Database, Path]) -> None:
    from yibao.encounter import service

    text = service.SAME_NUMBER.plan(schema[0].engine.dialect).text
    assert "status != 'cancelled'" in text
