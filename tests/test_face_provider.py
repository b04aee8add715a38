"""Real-person checks over HTTP against a stand-in provider; the demo checker only in a demo database.

The stand-in (tests/standins/face_provider.py) is a real HTTP server on a free port that checks the
platform's signature and answers from a table of enrolled faces. The adapter must pass only a signed,
well-formed verdict of a live, matching face, and answer 503 — never a pass, never a 500 — when the
provider is slow, failing, unreachable or not who it should be.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from conftest import ON, SEED, free_port
from standins.face_provider import FaceProvider
from yibao.app import create_app
from yibao.core import clock
from yibao.credential.realperson import FaceResult, HttpProvider, Unavailable, demo_face
from yibao.demo.generator import generate
from yibao.deployment import service as deployment
from yibao.registry.models import Enrolment, Person
from yibao.store.db import Database
from yibao.store.migrate import upgrade

KEY = secrets.token_hex(16)
UNAVAILABLE = "实人认证服务暂时不可用，请稍后再试"


@pytest.fixture(scope="module")
def db(settings) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """A production database: seeded people, but not a demo."""
    database = Database(settings.database_url)
    upgrade(database.engine)
    with database.unit_of_work() as session:
        generate(session, people=120, seed=SEED, on=ON, institutions_per_kind=1)
        deployment.set_mode(session, deployment.PRODUCTION)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[FaceProvider]:
    provider = FaceProvider(KEY)
    provider.url = provider.start()  # type: ignore[attr-defined]
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def behaving(stand_in: FaceProvider) -> Iterator[None]:
    stand_in.behaviour = "normal"
    yield
    stand_in.behaviour = "normal"


@pytest.fixture(scope="module")
def people(db: Database) -> list[Person]:
    with db.unit_of_work(write=False) as session:
        insured = select(Enrolment.psn_no).where(Enrolment.psn_insu_stas == "1")
        return list(session.scalars(select(Person).where(Person.brdy < clock.today().replace(year=clock.today().year - 20),
                                                         Person.psn_no.in_(insured)).order_by(Person.psn_no).limit(12)))


@pytest.fixture(scope="module")
def with_provider(settings, db, stand_in) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    configured = replace(settings, face_provider_url=stand_in.url, face_provider_key=KEY, face_timeout_s=1.0)
    with TestClient(app=create_app(configured, db)) as client:
        yield client


@pytest.fixture(scope="module")
def without_provider(settings, db) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app=create_app(replace(settings, face_provider_url="", face_provider_key=""), db)) as client:
        yield client


def adapter(stand_in: FaceProvider, *, key: str = KEY, timeout_s: float = 2.0) -> HttpProvider:
    return HttpProvider(stand_in.url, key, min_score=0.8, timeout_s=timeout_s)  # type: ignore[attr-defined]


def selfie(person: Person) -> str:
    return "live:" + secrets.token_hex(24) + person.psn_no


# -- the adapter against the stand-in ---------------------------------------------------------------

def test_a_live_matching_face_passes(stand_in: FaceProvider, people: list[Person]) -> None:
    person, face = people[0], selfie(people[0])
    stand_in.enrol(person.certno, person.psn_name, face)
    result = adapter(stand_in).verify(person.certno, person.psn_name, face, 0.0)
    assert result == FaceResult(True, True, 0.96, "")
    # it sent the ID number, the name and the face (no client-claimed liveness), and the stand-in accepted the signature
    assert stand_in.seen[-1] == {"certno": person.certno, "name": person.psn_name, "keys": ["certno", "face", "name"]}


def test_another_face_a_photo_or_a_low_score_does_not(stand_in: FaceProvider, people: list[Person]) -> None:
    person, face = people[1], selfie(people[1])
    stand_in.enrol(person.certno, person.psn_name, face)
    checker = adapter(stand_in)
    other = checker.verify(person.certno, person.psn_name, selfie(people[2]), 1.0)
    assert not other.matched and other.live
    photo = checker.verify(person.certno, person.psn_name, "photo:" + face, 1.0)
    assert not photo.live and not photo.matched
    wrong_name = checker.verify(person.certno, person.psn_name + "某", face, 1.0)
    assert not wrong_name.matched
    doubtful = people[3]
    stand_in.enrol(doubtful.certno, doubtful.psn_name, "live:doubtful", score=0.6)  # the provider says match, but weakly
    assert not checker.verify(doubtful.certno, doubtful.psn_name, "live:doubtful", 1.0).matched


@pytest.mark.parametrize("behaviour", ["error", "garbage", "unsigned", "wrong-nonce"])
def test_a_failing_or_untrustworthy_provider_is_unavailable_never_a_pass(stand_in: FaceProvider, people: list[Person],
                                                                         behaviour: str) -> None:
    person, face = people[4], selfie(people[4])
    stand_in.enrol(person.certno, person.psn_name, face)
    stand_in.behaviour = behaviour
    with pytest.raises(Unavailable) as refused:
        adapter(stand_in).verify(person.certno, person.psn_name, face, 1.0)
    assert refused.value.http_status == 503 and refused.value.message == UNAVAILABLE


def test_a_signature_the_provider_refuses_is_unavailable(stand_in: FaceProvider, people: list[Person]) -> None:
    person, face = people[4], selfie(people[4])
    stand_in.enrol(person.certno, person.psn_name, face)
    with pytest.raises(Unavailable) as refused:
        adapter(stand_in, key="not-the-key").verify(person.certno, person.psn_name, face, 1.0)
    assert "HTTP 401" in refused.value.cause


def test_a_slow_or_absent_provider_times_out(stand_in: FaceProvider, people: list[Person]) -> None:
    person, face = people[4], selfie(people[4])
    stand_in.enrol(person.certno, person.psn_name, face)
    stand_in.behaviour = "slow"
    started = time.monotonic()
    with pytest.raises(Unavailable):
        adapter(stand_in, timeout_s=0.5).verify(person.certno, person.psn_name, face, 1.0)
    assert time.monotonic() - started < 2.0
    with pytest.raises(Unavailable):
        HttpProvider(f"http://127.0.0.1:{free_port()}/verify", KEY, timeout_s=0.5).verify(person.certno, person.psn_name, face, 1.0)


def test_checks_in_flight_are_bounded(stand_in: FaceProvider, people: list[Person], monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow provider holds at most MAX_IN_FLIGHT worker threads; the next check is refused at once, not queued."""
    import threading

    from yibao.credential import realperson

    monkeypatch.setattr(realperson, "MAX_IN_FLIGHT", 1)
    person, face = people[4], selfie(people[4])
    stand_in.enrol(person.certno, person.psn_name, face)
    stand_in.behaviour, stand_in.slow_s = "slow", 1.0
    checker = adapter(stand_in, timeout_s=3.0)
    waiting = threading.Thread(target=checker.verify, args=(person.certno, person.psn_name, face, 1.0))
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        checker.verify(person.certno, person.psn_name, face, 1.0)
    assert time.monotonic() - started < 0.2 and "waiting" in refused.value.cause
    waiting.join()
    stand_in.slow_s = 3.0


# -- through the people's API on a production database ------------------------------------------------

def activation(person: Person, face: str, password: str = "283746") -> dict[str, object]:
    return {"chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name, "password": password, "face": face,
            "device_label": "phone"}


def test_activation_and_reset_use_the_configured_provider(with_provider: TestClient, stand_in: FaceProvider,
                                                          people: list[Person]) -> None:
    person, face = people[5], selfie(people[5])
    stand_in.enrol(person.certno, person.psn_name, face)
    refused = with_provider.post("/api/v1/activations", json=activation(person, selfie(people[6])))
    assert refused.status_code == 403 and refused.json()["title"] == "face"
    assert refused.json()["detail"] == "刷脸未通过：与本人照片不符，请重新刷脸"
    photo = with_provider.post("/api/v1/activations", json=activation(person, "photo:" + face))
    assert photo.status_code == 403 and photo.json()["title"] == "liveness"
    # the demo's face is nobody's face here
    assert with_provider.post("/api/v1/activations", json=activation(person, demo_face(person.certno))).json()["title"] == "face"
    done = with_provider.post("/api/v1/activations", json=activation(person, face))
    assert done.status_code == 201, done.text
    reset = with_provider.post("/api/v1/password/reset", json={"certno": person.certno, "name": person.psn_name, "face": face,
                                                               "password": "592817"})
    assert reset.status_code == 201, reset.text


@pytest.mark.parametrize("behaviour", ["error", "slow", "garbage"])
def test_provider_trouble_is_a_503_problem(with_provider: TestClient, stand_in: FaceProvider, people: list[Person],
                                           behaviour: str) -> None:
    person, face = people[7], selfie(people[7])
    stand_in.enrol(person.certno, person.psn_name, face)
    stand_in.behaviour = behaviour
    for path, body in (("/api/v1/activations", activation(person, face)),
                       ("/api/v1/password/reset", {"certno": person.certno, "name": person.psn_name, "face": face, "password": "592817"})):
        reply = with_provider.post(path, json=body)
        assert reply.status_code == 503, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert reply.json()["detail"] == UNAVAILABLE and reply.json()["title"] == "realperson-unavailable"


def test_production_without_a_provider_refuses_and_has_no_demo_faces(without_provider: TestClient, people: list[Person],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # whatever the environment says: the database is production
    monkeypatch.setenv("YIBAO_DEMO", "1")
    monkeypatch.setenv("YIBAO_REALPERSON_PROVIDER", "deterministic")
    person = people[8]
    assert without_provider.get("/api/v1/demo/face", params={"certno": person.certno}).status_code == 404
    unknown = person.certno[:14] + "0000"
    for certno in (person.certno, unknown):  # the same answer whether the ID number is registered or not
        for path, body in (("/api/v1/activations", activation(person, demo_face(person.certno))),
                           ("/api/v1/password/reset", {"certno": person.certno, "name": person.psn_name, "face": demo_face(person.certno),
                                                       "password": "592817"})):
            reply = without_provider.post(path, json={**body, "certno": certno})
            assert reply.status_code == 503 and reply.json()["title"] == "realperson-not-configured", reply.text
            assert reply.json()["detail"] == "实人认证服务尚未配置，暂时无法激活医保码或重置密码，请联系医保经办机构"


def test_demo_faces_exist_only_in_a_demo_database_without_a_provider(db: Database, without_provider: TestClient,
                                                                     with_provider: TestClient, people: list[Person]) -> None:
    person = people[9]
    with db.unit_of_work() as session:
        deployment.set_mode(session, deployment.DEMO)
    try:
        face = without_provider.get("/api/v1/demo/face", params={"certno": person.certno})
        assert face.status_code == 200 and face.json()["face"] == demo_face(person.certno)
        assert without_provider.post("/api/v1/activations", json=activation(person, face.json()["face"])).status_code == 201
        # a demo database with a real provider configured uses the provider: no demo faces there either
        assert with_provider.get("/api/v1/demo/face", params={"certno": person.certno}).status_code == 404
    finally:
        with db.unit_of_work() as session:
            deployment.set_mode(session, deployment.PRODUCTION)
    assert without_provider.get("/api/v1/demo/face", params={"certno": person.certno}).status_code == 404
