"""The vendors' console in a real browser: Playwright driving Debian's Chromium against a live server.

An institution signs in with its access key and secret (the page answers the challenge with WebCrypto), sees a refused
and a served message with field-level warnings, filters, copies a message as a curl command and the copied command is
run against the server; then platform staff sign in and see two institutions. Screenshots in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from browser_support import require_chromium
from conftest import HOSPITAL, secret_of
from yibao.client import CounterClient
from yibao.gateway.envelope import DECODER

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
OTHER = "H37010000002"

require_chromium()


@pytest.fixture(scope="module")
def traffic(live_server: str, db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """What two counters sent: the first a lookup with warnings and a refused registration, the second a lookup."""
    from yibao.registry.models import Enrolment, Person

    with db.unit_of_work(write=False) as session:
        certno = session.scalar(select(Person.certno).join(Enrolment, Enrolment.psn_no == Person.psn_no)
                                .where(Enrolment.psn_insu_stas == "1",
                                       Enrolment.insuplc_admdvs == "370100").order_by(Person.psn_no).limit(1))
    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL))
    assert counter.sign_in()["infcode"] == 0
    # served, with an unknown field (a misspelling) and a date where the spec has a datetime
    lookup = counter.call("1101",
                          {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "begntime": "2026-11-01", "psn_nmae": "张三"}})
    assert lookup["infcode"] == 0, lookup
    refused = counter.call("2201", {"data": {"insutype": "310", "mdtrt_cert_type": "02"}})
    assert refused["infcode"] == -1
    other = CounterClient(live_server, OTHER, secret_of(OTHER))
    assert other.sign_in()["infcode"] == 0
    assert other.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}})["infcode"] == 0
    return {"certno": certno}


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def rows(page) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("#message-rows tr", "rs => rs.map(r => ({...r.dataset, text: r.innerText}))")


def test_an_institution_reads_its_messages_filters_and_replays_one_as_curl(browser, live_server: str, traffic) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN",
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{live_server}/console/")
    assert page.title() == "医保接口调试台"
    page.fill("#access-key", HOSPITAL)
    page.fill("#secret", "not-the-secret")
    page.click("#institution-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert "不正确" in page.text_content("#login-error")

    page.fill("#access-key", HOSPITAL)
    page.fill("#secret", secret_of(HOSPITAL))
    page.click("#institution-form button[type=submit]")
    page.wait_for_selector("#view-main:not([hidden])")
    page.wait_for_selector("#message-rows tr")
    assert HOSPITAL in page.text_content("#who")
    listed = rows(page)
    assert all(OTHER not in r["text"] for r in listed)  # only its own messages
    refused = next(r for r in listed if r["infno"] == "2201")
    assert refused["infcode"] == "-1" and "input.data" in refused["text"]
    served = next(r for r in listed if r["infno"] == "1101" and "字段提示" in r["text"])
    assert served["infcode"] == "0"

    # the served lookup: its request, answer and the two warnings
    page.click(f"#message-rows tr[data-id='{served['id']}']")
    page.wait_for_selector("#detail:not([hidden])")
    page.wait_for_function("() => document.querySelector('#d-findings').children.length >= 2")
    findings = page.inner_text("#d-findings")
    assert "input.data.psn_nmae" in findings and "未定义字段" in findings
    assert "input.data.begntime" in findings and "yyyy-MM-dd HH:mm:ss" in findings
    assert '"psn_nmae"' in page.text_content("#d-request") and '"infcode": 0' in page.text_content("#d-response")

    # the refused registration: the answer's err_msg names the field
    page.click(f"#message-rows tr[data-id='{refused['id']}']")
    page.wait_for_function("() => document.querySelector('#d-title').textContent.includes('失败')")
    assert "input.data" in page.text_content("#d-meta")

    # filters: infno, then outcome
    page.fill("#f-infno", "2201")
    page.click("#f-apply")
    page.wait_for_function("() => [...document.querySelectorAll('#message-rows tr')].every(r => r.dataset.infno === '2201')")
    assert rows(page)
    page.fill("#f-infno", "")
    page.select_option("#f-outcome", "ok")
    page.click("#f-apply")
    page.wait_for_function("() => [...document.querySelectorAll('#message-rows tr')].every(r => r.dataset.infcode === '0')")
    assert any(r["id"] == served["id"] for r in rows(page))

    assert page.is_hidden("#f-code-row")  # only staff choose the institution

    # one click copies the served message as a signed curl command; the copied command works against the server
    page.click("#f-clear")
    page.wait_for_function("() => [...document.querySelectorAll('#message-rows tr')].some(r => r.dataset.infcode === '-1')")
    page.click(f"#message-rows tr[data-id='{served['id']}']")
    page.wait_for_function("() => document.querySelector('#d-title').textContent.startsWith('1101')")
    page.click("#copy-curl")
    page.wait_for_function("() => document.querySelector('#curl-status').textContent.includes('已复制')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl ") and "x-yb-signature" in copied and copied == page.input_value("#curl-text")
    shot(page, "console.png")
    run = subprocess.run(["sh", "-c", copied], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    answer = DECODER.decode(run.stdout)
    # the same msgid and body: an idempotent retry, answered with the stored first answer
    assert answer["infcode"] == 0 or re.search("replay|already", answer["err_msg"]), answer
    assert answer["output"]["baseinfo"]["certno"] == traffic["certno"]
    context.close()


def test_staff_see_two_institutions(browser, live_server: str, settings, traffic) -> None:  # type: ignore[no-untyped-def]
    made = subprocess.run([sys.executable, "-m", "yibao", "console", "staff-add", "ops.zhao"], capture_output=True, text=True,
                          env={**os.environ, "YIBAO_DATABASE_URL": settings.database_url}, timeout=120)
    assert made.returncode == 0, made.stderr
    password = re.search(r"password (\S+)", made.stdout).group(1)
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page.goto(f"{live_server}/console/")
    page.click("#tab-staff")
    page.fill("#staff-name", "ops.zhao")
    page.fill("#staff-password", password)
    page.click("#staff-form button[type=submit]")
    page.wait_for_selector("#institutions:not([hidden])")
    page.wait_for_selector("#message-rows tr")
    codes = page.eval_on_selector_all("#institution-rows tr", "rs => rs.map(r => r.dataset.code)")
    assert {HOSPITAL, OTHER} <= set(codes)
    listed = " ".join(r["text"] for r in rows(page))
    assert HOSPITAL in listed and OTHER in listed
    # a click on an institution narrows the list to it
    page.click(f"#institution-rows tr[data-code='{OTHER}']")
    page.wait_for_function(f"() => [...document.querySelectorAll('#message-rows tr')].every(r => r.innerText.includes('{OTHER}'))")
    shot(page, "console-staff.png")
    page.close()
