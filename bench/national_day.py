"""The national-day benchmark: a day's mix of counter traffic through the real HTTP gateway.

    .venv/bin/python bench/national_day.py --people 1000000 --seconds 60 --clients 8
    .venv/bin/python bench/national_day.py --database-url postgresql://…   # the same on PostgreSQL
    .venv/bin/python bench/compare.py                                      # two code versions, alternating rounds

Builds (or reuses) a synthetic region, starts `yibao serve`, activates e-credentials for a pool of
patients, and runs concurrent signed client processes for a fixed time. Every client iteration draws
the kind of visit by weight from the mix of issue 5 (MIX: outpatient 85% with the phone's code, 1162,
1101 by ecToken, 2201, 2204, 2207; pharmacy 10%, 2102; inpatient 5%, 2401, 2301, 2402, 2304), then
walks it; 1% of completed outpatient settlements are then reversed (2208), outside the mix. The
result records the requested mix and the achieved one (visits attempted and completed per kind).

Figures, each labelled with where it was measured:
- client-side latency per call and per whole visit (the counters' wall clock, HTTP included);
- server-side time per transaction from the server's own histogram (`yibao_gateway_seconds` in
  /metrics, scraped before and after the run): count, exact mean, and p50/p95/p99 estimated from the
  histogram's buckets (linear within a bucket, as Prometheus' histogram_quantile does);
- the server process tree's CPU seconds (psutil, before and after), outpatient visits/s and outpatient
  visits per server CPU-second; the machine's state (load, CPU model, other processes' CPU share).

Writes JSON, a markdown table and a PNG chart to bench/results/. Bounded in time, sent only to
127.0.0.1; it stops by itself. The harness talks to the code under test only through its CLI, HTTP
and SQL on the region's tables, so bench/compare.py can point the server at another version's source
(`--server-src`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
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
# the national day's mix, by visits: each client iteration draws one kind with these weights
MIX: dict[str, float] = {"outpatient": 0.85, "pharmacy": 0.10, "inpatient": 0.05}
REVERSAL_RATE = 0.01  # a completed outpatient settlement is then reversed (2208) this often; not a kind of visit
SERVER_HISTOGRAM = "yibao_gateway_seconds"


def choose_kind(rng: random.Random, mix: Mapping[str, float] = MIX) -> str:
    """One weighted draw: the kind of visit a client iteration walks (the mix holds whatever the paths cost)."""
    roll = rng.random() * sum(mix.values())
    for kind, weight in mix.items():
        roll -= weight
        if roll < 0:
            return kind
    return next(reversed(mix))  # roll == total after rounding


def mix_table(mix: Mapping[str, float], attempted: Mapping[str, int], completed: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Requested share against achieved share, per kind: by visits attempted and by visits completed."""
    total_attempted, total_completed = sum(attempted.get(k, 0) for k in mix), sum(completed.get(k, 0) for k in mix)
    return {kind: {"requested_percent": round(weight / sum(mix.values()) * 100, 2),
                   "attempted": attempted.get(kind, 0), "completed": completed.get(kind, 0),
                   "attempted_percent": round(attempted.get(kind, 0) / total_attempted * 100, 2) if total_attempted else 0.0,
                   "achieved_percent": round(completed.get(kind, 0) / total_completed * 100, 2) if total_completed else 0.0}
            for kind, weight in mix.items()}


# -- the code under test: its source, its CLI, its region ---------------------------------------------------------------

def code_env(server_src: str | None) -> dict[str, str]:
    """The environment of every process that runs the code under test (server, CLI): its source first on the path."""
    env = dict(os.environ)
    if server_src:
        env["PYTHONPATH"] = str(Path(server_src).resolve()) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def code_identity(env: Mapping[str, str]) -> dict[str, Any]:
    """Which yibao the server imports (run with the server's interpreter and environment), and that tree's commit."""
    found = subprocess.run([sys.executable, "-c", "import yibao; print(yibao.__file__)"], env=dict(env), capture_output=True,
                           text=True, check=True).stdout.strip()
    tree = Path(found).resolve().parents[2]
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "--", "src"],
                           capture_output=True, text=True).stdout.splitlines()
    return {"yibao_file": found, "commit": commit, "uncommitted_src_files": len(dirty)}


def ensure_region(people: int, database_url: str | None, env: Mapping[str, str] | None = None, region_file: Path | None = None) -> str:
    env = env if env is not None else os.environ
    demo = [sys.executable, "-m", "yibao", "demo", "--people", str(people), "--seed", str(SEED)]
    if database_url:
        from sqlalchemy import create_engine, inspect

        engine = create_engine(database_url)
        empty = "person" not in inspect(engine).get_table_names()
        engine.dispose()
        if empty:
            subprocess.run(demo, env={**env, "YIBAO_DATABASE_URL": database_url}, check=True)
        return database_url
    path = region_file or DATA / f"region-{people}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    if not path.exists():
        print(f"building a region of {people:,} people in {path} …", flush=True)
        secrets_cache(url).unlink(missing_ok=True)
        subprocess.run(demo, env={**env, "YIBAO_DATABASE_URL": url}, check=True)
    return url


def start_server(url: str, port: int, workers: int, log: Path, synchronous: str = "", env: Mapping[str, str] | None = None
                 ) -> subprocess.Popen:
    # every simulated phone activates from this one address: lift the per-IP limits that would stop a real flood
    env = {**(env or os.environ), "YIBAO_DATABASE_URL": url, "YIBAO_DEMO_SEED": str(SEED), "YIBAO_RATE_ACTIVATION_IP": "1000000",
           "YIBAO_RATE_SIGN_IN_IP": "1000000"}
    if synchronous:  # SQLite: FULL (production's default) or NORMAL (a demo's)
        env["YIBAO_SQLITE_SYNCHRONOUS"] = synchronous
    proc = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--port", str(port), "--workers", str(workers)], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def patients(url: str, count: int) -> list[dict[str, str]]:
    """Adults insured in 310/390, spread over the whole region (psn_no is region + sequence); plain SQL on the
    registry's tables, so the same harness serves every version of the code."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    adult = dt.date.today().replace(month=1, day=1) - dt.timedelta(days=366 * 19)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(psn_no) FROM person")).scalar_one()
        rng = random.Random(SEED)
        picks = sorted({f"370100{rng.randrange(1, int(top[6:]) + 1):014d}" for _ in range(count * 6)})
        rows = conn.execute(text("SELECT p.psn_no, p.certno, p.psn_name, e.insutype FROM person p JOIN enrolment e ON e.psn_no = p.psn_no "
                                 "WHERE p.psn_no IN :picks AND e.insutype IN ('310', '390') AND e.psn_insu_stas = '1' AND p.brdy < :adult "
                                 "ORDER BY p.psn_no, e.insutype").bindparams(bindparam("picks", expanding=True)),
                            {"picks": picks, "adult": adult}).all()
    engine.dispose()
    seen: set[str] = set()
    pool = []
    for psn_no, certno, name, insutype in rows:
        if psn_no not in seen:  # one visit pool entry a person
            seen.add(psn_no)
            pool.append({"psn_no": psn_no, "certno": certno, "name": name, "insutype": insutype})
    return pool[:count]


def catalogue_items(url: str) -> list[str]:
    """Items any adult may be billed for anywhere: current, not self-paid class 03, no hospital-level, sex or age limit."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        items = list(conn.execute(text("SELECT med_list_codg FROM catalog_item WHERE enddate IS NULL AND chrgitm_lv != '03' "
                                       "AND lmt_hosp_lv IS NULL AND lmt_gend IS NULL AND lmt_age_min IS NULL AND lmt_age_max IS NULL "
                                       "ORDER BY med_list_codg")).scalars())
    engine.dispose()
    return items


def secrets_cache(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///") + ".secrets.json")


def gateway_secrets(url: str, codes: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """Demo secrets are random and encrypted at rest: `yibao keys show` (the code under test's CLI) reads them; a
    SQLite region keeps them in a file beside it (bench/data is not committed), so later rounds skip the CLI."""
    cache = secrets_cache(url) if url.startswith("sqlite") else None
    found: dict[str, str] = json.loads(cache.read_text()) if cache and cache.exists() else {}
    for code in codes:
        if code in found:
            continue
        shown = subprocess.run([sys.executable, "-m", "yibao", "keys", "show", code], env={**env, "YIBAO_DATABASE_URL": url},
                               capture_output=True, text=True, check=True).stdout
        active = [line.split() for line in shown.splitlines() if " active" in line]
        found[code] = active[0][3] if active else ""
    if cache:
        cache.write_text(json.dumps(found))
    return {code: found[code] for code in codes}


def activate(base: str, pool: list[dict[str, str]]) -> None:
    """The phones: activate an e-credential with the demo's deterministic face (asked of the server)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        for p in pool:
            face = http.get("/api/v1/demo/face", params={"certno": p["certno"]})
            if face.status_code != 200:
                continue
            reply = http.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": p["certno"], "name": p["name"],
                                                           "password": "135790", "face": face.json()["face"], "liveness": 0.99})
            if reply.status_code != 201:
                continue
            p["token"], p["device_id"] = reply.json()["token"], reply.json()["device_id"]


# -- what the server says about itself ----------------------------------------------------------------------------------

def parse_histogram(exposition: str, name: str = SERVER_HISTOGRAM) -> dict[str, dict[str, Any]]:
    """The Prometheus text exposition's histogram ``name`` by infno: cumulative buckets, count and sum (seconds)."""
    out: dict[str, dict[str, Any]] = {}
    line_re = re.compile(r'^' + re.escape(name) + r'_(bucket|count|sum)\{([^}]*)\} ([0-9.eE+-]+|NaN|\+Inf)$')
    for line in exposition.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        entry = out.setdefault(labels.get("infno", ""), {"buckets": {}, "count": 0.0, "sum": 0.0})
        if m.group(1) == "bucket":
            entry["buckets"][float(labels["le"])] = float(m.group(3))
        else:
            entry[m.group(1)] = float(m.group(3))
    return out


def histogram_delta(after: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for infno, a in after.items():
        b = before.get(infno, {"buckets": {}, "count": 0.0, "sum": 0.0})
        count = a["count"] - b["count"]
        if count > 0:
            out[infno] = {"buckets": {le: n - b["buckets"].get(le, 0.0) for le, n in a["buckets"].items()}, "count": count,
                          "sum": a["sum"] - b["sum"]}
    return out


def bucket_quantile(buckets: Mapping[float, float], q: float) -> float:
    """The q-quantile of cumulative ``buckets`` {upper bound: count}, interpolated linearly inside its bucket (as
    Prometheus' histogram_quantile). In the +Inf bucket it is the highest finite bound: a lower bound, not an estimate."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            inside = buckets[le] - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, buckets[le]
    return lower


def server_side(delta: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {infno: {"n": int(h["count"]), "mean": round(h["sum"] / h["count"] * 1000, 3),
                    **{f"p{int(q * 100)}": round(bucket_quantile(h["buckets"], q) * 1000, 2) for q in (0.5, 0.95, 0.99)}}
            for infno, h in sorted(delta.items())}


def scrape(base: str) -> str:
    return httpx.get(f"{base}/metrics", timeout=10).text


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, including children it has reaped."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in (root, *root.children(recursive=True)):
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's postmaster (its backends, WAL writer, checkpointer… are its children), found from the
    cluster's data directory; None when it cannot be read (another machine, no superuser, not this user's files)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            data = conn.execute(text("SELECT current_setting('data_directory')")).scalar_one()
        return int((Path(data) / "postmaster.pid").read_text().split()[0])
    except Exception:  # noqa: BLE001 - the figure is optional: without it the run still measures the server
        return None
    finally:
        engine.dispose()


def database_settings(url: str) -> dict[str, str]:
    """The PostgreSQL settings that decide what an acknowledged commit costs, as the server reports them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: conn.execute(text(f"SELECT current_setting('{name}')")).scalar_one()
                    for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
                                 "shared_buffers", "max_connections")}
    finally:
        engine.dispose()


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"description": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", "cpu_model": model,
            "cores": os.cpu_count(), "python": platform.python_version()}


def system_cpu() -> Any:
    import psutil

    return psutil.cpu_times()


def system_share(before: Any, after: Any, own_cpu_s: float, elapsed: float) -> dict[str, float]:
    """Of the machine's capacity over the run (cores × seconds): busy by anyone, by this benchmark, by other processes, stolen."""
    capacity = elapsed * (os.cpu_count() or 1)
    fields = before._fields
    delta = {f: getattr(after, f) - getattr(before, f) for f in fields}
    idle = delta.get("idle", 0.0) + delta.get("iowait", 0.0)
    steal = delta.get("steal", 0.0)
    busy = sum(delta.values()) - idle - steal - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
    return {"busy_percent": round(busy / capacity * 100, 1), "benchmark_percent": round(own_cpu_s / capacity * 100, 1),
            "other_processes_percent": round(max(0.0, busy - own_cpu_s) / capacity * 100, 1),
            "steal_percent": round(steal / capacity * 100, 1)}


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


def client_loop(index: int, base: str, pool: list[dict[str, str]], items: list[str], seconds: float, ready: Any, go: Any,
                queue: Any, nice: int, secrets: dict[str, str]) -> None:
    """One client process: a hospital counter and a pharmacy counter. Each iteration draws the kind of visit from MIX
    and walks it; the run starts for every client at once (``go``) and lasts ``seconds``."""
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
    for counter in (hospital, pharmacy):
        signed = counter.sign_in()
        if signed.get("infcode") != 0:
            raise RuntimeError(f"9001 sign-in of {counter.fixmedins_code} refused: {signed.get('err_msg')}")
    phones = [p for p in pool if "token" in p]  # an outpatient visit starts with the phone's code
    lat: dict[str, list[float]] = {}
    visit_ms: dict[str, list[float]] = {}
    attempted = {kind: 0 for kind in MIX}
    completed = {kind: 0 for kind in MIX}
    reversals = {"attempted": 0, "completed": 0}
    refused: dict[str, int] = {}
    errors: list[str] = []
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
            refused[infno] = refused.get(infno, 0) + 1
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
            out.append({"feedetl_sn": f"L{serial}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "1",
                        "med_list_codg": rng.choice(items),
                        "fee_ocur_time": clock.fmt_datetime(clock.now()), "det_item_fee_sumamt": price, "cnt": 1, "pric": price,
                        "rxno": f"RX{serial}"})
            total += price
        return out, total

    def pharmacy_visit(p: dict[str, str]) -> bool:
        drugs, total = lines("", p["psn_no"], rng.randint(1, 3))
        return call(pharmacy, "2102", {"data": {"psn_no": p["psn_no"], "insutype": p["insutype"], "mdtrt_cert_type": "02",
                                                "mdtrt_cert_no": p["certno"], "medfee_sumamt": total, "acct_used_flag": "1",
                                                "ipt_otp_no": f"YD{run}-{index}-{serial}"},
                                       "drugdetail": [{k: v for k, v in d.items() if k not in ("mdtrt_id", "psn_no")}
                                                      for d in drugs]}) is not None

    def inpatient_visit(p: dict[str, str]) -> bool:
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"]}
        adm = call(hospital, "2401", {"mdtrtinfo": {"psn_no": p["psn_no"], "insutype": p["insutype"], **cert, "med_type": "21",
                                                    "ipt_no": f"ZY{run}-{index}-{serial}", "begntime": clock.fmt_datetime(clock.now())}})
        if adm is None:
            return False
        mdtrt_id = adm["result"]["mdtrt_id"]
        fee, total = lines(mdtrt_id, p["psn_no"], rng.randint(4, 10))
        if call(hospital, "2301", {"feedetail": fee}) is None:
            call(hospital, "2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": p["psn_no"]}})
            return False
        discharge = {"mdtrt_id": mdtrt_id, "psn_no": p["psn_no"], "endtime": clock.fmt_datetime(clock.now())}
        if call(hospital, "2402", {"dscginfo": discharge}) is None:
            return False
        return call(hospital, "2304", {"data": {"psn_no": p["psn_no"], **cert, "medfee_sumamt": total, "mdtrt_id": mdtrt_id,
                                                "insutype": p["insutype"], "acct_used_flag": "1", "psn_setlway": "01"}}) is not None

    def outpatient_visit(p: dict[str, str]) -> bool:
        code = timed("code", lambda: http.post(f"/api/v1/people/{p['psn_no']}/codes?svg=false",
                                               headers={"authorization": f"Bearer {p['token']}"}).json().get("code"))
        decoded = call(hospital, "1162", {"data": {"ecQrCode": code or "", "businessType": "01101"}})
        if decoded is None:
            return False
        cert = {"mdtrt_cert_type": "01", "mdtrt_cert_no": decoded["ecToken"]}
        if call(hospital, "1101", {"data": {**cert, "psn_cert_type": "01"}}) is None:
            return False
        reg = call(hospital, "2201", {"data": {"psn_no": p["psn_no"], "insutype": p["insutype"], **cert,
                                               "begntime": clock.fmt_datetime(clock.now()), "ipt_otp_no": f"MZ{run}-{index}-{serial}"}})
        if reg is None:
            return False
        mdtrt_id = reg["data"]["mdtrt_id"]
        fee, total = lines(mdtrt_id, p["psn_no"], rng.randint(1, 4))
        if call(hospital, "2204", {"feedetail": fee}) is None:
            return False
        # the account pays up to the region's no-password threshold; larger bills pay cash
        out = call(hospital, "2207", {"data": {"psn_no": p["psn_no"], **cert, "med_type": "11", "medfee_sumamt": total,
                                               "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "1",
                                               "acct_used_flag": "1" if total <= 100 else "0", "insutype": p["insutype"]}})
        if out is None:
            return False
        if rng.random() < REVERSAL_RATE:
            reversals["attempted"] += 1
            reversal = {"setl_id": out["setlinfo"]["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": p["psn_no"]}
            reversed_ = call(hospital, "2208", {"data": reversal})
            reversals["completed"] += reversed_ is not None
        return True

    walk = {"outpatient": outpatient_visit, "pharmacy": pharmacy_visit, "inpatient": inpatient_visit}
    ready.put(index)
    go.wait(timeout=300)
    cpu_started = time.process_time()
    deadline = time.time() + seconds
    while time.time() < deadline:
        kind = choose_kind(rng)
        serial += 1
        attempted[kind] += 1
        t0 = time.perf_counter()
        try:
            done = walk[kind](rng.choice(phones if kind == "outpatient" else pool))
        except (OSError, RuntimeError, ValueError, KeyError) as error:  # a broken connection or a malformed answer: counted, not fatal
            done = False
            if len(errors) < 10:
                errors.append(f"{kind}: {type(error).__name__}: {error}"[:300])
        if done:
            completed[kind] += 1
            visit_ms.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    queue.put({"latencies": lat, "visit_ms": visit_ms, "attempted": attempted, "completed": completed, "reversals": reversals,
               "refused": refused, "errors": errors, "cpu_s": time.process_time() - cpu_started})


def gather(queue: Any, procs: list[Any], timeout: float) -> list[Any]:
    """One message from each client process; a client that died first stops the run instead of hanging it."""
    import queue as queues

    out, deadline = [], time.time() + timeout
    while len(out) < len(procs):
        try:
            out.append(queue.get(timeout=1))
        except queues.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.time() > deadline:
                for p in procs:
                    p.terminate()
                raise SystemExit(f"client processes failed (exit codes {dead})" if dead
                                 else "client processes did not answer in time") from None
    return out


def sample_rss(pid: int, stop: threading.Event, out: dict[str, Any]) -> None:
    import psutil

    root = psutil.Process(pid)
    rss = []
    while not stop.is_set():
        try:
            rss.append(sum(p.memory_info().rss for p in (root, *root.children(recursive=True))) / 2**20)
        except psutil.Error:
            pass
        stop.wait(1.0)
    out["server_rss_mb_max"] = round(max(rss or [0]), 1)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 2) if ordered else 0.0


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, .5), "p95": percentile(values, .95), "p99": percentile(values, .99),
            "max": round(max(values), 2) if values else 0.0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    server_src = getattr(args, "server_src", None)
    env = code_env(server_src)
    identity = code_identity(env)
    if server_src and not Path(identity["yibao_file"]).resolve().is_relative_to(Path(server_src).resolve()):
        raise SystemExit(f"the server would import {identity['yibao_file']}, not the code in {server_src}")
    region_file = Path(args.region_file) if getattr(args, "region_file", None) else None
    url = ensure_region(args.people, args.database_url, env, region_file)
    engine = "postgresql" if url.startswith("postgresql") else "sqlite"
    args.workers = args.workers or (2 if engine == "postgresql" else 1)
    port = args.port
    log = Path(tempfile.mkdtemp(prefix="yibao-bench-")) / "server.log"
    load_before = os.getloadavg()
    server = start_server(url, port, args.workers, log, args.synchronous, env)
    base = f"http://127.0.0.1:{port}"
    postmaster = postmaster_pid(url) if engine == "postgresql" else None
    database_cpu_s = None
    try:
        pool = patients(url, args.pool)
        activate(base, pool[: args.activated])
        if not all(any("token" in p for p in pool[i::args.clients]) for i in range(args.clients)):
            raise SystemExit(f"a client has no patient with an e-credential (outpatient visits need one): raise --activated "
                             f"(server log: {log})")
        items = catalogue_items(url)
        codes = sorted({HOSPITALS[i % len(HOSPITALS)] for i in range(args.clients)}
                       | {PHARMACIES[i % len(PHARMACIES)] for i in range(args.clients)})
        secrets = gateway_secrets(url, codes, env)
        ctx = mp.get_context("spawn")
        queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=client_loop, args=(i, base, pool[i::args.clients], items, args.seconds, ready, go, queue,
                                                       args.client_nice, secrets)) for i in range(args.clients)]
        for p in procs:
            p.start()
        gather(ready, procs, 300)  # every counter has signed in (9001): the measured window starts now for all of them
        metrics_before = parse_histogram(scrape(base))
        stop, sampled = threading.Event(), {}
        sampler = threading.Thread(target=sample_rss, args=(server.pid, stop, sampled), daemon=True)
        sampler.start()
        database_before = tree_cpu_s(postmaster) if postmaster else 0.0
        harness_before, server_before, system_before = time.process_time(), tree_cpu_s(server.pid), system_cpu()
        started = time.time()
        go.set()
        results = gather(queue, procs, args.seconds + 300)
        elapsed = time.time() - started
        server_cpu_s = tree_cpu_s(server.pid) - server_before
        if postmaster:
            database_cpu_s = tree_cpu_s(postmaster) - database_before
        system_after, harness_cpu_s = system_cpu(), time.process_time() - harness_before
        stop.set()
        sampler.join()
        metrics_after = parse_histogram(scrape(base))
        for p in procs:
            p.join(timeout=30)
    finally:
        stop_server(server)
    lat: dict[str, list[float]] = {}
    visits: dict[str, list[float]] = {}
    attempted = {kind: 0 for kind in MIX}
    completed = {kind: 0 for kind in MIX}
    reversals = {"attempted": 0, "completed": 0}
    refused: dict[str, int] = {}
    errors: list[str] = []
    client_cpu_s = sum(r["cpu_s"] for r in results)
    for r in results:
        for k, v in r["latencies"].items():
            lat.setdefault(k, []).extend(v)
        for k, v in r["visit_ms"].items():
            visits.setdefault(k, []).extend(v)
        for name, into in (("attempted", attempted), ("completed", completed), ("reversals", reversals), ("refused", refused)):
            for k, v in r[name].items():
                into[k] = into.get(k, 0) + v
        errors += r["errors"]
    size = 0
    if engine == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    else:
        from sqlalchemy import create_engine, text

        pg = create_engine(url)
        with pg.connect() as conn:
            size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)
        pg.dispose()
    outpatient = completed["outpatient"]
    settlements = sum(completed.values())
    state = machine()
    # SQLite runs inside the server process: its CPU is already the server's; PostgreSQL's processes are counted apart
    storage_cpu_s = database_cpu_s if engine == "postgresql" else 0.0
    both_cpu_s = server_cpu_s + storage_cpu_s if storage_cpu_s is not None else None
    return {
        "machine": state["description"], "cpu_model": state["cpu_model"], "when": time.strftime("%Y-%m-%d %H:%M"),
        "engine": engine, "people": args.people, "server_workers": args.workers, "client_processes": args.clients,
        "client_nice": args.client_nice,
        "tag": args.tag, "server_code": identity,
        "sqlite_synchronous": (args.synchronous or "NORMAL (demo default)") if engine == "sqlite" else None, "seconds": round(elapsed, 1),
        "mix": mix_table(MIX, attempted, completed),
        "reversals": {**reversals, "rate_requested": REVERSAL_RATE},
        "outpatient_settlements_per_s": round(outpatient / elapsed, 1), "all_settlements_per_s": round(settlements / elapsed, 1),
        "server_cpu_s": round(server_cpu_s, 2), "server_cpu_percent_mean": round(server_cpu_s / elapsed * 100, 1),
        "outpatient_visits_per_server_cpu_s": round(outpatient / server_cpu_s, 1) if server_cpu_s else None,
        "database_cpu_s": round(database_cpu_s, 2) if database_cpu_s is not None else None,
        "database_cpu_percent_mean": round(database_cpu_s / elapsed * 100, 1) if database_cpu_s is not None else None,
        "server_and_database_cpu_s": round(both_cpu_s, 2) if both_cpu_s is not None else None,
        "outpatient_visits_per_cpu_s_server_and_database": round(outpatient / both_cpu_s, 1) if both_cpu_s else None,
        "cpu_note": "server: the yibao server's process tree; database: the PostgreSQL postmaster's process tree (backends, "
                    "WAL writer, checkpointer; exited backends through the postmaster's reaped-children times); on SQLite the "
                    "database runs inside the server process, so both are the server's",
        "database_settings": database_settings(url) if engine == "postgresql" else None,
        "client_cpu_percent_mean": round(client_cpu_s / elapsed * 100, 1),
        "machine_state": {"load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()],
                          **system_share(system_before, system_after,
                                         server_cpu_s + (database_cpu_s or 0.0) + client_cpu_s + harness_cpu_s, elapsed)},
        "refused": refused, "refused_calls": sum(refused.values()), "errors": errors[:10],
        "client_latency_note": "client-side: wall clock at the counter process around one HTTP request (signing, JSON and HTTP included)",
        "client_latency_ms": {k: summary(v) for k, v in sorted(lat.items())},
        "client_visit_ms": {k: summary(v) for k, v in sorted(visits.items())},
        "server_latency_note": f"server-side: {SERVER_HISTOGRAM} from /metrics (inside the gateway service, HTTP stack excluded), "
                               "after minus before the run; mean exact, p50/p95/p99 bucket-estimated"
                               + ("; with several workers /metrics answers for one worker only" if args.workers > 1 else ""),
        "server_latency_ms": server_side(histogram_delta(metrics_after, metrics_before)),
        **sampled, "database_mb": round(size / 2**20, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    state = result["machine_state"]
    server = result.get("server_latency_ms", {})
    mix_rows = [f"| {kind} | {m['requested_percent']}% | {m['attempted']:,} | {m['attempted_percent']}% | {m['completed']:,} | "
                f"{m['achieved_percent']}% |" for kind, m in result["mix"].items()]
    code = result["server_code"]
    uncommitted = f" + {code['uncommitted_src_files']} uncommitted files" if code["uncommitted_src_files"] else ""
    cores = 100 * (os.cpu_count() or 1)
    call_rows = []
    for k, v in result["client_latency_ms"].items():
        s = server.get(k)
        side = f"{s['n']:,} | {s['mean']} | {s['p50']} | {s['p95']} | {s['p99']}" if s else "– | – | – | – | –"
        call_rows.append(f"| {k} | {v['n']:,} | {v['p50']} | {v['p95']} | {v['p99']} | {v['max']} | {side} |")
    visit_rows = [f"| {k} | {v['n']:,} | {v['p50']} | {v['p95']} | {v['p99']} |" for k, v in result["client_visit_ms"].items()]
    rev = result["reversals"]
    return "\n".join([
        f"**{result['engine']}, {result['people']:,} people, {result['server_workers']} server workers, "
        f"{result['client_processes']} client processes, {result['seconds']} s on {result['machine']} ({result['cpu_model']}), "
        f"{result['when']}; server code {code['commit']}{uncommitted}**", "",
        f"complete outpatient visits/s: **{result['outpatient_settlements_per_s']}**; "
        f"all settlements/s: {result['all_settlements_per_s']}; "
        f"outpatient visits per server CPU-second: **{result['outpatient_visits_per_server_cpu_s']}**; "
        + (f"per CPU-second of the server and PostgreSQL together: **{result['outpatient_visits_per_cpu_s_server_and_database']}** "
           f"(PostgreSQL {result['database_cpu_s']} CPU-s, {result['database_cpu_percent_mean']}%; "
           f"fsync {result['database_settings']['fsync']}, synchronous_commit {result['database_settings']['synchronous_commit']}); "
           if result.get("database_settings") else "") +
        f"server CPU {result['server_cpu_percent_mean']}% and client CPU {result['client_cpu_percent_mean']}% (of {cores}%), "
        f"server RSS {result.get('server_rss_mb_max', '?')} MB, database {result['database_mb']} MB", "",
        f"machine while it ran: load average {state['load_average_before'][0]} before, {state['load_average_after'][0]} after; "
        f"CPU busy {state['busy_percent']}% of capacity, this benchmark {state['benchmark_percent']}%, other processes "
        f"{state['other_processes_percent']}%, stolen {state['steal_percent']}%", "",
        "| kind | requested | attempted | attempted % | completed | achieved % |", "|---|---|---|---|---|---|", *mix_rows, "",
        f"reversals (2208) after {rev['rate_requested'] * 100:g}% of outpatient settlements: {rev['completed']} of {rev['attempted']}; "
        f"refused calls: {result['refused_calls']}" + "".join(f"; {e}" for e in result["errors"][:3]), "",
        "| call | client-side n | p50 ms | p95 ms | p99 ms | max ms | server-side n | mean ms | p50~ ms | p95~ ms | p99~ ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *call_rows, "",
        "client-side: the counter's wall clock around one request (signing, JSON, HTTP); server-side: `yibao_gateway_seconds` "
        "from /metrics (inside the gateway service, excluding the HTTP stack); ~ bucket-estimated. `code` is the phone's "
        "REST request, not a gateway transaction.", "",
        "| whole visit (client-side) | n | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|", *visit_rows, ""])


def write(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"national_day-{result['engine']}-{result['people']}{'-' + result['tag'] if result.get('tag') else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(result["client_latency_ms"])
        fig, ax = plt.subplots(figsize=(9, 4))
        for i, (p, colour) in enumerate((("p50", "#0a8f6a"), ("p95", "#f0a500"), ("p99", "#c0392b"))):
            ax.bar([x + i * 0.27 for x in range(len(names))], [result["client_latency_ms"][n][p] for n in names], width=0.27, label=p,
                   color=colour)
        ax.set_xticks([x + 0.27 for x in range(len(names))], names)
        ax.set_ylabel("ms, client-side")
        ax.set_title(f"yibao national-day mix: {result['engine']}, {result['people']:,} people, "
                     f"{result['outpatient_settlements_per_s']} outpatient visits/s")
        ax.legend()
        fig.tight_layout()
        fig.savefig(stem.with_suffix(".png"), dpi=110)
        plt.close(fig)
    except ImportError:
        pass
    return stem


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0,
                        help="server worker processes; 0: one on SQLite (one writer at a time: a second worker only adds contention, "
                             "measured), two on PostgreSQL")
    parser.add_argument("--pool", type=int, default=600, help="patients drawn from the region (pharmacy and inpatient visits)")
    parser.add_argument("--activated", type=int, default=200, help="of them, patients with an activated e-credential (outpatient visits)")
    parser.add_argument("--client-nice", type=int, default=10, help="scheduling niceness of the client processes (0: same as the server)")
    parser.add_argument("--tag", default="", help="suffix for the result files (e.g. light)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--region-file", default=None, help="SQLite region file (default bench/data/region-PEOPLE.db); built if missing")
    parser.add_argument("--server-src", default=None, help="run the server and CLI from this source tree "
                             "(PYTHONPATH), e.g. another worktree's src")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="",
                        help="SQLite: FULL (production: an acknowledged settlement survives a power cut) or NORMAL (the demo's default)")
    parser.add_argument("--port", type=int, default=18766)
    return parser


def main() -> None:
    result = run(parser().parse_args())
    stem = write(result)
    print(stem.with_suffix(".md").read_text())
    print(f"written: {stem}.json, .md, .png")


if __name__ == "__main__":
    main()
