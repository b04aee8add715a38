"""Benchmarks of the e-credential (not tests): code sealing/opening, QR rendering, decode latency at the counter.

    .venv/bin/python bench/credential.py [--decodes 500]

Prints the figures and writes bench/results/credential.json. The HTTP part starts a real
server (one worker) on a throwaway SQLite database with a small demo region.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import segno

ROOT = Path(__file__).resolve().parents[1]


def codec_rate(seconds: float = 3.0) -> dict[str, float]:
    from yibao.credential.codec import Claims, KeyMaterial, open_code, seal

    key = KeyMaterial(1, os.urandom(16), os.urandom(32))
    claims = Claims("37010000000000000016", "NHSA_WEB", 123456, int(time.time()), 60)
    keys = {1: key}
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            open_code(seal(claims, key), keys, int(time.time()))
        n += 1000
    both = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            seal(claims, key)
        n += 1000
    issue = n / (time.perf_counter() - start)
    code = seal(claims, key)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            open_code(code, keys, int(time.time()))
        n += 1000
    decode = n / (time.perf_counter() - start)
    return {"issue_per_s": round(issue), "decode_per_s": round(decode), "issue_and_decode_per_s": round(both), "code_chars": len(code)}


def render_ms(count: int = 300) -> dict[str, float]:
    from yibao.credential.codec import Claims, KeyMaterial, seal

    key = KeyMaterial(1, os.urandom(16), os.urandom(32))
    codes = [seal(Claims("37010000000000000016", "NHSA_WEB", i, int(time.time()), 60), key) for i in range(count)]
    out = {}
    for name, fn in {"svg_mask0": lambda c: segno.make(c, error="m", mask=0).svg_inline(omitsize=True),
                     "svg_best_mask": lambda c: segno.make(c, error="m").svg_inline(omitsize=True),
                     "png_mask0": lambda c: segno.make(c, error="m", mask=0).png_data_uri(scale=4)}.items():
        start = time.perf_counter()
        for c in codes:
            fn(c)
        out[name] = round((time.perf_counter() - start) / count * 1000, 3)
    out["qr_version"] = segno.make(codes[0], error="m").version
    return out


def http_decode(decodes: int) -> dict[str, float]:
    from yibao.credential.realperson import demo_face
    from yibao.gateway import keys
    from yibao.gateway.auth import sign_headers
    from yibao.store.db import Database

    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-"))
    env = {**os.environ, "YIBAO_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}", "YIBAO_DEMO_SEED": "7",
           "YIBAO_RATE_ACTIVATION_IP": "1000000", "YIBAO_RATE_SIGN_IN_IP": "1000000"}  # one address stands in for many phones
    port = 18765
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--demo", "--port", str(port), "--people", "1000"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        import sqlite3

        certno, name = sqlite3.connect(workdir / "bench.db").execute(
            "select certno, psn_name from person where brdy < '1990-01-01' order by psn_no limit 1").fetchone()
        client = httpx.Client(base_url=url, timeout=10)
        activated = client.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": certno, "name": name, "password": "135790",
                                                            "face": demo_face(certno), "liveness": 0.99}).json()
        auth = {"authorization": f"Bearer {activated['token']}"}
        issue_ms, decode_ms = [], []
        bench_db = Database(env["YIBAO_DATABASE_URL"])
        with bench_db.unit_of_work(write=False) as session:
            secret = keys.active_secret(session, "H37010000001") or ""
        bench_db.dispose()
        for _ in range(decodes):
            t0 = time.perf_counter()
            code = client.post(f"/api/v1/people/{activated['psn_no']}/codes", headers=auth).json()["code"]
            t1 = time.perf_counter()
            body = json.dumps({"code": code, "business_type": "01101"}).encode()
            reply = client.post("/api/v1/counter/decode", content=body,
                                headers={"content-type": "application/json", **sign_headers("H37010000001", secret, body)})
            t2 = time.perf_counter()
            assert reply.status_code == 201, reply.text
            issue_ms.append((t1 - t0) * 1000)
            decode_ms.append((t2 - t1) * 1000)

        def pct(values: list[float], p: float) -> float:
            return round(sorted(values)[min(len(values) - 1, int(len(values) * p))], 2)

        return {"decodes": decodes, "decode_p50_ms": pct(decode_ms, 0.5), "decode_p99_ms": pct(decode_ms, 0.99),
                "decode_mean_ms": round(statistics.mean(decode_ms), 2), "issue_with_svg_p50_ms": pct(issue_ms, 0.5),
                "issue_with_svg_p99_ms": pct(issue_ms, 0.99)}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decodes", type=int, default=500)
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "when": time.strftime("%Y-%m-%d %H:%M"), "codec_one_core": codec_rate(), "render_ms": render_ms(),
               "http_one_worker_sqlite": http_decode(args.decodes)}
    print(json.dumps(results, indent=2, ensure_ascii=False))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "credential.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
