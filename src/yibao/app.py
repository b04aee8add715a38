"""The HTTP application: the national gateway plus health, metrics and the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from yibao import __version__
from yibao.config import Settings
from yibao.core.errors import YibaoError
from yibao.deployment import service as deployment
from yibao.gateway.service import GatewayService, Reply
from yibao.people.views import (
    CounterController,
    PeopleController,
    validation_error_handler,
    yibao_error_handler,
)
from yibao.store.db import Database

GATEWAY_PATH = "/fsi/api/rsfComIfsService/callService"


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


def _http(reply: Reply) -> Response[bytes]:
    return Response(content=reply.body, media_type=reply.content_type, headers=reply.headers or {}, status_code=200)


def create_app(settings: Settings | None = None, db: Database | None = None) -> Litestar:
    settings = settings or Settings()
    db = db or Database.from_settings(settings)
    mode = deployment.mode_of(db.engine)
    # a demo may trade durability for speed; production acknowledges only what is on disk
    db.use_synchronous("NORMAL" if mode == deployment.DEMO else "FULL")
    gateway = GatewayService(db, settings)

    async def dispatch(request: Request[Any, Any, Any], path_infno: str | None) -> Response[bytes]:
        body, oversized = await _read_body(request, settings.max_body_bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k: v for k, v in request.query_params.items()}
        return _http(await db.run(lambda: gateway.call(body, headers, query, path_infno, oversized)))

    @post(GATEWAY_PATH, request_max_body_size=None, summary="National interface: every transaction by infno", tags=["national interface"])
    async def call_service(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await dispatch(request, None)

    @post("/fsi/api/{service:str}/{method:str}", request_max_body_size=None, summary="National interface: one path per transaction",
          tags=["national interface"])
    async def call_by_path(request: Request[Any, Any, Any], service: str, method: str) -> Response[bytes]:
        infno = gateway.infno_for_path(f"/fsi/api/{service}/{method}")
        if infno is None:
            return _http(gateway.unknown_path(f"/fsi/api/{service}/{method}"))
        return await dispatch(request, infno)

    @get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__, "database": db.engine.dialect.name}

    @get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response[bytes]:
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @get("/", include_in_schema=False)
    async def root() -> Redirect:
        return Redirect(path="/app/")

    web = create_static_files_router(path="/app", directories=[Path(__file__).parent / "web" / "static"], html_mode=True,
                                     include_in_schema=False)
    app = Litestar(
        route_handlers=[call_service, call_by_path, health, metrics, root, web, PeopleController, CounterController],
        exception_handlers={YibaoError: yibao_error_handler, ValidationException: validation_error_handler},
        openapi_config=OpenAPIConfig(title="yibao", version=__version__, description="National medical-insurance interface and APIs"),
        on_shutdown=[db.dispose],
        debug=False,
    )
    app.state.db = db
    app.state.mode = mode
    app.state.gateway = gateway
    app.state.settings = settings
    return app


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers."""
    return create_app()
