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
        person = session.scalars(select(Person).where(Person.brdy < clock.today().replace(year=1980)).order_by(Person.psn_no.desc())).first()
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
