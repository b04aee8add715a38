"""The national-day benchmark: a day's mix of counter traffic through the real HTTP gateway.

    .venv/bin/python bench/national_day.py --people 1000000 --seconds 60 --clients 8
    .venv/bin/python bench/national_day.py --database-url postgresql://…   # the same on PostgreSQL

Builds (or reuses) a synthetic region, starts `yibao serve`, activates e-credentials for a pool of
patients, and runs concurrent signed clients for a fixed time with the mix of issue 5:
outpatient 85% (the phone's code, 1162 decode, 1101 with the ecToken, 2201, 2204, 2207), pharmacy
10% (2102), inpatient 5% (2401, 2301, 2402, 2304), reversals 1% (2208). It reports complete
settlements per second, latency percentiles per transaction, server CPU and memory and the
database size, and writes JSON, a markdown table and a PNG chart to bench/results/.
Bounded in time and sent only to 127.0.0.1; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import signal
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
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / "data"
SEED = 20261122
HOSPITALS = [f"H370100{n:05d}" for n in range(1, 61)]
PHARMACIES = [f"P370100{n:05d}" for n in range(61, 81)]


def ensure_region(people: int, database_url: str | None) -> str:
    if database_url:
        env = {**os.environ, "YIBAO_DATABASE_URL": database_url}
        from yibao.store.db import make_engine
        from yibao.store.migrate import is_empty

        engine = make_engine(database_url)
        empty = is_empty(engine)
        engine.dispose()
        if empty:
            subprocess.run([sys.executable, "-m", "yibao", "demo", "--people", str(people), "--seed", str(SEED)], env=env, check=True)
        return database_url
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"region-{people}.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        print(f"building a region of {people:,} people in {path} …", flush=True)
        subprocess.run([sys.executable, "-m", "yibao", "demo", "--people", str(people), "--seed", str(SEED)],
                       env={**os.environ, "YIBAO_DATABASE_URL": url}, check=True)
    return url


def start_server(url: str, port: int, workers: int, log: Path, synchronous: str = "") -> subprocess.Popen:
    # every simulated phone activates from this one address: lift the per-IP limits that would stop a real flood
    env = {**os.environ, "YIBAO_DATABASE_URL": url, "YIBAO_DEMO_SEED": str(SEED), "YIBAO_RATE_ACTIVATION_IP": "1000000",
           "YIBAO_RATE_SIGN_IN_IP": "1000000"}
    if synchronous:  # SQLite: FULL (production's default) or NORMAL (a demo's)
        env["YIBAO_SQLITE_SYNCHRONOUS"] = synchronous
    proc = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def patients(url: str, count: int) -> list[dict[str, str]]:
    from sqlalchemy import select

    from yibao.core import clock
    from yibao.registry.models import Enrolment, Person
    from yibao.store.db import Database

    db = Database(url)
    with db.unit_of_work(write=False) as session:
        top = session.scalar(select(Person.psn_no).order_by(Person.psn_no.desc()).limit(1))
        rng = random.Random(SEED)
        # spread the pool over the whole region (psn_no is region + sequence)
        picks = {f"370100{rng.randrange(1, int(top[6:]) + 1):014d}" for _ in range(count * 6)}
        rows = session.execute(select(Person.psn_no, Person.certno, Person.psn_name, Enrolment.insutype)
                               .join(Enrolment, Enrolment.psn_no == Person.psn_no)
                               .where(Person.psn_no.in_(sorted(picks)), Enrolment.insutype.in_(("310", "390")),
                                      Enrolment.psn_insu_stas == "1", Person.brdy < clock.today().replace(year=clock.today().year - 18))
                               ).all()
    db.dispose()
    return [{"psn_no": p, "certno": c, "name": n, "insutype": i} for p, c, n, i in rows[:count]]


def activate(base: str, pool: list[dict[str, str]]) -> None:
    from yibao.credential.realperson import demo_face

    with httpx.Client(base_url=base, timeout=30) as http:
        for p in pool:
            reply = http.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": p["certno"], "name": p["name"],
                                                           "password": "135790", "face": demo_face(p["certno"]), "liveness": 0.99})
            if reply.status_code != 201:
                continue
            p["token"], p["device_id"] = reply.json()["token"], reply.json()["device_id"]


class LeanHTTP:
    """A keep-alive HTTP/1.1 client on a bare socket: the few POSTs the counters make, at a fraction of
    httpx's (or http.client's) CPU, because in this benchmark the clients share the machine with the server."""

    class Reply:
        def __init__(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.status_code, self.headers, self.content = status, headers, content

        def raise_for_status(self) -> None:
            if self.status_code >= 400:
                raise RuntimeError(f"HTTP {self.status_code}: {self.content[:200]!r}")

        def json(self) -> Any:
            return json.loads(self.content)

    def __init__(self, base: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._host = f"{self._address[0]}:{self._address[1]}"
        self._sock: Any = None
        self._buffer = b""

    def _recv(self) -> None:
        chunk = self._sock.recv(262144)
        if not chunk:
            raise ConnectionResetError("server closed the connection")
        self._buffer += chunk

    def _exchange(self, request: bytes) -> LeanHTTP.Reply:
        import socket

        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=30)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        self._sock.sendall(request)
        while b"\r\n\r\n" not in self._buffer:
            self._recv()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            size = int(headers["content-length"])
            while len(self._buffer) < size:
                self._recv()
            body, self._buffer = self._buffer[:size], self._buffer[size:]
        else:  # chunked
            parts = []
            while True:
                while b"\r\n" not in self._buffer:
                    self._recv()
                size_line, _, self._buffer = self._buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self._buffer) < size + 2:
                    self._recv()
                parts.append(self._buffer[:size])
                self._buffer = self._buffer[size + 2:]
                if size == 0:
                    break
            body = b"".join(parts)
        if headers.get("connection", "").lower() == "close":
            self._sock.close()
            self._sock = None
        return LeanHTTP.Reply(int(status_line.split()[1]), headers, body)

    def post(self, path: str, content: bytes = b"", headers: dict[str, str] | None = None) -> LeanHTTP.Reply:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host}", f"Content-Length: {len(content)}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content
        try:
            return self._exchange(request)
        except OSError:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            raise


def gateway_secrets(url: str, codes: list[str]) -> dict[str, str]:
    """Demo secrets are random and encrypted at rest: read them once from the region's database."""
    from yibao.gateway import keys
    from yibao.store.db import Database

    db = Database(url)
    with db.unit_of_work(write=False) as session:
        found = {code: keys.active_secret(session, code) or "" for code in codes}
    db.dispose()
    return found


def client_loop(index: int, base: str, pool: list[dict[str, str]], items: list[str], deadline: float, queue: Any, nice: int,
                secrets: dict[str, str]) -> None:
    """One client process: a hospital counter and a pharmacy counter serving the pool until the deadline."""
    from yibao.client import CounterClient
    from yibao.core import clock

    rng = random.Random(index)
    if nice:
        # the counters stand in for other machines: on a shared 2-core box they must not preempt the
        # server process that holds the writers' lock (every other writer waits for it)
        os.nice(nice)
    http = LeanHTTP(base)
    hospital = CounterClient(base, HOSPITALS[index % len(HOSPITALS)], secrets[HOSPITALS[index % len(HOSPITALS)]], http=http)
    pharmacy = CounterClient(base, PHARMACIES[index % len(PHARMACIES)], secrets[PHARMACIES[index % len(PHARMACIES)]], http=http)
    hospital.sign_in()
    pharmacy.sign_in()
    cpu_started = time.process_time()
    lat: dict[str, list[float]] = {}
    counts = {"outpatient": 0, "pharmacy": 0, "inpatient": 0, "reversal": 0, "refused": 0}
    errors: list[str] = []
    last: tuple[str, str, str] | None = None
    serial = 0
    run = f"{int(time.time()) % 100_000_000:08d}"  # visit numbers unique across runs on one database

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        out = fn()
        lat.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
        return out

    def call(client: CounterClient, infno: str, body: dict[str, Any]) -> dict[str, Any] | None:
        answer = timed(infno, lambda: client.call(infno, body))
        if answer.get("infcode") != 0:
            counts["refused"] += 1
            if len(errors) < 10:
                errors.append(f"{infno}: {answer.get('err_msg')}")
            return None
        return answer["output"]

    def lines(mdtrt_id: str, psn_no: str, n: int) -> tuple[list[dict[str, Any]], Decimal]:
        nonlocal serial
        out, total = [], Decimal(0)
        for _ in range(n):
            serial += 1
            price = Decimal(rng.randint(500, 4000)) / 100
            out.append({"feedetl_sn": f"L{serial}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "1", "med_list_codg": rng.choice(items),
                        "fee_ocur_time": clock.fmt_datetime(clock.now()), "det_item_fee_sumamt": price, "cnt": 1, "pric": price,
                        "rxno": f"RX{serial}"})
            total += price
        return out, total

    while time.time() < deadline:
        p = rng.choice(pool)
        roll = rng.random()
        serial += 1
        if roll < 0.01 and last:
            if call(hospital, "2208", {"data": {"setl_id": last[0], "mdtrt_id": last[1], "psn_no": last[2]}}) is not None:
                counts["reversal"] += 1
            last = None
        elif roll < 0.11:
            drugs, total = lines("", p["psn_no"], rng.randint(1, 3))
            out = call(pharmacy, "2102", {"data": {"psn_no": p["psn_no"], "insutype": p["insutype"], "mdtrt_cert_type": "02",
                                                   "mdtrt_cert_no": p["certno"], "medfee_sumamt": total, "acct_used_flag": "1",
                                                   "ipt_otp_no": f"YD{run}-{index}-{serial}"},
                                          "drugdetail": [{k: v for k, v in d.items() if k not in ("mdtrt_id", "psn_no")} for d in drugs]})
            counts["pharmacy"] += out is not None
        elif roll < 0.16:
            cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"]}
            adm = call(hospital, "2401", {"mdtrtinfo": {"psn_no": p["psn_no"], "insutype": p["insutype"], **cert, "med_type": "21",
                                                        "ipt_no": f"ZY{run}-{index}-{serial}", "begntime": clock.fmt_datetime(clock.now())}})
            if adm is None:
                continue
            mdtrt_id = adm["result"]["mdtrt_id"]
            fee, total = lines(mdtrt_id, p["psn_no"], rng.randint(4, 10))
            if call(hospital, "2301", {"feedetail": fee}) is None:
                call(hospital, "2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": p["psn_no"]}})
                continue
            call(hospital, "2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": p["psn_no"], "endtime": clock.fmt_datetime(clock.now())}})
            out = call(hospital, "2304", {"data": {"psn_no": p["psn_no"], **cert, "medfee_sumamt": total, "mdtrt_id": mdtrt_id,
                                                   "insutype": p["insutype"], "acct_used_flag": "1", "psn_setlway": "01"}})
            counts["inpatient"] += out is not None
        else:
            if "token" not in p:
                continue
            code = timed("code", lambda: http.post(f"/api/v1/people/{p['psn_no']}/codes?svg=false",
                                                   headers={"authorization": f"Bearer {p['token']}"}).json().get("code"))
            decoded = call(hospital, "1162", {"data": {"ecQrCode": code or "", "businessType": "01101"}})
            if decoded is None:
                continue
            token = decoded["ecToken"]
            cert = {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}
            if call(hospital, "1101", {"data": {**cert, "psn_cert_type": "01"}}) is None:
                continue
            reg = call(hospital, "2201", {"data": {"psn_no": p["psn_no"], "insutype": p["insutype"], **cert,
                                                   "begntime": clock.fmt_datetime(clock.now()), "ipt_otp_no": f"MZ{run}-{index}-{serial}"}})
            if reg is None:
                continue
            mdtrt_id = reg["data"]["mdtrt_id"]
            fee, total = lines(mdtrt_id, p["psn_no"], rng.randint(1, 4))
            if call(hospital, "2204", {"feedetail": fee}) is None:
                continue
            # the account pays up to the region's no-password threshold; larger bills pay cash
            out = call(hospital, "2207", {"data": {"psn_no": p["psn_no"], **cert, "med_type": "11", "medfee_sumamt": total,
                                                   "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "1",
                                                   "acct_used_flag": "1" if total <= 100 else "0", "insutype": p["insutype"]}})
            if out is not None:
                counts["outpatient"] += 1
                last = (out["setlinfo"]["setl_id"], mdtrt_id, p["psn_no"])
    queue.put({"latencies": lat, "counts": counts, "errors": errors, "cpu_s": time.process_time() - cpu_started})


def sample_server(pid: int, stop: threading.Event, out: dict[str, Any]) -> None:
    import psutil

    root = psutil.Process(pid)
    cpu, rss = [], []
    procs: dict[int, Any] = {}
    while not stop.is_set():
        current = [root, *root.children(recursive=True)]
        total_cpu = 0.0
        for p in current:
            if p.pid not in procs:
                procs[p.pid] = p
                p.cpu_percent(None)  # the first reading only starts the clock
                continue
            try:
                total_cpu += procs[p.pid].cpu_percent(None)
            except psutil.Error:
                pass
        try:
            rss.append(sum(p.memory_info().rss for p in current) / 2**20)
        except psutil.Error:
            pass
        cpu.append(total_cpu)
        stop.wait(1.0)
    out["server_cpu_percent_mean"] = round(sum(cpu[2:]) / max(1, len(cpu[2:])), 1)
    out["server_rss_mb_max"] = round(max(rss or [0]), 1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 2) if ordered else 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = ensure_region(args.people, args.database_url)
    engine = "postgresql" if url.startswith("postgresql") else "sqlite"
    args.workers = args.workers or (2 if engine == "postgresql" else 1)
    port = args.port
    log = Path(tempfile.mkdtemp(prefix="yibao-bench-")) / "server.log"
    server = start_server(url, port, args.workers, log, args.synchronous)
    base = f"http://127.0.0.1:{port}"
    try:
        pool = patients(url, args.pool)
        activate(base, pool[: args.activated])
        from yibao.store.db import Database

        db = Database(url)
        with db.unit_of_work(write=False) as session:
            from sqlalchemy import select

            from yibao.codes.models import CatalogItem

            items = list(session.scalars(select(CatalogItem.med_list_codg).where(CatalogItem.enddate.is_(None), CatalogItem.chrgitm_lv != "03",
                                                                                 CatalogItem.lmt_hosp_lv.is_(None), CatalogItem.lmt_gend.is_(None),
                                                                                 CatalogItem.lmt_age_min.is_(None), CatalogItem.lmt_age_max.is_(None))))
        db.dispose()
        queue: Any = mp.get_context("spawn").Queue()
        deadline = time.time() + args.seconds
        stop, sampled = threading.Event(), {}
        sampler = threading.Thread(target=sample_server, args=(server.pid, stop, sampled), daemon=True)
        sampler.start()
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=client_loop, args=(i, base, pool[i::args.clients], items, deadline, queue, args.client_nice,
                                                                 gateway_secrets(url, HOSPITALS + PHARMACIES))) for i in range(args.clients)]
        started = time.time()
        for p in procs:
            p.start()
        results = [queue.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        elapsed = time.time() - started
        stop.set()
        sampler.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    lat: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    errors: list[str] = []
    client_cpu_s = sum(r["cpu_s"] for r in results)
    for r in results:
        for k, v in r["latencies"].items():
            lat.setdefault(k, []).extend(v)
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
        errors += r["errors"]
    size = 0
    if engine == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    else:
        from sqlalchemy import text

        from yibao.store.db import Database

        pg = Database(url)
        with pg.unit_of_work(write=False) as session:
            size = int(session.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)
        pg.dispose()
    settlements = counts["outpatient"] + counts["pharmacy"] + counts["inpatient"]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", "when": time.strftime("%Y-%m-%d %H:%M"),
        "engine": engine, "people": args.people, "server_workers": args.workers, "client_processes": args.clients, "client_nice": args.client_nice, "tag": args.tag,
        "sqlite_synchronous": (args.synchronous or "NORMAL (demo default)") if engine == "sqlite" else None, "seconds": round(elapsed, 1),
        "outpatient_settlements_per_s": round(counts["outpatient"] / elapsed, 1), "all_settlements_per_s": round(settlements / elapsed, 1),
        "counts": counts, "errors": errors[:10],
        "latency_ms": {k: {"n": len(v), "p50": percentile(v, .5), "p95": percentile(v, .95), "p99": percentile(v, .99),
                           "max": round(max(v), 2)} for k, v in sorted(lat.items())},
        **sampled, "database_mb": round(size / 2**20, 1), "client_cpu_percent_mean": round(client_cpu_s / elapsed * 100, 1),
    }


def write(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"national_day-{result['engine']}-{result['people']}{'-' + result['tag'] if result.get('tag') else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    rows = [f"| {k} | {v['n']:,} | {v['p50']} | {v['p95']} | {v['p99']} | {v['max']} |" for k, v in result["latency_ms"].items()]
    table = "\n".join([
        f"**{result['engine']}, {result['people']:,} people, {result['server_workers']} server workers, {result['client_processes']} client processes, "
        f"{result['seconds']} s on {result['machine']} ({result['when']})**", "",
        f"complete outpatient settlements/s: **{result['outpatient_settlements_per_s']}**; all settlements/s: {result['all_settlements_per_s']}; "
        f"server CPU {result.get('server_cpu_percent_mean', '?')}% and client CPU {result.get('client_cpu_percent_mean', '?')}% (of 200%), server RSS {result.get('server_rss_mb_max', '?')} MB, "
        f"database {result['database_mb']} MB", "",
        "| call | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|", *rows, ""])
    stem.with_suffix(".md").write_text(table)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(result["latency_ms"])
        fig, ax = plt.subplots(figsize=(9, 4))
        for i, (p, colour) in enumerate((("p50", "#0a8f6a"), ("p95", "#f0a500"), ("p99", "#c0392b"))):
            ax.bar([x + i * 0.27 for x in range(len(names))], [result["latency_ms"][n][p] for n in names], width=0.27, label=p, color=colour)
        ax.set_xticks([x + 0.27 for x in range(len(names))], names)
        ax.set_ylabel("ms")
        ax.set_title(f"yibao national-day mix: {result['engine']}, {result['people']:,} people, "
                     f"{result['outpatient_settlements_per_s']} outpatient settlements/s")
        ax.legend()
        fig.tight_layout()
        fig.savefig(stem.with_suffix(".png"), dpi=110)
    except ImportError:
        pass
    return stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0,
                        help="server worker processes; 0: one on SQLite (one writer at a time: a second worker only adds contention, "
                             "measured), two on PostgreSQL")
    parser.add_argument("--pool", type=int, default=600, help="patients drawn from the region")
    parser.add_argument("--activated", type=int, default=200, help="patients with an activated e-credential (outpatient visits)")
    parser.add_argument("--client-nice", type=int, default=10, help="scheduling niceness of the client processes (0: same as the server)")
    parser.add_argument("--tag", default="", help="suffix for the result files (e.g. light)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="",
                        help="SQLite: FULL (production: an acknowledged settlement survives a power cut) or NORMAL (the demo's default)")
    parser.add_argument("--port", type=int, default=18766)
    args = parser.parse_args()
    result = run(args)
    stem = write(result)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
