"""Latency and throughput against the size of the region, from the national-day results.

    .venv/bin/python bench/curve.py          # reads bench/results/national_day-sqlite-*.json

Writes bench/results/latency_curve.png and prints the table for docs/performance.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    engine = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    runs = sorted((r for r in (json.loads(p.read_text()) for p in RESULTS.glob(f"national_day-{engine}-*.json")) if not r.get("tag")),
                  key=lambda r: r["people"])
    if not runs:
        raise SystemExit(f"no national_day-{engine}-*.json results yet: run bench/national_day.py first")
    print("| people | database MB | outpatient visits/s | 2207 p50 / p95 / p99 ms, client-side | 1101 p50 / p99 ms, client-side | when |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        lat = r.get("client_latency_ms") or r["latency_ms"]  # client-side (result files before issue 11 say latency_ms)
        s, q = lat["2207"], lat["1101"]
        print(f"| {r['people']:,} | {r['database_mb']:,} | {r['outpatient_settlements_per_s']} | {s['p50']} / {s['p95']} / {s['p99']} | "
              f"{q['p50']} / {q['p99']} | {r['when']} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = [r["people"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for p, colour in (("p50", "#0a8f6a"), ("p95", "#f0a500"), ("p99", "#c0392b")):
        left.plot(people, [(r.get("client_latency_ms") or r["latency_ms"])["2207"][p] for r in runs], marker="o", color=colour,
                  label=f"2207 {p}, client-side")
    left.set_xscale("log")
    left.set_ylim(bottom=0)
    left.set_xlabel("insured people in the region")
    left.set_ylabel("ms")
    left.set_title("2207 latency by region size")
    left.legend()
    right.plot(people, [r["outpatient_settlements_per_s"] for r in runs], marker="o", color="#2c6fbb")
    right.set_xscale("log")
    right.set_ylim(bottom=0)
    right.set_xlabel("insured people in the region")
    right.set_title("complete outpatient settlements/s")
    fig.suptitle(f"yibao national-day mix on {engine}, {runs[-1]['machine']}")
    fig.tight_layout()
    out = RESULTS / f"latency_curve-{engine}.png"
    fig.savefig(out, dpi=110)
    print(f"\n{out}")


if __name__ == "__main__":
    main()
