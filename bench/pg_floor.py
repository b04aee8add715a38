"""What the cheapest PostgreSQL work a national-interface call could do costs in CPU, against SQLite.

Issue 12 asks for PostgreSQL (durable) to match SQLite in outpatient visits per CPU-second of yibao and the
database together. This measures the floor under any PostgreSQL design: a call that writes anything commits a
transaction, and each statement is a round trip between two processes. It times, on one connection with
prepared statements (psycopg, as yibao's hot path uses it):

- `SELECT 1` round trips: client and server CPU of one statement that does nothing;
- `BEGIN; INSERT … ; COMMIT` with the cluster's durability settings: the cheapest acknowledged write;
- the same INSERT and an UPDATE of a hot row in one round trip (a CTE), the shape of "one statement per call";
- on SQLite (synchronous=FULL, WAL, in-process), the same write transaction, for comparison.

CPU is this process's (time.process_time) and the postmaster's process tree (backends, WAL writer, checkpointer).

    source scripts/pg.sh; pg_start durable
    .venv/bin/python bench/pg_floor.py --database-url "$YIBAO_TEST_DATABASE_URL"
    pg_stop

Writes bench/results/pg_floor.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from national_day import database_settings, machine, postmaster_pid, system_cpu, tree_cpu_s  # noqa: E402


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _measure(run: Any, n: int, postmaster: int | None) -> dict[str, float]:
    run(200)  # warm: prepared statements, caches
    cpu0, pg0, wall0 = time.process_time(), tree_cpu_s(postmaster) if postmaster else 0.0, time.perf_counter()
    run(n)
    cpu1, pg1, wall1 = time.process_time(), tree_cpu_s(postmaster) if postmaster else 0.0, time.perf_counter()
    out = {"client_cpu_us": round((cpu1 - cpu0) / n * 1e6, 1), "wall_us": round((wall1 - wall0) / n * 1e6, 1)}
    if postmaster:
        out["postgresql_cpu_us"] = round((pg1 - pg0) / n * 1e6, 1)
        out["total_cpu_us"] = round(out["client_cpu_us"] + out["postgresql_cpu_us"], 1)
    return out


def postgresql(url: str, n: int) -> dict[str, Any]:
    postmaster = postmaster_pid(url)
    with psycopg.connect(_plain(url), prepare_threshold=0, autocommit=False) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_nonce, floor_total")
        conn.execute("CREATE TABLE floor_nonce (id bigserial PRIMARY KEY, msgid text NOT NULL UNIQUE, at timestamptz NOT NULL)")
        conn.execute("CREATE TABLE floor_total (id int PRIMARY KEY, fen bigint NOT NULL)")
        conn.execute("INSERT INTO floor_total VALUES (1, 0)")
        conn.commit()
        counter = iter(range(10**9))

        def select_one(k: int) -> None:
            with conn.cursor() as cur:
                for _ in range(k):
                    cur.execute("SELECT 1", prepare=True).fetchone()
            conn.commit()

        def insert_commit(k: int) -> None:
            for _ in range(k):
                conn.execute("INSERT INTO floor_nonce (msgid, at) VALUES (%s, now())", (f"m{next(counter)}",), prepare=True)
                conn.commit()

        def one_statement_commit(k: int) -> None:
            for _ in range(k):
                conn.execute("WITH n AS (INSERT INTO floor_nonce (msgid, at) VALUES (%s, now()) RETURNING id) "
                             "UPDATE floor_total SET fen = fen + 1 WHERE id = 1 RETURNING (SELECT id FROM n), fen",
                             (f"m{next(counter)}",), prepare=True).fetchone()
                conn.commit()

        result = {"settings": database_settings(url),
                  "select_1_round_trip": _measure(select_one, n, postmaster),
                  "insert_commit": _measure(insert_commit, n, postmaster),
                  "insert_and_hot_update_one_statement_commit": _measure(one_statement_commit, n, postmaster)}
        conn.execute("DROP TABLE floor_nonce, floor_total")
        conn.commit()
    return result


def sqlite(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "floor.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE floor_nonce (id integer PRIMARY KEY, msgid text NOT NULL UNIQUE, at text NOT NULL)")
        conn.execute("CREATE TABLE floor_total (id int PRIMARY KEY, fen bigint NOT NULL)")
        conn.execute("INSERT INTO floor_total VALUES (1, 0)")
        counter = iter(range(10**9))

        def insert_and_update_commit(k: int) -> None:
            for _ in range(k):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO floor_nonce (msgid, at) VALUES (?, datetime('now'))", (f"m{next(counter)}",))
                conn.execute("UPDATE floor_total SET fen = fen + 1 WHERE id = 1")
                conn.execute("COMMIT")

        result = {"insert_and_hot_update_commit": _measure(insert_and_update_commit, n, None)}
        conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("-n", type=int, default=5000)
    args = parser.parse_args()
    before = system_cpu()
    started = time.perf_counter()
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"), **{k: machine()[k] for k in ("description", "cpu_model")},
                              "transactions": args.n, "postgresql": postgresql(args.database_url, args.n), "sqlite": sqlite(args.n)}
    after = system_cpu()
    busy = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
    idle = sum(getattr(after, f) - getattr(before, f) for f in ("idle", "iowait"))
    result["machine_busy_share"] = round(busy / (busy + idle), 3) if busy + idle else None
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    out = Path(__file__).resolve().parent / "results" / "pg_floor.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
