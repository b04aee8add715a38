"""Schemathesis against the REST API's own OpenAPI schema: no 5xx, no traceback, problem+json for refusals."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from yibao.app import create_app
from yibao.credential.realperson import demo_face


@pytest.fixture(scope="module")
def rest_app(settings, db):  # type: ignore[no-untyped-def]
    return create_app(settings, db)


@pytest.fixture(scope="module")
def api_schema(rest_app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/schema/openapi.json", rest_app)


@pytest.fixture(scope="module")
def bearer(http, db) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from yibao.core import clock
    from yibao.registry.models import Person

    with db.unit_of_work(write=False) as session:
        born_before_1980 = select(Person).where(Person.brdy < clock.today().replace(year=1980))
        person = session.scalars(born_before_1980.order_by(Person.psn_no.desc())).first()
    reply = http.post("/api/v1/activations", json={"chnl_id": "NHSA_WEB", "certno": person.certno, "name": person.psn_name,
                                                   "password": "731902", "face": demo_face(person.certno), "liveness": 0.99})
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def test_rest_api_never_fails_on_generated_input(api_schema, bearer) -> None:  # type: ignore[no-untyped-def]
    # Schemathesis' pytest plugin does not run under pytest 9 here, so its strategies drive Hypothesis directly.
    from hypothesis import given

    operations = [result.ok() for result in api_schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith("/api/")]
    assert len(operations) >= 15
    checked: list[str] = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for headers in ({}, {"authorization": f"Bearer {bearer}"}):
                response = case.call(headers=headers)
                where = f"{case.method} {case.formatted_path}"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                assert "Traceback" not in response.text
                if response.status_code >= 400:
                    kind = response.headers.get("content-type", "")
                    kind = kind[0] if isinstance(kind, list) else kind
                    assert kind.startswith("application/problem+json"), f"{where}: {response.status_code} {response.text[:300]}"

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) == len(operations)


def _problem(reply, where: str) -> dict:  # type: ignore[no-untyped-def]
    assert 400 <= reply.status_code < 500, f"{where}: {reply.status_code} {reply.text[:300]}"
    assert reply.headers["content-type"].startswith("application/problem+json"), f"{where}: {reply.text[:300]}"
    body = reply.json()
    assert any("\u4e00" <= c <= "\u9fff" for c in body["detail"]), f"{where}: {body}"  # a person reads it: Chinese
    return body


SIGN_IN = b'{"certno":"370112198212308842","name":"a","password":"135790","device_id":"d"'
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/activations", b'{"chnl_id":"NHSA_WEB","certno":"1","name":"a","password":"1","face":"f","liveness":1e400}',
     "liveness"),
    ("POST", "/api/v1/password/reset", b'{"certno":"1","name":"a","password":"1","face":"f","liveness":-1e400}', "liveness"),
    ("POST", "/api/v1/me/visits/x/authorize-payment", b'{"password":"","liveness":1e400}', "liveness"),
    ("POST", "/api/v1/activations", b'{"chnl_id":"NHSA_WEB","certno":"1","name":"a","password":"1","face":"f","liveness":7}', "liveness"),
    ("POST", "/api/v1/activations", b'{"chnl_id":"\xff\xfe","certno":"1","name":"a","password":"1","face":"f"}', "body"),
    ("POST", "/api/v1/sessions", SIGN_IN + b',"unasked":"\xc3\x28"}', "body"),
    ("POST", "/api/v1/sessions", DEEP, "body"),
    ("POST", "/api/v1/sessions", SIGN_IN + b',"unasked":' + DEEP + b"}", "body"),
    ("POST", "/api/v1/sessions", SIGN_IN + b',"unasked":1e400}', "body"),
    ("POST", "/api/v1/sessions", b'{"certno":' + b"9" * 40 + b',"name":"a","password":"1","device_id":"d"}', "certno"),
    ("POST", "/api/v1/sessions", b'{"certno":"' + b"1" * 100 + b'","name":"a","password":"1","device_id":"d"}', "certno"),
    ("POST", "/api/v1/sessions", b'{"certno":"1","name":"a","password":"1"}', "device_id"),
    ("POST", "/api/v1/sessions", b"", "body"),
    ("POST", "/api/v1/me/family/1000000000000000000000000000000/approve", b'{"password":"135790"}', "binding_id"),
    ("DELETE", "/api/v1/me/family/1000000000000000000000000000000", None, "binding_id"),
    ("POST", "/api/v1/me/family/0/approve", b'{"password":"135790"}', "binding_id"),
    ("POST", "/api/v1/me/family", b'{"certno":"1","name":"a","relation":1e400}', "relation"),
    ("GET", "/api/v1/demo/face?certno=" + "1" * 100, None, "certno"),
    ("POST", "/api/v1/counter/decode", b'{"code":1e400}', "code"),
])
def test_bad_input_is_a_4xx_problem_naming_the_field(http, bearer, method: str, path: str, body: bytes | None,  # type: ignore[no-untyped-def]
                                                      field: str) -> None:
    reply = http.request(method, path, content=body, headers={"content-type": "application/json", "authorization": f"Bearer {bearer}"})
    assert _problem(reply, path).get("field") == field


def test_oversized_bodies_and_nul_characters_are_refused(http, bearer) -> None:  # type: ignore[no-untyped-def]
    huge = b'{"certno":"1","name":"a","password":"1","face":"' + b"A" * (2 * 1024 * 1024) + b'"}'
    reply = http.post("/api/v1/password/reset", content=huge, headers={"content-type": "application/json"})
    assert reply.status_code == 413 and _problem(reply, "huge")["status"] == 413
    # NUL is refused by PostgreSQL's text columns: still a 4xx, on either engine
    nul = http.post("/api/v1/sessions", json={"certno": "370112198212308842", "name": "a", "password": "135790", "device_id": "\u0000"})
    _problem(nul, "nul device")
    path = http.get("/api/v1/people/%00/account", headers={"authorization": f"Bearer {bearer}"})
    _problem(path, "nul path")
