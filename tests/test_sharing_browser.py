"""The app's 保医通 page in a real browser (Playwright driving Debian's Chromium): a person signs an authorisation for one
of their settlements with the password, the insurer reads it through its signed API, the person revokes it (two taps)
and the insurer is refused."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fhir.resources.R4B.bundle import Bundle

from browser_support import activate_in_app, require_chromium
from flows import catalogue_codes, outpatient, person_with
from yibao.sharing import service as sharing
from yibao.sharing.models import Insurer

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "582046"
CODE = "TPYB3701"

require_chromium()


def test_sign_an_authorisation_in_the_app_the_insurer_reads_it_then_revoke(browser, live_server: str, db, counter) -> None:  # type: ignore[no-untyped-def]
    person = person_with(db, "310", region="370100", retired=False)
    codes = catalogue_codes(db)
    setl_id = outpatient(counter, person, "310", [(codes["jia"], "88.00")], acct="0")["setlinfo"]["setl_id"]
    with db.unit_of_work() as session:
        found = session.get(Insurer, CODE)
        secret = found.secret if found else sharing.add_insurer(session, CODE, "太平洋健康保险济南分公司")

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, PASSWORD)

    page.click("#services button:has-text('去授权')")
    page.wait_for_selector("#view-share:not([hidden])")
    page.wait_for_selector(f"[data-share-setl][value='{setl_id}']", state="attached")
    page.wait_for_function("() => document.querySelector('#share-list').textContent.trim() !== ''")
    assert page.text_content("#share-list").strip() == "暂无授权"
    page.select_option("#share-insurer", CODE)
    page.check(f"[data-share-setl][value='{setl_id}']")
    page.fill("#share-purpose", "门诊医疗险理赔")
    # a wrong password signs nothing, and says so in Chinese
    page.fill("#share-password", "135246")
    page.click("#share-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#share-result').textContent.includes('消费密码错误')")
    page.fill("#share-password", PASSWORD)
    page.click("#share-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#share-result').textContent.startsWith('授权成功')")
    consent_id = re.search(r"授权码 (\d{20})", page.text_content("#share-result") or "").group(1)  # type: ignore[union-attr]
    entry = page.locator(f"#share-list .entry[data-consent='{consent_id}']")
    entry.wait_for()
    text = entry.text_content() or ""
    assert "太平洋健康保险济南分公司" in text and "有效" in text and "结算 1 笔" in text and "已读取 0 次" in text
    latin = re.findall(r"[A-Za-z]{2,}", page.inner_text("#view-share"))
    assert not latin, latin
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "share.png"), full_page=True)

    # the insurer reads exactly that settlement with the code the person gave it
    target = f"/fhir/ExplanationOfBenefit?consent={consent_id}"
    reply = httpx.get(live_server + target, headers=sharing.sign_headers(CODE, secret, "GET", target))
    assert reply.status_code == 200, reply.text
    bundle = Bundle.model_validate_json(reply.content)
    assert bundle.total == 1 and bundle.entry[0].resource.id == f"setl-{setl_id}"

    revoke = entry.locator("[data-revoke-consent]")
    revoke.click()
    assert revoke.text_content() == "确认撤销"
    revoke.click()
    page.wait_for_function("() => document.querySelector('#share-result').textContent.startsWith('已撤销授权')")
    state = f"#share-list .entry[data-consent='{consent_id}'] .state"
    page.wait_for_function(f"() => document.querySelector(\"{state}\").textContent === '已撤销'")
    assert "已读取 1 次" in (page.locator(f"#share-list .entry[data-consent='{consent_id}']").text_content() or "")
    refused = httpx.get(live_server + target, headers=sharing.sign_headers(CODE, secret, "GET", target))
    assert refused.status_code == 403 and refused.json()["title"] == "consent-revoked"

    page.click("#close-share")
    page.wait_for_selector("#view-home:not([hidden])")
    page.close()
