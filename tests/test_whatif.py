"""Policy what-if: a year replayed under a changed policy (yibao policy whatif) changes exactly what a hand computation
says, replays the policy in force to what was recorded, and writes nothing."""

from __future__ import annotations

import json
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, fresh_person, outpatient
from helpers import row_counts
from yibao.cli import CliError, app
from yibao.client import CounterClient
from yibao.core.errors import YibaoError
from yibao.policy.parameters import bundled_root
from yibao.whatif import service as whatif

OLD, NEW = 800_00, 500_00   # 370100's outpatient deductible for employees in service, and the changed one (fen)
RATIO = Decimal("0.50")     # their outpatient ratio at a level-3 hospital (HOSPITAL)


@pytest.fixture(scope="module")
def changed_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped policy with one change, keyed by its effective date like any policy change."""
    root = tmp_path_factory.mktemp("policy") / "policy"
    shutil.copytree(bundled_root(), root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    file = root / "370100" / "deductible.yaml"
    text = file.read_text(encoding="utf-8")
    assert "in_service: {2024-01-01: 800}" in text
    file.write_text(text.replace("in_service: {2024-01-01: 800}", "in_service: {2024-01-01: 800, 2026-01-01: 500}", 1), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def year_of_settlements(db, http):  # type: ignore[no-untyped-def]
    """Three employees' first outpatient visits of the year, fully in scope (甲类): under both deductibles, between them,
    above both."""
    counter = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL, db), http=http)
    assert counter.sign_in()["infcode"] == 0
    code = catalogue_codes(db)["jia"]
    settled, seen = [], set()
    for amount in ("300.00", "650.00", "1200.00"):
        person = fresh_person(db, "310", retired=False, skip=seen)
        seen.add(person.psn_no)
        out = outpatient(counter, person, "310", [(code, amount)], acct="0")
        settled.append((out["setlinfo"], int(Decimal(amount) * 100)))
    return settled


def _fund(in_scope: int, deductible: int) -> int:
    return int((Decimal(max(0, in_scope - deductible)) * RATIO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_a_lower_deductible_changes_the_pooled_fund_by_the_hand_computed_sum(db, year_of_settlements, changed_policy) -> None:
    year = int(year_of_settlements[0][0]["setl_time"][:4])
    expected = {s["setl_id"]: _fund(amount, NEW) - _fund(amount, OLD) for s, amount in year_of_settlements}
    assert sorted(expected.values()) == [0, 75_00, 150_00]  # 300: below both; 650: 150 over the new one; 1200: 300 more
    before = row_counts(db)

    summary = whatif.run(db, year, bundled_root(), changed_policy, workers=1)
    report = summary.as_json()

    assert summary.settlements == len(year_of_settlements)
    assert report["unreproduced_settlements"] == 0  # the policy in force replays every settlement to what was recorded
    assert report["recorded"] == report["current"]
    assert report["change"]["hifp_pay"] == sum(expected.values())
    # what the fund pays more, the people pay less: the bill is the same
    assert report["change"]["psn_part_amt"] == -report["change"]["fund_pay_sumamt"]
    assert {setl_id for setl_id, _, _ in summary.examples} == {k for k, v in expected.items() if v}
    paying_less = {p["psn_no"]: p["change"] for p in report["most_affected"]["paying_less"]}
    assert sorted(paying_less.values()) == sorted(-v for v in expected.values() if v)
    assert row_counts(db) == before  # nothing written


def test_worker_processes_answer_what_one_process_does(db, year_of_settlements, changed_policy) -> None:
    year = int(year_of_settlements[0][0]["setl_time"][:4])
    alone = whatif.run(db, year, bundled_root(), changed_policy, workers=1).as_json()
    shared = whatif.run(db, year, bundled_root(), changed_policy, workers=2, batch=1).as_json()
    assert shared == alone


def test_a_broken_policy_is_refused_before_any_replay(db, year_of_settlements, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundled_root(), broken, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (broken / "370100" / "deductible.yaml").unlink()
    with pytest.raises(YibaoError):
        whatif.run(db, 2026, bundled_root(), broken, workers=1)


def test_the_command_writes_the_report_and_says_it_in_one_line(settings, year_of_settlements, changed_policy, tmp_path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("YIBAO_DATABASE_URL", settings.database_url)
    year = year_of_settlements[0][0]["setl_time"][:4]
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["policy", "whatif", "--policy", str(changed_policy), "--year", year, "--out", str(out),
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "3 settlements, 2 pay differently" in result.output
    found = json.loads((out / "report.json").read_text())
    assert found["change"]["hifp_pay"] == 225_00
    assert "| 统筹基金 (hifp_pay) |" in (out / "report.md").read_text()
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    missing = CliRunner().invoke(app, ["policy", "whatif", "--policy", str(tmp_path / "nowhere"), "--year", year])
    # yibao.cli.main prints a CliError as one line on stderr with exit code 2 (tests/test_demo_and_cli.py)
    assert isinstance(missing.exception, CliError) and "no policy directory" in str(missing.exception)
