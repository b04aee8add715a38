"""What travels between nodes: signed JSON over HTTP (calls through the hub) and the error a refusal carries.

A call is signed with HMAC-SM3 under the key the sender shares with the hub: the node's code, the time (seconds)
and the body, in headers. The receiver refuses a wrong signature or a time outside the window; the calls are
idempotent by their key, so a replayed call changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from yibao.core import crypto
from yibao.core.errors import AuthError, Conflict, InputError, NotFound, YibaoError

NODE, TIME, SIGNATURE = "x-yibao-node", "x-yibao-time", "x-yibao-signature"
ROUTE_PATH = "/fed/v1/route"
NODE_PATH = "/fed/v1/node"
ENCODER = msgspec.json.Encoder(decimal_format="string")


class Unreachable(YibaoError):
    """Another node (or the hub) did not answer in time: nothing was settled here; a retry with the same msgid
    completes the settlement once, or the home releases it (docs/federation.md)."""

    http_status = 504


def _message(node: str, stamp: str, body: bytes) -> bytes:
    return f"{node}\n{stamp}\n".encode() + body


def sign(key: bytes, node: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {NODE: node, TIME: stamp, SIGNATURE: crypto.hmac_sm3_hex(key, _message(node, stamp, body)),
            "content-type": "application/json"}


def verify(key_of: Callable[[str], bytes | None], headers: Mapping[str, str], body: bytes, window_s: int) -> str:
    """The signing node's code, or AuthError."""
    node, stamp, signature = headers.get(NODE, ""), headers.get(TIME, ""), headers.get(SIGNATURE, "")
    key = key_of(node) if node else None
    if key is None:
        raise AuthError(f"unknown federation node '{node[:12]}'")
    if not stamp.isdigit() or abs(int(stamp) - time.time()) > window_s:
        raise AuthError("the call's time is missing or outside the signature window")
    if not crypto.equal(signature, crypto.hmac_sm3_hex(key, _message(node, stamp, body))):
        raise AuthError("the federation signature does not match")
    return node


def key_bytes(text: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} must be a hex key") from None
    if len(key) < 16:
        raise ValueError(f"{what} must be at least 16 bytes (32 hex digits)")
    return key


_KINDS: dict[str, type[YibaoError]] = {"input": InputError, "not_found": NotFound, "conflict": Conflict, "auth": AuthError}


def refusal(error: YibaoError) -> dict[str, Any]:
    """A refusal as it travels: its kind, the field and the message without the field's prefix."""
    kind = next((k for k, cls in _KINDS.items() if type(error) is cls), "input")
    text = error.message
    if error.field and text.startswith(f"{error.field}: "):
        text = text[len(error.field) + 2:]
    return {"ok": False, "error": {"kind": kind, "message": text, "field": error.field}}


def raise_refusal(document: Mapping[str, Any], region: str) -> None:
    """Raise the refusal a node answered, as the same kind of error here (the counter reads the home's reason)."""
    error = document.get("error") or {}
    cls = _KINDS.get(str(error.get("kind")), InputError)
    message = str(error.get("message") or "refused")
    raise cls(f"{message} (参保地 {region})", field=error.get("field") or None)
