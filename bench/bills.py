"""What e-bills cost the settlement path: counter traffic straight into the gateway service (no HTTP, one thread, as
bench/gateway_inproc.py), without bills and with the background issuer's rounds run in the same thread.

    .venv/bin/python bench/bills.py [--people 2000] [--visits 400] [--rounds 3] [--every 100]

Rounds alternate (without, with, without, with …) on one region database (bench/data/bills-region-<people>.db, built
once); each "with" round runs one issuer round (yibao.bill.service.issue_pending, as the background issuer does every
second) after every ``--every`` visits, so the bills' whole CPU cost falls inside the round's time. Also measured: a
backlog issued at once (bills/s and ms a bill, what issuing inside the settlement's transaction would add to each
settlement). The median round of each kind is reported. Writes bench/results/bills.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_inproc import _InProcess  # noqa: E402
from national_day import DATA, ensure_region, machine  # noqa: E402

from yibao.app import gateway_service  # noqa: E402
from yibao.bill import service as bills  # noqa: E402
from yibao.client import CounterClient  # noqa: E402
from yibao.config import Settings  # noqa: E402
from yibao.demo import traffic  # noqa: E402
from yibao.gateway import keys  # noqa: E402
from yibao.store.db import Database  # noqa: E402
from yibao.store.migrate import upgrade  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--visits", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--every", type=int, default=100, help="visits between two issuer rounds in a 'with' round")
    args = parser.parse_args()
    url = ensure_region(args.people, None, region_file=DATA / f"bills-region-{args.people}.db")
    settings = Settings(database_url=url, bill_issue_interval_s=0)
    db = Database.from_settings(settings)
    upgrade(db.engine)
    db.use_synchronous("NORMAL")  # as `yibao serve` runs a demo database
    transport = _InProcess(gateway_service(db, settings))
    with db.unit_of_work(write=False) as session:
        people = [p for p in traffic.candidates(session, 2000, random.Random(1)) if p.admdvs == "370100"]
        items = traffic.catalogue(session)
    code = "H37010000001"
    with db.unit_of_work(write=False) as session:
        secret = keys.active_secret(session, code) or ""
    counter = CounterClient("http://in-process", code, secret, http=transport)  # type: ignore[arg-type]
    counter.sign_in()
    traffic.run({code: counter}, people, items, 30, 1)  # warm caches
    bills.issue_all_pending(db, settings)  # and the bills of what is there (a first key is made here)

    def round_(with_bills: bool, seed: int) -> dict[str, float]:
        issued = 0
        start, cpu = time.perf_counter(), time.process_time()
        settled = 0
        for part in range(0, args.visits, args.every):
            report = traffic.run({code: counter}, people, items, min(args.every, args.visits - part), seed * 1000 + part)
            settled += report.outpatient + report.inpatient
            if with_bills:
                issued += bills.issue_pending(db, settings, batch=10_000)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if not with_bills:
            issued_later = bills.issue_all_pending(db, settings)  # keep the next "with" round's backlog its own
            assert issued_later >= 0
        return {"seconds": round(elapsed, 2), "settled_visits_per_s": round(settled / elapsed, 1), "bills": issued,
                "cpu_ms_per_visit": round(cpu / settled * 1000, 3)}

    rounds: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    for i in range(args.rounds):
        for kind in ("without", "with") if i % 2 == 0 else ("with", "without"):
            rounds[kind].append(round_(kind == "with", len(rounds["without"]) + len(rounds["with"]) + 2))
            print(kind, rounds[kind][-1], flush=True)

    # a backlog at once: what each bill costs (signing, numbering, writing)
    traffic.run({code: counter}, people, items, args.visits, 99)
    start, cpu0 = time.perf_counter(), time.process_time()
    backlog = bills.issue_all_pending(db, settings)
    backlog_s, backlog_cpu = time.perf_counter() - start, time.process_time() - cpu0

    without = round(statistics.median(r["settled_visits_per_s"] for r in rounds["without"]), 1)
    with_ = round(statistics.median(r["settled_visits_per_s"] for r in rounds["with"]), 1)
    # CPU time of this process (client and server in one thread): less moved by other load on a shared machine than wall time
    cpu_without = round(statistics.median(r["cpu_ms_per_visit"] for r in rounds["without"]), 2)
    cpu_with = round(statistics.median(r["cpu_ms_per_visit"] for r in rounds["with"]), 2)
    result = {
        "people": args.people, "visits_per_round": args.visits, "rounds": rounds, "issuer_round_every_visits": args.every,
        "settled_visits_per_s_without_bills": without, "settled_visits_per_s_with_bills": with_,
        "change_percent": round((with_ - without) / without * 100, 1),
        "cpu_ms_per_visit_without_bills": cpu_without, "cpu_ms_per_visit_with_bills": cpu_with,
        "cpu_change_percent": round((cpu_with - cpu_without) / cpu_without * 100, 1),
        "backlog_bills": backlog, "backlog_bills_per_s": round(backlog / backlog_s, 1) if backlog_s else None,
        "ms_per_bill": round(backlog_s / backlog * 1000, 3) if backlog else None,
        "cpu_ms_per_bill": round(backlog_cpu / backlog * 1000, 2) if backlog else None,
        "machine": machine(),
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("rounds", "machine")}))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bills.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
