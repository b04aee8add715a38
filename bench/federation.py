"""Care away from home through the hub against the same settlement at home, and throughput with one or two nodes busy.

    .venv/bin/python bench/federation.py [--seconds 30] [--counters 4]

Starts `yibao federation up` (fsync on) in a temporary folder and measures over HTTP on 127.0.0.1, one phase after
another, each for ``--seconds`` with ``--counters`` counter threads doing whole outpatient visits (2201, 2204, 2207):

1. ``home``: people of 370100 at a 370100 hospital, on 370100's node (no hub);
2. ``away``: people of 370100 at a 440300 hospital: 440300's node → hub → 370100's node (the same policy and lines);
3. ``two_nodes``: home visits on both nodes at once (each node's own people at its own hospital), the counters split.

Client-side latency of 2207 (p50/p99, wall clock around the HTTP request) and completed visits per second, written
to bench/results/federation.json (``--append``: one more run in its list) and printed, with the load average at the
start and the note on what else ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from yibao.client import CounterClient  # noqa: E402
from yibao.codes.models import CatalogItem  # noqa: E402
from yibao.config import Settings  # noqa: E402
from yibao.core import clock  # noqa: E402
from yibao.federation import launcher  # noqa: E402
from yibao.gateway import keys  # noqa: E402
from yibao.registry.models import Enrolment, Person  # noqa: E402
from yibao.store.db import Database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "federation.json"


def people_of(db: Database, region: str, count: int) -> list[tuple[str, str]]:
    with db.unit_of_work(write=False) as session:
        rows = session.execute(select(Person.psn_no, Person.certno).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                               .where(Enrolment.insutype == "390", Enrolment.psn_insu_stas == "1", Enrolment.insuplc_admdvs == region)
                               .order_by(Person.psn_no).limit(count))
        return [(a, b) for a, b in rows]


def code_of(db: Database) -> str:
    with db.unit_of_work(write=False) as session:
        item = CatalogItem
        return str(session.scalar(select(item.med_list_codg).where(item.chrgitm_lv == "01", item.list_type == "102",
                                                                   item.pric_uplmt_fen.is_(None), item.lmt_gend.is_(None),
                                                                   item.lmt_age_min.is_(None), item.lmt_age_max.is_(None),
                                                                   item.lmt_hosp_lv.is_(None)).limit(1)))


def visit(counter: CounterClient, person: tuple[str, str], code: str, insuplc: str) -> float:
    """One whole outpatient visit; the 2207's client-side seconds."""
    psn_no, certno = person
    cred = {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}
    reg = counter.call("2201", {"data": {"psn_no": psn_no, "insutype": "390", "begntime": clock.fmt_datetime(clock.now()), **cred,
                                         "ipt_otp_no": "MZ" + secrets.token_hex(6), "atddr_no": "D1", "dr_name": "医生", "dept_code": "A03",
                                         "dept_name": "内科", "caty": "A03", "med_type": "11"}}, insuplc_admdvs=insuplc)
    assert reg["infcode"] == 0, reg["err_msg"]
    mdtrt_id = reg["output"]["data"]["mdtrt_id"]
    fee = {"feedetl_sn": "F" + secrets.token_hex(6), "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rxno": "",
           "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": code, "medins_list_codg": "H-1",
           "det_item_fee_sumamt": Decimal("60.00"), "cnt": Decimal("1"), "pric": Decimal("60.00"), "bilg_dept_codg": "A03",
           "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生", "hosp_appr_flag": "0"}
    assert counter.call("2204", {"feedetail": [fee]}, insuplc_admdvs=insuplc)["infcode"] == 0
    data = {"psn_no": psn_no, **cred, "med_type": "11", "medfee_sumamt": Decimal("60.00"), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "390"}
    started = time.perf_counter()
    answer = counter.call("2207", {"data": data}, insuplc_admdvs=insuplc)
    elapsed = time.perf_counter() - started
    assert answer["infcode"] == 0, answer["err_msg"]
    return elapsed


def phase(lanes: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Each lane: a counter, its people, its code and the insured region; run them all for ``seconds``."""
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(lane: dict[str, Any]) -> None:
        i = 0
        while time.monotonic() < stop:
            person = lane["people"][i % len(lane["people"])]
            i += 1
            elapsed = visit(lane["counter"], person, lane["code"], lane["insuplc"])
            with lock:
                latencies.append(elapsed)
                done[0] += 1

    threads = [threading.Thread(target=run, args=(lane,)) for lane in lanes]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ordered = sorted(latencies)
    return {"visits": done[0], "seconds": round(wall, 1), "visits_per_s": round(done[0] / wall, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1), "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--counters", type=int, default=4)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--note", default="", help="what else the machine was doing")
    parser.add_argument("--append", action="store_true", help="add this run to the result file's runs (else it starts anew)")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="yibao-bench-federation."))
    layout = launcher.up(folder, people=args.people, fsync=True, say=lambda text: print(text, flush=True))
    try:
        db = {p.name: Database.from_settings(Settings(database_url=p.database_url)) for p in layout.processes if p.name != "hub"}
        counters: dict[str, list[CounterClient]] = {}
        for region in launcher.PROVINCES:
            with db[region].unit_of_work(write=False) as session:
                secrets_ = [keys.active_secret(session, f"H{region}{n:05d}") for n in range(1, args.counters + 1)]
            counters[region] = []
            for n, secret in enumerate(secrets_, start=1):
                assert secret
                client = CounterClient(layout.process(region).url, f"H{region}{n:05d}", secret, mdtrtarea_admvs=region)
                assert client.sign_in()["infcode"] == 0
                counters[region].append(client)
        jinan = people_of(db["370100"], "370100", 400)
        shenzhen = people_of(db["440300"], "440300", 400)
        code = {r: code_of(db[r]) for r in launcher.PROVINCES}
        slices = [jinan[i::args.counters] for i in range(args.counters)]
        result: dict[str, Any] = {}
        result["home"] = phase([{"counter": c, "people": slices[i], "code": code["370100"], "insuplc": "370100"}
                                for i, c in enumerate(counters["370100"])], args.seconds)
        print("home", result["home"], flush=True)
        result["away"] = phase([{"counter": c, "people": slices[i], "code": code["440300"], "insuplc": "370100"}
                                for i, c in enumerate(counters["440300"])], args.seconds)
        print("away", result["away"], flush=True)
        half = max(args.counters // 2, 1)
        lanes = [{"counter": c, "people": jinan[i::half], "code": code["370100"], "insuplc": "370100"}
                 for i, c in enumerate(counters["370100"][:half])]
        lanes += [{"counter": c, "people": shenzhen[i::half], "code": code["440300"], "insuplc": "440300"}
                  for i, c in enumerate(counters["440300"][:half])]
        result["two_nodes"] = phase(lanes, args.seconds)
        print("two_nodes", result["two_nodes"], flush=True)
    finally:
        launcher.down(folder, say=lambda _text: None)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_at_start": load_at_start,
                         "note": args.note, "fsync": "on", "counters": args.counters, "seconds": args.seconds,
                         "when": clock.fmt_datetime(clock.now())}
    runs = json.loads(RESULTS.read_text()).get("runs", []) if RESULTS.exists() and args.append else []
    runs.append(result)
    RESULTS.write_text(json.dumps({"runs": runs}, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
