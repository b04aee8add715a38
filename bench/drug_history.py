"""5205 (人员慢特病用药记录查询): the doctor looks up a chronic patient's drugs of the last three months. Server-side time.

    .venv/bin/python bench/drug_history.py --people 1000000                        # SQLite region in bench/data
    .venv/bin/python bench/drug_history.py --people 1000000 --database-url postgresql://…

Target (issue 13, item 5): p99 ≤ 2 ms server-side with 1,000,000 people (Jinan reports 0.02 s).

1. The region: `ensure_region` of bench/national_day.py (`yibao demo --people N`, kept in bench/data, not committed).
2. The history (once per region, kept in it): one chronic visit is walked for real through the gateway (2201 med_type 14,
   2203, 2204, 2206, 2207) as a template; then every chronic registration's person but a share (--without) gets 3–6
   monthly med_type 14 visits, each with 2–5 drug lines (the person's own standing drugs, from the catalogue's
   西药/中成药), written in bulk into the tables the settlement writes (visit, diagnosis, fee_line, settlement): the
   template's rows with new keys, person, institution, times, disease and drugs. Not written: the ledger's postings and
   the year totals (5205 reads neither); a cloned settlement keeps the template's amounts.
3. The measurement: signed envelopes handed to the gateway service in the process (`GatewayService.call`: signature
   check, envelope, the 5205 handler and its queries, the encoded answer; no HTTP), one thread. Only that call is
   timed (the client's envelope building and signing is outside the clock). Random people: most with history, some
   registered without it, some with no registration; begntime three months back, endtime empty in half the calls.
   Several runs; the result file keeps each and names the typical one (median p99).

Writes bench/results/drug_history-<engine>-<people>.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_day import RESULTS, ensure_region, machine, system_cpu, system_share  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from yibao.app import gateway_service  # noqa: E402
from yibao.chronic.models import ChronicRegistration  # noqa: E402
from yibao.client import CounterClient  # noqa: E402
from yibao.codes.models import CatalogItem  # noqa: E402
from yibao.config import Settings  # noqa: E402
from yibao.core import clock  # noqa: E402
from yibao.encounter import queries  # noqa: E402
from yibao.encounter.models import Diagnosis, FeeLine, Settlement, Visit  # noqa: E402
from yibao.gateway import keys  # noqa: E402
from yibao.gateway.service import GatewayService  # noqa: E402
from yibao.registry.models import Institution, Person  # noqa: E402
from yibao.store.db import Database  # noqa: E402

PREFIX = "B5205"  # keys of the bulk history: visits B5205V…, settlements B5205S…
COUNTER = "H37010000001"
SEED = 5205
TARGET_P99_MS = 2.0


class _Reply:
    def __init__(self, reply: Any) -> None:
        self.content, self.status_code, self.headers = reply.body, 200, {"content-type": reply.content_type}

    def raise_for_status(self) -> None:
        return None


class _Timed:
    """Looks like an httpx client to CounterClient; hands the signed bytes to the gateway service and times that alone.

    Also times 5205's handler inside it (the lookup and the answer's rows, in the call's read-only transaction), to
    show where the call's time goes; the rest is the signature check, envelope, sign-in, the encoded answer and the
    write transaction that keeps the call's nonce, stored answer and message log."""

    def __init__(self, gateway: GatewayService) -> None:
        self.gateway = gateway
        self.last_s = self.handler_s = self.last_cpu_s = self.handler_cpu_s = 0.0
        tx = gateway.table["5205"]
        handler = tx.handler

        def timed(ctx: Any, body: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return handler(ctx, body)
            finally:
                self.handler_s, self.handler_cpu_s = time.perf_counter() - start, time.thread_time() - cpu

        gateway.table["5205"] = dataclasses.replace(tx, handler=timed)

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> _Reply:
        lowered = {k.lower(): v for k, v in headers.items()}
        start, cpu = time.perf_counter(), time.thread_time()
        reply = self.gateway.call(content, lowered, {}, None)
        self.last_s, self.last_cpu_s = time.perf_counter() - start, time.thread_time() - cpu
        return _Reply(reply)


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    if answer.get("infcode") != 0:
        raise RuntimeError(answer.get("err_msg"))
    return dict(answer["output"])


# -- the history --------------------------------------------------------------------------------------------------

def _template(counter: CounterClient, db: Database, drugs: list[tuple[str, int]]) -> tuple[dict, list[dict], dict, list[dict]]:
    """One chronic visit walked through the gateway for real; its rows as the settlement wrote them."""
    with db.unit_of_work(write=False) as session:
        reg = session.execute(select(ChronicRegistration.psn_no, ChronicRegistration.opsp_dise_code, Person.certno)
                              .join(Person, Person.psn_no == ChronicRegistration.psn_no)
                              .where(ChronicRegistration.status == "active", ChronicRegistration.insutype == "310",
                                     ChronicRegistration.insu_optins == "370100")
                              .order_by(ChronicRegistration.psn_no).limit(1)).one()
    psn_no, code, certno = reg
    now = clock.fmt_datetime(clock.now())
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}
    mdtrt_id = ok(counter.call("2201", {"data": {"psn_no": psn_no, "insutype": "310", "begntime": now, **cert,
                                                 "ipt_otp_no": f"{PREFIX}T{int(time.time())}", "atddr_no": "D37010000001",
                                                 "dr_name": "医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03",
                                                 "med_type": "14"}}))["data"]["mdtrt_id"]
    ok(counter.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "14", "dise_codg": code,
                                           "dise_name": "", "begntime": now},
                             "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "I10.x00", "diag_name": "高血压"}]}))
    lines = []
    for i, (drug, price) in enumerate(drugs[:3]):
        lines.append({"feedetl_sn": f"{PREFIX}T{i}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rxno": f"RX{i}",
                      "rx_circ_flag": "0", "fee_ocur_time": now, "med_list_codg": drug, "medins_list_codg": "H-" + drug[:10],
                      "det_item_fee_sumamt": Decimal(price * 2) / 100, "cnt": Decimal(2), "pric": Decimal(price) / 100,
                      "bilg_dept_codg": "A03", "bilg_dept_name": "内科", "bilg_dr_codg": "D37010000001", "bilg_dr_name": "医生",
                      "hosp_appr_flag": "0"})
    ok(counter.call("2204", {"feedetail": lines}))
    total = sum(line["det_item_fee_sumamt"] for line in lines)
    data = {"psn_no": psn_no, **cert, "med_type": "14", "medfee_sumamt": total, "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    ok(counter.call("2206", {"data": data}))
    ok(counter.call("2207", {"data": data}))
    with db.unit_of_work(write=False) as session:
        visit = dict(session.execute(select(Visit.__table__).where(Visit.mdtrt_id == mdtrt_id)).one()._mapping)
        fee_lines = [dict(r._mapping) for r in session.execute(select(FeeLine.__table__).where(FeeLine.mdtrt_id == mdtrt_id))]
        settlement = dict(session.execute(select(Settlement.__table__).where(Settlement.mdtrt_id == mdtrt_id)).one()._mapping)
        diagnoses = [dict(r._mapping) for r in session.execute(select(Diagnosis.__table__).where(Diagnosis.mdtrt_id == mdtrt_id))]
    return visit, fee_lines, settlement, diagnoses


def history_made(db: Database) -> int:
    with db.unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Settlement).where(Settlement.setl_id.like(f"{PREFIX}S%"))) or 0)


def build_history(db: Database, counter: CounterClient, without: float, log: Any = print) -> dict[str, Any]:
    """Monthly chronic visits for registered people, in bulk (see the module's docstring); what was made."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    with db.unit_of_work(write=False) as session:
        drugs = [(code, cap or 2500) for code, cap in session.execute(
            select(CatalogItem.med_list_codg, CatalogItem.pric_uplmt_fen)
            .where(CatalogItem.enddate.is_(None), CatalogItem.list_type.in_(("101", "102")), CatalogItem.lmt_gend.is_(None),
                   CatalogItem.lmt_age_min.is_(None), CatalogItem.lmt_age_max.is_(None), CatalogItem.lmt_hosp_lv.is_(None))
            .order_by(CatalogItem.med_list_codg))]
        registrations = session.execute(select(ChronicRegistration.psn_no, ChronicRegistration.insutype, ChronicRegistration.insu_optins,
                                               ChronicRegistration.opsp_dise_code, ChronicRegistration.opsp_dise_name)
                                        .where(ChronicRegistration.status == "active")
                                        .order_by(ChronicRegistration.psn_no, ChronicRegistration.trt_dcla_detl_sn)).all()
        hospitals: dict[str, list[tuple[str, str]]] = {}
        for code, name, admdvs in session.execute(select(Institution.fixmedins_code, Institution.fixmedins_name, Institution.admdvs)
                                                  .where(Institution.fixmedins_code.like("H%")).order_by(Institution.fixmedins_code)):
            hospitals.setdefault(admdvs, []).append((code, name))
    log(f"template visit through the gateway; {len(registrations):,} active registrations, {len(drugs)} drugs")
    visit_t, lines_t, setl_t, diag_t = _template(counter, db, drugs)
    line_t = lines_t[0]
    people: dict[str, tuple[str, str, str, str]] = {}
    for psn_no, insutype, admdvs, code, name in registrations:
        people.setdefault(psn_no, (insutype, admdvs, code, name))  # one visit a month, for the first registered disease
    chosen = [p for p in people if rng.random() >= without]
    now = clock.now().replace(microsecond=0)
    serial = visits_n = lines_n = 0
    batch: dict[str, list[dict[str, Any]]] = {"visit": [], "diagnosis": [], "fee_line": [], "settlement": []}

    def flush() -> None:
        with db.unit_of_work() as session:
            for model in (Visit, Diagnosis, FeeLine, Settlement):
                rows = batch[model.__tablename__]
                if rows:
                    session.execute(insert(model.__table__), rows)
                    batch[model.__tablename__] = []

    for n, psn_no in enumerate(chosen):
        insutype, admdvs, code, name = people[psn_no]
        region_hospitals = hospitals.get(admdvs) or hospitals["370100"]
        hospital, _ = region_hospitals[rng.randrange(min(5, len(region_hospitals)))]  # the few hospitals near home
        standing = rng.sample(drugs, rng.randint(2, 5))
        for month in range(rng.randint(3, 6)):
            serial += 1
            when = now - timedelta(days=30 * month + rng.randrange(0, 20), hours=rng.randrange(0, 8), minutes=rng.randrange(60))
            mdtrt_id, setl_id = f"{PREFIX}V{serial:012d}", f"{PREFIX}S{serial:012d}"
            batch["visit"].append({**visit_t, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "insutype": insutype, "fixmedins_code": hospital,
                                   "ipt_otp_no": f"{PREFIX}{serial:012d}", "begntime": when, "endtime": when + timedelta(minutes=25),
                                   "opt_time": when, "dise_codg": code, "dise_name": name, "status": "settled",
                                   "mdtrtarea_admvs": hospital[1:7], "insuplc_admdvs": admdvs, "mdtrt_cert_no": ""})
            batch["diagnosis"] += [{**{k: v for k, v in d.items() if k != "id"}, "mdtrt_id": mdtrt_id} for d in diag_t]
            # this month's prescription: the standing drugs, now and then one left out
            today = [d for d in standing if rng.random() < 0.9] or standing[:1]
            for i, (drug, price) in enumerate(today):
                count = rng.choice((1, 2, 3))
                batch["fee_line"].append({**{k: v for k, v in line_t.items() if k != "id"}, "mdtrt_id": mdtrt_id,
                                          "feedetl_sn": f"{PREFIX}F{serial:010d}{i}", "med_list_codg": drug,
                                          "medins_list_codg": "H-" + drug[:10], "med_list_name": "", "fee_ocur_time": when,
                                          "cnt": Decimal(count), "pric": Decimal(price) / 100, "det_item_fee_sumamt_fen": price * count,
                                          "rxno": f"RX{serial:010d}", "setl_id": setl_id, "status": "settled", "opt_time": when})
                lines_n += 1
            batch["settlement"].append({**setl_t, "setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "fixmedins_code": hospital,
                                        "insutype": insutype, "setl_time": when + timedelta(minutes=20), "year": when.year,
                                        "opsp_dise_code": code, "medins_setl_id": f"{PREFIX}M{serial:012d}",
                                        "mdtrtarea_admvs": hospital[1:7], "clr_optins": admdvs, "revs_setl_id": None,
                                        "refd_setl_flag": "0"})
            visits_n += 1
        if len(batch["visit"]) >= 5000:
            flush()
        if n and n % 10000 == 0:
            log(f"  {n:,} people, {visits_n:,} visits, {lines_n:,} lines, {time.perf_counter() - started:.0f} s")
    flush()
    # the drug names the HIS would have sent: the catalogue's
    with db.unit_of_work() as session:
        names = dict(session.execute(select(CatalogItem.med_list_codg, CatalogItem.med_list_name)
                                     .where(CatalogItem.enddate.is_(None), CatalogItem.list_type.in_(("101", "102")))).all())
        from sqlalchemy import bindparam, update

        session.execute(update(FeeLine.__table__).where(FeeLine.mdtrt_id.like(f"{PREFIX}V%"),
                                                        FeeLine.med_list_codg == bindparam("code"))
                        .values(med_list_name=bindparam("name")),
                        [{"code": c, "name": names.get(c, "")} for c, _ in drugs])
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execute(text("COMMIT"))
            for table in ("visit", "diagnosis", "fee_line", "settlement"):
                connection.execute(text(f"ANALYZE {table}"))
    else:
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    return {"registered_people": len(people), "people_with_history": len(chosen), "visits": visits_n, "fee_lines": lines_n,
            "settlements": visits_n, "months_per_person": "3–6", "drug_lines_per_visit": "2–5 (each standing drug 90% of months)",
            "template_visit": visit_t["mdtrt_id"], "build_seconds": round(time.perf_counter() - started, 1),
            "how": "one chronic visit walked through the gateway (2201 med_type 14, 2203, 2204, 2206, 2207) as the template; "
                   "its visit, diagnosis, fee_line and settlement rows copied in bulk with new keys, person, institution, "
                   "times, disease and drugs. Ledger postings and year totals are not written (5205 reads neither); a copied "
                   "settlement keeps the template's amounts"}


# -- the measurement --------------------------------------------------------------------------------------------------

def pick_people(db: Database, count: int, rng: random.Random) -> dict[str, list[str]]:
    with db.unit_of_work(write=False) as session:
        with_history = list(session.scalars(select(Settlement.psn_no).where(Settlement.setl_id.like(f"{PREFIX}S%")).distinct()))
        registered = set(session.scalars(select(ChronicRegistration.psn_no).where(ChronicRegistration.status == "active")))
        total = int(session.scalar(select(func.count()).select_from(Person)) or 0)
        others = list(session.scalars(select(Person.psn_no).where(Person.psn_no.in_(
            [f"{a}{rng.randrange(1, total + 1):014d}" for a in ("370100", "440300") for _ in range(count)]))))
    has = set(with_history)
    return {"with_history": rng.sample(with_history, min(count, len(with_history))),
            "registered_without_history": sorted(registered - has)[:count],
            "not_registered": [p for p in others if p not in registered][:count]}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, .5), 3), "p95": round(percentile(values, .95), 3), "p99": round(percentile(values, .99), 3),
            "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3)}


def busy_processes(seconds: float = 1.0) -> list[dict[str, Any]]:
    """The other processes using the CPU, sampled over ``seconds`` right after a run (short-lived ones come and go)."""
    import psutil

    mine = os.getpid()
    procs = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != mine:
                proc.cpu_percent(None)
                procs.append(proc)
        except psutil.Error:
            continue
    time.sleep(seconds)
    found = []
    for proc in procs:
        try:
            share = proc.cpu_percent(None)
            if share >= 5:
                found.append({"name": proc.name(), "cmd": " ".join(proc.cmdline())[:90], "cpu_percent_of_one_core": round(share, 1)})
        except psutil.Error:
            continue
    return sorted(found, key=lambda p: -p["cpu_percent_of_one_core"])[:8]


def measure(counter: CounterClient, transport: _Timed, pool: dict[str, list[str]], calls: int, rng: random.Random,
            without_share: float) -> dict[str, Any]:
    begin = clock.fmt_datetime(clock.now() - timedelta(days=91))
    durations: list[float] = []
    handler: list[float] = []
    cpu: list[float] = []
    handler_cpu: list[float] = []
    rows: list[int] = []
    rows_with: list[int] = []
    empty_pool = pool["registered_without_history"] + pool["not_registered"]
    load_before = os.getloadavg()
    cpu_before, own_before = system_cpu(), time.process_time()
    started = time.perf_counter()
    for i in range(calls):
        has = rng.random() >= without_share
        psn_no = rng.choice(pool["with_history"] if has else empty_pool)
        data = {"psn_no": psn_no, "begntime": begin, "endtime": "" if i % 2 else clock.fmt_datetime(clock.now())}
        answer = counter.call("5205", {"data": data})
        if answer.get("infcode") != 0:
            raise RuntimeError(f"5205 refused for {psn_no}: {answer.get('err_msg')}")
        durations.append(transport.last_s * 1000)
        handler.append(transport.handler_s * 1000)
        cpu.append(transport.last_cpu_s * 1000)
        handler_cpu.append(transport.handler_cpu_s * 1000)
        n = len(answer["output"]["feedetail"])
        rows.append(n)
        if has:
            rows_with.append(n)
    elapsed = time.perf_counter() - started
    own = time.process_time() - own_before
    server_s = sum(durations) / 1000
    return {
        "calls": calls, "wall_seconds": round(elapsed, 2),
        "server_ms": spread(durations),
        "handler_ms": spread(handler),
        # the thread's CPU time (time.thread_time): what the call costs a core, without waiting for one or for the disk
        "cpu_ms": spread(cpu), "handler_cpu_ms": spread(handler_cpu),
        "calls_per_s_server_time": round(calls / server_s, 1), "calls_per_s_wall_with_client": round(calls / elapsed, 1),
        "rows_per_call": {"mean": round(statistics.fmean(rows), 2), "p50": percentile(rows, .5), "max": max(rows),
                          "mean_for_people_with_history": round(statistics.fmean(rows_with), 2) if rows_with else 0,
                          "calls_for_people_with_history": len(rows_with), "calls_for_people_without": calls - len(rows_with)},
        "machine_state": {"load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()],
                          **system_share(cpu_before, system_cpu(), own, elapsed),
                          "other_busy_processes_after_run": busy_processes()},
    }


def query_plan(db: Database, psn_no: str) -> list[str]:
    """The engine's plan of 5205's main statement, for the record."""
    plan = getattr(queries, "drug_history_plan", None)
    if plan is None:
        return []
    with db.unit_of_work(write=False) as session:
        return list(plan(session, psn_no, clock.now() - timedelta(days=91), None))


def markdown(result: dict[str, Any]) -> str:
    t = result["runs"][result["typical_run"]]
    s = t["server_ms"]
    h = result["history"]
    lines = [f"# 5205 drug history lookup — {result['engine']}, {result['people']:,} people", "",
             f"Measured {result['measured_at']} on {result['machine']['description']} ({result['machine']['cpu_model']}), "
             f"commit {result['commit']}. Server-side: `GatewayService.call` in the process (signature check, envelope, "
             f"handler, queries, encoded answer), one thread, no HTTP.", "",
             f"Target p99 ≤ {TARGET_P99_MS} ms: **{'met' if result['target_met'] else 'not met'}** "
             f"(typical run {result['typical_run'] + 1} of {len(result['runs'])}, the median p99)."
             + (f" SQLite synchronous={result['sqlite_synchronous']}." if result.get("sqlite_synchronous") else ""), "",
             "| run | calls | p50 ms | p95 ms | p99 ms | max ms | calls/s (server time) | rows a call (people with history) "
             "| load before | others busy % |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for i, run in enumerate(result["runs"]):
        m = run["server_ms"]
        lines.append(f"| {i + 1}{' (typical)' if i == result['typical_run'] else ''} | {run['calls']} | {m['p50']} | {m['p95']} | "
                     f"{m['p99']} | {m['max']} | {run['calls_per_s_server_time']} | "
                     f"{run['rows_per_call']['mean_for_people_with_history']} | "
                     f"{run['machine_state']['load_average_before'][0]} | {run['machine_state']['other_processes_percent']} |")
    lines += ["", f"History: {h['people_with_history']:,} of {h['registered_people']:,} registered people, {h['visits']:,} visits, "
                  f"{h['fee_lines']:,} drug lines ({h['how']}).", "",
              f"Typical run: p50 {s['p50']} ms, p99 {s['p99']} ms, {t['calls_per_s_server_time']} calls/s of server time. "
              f"Of that, 5205's handler (the lookup and its rows): p50 {t['handler_ms']['p50']} ms, p99 {t['handler_ms']['p99']} ms."
              + (f" CPU time of the thread (no wait for a core or the disk): whole call p50 {t['cpu_ms']['p50']} ms, "
                 f"p99 {t['cpu_ms']['p99']} ms; handler p50 {t['handler_cpu_ms']['p50']} ms, p99 {t['handler_cpu_ms']['p99']} ms."
                 if "cpu_ms" in t else ""),
              "",
              "Plan of the main statement:", "", *[f"    {line}" for line in result["query_plan"]], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--without", type=float, default=0.1, help="share of calls for people without history")
    parser.add_argument("--registered-without", type=float, default=0.15, help="share of registered people given no history")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    url = ensure_region(args.people, args.database_url)
    settings = Settings(database_url=url)
    db = Database.from_settings(settings)
    engine = db.engine.dialect.name
    transport = _Timed(gateway_service(db, settings))
    with db.unit_of_work(write=False) as session:
        secret = keys.active_secret(session, COUNTER) or ""
        people = int(session.scalar(select(func.count()).select_from(Person)) or 0)
    counter = CounterClient("http://in-process", COUNTER, secret, http=transport)  # type: ignore[arg-type]
    ok(counter.sign_in())
    history_file = (Path(url.removeprefix("sqlite:///")).with_suffix(".history.json") if engine == "sqlite"
                    else RESULTS.parent / "data" / f"history-{engine}-{args.people}.json")
    if not history_made(db):
        history = build_history(db, counter, args.registered_without)
        history_file.parent.mkdir(parents=True, exist_ok=True)
        history_file.write_text(json.dumps(history, ensure_ascii=False, indent=2))
    history = json.loads(history_file.read_text())
    print(json.dumps(history, ensure_ascii=False))
    rng = random.Random(SEED)
    pool = pick_people(db, 20_000, rng)
    measure(counter, transport, pool, min(1000, max(100, args.calls // 5)), rng, args.without)  # warm caches
    runs = []
    for i in range(args.runs):
        run = measure(counter, transport, pool, args.calls, random.Random(SEED + i), args.without)
        print(json.dumps({"run": i + 1, **run["server_ms"], "calls_per_s": run["calls_per_s_server_time"],
                          "rows": run["rows_per_call"]["mean_for_people_with_history"],
                          "load": run["machine_state"]["load_average_before"]}), flush=True)
        runs.append(run)
    order = sorted(range(len(runs)), key=lambda i: runs[i]["server_ms"]["p99"])
    typical = order[len(order) // 2]
    import subprocess

    commit = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "status", "--porcelain", "--untracked-files=no", "--",
                            "../src"], capture_output=True, text=True).stdout.splitlines()
    result = {"benchmark": "5205 drug history lookup", "engine": engine, "people": people,
              "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"), "commit": commit,
              "uncommitted_src_files": len(dirty), "machine": {**machine(), "platform": platform.platform()},
              "target_p99_ms": TARGET_P99_MS, "typical_run": typical, "target_met": runs[typical]["server_ms"]["p99"] <= TARGET_P99_MS,
              "typical": runs[typical]["server_ms"], "typical_handler": runs[typical]["handler_ms"],
              "typical_cpu": runs[typical]["cpu_ms"], "typical_handler_cpu": runs[typical]["handler_cpu_ms"],
              "sqlite_synchronous": db.durability.synchronous if engine == "sqlite" else None,
              "calls_per_s_server_time": runs[typical]["calls_per_s_server_time"],
              "rows_per_call_with_history": runs[typical]["rows_per_call"]["mean_for_people_with_history"],
              "period": "begntime 91 days back; endtime empty in half the calls, now in the other half",
              "calls_for_people_without_history_share": args.without,
              "query_plan": query_plan(db, pool["with_history"][0]), "history": history, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    stem = f"drug_history-{engine}-{args.people}{'-' + args.label if args.label else ''}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(f"wrote bench/results/{stem}.json: typical p99 {runs[typical]['server_ms']['p99']} ms")


if __name__ == "__main__":
    _ = queries  # the handler's module, loaded before the clock starts
    main()
