"""The people's web app in a real browser: Playwright driving Debian's Chromium.

Signs in (activating the credential on this 'phone'), watches the QR code refresh, decodes the
rendered code from a screenshot and at the counter, binds and switches to a family member,
and toggles the large-font mode. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from browser_support import require_chromium
from flows import ok
from yibao.client import CounterClient
from yibao.core import clock
from yibao.registry.models import Person

SERVER_ENV = {"YIBAO_QR_TTL_S": "4"}
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

require_chromium()


@pytest.fixture(scope="module")
def family(db):  # type: ignore[no-untyped-def]
    """Two adults of one household who have not activated anything yet."""
    adult = Person.brdy < clock.today().replace(year=clock.today().year - 22)
    with db.unit_of_work(write=False) as session:
        hshld = session.scalar(select(Person.hshld_id).where(adult).group_by(Person.hshld_id).having(func.count() >= 2)
                               .order_by(Person.hshld_id.desc()).limit(1))
        return session.scalars(select(Person).where(Person.hshld_id == hshld, adult).order_by(Person.psn_no).limit(2)).all()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sign_in_code_refresh_family_and_large_font(browser, live_server: str, family, db) -> None:  # type: ignore[no-untyped-def]
    import zxingcpp
    from PIL import Image

    head, relative = family
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    assert page.title() == "医保码"  # what a person reads in the tab is Chinese too
    page.fill("#certno", head.certno)
    page.fill("#name", head.psn_name)
    page.fill("#password", "582046")
    page.wait_for_selector("#activate-extra", state="visible")  # a new phone: activation first
    page.click("#face-button")
    # the face is only taken here; the platform checks it when activating
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    page.click("#login-button")
    page.wait_for_selector("#view-home:not([hidden])")
    page.wait_for_function("() => document.querySelector('#qr').dataset.code.startsWith('YB1')")
    first = page.get_attribute("#qr", "data-code")
    assert page.text_content("#qr-name") == head.psn_name
    normal = shot(page, "qr-normal.png")

    # the rendered symbol is a real, scannable QR code carrying exactly the code
    box = page.locator("#qr svg").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(box)))
    assert decoded and decoded[0].text == first

    # the code refreshes by itself when the countdown runs out (4 s in this test server)
    page.wait_for_function(f"() => document.querySelector('#qr').dataset.code !== '{first}'", timeout=15000)
    second = page.get_attribute("#qr", "data-code")
    assert second.startswith("YB1") and second != first

    # the live code works at the counter; the old one does not come back to life
    from conftest import HOSPITAL, secret_of

    counter = CounterClient(live_server, HOSPITAL, secret_of(HOSPITAL))
    ok(counter.sign_in())
    current = page.get_attribute("#qr", "data-code")
    decoded_at_counter = ok(counter.call("1162", {"data": {"ecQrCode": current, "businessType": "01101"}}))
    assert decoded_at_counter["baseinfo"]["psn_no"] == head.psn_no
    page.wait_for_timeout(1500)  # the first code is now well past its 4 s life
    stale = counter.call("1162", {"data": {"ecQrCode": first, "businessType": "01101"}})
    assert stale["infcode"] == -1 and "expired" in stale["err_msg"]

    # bind a family member from the same household and switch to them
    page.click("[data-tab=family]")
    page.fill("#bind-certno", relative.certno)
    page.fill("#bind-name", relative.psn_name)
    page.select_option("#bind-relation", "02")
    page.click("#bind-form button[type=submit]")
    page.wait_for_selector(f"#family-switcher button[data-psn='{relative.psn_no}']")
    page.click(f"#family-switcher button[data-psn='{relative.psn_no}']")
    page.wait_for_function(f"() => document.querySelector('#qr').dataset.psn === '{relative.psn_no}'")
    assert page.text_content("#qr-name") == relative.psn_name
    member_code = page.get_attribute("#qr", "data-code")
    assert ok(counter.call("1162", {"data": {"ecQrCode": member_code}}))["baseinfo"]["psn_no"] == relative.psn_no

    # large-font mode, kept across reloads
    page.click(f"#family-switcher button[data-psn='{head.psn_no}']")
    page.wait_for_function(f"() => document.querySelector('#qr').dataset.psn === '{head.psn_no}'")
    normal_size = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    page.click("#font-toggle")
    assert "large" in page.get_attribute("body", "class")
    large_size = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert large_size > normal_size * 1.3
    large = shot(page, "qr-large.png")
    page.reload()
    page.wait_for_selector("#view-home:not([hidden])")
    assert "large" in page.get_attribute("body", "class")
    assert normal.stat().st_size > 10_000 and large.stat().st_size > 10_000
    page.close()


def test_wrong_password_message_in_the_page(browser, live_server: str, family, db) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from yibao.credential.realperson import demo_face

    # someone outside the family, activated here on another phone: the tests run in any order
    with db.unit_of_work(write=False) as session:
        person = session.scalars(select(Person).where(Person.brdy < clock.today().replace(year=clock.today().year - 22),
                                                      Person.hshld_id != family[0].hshld_id).order_by(Person.psn_no).limit(1)).one()
    activated = httpx.post(f"{live_server}/api/v1/activations", json={
        "chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name, "password": "582046", "face": demo_face(person.certno),
        "liveness": 0.97, "device_label": "her own phone"})
    assert activated.status_code == 201, activated.text
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page.goto(f"{live_server}/app/")
    # a fresh browser has no device: activation with the wrong password for an activated credential is refused
    page.fill("#certno", person.certno)
    page.fill("#name", person.psn_name)
    page.fill("#password", "111333")
    page.click("#face-button")
    # the face is only taken here; the platform checks it when activating
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    page.click("#login-button")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert page.text_content("#login-error").startswith("消费密码错误")
    shot(page, "login-error.png")
    page.close()


def test_every_page_is_a_section_of_main_and_every_page_script_is_loaded() -> None:
    """One page at a time works only when each `<section id="view-…">` sits directly under `<main>` (app.js showView);
    a page nested in another stays hidden with it. Each page-*.js file is loaded once."""
    from html.parser import HTMLParser
    from pathlib import Path

    static = Path(__file__).resolve().parents[1] / "src" / "yibao" / "web" / "static"

    class Sections(HTMLParser):
        VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr", "area", "base", "col", "embed", "track", "param"}

        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.sections: dict[str, list[str]] = {}
            self.scripts: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "section" and (found.get("id") or "").startswith("view-"):
                self.sections[found["id"] or ""] = list(self.stack)
            if tag == "script":
                self.scripts.append(found.get("src") or "")
            if tag not in self.VOID:
                self.stack.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
            self.stack.pop()

    parser = Sections()
    parser.feed((static / "index.html").read_text(encoding="utf-8"))
    assert not parser.stack, f"unclosed: {parser.stack}"
    misplaced = {name: parents for name, parents in parser.sections.items() if parents[-1:] != ["main"] or parents.count("section")}
    assert not misplaced, misplaced
    pages = sorted(f"/app/{p.name}" for p in static.glob("page-*.js"))
    assert sorted(s for s in parser.scripts if s.startswith("/app/page-")) == pages
    assert parser.scripts.index("/app/app.js") < min(parser.scripts.index(p) for p in pages)
