"""保医通 (issue 14 item 3): a person authorises one insurer for some settlements until a date; the insurer reads exactly
those, as valid FHIR R4 (R4B models), through a signed API; everything else is refused and logged; every access is a link
of an SM3 hash chain that `yibao audit verify` walks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import delete, select, text, update

from conftest import HOSPITAL, fresh_database_url, secret_of
from flows import catalogue_codes, outpatient, person_with, signed_in
from yibao.client import CounterClient
from yibao.core import clock
from yibao.encounter.models import FeeLine, Settlement
from yibao.sharing import fhir
from yibao.sharing import service as sharing
from yibao.sharing.models import AccessRecord, Consent, Insurer
from yibao.store.db import Database
from yibao.store.migrate import upgrade

PASSWORD = "135790"
USED: set[str] = set()
INSURERS: dict[str, str] = {}


def insurer(db: Database, code: str) -> str:
    """A registered insurer's secret (registered once per module database)."""
    if code not in INSURERS:
        with db.unit_of_work() as session:
            existing = session.get(Insurer, code)
            INSURERS[code] = existing.secret if existing else sharing.add_insurer(session, code, f"测试保险公司{code}")
    return INSURERS[code]


def someone(db: Database) -> Any:
    person = person_with(db, "310", region="370100", retired=False, skip=USED)
    USED.add(person.psn_no)
    return person




def settled(counter: Any, person: Any, lines: list[tuple[str, str]]) -> str:
    return outpatient(counter, person, "310", lines, acct="0")["setlinfo"]["setl_id"]


def consent(http: Any, auth: dict[str, str], person: Any, code: str, **body: Any) -> Any:
    body = {"insurer_code": code, "valid_until": (clock.today() + timedelta(days=30)).isoformat(), "password": PASSWORD, **body}
    return http.post(f"/api/v1/people/{person.psn_no}/consents", json=body, headers=auth)


def fetch(http: Any, code: str, secret: str, consent_id: str, **params: Any) -> Any:
    query = urlencode({"consent": consent_id, **params}, doseq=True)
    target = f"/fhir/ExplanationOfBenefit?{query}"
    return http.get(target, headers=sharing.sign_headers(code, secret, "GET", target))


def last_access(db: Database) -> AccessRecord:
    with db.unit_of_work(write=False) as session:
        row = session.scalars(select(AccessRecord).order_by(AccessRecord.seq.desc()).limit(1)).one()
        session.expunge(row)
        return row


def chain_ok(db: Database) -> sharing.Verdict:
    with db.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    assert verdict.ok, verdict.line()
    return verdict


@pytest.fixture(scope="module")
def case(http, db, request):  # type: ignore[no-untyped-def]
    """A person with three settlements, signed in to the app; two insurers."""
    counter = CounterClient("http://testserver", HOSPITAL, secret_of(HOSPITAL), http=http)
    assert counter.sign_in()["infcode"] == 0
    codes = catalogue_codes(db)
    person = someone(db)
    setl_ids = [settled(counter, person, [(codes["jia"], "120.00"), (codes["yi"], "35.50")]),
                settled(counter, person, [(codes["jia"], "80.00")]),
                settled(counter, person, [(codes["bing"], "60.00")])]
    return {"person": person, "auth": signed_in(http, person, PASSWORD), "setl_ids": setl_ids, "counter": counter, "codes": codes,
            "a": ("PICC3701", insurer(db, "PICC3701")), "b": ("CPIC3701", insurer(db, "CPIC3701"))}


def test_consent_then_fetch_answers_exactly_the_consented_settlements_as_valid_fhir(http, db, case) -> None:  # type: ignore[no-untyped-def]
    person, auth, setl_ids = case["person"], case["auth"], case["setl_ids"]
    code, secret = case["a"]
    options = http.get("/api/v1/share-options", headers=auth).json()
    assert {"insurer_code": code, "insurer_name": f"测试保险公司{code}"} in options["insurers"]
    granted = consent(http, auth, person, code, setl_ids=setl_ids[:2], purpose="门诊医疗险理赔")
    assert granted.status_code == 201, granted.text
    shown = granted.json()
    assert shown["state"] == "有效" and sorted(shown["setl_ids"]) == sorted(setl_ids[:2]) and shown["reads"] == 0

    reply = fetch(http, code, secret, shown["consent_id"])
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(reply.content)  # an insurer's FHIR tooling reads it
    eobs = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "ExplanationOfBenefit"]
    patients = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Patient"]
    assert bundle.type == "searchset" and bundle.total == 2
    assert sorted(next(i.value for i in eob.identifier if i.system == fhir.SETL_ID) for eob in eobs) == sorted(setl_ids[:2])
    # the patient: the person's number and the masked ID number, nothing more identifying
    (patient,) = patients
    ids = {i.system: i.value for i in patient.identifier}
    assert ids[fhir.PSN_NO] == person.psn_no and ids[fhir.CERTNO_MASKED] != person.certno
    assert ids[fhir.CERTNO_MASKED].startswith(person.certno[:4]) and "*" in ids[fhir.CERTNO_MASKED]
    assert patient.name is None and person.certno not in reply.text and person.psn_name not in reply.text
    with db.unit_of_work(write=False) as session:
        for eob in eobs:
            setl_id = next(i.value for i in eob.identifier if i.system == fhir.SETL_ID)
            s = session.get(Settlement, setl_id)
            lines = session.scalars(select(FeeLine).where(FeeLine.setl_id == setl_id)).all()
            assert eob.status == "active" and eob.patient.reference == f"Patient/{patient.id}"
            assert fhir.read_total(eob, fhir.ADJUDICATION, "submitted") == s.medfee_sumamt
            assert fhir.read_total(eob, fhir.ADJUDICATION, "benefit") == s.fund_pay_sumamt
            assert fhir.read_total(eob, fhir.FUND, "hifp_pay") == s.hifp_pay
            assert fhir.read_total(eob, fhir.FUND, "psn_cash_pay") == s.psn_cash_pay
            assert len(eob.item) == len(lines)
            assert sum(Decimal(str(item.net.value)) for item in eob.item) * 100 == s.medfee_sumamt
            assert {c.code for c in eob.item[0].productOrService.coding} <= {line.med_list_codg for line in lines}
            diag = eob.diagnosis[0].diagnosisCodeableConcept.coding[0]
            assert (diag.system, diag.code) == (fhir.ICD10_NHSA, "J06.900")
    record = last_access(db)
    assert (record.outcome, record.insurer_code, record.consent_id) == ("ok", code, shown["consent_id"])
    assert sorted(record.setl_ids.split(",")) == sorted(setl_ids[:2])
    # one of the consented settlements alone
    one = fetch(http, code, secret, shown["consent_id"], setl_id=setl_ids[1])
    assert one.status_code == 200 and Bundle.model_validate_json(one.content).total == 1
    listed = http.get(f"/api/v1/people/{person.psn_no}/consents", headers=auth).json()
    assert next(c for c in listed if c["consent_id"] == shown["consent_id"])["reads"] == 2
    chain_ok(db)


def test_reading_outside_the_authorisation_is_refused_and_logged(http, db, case) -> None:  # type: ignore[no-untyped-def]
    person, auth, setl_ids = case["person"], case["auth"], case["setl_ids"]
    code, (other, other_secret) = case["a"][0], case["b"]
    consent_id = consent(http, auth, person, code, setl_ids=setl_ids[:1]).json()["consent_id"]
    someone_else = person_with(db, "310", region="370100", retired=False, skip=USED | {person.psn_no})

    for params, who, reason in [({"setl_id": setl_ids[2]}, case["a"], "outside-consent"),  # another settlement of the person
                                ({"setl_id": f"{setl_ids[0]},{setl_ids[2]}"}, case["a"], "outside-consent"),
                                ({"patient": someone_else.psn_no}, case["a"], "outside-consent"),  # another person
                                ({}, case["b"], "consent-other-insurer")]:  # another insurer's authorisation
        reply = fetch(http, who[0], who[1], consent_id, **params)
        assert reply.status_code == 403, (params, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert reply.json()["title"] == reason and "entry" not in reply.text
        record = last_access(db)
        assert (record.outcome, record.reason, record.insurer_code, record.consent_id) == ("refused", reason, who[0], consent_id)
    unknown = fetch(http, other, other_secret, "BYT0000000000000000000")
    assert unknown.status_code == 403 and unknown.json()["title"] == "consent-unknown"
    assert last_access(db).reason == "consent-unknown"
    # a settlement that is not the person's cannot even be authorised
    stranger = settled(case["counter"], someone_else, [(case["codes"]["jia"], "10.00")])
    refused = consent(http, auth, person, code, setl_ids=[stranger])
    assert refused.status_code == 400 and refused.json()["field"] == "setl_ids"
    chain_ok(db)


def test_a_revoked_or_expired_authorisation_is_refused_and_a_wrong_password_signs_nothing(http, db, case) -> None:  # type: ignore[no-untyped-def]
    person, auth, setl_ids = case["person"], case["auth"], case["setl_ids"]
    code, secret = case["a"]
    wrong = consent(http, auth, person, code, setl_ids=setl_ids[:1], password="246813")
    assert wrong.status_code == 403 and wrong.json()["title"] == "wrong-password"
    before = len(http.get(f"/api/v1/people/{person.psn_no}/consents", headers=auth).json())

    first = consent(http, auth, person, code, setl_ids=setl_ids[:1]).json()["consent_id"]
    assert fetch(http, code, secret, first).status_code == 200
    revoked = http.post(f"/api/v1/people/{person.psn_no}/consents/{first}/revoke", headers=auth)
    assert revoked.status_code == 201 and revoked.json()["state"] == "已撤销" and not revoked.json()["may_revoke"]
    reply = fetch(http, code, secret, first)
    assert reply.status_code == 403 and reply.json()["title"] == "consent-revoked"
    assert (last_access(db).outcome, last_access(db).reason) == ("refused", "consent-revoked")

    # by dates: what was settled today; then the authorisation ends
    today = clock.today().isoformat()
    ranged = consent(http, auth, person, code, begin_date=today, end_date=today)
    assert ranged.status_code == 201, ranged.text
    assert set(setl_ids) <= set(ranged.json()["setl_ids"]) and ranged.json()["scope"] == "range"
    with db.unit_of_work() as session:
        session.execute(update(Consent).where(Consent.consent_id == ranged.json()["consent_id"])
                        .values(valid_until=clock.today() - timedelta(days=1)))
    reply = fetch(http, code, secret, ranged.json()["consent_id"])
    assert reply.status_code == 403 and reply.json()["title"] == "consent-expired"
    assert last_access(db).reason == "consent-expired"
    listed = http.get(f"/api/v1/people/{person.psn_no}/consents", headers=auth).json()
    assert len(listed) == before + 2 and {c["state"] for c in listed[:2]} == {"已撤销", "已过期"}
    # people read Chinese; an authorisation for a date gone by is refused
    late = consent(http, auth, person, code, setl_ids=setl_ids[:1], valid_until="2020-01-01")
    assert late.status_code == 400 and "授权截止日期" in late.json()["detail"]
    chain_ok(db)


def test_bad_signatures_old_timestamps_and_replayed_nonces_are_refused(http, db, case) -> None:  # type: ignore[no-untyped-def]
    person, auth, setl_ids = case["person"], case["auth"], case["setl_ids"]
    code, secret = case["a"]
    consent_id = consent(http, auth, person, code, setl_ids=setl_ids[:1]).json()["consent_id"]
    target = f"/fhir/ExplanationOfBenefit?consent={consent_id}"

    assert http.get(target).status_code == 401  # unsigned
    forged = sharing.sign_headers(code, "0" * 64, "GET", target)
    reply = http.get(target, headers=forged)
    assert reply.status_code == 401 and reply.json()["title"] == "signature"
    assert (last_access(db).outcome, last_access(db).reason) == ("refused", "signature")
    # signed for another query: the signature covers the query string (no swapping the consent or the settlements)
    other = sharing.sign_headers(code, secret, "GET", f"/fhir/ExplanationOfBenefit?consent={consent_id}&setl_id={setl_ids[2]}")
    assert http.get(target, headers=other).json()["title"] == "signature"
    stale = sharing.sign_headers(code, secret, "GET", target, timestamp_ms=int(time.time() * 1000) - 3_600_000)
    assert http.get(target, headers=stale).json()["title"] == "timestamp"
    headers = sharing.sign_headers(code, secret, "GET", target)
    assert http.get(target, headers=headers).status_code == 200
    again = http.get(target, headers=headers)
    assert again.status_code == 401 and again.json()["title"] == "replay"
    assert last_access(db).reason == "replay"
    # a refused request is not sent again either: its nonce is kept though the refusal rolled its work back
    outside = f"/fhir/ExplanationOfBenefit?consent={consent_id}&setl_id={setl_ids[2]}"
    refused_once = sharing.sign_headers(code, secret, "GET", outside)
    assert http.get(outside, headers=refused_once).status_code == 403
    replayed = http.get(outside, headers=refused_once)
    assert replayed.status_code == 401 and replayed.json()["title"] == "replay"
    # a stranger's key: refused, and not written to the chain (only known insurers are)
    seq = last_access(db).seq
    assert http.get(target, headers=sharing.sign_headers("NOBODY01", secret, "GET", target)).status_code == 401
    assert last_access(db).seq == seq
    chain_ok(db)


def test_concurrent_accesses_keep_one_chain(http, db, settings, case) -> None:  # type: ignore[no-untyped-def]
    person, auth, setl_ids = case["person"], case["auth"], case["setl_ids"]
    code, secret = case["a"]
    consent_id = consent(http, auth, person, code, setl_ids=setl_ids).json()["consent_id"]
    start = chain_ok(db).count
    target = f"/fhir/ExplanationOfBenefit?consent={consent_id}"
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            ask = sharing.Ask(consent_id, (setl_ids[i % 3],) if i % 2 else (), "")
            sharing.fetch(db, settings, sharing.sign_headers(code, secret, "GET", target), "GET", target, b"", ask, f"10.0.0.{i}")
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    verdict = chain_ok(db)
    assert verdict.count == start + 16
    with db.unit_of_work(write=False) as session:
        rows = session.scalars(select(AccessRecord).where(AccessRecord.seq > start).order_by(AccessRecord.seq)).all()
        assert [r.seq for r in rows] == list(range(start + 1, start + 17))
        assert len({r.prev_hash for r in rows}) == 16  # no two rows hang off the same link


# -- a tampered chain, on a database of its own (the module's must stay whole) --------------------------------------

@pytest.fixture
def chain_db(tmp_path):  # type: ignore[no-untyped-def]
    url = fresh_database_url(tmp_path)
    database = Database(url)
    upgrade(database.engine)
    with database.unit_of_work() as session:
        for i in range(6):
            sharing.append(session, "PICC3701", f"BYT{i:020d}", "ok" if i % 2 else "refused", "" if i % 2 else "outside-consent",
                           [f"S{i}"], "127.0.0.1")
    yield database, url
    database.dispose()


def lift_the_guard(database: Database) -> None:
    """What someone with the database owner's rights can do: drop the append-only triggers (the chain still tells)."""
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER sharing_access_update_refused"))
            connection.execute(text("DROP TRIGGER sharing_access_delete_refused"))
        else:
            connection.execute(text("DROP TRIGGER sharing_access_append_only ON sharing_access"))


def verify_cli(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YIBAO_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "yibao", "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)


def test_a_tampered_chain_is_detected_by_the_service_and_by_yibao_audit_verify(chain_db) -> None:  # type: ignore[no-untyped-def]
    database, url = chain_db
    done = verify_cli(url)
    assert done.returncode == 0 and done.stdout.splitlines()[0] == "OK: 6 accesses, the chain is unbroken", done.stdout + done.stderr
    with database.unit_of_work(write=False) as session:
        last = session.get(AccessRecord, 6).hash
    assert done.stdout.splitlines()[1].startswith(f"head: access 6, SM3 {last}")
    listed = subprocess.run([sys.executable, "-m", "yibao", "audit", "accesses", "--limit", "2"],
                            env={**os.environ, "YIBAO_DATABASE_URL": url}, capture_output=True, text=True, timeout=120)
    rows = listed.stdout.splitlines()
    assert listed.returncode == 0 and rows[0].startswith("6  ") and rows[1].startswith("5  ") and "PICC3701  consent=" in rows[0]
    assert "reason=outside-consent" in listed.stdout.splitlines()[1]
    # the database itself refuses to change or remove a row
    third = AccessRecord.seq == 3
    for change in (update(AccessRecord).where(third).values(outcome="ok"), delete(AccessRecord).where(third)):
        with pytest.raises(Exception, match="append-only"), database.unit_of_work() as session:
            session.execute(change)
    lift_the_guard(database)

    # a refusal rewritten as a grant
    with database.unit_of_work() as session:
        session.execute(update(AccessRecord).where(AccessRecord.seq == 3).values(outcome="ok", reason=""))
    with database.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    assert not verdict.ok and verdict.broken_seq == 3 and "content" in verdict.why
    done = verify_cli(url)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "BROKEN at access 3" in done.stderr, done.stderr

    # the row rewritten with a fresh hash: the next row's link no longer matches
    with database.unit_of_work() as session:
        row = session.get(AccessRecord, 3)
        row.hash = sharing.link(row.prev_hash, sharing.canonical(row.seq, row.at, row.insurer_code, row.consent_id, row.outcome,
                                                                  row.reason, row.setl_ids, row.ip))
    with database.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    assert not verdict.ok and verdict.broken_seq == 4 and "prev_hash" in verdict.why

    # a row removed from the middle, or the newest rows cut off the end
    with database.unit_of_work() as session:
        session.execute(delete(AccessRecord).where(AccessRecord.seq >= 3))
    with database.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    assert not verdict.ok and verdict.broken_seq == 3 and "cut off" in verdict.why


def test_a_row_removed_from_the_middle_is_detected(chain_db) -> None:  # type: ignore[no-untyped-def]
    database, _ = chain_db
    lift_the_guard(database)
    with database.unit_of_work() as session:
        session.execute(delete(AccessRecord).where(AccessRecord.seq == 2))
    with database.unit_of_work(write=False) as session:
        verdict = sharing.verify(session)
    assert not verdict.ok and verdict.broken_seq == 2 and "missing" in verdict.why


def test_yibao_insurer_add_prints_the_secret_once_and_seals_it(chain_db) -> None:  # type: ignore[no-untyped-def]
    database, url = chain_db
    env = {**os.environ, "YIBAO_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "yibao", "insurer", "add", "ping3701", "--name", "平安健康济南"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    secret = done.stdout.split("secret ")[1].split()[0]
    assert len(secret) == 64
    with database.engine.connect() as connection:
        stored = connection.execute(text("select secret from insurer where insurer_code = 'PING3701'")).scalar()
    assert stored.startswith("sm4gcm1:") and secret not in stored
    with database.unit_of_work(write=False) as session:
        assert session.get(Insurer, "PING3701").secret == secret
    again = subprocess.run([sys.executable, "-m", "yibao", "insurer", "add", "PING3701", "--name", "x"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 2 and secret not in again.stdout + again.stderr


def test_the_insurers_decision_stand_in_pays_the_own_share_of_what_still_stands(http, db, case) -> None:  # type: ignore[no-untyped-def]
    """The bench's decision stand-in reads the Bundle with fhir.resources alone; a settlement reversed after the consent is
    answered as cancelled and pays nothing."""
    from standins.claim_decision import decide

    person, auth, counter, codes = case["person"], case["auth"], case["counter"], case["codes"]
    code, secret = case["a"]
    kept = outpatient(counter, person, "310", [(codes["jia"], "300.00")], acct="0")["setlinfo"]
    undone = outpatient(counter, person, "310", [(codes["yi"], "150.00")], acct="0")["setlinfo"]
    consent_id = consent(http, auth, person, code, setl_ids=[kept["setl_id"], undone["setl_id"]]).json()["consent_id"]
    assert counter.call("2208", {"data": {"setl_id": undone["setl_id"], "mdtrt_id": undone["mdtrt_id"],
                                          "psn_no": person.psn_no}})["infcode"] == 0
    reply = fetch(http, code, secret, consent_id)
    assert reply.status_code == 200, reply.text
    statuses = {e.resource.id: e.resource.status for e in Bundle.model_validate_json(reply.content).entry
                if e.resource.__resource_type__ == "ExplanationOfBenefit"}
    assert statuses == {f"setl-{kept['setl_id']}": "active", f"setl-{undone['setl_id']}": "cancelled"}
    decision = decide(reply.content)
    own = (Decimal(str(kept["psn_cash_pay"])) + Decimal(str(kept["acct_pay"]))) * 100
    assert decision.claims == 2 and decision.outcome == "pay"
    assert decision.amount_fen == int((own * Decimal("0.8")).to_integral_value())
    assert any("reversed" in r for r in decision.reasons)
    assert decide(reply.content, deductible_fen=10**9).outcome == "deny"
