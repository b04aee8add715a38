"""Round trips and CPU per national-interface call on PostgreSQL, in one process (no HTTP, one thread).

    PYTHONPATH=src .venv/bin/python bench/pg_round_trips.py --database-url postgresql://…/db --label new
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/pg_round_trips.py --database-url postgresql://…/db0 --label base

Counter traffic (yibao.demo.traffic: outpatient, inpatient and pharmacy visits) straight into the gateway service of
whichever yibao is first on PYTHONPATH, counting what goes to the server per call: statements the driver executes
(psycopg ``Cursor.execute``/``executemany``) and transaction commands (BEGIN, COMMIT, ROLLBACK…); and the CPU
seconds per call of this process (the counter's signing included) and of the PostgreSQL postmaster's process tree.
Adds its figures under ``--label`` to bench/results/pg_round_trips.json (other labels are kept).

On SQLite (``--database-url sqlite:///…``) it counts instead the CPU spent inside the sqlite3 module's calls
(execute, executemany, fetches, commit, rollback): how much of a call the embedded database itself costs, the part
a PostgreSQL design would replace with round trips and the server's own CPU (compare bench/pg_floor.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
import psycopg._connection_base as connection_base  # noqa: E402
from gateway_inproc import _InProcess  # noqa: E402
from national_day import code_env, code_identity, machine, postmaster_pid, tree_cpu_s  # noqa: E402

COUNTS: collections.Counter[str] = collections.Counter()


def _counting() -> None:
    execute, executemany, command = psycopg.Cursor.execute, psycopg.Cursor.executemany, connection_base.BaseConnection._exec_command

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["statements"] += 1
        return execute(self, query, *args, **kwargs)

    def counted_executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["statements"] += 1  # one pipeline: one wait for the server
        return executemany(self, query, *args, **kwargs)

    def counted_command(self: Any, text: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS["transaction_commands"] += 1
        return command(self, text, *args, **kwargs)

    psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
    psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
    connection_base.BaseConnection._exec_command = counted_command  # type: ignore[method-assign]


def _timing_sqlite() -> None:
    """sqlite3 connections whose cursors and commits add their CPU time to COUNTS["sqlite_cpu_ns"]."""
    import sqlite3

    def timed(call: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time_ns()
            try:
                return call(*args, **kwargs)
            finally:
                COUNTS["sqlite_cpu_ns"] += time.process_time_ns() - started
        return run

    class TimedCursor(sqlite3.Cursor):
        execute = timed(sqlite3.Cursor.execute)
        executemany = timed(sqlite3.Cursor.executemany)
        fetchone = timed(sqlite3.Cursor.fetchone)
        fetchmany = timed(sqlite3.Cursor.fetchmany)
        fetchall = timed(sqlite3.Cursor.fetchall)

    class TimedConnection(sqlite3.Connection):
        commit = timed(sqlite3.Connection.commit)
        rollback = timed(sqlite3.Connection.rollback)
        execute = timed(sqlite3.Connection.execute)

        def cursor(self, factory: Any = TimedCursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

    connect = sqlite3.connect
    sqlite3.connect = lambda *a, **k: connect(*a, **{**k, "factory": TimedConnection})  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--visits", type=int, default=300)
    args = parser.parse_args()
    on_sqlite = args.database_url.startswith("sqlite")
    _timing_sqlite() if on_sqlite else _counting()
    from yibao.app import gateway_service
    from yibao.client import CounterClient
    from yibao.config import Settings
    from yibao.demo import traffic
    from yibao.gateway import keys
    from yibao.store.db import Database

    settings = Settings(database_url=args.database_url)
    db = Database.from_settings(settings)
    transport = _InProcess(gateway_service(db, settings))
    with db.unit_of_work(write=False) as session:
        people = [p for p in traffic.candidates(session, 2000, random.Random(1)) if p.admdvs == "370100"]
        items = traffic.catalogue(session)
    code = "H37010000001"
    with db.unit_of_work(write=False) as session:
        secret = keys.active_secret(session, code) or ""
    counter = CounterClient("http://in-process", code, secret, http=transport)  # type: ignore[arg-type]
    counter.sign_in()
    traffic.run({code: counter}, people, items, 30, 1)  # warm: pool, prepared statements, caches
    postmaster = None if on_sqlite else postmaster_pid(args.database_url)
    transport.calls = 0
    COUNTS.clear()
    cpu0, pg0, wall0 = time.process_time(), tree_cpu_s(postmaster) if postmaster else 0.0, time.perf_counter()
    report = traffic.run({code: counter}, people, items, args.visits, 2)
    cpu1, pg1, wall1 = time.process_time(), tree_cpu_s(postmaster) if postmaster else 0.0, time.perf_counter()
    calls = transport.calls
    state = machine()
    result = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": state["description"], "cpu_model": state["cpu_model"],
              "code": code_identity(code_env(None)), "visits": {"outpatient": report.outpatient, "inpatient": report.inpatient},
              "calls": calls,
              **({"sqlite_engine_cpu_us_per_call": round(COUNTS["sqlite_cpu_ns"] / calls / 1e3)} if on_sqlite else
                 {"statements_per_call": round(COUNTS["statements"] / calls, 2),
                  "transaction_commands_per_call": round(COUNTS["transaction_commands"] / calls, 2),
                  "round_trips_per_call": round((COUNTS["statements"] + COUNTS["transaction_commands"]) / calls, 2)}),
              "client_and_yibao_cpu_us_per_call": round((cpu1 - cpu0) / calls * 1e6),
              "postgresql_cpu_us_per_call": round((pg1 - pg0) / calls * 1e6) if postmaster else None,
              "wall_us_per_call": round((wall1 - wall0) / calls * 1e6)}
    db.dispose()
    out = Path(__file__).resolve().parent / "results" / "pg_round_trips.json"
    found = json.loads(out.read_text()) if out.exists() else {}
    found[args.label] = result
    out.write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({args.label: result}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
