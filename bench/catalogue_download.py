"""Catalogue downloads (1301) and what they do to settlements running at the same time.

    .venv/bin/python bench/catalogue_download.py --label after
    PYTHONPATH=/tmp/yibao-head/src .venv/bin/python bench/catalogue_download.py --label before   # another version's code

Seeds a small demo region on a fresh SQLite file, imports a catalogue of ``--rows`` extra drugs (list type 101, so the
1301 file holds them all), starts `yibao serve` (one worker) and measures through HTTP, on 127.0.0.1 only:

1. a full 1301 download (ver "0") on an idle server: the first one, then ``--repeats`` more (the answer, not the 9102
   transfer, which is timed once apart);
2. ``--visits`` outpatient visits (2201, 2204, 2207) from one counter on an idle server: each call's latency;
3. a new catalogue version is imported (so the next 1301 file is new), then the same visits again while a second
   counter downloads 1301 in a loop: the settlements' latency, and each download's time (the first builds the file).

Results are merged under ``--label`` into bench/results/catalogue_download.json, with the machine and the sizes. The code
under test is whatever ``yibao`` the interpreter imports (PYTHONPATH), server and client alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "catalogue_download.json"
HOSPITAL = "H37010000001"
HEADER = ("med_list_codg,med_list_name,list_type,med_chrgitm_type,chrgitm_lv,selfpay_prop,pric_uplmt_amt,lmt_gend,lmt_age_min,"
          "lmt_age_max,lmt_hosp_lv,rx_flag,spec,dosform,pacunt,prodentp_name,begndate,enddate,memo")


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "yibao", *args], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"yibao {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def catalogue_csv(path: Path, rows: int, price: str) -> Path:
    """``rows`` drugs of class 乙 with a price cap; ``price`` differs between versions so every row changes."""
    lines = [HEADER] + [f"XB{n:021d},基准测试药品{n},101,09,02,0.1,{price},,,,,1,10mg*{n % 50 + 1}片,片剂,盒,"
                        f"基准制药有限公司{n % 97},2026-01-01,," for n in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"n": len(values), "mean_ms": round(statistics.fmean(values) * 1000, 2), "p50_ms": at(0.50), "p95_ms": at(0.95),
            "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


def timed(client: Any, infno: str, input_: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    answer = client.call(infno, input_)
    elapsed = time.perf_counter() - started
    if answer.get("infcode") != 0:
        raise SystemExit(f"{infno} refused: {answer.get('err_msg')}")
    return answer, elapsed


def visits(client: Any, people: list[tuple[str, str, str]], code: str, count: int, serial: list[int]) -> dict[str, list[float]]:
    from yibao.core import clock

    times: dict[str, list[float]] = {"2201": [], "2204": [], "2207": []}
    for i in range(count):
        psn_no, certno, insutype = people[i % len(people)]
        serial[0] += 1
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}
        reg, t = timed(client, "2201", {"data": {"psn_no": psn_no, "insutype": insutype, "begntime": clock.fmt_datetime(clock.now()),
                                                 **cert,
                                                 "ipt_otp_no": f"BM{serial[0]:010d}", "atddr_no": "D37010000001", "dr_name": "医生",
                                                 "dept_code": "A03", "dept_name": "内科", "caty": "A03", "med_type": "11"}})
        times["2201"].append(t)
        mdtrt_id = reg["output"]["data"]["mdtrt_id"]
        line = {"feedetl_sn": f"BF{serial[0]:010d}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rxno": "",
                "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": code,
                "medins_list_codg": "H-" + code[:10], "det_item_fee_sumamt": Decimal("25.00"), "cnt": Decimal("1"),
                "pric": Decimal("25.00"), "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D37010000001",
                "bilg_dr_name": "医生", "hosp_appr_flag": "0"}
        times["2204"].append(timed(client, "2204", {"feedetail": [line]})[1])
        times["2207"].append(timed(client, "2207", {"data": {"psn_no": psn_no, **cert, "med_type": "11", "medfee_sumamt": Decimal("25.00"),
                                                             "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1",
                                                             "acct_used_flag": "0", "insutype": insutype}})[1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="name of this run in the results (e.g. before, after)")
    parser.add_argument("--rows", type=int, default=30_000, help="extra 1301 drugs imported")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--visits", type=int, default=120)
    parser.add_argument("--port", type=int, default=18431)
    args = parser.parse_args()

    from yibao.client import CounterClient

    work = Path(tempfile.mkdtemp(prefix="yibao-bench-cat-"))
    url = f"sqlite:///{work / 'yibao.db'}"
    env = {**os.environ, "YIBAO_DATABASE_URL": url, "YIBAO_MASTER_KEY": secrets.token_hex(16), "YIBAO_HOME": str(work)}
    run_cli(env, "demo", "--people", "600", "--seed", "7")
    run_cli(env, "catalog", "import", str(catalogue_csv(work / "v1.csv", args.rows, "12.00")))
    shown = run_cli(env, "keys", "show", HOSPITAL).split()  # access_key H… secret <hex> active schemes …
    secret = shown[shown.index("secret") + 1]
    with sqlite3.connect(work / "yibao.db") as raw:
        people = raw.execute("SELECT p.psn_no, p.certno, e.insutype FROM person p JOIN enrolment e ON e.psn_no = p.psn_no "
                             "WHERE e.insuplc_admdvs = '370100' AND e.psn_insu_stas = '1' AND e.insutype IN ('310', '390') "
                             "AND e.cvlserv_flag = '0' "
                             "ORDER BY p.psn_no LIMIT 300").fetchall()
        code = raw.execute("SELECT med_list_codg FROM catalog_item WHERE chrgitm_lv = '01' AND list_type = '102' AND enddate IS NULL "
                           "AND lmt_gend IS NULL AND lmt_age_min IS NULL AND lmt_age_max IS NULL AND lmt_hosp_lv IS NULL "
                           "AND pric_uplmt_fen IS NULL ORDER BY med_list_codg LIMIT 1").fetchone()[0]

    log = (work / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(args.port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        settler = CounterClient(base, HOSPITAL, secret, http=httpx.Client(base_url=base, timeout=120))
        downloader = CounterClient(base, HOSPITAL, secret, opter="0001", http=httpx.Client(base_url=base, timeout=120))
        assert settler.sign_in()["infcode"] == 0 and downloader.sign_in()["infcode"] == 0
        serial = [0]
        visits(settler, people, code, 10, serial)  # warm-up: caches, policy snapshots, connections

        # 1. downloads on an idle server
        first, first_s = timed(downloader, "1301", {"data": {"ver": "0"}})
        repeated = [timed(downloader, "1301", {"data": {"ver": "0"}})[1] for _ in range(args.repeats)]
        out = first["output"]
        started = time.perf_counter()
        fetched = downloader.call("9102", {"fsDownloadIn": {"file_qury_no": out["file_qury_no"], "filename": out["filename"],
                                                            "fixmedins_code": HOSPITAL}})
        fetch_s = time.perf_counter() - started
        assert fetched.get("file"), fetched

        # 2. settlements alone
        alone = visits(settler, people, code, args.visits, serial)

        # 3. a new version, then settlements while another counter downloads 1301 again and again
        run_cli(env, "catalog", "import", str(catalogue_csv(work / "v2.csv", args.rows, "13.00")))
        stop = threading.Event()
        downloads: list[float] = []

        def download_loop() -> None:
            while not stop.is_set():
                downloads.append(timed(downloader, "1301", {"data": {"ver": "0"}})[1])

        thread = threading.Thread(target=download_loop)
        thread.start()
        time.sleep(0.05)  # the first (building) download is under way when the settlements start
        contended = visits(settler, people, code, args.visits, serial)
        stop.set()
        thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    import yibao

    result = {
        "code": str(Path(yibao.__file__).parent),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "load_1m": round(os.getloadavg()[0], 2)},
        "engine": "sqlite (demo database: synchronous=NORMAL), one server worker",
        "catalogue_rows_1301": out["data_cnt"],
        "file_bytes": len(fetched["file"]),
        "download_1301_idle": {"first_ms": round(first_s * 1000, 2), "repeated": percentiles(repeated)},
        "fetch_9102_ms": round(fetch_s * 1000, 2),
        "settlements_alone": {infno: percentiles(t) for infno, t in alone.items()},
        "settlements_during_downloads": {infno: percentiles(t) for infno, t in contended.items()},
        "downloads_during_settlements": {"first_after_new_version_ms": round(downloads[0] * 1000, 2) if downloads else None,
                                         "all": percentiles(downloads)},
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[args.label] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(existing, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
