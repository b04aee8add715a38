"""What the REST APIs read off a request besides its body: the bearer token and the peer's address."""

from __future__ import annotations

from typing import Any

from litestar import Request


def bearer_token(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The peer's address (behind a reverse proxy, uvicorn's --proxy-headers with YIBAO_TRUSTED_PROXIES make it the
    client's), cut to the 64 characters the audit and rate-limit tables keep."""
    client = request.client
    return ((client.host if client else "") or "unknown")[:64]
