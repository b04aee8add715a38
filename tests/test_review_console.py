"""The reviewers' page (智能审核 · 违规结算) of the console: flagged settlements with the rule that fired, filtered by
rule, severity, institution and date; staff see every institution, an institution its own. Through the JSON endpoints
the page reads (/console/api/review/…), and the page's files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from flows import fee, fresh_person, ok, register, settle_input
from test_console import OTHER, console_login
from yibao.client import CounterClient
from yibao.console import service as console
from yibao.core import clock

DAPAGLIFLOZIN = "XA10BKA016A002010862237"   # 限适应症 (R0601, 转自费)
STATIC = Path(__file__).resolve().parents[1] / "src" / "yibao" / "console" / "static"


def _settle(client: CounterClient, db, code: str, amount: str) -> str:  # type: ignore[no-untyped-def]
    person = fresh_person(db, "310")
    mdtrt_id = register(client, person, "310")
    ok(client.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, code, amount)]}))
    return ok(client.call("2207", settle_input(person, mdtrt_id, "310", amount)))["setlinfo"]["setl_id"]


@pytest.fixture(scope="module")
def flagged(http, db, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from conftest import secret_of

    mine = CounterClient("http://testserver", "H37010000001", secret_of("H37010000001"), http=http)
    theirs = CounterClient("http://testserver", OTHER, secret_of(OTHER), http=http)
    ok(mine.sign_in())
    ok(theirs.sign_in())
    a = _settle(mine, db, DAPAGLIFLOZIN, "71.30")
    b = _settle(theirs, db, DAPAGLIFLOZIN, "71.30")
    with db.unit_of_work() as session:
        password = console.add_staff(session, "review.wang", settings.password_scrypt_n)
    reply = http.post("/console/api/sessions", json={"staff": "review.wang", "password": password})
    assert reply.status_code == 201, reply.text
    return {"mine": a, "theirs": b, "staff": reply.json()["token"]}


def _list(http, auth: dict[str, str], **params: str) -> list[dict]:  # type: ignore[no-untyped-def]
    reply = http.get("/console/api/review/findings", params=params, headers=auth)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_staff_list_flagged_settlements_with_the_rule_that_fired(http, flagged) -> None:  # type: ignore[no-untyped-def]
    staff = {"authorization": f"Bearer {flagged['staff']}"}
    listed = {s["setl_id"]: s for s in _list(http, staff)}
    assert {flagged["mine"], flagged["theirs"]} <= set(listed)
    entry = listed[flagged["mine"]]
    (finding,) = entry["findings"]
    assert finding["rule_id"] == "R0601" and finding["action_name"] == "转自费" and finding["severity_name"] == "高度可疑"
    assert finding["med_list_codg"] == DAPAGLIFLOZIN and Decimal(finding["amount"]) == Decimal("71.30") and "适应症" in finding["content"]
    assert entry["fixmedins_code"] == "H37010000001"


def test_filters_rule_severity_institution_and_dates(http, flagged) -> None:  # type: ignore[no-untyped-def]
    staff = {"authorization": f"Bearer {flagged['staff']}"}
    today = clock.today().isoformat()
    assert flagged["mine"] in {s["setl_id"] for s in _list(http, staff, rule_id="R0601", severity="2", begin=today, end=today)}
    assert not _list(http, staff, rule_id="R0101")
    assert not _list(http, staff, severity="1")
    only_other = _list(http, staff, fixmedins_code=OTHER)
    assert {s["fixmedins_code"] for s in only_other} == {OTHER} and flagged["theirs"] in {s["setl_id"] for s in only_other}
    assert not _list(http, staff, end="2000-01-01")
    bad = http.get("/console/api/review/findings", params={"begin": "yesterday"}, headers=staff)
    assert bad.status_code == 400 and bad.json()["field"] == "begin" and "日期" in bad.json()["detail"]
    rules = http.get("/console/api/review/rules", headers=staff).json()
    assert {"R0101", "R0601", "R0701"} <= {r["rule_id"] for r in rules}


def test_an_institution_sees_only_its_own_and_strangers_nothing(http, flagged) -> None:  # type: ignore[no-untyped-def]
    own = _list(http, console_login(http, "H37010000001", fresh=True), fixmedins_code=OTHER)  # the filter cannot widen what it sees
    assert own and {s["fixmedins_code"] for s in own} == {"H37010000001"}
    assert http.get("/console/api/review/findings").status_code == 401


def test_the_page_is_served_and_uses_only_text() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert 'id="view-review"' in html and '<script src="/console/review.js"></script>' in html and "违规结算" in html
    script = (STATIC / "review.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "/review/findings" in script
