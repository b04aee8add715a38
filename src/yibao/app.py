"""The HTTP application: the national gateway plus health, metrics and the OpenAPI schema.

Every response leaves through one hook (`security_headers`) that adds the browser-facing security
headers; every 5xx is logged with its traceback (`log_server_error`); the API documentation is
served with Swagger UI's files from the installed ``swagger-ui-py`` package, never from a CDN.
"""

from __future__ import annotations

import html
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException, ValidationException
from litestar.exceptions.responses import create_exception_response
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router
from litestar.types import Message, Scope
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yibao import __version__
from yibao.api.problems import validation_error_handler, yibao_error_handler
from yibao.config import Settings
from yibao.console.views import ConsoleController
from yibao.core.errors import YibaoError
from yibao.deployment import service as deployment
from yibao.federation import nodes
from yibao.federation.nodes import Federation
from yibao.gateway import wire
from yibao.gateway.contract import Transaction
from yibao.gateway.service import GatewayService, Reply
from yibao.people.bill_views import BillController
from yibao.people.credit_views import CreditController
from yibao.people.views import CounterController, PaymentCallbackController, PeopleController
from yibao.sharing.views import InsurerController
from yibao.store.db import Database

GATEWAY_PATH = "/fsi/api/rsfComIfsService/callService"
STATIC = Path(__file__).parent / "web" / "static"
CONSOLE_STATIC = Path(__file__).parent / "console" / "static"
SCHEMA_ASSETS = "/schema/assets"
log = structlog.get_logger("yibao.http")

# Scripts and styles only from files this server serves (no inline code, so injected markup cannot run);
# data: images for Swagger UI's icons; no one may frame the app (clickjacking).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# The app's scripts, styles and the documentation's assets hold no personal data: cached, but revalidated so a new
# release is picked up at once. Everything else (the API, the gateway, the app's HTML) may carry personal data.
CACHEABLE_PREFIXES = ("/app/", SCHEMA_ASSETS + "/")


async def security_headers(message: Message, scope: Scope) -> None:
    """Before-send hook: runs for every response the app sends, including 404s and error answers."""
    if message["type"] != "http.response.start":
        return
    message.setdefault("headers", [])
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    path = scope.get("path", "")
    html_page = headers.get("content-type", "").startswith("text/html") or path.endswith((".html", "/"))
    cacheable = path.startswith(CACHEABLE_PREFIXES) and not html_page
    headers["cache-control"] = "no-cache" if cacheable else "no-store"


def _status_of(error: BaseException | None) -> int:
    if isinstance(error, YibaoError):
        return error.http_status
    if isinstance(error, HTTPException):
        return error.status_code
    return 500


def log_server_error(_logger: Any, scope: Scope, _traceback: list[str]) -> None:
    """Litestar's exception-logging handler: a refusal (4xx) is an answer, not a fault; every 5xx is logged with its traceback."""
    error = sys.exc_info()[1]
    status = _status_of(error)
    if status >= 500:
        log.error("request failed", method=scope.get("method"), path=scope.get("path"), status=status, exc_info=error)


def swagger_assets() -> Path | None:
    """Swagger UI's files as the swagger-ui-py package ships them (None when it is not installed)."""
    try:
        folder = Path(str(resources.files("swagger_ui") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


# the files the documentation page loads: Swagger UI's bundle and style, and our start-up script
SCHEMA_FILES = {"swagger-ui-bundle.js": "swagger", "swagger-ui.css": "swagger", "favicon-32x32.png": "swagger", "schema.js": "static"}
# named, not guessed: with nosniff a browser runs a script only when it is served as JavaScript
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


class LocalSwagger(SwaggerRenderPlugin):
    """Swagger UI from this server's own files, started by a script file (the CSP forbids inline scripts)."""

    def __init__(self) -> None:
        # the page needs no standalone preset; naming a local file keeps the base class from holding a CDN address
        super().__init__(js_url=f"{SCHEMA_ASSETS}/swagger-ui-bundle.js", css_url=f"{SCHEMA_ASSETS}/swagger-ui.css",
                         standalone_preset_js_url=f"{SCHEMA_ASSETS}/swagger-ui-bundle.js", path=["/", "/swagger"],
                         favicon=f'<link rel="icon" type="image/png" href="{SCHEMA_ASSETS}/favicon-32x32.png">', style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        spec = html.escape(self.get_openapi_json_route(request))
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">{self.favicon}'
                f'<link rel="stylesheet" href="{self.css_url}"></head>'
                f'<body><div id="swagger-container" data-spec="{spec}"></div>'
                f'<script src="{self.js_url}"></script><script src="{SCHEMA_ASSETS}/schema.js"></script></body></html>').encode()


async def _read_body(request: Request[Any, Any, Any], limit: int) -> tuple[bytes, bool]:
    """The body, or (b"", True) once it passes ``limit`` bytes: stop reading, never buffer it whole."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


def transaction_table() -> dict[str, Transaction]:
    """infno → transaction: what each domain registers, composed here (the gateway imports no domain). A domain
    that needs another's check gets it as a parameter: sign-in asks the registry about operators, the registry
    asks the e-credential about ecTokens."""
    from yibao.chronic.transactions import TRANSACTIONS as chronic
    from yibao.codes.transactions import TRANSACTIONS as codes
    from yibao.credential import service as credential
    from yibao.credential.transactions import TRANSACTIONS as credential_transactions
    from yibao.credit import service as credit
    from yibao.credit.transactions import TRANSACTIONS as credit_transactions
    from yibao.drg.transactions import TRANSACTIONS as drg
    from yibao.encounter import service as encounter_service
    from yibao.encounter.transactions import TRANSACTIONS as encounter
    from yibao.files.transactions import TRANSACTIONS as files
    from yibao.filing.transactions import TRANSACTIONS as filing
    from yibao.gateway import signin
    from yibao.payment.transactions import TRANSACTIONS as payment
    from yibao.prescription.transactions import TRANSACTIONS as prescription
    from yibao.reconciliation.transactions import TRANSACTIONS as reconciliation
    from yibao.registry import service as registry
    from yibao.registry.transactions import transactions as registry_transactions
    from yibao.review.transactions import TRANSACTIONS as review

    groups = (signin.transactions(registry.operator_active), registry_transactions(credential.use_token), credential_transactions,
              codes, files, encounter, chronic, filing, prescription, reconciliation, drg, payment, credit_transactions, review)
    encounter_service.on_reversal(credit.cancel_for_reversal)
    table: dict[str, Transaction] = {}
    for group in groups:
        for tx in group.items:
            if tx.infno in table:
                raise RuntimeError(f"transaction {tx.infno} registered twice")
            table[tx.infno] = tx
    return table


def gateway_service(db: Database, settings: Settings, federation: Federation | None = None) -> GatewayService:
    """The gateway with every domain's transactions and the console's message log; on a federation node, the
    transactions that meet people insured in another province ask their home, through the hub (yibao.federation)."""
    from yibao.console.service import MessageLog

    if federation is None or federation.role != "node":
        return GatewayService(db, settings, transaction_table(), MessageLog())
    from yibao.credential.service import use_token
    from yibao.encounter.service import LocalHome
    from yibao.federation import care, service

    link = care.Link(federation)
    return GatewayService(db, settings, service.federate(transaction_table(), federation, link), MessageLog(),
                          home_of=care.homes(federation, link, LocalHome(use_token)))


def _http(reply: Reply) -> Response[bytes]:
    return Response(content=reply.body, media_type=reply.content_type, headers=reply.headers or {}, status_code=200)


def create_app(settings: Settings | None = None, db: Database | None = None) -> Litestar:
    settings = settings or Settings()
    db = db or Database.from_settings(settings)
    mode = deployment.mode_of(db.engine)
    # a demo may trade durability for speed; production acknowledges only what is on disk
    db.use_synchronous("NORMAL" if mode == deployment.DEMO else "FULL")
    federation = nodes.from_settings(settings)
    if federation is not None and db.is_sqlite:
        # a call to another node waits inside the settlement's transaction: SQLite's one writer would wait with it
        raise ValueError("a federation node or hub runs on PostgreSQL (YIBAO_DATABASE_URL=postgresql+psycopg://…)")
    gateway = gateway_service(db, settings, federation)

    async def dispatch(request: Request[Any, Any, Any], path_infno: str | None, dialect_name: str | None = None) -> Response[bytes]:
        body, oversized = await _read_body(request, settings.max_body_bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k: v for k, v in request.query_params.items()}
        client_ip = request.client.host if request.client else ""
        # a read-only transaction (a catalogue file, a query) runs in a thread: the loop keeps serving the writers meanwhile
        return _http(await db.run(lambda: gateway.call(body, headers, query, path_infno, oversized, client_ip, dialect_name),
                                  off_loop=not oversized and gateway.reads_only(path_infno, body)))

    def dialect_route(prefix: str, fallback: str) -> Any:
        """Everything under a prefix of regional dialects' paths (gateway/dialects/*.yaml): a path that matches one of their
        templates is served in that dialect; anything else under the prefix is answered as a refusal in ``fallback``."""

        @post(prefix + "/{rest:path}", status_code=200, request_max_body_size=None, name=f"dialects under {prefix}",
              tags=["regional dialects"], summary=f"National interface in a regional dialect, under {prefix} (docs/dialects.md)")
        async def by_dialect(request: Request[Any, Any, Any]) -> Response[bytes]:
            found = gateway.dialects.match(request.url.path)
            if found is None:
                return _http(gateway.unknown_path(request.url.path, fallback))
            return await dispatch(request, found[1], found[0])

        return by_dialect

    # status_code=200: the gateway answers every call with 200 (refusals are infcode -1), as real platforms do, and the
    # OpenAPI document must say so (Litestar's @post would document 201)
    @post(GATEWAY_PATH, status_code=200, request_max_body_size=None, summary="National interface: every transaction by infno",
          tags=["national interface"])
    async def call_service(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await dispatch(request, None)

    @post("/fsi/api/{service:str}/{method:str}", status_code=200, request_max_body_size=None,
          summary="National interface: one path per transaction", tags=["national interface"])
    async def call_by_path(request: Request[Any, Any, Any], service: str, method: str) -> Response[bytes]:
        infno = gateway.infno_for_path(f"/fsi/api/{service}/{method}")
        if infno is None:
            return _http(gateway.unknown_path(f"/fsi/api/{service}/{method}"))
        return await dispatch(request, infno)

    # The Alibaba CSB forms clients hard-code: one path per transaction (Anhui's broker: .../hsa-fsi-{infno}), or one path
    # for all with the transaction in the body; the _api_name header, when it names one, must agree (gateway/service.py).
    @post("/CSB/{api_name:str}", status_code=200, request_max_body_size=None, summary="National interface: CSB path per transaction",
          tags=["national interface"])
    async def call_csb(request: Request[Any, Any, Any], api_name: str) -> Response[bytes]:
        infno = wire.infno_of_api_name(api_name)
        if infno is None:
            return _http(gateway.unknown_path(request.url.path))
        return await dispatch(request, infno)

    @post("/isp-api/powercsb", status_code=200, request_max_body_size=None, summary="National interface: CSB, every transaction by infno",
          tags=["national interface"])
    async def call_powercsb(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await dispatch(request, None)

    def framework_refusal(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
        """Litestar's own refusals outside the controllers (which keep theirs), routing's 404 and 405 among them: under
        the gateway's prefixes an envelope with HTTP 200, because clients parse every answer there as one; elsewhere
        Litestar's own answer."""
        path = request.url.path
        if not wire.on_gateway_path(path):
            return create_exception_response(request, error)
        if isinstance(error, NotFoundException):
            return _http(gateway.unknown_path(path))
        if isinstance(error, MethodNotAllowedException):
            return _http(gateway.http_refusal(f"{request.method[:10]} is not served at {path[:100]}: the national interface takes POST"))
        return _http(gateway.http_refusal(f"{str(error.detail)[:100]} (HTTP {error.status_code}) at {path[:100]}"))

    @get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__, "database": db.engine.dialect.name}

    @get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response[bytes]:
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @get("/", include_in_schema=False)
    async def root() -> Redirect:
        return Redirect(path="/app/")

    @get(f"{SCHEMA_ASSETS}/{{name:str}}", include_in_schema=False)
    async def schema_asset(name: str) -> File:
        where = SCHEMA_FILES.get(name)
        folder = STATIC if where == "static" else swagger_assets() if where == "swagger" else None
        if folder is None:
            raise NotFoundException()
        return File(path=folder / name, media_type=MEDIA_TYPES[Path(name).suffix], content_disposition_type="inline")

    dialect_routes = [dialect_route(prefix, name) for prefix, name in gateway.dialects.prefixes().items()]
    federation_routes: list[Any] = []
    on_startup: list[Any] = []
    on_shutdown: list[Any] = [db.dispose]
    if federation is not None:
        from yibao.credential.service import use_token
        from yibao.federation import events, views
        from yibao.federation.care import Link

        federation_routes = views.routes(db, federation, settings.signature_window_s, use_token)
        worker = events.Worker(db, federation, settings, Link(federation) if federation.role == "node" else None)
        on_startup.append(worker.start)
        on_shutdown.insert(0, worker.stop)
    from yibao.bill.issuer import Issuer

    issuer = Issuer(db, settings)  # e-bills for new settlements, a moment after they commit (docs/bills.md)
    on_startup.append(issuer.start)
    on_shutdown.insert(0, issuer.stop)
    web = create_static_files_router(path="/app", directories=[STATIC], html_mode=True, include_in_schema=False)
    console_web = create_static_files_router(path="/console", directories=[CONSOLE_STATIC], html_mode=True, include_in_schema=False)
    app = Litestar(
        route_handlers=[call_service, call_by_path, call_csb, call_powercsb, health, metrics, root, schema_asset, web, PeopleController,
                        BillController, CounterController, PaymentCallbackController, CreditController, *dialect_routes, console_web,
                        ConsoleController, InsurerController, *federation_routes],
        exception_handlers={YibaoError: yibao_error_handler, ValidationException: validation_error_handler,
                            HTTPException: framework_refusal},
        openapi_config=OpenAPIConfig(title="yibao", version=__version__, description="National medical-insurance interface and APIs",
                                     render_plugins=[LocalSwagger()]),
        before_send=[security_headers],
        logging_config=LoggingConfig(log_exceptions="always", exception_logging_handler=log_server_error, configure_root_logger=False),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        debug=False,
    )
    app.state.db = db
    app.state.mode = mode
    app.state.gateway = gateway
    app.state.settings = settings
    return app


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers."""
    from yibao.observability import configure_logging

    # each worker is a new process: without this its logs (5xx tracebacks too) would ignore YIBAO_LOG_JSON
    configure_logging(json=Settings().log_json)
    return create_app()
