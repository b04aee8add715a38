"""The e-credential: activation, password and lockout, family, dynamic codes, decoding, ecToken in the visit."""

from __future__ import annotations

import hmac as std_hmac
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from conftest import HOSPITAL, channel_secret_of, secret_of
from flows import catalogue_codes, fee, ok, serial
from helpers import encode, now_ms
from yibao.client import CounterClient
from yibao.core import clock
from yibao.credential import codec
from yibao.credential import service as credential
from yibao.credential.realperson import demo_face
from yibao.gateway.auth import sign_headers
from yibao.registry.models import Account, Person


def adults(db, n: int, *, household_of: Person | None = None, employee: bool | None = None) -> list[Person]:  # type: ignore[no-untyped-def]
    from yibao.registry.models import Enrolment

    with db.unit_of_work(write=False) as session:
        stmt = select(Person).where(Person.brdy < clock.today().replace(year=clock.today().year - 20)).order_by(Person.psn_no)
        if household_of is not None:
            stmt = stmt.where(Person.hshld_id == household_of.hshld_id, Person.psn_no != household_of.psn_no)
        if employee is not None:
            stmt = stmt.join(Enrolment, Enrolment.psn_no == Person.psn_no).where(Enrolment.insutype == ("310" if employee else "390"),
                                                                               Enrolment.psn_insu_stas == "1")
        return list(session.scalars(stmt.limit(n)))


def activate(http, person: Person, password: str = "135790", **extra):  # type: ignore[no-untyped-def]
    body = {"chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name, "password": password,
            "face": demo_face(person.certno), "liveness": 0.97, "device_label": "test phone", **extra}
    return http.post("/api/v1/activations", json=body)


# people a test of the module has activated or reserved (the `people` fixture's)
ACTIVATED: set[str] = set()


class App:
    """A signed-in person in the app."""

    def __init__(self, http, person: Person, password: str = "135790") -> None:  # type: ignore[no-untyped-def]
        ACTIVATED.add(person.psn_no)
        reply = activate(http, person, password)
        assert reply.status_code == 201, reply.text
        self.http, self.person = http, person
        self.token, self.device_id = reply.json()["token"], reply.json()["device_id"]

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.http.get(path, headers={"authorization": f"Bearer {self.token}"})

    def post(self, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
        return self.http.post(path, json=body or {}, headers={"authorization": f"Bearer {self.token}"})

    def code(self, psn_no: str | None = None) -> str:
        reply = self.post(f"/api/v1/people/{psn_no or self.person.psn_no}/codes")
        assert reply.status_code == 201, reply.text
        assert reply.json()["svg"].startswith("<svg")
        return reply.json()["code"]


@pytest.fixture(scope="module", autouse=True)
def people(db):  # type: ignore[no-untyped-def]
    """Twelve employed adults for the tests that name them (people[0] ...): set up before any test of the module and
    kept out of the people other tests pick (not in ACTIVATED), so no two tests activate one person with two passwords,
    whatever the order."""
    found = adults(db, 12, employee=True)
    ACTIVATED.update(p.psn_no for p in found)
    return found


def decode(counter: CounterClient, code: str) -> dict:
    return counter.call("1162", {"data": {"ecQrCode": code, "businessType": "01101", "orgId": counter.fixmedins_code,
                                          "operatorId": "0001", "operatorName": "收费员", "officeId": "A03", "officeName": "内科"}})


def test_activation_checks_real_name_and_real_person(http, db) -> None:  # type: ignore[no-untyped-def]
    person = adults(db, 1, employee=False)[0]
    bad_digit = activate(http, person, certno=person.certno[:-1] + ("0" if person.certno[-1] != "0" else "1"))
    wrong_name = activate(http, person, name="某某")
    # the same refusal for both: nothing tells a malformed ID number from a registered one with another name
    for refused in (bad_digit, wrong_name):
        assert refused.status_code == 403 and refused.json()["title"] == "real-name" and refused.json()["field"] == "certno"
        assert refused.json()["detail"] == "身份证号与姓名不一致，或未查到参保信息"
    wrong_face = activate(http, person, face=demo_face("11010519491231002X"))
    assert wrong_face.status_code == 403 and wrong_face.json()["title"] == "face"
    spoof = activate(http, person, liveness=0.3)
    assert spoof.status_code == 403 and spoof.json()["title"] == "liveness"
    weak = activate(http, person, password="123456")
    assert weak.status_code == 400 and weak.json()["field"] == "password"
    missing = http.post("/api/v1/activations", json={"certno": person.certno})
    assert missing.status_code == 400 and missing.headers["content-type"].startswith("application/problem+json")
    assert activate(http, person).status_code == 201


def test_third_party_channels_sign_their_calls(http, db) -> None:  # type: ignore[no-untyped-def]
    person = adults(db, 2, employee=False)[1]
    body = {"chnl_id": "WECHAT", "certno": person.certno, "name": person.psn_name, "password": "246813", "face": demo_face(person.certno)}
    unsigned = http.post("/api/v1/activations", json=body)
    assert unsigned.status_code == 403 and unsigned.json()["title"] == "channel"
    raw = encode(body)
    ts = str(now_ms())
    signature = std_hmac.new(channel_secret_of("WECHAT").encode(), f"{ts}\n".encode() + raw, "sm3").hexdigest()
    signed = http.post("/api/v1/activations", content=raw, headers={"content-type": "application/json", "x-yb-timestamp": ts,
                                                                    "x-yb-signature": signature})
    assert signed.status_code == 201, signed.text


def test_wrong_password_locks_and_face_resets(http, people) -> None:  # type: ignore[no-untyped-def]
    person = people[0]
    app = App(http, person)
    def sign_in(password: str):  # type: ignore[no-untyped-def]
        return http.post("/api/v1/sessions", json={"certno": person.certno, "name": person.psn_name, "password": password,
                                                  "device_id": app.device_id})
    assert sign_in("135790").status_code == 201
    for i in range(4):
        wrong = sign_in("999111")
        assert wrong.status_code == 403 and wrong.json()["title"] == "wrong-password"
        assert wrong.json()["detail"] == f"消费密码错误，还可尝试{4 - i}次"
    locked = sign_in("999111")
    assert locked.json()["title"] == "locked" and locked.json()["detail"].startswith("消费密码连续错误5次，已锁定至")
    assert sign_in("135790").json()["title"] == "locked"  # even the right password, while locked
    reset = http.post("/api/v1/password/reset", json={"certno": person.certno, "name": person.psn_name, "face": demo_face(person.certno),
                                                     "password": "802468"})
    assert reset.status_code == 201 or reset.status_code == 200
    # the reset stopped every phone: this one activates again, with the new password
    assert sign_in("802468").json()["title"] == "real-name"  # a revoked phone gets the one refusal
    again = activate(http, person, "802468")
    assert again.status_code == 201, again.text
    app.device_id = again.json()["device_id"]
    assert sign_in("802468").status_code == 201
    other_device = http.post("/api/v1/sessions", json={"certno": person.certno, "name": person.psn_name, "password": "802468",
                                                       "device_id": "0" * 32})
    # an unregistered phone gets the one refusal a wrong name gets: no password is tried from it
    assert other_device.json()["title"] == "real-name"


def test_code_decodes_once_into_an_ec_token(http, counter: CounterClient, people) -> None:  # type: ignore[no-untyped-def]
    app = App(http, people[1])
    code = app.code()
    first = decode(counter, code)
    assert first["infcode"] == 0, first["err_msg"]
    out = first["output"]
    token = out["ecToken"]
    assert len(token) == 40 and token[6:8] == "ec" and out["baseinfo"]["psn_no"] == people[1].psn_no
    assert out["data"]["idNo"] == people[1].certno and out["data"]["userName"] == people[1].psn_name
    screenshot = decode(counter, code)
    assert screenshot["infcode"] == -1 and "screenshot" in screenshot["err_msg"]
    # an app that draws the symbol itself asks for the text alone
    bare = app.post(f"/api/v1/people/{people[1].psn_no}/codes?svg=false").json()
    assert bare["svg"] is None and decode(counter, bare["code"])["infcode"] == 0
    looked_up = ok(counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token, "psn_cert_type": "01"}}))
    assert looked_up["baseinfo"]["psn_no"] == people[1].psn_no
    # the Inner Mongolia variant: 02 with the token in card_sn
    variant = counter.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": people[1].certno, "card_sn": token}})
    assert variant["infcode"] == 0


def test_expired_forged_and_foreign_codes_are_refused(http, counter: CounterClient, people, db) -> None:  # type: ignore[no-untyped-def]
    app = App(http, people[2])
    code = app.code()
    forged = code[:-6] + ("A" if code[-6] != "A" else "B") + code[-5:]
    answer = decode(counter, forged)
    assert answer["infcode"] == -1 and "forged" in answer["err_msg"]
    with db.unit_of_work() as session:
        current, _ = credential.keys(session)
        device = session.get(credential.Device, app.device_id)
        old = codec.seal(codec.Claims(people[2].psn_no, device.chnl_id, device.device_no, int(time.time()) - 120, 60), current)
    expired = decode(counter, old)
    assert expired["infcode"] == -1 and "expired" in expired["err_msg"]
    garbage = decode(counter, "https://example.org/not-a-code")
    assert garbage["infcode"] == -1 and garbage["err_msg"].startswith("ecQrCode:")
    stranger = app.post(f"/api/v1/people/{people[3].psn_no}/codes")
    assert stranger.status_code == 403 and stranger.json()["title"] == "family"


def test_a_lost_phone_is_revoked(http, counter: CounterClient, people) -> None:  # type: ignore[no-untyped-def]
    app = App(http, people[4])
    code = app.code()
    token = ok(decode(counter, app.code()))["ecToken"]
    assert app.post(f"/api/v1/me/devices/{app.device_id}/revoke").status_code == 201
    refused = decode(counter, code)
    assert refused["infcode"] == -1 and "lost or revoked" in refused["err_msg"]
    used = counter.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert used["infcode"] == -1 and "revoked" in used["err_msg"]
    assert app.get("/api/v1/me").status_code == 401


def test_token_is_bound_to_its_institution(http, counter: CounterClient, people) -> None:  # type: ignore[no-untyped-def]
    app = App(http, people[5])
    token = ok(decode(counter, app.code()))["ecToken"]
    other = CounterClient("http://testserver", "H37010000002", secret_of("H37010000002"), http=http)
    ok(other.sign_in())
    answer = other.call("1101", {"data": {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}})
    assert answer["infcode"] == -1 and "another institution" in answer["err_msg"]


def test_family_accounts(http, db, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        # a household with at least two adults
        from sqlalchemy import func

        hshld = session.scalar(select(Person.hshld_id).where(Person.brdy < clock.today().replace(year=clock.today().year - 20),
                                                             Person.psn_no.not_in(ACTIVATED))
                               .group_by(Person.hshld_id).having(func.count() >= 2).order_by(Person.hshld_id).limit(1))
        head, relative = session.scalars(select(Person).where(Person.hshld_id == hshld, Person.psn_no.not_in(ACTIVATED))
                                         .order_by(Person.psn_no).limit(2)).all()
        stranger = session.scalars(select(Person).where(Person.hshld_id != hshld, Person.brdy < clock.today().replace(year=1990),
                                                        Person.psn_no.not_in(ACTIVATED))
                                   .order_by(Person.psn_no.desc()).limit(1)).one()
    holder = App(http, head)
    bound = holder.post("/api/v1/me/family", {"certno": relative.certno, "name": relative.psn_name, "relation": "02"})
    assert bound.status_code == 201 and bound.json()["status"] == "active"  # the household register proves it
    code = holder.code(relative.psn_no)
    decoded = ok(decode(counter, code))
    assert decoded["baseinfo"]["psn_no"] == relative.psn_no
    assert holder.get(f"/api/v1/people/{relative.psn_no}/settlements").status_code == 200
    # someone outside the household must approve in their own app
    pending = holder.post("/api/v1/me/family", {"certno": stranger.certno, "name": stranger.psn_name, "relation": "04"})
    assert pending.json()["status"] == "pending"
    assert holder.get(f"/api/v1/people/{stranger.psn_no}").status_code == 403
    other = App(http, stranger, "480268")
    requests = other.get("/api/v1/me").json()["requests"]
    assert [r["id"] for r in requests] == [pending.json()["id"]]
    assert other.post(f"/api/v1/me/family/{pending.json()['id']}/approve", {"password": "480268"}).status_code == 201
    assert holder.get(f"/api/v1/people/{stranger.psn_no}").status_code == 200
    assert http.delete(f"/api/v1/me/family/{pending.json()['id']}", headers={"authorization": f"Bearer {holder.token}"}).status_code == 204
    assert holder.get(f"/api/v1/people/{stranger.psn_no}").status_code == 403


def test_paying_from_the_account_needs_the_password_above_the_threshold(http, db, counter: CounterClient) -> None:  # type: ignore[no-untyped-def]
    codes = catalogue_codes(db)
    with db.unit_of_work(write=False) as session:
        person = session.scalars(select(Person).join(Account, Account.psn_no == Person.psn_no)
                                 .where(Account.balance_fen > 100_000, Person.brdy < clock.today().replace(year=1995),
                                        Person.psn_no.not_in(ACTIVATED))
                                 .order_by(Person.psn_no.desc()).limit(1)).one()
    app = App(http, person, "264801")
    token = ok(decode(counter, app.code()))["ecToken"]
    cert = {"mdtrt_cert_type": "01", "mdtrt_cert_no": token}
    reg = ok(counter.call("2201", {"data": {"psn_no": person.psn_no, "insutype": "310", "begntime": clock.fmt_datetime(clock.now()), **cert,
                                             "ipt_otp_no": serial("EC")}}))
    mdtrt_id = reg["data"]["mdtrt_id"]
    ok(counter.call("2204", {"feedetail": [fee(mdtrt_id, person.psn_no, codes["bing"], "300.00")]}))
    data = {"psn_no": person.psn_no, **cert, "med_type": "11", "medfee_sumamt": Decimal("300.00"), "psn_setlway": "01",
            "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "acct_used_flag": "1", "insutype": "310"}
    assert ok(counter.call("2206", {"data": data}))["setlinfo"]["acct_pay"] == Decimal("300.00")
    refused = counter.call("2207", {"data": data})
    assert refused["infcode"] == -1 and refused["err_msg"].startswith("input.data.acct_used_flag:") and "password" in refused["err_msg"]
    visits = app.get("/api/v1/me/visits").json()
    assert [v["ec_token"] for v in visits if v["ec_token"] == token]
    wrong = app.post(f"/api/v1/me/visits/{token}/authorize-payment", {"password": "000111"})
    assert wrong.status_code == 403 and wrong.json()["title"] == "wrong-password"
    assert app.post(f"/api/v1/me/visits/{token}/authorize-payment", {"password": "264801"}).status_code == 201
    paid = ok(counter.call("2207", {"data": data}))["setlinfo"]
    assert paid["acct_pay"] == Decimal("300.00") and paid["mdtrt_cert_type"] == "01"
    records = app.get(f"/api/v1/people/{person.psn_no}/settlements").json()
    assert records[0]["setl_id"] == paid["setl_id"]
    account = app.get(f"/api/v1/people/{person.psn_no}/account").json()
    assert account["movements"][0]["amount"] in ("-300.00", -300.0, "-300")


def test_counter_rest_decode_is_signed(http, people) -> None:  # type: ignore[no-untyped-def]
    app = App(http, people[6])
    body = encode({"code": app.code(), "business_type": "01301"})
    unsigned = http.post("/api/v1/counter/decode", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    signed = http.post("/api/v1/counter/decode", content=body, headers={"content-type": "application/json",
                                                                        **sign_headers(HOSPITAL, secret_of(HOSPITAL), body)})
    assert signed.status_code == 201, signed.text
    assert signed.json()["baseinfo"]["psn_no"] == people[6].psn_no


def test_minor_credentials_are_held_by_guardians(http, db) -> None:  # type: ignore[no-untyped-def]
    with db.unit_of_work(write=False) as session:
        child = session.scalars(select(Person).where(Person.brdy > clock.today().replace(year=clock.today().year - 12))
                                .order_by(Person.psn_no).limit(1)).one()
        guardian = session.scalars(select(Person).where(Person.hshld_id == child.hshld_id, Person.psn_no != child.psn_no,
                                                        Person.psn_no.not_in(ACTIVATED),
                                                        Person.brdy < clock.today().replace(year=clock.today().year - 20))).first()
        outsider = session.scalars(select(Person).where(Person.hshld_id != child.hshld_id, Person.psn_no.not_in(ACTIVATED),
                                                        Person.brdy < clock.today().replace(year=clock.today().year - 25))
                                   .order_by(Person.psn_no.desc())).first()
    minor = activate(http, child)
    assert minor.status_code == 403 and minor.json()["title"] == "minor"
    stranger = App(http, outsider, "370415")
    refused = stranger.post("/api/v1/me/family", {"certno": child.certno, "name": child.psn_name, "relation": "03"})
    assert refused.status_code == 403
    if guardian is not None:
        parent = App(http, guardian, "591357")
        assert parent.post("/api/v1/me/family",
                           {"certno": child.certno, "name": child.psn_name, "relation": "03"}).json()["status"] == "active"
        assert parent.code(child.psn_no).startswith("YB1")
