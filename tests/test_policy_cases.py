"""The test cases written beside each region's policy (policy/data/<admdvs>/tests/*.yaml) pass, and a wrong one fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from yibao.cli import app
from yibao.policy.parameters import PolicyError, bundled, bundled_root
from yibao.settlement.cases import Case, load_cases, run

CASES = load_cases(bundled_root())


def test_every_region_has_cases() -> None:
    assert {c.admdvs for c in CASES} == set(bundled().regions)
    # docs/policy.md §4 C is one of them
    assert any(c.name.startswith("C: above the basic fund's cap") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.source}:{c.name[:40]}" for c in CASES])
def test_policy_case(case: Case) -> None:
    result = run(bundled(), case)
    assert result.passed, result.line()


def test_a_wrong_expectation_fails_and_says_which_figure() -> None:
    example = next(c for c in CASES if c.name.startswith("C:"))
    wrong = Case(example.source, example.admdvs, example.name, {**example.spec, "expect": {"hifob_pay": "6882.36"}})
    result = run(bundled(), wrong)
    assert not result.passed and result.line().endswith("hifob_pay 6882.35, expected 6882.36")


def test_a_malformed_case_is_refused_with_its_name() -> None:
    example = CASES[0]
    with pytest.raises(PolicyError, match="unknown keys colour"):
        run(bundled(), Case(example.source, example.admdvs, "bad", {**example.spec, "colour": "red"}))
    with pytest.raises(PolicyError, match="not a settlement figure"):
        run(bundled(), Case(example.source, example.admdvs, "bad", {**example.spec, "expect": {"hifp": "1.00"}}))


def test_cli_prints_one_line_per_case_and_fails_on_a_failing_case(tmp_path: Path) -> None:
    runner = CliRunner()
    answer = runner.invoke(app, ["policy", "test", "370100"])
    assert answer.exit_code == 0, answer.output
    lines = answer.output.strip().splitlines()
    assert len(lines) == sum(c.admdvs == "370100" for c in CASES) + 1 and all(line.startswith("ok ") for line in lines[:-1])
    # a copy of the policy whose case disagrees with it
    import shutil

    copy = tmp_path / "policy"
    shutil.copytree(bundled_root(), copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    case_file = copy / "370100" / "tests" / "worked_examples.yaml"
    case_file.write_text(case_file.read_text(encoding="utf-8").replace('hifob_pay: "6882.35"', 'hifob_pay: "6000.00"'), encoding="utf-8")
    failing = runner.invoke(app, ["policy", "test", "370100", "--dir", str(copy)])
    assert failing.exit_code == 1
    assert "FAIL 370100/tests/worked_examples.yaml: C: above the basic fund's cap" in failing.output
    assert "hifob_pay 6882.35, expected 6000.00" in failing.output
