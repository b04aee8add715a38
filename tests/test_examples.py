"""The HIS counter example walks a whole outpatient visit and inpatient stay against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import HOSPITAL, secret_of
from flows import person_with

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "his_counter.py"


def test_his_counter_example_runs_end_to_end(live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", retired=False, min_balance=50_000)
    result = subprocess.run([sys.executable, str(EXAMPLE), "--url", live_server, "--fixmedins-code", HOSPITAL, "--secret",
                             secret_of(HOSPITAL),
                             "--certno", person.certno], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for infno in ("9001", "1101", "2201", "2203", "2204", "2206", "2207", "2401", "2301", "2402", "2303", "2304"):
        assert f"── {infno} →" in result.stdout
    assert result.stdout.count('"infcode":0') >= 14
