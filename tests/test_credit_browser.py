"""The app's 信用就医 page in a real browser (Playwright driving Debian's Chromium): a person signs a credit agreement
with the stand-in partner bank, is admitted and discharged, the bank advances the cash part at the counter (2802), and
the page shows the limit left and the repayment plan."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from browser_support import activate_in_app, require_chromium
from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, cert, ok, person_with
from standins.bank import StandInBank
from test_credit import discharged_settlement
from yibao.client import CounterClient
from yibao.credit import service as credit

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

require_chromium()


@pytest.fixture(scope="module")
def bank(db) -> Iterator[StandInBank]:  # type: ignore[no-untyped-def]
    stand_in = StandInBank(key=secrets.token_hex(16))
    url = stand_in.start()
    with db.unit_of_work() as session:
        credit.add_bank(session, bank_code="CCBTEST", bank_name="测试建设银行", url=url, key=stand_in.key)
    yield stand_in
    stand_in.stop()


def test_sign_up_and_see_the_repayment_plan(browser, live_server: str, db, bank) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", region="370100", retired=False)
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, "582046")

    page.click("#services button:has-text('去办理')")
    page.wait_for_selector("#view-credit:not([hidden])")
    page.wait_for_selector("#credit-signup:not([hidden])")
    assert "未开通" in page.text_content("#credit-agreement")
    assert page.text_content("#credit-list").strip() == "暂无垫付记录"
    page.select_option("#credit-bank", "CCBTEST")
    page.fill("#credit-password", "582046")
    page.click("#credit-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#credit-result').textContent.startsWith('签约成功')")
    assert page.text_content("#credit-result") == "签约成功，信用额度5000.00元"
    assert page.is_hidden("#credit-signup") and page.text_content("#credit-available") == "5000.00"
    assert "正常" in page.text_content("#credit-agreement")

    # at the hospital: admitted without a deposit, discharged, the bank advances the cash part
    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL, db))
    ok(counter.sign_in())
    assert ok(counter.call("2801", {"data": {"psn_no": person.psn_no, **cert(person)}}))["crdtinfo"]["dpst_free_flag"] == "1"
    setl = discharged_settlement(counter, person, catalogue_codes(db)["jia"])
    paid = ok(counter.call("2802", {"data": {"setl_id": setl["setl_id"], "psn_no": person.psn_no, **cert(person)}}))
    cash = Decimal(str(paid["crdtpay"]["crdt_pay_amt"]))

    page.click("#close-credit")
    page.wait_for_selector("#view-home:not([hidden])")
    page.click("#services button:has-text('去办理')")
    page.wait_for_selector("#credit-list .entry")
    rows = page.locator("#credit-list .instalment")
    assert rows.count() == len(paid["repyplan"]) == 3
    first = rows.first.text_content() or ""
    assert "第1期" in first and paid["repyplan"][0]["due_date"] in first and "待还" in first
    assert page.text_content("#credit-available") == f"{Decimal('5000.00') - cash:.2f}"
    assert f"累计垫付{cash:.2f}元" in page.text_content("#credit-totals")
    latin = re.findall(r"[A-Za-z]{2,}", page.inner_text("#view-credit"))
    assert not latin, latin
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "credit.png"), full_page=True)
    page.close()
