"""Acknowledged means durable, and what it costs: the national-day mix on SQLite with synchronous=FULL
(production: a settlement is answered only after its commit is on disk) and NORMAL (the demo's
trade: survives a crash of the process, not a power cut), one after the other on the same region.

    .venv/bin/python bench/durability.py --people 100000 --seconds 45

Writes bench/results/durability-sqlite-<people>.json and .md. Bounded in time, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from national_day import RESULTS, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=18767)
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = {}
    for level in ("FULL", "NORMAL"):
        ns = argparse.Namespace(people=args.people, seconds=args.seconds, clients=args.clients, workers=1, pool=600, activated=200,
                                client_nice=10, tag=f"sync-{level.lower()}", database_url=None, port=args.port, synchronous=level,
                                region_file=None, server_src=None)
        print(f"synchronous={level} …", flush=True)
        runs[level] = run(ns)
    result = {"machine": runs["FULL"]["machine"], "when": time.strftime("%Y-%m-%d %H:%M"), "people": args.people, "seconds": args.seconds,
              "clients": args.clients, "load_average_before": load_before, "load_average_after": os.getloadavg(), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"durability-sqlite-{args.people}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    lines = [f"**SQLite durability, {args.people:,} people, {args.clients} client processes, {args.seconds} s each, "
             f"{result['machine']} ({result['when']})**", "",
             "| synchronous | outpatient settlements/s | per server CPU-second | all settlements/s | 2207 p50 ms, client-side | "
             "2207 p99 ms, client-side | 2207 mean ms, server-side | 2102 p99 ms, client-side | server CPU % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for level, r in runs.items():
        lat, server = r["client_latency_ms"], r["server_latency_ms"]
        lines.append(f"| {level} | {r['outpatient_settlements_per_s']} | {r['outpatient_visits_per_server_cpu_s']} | "
                     f"{r['all_settlements_per_s']} | {lat.get('2207', {}).get('p50', '–')} | {lat.get('2207', {}).get('p99', '–')} | "
                     f"{server.get('2207', {}).get('mean', '–')} | "
                     f"{lat.get('2102', {}).get('p99', '–')} | {r['server_cpu_percent_mean']} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
