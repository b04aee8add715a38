"""Policy reloads without a restart: a changed file is loaded and swapped in whole; a broken one is refused, the old kept."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yibao.cli import app
from yibao.policy import parameters
from yibao.policy.parameters import STAMP, bundled_root
from yibao.policy.service import policy_for
from yibao.settlement import engine  # noqa: F401 (as in a server: its formulas declare the parameters a policy must hold)

ON = date(2026, 6, 1)
DEDUCTIBLE = "deductible.outpatient.{insutype}.{category}"


@pytest.fixture
def policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped policy that the process reads, checked for changes at every read."""
    copy = tmp_path / "policy"
    shutil.copytree(bundled_root(), copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setenv("YIBAO_POLICY_DIR", str(copy))
    monkeypatch.setenv("YIBAO_POLICY_CHECK_S", "0")
    yield copy
    monkeypatch.undo()
    parameters.reload()  # the shipped policy again for the tests that follow


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime even on a coarse file system


def signal(policy_dir: Path) -> None:
    """What `yibao policy reload` does once it has checked the directory: a new stamp."""
    stamp = policy_dir / STAMP
    stamp.write_text(f"{time.time_ns()}\n", encoding="utf-8")
    stat = stamp.stat()
    os.utime(stamp, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def employee() -> int:
    return policy_for("370100", "310", "in_service", ON).get(DEDUCTIBLE)  # type: ignore[no-any-return]


def test_a_changed_file_is_in_force_at_the_next_read_after_the_stamp(policy_dir: Path) -> None:
    assert employee() == 80_000
    before = parameters.bundled()
    edit(policy_dir / "370100" / "deductible.yaml", "in_service: {2024-01-01: 800}", "in_service: {2024-01-01: 800, 2026-03-01: 900}")
    assert employee() == 80_000  # a file being saved is not read: only the stamp says the directory is ready
    signal(policy_dir)
    assert employee() == 90_000
    assert parameters.bundled() is not before  # a new book, snapshots and all
    assert policy_for("370100", "310", "in_service", date(2026, 2, 1)).get(DEDUCTIBLE) == 80_000


def test_a_broken_file_is_refused_and_the_policy_in_force_stays(policy_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert employee() == 80_000
    edit(policy_dir / "370100" / "deductible.yaml", "in_service: {2024-01-01: 800}", "in_service: {2024-01-01: 900}\n  oops: [")
    signal(policy_dir)
    with caplog.at_level(logging.ERROR, logger="yibao.policy"):
        assert employee() == 80_000
        assert employee() == 80_000  # reported once, not at every read
    refusals = [r for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(refusals) == 1 and "370100/deductible.yaml: not valid YAML" in refusals[0].getMessage()
    # an impossible value, and a parameter a formula reads taken away, are refused the same way
    edit(policy_dir / "370100" / "deductible.yaml", "in_service: {2024-01-01: 900}\n  oops: [", "in_service: {2024-01-01: -1}")
    signal(policy_dir)
    assert employee() == 80_000
    edit(policy_dir / "370100" / "deductible.yaml", "in_service: {2024-01-01: -1}", "serving: {2024-01-01: 800}")
    signal(policy_dir)
    assert employee() == 80_000
    with pytest.raises(parameters.PolicyError, match="370100, insutype 310 .in_service. on 2024-01-01: 370100/deductible.yaml has no "
                                                     "parameter outpatient.310.in_service"):
        parameters.reload()
    # mended: in force again
    edit(policy_dir / "370100" / "deductible.yaml", "serving: {2024-01-01: 800}", "in_service: {2024-01-01: 700}")
    signal(policy_dir)
    assert employee() == 70_000


def test_cli_reload_checks_the_cases_then_signals_the_servers(policy_dir: Path) -> None:
    runner = CliRunner()
    assert employee() == 80_000
    # a change the region's own test cases disagree with is refused in one line; nothing is signalled
    edit(policy_dir / "370100" / "pool_ratio.yaml", "level_3: {2024-01-01: 0.85}", "level_3: {2024-01-01: 0.80}")
    refused = runner.invoke(app, ["policy", "reload"])
    assert refused.exit_code == 2
    # the first failing case of the region (a level-3 stay: the 2026 cases of which_funds_pay.yaml and worked example A)
    assert refused.output.startswith("not reloaded, the policy in force stays: FAIL 370100/tests/"), refused.output
    assert "hifp_pay" in refused.output and "more failing cases" in refused.output
    assert not (policy_dir / STAMP).exists()
    broken = policy_dir / "440300" / "caps.yaml"
    edit(broken, "unit: yuan", "unit: furlongs")
    answer = runner.invoke(app, ["policy", "reload"])
    assert answer.exit_code == 2 and len(answer.output.strip().splitlines()) == 1
    assert "440300/caps.yaml: 'unit' must be one of" in answer.output
    # mended: checked, stamped, and a running process (this one) loads it at its next read
    edit(broken, "unit: furlongs", "unit: yuan")
    edit(policy_dir / "370100" / "pool_ratio.yaml", "level_3: {2024-01-01: 0.80}", "level_3: {2024-01-01: 0.85}")
    edit(policy_dir / "370100" / "deductible.yaml", "in_service: {2024-01-01: 800}", "in_service: {2024-01-01: 800, 2027-01-01: 850}")
    ok = runner.invoke(app, ["policy", "reload"])
    assert ok.exit_code == 0, ok.output
    assert "policy of 370100, 440300 checked" in ok.output and (policy_dir / STAMP).exists()
    assert policy_for("370100", "310", "in_service", date(2027, 1, 5)).get(DEDUCTIBLE) == 85_000


def test_the_stamp_alone_makes_a_process_load_the_directory_again(policy_dir: Path) -> None:
    before = parameters.bundled()
    assert parameters.bundled() is before
    (policy_dir / STAMP).write_text("now\n", encoding="utf-8")
    assert parameters.bundled() is not before


def test_a_half_written_file_that_still_parses_is_refused_by_the_check(policy_dir: Path) -> None:
    """A credential.yaml cut short loads as YAML; the check still refuses it (what the edges read is checked too)."""
    path = policy_dir / "370100" / "credential.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\npay_auth_cert_types:")], encoding="utf-8")
    with pytest.raises(parameters.PolicyError, match="pay_auth_cert_types"):
        parameters.reload()
    assert employee() == 80_000


def test_reload_says_in_one_line_when_it_cannot_tell_the_servers(policy_dir: Path) -> None:
    import subprocess
    import sys

    (policy_dir / STAMP).mkdir()  # a stamp that cannot be written as a file, whoever runs the test
    answer = subprocess.run([sys.executable, "-m", "yibao", "policy", "reload"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "YIBAO_POLICY_DIR": str(policy_dir)})
    assert answer.returncode == 2 and len(answer.stderr.strip().splitlines()) == 1, answer.stderr
    assert "the servers cannot be told" in answer.stderr and "Traceback" not in answer.stderr
