"""Passwords, lockout, rate limits, real-name answers, password reset and family approvals (issue 9, items 2, 4 and 8).

Wrong passwords count at every entry point and the lock after five holds at all of them; sign-in, activation,
reset and family binding are rate limited per account and per IP in windows every worker shares; a real-name
failure is one answer whatever its cause; a reset ends every session and phone; a binding the member removed
comes back only with the member's approval, and visit tokens issued through it stop working; password hashes
keep their own scrypt parameters; and the audit trail records all of it without a password or a face.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import date
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import delete, func, select, text, update

from flows import ok
from yibao.app import create_app
from yibao.audit.models import AuditEvent
from yibao.client import CounterClient
from yibao.core import clock, idcard
from yibao.credential import service as credential
from yibao.credential.models import Credential, Device, FamilyBinding, RateCounter, UserSession
from yibao.credential.realperson import demo_face
from yibao.registry.models import Enrolment, Person

WRONG = "999111"
REAL_NAME = "身份证号与姓名不一致，或未查到参保信息"
TAKEN: set[str] = set()


def adults(db, n: int, *, exclude_household: int | None = None) -> list[Person]:  # type: ignore[no-untyped-def]
    """Insured adults nobody in this module used yet, each of another household."""
    with db.unit_of_work(write=False) as session:
        insured = select(Enrolment.psn_no).where(Enrolment.psn_insu_stas == "1")
        rows = session.scalars(select(Person).where(Person.brdy < clock.today().replace(year=clock.today().year - 20),
                                                    Person.psn_no.in_(insured), Person.psn_no.not_in(TAKEN))
                               .order_by(Person.psn_no.desc())).all()
    chosen: list[Person] = []
    households = {exclude_household}
    for person in rows:
        if person.hshld_id not in households:
            households.add(person.hshld_id)
            chosen.append(person)
            TAKEN.add(person.psn_no)
            if len(chosen) == n:
                return chosen
    raise LookupError("not enough adults")


def household_pair(db) -> tuple[Person, Person]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        adult = Person.brdy < clock.today().replace(year=clock.today().year - 20)
        insured = select(Enrolment.psn_no).where(Enrolment.psn_insu_stas == "1")
        for hshld in session.scalars(select(Person.hshld_id).where(adult, Person.psn_no.in_(insured)).group_by(Person.hshld_id)
                                     .having(func.count() >= 2).order_by(Person.hshld_id.desc())):
            pair = session.scalars(select(Person).where(Person.hshld_id == hshld, adult, Person.psn_no.in_(insured),
                                                        Person.psn_no.not_in(TAKEN)).order_by(Person.psn_no).limit(2)).all()
            if len(pair) == 2:
                TAKEN.update(p.psn_no for p in pair)
                return pair[0], pair[1]
    raise LookupError("no household with two adults")


def activation(person: Person, password: str, **extra: Any) -> dict[str, Any]:
    return {"chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name, "password": password,
            "face": demo_face(person.certno), "liveness": 0.97, "device_label": "phone", **extra}


class App:
    """A person's phone with the app, signed in."""

    def __init__(self, http: TestClient, person: Person, password: str) -> None:
        reply = http.post("/api/v1/activations", json=activation(person, password))
        assert reply.status_code == 201, reply.text
        self.http, self.person, self.password = http, person, password
        self.token, self.device_id = reply.json()["token"], reply.json()["device_id"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        return self.http.request(method, path, json=body, headers={"authorization": f"Bearer {self.token}"})

    def post(self, path: str, body: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        return self.call("POST", path, body if body is not None else {})

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.call("GET", path)

    def code(self, psn_no: str | None = None) -> str:
        reply = self.post(f"/api/v1/people/{psn_no or self.person.psn_no}/codes?svg=false")
        assert reply.status_code == 201, reply.text
        return reply.json()["code"]


def sign_in(http: TestClient, person: Person, password: str, device_id: str, **extra: Any):  # type: ignore[no-untyped-def]
    return http.post("/api/v1/sessions", json={"certno": person.certno, "name": person.psn_name, "password": password,
                                               "device_id": device_id, **extra})


def scanned(counter: CounterClient, code: str) -> dict[str, Any]:
    return counter.call("1162", {"data": {"ecQrCode": code, "businessType": "01101"}})


def stored(db, person: Person) -> Credential:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        found = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
        assert found is not None
        return found


def events(db, kind: str, subject: str | None = None) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        stmt = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
        if subject is not None:
            stmt = stmt.where(AuditEvent.subject == subject)
        return list(session.scalars(stmt))


def clear_rate_counters(db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work() as session:
        session.execute(delete(RateCounter))


# -- wrong passwords and the lock --------------------------------------------------------------------

def test_wrong_passwords_count_everywhere_and_the_lock_holds_everywhere(http, db, counter) -> None:  # type: ignore[no-untyped-def]
    member, holder = adults(db, 2)
    phone = App(http, member, "246135")
    asking = App(http, holder, "371590")
    request = asking.post("/api/v1/me/family", {"certno": member.certno, "name": member.psn_name, "relation": "04"})
    assert request.status_code == 201 and request.json()["status"] == "pending", request.text
    approve = f"/api/v1/me/family/{request.json()['id']}/approve"
    token = ok(scanned(counter, phone.code()))["ecToken"]
    pay = f"/api/v1/me/visits/{token}/authorize-payment"

    first = sign_in(http, member, WRONG, phone.device_id)
    assert first.status_code == 403 and first.json()["detail"] == "消费密码错误，还可尝试4次"
    # a second phone: the face passes, the password is wrong — counted, and the count is committed
    second_phone = http.post("/api/v1/activations", json=activation(member, WRONG))
    assert second_phone.status_code == 403 and second_phone.json()["title"] == "wrong-password", second_phone.text
    assert second_phone.json()["detail"] == "消费密码错误，还可尝试3次"
    assert stored(db, member).pwd_failures == 2
    paying = phone.post(pay, {"password": WRONG})
    assert paying.status_code == 403 and paying.json()["detail"] == "消费密码错误，还可尝试2次"
    approving = phone.post(approve, {"password": WRONG})
    assert approving.status_code == 403 and approving.json()["detail"] == "消费密码错误，还可尝试1次"
    locked = sign_in(http, member, WRONG, phone.device_id)
    assert locked.status_code == 403 and locked.json()["title"] == "locked"
    assert stored(db, member).locked_until is not None

    # locked: the right password opens nothing, at any entry point
    for reply in (sign_in(http, member, "246135", phone.device_id), http.post("/api/v1/activations", json=activation(member, "246135")),
                  phone.post(pay, {"password": "246135"}), phone.post(approve, {"password": "246135"})):
        assert reply.status_code == 403 and reply.json()["title"] == "locked", reply.text
        assert "已锁定至" in reply.json()["detail"] and "刷脸重置密码" in reply.json()["detail"]
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Device).where(Device.psn_no == member.psn_no)) == 1
        assert session.get(FamilyBinding, request.json()["id"]).status == "pending"
    refusals = [e.reason for e in events(db, "person.signin") + events(db, "person.activation") + events(db, "family.approve")
                + events(db, "person.pay_authorize") if e.actor == member.psn_no and e.outcome == "refused"]
    assert sorted(refusals).count("wrong-password") == 4 and "locked: wrong-password" in refusals


def test_approving_needs_the_password(http, db) -> None:  # type: ignore[no-untyped-def]
    member, holder = adults(db, 2)
    phone, asking = App(http, member, "514236"), App(http, holder, "730459")
    request = asking.post("/api/v1/me/family", {"certno": member.certno, "name": member.psn_name, "relation": "02"}).json()
    missing = phone.post(f"/api/v1/me/family/{request['id']}/approve", {})
    assert missing.status_code == 400 and missing.json()["field"] == "password" and missing.json()["detail"] == "请填写消费密码"
    assert phone.post(f"/api/v1/me/family/{request['id']}/approve", {"password": "514236"}).status_code == 201
    assert asking.get(f"/api/v1/people/{member.psn_no}").status_code == 200
    approved = events(db, "family.approve", subject=holder.psn_no)
    assert approved and approved[-1].actor == member.psn_no and approved[-1].outcome == "ok"


# -- rate limits ----------------------------------------------------------------------------------

def test_rate_limits_per_account_and_ip_shared_by_workers(settings, db) -> None:  # type: ignore[no-untyped-def]
    clear_rate_counters(db)
    limited = replace(settings, rate_window_s=900, rate_sign_in_account=2, rate_sign_in_ip=4, rate_activation_account=1,
                      rate_reset_account=1, rate_bind_account=1)
    person, other, holder, member = adults(db, 4)
    # two apps on one database: two workers
    with TestClient(app=create_app(limited, db)) as one, TestClient(app=create_app(limited, db)) as two:
        assert sign_in(one, person, WRONG, "x").status_code == 403
        assert sign_in(two, person, WRONG, "x").status_code == 403
        limit = sign_in(one, person, WRONG, "x")
        assert limit.status_code == 429 and limit.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(limit.headers["retry-after"]) <= 900
        assert limit.json()["title"] == "rate-limited" and limit.json()["detail"].startswith("操作过于频繁，请于")
        # an ID number nobody holds has a bucket like any other (a 429 tells nothing); then the IP's own limit
        unknown = idcard.make("370102", date(1971, 3, 4), 987)
        assert sign_in(two, replace_person(person, certno=unknown), WRONG, "x").status_code == 403
        assert sign_in(one, replace_person(person, certno=unknown), WRONG, "x").status_code == 429
        assert sign_in(one, other, WRONG, "x").status_code == 429  # over the IP's limit, whoever it is for

        assert one.post("/api/v1/activations", json=activation(holder, "620481")).status_code == 201
        again = two.post("/api/v1/activations", json=activation(holder, "620481"))
        assert again.status_code == 429 and "retry-after" in again.headers
        reset = {"certno": member.certno, "name": member.psn_name, "face": "not my face", "password": "620481"}
        assert one.post("/api/v1/password/reset", json=reset).status_code == 403
        assert two.post("/api/v1/password/reset", json={**reset, "face": demo_face(member.certno)}).status_code == 429
        token = one.post("/api/v1/activations", json=activation(member, "480264"))
        assert token.status_code == 201, token.text
        bearer = {"authorization": f"Bearer {token.json()['token']}"}
        bind = {"certno": person.certno, "name": person.psn_name, "relation": "02"}
        assert one.post("/api/v1/me/family", json=bind, headers=bearer).status_code == 201
        assert two.post("/api/v1/me/family", json={**bind, "certno": other.certno, "name": other.psn_name},
                        headers=bearer).status_code == 429
    clear_rate_counters(db)


def replace_person(person: Person, **values: str) -> Person:
    return Person(**{**{c: getattr(person, c) for c in ("psn_no", "certno", "psn_name")}, **values})


def test_rate_windows_end_and_their_buckets_expire(settings, db) -> None:  # type: ignore[no-untyped-def]
    clear_rate_counters(db)
    quick = replace(settings, rate_window_s=1, rate_sign_in_account=1)
    first, second = adults(db, 2)
    with TestClient(app=create_app(quick, db)) as client:
        while time.time() % 1 > 0.5:  # both attempts in one window
            time.sleep(0.05)
        assert sign_in(client, first, WRONG, "x").status_code == 403
        assert sign_in(client, first, WRONG, "x").status_code == 429
        time.sleep(2.1)
        assert sign_in(client, first, WRONG, "x").status_code == 403  # a new window
        time.sleep(2.1)
        assert sign_in(client, second, WRONG, "x").status_code == 403
    with db.engine.connect() as connection:
        buckets = connection.execute(text("SELECT bucket FROM rate_counter")).scalars().all()
    # the first person's buckets are gone: windows that ended are deleted, the table stays small
    assert f"signin:acct:{credential.account_key(first.certno)}" not in buckets
    assert f"signin:acct:{credential.account_key(second.certno)}" in buckets
    clear_rate_counters(db)


# -- real name: one answer ----------------------------------------------------------------------------

def test_every_real_name_failure_is_the_same_answer(http, db) -> None:  # type: ignore[no-untyped-def]
    person, uninsured, activated = adults(db, 3)
    with db.unit_of_work() as session:  # insured no more
        session.execute(update(Enrolment).where(Enrolment.psn_no == uninsured.psn_no).values(psn_insu_stas="4"))
    phone = App(http, activated, "318264")
    last = "0123456789X"
    bad_digit = person.certno[:17] + last[(last.index(person.certno[17]) + 1) % 11]
    unknown = idcard.make("370102", date(1969, 7, 8), 991)
    causes = {
        "invalid-id": (bad_digit, person.psn_name),
        "unknown-id": (unknown, person.psn_name),
        "wrong-name": (person.certno, person.psn_name[:1] + "某某"),
        "not-insured": (uninsured.certno, uninsured.psn_name),
    }
    not_activated = {"not-activated": (person.certno, person.psn_name)}

    def answers(path: str, body: Any, cases: dict[str, tuple[str, str]]) -> set[tuple[int, str]]:
        seen = set()
        for certno, name in cases.values():
            reply = http.post(path, json=body(certno, name))
            seen.add((reply.status_code, reply.text))
        return seen

    sign_ins = answers("/api/v1/sessions", lambda c, n: {"certno": c, "name": n, "password": "318264", "device_id": phone.device_id},
                       {**causes, **not_activated, "activated, wrong name": (activated.certno, activated.psn_name + "某")})
    assert len(sign_ins) == 1
    status, body = sign_ins.pop()
    assert status == 403 and '"title":"real-name"' in body and '"field":"certno"' in body and "尚未激活医保码" in body
    # activation and reset take the face first (it says nothing about the registry), then one real-name answer
    activations = answers("/api/v1/activations", lambda c, n: {**activation(person, "318264"), "certno": c, "name": n,
                                                               "face": demo_face(c)}, causes)
    resets = answers("/api/v1/password/reset", lambda c, n: {"certno": c, "name": n, "face": demo_face(c), "password": "318264"},
                     {**causes, **not_activated})
    for seen in (activations, resets):
        assert len(seen) == 1, seen
        status, body = seen.pop()
        assert status == 403 and '"title":"real-name"' in body and REAL_NAME in body
    # the cause is for the audit trail alone
    reasons = {e.reason for e in events(db, "person.signin") if e.outcome == "refused"}
    assert {f"real-name: {cause}" for cause in (*causes, "not-activated")} <= reasons


# -- password reset ------------------------------------------------------------------------------------

def test_a_reset_ends_every_session_and_phone(http, db, counter) -> None:  # type: ignore[no-untyped-def]
    (person,) = adults(db, 1)
    first, second = App(http, person, "150372"), App(http, person, "150372")
    token = ok(scanned(counter, first.code()))["ecToken"]
    assert counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})["infcode"] == 0
    reset = http.post("/api/v1/password/reset", json={"certno": person.certno, "name": person.psn_name, "face": demo_face(person.certno),
                                                      "password": "285160"})
    assert reset.status_code == 201, reset.text
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(UserSession).where(UserSession.psn_no == person.psn_no)) == 0
        assert set(session.scalars(select(Device.status).where(Device.psn_no == person.psn_no))) == {"revoked"}
    assert first.get("/api/v1/me").status_code == 401 and second.get("/api/v1/me").status_code == 401
    used = counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert used["infcode"] == -1 and "revoked" in used["err_msg"]
    assert sign_in(http, person, "285160", first.device_id).json()["title"] == "real-name"  # the phone was stopped
    assert App(http, person, "285160").get("/api/v1/me").status_code == 200
    assert [e.outcome for e in events(db, "person.password_reset", subject=person.psn_no)] == ["ok"]


def test_a_refused_reset_is_audited(http, db) -> None:  # type: ignore[no-untyped-def]
    (person,) = adults(db, 1)
    phone = App(http, person, "604913")
    refused = http.post("/api/v1/password/reset", json={"certno": person.certno, "name": person.psn_name, "face": "face:someone-else",
                                                        "password": "285160"})
    assert refused.status_code == 403 and refused.json()["title"] == "face"
    masked = person.certno[:4] + "*" * 10 + person.certno[-4:]
    trail = [e for e in events(db, "person.password_reset") if e.subject == masked]
    assert trail and trail[-1].outcome == "refused" and trail[-1].reason.startswith("face")
    assert sign_in(http, person, "604913", phone.device_id).status_code == 201  # the password did not change


# -- family bindings the member removed ---------------------------------------------------------------

def test_a_binding_the_member_removed_needs_the_member_again(http, db, counter) -> None:  # type: ignore[no-untyped-def]
    head, relative = household_pair(db)
    holder, member = App(http, head, "410628"), App(http, relative, "739150")
    bound = holder.post("/api/v1/me/family", {"certno": relative.certno, "name": relative.psn_name, "relation": "02"})
    assert bound.status_code == 201 and bound.json()["status"] == "active"  # the household register proves it
    binding = bound.json()["id"]
    token = ok(scanned(counter, holder.code(relative.psn_no)))["ecToken"]
    assert counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})["infcode"] == 0

    assert member.call("DELETE", f"/api/v1/me/family/{binding}").status_code == 204
    # the visit token issued through the removed binding stops working at once
    used = counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert used["infcode"] == -1 and "family binding" in used["err_msg"]
    # the holder asks again: the household register no longer suffices, the member must approve
    again = holder.post("/api/v1/me/family", {"certno": relative.certno, "name": relative.psn_name, "relation": "02"})
    assert again.status_code == 201 and again.json()["status"] == "pending", again.text
    assert holder.get(f"/api/v1/people/{relative.psn_no}").status_code == 403
    assert holder.post(f"/api/v1/people/{relative.psn_no}/codes").status_code == 403
    assert [r["id"] for r in member.get("/api/v1/me").json()["requests"]] == [binding]
    assert member.post(f"/api/v1/me/family/{binding}/approve", {"password": WRONG}).json()["title"] == "wrong-password"
    assert member.post(f"/api/v1/me/family/{binding}/approve", {"password": "739150"}).status_code == 201
    assert holder.get(f"/api/v1/people/{relative.psn_no}").status_code == 200

    # removed by the holder: the holder may bind the household member again at once
    assert holder.call("DELETE", f"/api/v1/me/family/{binding}").status_code == 204
    assert holder.post("/api/v1/me/family", {"certno": relative.certno, "name": relative.psn_name,
                                             "relation": "02"}).json()["status"] == "active"
    kinds = [(e.kind, e.actor, e.outcome) for e in events(db, "family.bind") + events(db, "family.unbind") + events(db, "family.approve")
             if relative.psn_no in (e.subject, e.actor) or head.psn_no in (e.subject, e.actor)]
    assert ("family.unbind", relative.psn_no, "ok") in kinds and ("family.unbind", head.psn_no, "ok") in kinds
    assert ("family.approve", relative.psn_no, "ok") in kinds and kinds.count(("family.bind", head.psn_no, "ok")) == 3


# -- password hashes keep their parameters -------------------------------------------------------------

def test_hashes_keep_their_parameters_and_are_strengthened_at_sign_in(http, db, settings) -> None:  # type: ignore[no-untyped-def]
    (person,) = adults(db, 1)
    phone = App(http, person, "392817")
    assert stored(db, person).pwd_params == "scrypt:n=16384,r=8,p=1"

    def hash_with(params: credential.ScryptParams | None) -> bytes:
        salt = os.urandom(16)
        digest = credential._scrypt("392817", salt, params or credential.LEGACY_PARAMS)
        with db.unit_of_work() as session:
            session.execute(update(Credential).where(Credential.psn_no == person.psn_no)
                            .values(pwd_salt=salt, pwd_hash=digest, pwd_params=params.text() if params else None))
        return digest

    weak = hash_with(credential.ScryptParams(2**12))
    assert sign_in(http, person, "392817", phone.device_id).status_code == 201  # verified with the stored, older parameters
    assert stored(db, person).pwd_params == "scrypt:n=16384,r=8,p=1" and stored(db, person).pwd_hash != weak
    legacy = hash_with(None)  # written before parameters were stored
    assert sign_in(http, person, "392817", phone.device_id).status_code == 201
    assert stored(db, person).pwd_params == "scrypt:n=16384,r=8,p=1" and stored(db, person).pwd_hash == legacy
    with TestClient(app=create_app(replace(settings, password_scrypt_n=2**15), db)) as stronger:
        assert sign_in(stronger, person, "392817", phone.device_id).status_code == 201
    assert stored(db, person).pwd_params == "scrypt:n=32768,r=8,p=1"
    # a platform with the lower setting still verifies the stronger hash, and does not weaken it
    assert sign_in(http, person, "392817", phone.device_id).status_code == 201
    assert stored(db, person).pwd_params == "scrypt:n=32768,r=8,p=1"
    assert sign_in(http, person, WRONG, phone.device_id).json()["title"] == "wrong-password"


# -- the audit trail ---------------------------------------------------------------------------------

def test_the_trail_has_sign_ins_and_activations_but_no_password_or_face(http, db) -> None:  # type: ignore[no-untyped-def]
    (person,) = adults(db, 1)
    phone = App(http, person, "826103")
    assert sign_in(http, person, "826103", phone.device_id).status_code == 201
    assert sign_in(http, person, WRONG, phone.device_id).status_code == 403
    assert [e.outcome for e in events(db, "person.activation", subject=person.psn_no)] == ["ok"]
    assert [(e.outcome, e.reason) for e in events(db, "person.signin", subject=person.psn_no)][-2:] == \
        [("ok", f"device {phone.device_id}"), ("refused", "wrong-password")]
    with db.unit_of_work(write=False) as session:
        trail = " ".join(f"{e.actor} {e.subject} {e.reason}" for e in session.scalars(select(AuditEvent)))
        faces = [demo_face(p.certno) for p in session.scalars(select(Person))]
    secrets_used = ["826103", "392817", "246135", "371590", "739150", "410628", "150372", "285160", WRONG, "face:someone-else"]
    assert not [s for s in secrets_used + faces if s in trail]


def test_a_stranger_with_the_id_and_name_learns_nothing_and_cannot_lock_the_account(http, db) -> None:  # type: ignore[no-untyped-def]
    """From a phone that is not the person's, a wrong password is answered exactly like a wrong name, and never counts."""
    (person,) = adults(db, 1)
    phone = App(http, person, "604913")
    stranger = [sign_in(http, person, "111111", "f" * 32) for _ in range(7)]
    wrong_name = http.post("/api/v1/sessions", json={"certno": person.certno, "name": person.psn_name + "某", "password": "111111",
                                                     "device_id": "f" * 32})
    assert {(r.status_code, r.json()["title"], r.json()["detail"]) for r in stranger} == {
        (wrong_name.status_code, wrong_name.json()["title"], wrong_name.json()["detail"])}
    assert sign_in(http, person, "604913", phone.device_id).status_code == 201  # not locked
