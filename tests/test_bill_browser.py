"""E-bills in a real browser (Playwright driving Debian's Chromium): a person settles at a counter through the gateway, opens
电子票据 in the app, sees the bill and its signature verify; the public verification page (where the bill's QR code
leads, no sign-in) answers 有效, catches a tampered copy (an amount changed) and a wrong check code, and answers 已冲红
once the counter reversed the settlement."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from browser_support import activate_in_app, require_chromium
from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, fee, fresh_person, ok, serial
from test_credential import ACTIVATED
from yibao.client import CounterClient
from yibao.core import clock

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "582046"

require_chromium()


def latin_words(page, selector: str, *codes: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Latin words on the screen but the names SM2 and QR and the codes shown (a check code is hex: 3A9F0C)."""
    text = page.inner_text(selector)
    for code in codes:
        text = text.replace(code, "")
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in {"SM", "QR"}]


def settle(counter: CounterClient, person, codes: dict[str, str]) -> dict:  # type: ignore[no-untyped-def]
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()),
                                            **cert, "ipt_otp_no": serial("MZ"), "atddr_no": "D37010000001", "dr_name": "医生",
                                            "dept_code": "A03", "dept_name": "内科", "caty": "A03", "med_type": "11"}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    lines = [(codes["jia"], "26.00"), (codes["bing"], "14.00")]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount) for code, amount in lines]}))
    data = {"psn_no": person.psn_no, **cert, "med_type": "11", "medfee_sumamt": Decimal("40.00"), "psn_setlway": "01",
            "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "0", "insutype": "310"}
    return ok(counter.call("2207", {"data": data}))["setlinfo"]


def test_a_bill_in_the_app_and_on_the_public_verification_page(browser, live_server: str, db) -> None:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310", skip=ACTIVATED, retired=False)
    ACTIVATED.add(person.psn_no)
    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL))
    assert counter.sign_in()["infcode"] == 0
    setl = settle(counter, person, catalogue_codes(db))
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, PASSWORD)

    page.locator("#services .link-card", has_text="电子票据").locator("button").click()
    page.wait_for_selector("#view-bill:not([hidden])")
    entry = page.locator(f"#bill-list [data-bill='{setl['setl_id']}']")
    entry.wait_for()
    assert "有效" in (entry.text_content() or "") and "40.00" in (entry.text_content() or "")
    entry.locator("[data-open-bill]").click()
    page.wait_for_selector("#bill-detail:not([hidden])")
    facts = page.inner_text("#bill-facts")
    assert "医疗收费电子票据" == page.text_content("#bill-title")
    for expected in ("票据代码", "票据号码", "校验码", person.psn_name, "合计", "40.00", "统筹基金支付", "个人现金支付"):
        assert expected in facts, (expected, facts)
    page.click("#bill-check")
    page.wait_for_selector("#bill-verify-result .verdict")
    assert page.text_content("#bill-verify-result .verdict") == "有效"
    check = page.locator("#bill-facts .row", has_text="校验码").locator("span").nth(1).text_content() or ""
    assert re.fullmatch(r"[0-9A-F]{6}", check), check
    assert not latin_words(page, "#view-bill", check), latin_words(page, "#view-bill", check)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bill.png"), full_page=True)

    # the bill's data as exported in the app; its QR code's address (the API answers the same as the app shows)
    page.click("#bill-export")
    held = json.loads(page.input_value("#bill-data"))
    token = page.evaluate("localStorage.getItem('yb.token')")
    bill = httpx.get(f"{live_server}/api/v1/people/{person.psn_no}/bills/{setl['setl_id']}",
                     headers={"authorization": f"Bearer {token}"}).json()
    assert held == {"document": bill["document"], "signature": bill["signature"]}
    qr = urlsplit(bill["verify_url"])

    # the public page, where the QR code leads: no sign-in (a fresh browser context)
    public = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    public.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    public.goto(f"{live_server}{qr.path}?{qr.query}")
    public.wait_for_selector("#verify-result .verdict")
    assert public.text_content("#verify-result .verdict") == "有效"
    result = public.inner_text("#verify-result")
    assert bill["bill_no"] in result and "40.00" in result and person.psn_name not in result  # the payer's name is masked
    assert not latin_words(public, "body", check), latin_words(public, "body", check)
    public.screenshot(path=str(ARTIFACTS / "bill-verify.png"), full_page=True)

    # a tampered copy: one amount changed
    tampered = json.loads(json.dumps(held))
    tampered["document"]["items"][0]["amount"] = str(Decimal(tampered["document"]["items"][0]["amount"]) + 10)
    public.fill("#verify-content", json.dumps(tampered, ensure_ascii=False))
    public.click("#verify-content-form button[type=submit]")
    public.wait_for_function("() => document.querySelector('#verify-result .verdict')?.dataset.status === 'tampered'")
    assert public.text_content("#verify-result .verdict") == "已篡改"
    public.fill("#verify-content", json.dumps(held, ensure_ascii=False))
    public.click("#verify-content-form button[type=submit]")
    public.wait_for_function("() => document.querySelector('#verify-result .verdict')?.dataset.status === 'valid'")
    # a wrong check code
    public.fill("#verify-check", "000000" if bill["check_code"] != "000000" else "111111")
    public.click("#verify-form button[type=submit]")
    public.wait_for_function("() => document.querySelector('#verify-result .verdict')?.dataset.status === 'mismatch'")
    assert public.text_content("#verify-result .verdict") == "校验码不符"

    # the counter reverses the settlement: the original answers 已冲红, and the app lists the red bill
    ok(counter.call("2208", {"data": {"setl_id": setl["setl_id"], "mdtrt_id": setl["mdtrt_id"], "psn_no": person.psn_no}}))
    public.goto(f"{live_server}{qr.path}?{qr.query}")
    public.wait_for_function("() => document.querySelector('#verify-result .verdict')?.dataset.status === 'cancelled'")
    assert public.text_content("#verify-result .verdict") == "已冲红"
    page.click("#close-bill")
    page.wait_for_selector("#view-home:not([hidden])")
    page.locator("#services .link-card", has_text="电子票据").locator("button").click()
    page.wait_for_function("() => document.querySelectorAll('#bill-list .entry').length === 2")
    assert "红字票据" in page.inner_text("#bill-list") and "已冲红" in page.inner_text("#bill-list")
    # by now the red bill is issued (by the background issuer, or when the app asked): the original names it
    public.reload()
    public.wait_for_function("() => document.querySelector('#verify-result .verdict')?.dataset.status === 'cancelled'")
    assert "已被红字票据" in public.inner_text("#verify-result")
    assert not violations, violations
    public.close()
    page.close()
