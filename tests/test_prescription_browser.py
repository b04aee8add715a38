"""The app's 电子处方 page in a real browser (Playwright driving Debian's Chromium): a hospital writes a prescription
through the gateway (7101–7103), the person sees it in the app with its pickup code, chooses a designated pharmacy and
delivery to an address; the pharmacy chosen may take it, another is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_support import activate_in_app, require_chromium
from conftest import HOSPITAL, secret_of
from flows import catalogue_codes, fresh_person, ok, register
from test_prescription import OTHER_PHARMACY, PHARMACY, prescription_body, write
from yibao.client import CounterClient
from yibao.core import sm2
from yibao.prescription import service as rx
from yibao.prescription.models import Prescription

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

require_chromium()


@pytest.fixture(scope="module")
def hospital_key(db) -> str:  # type: ignore[no-untyped-def]
    private_pem, public_pem = sm2.generate_keypair()
    with db.unit_of_work() as session:
        rx.set_institution_key(session, HOSPITAL, public_pem)
    return private_pem


def test_the_person_sees_the_prescription_and_picks_a_pharmacy(browser, live_server: str, db, http, counter,  # type: ignore[no-untyped-def]
                                                                hospital_key) -> None:
    codes = catalogue_codes(db)
    person = fresh_person(db, "310")
    hi_rxno = write(counter, hospital_key, prescription_body(person, register(counter, person, "310"), codes["rx_capped"]))

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, "582046")

    page.get_by_role("button", name="去取药").click()
    page.wait_for_selector("#view-rx:not([hidden])")
    entry = page.locator(f"[data-rx-entry='{hi_rxno}']")
    entry.wait_for()
    text = entry.text_content() or ""
    assert "待取药" in text and "硝苯地平控释片" in text and "尚未选择取药方式" in text and "取药码" in text

    entry.locator("[data-rx-open]").click()
    page.wait_for_selector("#rx-detail:not([hidden])")
    page.wait_for_selector(f"#rx-pharmacy option[value='{OTHER_PHARMACY}']", state="attached")
    page.select_option("#rx-pharmacy", OTHER_PHARMACY)
    assert page.is_hidden("#rx-addr-label")  # an address only for delivery
    page.select_option("#rx-mode", "2")
    page.wait_for_selector("#rx-addr", state="visible")
    page.click("#rx-form button[type=submit]")
    # delivery without an address is refused in Chinese
    page.wait_for_function("() => document.querySelector('#rx-result').textContent.includes('配送地址')")
    page.fill("#rx-addr", "济南市历下区泉城路1号")
    page.click("#rx-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#rx-result').textContent.startsWith('已选择')")
    page.wait_for_function(f"() => document.querySelector(\"[data-rx-entry='{hi_rxno}']\").textContent.includes('配送到家')")
    # every word a person reads is Chinese: the pickup code and the drug's strength (30mg) are data, not words
    shown = page.inner_text("#view-rx").replace(page.text_content(".rx-code") or "", "").replace("30mg", "")
    latin = re.findall(r"[A-Za-z]{2,}", shown)
    assert not latin, latin
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "prescription.png"), full_page=True)
    page.click("#close-rx")
    page.wait_for_selector("#view-home:not([hidden])")
    page.close()

    with db.unit_of_work(write=False) as session:
        row = session.get(Prescription, hi_rxno)
        assert row is not None and (row.chosen_fixmedins_code, row.delivery_mode) == (OTHER_PHARMACY, "2")
        code = row.epc_qrcd
    # the pharmacy the person did not choose is refused; the chosen one takes it
    elsewhere = CounterClient("http://testserver", PHARMACY, secret_of(PHARMACY), http=http)
    ok(elsewhere.sign_in())
    refused = elsewhere.call("7201", {"data": {"epc_qrcd": code}})
    assert refused["infcode"] == -1 and "chose" in refused["err_msg"]
    chosen = CounterClient("http://testserver", OTHER_PHARMACY, secret_of(OTHER_PHARMACY), http=http)
    ok(chosen.sign_in())
    assert ok(chosen.call("7201", {"data": {"epc_qrcd": code}}))["name"] == person.psn_name


def test_an_online_follow_up_renewal_is_delivered_and_the_app_follows_it(browser, live_server: str, db, counter,  # type: ignore[no-untyped-def]
                                                                          hospital_key) -> None:
    """Item 5 in the app: a chronic patient's renewal from an online visit (dispensed and delivered by the internet
    hospital itself): the person asks for delivery, the hospital settles and reports 已签收, the app shows it."""
    from decimal import Decimal

    from flows import registered_disease, serial
    from yibao.core import clock

    codes = catalogue_codes(db)
    person = fresh_person(db, "310")
    disease = registered_disease(counter, person, "310")
    mdtrt_id = register(counter, person, "310", med_type="14")
    hi_rxno = write(counter, hospital_key, prescription_body(person, mdtrt_id, codes["rx_capped"], med_type="14", dise=disease, circ="0"))

    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    activate_in_app(page, person, "582046")
    page.get_by_role("button", name="去取药").click()
    entry = page.locator(f"[data-rx-entry='{hi_rxno}']")
    entry.wait_for()
    assert "慢特病续方" in (entry.text_content() or "")
    entry.locator("[data-rx-open]").click()
    page.wait_for_selector("#rx-detail:not([hidden])")
    assert page.is_hidden("#rx-pharmacy-label")  # the hospital dispenses it: no pharmacy to choose
    page.select_option("#rx-mode", "2")
    page.fill("#rx-addr", "济南市历下区泉城路1号")
    page.click("#rx-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#rx-result').textContent.startsWith('已选择')")

    # the hospital settles the renewal on the visit (med_type 14), delivers it and writes it off
    line = {"feedetl_sn": serial("F"), "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "chrg_bchno": "RX1", "rxno": hi_rxno,
            "rx_circ_flag": "0", "fee_ocur_time": clock.fmt_datetime(clock.now()), "med_list_codg": codes["rx_capped"],
            "det_item_fee_sumamt": Decimal("20.00"), "cnt": Decimal("2"), "pric": Decimal("10.00"), "dise_codg": disease}
    ok(counter.call("2204", {"feedetail": [line]}))
    paid = ok(counter.call("2207", {"data": {"psn_no": person.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno,
                                             "med_type": "14", "medfee_sumamt": Decimal("20.00"), "mdtrt_id": mdtrt_id,
                                             "chrg_bchno": "RX1", "acct_used_flag": "0", "insutype": "310"}}))["setlinfo"]
    ok(counter.call("7205", {"data": {"hi_rxno": hi_rxno, "delv_entp_name": "顺丰速运", "delv_stas_codg": "2",
                                      "delv_stas_name": "已签收"}}))
    ok(counter.call("7206", {"data": {"hi_rxno": hi_rxno, "setl_id": paid["setl_id"], "phar_name": "李药师"}}))

    page.click("#close-rx")
    page.wait_for_selector("#view-home:not([hidden])")
    page.get_by_role("button", name="去取药").click()
    page.wait_for_function(f"() => (document.querySelector(\"[data-rx-entry='{hi_rxno}']\") || {{}}).textContent?.includes('已签收')")
    text = page.locator(f"[data-rx-entry='{hi_rxno}']").text_content() or ""
    assert "已核销" in text and "配送到家" in text and "取药码" not in text
    page.close()
