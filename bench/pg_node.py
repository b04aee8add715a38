"""A production node on PostgreSQL against SQLite: the national-day mix per CPU-second of yibao and its database.

    .venv/bin/python bench/pg_node.py --pg-url postgresql://postgres@127.0.0.1:PORT/postgres --base-src /tmp/base/src

Runs bench/national_day.py in alternating rounds (sqlite, pg-base, pg-new, then the reverse order, …) on one machine:
SQLite (synchronous=FULL: an acknowledged settlement survives a power cut) with this tree's code, and PostgreSQL with
the code before (--base-src, a source tree of the base commit) and this tree's. The PostgreSQL cluster is the
caller's, started durable (`source scripts/pg.sh; pg_start durable`: fsync and synchronous_commit on); each version
gets a database of its own, copied from one region built by the base code (`--template`), and the new code migrates
its copy when its server starts. The figure compared is outpatient visits per CPU-second of the yibao server's
process tree plus, on PostgreSQL, the postmaster's process tree (national_day's
`outpatient_visits_per_cpu_s_server_and_database`); on SQLite the database is inside the server process.

Writes bench/results/pg_node-<tag>.json and .md: every round's figures and the median of each variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_day import RESULTS, ROOT, machine, run  # noqa: E402
from national_day import parser as nd_parser

FIGURES = [("outpatient visits/s", "outpatient_settlements_per_s"),
           ("outpatient visits per CPU-second, server + database", "outpatient_visits_per_cpu_s_server_and_database"),
           ("outpatient visits per server CPU-second", "outpatient_visits_per_server_cpu_s"),
           ("server CPU-s", "server_cpu_s"), ("database CPU-s", "database_cpu_s"),
           ("2207 mean ms, server-side", "server_latency_ms.2207.mean"),
           ("1101 mean ms, server-side", "server_latency_ms.1101.mean"),
           ("other processes' CPU % of the machine", "machine_state.other_processes_percent"),
           ("refused calls", "refused_calls")]


def pick(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def psql(admin_url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def database_url(admin_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", required=True, help="a superuser's URL of the durable cluster (its databases are created here)")
    parser.add_argument("--base-src", required=True, help="the code before: a source tree (src/) of --base-ref")
    parser.add_argument("--base-ref", required=True, help="the commit --base-src holds (recorded)")
    parser.add_argument("--template", default="nd_template", help="a database holding a region built by the base code")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant")
    parser.add_argument("--variants", default="sqlite,pg-base,pg-new")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    variants = args.variants.split(",")
    new_src = str(ROOT / "src")
    for name in variants:
        if name.startswith("pg-"):
            psql(args.pg_url, f"DROP DATABASE IF EXISTS nd_{name[3:]}")
            psql(args.pg_url, f"CREATE DATABASE nd_{name[3:]} TEMPLATE {args.template}")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for name in order:
            nd = nd_parser().parse_args(["--people", str(args.people), "--seconds", str(args.seconds)])
            if name == "sqlite":
                nd.synchronous, nd.server_src = "FULL", new_src
            else:
                nd.database_url = database_url(args.pg_url, f"nd_{name[3:]}")
                nd.server_src = args.base_src if name == "pg-base" else new_src
            print(f"round {r + 1}: {name} …", flush=True)
            result = run(nd)
            result["variant"] = name
            rounds[name].append(result)
            print(f"  {result['outpatient_settlements_per_s']} visits/s, "
                  f"{result['outpatient_visits_per_cpu_s_server_and_database']} per CPU-s (server + database)", flush=True)
    summary = {}
    for name, results in rounds.items():
        summary[name] = {}
        for label, path in FIGURES:
            values = [v for v in (pick(x, path) for x in results) if isinstance(v, int | float)]
            summary[name][label] = {"median": round(statistics.median(values), 2) if values else None,
                                    "min": min(values) if values else None, "max": max(values) if values else None}
    key = "outpatient visits per CPU-second, server + database"
    sqlite_figure = summary.get("sqlite", {}).get(key, {}).get("median")
    ratios = {name: round(summary[name][key]["median"] / sqlite_figure, 2)
              for name in summary if name != "sqlite" and sqlite_figure and summary[name][key]["median"]}
    new_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    state = machine()
    out = {"what": "national-day mix, outpatient visits per CPU-second of yibao + PostgreSQL (fsync on) against SQLite (FULL)",
           "machine": state["description"], "cpu_model": state["cpu_model"], "when": time.strftime("%Y-%m-%d %H:%M"),
           "base_ref": args.base_ref, "new_commit": new_commit, "people": args.people, "seconds_per_round": args.seconds,
           "rounds_per_variant": args.rounds, "summary": summary, "ratio_to_sqlite_per_cpu_s": ratios,
           "rounds": {name: [{"figures": {label: pick(x, path) for label, path in FIGURES},
                              "database_settings": x.get("database_settings"), "server_code": x["server_code"],
                              "machine_state": x["machine_state"], "when": x["when"],
                              "server_latency_ms": x["server_latency_ms"], "mix": x["mix"]} for x in results]
                      for name, results in rounds.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"pg_node{'-' + args.tag if args.tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    lines = [f"**{out['what']}; {args.people:,} people, {args.rounds} rounds of {args.seconds} s per variant, alternating; "
             f"{out['machine']} ({out['cpu_model']}), {out['when']}; base {args.base_ref}, new {new_commit}**", "",
             "| figure (median of rounds) | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for label, _ in FIGURES:
        lines.append(f"| {label} | " + " | ".join(str(summary[n][label]["median"]) for n in variants) + " |")
    lines += ["", "ratio to SQLite, per CPU-second (server + database): "
              + ", ".join(f"{n} {v}" for n, v in ratios.items()), ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {stem}.json, .md")


if __name__ == "__main__":
    main()
