"""HTTP endpoints of the federation: a node answers calls the hub routes to it; the hub routes a node's call to the
node of the region it names. Both check the sender's signature; refusals travel as {"ok": false, "error": …}."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from litestar import Request, Response, post

from yibao.core.errors import AuthError, YibaoError
from yibao.federation import service
from yibao.federation.nodes import Federation
from yibao.federation.protocol import ENCODER, NODE_PATH, ROUTE_PATH, refusal, sign, verify
from yibao.registry import service as registry
from yibao.store.db import Database

MAX_BODY = 4 * 1024 * 1024


def _json(document: Any, status: int = 200) -> Response[bytes]:
    return Response(content=ENCODER.encode(document), media_type="application/json", status_code=status)


def routes(db: Database, federation: Federation, window_s: int, use_token: registry.TokenCheck) -> list[Any]:
    if federation.role == "hub":
        return [_hub_route(federation, window_s)]
    return [_node_route(db, federation, window_s, use_token)]


def _node_route(db: Database, federation: Federation, window_s: int, use_token: registry.TokenCheck) -> Any:
    @post(NODE_PATH + "/{op:str}", status_code=200, request_max_body_size=MAX_BODY, include_in_schema=False)
    async def node_call(request: Request[Any, Any, Any], op: str) -> Response[bytes]:
        body = await request.body()
        try:
            verify(federation.key_of, request.headers, body, window_s)
            call = msgspec.json.decode(body)
            origin, inner = str(call.get("origin", "")), call.get("body") or {}
            result = await db.run(lambda: service.answer(db, federation, op, origin, inner, use_token))
        except AuthError as error:
            return _json({"detail": error.message}, 401)
        except YibaoError as error:
            return _json(refusal(error))
        except (msgspec.DecodeError, AttributeError):
            return _json({"ok": False, "error": {"kind": "input", "message": "malformed federation call", "field": None}})
        return _json({"ok": True, "answer": result})

    return node_call


def _hub_route(federation: Federation, window_s: int) -> Any:
    client = httpx.AsyncClient(timeout=httpx.Timeout(max(federation.timeout_s - 0.5, 0.5)), follow_redirects=False)

    @post(ROUTE_PATH, status_code=200, request_max_body_size=MAX_BODY, include_in_schema=False)
    async def route(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        try:
            sender = verify(federation.key_of, request.headers, body, window_s)
            call = msgspec.json.decode(body)
            to, op = str(call["to"]), str(call["op"])
        except AuthError as error:
            return _json({"detail": error.message}, 401)
        except (msgspec.DecodeError, KeyError, TypeError):
            return _json({"ok": False, "error": {"kind": "input", "message": "malformed federation call", "field": None}})
        if op not in service.OPS:  # also keeps the op out of the forwarded path unless it is one of these words
            return _json({"ok": False, "error": {"kind": "input", "message": f"unknown federation call '{op[:20]}'", "field": None}})
        peer = federation.province_of(to)
        if peer is None:
            return _json({"ok": False, "error": {"kind": "input", "message": f"no province node serves region {to[:6]}",
                                                 "field": "insuplc_admdvs"}})
        forward = ENCODER.encode({"origin": sender, "body": call.get("body")})
        try:
            reply = await client.post(f"{peer.url}{NODE_PATH}/{op}", content=forward, headers=sign(peer.key, "hub", forward))
        except httpx.TimeoutException:
            return _json({"detail": f"node {peer.admdvs} did not answer in time"}, 504)
        except httpx.HTTPError:
            return _json({"detail": f"node {peer.admdvs} cannot be reached"}, 502)
        return Response(content=reply.content, media_type="application/json", status_code=200 if reply.status_code == 200 else 502)

    return route
