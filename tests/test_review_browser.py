"""The reviewers' page (智能审核 · 违规结算) in a real browser: staff sign in, see a settlement a rule made partly
self-paid with the rule that fired, and narrow the list by rule and severity. Screenshot in test-artifacts/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from browser_support import require_chromium
from conftest import HOSPITAL, secret_of
from flows import fee, fresh_person, ok, register, settle_input
from yibao.client import CounterClient

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
DAPAGLIFLOZIN = "XA10BKA016A002010862237"   # 限适应症 (R0601, 转自费)

require_chromium()


@pytest.fixture(scope="module")
def flagged(live_server: str, db) -> str:  # type: ignore[no-untyped-def]
    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL))
    ok(counter.sign_in())
    person = fresh_person(db, "310")
    mdtrt_id = register(counter, person, "310")
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, DAPAGLIFLOZIN, "71.30")]}))
    out = ok(counter.call("2207", settle_input(person, mdtrt_id, "310", "71.30")))["setlinfo"]
    assert Decimal(str(out["fulamt_ownpay_amt"])) == Decimal("71.30")
    return str(out["setl_id"])


def test_staff_see_flagged_settlements_and_filter_them(browser, live_server: str, settings, flagged: str) -> None:  # type: ignore[no-untyped-def]
    made = subprocess.run([sys.executable, "-m", "yibao", "console", "staff-add", "review.zhou"], capture_output=True, text=True,
                          env={**os.environ, "YIBAO_DATABASE_URL": settings.database_url}, timeout=120)
    assert made.returncode == 0, made.stderr
    password = re.search(r"password (\S+)", made.stdout).group(1)
    page = browser.new_page(viewport={"width": 1500, "height": 1000}, locale="zh-CN")
    page.goto(f"{live_server}/console/")
    page.click("#tab-staff")
    page.fill("#staff-name", "review.zhou")
    page.fill("#staff-password", password)
    page.click("#staff-form button[type=submit]")
    page.wait_for_selector("#view-review:not([hidden])")
    row = page.wait_for_selector(f"#r-rows tr[data-setl-id='{flagged}']")
    text = row.inner_text()
    assert "R0601" in text and "转自费" in text and "高度可疑" in text and "71.30" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-review.png"), full_page=True)
    # another rule: the settlement is not listed
    page.select_option("#r-rule", "R0101")
    page.click("#r-apply")
    page.wait_for_function("() => document.getElementById('r-status').textContent.includes('没有符合条件')")
    assert page.query_selector(f"#r-rows tr[data-setl-id='{flagged}']") is None
    # its rule and severity: listed again
    page.select_option("#r-rule", "R0601")
    page.select_option("#r-severity", "2")
    page.click("#r-apply")
    page.wait_for_selector(f"#r-rows tr[data-setl-id='{flagged}']")
    assert all(r == "R0601" for r in page.eval_on_selector_all("#r-rows tr", "rs => rs.map(r => r.dataset.ruleId)"))
    page.close()
