"""The attack chain of issue 9, replayed end to end against a production database.

Someone holds a stranger's ID number and name (leaked lists are common). They try to take over the
stranger's e-credential: reset the consumption password, activate the credential on their own phone,
and spend the stranger's personal account at a pharmacy. Every step needs the stranger's live face, so
the chain breaks at the first step: the real-person provider (a stand-in server that knows the
stranger's face) says no, and the demo face checker — whose "faces" anyone can compute from an ID
number — does not exist in a production database, whatever the environment says.

The last test replays the same chain in a demo database and it goes through: the chain is real, and
only production mode with a real provider stops it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from conftest import ON, SEED, secret_of
from flows import catalogue_codes, ok, person_with
from standins.face_provider import FaceProvider
from yibao.app import create_app
from yibao.audit.models import AuditEvent
from yibao.client import CounterClient
from yibao.credential.models import Credential, Device, UserSession
from yibao.credential.realperson import demo_face
from yibao.demo.generator import generate
from yibao.deployment import service as deployment
from yibao.registry.models import Account, Institution, Person
from yibao.store.db import Database
from yibao.store.migrate import upgrade

KEY = secrets.token_hex(16)
HER_PASSWORD = "518307"
THEIR_PASSWORD = "246802"


@pytest.fixture(scope="module")
def db(settings) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """Seeded people, then production: no demo anything."""
    database = Database(settings.database_url)
    upgrade(database.engine)
    with database.unit_of_work() as session:
        generate(session, people=150, seed=SEED, on=ON, institutions_per_kind=1)
        deployment.set_mode(session, deployment.PRODUCTION)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def provider() -> Iterator[FaceProvider]:
    stand_in = FaceProvider(KEY)
    stand_in.url = stand_in.start()  # type: ignore[attr-defined]
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def platform(settings, db, provider) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    configured = replace(settings, face_provider_url=provider.url, face_provider_key=KEY)  # type: ignore[attr-defined]
    with TestClient(app=create_app(configured, db)) as client:
        yield client


@pytest.fixture(scope="module")
def unconfigured(settings, db) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app=create_app(replace(settings, face_provider_url="", face_provider_key=""), db)) as client:
        yield client


@pytest.fixture(scope="module")
def pharmacy(db: Database, platform: TestClient) -> CounterClient:
    with db.unit_of_work(write=False) as session:
        code = session.scalar(select(Institution.fixmedins_code).where(Institution.fixmedins_code.like("P370100%"))
                              .order_by(Institution.fixmedins_code).limit(1))
    assert code is not None
    counter = CounterClient("http://testserver", code, secret_of(code, db), http=platform)
    ok(counter.sign_in())
    return counter


def victims(db: Database, n: int) -> list[Person]:
    found: list[Person] = []
    while len(found) < n:
        found.append(person_with(db, "310", retired=False, min_balance=10_000, skip={p.psn_no for p in found} | USED))
    USED.update(p.psn_no for p in found)
    return found


USED: set[str] = set()


def state(db: Database, person: Person) -> tuple[bytes | None, int, int, int]:
    """What a takeover would change: the password hash, the phones, the sessions, the account balance."""
    with db.unit_of_work(write=False) as session:
        credential = session.scalar(select(Credential).where(Credential.psn_no == person.psn_no))
        devices = session.scalar(select(func.count()).select_from(Device).where(Device.psn_no == person.psn_no, Device.status == "active"))
        sessions = session.scalar(select(func.count()).select_from(UserSession).where(UserSession.psn_no == person.psn_no))
        balance = session.get(Account, person.psn_no).balance_fen  # type: ignore[union-attr]
        return (credential.pwd_hash if credential else None), devices or 0, sessions or 0, balance


def spend(pharmacy: CounterClient, db: Database, person: Person, code: str) -> dict:  # type: ignore[type-arg]
    """The pharmacy scans the code shown and sells 20 yuan of an OTC drug, paid from the personal account."""
    decoded = pharmacy.call("1162", {"data": {"ecQrCode": code, "businessType": "01301"}})
    if decoded["infcode"] != 0:
        return decoded
    token = decoded["output"]["ecToken"]
    drug = {"feedetl_sn": "1", "med_list_codg": catalogue_codes(db)["otc_capped"], "det_item_fee_sumamt": Decimal("20.00"), "cnt": 1,
            "pric": Decimal("20")}
    data = {"psn_no": person.psn_no, "insutype": "310", "mdtrt_cert_type": "01", "mdtrt_cert_no": token, "acct_used_flag": "1",
            "psn_setlway": "01", "medfee_sumamt": Decimal("20.00")}
    return pharmacy.call("2102", {"data": data, "drugdetail": [drug]})


def test_the_chain_breaks_at_the_password_reset(platform: TestClient, provider: FaceProvider, pharmacy: CounterClient,
                                                db: Database) -> None:
    (victim,) = victims(db, 1)
    her_face = "live:" + secrets.token_hex(32)
    provider.enrol(victim.certno, victim.psn_name, her_face)
    her_phone = platform.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": victim.certno, "name": victim.psn_name,
                                                          "password": HER_PASSWORD, "face": her_face, "device_label": "她的手机"})
    assert her_phone.status_code == 201, her_phone.text
    before = state(db, victim)
    with db.unit_of_work(write=False) as session:  # the trail so far: other tests of the module refuse resets too
        seen = session.scalar(select(func.max(AuditEvent.id))) or 0

    # 0. the attacker knows her ID number and name — and nothing else
    known = {"certno": victim.certno, "name": victim.psn_name}
    # 1. the password reset asks for a live face matching her photo: the attacker's own, a printed photo of her, and
    #    the demo's face computed from her ID number (the algorithm is public) all fail; the demo endpoint is not there
    assert platform.get("/api/v1/demo/face", params={"certno": victim.certno}).status_code == 404
    for face, reason in (("live:" + secrets.token_hex(32), "face"), ("photo:" + her_face, "liveness"), (demo_face(victim.certno), "face")):
        reset = platform.post("/api/v1/password/reset", json={**known, "face": face, "password": THEIR_PASSWORD})
        assert reset.status_code == 403 and reset.json()["title"] == reason, reset.text
    # 2. activating her credential on their phone asks for the same face (and then her password)
    for face in ("live:" + secrets.token_hex(32), demo_face(victim.certno)):
        taken = platform.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", **known, "face": face, "password": THEIR_PASSWORD})
        assert taken.status_code == 403 and taken.json()["title"] == "face"
    # 3. with no phone of hers they have no code to show at the pharmacy; a made-up one is refused at the counter
    made_up = spend(pharmacy, db, victim, "YB1" + "A" * 60)
    assert made_up["infcode"] == -1 and made_up["err_msg"].startswith("ecQrCode:")

    assert state(db, victim) == before  # her password, phones, sessions and money are as they were
    assert platform.post("/api/v1/sessions", json={**known, "password": HER_PASSWORD,
                                                   "device_id": her_phone.json()["device_id"]}).status_code == 201
    with db.unit_of_work(write=False) as session:
        refused = session.scalars(select(AuditEvent.reason).where(AuditEvent.kind == "person.password_reset",
                                                                  AuditEvent.outcome == "refused", AuditEvent.id > seen)).all()
    assert len(refused) == 3 and all(r.startswith(("face", "liveness")) for r in refused)
    # and a patient attacker is slowed down: resets of one ID number are rate limited
    for _ in range(5):
        last = platform.post("/api/v1/password/reset", json={**known, "face": demo_face(victim.certno), "password": THEIR_PASSWORD})
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0


def test_without_a_provider_there_is_no_real_person_check_at_all(unconfigured: TestClient, db: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo checker is absent in production: no provider means no reset and no activation, not a demo fallback."""
    monkeypatch.setenv("YIBAO_DEMO", "1")
    monkeypatch.setenv("YIBAO_REALPERSON_PROVIDER", "deterministic")
    (victim,) = victims(db, 1)
    before = state(db, victim)
    assert unconfigured.get("/api/v1/demo/face", params={"certno": victim.certno}).status_code == 404
    reset = unconfigured.post("/api/v1/password/reset", json={"certno": victim.certno, "name": victim.psn_name,
                                                             "face": demo_face(victim.certno), "password": THEIR_PASSWORD})
    assert reset.status_code == 503 and reset.json()["title"] == "realperson-not-configured"
    taken = unconfigured.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": victim.certno, "name": victim.psn_name,
                                                          "face": demo_face(victim.certno), "password": THEIR_PASSWORD})
    assert taken.status_code == 503 and taken.json()["title"] == "realperson-not-configured"
    assert state(db, victim) == before


def test_the_same_chain_goes_through_in_a_demo_database(unconfigured: TestClient, pharmacy: CounterClient, db: Database) -> None:
    """The control: with the demo checker (a demo database) the chain works — which is why it exists only there."""
    victim, _ = victims(db, 2)
    with db.unit_of_work() as session:
        deployment.set_mode(session, deployment.DEMO)
    try:
        before = state(db, victim)
        face = unconfigured.get("/api/v1/demo/face", params={"certno": victim.certno}).json()["face"]
        known = {"certno": victim.certno, "name": victim.psn_name, "face": face, "password": THEIR_PASSWORD}
        phone = unconfigured.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", **known})
        assert phone.status_code == 201, phone.text
        assert unconfigured.post("/api/v1/password/reset", json=known).status_code == 201
        phone = unconfigured.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", **known})
        code = unconfigured.post(f"/api/v1/people/{victim.psn_no}/codes?svg=false",
                                 headers={"authorization": f"Bearer {phone.json()['token']}"}).json()["code"]
        paid = ok(spend(pharmacy, db, victim, code))
        assert paid["setlinfo"]["acct_pay"] == Decimal("20.00")
        assert state(db, victim)[3] == before[3] - 2000
    finally:
        with db.unit_of_work() as session:
            deployment.set_mode(session, deployment.PRODUCTION)
