"""The app's 生育津贴 page in a real browser (Playwright driving Debian's Chromium): a mother whose birth was settled
sees the allowance scheduled with how it was counted, and names the account it is paid to."""

from __future__ import annotations

import re
from pathlib import Path

from browser_support import activate_in_app, require_chromium
from conftest import HOSPITAL, secret_of
from test_maternity import _birth, _mother
from yibao.client import CounterClient
from yibao.core import clock
from yibao.maternity import service as maternity

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

require_chromium()


def test_the_mother_sees_her_allowance_and_names_her_account(browser, live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    person = _mother(db, set())
    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL, db))
    assert counter.sign_in()["infcode"] == 0
    _birth(counter, db, person)
    maternity.run(db, None, clock.today())

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, "582046")

    page.get_by_role("button", name="查看").click()
    page.wait_for_selector("#view-maternity:not([hidden])")
    entry = page.locator("#maternity-list .entry").first
    entry.wait_for()
    text = entry.text_content() or ""
    assert "待发放" in text and "158 天" in text and "本省延长产假60天" in text and "预计" in text
    assert page.text_content("#benefit-account") == "尚未登记待遇发放账户"

    page.fill("#benefit-bank", "中国建设银行济南分行")
    page.fill("#benefit-number", "6217000010012345678")
    page.fill("#benefit-password", "582046")
    page.click("#benefit-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#maternity-result').textContent === '待遇发放账户已保存'")
    page.wait_for_function("() => document.querySelector('#benefit-account').textContent.includes('尾号 5678')")
    latin = re.findall(r"[A-Za-z]{2,}", page.inner_text("#view-maternity"))
    assert not latin, latin
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "maternity.png"), full_page=True)
