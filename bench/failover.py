"""Failover under load: the primary's machine dies in the middle of counter traffic, no acknowledged settlement is lost.

    .venv/bin/python bench/failover.py                       # builds a cluster with scripts/ha.sh, removes it at the end
    .venv/bin/python bench/failover.py --database-url URL --ha-dir DIR   # an existing one (`bash scripts/ha.sh up`)

A pg_auto_failover formation (scripts/ha.sh: monitor, primary, synchronous standby, fsync on) holds a demo region;
`yibao serve` talks to it through the multi-host URL (target_session_attrs=read-write). Counter processes walk
outpatient visits (1101 by ID number, 2201, 2204, 2207) and retry any call that fails (an "unavailable, retry with the
same msgid" answer, a broken connection) with the SAME msgid, a new signature each time, for up to ``--retry-s``.
After ``--before`` seconds the primary's node is killed: SIGKILL to its pg_autoctl, its postmaster and every backend at
once (scripts/ha.sh's ha_crash, a machine that died), and the load runs on for ``--after`` seconds.

Measured: the client-visible outage (from the kill to the first settlement acknowledged after it), pg_auto_failover's
own times from the monitor's events (kill → primary marked unhealthy, kill → standby reports wait_primary), settlements
per second before and after, the retries. Checked at the end, on the new primary: every acknowledged 2207's setl_id is
in the settlement table exactly once, every acknowledged msgid has its stored answer, and `yibao ledger check` passes.
Writes bench/results/failover.json and .md (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_day import (  # noqa: E402
    HOSPITALS,
    RESULTS,
    ROOT,
    SEED,
    LeanHTTP,
    catalogue_items,
    code_identity,
    machine,
    patients,
    start_server,
    stop_server,
)

HA_SH = ROOT / "scripts" / "ha.sh"
RETRYABLE = "retry with the same msgid"  # the gateway's words for "nothing lost, ask again": unavailable, busy, internal error


# -- the cluster (scripts/ha.sh) --------------------------------------------------------------------------------------

def ha(command: str, ha_dir: str = "") -> str:
    """A bash snippet with scripts/ha.sh's functions, for the cluster in ``ha_dir``."""
    env = {**os.environ, **({"HA_DIR": ha_dir} if ha_dir else {})}
    prelude = f"source {HA_SH}; " + ("ha_load >/dev/null; " if ha_dir else "")
    done = subprocess.run(["bash", "-c", prelude + command], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"scripts/ha.sh: {command} failed: {done.stderr[-3000:]}")
    return done.stdout


def ha_up() -> tuple[str, str]:
    """A new formation: (HA_DIR, URL)."""
    lines = ha('ha_start >&2 && echo "$HA_DIR" && echo "$YIBAO_HA_URL"').split()
    return lines[-2], lines[-1]


def ha_events(ha_dir: str) -> list[dict[str, Any]]:
    return json.loads(ha('ha_as_owner pg_autoctl show events --pgdata "$HA_DIR/monitor" --count 60 --json', ha_dir) or "[]")


def failover_times(events: list[dict[str, Any]], old: str, killed_at: float) -> dict[str, Any]:
    """From the monitor's events after the kill: when the old primary was marked unhealthy, when the standby was told to
    take over and when it reported that it takes writes (wait_primary: a primary without a standby), in seconds after
    the kill."""
    def at(event: dict[str, Any]) -> float:
        return dt.datetime.fromisoformat(event["eventtime"]).timestamp()

    after = [e for e in events if at(e) >= killed_at - 0.5]
    unhealthy = next((e for e in after if e["nodename"] == old and "unhealthy" in e["description"]), None)
    assigned = next((e for e in after if e["nodename"] != old and e["goalstate"] in ("prepare_promotion", "stop_replication",
                                                                                     "wait_primary")), None)
    promoted = next((e for e in after if e["nodename"] != old and e["reportedstate"] in ("wait_primary", "primary")), None)

    def since(event: dict[str, Any] | None) -> float | None:
        return round(at(event) - killed_at, 2) if event else None

    return {"old_primary_marked_unhealthy_s": since(unhealthy), "promotion_started_s": since(assigned),
            "new_primary_takes_writes_s": since(promoted), "new_primary": promoted["nodename"] if promoted else None,
            "events": [f"{e['eventtime']} {e['nodename']} {e['reportedstate']} → {e['goalstate']}: {e['description']}"
                       for e in after]}


# -- a counter that never loses a settlement ------------------------------------------------------------------------------

def counter(index: int, base: str, pool: list[dict[str, str]], items: list[str], secret: str, retry_s: float, go: Any, stop: Any,
            queue: Any) -> None:
    """One hospital counter walking outpatient visits until ``stop``. Every call is sent until it is answered: a
    retryable refusal or a broken connection sends the same envelope (same msgid) again, signed anew."""
    from yibao.client import CounterClient
    from yibao.core import clock

    rng = random.Random(index)
    code = HOSPITALS[index % len(HOSPITALS)]
    http = LeanHTTP(base)
    client = CounterClient(base, code, secret, http=http)  # type: ignore[arg-type]
    acks: list[dict[str, Any]] = []  # every acknowledged 2207
    calls: list[tuple[str, str, float, float, int]] = []  # (infno, msgid, started, answered, attempts)
    refused: dict[str, int] = {}
    retries = {"unavailable": 0, "other_retryable": 0, "connection": 0}
    errors: list[str] = []
    gave_up = 0
    run = f"{int(time.time()) % 100_000_000:08d}"

    def send(infno: str, body: dict[str, Any]) -> dict[str, Any] | None:
        envelope = client.envelope(infno, body)  # one msgid for every attempt
        started = time.time()
        attempts = 0
        while True:
            attempts += 1
            try:
                envelope["sign_no"] = client.sign_no
                answer = client.send(envelope)
            except (OSError, RuntimeError, ValueError) as error:  # the server's connection broke, or a 5xx
                retries["connection"] += 1
                reason = f"{type(error).__name__}: {error}"
            else:
                if answer.get("infcode") == 0:
                    calls.append((infno, envelope["msgid"], started, time.time(), attempts))
                    return answer["output"]
                reason = str(answer.get("err_msg", ""))
                if RETRYABLE not in reason:
                    refused[infno] = refused.get(infno, 0) + 1
                    if len(errors) < 20:
                        errors.append(f"{infno} {envelope['msgid']}: {reason}"[:300])
                    return None
                retries["unavailable" if "unavailable" in reason else "other_retryable"] += 1
            if time.time() - started > retry_s:
                nonlocal gave_up
                gave_up += 1
                if len(errors) < 20:
                    errors.append(f"{infno} {envelope['msgid']}: gave up after {attempts} attempts: {reason}"[:300])
                return None
            time.sleep(0.2)

    serial = 0
    while not client.sign_no:  # the counter signs in (9001) before the clock starts
        out = send("9001", {"signIn": {"opter_no": client.opter, "mac": "00-16-3E-00-00-01", "ip": "127.0.0.1"}})
        if out is None:
            raise SystemExit(f"9001 sign-in of {code} refused: {errors[-1:]}")
        client.sign_no = out["signinoutb"]["sign_no"]
    go.wait(timeout=300)
    while not stop.is_set():
        p = rng.choice(pool)
        serial += 1
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"]}
        if send("1101", {"data": {**cert, "psn_cert_type": "01"}}) is None:
            continue
        reg = send("2201", {"data": {"psn_no": p["psn_no"], "insutype": p["insutype"], **cert,
                                     "begntime": clock.fmt_datetime(clock.now()), "ipt_otp_no": f"HA{run}-{index}-{serial}"}})
        if reg is None:
            continue
        mdtrt_id = reg["data"]["mdtrt_id"]
        fee, total = [], Decimal(0)
        for n in range(rng.randint(1, 4)):
            price = Decimal(rng.randint(500, 4000)) / 100
            fee.append({"feedetl_sn": f"L{serial}-{n}", "mdtrt_id": mdtrt_id, "psn_no": p["psn_no"], "chrg_bchno": "1",
                        "med_list_codg": rng.choice(items), "fee_ocur_time": clock.fmt_datetime(clock.now()),
                        "det_item_fee_sumamt": price, "cnt": 1, "pric": price, "rxno": f"RX{serial}-{n}"})
            total += price
        if send("2204", {"feedetail": fee}) is None:
            continue
        out = send("2207", {"data": {"psn_no": p["psn_no"], **cert, "med_type": "11", "medfee_sumamt": total, "psn_setlway": "01",
                                     "mdtrt_id": mdtrt_id, "chrg_bchno": "1", "acct_used_flag": "1" if total <= 100 else "0",
                                     "insutype": p["insutype"]}})
        if out is not None:
            _, msgid, started, answered, attempts = calls[-1]
            acks.append({"setl_id": out["setlinfo"]["setl_id"], "mdtrt_id": mdtrt_id, "at": answered, "started": started,
                         "attempts": attempts, "fixmedins_code": code, "msgid": msgid})
    queue.put({"acks": acks, "calls": calls, "refused": refused, "retries": retries, "errors": errors, "gave_up": gave_up})


# -- the check ------------------------------------------------------------------------------------------------------------

def check_settlements(url: str, acks: list[dict[str, Any]]) -> dict[str, Any]:
    """On the new primary: each acknowledged setl_id once in the settlement table, each acknowledged msgid's answer kept."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(url)
    ids = [a["setl_id"] for a in acks]
    found: dict[str, int] = {}
    answers = 0
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for setl_id, n in conn.execute(text("SELECT setl_id, count(*) FROM settlement WHERE setl_id IN :ids GROUP BY setl_id")
                                           .bindparams(bindparam("ids", expanding=True)), {"ids": chunk}):
                found[setl_id] = n
        for a in acks:
            answers += conn.execute(text("SELECT count(*) FROM gateway_message WHERE fixmedins_code = :f AND msgid = :m "
                                         "AND infno = '2207' AND response LIKE :s"),
                                    {"f": a["fixmedins_code"], "m": a["msgid"], "s": f"%{a['setl_id']}%"}).scalar_one()
        in_recovery = conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        server = conn.execute(text("SELECT inet_server_port()")).scalar_one()
    engine.dispose()
    missing = [i for i in ids if i not in found]
    return {"acknowledged": len(ids), "distinct_acknowledged": len(set(ids)), "found_once": sum(1 for i in ids if found.get(i) == 1),
            "missing": len(missing), "missing_examples": missing[:10], "duplicated": sum(1 for n in found.values() if n > 1),
            "stored_answers_found": answers, "checked_on_port": server, "checked_on_standby": bool(in_recovery)}


def ledger_check(url: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "yibao", "ledger", "check"], env={**env, "YIBAO_DATABASE_URL": url},
                          capture_output=True, text=True)
    return {"passed": done.returncode == 0, "output": " ".join(done.stdout.split())[-500:]}


# -- the run ---------------------------------------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    made_here = not args.database_url
    ha_dir, url = (args.ha_dir, args.database_url) if args.database_url else ha_up()
    if not ha_dir:
        raise SystemExit("--database-url needs --ha-dir (the cluster's HA_DIR, printed by `bash scripts/ha.sh up`)")
    server = None
    try:
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "yibao", "demo", "--people", str(args.people), "--seed", str(SEED)],
                       env={**env, "YIBAO_DATABASE_URL": url}, check=True, capture_output=True)
        seeded_s = time.time() - t0
        port = args.port or free_port()
        log = Path(tempfile.mkdtemp(prefix="yibao-failover-")) / "server.log"
        server = start_server(url, port, args.workers, log, env=env)
        base = f"http://127.0.0.1:{port}"
        pool = patients(url, args.pool)
        items = catalogue_items(url)
        secrets = {}
        for i in range(args.clients):
            code = HOSPITALS[i % len(HOSPITALS)]
            shown = subprocess.run([sys.executable, "-m", "yibao", "keys", "show", code], env={**env, "YIBAO_DATABASE_URL": url},
                                   capture_output=True, text=True, check=True).stdout
            secrets[code] = next(line.split()[3] for line in shown.splitlines() if " active" in line)
        ctx = mp.get_context("spawn")
        queue, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
        procs = [ctx.Process(target=counter, args=(i, base, pool[i::args.clients], items, secrets[HOSPITALS[i % len(HOSPITALS)]],
                                                   args.retry_s, go, stop, queue)) for i in range(args.clients)]
        for p in procs:
            p.start()
        time.sleep(2)  # they sign in (9001)
        load_before = os.getloadavg()
        old = ha("ha_primary", ha_dir).strip()
        started = time.time()
        go.set()
        time.sleep(args.before)
        pgid = int(ha(f"ha_node_pgid {old}", ha_dir))
        killed_at = time.time()
        os.killpg(pgid, signal.SIGKILL)  # scripts/ha.sh's ha_crash, without a shell's start-up between the clock and the kill
        time.sleep(args.after)
        stopped_at = time.time()
        stop.set()
        results = [queue.get(timeout=args.retry_s + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        ended_at = time.time()
        events = ha_events(ha_dir)
        state = ha("ha_show_state", ha_dir)
        times = failover_times(events, old, killed_at)
        acks = [a for r in results for a in r["acks"]]
        check = check_settlements(url, acks)
        ledger = ledger_check(url, env)
        server_log = log.read_text()
    finally:
        if server is not None:
            stop_server(server)
        if made_here and not args.keep:
            ha("ha_stop", ha_dir)
    acks.sort(key=lambda a: a["at"])
    before = [a for a in acks if a["at"] < killed_at]
    after = [a for a in acks if a["at"] >= killed_at]
    # the first settlement acknowledged whose 2207 was sent after the kill: only the new primary can have committed it
    # (a 2207 committed just before the kill may still be answered a few ms after it)
    first_after = min((a["at"] for a in after if a["started"] >= killed_at), default=None)
    resumed = [a for a in acks if first_after is not None and a["at"] >= first_after + 2]
    gaps = [b["at"] - a["at"] for a, b in zip(acks, acks[1:], strict=False)]
    retries = {k: sum(r["retries"][k] for r in results) for k in results[0]["retries"]}
    refused: dict[str, int] = {}
    for r in results:
        for k, v in r["refused"].items():
            refused[k] = refused.get(k, 0) + v
    attempts = [c[4] for r in results for c in r["calls"]]
    identity = code_identity(env)
    mstate = machine()
    return {
        "machine": mstate["description"], "cpu_model": mstate["cpu_model"], "when": time.strftime("%Y-%m-%d %H:%M"),
        "server_code": identity, "engine": "postgresql 15 + pg_auto_failover 2.0 (scripts/ha.sh: monitor, primary, "
                                          "synchronous standby, fsync on, shortened monitor timers)",
        "people": args.people, "server_workers": args.workers, "counters": args.clients, "seeded_s": round(seeded_s, 1),
        "load_before_s": args.before, "load_after_kill_s": args.after, "killed_node": old,
        "kill": "SIGKILL to the node's pg_autoctl, postmaster and backends at once (their process group, as ha_crash)",
        "failover": {"client_outage_s": round(first_after - killed_at, 2) if first_after else None,
                     "longest_gap_between_settlements_s": round(max(gaps), 2) if gaps else None, **times},
        "settlements": {"acknowledged": len(acks), "before_kill": len(before), "after_kill": len(after),
                        "per_s_before_kill": round(len(before) / (killed_at - started), 1),
                        "per_s_after_recovery": round(len(resumed) / (stopped_at - first_after - 2), 1)
                        if first_after and stopped_at - first_after > 4 else None},
        "check": check, "lost_settlements": check["missing"], "duplicated_settlements": check["duplicated"],
        "ledger_check": ledger,
        "retries": {**retries, "calls": len(attempts), "calls_retried": sum(1 for a in attempts if a > 1),
                    "max_attempts": max(attempts or [0]), "gave_up": sum(r["gave_up"] for r in results)},
        "refused": refused, "errors": [e for r in results for e in r["errors"]][:10],
        "server_internal_errors_logged": server_log.count("gateway call failed"),
        "machine_state": {"load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "run_s": round(ended_at - started, 1), "formation_after": state.strip().splitlines(), "monitor_events": times.pop("events"),
    }


def markdown(r: dict[str, Any]) -> str:
    f, s, c = r["failover"], r["settlements"], r["check"]
    code = r["server_code"]
    dirty = f" + {code['uncommitted_src_files']} uncommitted files" if code["uncommitted_src_files"] else ""
    return "\n".join([
        f"**failover under load: {r['engine']}; {r['people']:,} people, {r['server_workers']} server workers, {r['counters']} counters "
        f"on {r['machine']} ({r['cpu_model']}), {r['when']}; server code {code['commit']}"
        f"{dirty}**", "",
        f"{r['kill']} of {r['killed_node']} after {r['load_before_s']} s of load; the load ran {r['load_after_kill_s']} s more. "
        f"Load average {r['machine_state']['load_average_before'][0]} before, {r['machine_state']['load_average_after'][0]} after.", "",
        "| figure | value |", "|---|---|",
        f"| old primary marked unhealthy by the monitor, s after the kill | {f['old_primary_marked_unhealthy_s']} |",
        f"| standby reports it takes writes (wait_primary), s after the kill | {f['new_primary_takes_writes_s']} |",
        f"| first settlement sent after the kill and acknowledged (client-visible outage), s | {f['client_outage_s']} |",
        f"| longest gap between two acknowledged settlements, s | {f['longest_gap_between_settlements_s']} |",
        f"| settlements acknowledged (before / after the kill) | {s['acknowledged']} ({s['before_kill']} / {s['after_kill']}) |",
        f"| settlements/s before the kill / after recovery | {s['per_s_before_kill']} / {s['per_s_after_recovery']} |",
        f"| acknowledged settlements found once on the new primary | {c['found_once']} of {c['acknowledged']} |",
        f"| lost / duplicated | {r['lost_settlements']} / {r['duplicated_settlements']} |",
        f"| their stored answers under the msgid | {c['stored_answers_found']} |",
        f"| ledger check | {'passed' if r['ledger_check']['passed'] else 'FAILED'} |",
        f"| calls retried (same msgid) / calls / most attempts / gave up | {r['retries']['calls_retried']} / {r['retries']['calls']} / "
        f"{r['retries']['max_attempts']} / {r['retries']['gave_up']} |",
        f"| retries after \"unavailable\" / other retryable / broken connection | {r['retries']['unavailable']} / "
        f"{r['retries']['other_retryable']} / {r['retries']['connection']} |",
        f"| refused calls (not retryable) | {sum(r['refused'].values())} |",
        f"| internal errors in the server log | {r['server_internal_errors_logged']} |", "",
        "monitor events after the kill:", "", *[f"- {e}" for e in r["monitor_events"]], ""])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--people", type=int, default=2000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pool", type=int, default=400)
    p.add_argument("--before", type=float, default=20, help="seconds of load before the kill")
    p.add_argument("--after", type=float, default=30, help="seconds of load after the kill")
    p.add_argument("--retry-s", type=float, default=90, help="how long a counter re-sends one call before it gives up")
    p.add_argument("--database-url", default=None, help="an existing formation's URL (default: a new one from scripts/ha.sh)")
    p.add_argument("--ha-dir", default="", help="that formation's HA_DIR")
    p.add_argument("--keep", action="store_true", help="leave the formation running")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "failover"), help="result files' stem")
    return p


def main() -> None:
    args = parser().parse_args()
    result = run(args)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(stem.with_suffix(".md").read_text())
    print(f"written: {stem}.json, .md")
    if result["lost_settlements"] or result["duplicated_settlements"] or not result["ledger_check"]["passed"]:
        raise SystemExit("acknowledged settlements lost or duplicated, or the ledger does not balance")


if __name__ == "__main__":
    main()
