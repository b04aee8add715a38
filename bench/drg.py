"""The pure DRG/DIP grouper alone: cases grouped per second on one core.

    .venv/bin/python bench/drg.py [--seconds 5] [--cases 5000]

Synthetic discharged cases drawn from the demo tables' own codes (yibao/drg/data): a main diagnosis from every MDC's
prefixes made into full ICD-10 医保版 codes, 0–4 secondary diagnoses (half of them from the CC/MCC list), 0–2
procedures (60% of cases none); about one case in fifty has a main diagnosis no MDC takes (ungroupable). Each case is
grouped by DRG and given its DIP packet; storage and HTTP are not involved. Writes bench/results/drg.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections import Counter
from pathlib import Path

from yibao.drg import grouper
from yibao.drg.grouper import Case, Diagnosis, Procedure


def synthetic(n: int, seed: int = 1) -> list[Case]:
    rng = random.Random(seed)
    tables = grouper.demo_tables()
    mains = []
    for group in tables.adrg.values():
        for prefix in group.diagnoses or tables.mdc[group.mdc][1]:
            if len(prefix) >= 3:
                mains.append(f"{prefix[:3]}.{prefix[4:5] or '9'}00"[:7].ljust(7, "0"))
    mains = [m for m in mains if grouper.DIAGNOSIS.fullmatch(m)]
    secondaries = list(tables.cc) + ["E11.900", "I10.x00", "E78.500", "K29.700", "M81.900"]
    procedures = list(tables.procedures)
    cases = []
    for _ in range(n):
        main = "U07.100" if rng.random() < 0.02 else rng.choice(mains)
        diagnoses = [Diagnosis(main, True)] + [Diagnosis(rng.choice(secondaries)) for _ in range(rng.randint(0, 4))]
        chosen = [] if rng.random() < 0.6 else rng.sample(procedures, rng.randint(1, 2))
        cases.append(Case(tuple(diagnoses), tuple(Procedure(c, i == 0) for i, c in enumerate(chosen)), age=rng.randint(0, 95)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cases", type=int, default=5000)
    args = parser.parse_args()
    tables = grouper.demo_tables()
    cases = synthetic(args.cases)
    outcomes = Counter("grouped" if grouper.group(c, tables).grouped else grouper.group(c, tables).code for c in cases)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for case in cases:
            grouper.group(case, tables)
            grouper.packet(case, tables)
        n += len(cases)
    rate = n / (time.perf_counter() - start)
    result = {"cases_per_s_one_core": round(rate), "cases": len(cases), "seconds": args.seconds,
              "grouped_share": round(outcomes["grouped"] / len(cases), 3), "ungroupable_0000": outcomes["0000"],
              "ambiguous_qy": outcomes["QY"], "tables": f"{tables.version} / {tables.dip_version}",
              "python": platform.python_version(), "machine": platform.machine()}
    print(json.dumps(result))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "drg.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "drg.md").write_text(
        "# DRG/DIP grouper, one core (`bench/drg.py`)\n\n| figure | value |\n|---|---:|\n"
        f"| cases grouped per second (DRG group + DIP packet), one core | {result['cases_per_s_one_core']:,} |\n"
        f"| synthetic cases in the set | {len(cases):,} |\n| share grouped | {result['grouped_share']} |\n"
        f"| ungroupable (0000) | {outcomes['0000']} |\n| ambiguous (QY) | {outcomes['QY']} |\n")


if __name__ == "__main__":
    main()
