"""The pure settlement engine alone: settlements per second on one core (target ≥ 20,000).

    .venv/bin/python bench/engine.py [--seconds 5]

Random claims (outpatient 85%, inpatient 5%, pharmacy 10%; 1–6 lines; employees and residents)
are classified and settled in memory; storage and HTTP are not involved.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import date
from pathlib import Path

from yibao.policy.service import policy_for
from yibao.settlement.engine import CatalogRule, Claim, FeeLine, Patient, YearToDate, classify, settle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    rng = random.Random(1)
    on = date(2026, 6, 1)
    policies = [policy_for("370100", "310", "in_service", on), policy_for("370100", "310", "retired", on),
                policy_for("370100", "390", "all", on)]
    rules = [CatalogRule(f"C{i}", rng.choice(("01", "01", "02", "03")), "09", pric_uplmt_fen=rng.choice((None, 5000, 20000)),
                         lmt_hosp_lv=rng.choice((None, None, 2))) for i in range(300)]
    claims = []
    for _ in range(2000):
        policy = rng.choice(policies)
        kind = rng.choices(("outpatient", "inpatient", "pharmacy"), weights=(85, 5, 10))[0]
        lines = [FeeLine(str(j), "C", rng.randint(500, 300_000 if kind == "inpatient" else 20_000)) for j in range(rng.randint(1, 6))]
        enrolled = frozenset({"310", "330"}) if policy.insutype == "310" else frozenset({"390", "392"})
        claim = Claim(kind, rng.randint(1, 3), enrolled, assistance_identity=rng.choice((None,) * 9 + ("2102",)),
                      acct_balance=rng.randint(0, 500_000), acct_used=rng.random() < 0.7)
        ytd = YearToDate(otp_dedc=rng.randint(0, 80_000), hifp=rng.randint(0, 1_000_000), hifp_otp=rng.randint(0, 100_000))
        claims.append((policy, claim, ytd, [(line, rng.choice(rules)) for line in lines]))
    patient = Patient(45, "1")
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for policy, claim, ytd, lines in claims:
            splits = [classify(line, rule, patient, claim.hosp_lv, policy.yi_selfpay_prop) for line, rule in lines]
            settle(policy, claim, ytd, splits)
        n += len(claims)
    rate = n / (time.perf_counter() - start)
    result = {"settlements_per_s_one_core": round(rate), "mean_lines": round(sum(len(c[3]) for c in claims) / len(claims), 2)}
    print(json.dumps(result))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "engine.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
