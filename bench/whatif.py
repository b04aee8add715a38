"""Policy what-if over a whole year of a region: how long `yibao policy whatif` takes, on every core.

    .venv/bin/python bench/whatif.py --people 1000000

1. The demo region (bench/national_day.py's `ensure_region`, built once under bench/data/) is copied, and a year of
   care is written into the copy in bulk: for each insured person of the demo region, outpatient visits (a few a year,
   more for older people), a pharmacy purchase now and then and a stay for some; fee splits drawn at random; each
   settlement's amounts computed by the engine under the policy in force, in order, with the year's totals carried
   (the same replay the what-if runs), so that the recorded year is one the policy really produces. Rows go into the
   visit and settlement tables as the settlement service writes them (no ledger postings: the what-if reads none).
2. `yibao policy whatif` runs on that copy with the shipped policy changed in one place (the employees' outpatient
   deductible 800 → 500 yuan from 1 January), with its progress bar, on every core; the wall time, settlements per
   second and the machine's state go to bench/results/whatif-<people>.json and .md.

The year written is the current one up to today. Making the year is not what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from national_day import DATA, code_env, code_identity, ensure_region, machine, system_cpu  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AMOUNTS = ("fund_pay_sumamt", "hifp_pay", "cvlserv_pay", "hifob_pay", "hifmi_pay", "maf_pay", "psn_part_amt", "acct_pay", "psn_cash_pay")


def make_year(url: str, seed: int) -> dict[str, Any]:
    """Write a year of settlements for every insured person of 370100; answers what was written."""
    from sqlalchemy import bindparam, insert, select, update

    from yibao.config import Settings
    from yibao.core import clock
    from yibao.encounter.models import Settlement, Visit
    from yibao.policy.parameters import bundled
    from yibao.registry.models import Enrolment, Institution
    from yibao.store.db import Database
    from yibao.whatif import history
    from yibao.whatif.replay import Books, Recorded, SettlementFacts, replay_person

    table = Settlement.__table__
    UPDATE = (update(table).where(table.c.setl_id == bindparam("b_setl_id"))
              .values({name: bindparam(name) for name in AMOUNTS}))

    db = Database.from_settings(Settings(database_url=url))
    books = Books(bundled())
    rng = random.Random(seed)
    today = clock.today()
    start = date(today.year, 1, 1)
    days = (today - start).days or 1
    with db.unit_of_work(write=False) as session:
        hospitals = [(code, level or 1) for code, level in session.execute(
            select(Institution.fixmedins_code, Institution.medins_lv)
            .where(Institution.admdvs == "370100", Institution.fixmedins_type == "1"))]
        pharmacies = [code for (code,) in session.execute(
            select(Institution.fixmedins_code).where(Institution.admdvs == "370100", Institution.fixmedins_type == "2"))]
        people = list(session.execute(
            select(Enrolment.psn_no, Enrolment.insutype, Enrolment.psn_type, Enrolment.cvlserv_flag)
            .where(Enrolment.insuplc_admdvs == "370100", Enrolment.psn_insu_stas == "1", Enrolment.psn_insu_date <= start)
            .order_by(Enrolment.psn_no, Enrolment.insutype)))
    written = {"people": 0, "settlements": 0, "outpatient": 0, "pharmacy": 0, "inpatient": 0}
    serial = 0
    visits: list[dict[str, Any]] = []
    settlements: list[dict[str, Any]] = []

    def flush() -> None:
        with db.unit_of_work() as session:
            if visits:
                session.execute(insert(Visit), visits)
                session.execute(insert(Settlement), settlements)
        visits.clear()
        settlements.clear()

    seen: set[str] = set()
    for person in people:
        if person.psn_no in seen:  # one insurance type a person: the what-if replays the one a visit names
            continue
        seen.add(person.psn_no)
        retired = person.psn_type.startswith("12")
        care = (["outpatient"] * rng.choice((0, 1, 1, 2, 3, 4, 6 if retired else 3))
                + ["pharmacy"] * rng.choice((0, 0, 1, 2)) + ["inpatient"] * (1 if rng.random() < (0.12 if retired else 0.05) else 0))
        if not care:
            continue
        written["people"] += 1
        facts = []
        for kind, day in sorted(((k, start + timedelta(days=rng.randrange(days))) for k in care), key=lambda x: x[1]):
            serial += 1
            code, level = rng.choice(hospitals) if kind != "pharmacy" else (rng.choice(pharmacies), 1)
            total = {"outpatient": rng.randint(30_00, 1_500_00), "pharmacy": rng.randint(20_00, 600_00),
                     "inpatient": rng.randint(3_000_00, 60_000_00)}[kind]
            fulamt = total * rng.randint(0, 10) // 100
            pre = (total - fulamt) * rng.randint(0, 10) // 100
            moment = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(8 * 3600, 18 * 3600))
            facts.append(SettlementFacts(
                setl_id=f"WI{serial:020d}", psn_no=person.psn_no, mdtrt_id=f"WV{serial:020d}", setl_time=moment, care_day=day,
                kind=kind, med_type={"outpatient": "11", "pharmacy": "41", "inpatient": "21"}[kind], insutype=person.insutype,
                psn_type=person.psn_type, insuplc_admdvs="370100", fixmedins_code=code, hosp_lv=level,
                cvlserv=person.cvlserv_flag == "1", enrolled=frozenset({person.insutype}), identities=(), unfiled=False,
                referral=False, opsp_dise_code="", mid_setl=False, acct_balance=0, mulaid_balance=0, acct_used=False,
                medfee_sumamt=total, fulamt_ownpay_amt=fulamt, overlmt_selfpay=0, preselfpay_amt=pre,
                inscp_scp_amt=total - fulamt - pre, recorded=Recorded(0, 0, 0, 0, 0, 0, 0, 0, 0)))
        for f in facts:
            written["settlements"] += 1
            written[f.kind] += 1
            visits.append({"mdtrt_id": f.mdtrt_id, "psn_no": f.psn_no, "insutype": f.insutype, "fixmedins_code": f.fixmedins_code,
                           "kind": f.kind, "med_type": f.med_type, "ipt_otp_no": f.mdtrt_id[-12:], "mdtrt_cert_type": "02",
                           "begntime": f.setl_time, "status": "settled", "mdtrtarea_admvs": "370100", "insuplc_admdvs": "370100"})
            settlements.append({
                "setl_id": f.setl_id, "mdtrt_id": f.mdtrt_id, "psn_no": f.psn_no, "fixmedins_code": f.fixmedins_code,
                "insutype": f.insutype, "psn_type": f.psn_type, "cvlserv_flag": "1" if f.cvlserv else "0", "med_type": f.med_type,
                "kind": f.kind, "setl_time": f.setl_time, "year": f.care_day.year, "medins_setl_id": f.setl_id,
                "mdtrt_cert_type": "02", "clr_type": {"outpatient": "11", "inpatient": "21", "pharmacy": "41"}[f.kind],
                "clr_optins": "370100", "mdtrtarea_admvs": "370100", "medfee_sumamt": f.medfee_sumamt,
                "fulamt_ownpay_amt": f.fulamt_ownpay_amt, "overlmt_selfpay": 0, "preselfpay_amt": f.preselfpay_amt,
                "inscp_scp_amt": f.inscp_scp_amt, "setldetail": "[]", "pool_prop_selfpay": 0, "balc": 0, "act_pay_dedc": 0,
                "acct_mulaid_pay": 0,
                **dict.fromkeys(AMOUNTS, 0)})
        if len(settlements) >= 20_000:
            flush()
    flush()
    # Second pass: each settlement's amounts as the policy in force computes them from what the what-if will read (the
    # person's enrolments and identities included), in the order they were made, with the year's totals carried.
    with db.unit_of_work(write=False) as session:
        for people_batch in history.people_batches(session, start.year):
            updates = [{"b_setl_id": a.facts.setl_id, **{name: getattr(a, name) for name in AMOUNTS}}
                       for person_settlements in people_batch for a in replay_person(books, person_settlements)]
            with db.unit_of_work() as writer:
                writer.connection().execute(UPDATE, updates)
    db.dispose()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    region = ensure_region(args.people, None).removeprefix("sqlite:///")
    work = DATA / f"whatif-{args.people}.db"  # kept for the next run: writing the year is slow and not what is measured
    if not work.exists():
        print(f"copying {region} and writing a year of care into it …", flush=True)
        shutil.copyfile(region, work)
        # the region may have been built by an older yibao: bring its schema to this one's before writing into it
        subprocess.run([sys.executable, "-m", "yibao", "db", "upgrade"], check=True,
                       env={**os.environ, "YIBAO_DATABASE_URL": f"sqlite:///{work}", "PYTHONPATH": str(ROOT / "src")})
        started = time.perf_counter()
        written = make_year(f"sqlite:///{work}", 20261123)
        print(f"written {written} in {time.perf_counter() - started:.0f} s", flush=True)
        (work.with_suffix(".json")).write_text(json.dumps(written))
    written = json.loads(work.with_suffix(".json").read_text())

    from yibao.core import clock
    from yibao.policy.parameters import bundled_root

    policy = DATA / "whatif-policy"
    shutil.rmtree(policy, ignore_errors=True)
    shutil.copytree(bundled_root(), policy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    deductible = policy / "370100" / "deductible.yaml"
    year = clock.today().year
    deductible.write_text(deductible.read_text(encoding="utf-8").replace(
        "in_service: {2024-01-01: 800}", f"in_service: {{2024-01-01: 800, {year}-01-01: 500}}", 1), encoding="utf-8")
    out = DATA / "whatif-report"
    env = {**os.environ, "YIBAO_DATABASE_URL": f"sqlite:///{work}", "PYTHONPATH": str(ROOT / "src")}
    before, started = system_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "yibao", "policy", "whatif", "--policy", str(policy), "--year", str(year),
                           "--out", str(out), "--workers", str(args.workers)], env=env, check=True)
    elapsed = time.perf_counter() - started
    after = system_cpu()
    busy = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
    idle = sum(getattr(after, f) - getattr(before, f) for f in ("idle", "iowait"))
    report = json.loads((out / "report.json").read_text())
    state = machine()
    result = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": state["description"], "cpu_model": state["cpu_model"],
              "code": code_identity(code_env(None)), "people": args.people, "people_with_care": written["people"],
              "workers": args.workers, "settlements": report["settlements"], "written": written,
              "changed_settlements": report["changed_settlements"], "unreproduced_settlements": report["unreproduced_settlements"],
              "elapsed_s": round(elapsed, 1), "settlements_per_s": round(report["settlements"] / elapsed),
              "fund_change_fen": report["change"]["fund_pay_sumamt"], "own_payments_change_fen": report["change"]["psn_part_amt"],
              "machine_busy_share": round(busy / (busy + idle), 3) if busy + idle else None, "exit_code": done.returncode,
              "change": "370100 employees' outpatient deductible 800 → 500 yuan from 1 January"}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"whatif-{args.people}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(
        f"# Policy what-if, {args.people:,} people\n\n{result['settlements']:,} settlements of {year} replayed twice (policy in force "
        f"and changed) with {args.workers} worker processes in **{result['elapsed_s']} s** ({result['settlements_per_s']:,} "
        f"settlements/s, reading included); {result['changed_settlements']:,} pay differently; "
        f"{result['unreproduced_settlements']:,} not reproduced. Machine busy {result['machine_busy_share']}.\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
