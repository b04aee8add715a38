"""The app's 异地就医备案 page in a real browser (Playwright driving Debian's Chromium): a person of 370100 files a
temporary trip to 广东省, sees it listed, and cancels it (two taps, no pop-up)."""

from __future__ import annotations

import re
from pathlib import Path

from browser_support import activate_in_app, require_chromium
from flows import person_with

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

require_chromium()


def test_file_a_trip_see_it_listed_and_cancel_it(browser, live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", region="370100", retired=False)
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, "582046")

    page.click("#open-filing")
    page.wait_for_selector("#view-filing:not([hidden])")
    page.wait_for_selector("#filing-type option[value='4']", state="attached")
    # the list arrives by its own request: wait for it, then it is empty for someone who never filed
    page.wait_for_function("() => document.querySelector('#filing-list').textContent.trim() !== ''")
    assert page.text_content("#filing-list").strip() == "暂无备案"
    page.select_option("#filing-type", "4")
    page.select_option("#filing-region", "440000")
    page.fill("#filing-reason", "探亲")
    page.click("#filing-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#filing-result').textContent.startsWith('备案成功')")
    entry = page.locator("#filing-list .entry").first
    entry.wait_for()
    text = entry.text_content() or ""
    assert "其他临时外出就医" in text and "广东省" in text and "有效" in text and "统筹基金支付比例降低" in text
    # every word a person reads on the page is Chinese (numbers and dates aside)
    latin = re.findall(r"[A-Za-z]{2,}", page.inner_text("#view-filing"))
    assert not latin, latin
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "filing.png"), full_page=True)

    # the same place again while the trip stands: refused, in Chinese
    page.select_option("#filing-type", "1")
    page.select_option("#filing-region", "440000")
    page.click("#filing-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#filing-result').textContent.includes('请先撤销')")

    cancel = entry.locator("[data-cancel-filing]")
    cancel.click()
    assert cancel.text_content() == "确认撤销"
    cancel.click()
    page.wait_for_function("() => document.querySelector('#filing-result').textContent === '已撤销'")
    page.wait_for_function("() => document.querySelector('#filing-list .entry .state').textContent === '已撤销'")
    assert page.locator("#filing-list [data-cancel-filing]").count() == 0

    page.click("#close-filing")
    page.wait_for_selector("#view-home:not([hidden])")
    page.close()
