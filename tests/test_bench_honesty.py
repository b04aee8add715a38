"""Benchmarks are honest: docs/performance.md quotes only figures found in committed result files, and the
national-day harness draws the mix it names. No server, no timing: the harness's pure functions, loaded by path."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
SOURCE = re.compile(r"bench/results/[\w.\-]+\.(?:json|md|png)")
# a number not glued to a word (p50, x86_64, H370… are names, not figures); thousands separators allowed
NUMBER = re.compile(r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?")


def _national_day():
    path = ROOT / "bench" / "national_day.py"
    spec = importlib.util.spec_from_file_location("bench_national_day", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look the module up while it loads
    spec.loader.exec_module(module)
    return module


nd = _national_day()


def _numbers(text: str) -> set[float]:
    found = set()
    for raw in NUMBER.findall(text):
        try:
            found.add(abs(float(raw.replace(",", "").replace("−", "-"))))
        except ValueError:
            continue
    return found


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s\-:|]+", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_result_file_the_page_names_exists() -> None:
    named = set(SOURCE.findall(DOC.read_text()))
    assert named, "docs/performance.md names no result file"
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert not missing, f"named in docs/performance.md but not in the tree: {missing}"


def test_every_figure_in_a_table_is_in_the_file_its_row_names() -> None:
    text = DOC.read_text()
    checked, wrong, unsourced = 0, [], []
    headers = {line for line in text.splitlines() if re.fullmatch(r"\|[\s\-:|]+", line)}
    lines = text.splitlines()
    header_rows = {lines[i - 1] for i, line in enumerate(lines) if line in headers and i > 0}
    for line in lines:
        if not line.startswith("|") or line in headers or line in header_rows:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        sources = [s for cell in cells for s in SOURCE.findall(cell)]
        figures = [cell for cell in cells[1:] if not SOURCE.search(cell)]
        numbers = [n for cell in figures for n in NUMBER.findall(cell)]
        if not numbers:
            continue  # a row still to be filled, or one without figures
        if not sources:
            unsourced.append(line)
            continue
        in_files = set().union(*(_numbers((ROOT / s).read_text()) for s in sources if not s.endswith(".png")))
        for raw in numbers:
            checked += 1
            if abs(float(raw.replace(",", "").replace("−", "-"))) not in in_files:
                wrong.append(f"{raw} in {line[:80]}… not in {sources}")
    assert not unsourced, "table rows with figures but no result file:\n" + "\n".join(unsourced)
    assert not wrong, "\n".join(wrong)
    assert checked > 20  # the page does quote figures, so the check above checked something


def test_the_checker_catches_a_figure_that_is_not_in_the_file(tmp_path: Path) -> None:
    result = tmp_path / "r.json"
    result.write_text('{"outpatient_settlements_per_s": 110.2, "counts": {"outpatient": 6693}}')
    assert {110.2, 6693.0} <= _numbers(result.read_text())
    row = "| run | 6,693 | 110.3 | `bench/results/r.json` |"
    cells = _table_rows(row)[0]
    quoted = {abs(float(n.replace(",", ""))) for cell in cells[1:-1] for n in NUMBER.findall(cell)}
    assert quoted - _numbers(result.read_text()) == {110.3}
    assert NUMBER.findall("p50 x86_64 H37010000001 2207 p99") == ["2207"]


def test_the_mix_chooser_draws_the_named_mix() -> None:
    assert nd.MIX == {"outpatient": 0.85, "pharmacy": 0.10, "inpatient": 0.05}
    rng = random.Random(20261122)
    draws = [nd.choose_kind(rng) for _ in range(10_000)]
    for kind, weight in nd.MIX.items():
        share = draws.count(kind) / len(draws)
        assert share == pytest.approx(weight, abs=0.015), (kind, share)  # 3σ at 85% over 10,000 draws is 1.1 points


def test_the_chooser_follows_other_weights() -> None:
    rng = random.Random(7)
    draws = [nd.choose_kind(rng, {"a": 1.0, "b": 3.0}) for _ in range(10_000)]
    assert draws.count("b") / len(draws) == pytest.approx(0.75, abs=0.015)


def test_the_mix_table_records_requested_and_achieved() -> None:
    table = nd.mix_table(nd.MIX, {"outpatient": 90, "pharmacy": 6, "inpatient": 4}, {"outpatient": 80, "pharmacy": 6, "inpatient": 4})
    assert table["outpatient"] == {"requested_percent": 85.0, "attempted": 90, "completed": 80, "attempted_percent": 90.0,
                                   "achieved_percent": 88.89}
    assert table["inpatient"]["achieved_percent"] == 4.44


def test_server_side_time_is_read_from_the_histogram_buckets() -> None:
    registry = CollectorRegistry()
    histogram = Histogram(nd.SERVER_HISTOGRAM, "test", ["infno"], buckets=(0.001, 0.002, 0.005, 0.01), registry=registry)
    before = nd.parse_histogram(generate_latest(registry).decode())
    for value in [0.0015] * 90 + [0.004] * 9 + [0.02]:
        histogram.labels(infno="2207").observe(value)
    histogram.labels(infno="1101").observe(0.0005)
    delta = nd.histogram_delta(nd.parse_histogram(generate_latest(registry).decode()), before)
    side = nd.server_side(delta)
    assert side["2207"]["n"] == 100
    assert side["2207"]["mean"] == pytest.approx((0.0015 * 90 + 0.004 * 9 + 0.02) / 100 * 1000, abs=0.001)
    assert 1.0 <= side["2207"]["p50"] <= 2.0  # inside the bucket that holds the median
    assert 2.0 <= side["2207"]["p95"] <= 5.0
    assert side["2207"]["p99"] <= 5.0 + 1e-9
    assert side["1101"]["n"] == 1
    # the second scrape minus the first: calls made before the run are not counted
    again = nd.histogram_delta(nd.parse_histogram(generate_latest(registry).decode()),
                               nd.parse_histogram(generate_latest(registry).decode()))
    assert again == {}


def test_a_quantile_in_the_overflow_bucket_is_the_highest_finite_bound() -> None:
    assert nd.bucket_quantile({0.001: 0.0, 0.01: 1.0, float("inf"): 10.0}, 0.99) == 0.01
