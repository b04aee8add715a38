"""Settlements and ledger postings by year on PostgreSQL (declarative RANGE partitioning); SQLite keeps plain tables.

``settlement`` is partitioned on its ``year`` column, ``ledger_entry`` on ``posted_at`` (a posting's year): a partition
a year (``settlement_y2026``, ``ledger_entry_y2026``) and a DEFAULT partition that takes a row no year's partition
covers, so a settlement is never refused for want of one. A partitioned table's keys must hold the partition key:
the primary keys are (setl_id, year) and (id, posted_at); lookups by setl_id use each partition's primary-key index
(its leading column), and the other indexes are declared on the parent, so every partition has them.

Partitions for the current and the next year are made by every ``yibao db upgrade`` and at every start of
``yibao serve`` (`ensure_years`), and ``yibao db partitions --year YYYY`` makes one ahead of time; rows of that year
already in the DEFAULT partition are moved into the new one in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

# table → (partition key, how a year's bounds are written)
PARTITIONED = {"settlement": ("year", lambda y: (str(y), str(y + 1))),
               "ledger_entry": ("posted_at", lambda y: (f"'{y}-01-01'", f"'{y + 1}-01-01'"))}


def _columns(connection: Connection, table: str) -> str:
    """The table's columns as the database has them now (a migration runs before later ones add any)."""
    return str(connection.execute(text("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                                       "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"),
                                  {"t": table}).scalar_one())


def is_partitioned(connection: Connection, table: str) -> bool:
    return bool(connection.execute(text("SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                                        "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"),
                                   {"t": table}).first())


def years(connection: Connection, table: str) -> list[int]:
    """The years that have a partition of their own."""
    names = connection.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"), {"t": table}).scalars()
    prefix = f"{table}_y"
    return sorted(int(n[len(prefix):]) for n in names if n.startswith(prefix) and n[len(prefix):].isdigit())


def add_year(connection: Connection, table: str, year: int) -> bool:
    """A partition for ``year`` (False: it was there); rows of that year in the DEFAULT partition move into it."""
    if year in years(connection, table):
        return False
    key, bounds = PARTITIONED[table]
    low, high = bounds(year)
    part, default = f"{table}_y{year}", f"{table}_default"
    connection.execute(text(f"CREATE TABLE {part} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    # no row of that year may commit into DEFAULT between the copy and the delete (it would be deleted uncopied):
    # writers wait for this transaction (ATTACH takes the same lock anyway)
    connection.execute(text(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE"))
    moved = f"{key} >= {low} AND {key} < {high}"
    columns = _columns(connection, table)
    connection.execute(text(f"WITH moved AS (DELETE FROM {default} WHERE {moved} RETURNING {columns}) "
                            f"INSERT INTO {part} ({columns}) SELECT {columns} FROM moved"))
    connection.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {part} FOR VALUES FROM ({low}) TO ({high})"))
    return True


def ensure_years(engine: Engine, wanted: list[int] | None = None) -> list[str]:
    """Partitions for ``wanted`` years (default: this year and the next) on PostgreSQL; the ones made, by name."""
    if engine.dialect.name != "postgresql":
        return []
    from yibao.core import clock

    this_year = clock.now().year
    made = []
    with engine.begin() as connection:
        for table in PARTITIONED:
            if not is_partitioned(connection, table):
                continue
            for year in wanted or [this_year, this_year + 1]:
                if add_year(connection, table, year):
                    made.append(f"{table}_y{year}")
    return made


def partition_table(connection: Connection, table: str, primary_key: tuple[str, ...], indexes: dict[str, str],
                    foreign_keys: dict[str, str], year_sql: str, this_year: int) -> None:
    """Turn a plain table into one partitioned by year, rows kept: a partitioned copy, the rows moved, the old one
    dropped. ``year_sql``: the expression of a row's year (to find the years present)."""
    key, _ = PARTITIONED[table]
    present = connection.execute(text(f"SELECT DISTINCT {year_sql} FROM {table}")).scalars()
    wanted = sorted({int(y) for y in present if y is not None} | {this_year, this_year + 1})
    _rebuild(connection, table, f"{table}_partitioned", primary_key, indexes, foreign_keys, partition_by=key)
    for year in wanted:
        add_year(connection, table, year)


def unpartition_table(connection: Connection, table: str, primary_key: str, indexes: dict[str, str],
                      foreign_keys: dict[str, str]) -> None:
    """The reverse of `partition_table` (a downgrade)."""
    _rebuild(connection, table, f"{table}_plain", (primary_key,), indexes, foreign_keys, partition_by=None)


def _rebuild(connection: Connection, table: str, copy: str, primary_key: tuple[str, ...], indexes: dict[str, str],
             foreign_keys: dict[str, str], *, partition_by: str | None) -> None:
    """Replace a table by a copy (partitioned by RANGE on ``partition_by``, with a DEFAULT partition, or plain), rows
    kept, with its primary key, indexes, foreign keys and the ownership of its id sequence."""
    sequence = connection.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar() \
        if "id" in primary_key else None
    if sequence:
        connection.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    partitioned = f" PARTITION BY RANGE ({partition_by})" if partition_by else ""
    connection.execute(text(f"CREATE TABLE {copy} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){partitioned}"))
    if partition_by:
        connection.execute(text(f"CREATE TABLE {table}_default PARTITION OF {copy} DEFAULT"))
    columns = _columns(connection, table)
    connection.execute(text(f"INSERT INTO {copy} ({columns}) SELECT {columns} FROM {table}"))
    connection.execute(text(f"DROP TABLE {table}"))
    connection.execute(text(f"ALTER TABLE {copy} RENAME TO {table}"))
    connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(primary_key)})"))
    for name, indexed in indexes.items():
        connection.execute(text(f"CREATE INDEX {name} ON {table} ({indexed})"))
    for name, clause in foreign_keys.items():
        connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {clause}"))
    if sequence:
        connection.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id"))


def describe(engine: Engine) -> dict[str, Any]:
    """Each partitioned table's years with a partition and the rows in its DEFAULT partition (for the CLI)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as connection:
        return {table: {"years": years(connection, table),
                        "rows_in_default": connection.execute(text(f"SELECT count(*) FROM {table}_default")).scalar_one()}
                for table in PARTITIONED if is_partitioned(connection, table)}
