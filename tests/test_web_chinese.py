"""The web app speaks only plain Chinese to people, in a real browser (Playwright driving Debian's Chromium).

A second phone of a person who already activated: a wrong password, a refused face check, an ID number
with a bad check digit and a rate limit are all shown in Chinese and never as the server's English; the
face step claims no success the platform has not confirmed; messages do not outlive their attempt or
screen; insurance types are shown by name; 大字版 keeps every label whole at 360 px; a family request
is approved with the password. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from browser_support import require_chromium
from yibao.core import clock
from yibao.credential.realperson import demo_face
from yibao.registry.models import Contribution, Person

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "582046"
# Latin words a Chinese screen may still show
ALLOWED = {"QR"}
INSURANCE_NAMES = {"职工基本医疗保险", "公务员医疗补助", "大额医疗费用补助", "离休人员医疗保障", "城乡居民基本医疗保险",
                   "城乡居民大病医疗保险", "其他特殊人员医疗保障", "长期照护保险", "生育保险"}

require_chromium()


@pytest.fixture(scope="module")
def people(db):  # type: ignore[no-untyped-def]
    """Adults with contributions, each of another household (so a family request needs the member's approval)."""
    adult = Person.brdy < clock.today().replace(year=clock.today().year - 22)
    with db.unit_of_work(write=False) as session:
        paid = select(Contribution.psn_no).group_by(Contribution.psn_no).having(func.count() > 0)
        rows = session.scalars(select(Person).where(adult, Person.psn_no.in_(paid)).order_by(Person.psn_no)).all()
    seen: set[object] = set()
    chosen = []
    for person in rows:
        if person.hshld_id not in seen:
            seen.add(person.hshld_id)
            chosen.append(person)
    assert len(chosen) >= 7
    return chosen


def activate(live_server: str, person: Person) -> dict[str, str]:
    """The person's first phone, activated through the API."""
    answer = httpx.post(f"{live_server}/api/v1/activations", json={
        "chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name, "password": PASSWORD,
        "face": demo_face(person.certno), "liveness": 0.97, "device_label": "第一部手机"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def latin_words(page) -> list[str]:  # type: ignore[no-untyped-def]
    text = page.evaluate("document.body.innerText")
    return [w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in ALLOWED]


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def new_phone(browser, width: int = 390):  # type: ignore[no-untyped-def]
    """A fresh browser context: a phone that never ran the app. Records CSP violations and API calls."""
    page = browser.new_page(viewport={"width": width, "height": 800}, locale="zh-CN")
    page.csp_violations = []
    page.api_calls = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_violations.append(m.text))
    page.on("request", lambda r: "/api/" in r.url and page.api_calls.append((r.method, r.url, r.post_data)))
    return page


def bad_check_digit(certno: str) -> str:
    last = "0123456789X"
    return certno[:17] + last[(last.index(certno[17]) + 1) % len(last)]


def test_second_phone_refusals_are_chinese(browser, live_server: str, people) -> None:  # type: ignore[no-untyped-def]
    person, stranger = people[0], people[1]
    activate(live_server, person)  # the first phone
    page = new_phone(browser)
    page.goto(f"{live_server}/app/")
    page.wait_for_selector("#face-button", state="visible")

    # an ID number with a wrong check digit: refused here, before any face is taken, and no success is claimed
    page.fill("#certno", bad_check_digit(person.certno))
    page.fill("#name", person.psn_name)
    page.fill("#password", "135790")
    page.click("#face-button")
    page.wait_for_function("() => document.querySelector('#face-status').textContent.length > 0")
    assert page.text_content("#face-status") == "身份证号有误，请核对后再刷脸"
    assert not [c for c in page.api_calls if "/demo/face" in c[1]]
    assert latin_words(page) == []
    shot(page, "zh-bad-id-number.png")

    # the right ID number and a wrong password: the face is taken, but only the platform can say it matched
    page.fill("#certno", person.certno)
    page.click("#face-button")
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    assert "完成" not in page.text_content("#face-status") and "✓" not in page.text_content("#face-status")
    page.click("#login-button")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert page.text_content("#login-error").startswith("消费密码错误"), page.text_content("#login-error")
    assert latin_words(page) == []
    shot(page, "zh-wrong-password.png")

    # the camera sees someone else: the platform refuses the face, and the page says so in Chinese
    page.route("**/api/v1/demo/face*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"face": demo_face(stranger.certno)})))
    page.fill("#password", PASSWORD)
    page.click("#face-button")
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    assert page.text_content("#login-error") == ""  # a new attempt starts without the old message
    page.click("#login-button")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert page.text_content("#login-error").startswith("刷脸未通过"), page.text_content("#login-error")
    assert page.text_content("#face-status") == "刷脸未通过，请重新刷脸"
    assert latin_words(page) == []
    shot(page, "zh-face-refused.png")
    page.unroute("**/api/v1/demo/face*")

    # without a new face the form does not pretend: it asks for one
    page.click("#login-button")
    assert page.text_content("#login-error") == "请先刷脸认证"

    # too many tries: the wait comes from Retry-After, whatever the server's own words
    page.route("**/api/v1/activations", lambda route: route.fulfill(
        status=429, headers={"retry-after": "17"}, content_type="application/problem+json",
        body=json.dumps({"type": "about:blank", "title": "rate-limited", "status": 429, "detail": "too many attempts"})))
    page.click("#face-button")
    page.wait_for_function("() => document.querySelector('#face-status').textContent.includes('已采集')")
    page.click("#login-button")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert page.text_content("#login-error") == "操作过于频繁，请于17秒后再试"
    page.unroute("**/api/v1/activations")

    # success: the home screen, and no message of the failed tries survives (not even after signing out)
    page.click("#login-button")
    page.wait_for_selector("#view-home:not([hidden])")
    page.wait_for_function("() => document.querySelector('#qr').dataset.code.length > 0")
    assert page.text_content("#qr-name") == person.psn_name
    assert latin_words(page) == []
    page.click("#sign-out")
    page.wait_for_selector("#view-login:not([hidden])")
    assert page.text_content("#login-error") == "" and page.text_content("#face-status") == ""
    assert page.csp_violations == []
    page.close()


def test_contributions_by_name_and_large_font_at_360(browser, live_server: str, people) -> None:  # type: ignore[no-untyped-def]
    person = people[2]
    session = activate(live_server, person)
    page = new_phone(browser, width=360)
    page.goto(f"{live_server}/app/")
    page.wait_for_selector("#face-button", state="visible")
    page.click("#font-toggle")  # 大字版 from the sign-in screen on
    assert "large" in page.get_attribute("html", "class")
    assert words_split_across_lines(page) == []
    shot(page, "zh-large-360-login.png")

    page.evaluate("([token, device]) => { localStorage.setItem('yb.token', token); localStorage.setItem('yb.device', device); }",
                  [session["token"], session["device_id"]])
    page.reload()
    page.wait_for_selector("#view-home:not([hidden])")
    assert "large" in page.get_attribute("html", "class")  # kept across reloads
    page.click("[data-tab=contributions]")
    page.wait_for_selector("#tab-contributions .entry")
    names = page.locator("#tab-contributions .entry-head b").all_text_contents()
    assert names and set(names) <= INSURANCE_NAMES, names  # by name, never the code (310, 390…)
    for tab in ("records", "contributions", "account", "family"):
        page.click(f"[data-tab={tab}]")
        page.wait_for_timeout(200)
        assert latin_words(page) == []
        assert words_split_across_lines(page) == [], tab
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.click("[data-tab=contributions]")
    page.wait_for_selector("#tab-contributions .entry")
    shot(page, "zh-large-360.png")
    page.close()


def words_split_across_lines(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Visible button labels, phrases, names and headings whose text runs over more than one line."""
    return page.evaluate("""() => [...document.querySelectorAll('button, .phrase, .entry-head b, th, h1, h2, label')]
        .filter((el) => el.offsetParent !== null && el.textContent.trim() && !el.querySelector('.phrase'))  // phrases: each checked
        .filter((el) => { const r = document.createRange();
                          r.selectNodeContents(el.tagName === 'LABEL' ? el.firstChild : el);
                          const tops = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
                          return tops.size > 1; })
        .map((el) => el.textContent.trim())""")


def test_stale_messages_are_cleared(browser, live_server: str, people) -> None:  # type: ignore[no-untyped-def]
    holder, member = people[3], people[4]
    session = activate(live_server, holder)
    page = new_phone(browser)
    page.goto(f"{live_server}/app/")
    page.evaluate("([token, device]) => { localStorage.setItem('yb.token', token); localStorage.setItem('yb.device', device); }",
                  [session["token"], session["device_id"]])
    page.reload()
    page.wait_for_selector("#view-home:not([hidden])")
    page.click("[data-tab=family]")
    page.fill("#bind-certno", bad_check_digit(member.certno))
    page.fill("#bind-name", member.psn_name)
    page.click("#bind-form button[type=submit]")
    assert page.text_content("#bind-result") == "身份证号有误，请核对"
    # a screen change takes the message away
    page.click("[data-tab=records]")
    page.click("[data-tab=family]")
    assert page.text_content("#bind-result") == ""
    # the server's refusal (a name that does not match) in Chinese, then a success replaces it
    page.fill("#bind-certno", member.certno)
    page.fill("#bind-name", member.psn_name + "某")
    page.click("#bind-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#bind-result').textContent.length > 0")
    assert "不一致" in page.text_content("#bind-result"), page.text_content("#bind-result")
    page.fill("#bind-name", member.psn_name)
    page.click("#bind-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#bind-result').textContent.includes('等待对方')")
    assert "不一致" not in page.text_content("#bind-result")
    assert latin_words(page) == []
    page.close()


def test_family_request_is_approved_with_the_password(browser, live_server: str, people) -> None:  # type: ignore[no-untyped-def]
    holder, member = people[5], people[6]
    holder_session = activate(live_server, holder)
    bound = httpx.post(f"{live_server}/api/v1/me/family", headers={"authorization": f"Bearer {holder_session['token']}"},
                       json={"certno": member.certno, "name": member.psn_name, "relation": "04"})
    assert bound.status_code == 201 and bound.json()["status"] == "pending", bound.text
    member_session = activate(live_server, member)
    page = new_phone(browser)
    page.goto(f"{live_server}/app/")
    page.evaluate("([token, device]) => { localStorage.setItem('yb.token', token); localStorage.setItem('yb.device', device); }",
                  [member_session["token"], member_session["device_id"]])
    page.reload()
    page.wait_for_selector("#view-home:not([hidden])")
    page.click("[data-tab=family]")
    page.click("[data-approve]")
    page.wait_for_selector("#approve-dialog[open]")
    assert holder.psn_name in page.text_content("#approve-text") and "消费密码" in page.text_content("#approve-text")
    page.fill("#approve-password", "12")
    page.click("#approve-confirm")
    assert page.text_content("#approve-error") == "消费密码为6位数字"
    assert not [c for c in page.api_calls if c[1].endswith("/approve")]
    shot(page, "zh-approve-dialog.png")
    # a wrong password: refused by the platform, said in the dialog, which stays open for another try
    page.fill("#approve-password", "135790")
    page.click("#approve-confirm")
    page.wait_for_function("() => document.querySelector('#approve-error').textContent.length > 0")
    assert page.text_content("#approve-error").startswith("消费密码错误"), page.text_content("#approve-error")
    assert page.is_visible("#approve-dialog") and latin_words(page) == []
    page.fill("#approve-password", PASSWORD)
    page.click("#approve-confirm")
    page.wait_for_selector("#approve-dialog", state="hidden")
    page.wait_for_function("() => document.querySelector('#bind-result').textContent.includes('已同意')")
    sent = [c for c in page.api_calls if c[1].endswith("/approve")]
    assert [(method, json.loads(body)) for method, _, body in sent] == [("POST", {"password": "135790"}), ("POST", {"password": PASSWORD})]
    assert page.locator("[data-approve]").count() == 0
    assert latin_words(page) == []
    page.close()


def test_problem_messages(browser, live_server: str) -> None:  # type: ignore[no-untyped-def]
    """The mapping itself: reason codes, fields and statuses to plain Chinese; Chinese details shown as they are."""
    page = new_phone(browser)
    page.goto(f"{live_server}/app/")
    page.wait_for_selector("#face-button", state="visible")
    cases = [
        ({"status": 403, "title": "wrong-password", "detail": "password: wrong password; 4 attempts left before the lock",
          "field": "password"},
         None, "消费密码错误，还可尝试4次"),
        ({"status": 403, "title": "face", "detail": "face: face check failed: the face does not match", "field": "face"}, None,
         "刷脸未通过：与本人照片不符，请重新刷脸"),
        ({"status": 403, "title": "liveness", "detail": "face: liveness check failed", "field": "face"}, None,
         "刷脸未通过：未检测到真人，请重新刷脸"),
        ({"status": 403, "title": "locked", "detail": "password: the password is locked until 2026-11-23 13:05:00 after 5 wrong attempts"},
         None, "消费密码错误次数过多，已锁定至13:05，可稍后再试或刷脸重置密码"),
        ({"status": 400, "title": "InputError", "detail": "certno: resident ID number fails the GB 11643 check digit", "field": "certno"},
         None, "身份证号有误，请核对"),
        ({"status": 400, "title": "invalid-input", "detail": "Expected `str`, got `int`", "field": "password"}, None,
         "消费密码为6位数字，且不能是相同或连续的数字"),
        ({"status": 403, "title": "wrong-password", "detail": "password: 消费密码错误，还可尝试3次", "field": "password"}, None,
         "消费密码错误，还可尝试3次"),
        ({"status": 403, "title": "minor", "detail": "a minor's credential is held by a guardian: under 亲情账户"}, None,
         "未成年人的医保码由监护人在“亲情账户”中添加"),
        ({"status": 429, "title": "rate-limited", "detail": "slow down"}, "30", "操作过于频繁，请于30秒后再试"),
        ({"status": 429, "title": "rate-limited", "detail": "slow down"}, None, "操作过于频繁，请稍后再试"),
        ({"status": 400, "title": "Unknown", "detail": "something odd"}, None, "输入有误，请检查后重试"),
        ({"status": 401, "title": "AuthError", "detail": "not signed in"}, None, "请重新登录"),
        ({"status": 403, "title": "Other", "detail": "forbidden"}, None, "未通过验证，无法继续"),
        ({"status": 404, "detail": "Not Found"}, None, "未找到相关信息"),
        ({"status": 409, "title": "Conflict", "detail": "retry"}, None, "操作未完成，请刷新后重试"),
        ({"status": 409, "title": "Conflict", "detail": "certno: already bound (pending)", "field": "certno"}, None,
         "已添加过这位家庭成员，或正在等待对方确认"),
        ({"status": 503, "title": "Busy", "detail": "database is locked"}, None, "服务暂时不可用，请稍后再试"),
        ({"status": 500, "detail": "Internal Server Error"}, None, "服务出错了，请稍后再试"),
    ]
    for problem, retry_after, expected in cases:
        assert page.evaluate("([p, r]) => problemMessage(p, r)", [problem, retry_after]) == expected, problem
    page.close()
