"""On PostgreSQL, settlements and ledger postings are partitioned by year (migration 0013, yibao/store/partitions.py):
a partition for this year and the next after every upgrade, a DEFAULT partition for any other year, and a year's
partition made later takes that year's rows out of the DEFAULT one. SQLite keeps plain tables."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from yibao.core import clock
from yibao.store import partitions
from yibao.store.db import Database


def test_settlements_and_postings_are_partitioned_by_year_on_postgresql_only(db: Database) -> None:
    with db.engine.connect() as connection:
        if db.is_sqlite:
            assert partitions.describe(db.engine) == {}
            return
        year = clock.now().year
        for table in partitions.PARTITIONED:
            assert partitions.is_partitioned(connection, table)
            assert {year, year + 1} <= set(partitions.years(connection, table))
        keys = connection.execute(text("SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                                       "WHERE contype = 'p' AND conrelid IN ('settlement'::regclass, 'ledger_entry'::regclass)")).all()
        assert sorted(keys) == [("ledger_entry", "PRIMARY KEY (id, posted_at)"), ("settlement", "PRIMARY KEY (setl_id, year)")]


def test_a_year_made_later_takes_its_rows_out_of_the_default_partition(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("partitions are PostgreSQL's")
    far = 2091  # no partition of its own yet: its postings land in the DEFAULT partition
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO ledger_entry (setl_id, account, amount_fen, psn_no, posted_at) "
                                "VALUES ('S-far', 'cash', 100, 'P', :at), ('S-far', 'hosp', -100, 'P', :at)"),
                           {"at": datetime(far, 3, 1)})
        assert connection.execute(text("SELECT count(*) FROM ledger_entry_default WHERE setl_id = 'S-far'")).scalar_one() == 2
    assert partitions.ensure_years(db.engine, [far]) == [f"settlement_y{far}", f"ledger_entry_y{far}"]
    assert partitions.ensure_years(db.engine, [far]) == []  # once
    with db.engine.begin() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM ledger_entry_y{far}")).scalar_one() == 2
        assert connection.execute(text("SELECT count(*) FROM ledger_entry_default WHERE setl_id = 'S-far'")).scalar_one() == 0
        assert connection.execute(text("SELECT sum(amount_fen) FROM ledger_entry WHERE setl_id = 'S-far'")).scalar_one() == 0
        connection.execute(text("DELETE FROM ledger_entry WHERE setl_id = 'S-far'"))
