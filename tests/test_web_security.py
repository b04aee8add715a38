"""Headers on every response, the app without inline code, /schema without the internet, the gateway's documented
status, and 5xx faults logged with their traceback."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from litestar import get
from litestar.testing import TestClient
from structlog.processors import format_exc_info
from structlog.testing import capture_logs

from browser_support import ARGS, CHROMIUM
from yibao.app import GATEWAY_PATH, create_app
from yibao.client import CounterClient
from yibao.core.errors import Busy, NotFound
from yibao.gateway.auth import sign_headers
from yibao.gateway.envelope import ENCODER

STATIC = Path(__file__).resolve().parents[1] / "src" / "yibao" / "web" / "static"


def check_security_headers(reply: Any, *, personal: bool) -> None:
    csp = reply.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"], csp  # no inline script, no eval
    assert directives["style-src"] == ["'self'"], csp
    assert directives["frame-ancestors"] == ["'none'"], csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["referrer-policy"] == "no-referrer"
    if personal:
        assert reply.headers["cache-control"] == "no-store", reply.url


def test_headers_on_every_response(http: TestClient) -> None:
    for path in ["/app/", "/app/index.html", "/api/v1/channels", "/api/v1/me", "/api/v1/people/1/contributions", "/api/v1/nowhere",
                 "/nowhere", "/health", "/schema", "/schema/openapi.json"]:
        reply = http.get(path)
        check_security_headers(reply, personal=True)
    assert http.get("/app/").headers["content-type"].startswith("text/html")
    refused = http.post("/api/v1/sessions", json={"certno": "1", "name": "x", "password": "1", "device_id": "x"})
    assert 400 <= refused.status_code < 500  # a refusal carries the headers too
    check_security_headers(refused, personal=True)
    # the app's own files hold no personal data: cacheable, but revalidated
    for path in ["/app/app.js", "/app/app.css"]:
        reply = http.get(path)
        check_security_headers(reply, personal=False)
        assert reply.headers["cache-control"] == "no-cache"


def test_gateway_answers_keep_their_content_types(http: TestClient, counter: CounterClient) -> None:
    body = counter.envelope("1901", {"data": {"type": "gend", "date": "2026-11-01"}})
    reply = http.post(GATEWAY_PATH, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/json")
    check_security_headers(reply, personal=True)  # unsigned: refused as -1, still with every header
    answer = counter.call("1301", {"data": {"ver": "0"}})["output"]
    envelope = counter.envelope("9102", {"fsDownloadIn": {"file_qury_no": answer["file_qury_no"], "filename": answer["filename"],
                                                          "fixmedins_code": counter.fixmedins_code}})
    raw = ENCODER.encode(envelope)
    file_reply = http.post(GATEWAY_PATH, content=raw, headers={"content-type": "application/json",
                                                              **sign_headers(counter.access_key, counter.secret, raw)})
    assert file_reply.status_code == 200 and file_reply.headers["content-type"] == "application/octet-stream"
    check_security_headers(file_reply, personal=True)


def test_app_has_no_inline_code() -> None:
    for page in STATIC.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for script in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.S | re.I):
            assert script.strip() == "", f"inline script in {page.name}"
        assert all(" src=" in tag for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I)), page.name
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), f"inline event handler in {page.name}"
        assert not re.search(r"<style\b|\sstyle\s*=", text, flags=re.I), f"inline style in {page.name}"
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text, flags=re.I), f"outside resource in {page.name}"
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert not re.search(r"\son[a-z]+\s*=|style\s*=\s*\\?[\"']|\beval\(|new Function", script), "inline handlers or styles built in app.js"


def test_schema_pages_are_served_locally(http: TestClient) -> None:
    for path in ["/schema", "/schema/swagger"]:
        reply = http.get(path)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
        check_security_headers(reply, personal=True)
        assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}", reply.text, flags=re.I), reply.text  # no host anywhere
        assert all(not code.strip() for code in re.findall(r"<script\b[^>]*>(.*?)</script>", reply.text, flags=re.S)), "inline script"
        assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", reply.text)
        assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), asset
            fetched = http.get(asset)
            assert fetched.status_code == 200, asset
            expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}[asset.rsplit(".", 1)[1]]
            assert fetched.headers["content-type"].startswith(expected), asset  # nosniff: the type must be right
    assert http.get("/schema/assets/../../pyproject.toml").status_code == 404
    assert http.get("/schema/assets/swagger-editor.js").status_code == 404  # only the files the page needs


def test_gateway_documents_the_status_it_answers(http: TestClient, counter: CounterClient) -> None:
    paths = http.get("/schema/openapi.json").json()["paths"]
    for path in [GATEWAY_PATH, "/fsi/api/{service}/{method}"]:
        responses = paths[path]["post"]["responses"]
        assert "200" in responses and "201" not in responses, (path, list(responses))
    assert counter.call("1901", {"data": {"type": "gend"}})["infcode"] == 0  # CounterClient checks the 200


@pytest.fixture
def faulty_app(settings, db):  # type: ignore[no-untyped-def]
    app = create_app(settings, db)

    @get("/api/v1/test-fault", include_in_schema=False)
    async def fault() -> None:
        raise RuntimeError("a bug in a handler")

    @get("/api/v1/test-busy", include_in_schema=False)
    async def busy() -> None:
        raise Busy("database is locked; retry")

    @get("/api/v1/test-missing", include_in_schema=False)
    async def missing() -> None:
        raise NotFound("no such thing")

    app.register(fault)
    app.register(busy)
    app.register(missing)
    with TestClient(app=app, raise_server_exceptions=False) as client:
        yield client


def test_server_errors_are_logged_with_their_traceback(faulty_app: TestClient) -> None:
    with capture_logs() as logs:
        crashed = faulty_app.get("/api/v1/test-fault")
        busy = faulty_app.get("/api/v1/test-busy")
        refused = faulty_app.get("/api/v1/test-missing")
    assert crashed.status_code == 500 and "a bug" not in crashed.text and "Traceback" not in crashed.text
    check_security_headers(crashed, personal=True)
    assert busy.status_code == 503 and refused.status_code == 404
    failures = [e for e in logs if e.get("event") == "request failed"]
    assert [(e["path"], e["status"], e["log_level"]) for e in failures] == [("/api/v1/test-fault", 500, "error"),
                                                                            ("/api/v1/test-busy", 503, "error")]
    rendered = format_exc_info(None, "error", dict(failures[0]))["exception"]
    assert "Traceback" in rendered and "in fault" in rendered and "RuntimeError: a bug in a handler" in rendered


if os.path.exists(CHROMIUM):
    def test_swagger_page_works_offline_under_the_policy(live_server: str) -> None:
        """In Chromium: /schema draws the API from local files only, with no request elsewhere and no CSP violation."""
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            outside: list[str] = []
            violations: list[str] = []
            local = urlparse(live_server).netloc
            page.on("request", lambda r: urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).netloc != local
                    and outside.append(r.url))
            page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
            page.route(lambda url: urlparse(url).netloc not in ("", local), lambda route: route.abort())
            page.goto(f"{live_server}/schema")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
            assert "yibao" in page.text_content(".swagger-ui .info .title")
            page.wait_for_selector(".opblock-tag", timeout=20000)
            assert outside == [] and violations == [], (outside, violations)
            browser.close()
