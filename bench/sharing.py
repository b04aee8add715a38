"""保医通, the whole path (not a test): consent → the insurer's fetch → the insurer's claim decision, timed.

    .venv/bin/python bench/sharing.py [--runs 200]

Starts a real server (`yibao serve --demo`, one worker, SQLite, a small demo region), settles a few outpatient visits
of one person at a demo hospital through the signed national interface, registers an insurer, then many times over:

1. the person signs an authorisation in the app's REST API (two of their settlements, the 6-digit password: the
   password hash, scrypt, is most of this step, on purpose),
2. the insurer fetches it with a signed GET of /fhir/ExplanationOfBenefit (a validated FHIR Bundle; the access is
   linked to the SM3 chain),
3. the insurer's decision stand-in (tests/standins/claim_decision.py) parses the bundle with fhir.resources and decides.

Each run's time from the consent request to the decision is one sample; p50/p99 of it and of each step go to
bench/results/sharing.json, with `yibao audit verify` over the chain the runs wrote. The figure to beat is Jinan's
(People's Daily): a commercial claim down from 10 days to 1 day.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

HOSPITAL = "H37010000001"
INSURER = "PICC3701"
PASSWORD = "135790"


def pct(values: list[float], p: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(len(values) * p))], 2)


def settle(client, psn_no: str, certno: str, code: str, amount: str) -> str:  # type: ignore[no-untyped-def]
    """One outpatient visit through the national interface (2201, 2203, 2204, 2207); its setl_id."""
    from yibao.core import clock

    def ok(answer: dict) -> dict:  # type: ignore[type-arg]
        assert answer.get("infcode") == 0, answer.get("err_msg")
        return answer["output"]

    now = clock.fmt_datetime(clock.now())
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}
    mdtrt_id = ok(client.call("2201", {"data": {"psn_no": psn_no, "insutype": "310", "begntime": now, **cert,
                                                "ipt_otp_no": f"MZ{random.randrange(10**12)}", "atddr_no": "D37010000001",
                                                "dr_name": "医生", "dept_code": "A03", "dept_name": "内科", "caty": "A03",
                                                "med_type": "11"}}))["data"]["mdtrt_id"]
    ok(client.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11", "begntime": now},
                            "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900", "diag_name": "急性上呼吸道感染",
                                          "diag_dept": "内科", "dise_dor_no": "D37010000001", "dise_dor_name": "医生", "diag_time": now,
                                          "vali_flag": "1"}]}))
    ok(client.call("2204", {"feedetail": [{"feedetl_sn": f"F{random.randrange(10**12)}", "mdtrt_id": mdtrt_id, "psn_no": psn_no,
                                           "chrg_bchno": "B1", "rxno": "", "rx_circ_flag": "0", "fee_ocur_time": now, "med_list_codg": code,
                                           "medins_list_codg": "H-" + code[:10], "det_item_fee_sumamt": Decimal(amount), "cnt": Decimal(1),
                                           "pric": Decimal(amount), "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
                                           "bilg_dr_codg": "D37010000001", "bilg_dr_name": "医生", "hosp_appr_flag": "0"}]}))
    data = {"psn_no": psn_no, **cert, "med_type": "11", "medfee_sumamt": Decimal(amount), "psn_setlway": "01", "mdtrt_id": mdtrt_id,
            "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    return ok(client.call("2207", {"data": data}))["setlinfo"]["setl_id"]


def run(runs: int, port: int) -> dict:  # type: ignore[type-arg]
    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-sharing-"))
    url_db = f"sqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "YIBAO_DATABASE_URL": url_db, "YIBAO_HOME": str(workdir), "YIBAO_DEMO_SEED": "7",
           "YIBAO_RATE_ACTIVATION_IP": "1000000", "YIBAO_RATE_SIGN_IN_IP": "1000000"}
    env.pop("YIBAO_MASTER_KEY", None)
    os.environ["YIBAO_HOME"], os.environ["YIBAO_DATABASE_URL"] = str(workdir), url_db  # this process opens the same vault
    os.environ.pop("YIBAO_MASTER_KEY", None)
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "yibao", "serve", "--demo", "--port", str(port), "--people", "1000"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        from sqlalchemy import select

        from standins.claim_decision import decide
        from yibao.client import CounterClient
        from yibao.codes.models import CatalogItem
        from yibao.core import clock
        from yibao.credential.realperson import demo_face
        from yibao.gateway import keys
        from yibao.registry.models import Enrolment, Person
        from yibao.sharing import service as sharing
        from yibao.store.db import Database

        db = Database(url_db)
        with db.unit_of_work() as session:
            hospital_secret = keys.active_secret(session, HOSPITAL) or ""
            insurer_secret = sharing.add_insurer(session, INSURER, "中国人民健康保险济南中心支公司")
            adult = Person.brdy < clock.today() - timedelta(days=30 * 365)
            person = session.scalars(select(Person).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                     .where(Enrolment.insutype == "310", Enrolment.psn_insu_stas == "1", adult)
                                     .order_by(Person.psn_no).limit(1)).one()
            psn_no, certno, name = person.psn_no, person.certno, person.psn_name
            c = CatalogItem
            code = session.scalar(select(c.med_list_codg).where(c.chrgitm_lv == "01", c.enddate.is_(None), c.lmt_gend.is_(None),
                                                                c.lmt_age_min.is_(None), c.lmt_age_max.is_(None), c.lmt_hosp_lv.is_(None),
                                                                c.pric_uplmt_fen.is_(None), c.list_type == "102")
                                  .order_by(c.med_list_codg).limit(1))
        db.dispose()
        counter = CounterClient(url, HOSPITAL, hospital_secret)
        assert counter.sign_in()["infcode"] == 0
        setl_ids = [settle(counter, psn_no, certno, code, f"{random.randrange(5000, 90000) / 100:.2f}") for _ in range(5)]

        client = httpx.Client(base_url=url, timeout=30)
        activated = client.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": certno, "name": name, "password": PASSWORD,
                                                            "face": demo_face(certno), "liveness": 0.99})
        assert activated.status_code == 201, activated.text
        auth = {"authorization": f"Bearer {activated.json()['token']}"}
        until = (clock.today() + timedelta(days=30)).isoformat()
        consent_ms, fetch_ms, decide_ms, total_ms, sizes, outcomes = [], [], [], [], [], {"pay": 0, "deny": 0}
        first_ms = None
        for n in range(runs + 1):  # run 0 loads fhir.resources in both processes: reported apart, not in the percentiles
            picked = random.sample(setl_ids, 2)
            t0 = time.perf_counter()
            granted = client.post(f"/api/v1/people/{psn_no}/consents", headers=auth,
                                  json={"insurer_code": INSURER, "setl_ids": picked, "valid_until": until, "password": PASSWORD,
                                        "purpose": "门诊医疗险理赔"})
            t1 = time.perf_counter()
            assert granted.status_code == 201, granted.text
            target = f"/fhir/ExplanationOfBenefit?consent={granted.json()['consent_id']}"
            reply = client.get(target, headers=sharing.sign_headers(INSURER, insurer_secret, "GET", target))
            t2 = time.perf_counter()
            assert reply.status_code == 200, reply.text
            decision = decide(reply.content)
            t3 = time.perf_counter()
            assert decision.claims == 2
            if n == 0:
                first_ms = round((t3 - t0) * 1000, 2)
                continue
            outcomes[decision.outcome] += 1
            sizes.append(len(reply.content))
            consent_ms.append((t1 - t0) * 1000)
            fetch_ms.append((t2 - t1) * 1000)
            decide_ms.append((t3 - t2) * 1000)
            total_ms.append((t3 - t0) * 1000)
        t0 = time.perf_counter()
        verified = subprocess.run([sys.executable, "-m", "yibao", "audit", "verify"], env=env, capture_output=True, text=True, timeout=300)
        verify_s = time.perf_counter() - t0
        return {
            "runs": runs, "settlements_per_consent": 2, "bundle_bytes_mean": round(statistics.mean(sizes)),
            "consent_p50_ms": pct(consent_ms, 0.5), "consent_p99_ms": pct(consent_ms, 0.99),
            "fetch_p50_ms": pct(fetch_ms, 0.5), "fetch_p99_ms": pct(fetch_ms, 0.99),
            "decision_p50_ms": pct(decide_ms, 0.5), "decision_p99_ms": pct(decide_ms, 0.99),
            "whole_path_p50_ms": pct(total_ms, 0.5), "whole_path_p99_ms": pct(total_ms, 0.99),
            "whole_path_max_ms": round(max(total_ms), 2), "first_run_ms": first_ms, "decisions": outcomes,
            "audit_verify": verified.stdout.strip() or verified.stderr.strip(), "audit_verify_exit": verified.returncode,
            "audit_verify_s_with_process_start": round(verify_s, 2),
            "jinan_claim_before_s": 10 * 86400, "jinan_claim_after_s": 86400,
        }
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--port", type=int, default=18767)
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "when": time.strftime("%Y-%m-%d %H:%M"), "server": "yibao serve --demo, one worker, SQLite, 1,000 people",
               "fhir": "fhir.resources R4B (FHIR 4.3.0)", "whole_path": run(args.runs, args.port)}
    print(json.dumps(results, indent=2, ensure_ascii=False))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "sharing.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
