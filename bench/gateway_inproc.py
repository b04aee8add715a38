"""The storage path alone: counter traffic straight into the gateway service, no HTTP, one thread.

    .venv/bin/python bench/gateway_inproc.py [--people 10000] [--visits 400]

Measures what one server worker spends per national-interface call and per complete visit
(signature check, envelope, transaction, storage), without sockets and client processes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_day import ensure_region  # noqa: E402

from yibao.app import gateway_service  # noqa: E402
from yibao.client import CounterClient  # noqa: E402
from yibao.config import Settings  # noqa: E402
from yibao.demo import traffic  # noqa: E402
from yibao.gateway import keys  # noqa: E402
from yibao.gateway.service import GatewayService  # noqa: E402
from yibao.store.db import Database  # noqa: E402


class _Reply:
    def __init__(self, reply) -> None:  # type: ignore[no-untyped-def]
        self.content, self.status_code, self.headers = reply.body, 200, {"content-type": reply.content_type}

    def raise_for_status(self) -> None:
        return None


class _InProcess:
    """Looks like an httpx client to CounterClient; hands the bytes to the gateway service directly."""

    def __init__(self, gateway: GatewayService) -> None:
        self.gateway = gateway
        self.calls = 0

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> _Reply:
        self.calls += 1
        return _Reply(self.gateway.call(content, {k.lower(): v for k, v in headers.items()}, {}, None))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--visits", type=int, default=400)
    args = parser.parse_args()
    url = ensure_region(args.people, None)
    settings = Settings(database_url=url)
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
    traffic.run({code: counter}, people, items, 30, 1)  # warm caches
    transport.calls = 0
    start = time.perf_counter()
    report = traffic.run({code: counter}, people, items, args.visits, 2)
    elapsed = time.perf_counter() - start
    result = {"people": args.people, "visits": args.visits, "calls": transport.calls, "seconds": round(elapsed, 2),
              "calls_per_s_one_thread": round(transport.calls / elapsed, 1), "ms_per_call": round(elapsed / transport.calls * 1000, 2),
              "settled_visits_per_s": round((report.outpatient + report.inpatient) / elapsed, 1)}
    print(json.dumps(result))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "gateway_inproc.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
