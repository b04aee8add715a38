"""The wire's habits: what real HIS clients send and what they need back, in one place.

Reading (tolerant): bodies in GBK when the Content-Type says so, a UTF-8 byte-order mark, the CSB forms of the path
(``/CSB/hsa-fsi-{infno}``, ``/isp-api/powercsb``) with the transaction also named in ``_api_name``.
Writing (strict): every field of the spec's answer present with its spec type (`write`), from ``answers.yaml``; a
numeric field is never null, a list the spec names is never absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from yibao.core.errors import InputError

ANSWERS = Path(__file__).with_name("answers.yaml")
# Path prefixes clients hard-code: whatever arrives under them is answered with the national envelope, never a framework
# page, because clients parse every answer as an envelope.
GATEWAY_PREFIXES = ("/fsi", "/CSB", "/isp-api")
_API_NAME = re.compile(r"^hsa-fsi-([0-9]{4}[A-Z]?)$")
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.-]+)", re.IGNORECASE)
# GB18030 is a superset of GBK and GB2312: one codec reads all three
_GB = {"gbk", "gb2312", "gb18030", "cp936", "x-gbk"}
_BOM = b"\xef\xbb\xbf"


# -- reading ---------------------------------------------------------------------------------------------------

def infno_of_api_name(name: str) -> str | None:
    """The transaction a CSB service name carries (``hsa-fsi-1101`` → 1101); None for other names (``hssServives``)."""
    found = _API_NAME.match(name.strip())
    return found.group(1) if found else None


def on_gateway_path(path: str) -> bool:
    """Whether ``path`` is under one of the prefixes clients hard-code (``/fsi``, ``/CSB``, ``/isp-api``)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in GATEWAY_PREFIXES)


def utf8_body(body: bytes, content_type: str) -> bytes:
    """The body as UTF-8 bytes: transcoded from GBK/GB2312/GB18030 when the Content-Type says so (older Windows HIS
    clients post in the system code page), without a byte-order mark (.NET's Encoding.UTF8 writes one)."""
    found = _CHARSET.search(content_type or "")
    if found and found.group(1).lower() in _GB:
        try:
            return body.decode("gb18030").encode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"request body is not valid {found.group(1)} (byte {error.start}), as its Content-Type says") from None
    return body[3:] if body.startswith(_BOM) else body


# -- writing ---------------------------------------------------------------------------------------------------

EMPTY = {"num": 0, "str": "", "date": None}


@dataclass(frozen=True)
class Node:
    name: str  # "" for fields directly in ``output``
    shape: str  # object / list / flat
    fields: tuple[tuple[str, str, Any], ...]  # (name, kind, value for absent or null)


@lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    return yaml.safe_load(ANSWERS.read_text(encoding="utf-8"))


# 定价上限金额 of an item the catalogue sets no price cap for: the platform's sentinel (answers.yaml says why)
NO_PRICE_CAP = Decimal(_spec()["empty"]["pric_uplmt_amt"])


@lru_cache(maxsize=1)
def answer_schema() -> dict[str, tuple[Node, ...]]:
    spec = _spec()
    special = {name: Decimal(value) for name, value in spec.get("empty", {}).items()}
    blocks = {name: tuple((field, kind, special.get(field, EMPTY[kind])) for field, kind in fields.items())
              for name, fields in spec["blocks"].items()}
    return {infno: tuple(Node(node, shape, blocks[block]) for node, (shape, block) in nodes.items())
            for infno, nodes in spec["transactions"].items()}


def _filled(row: dict[str, Any], fields: tuple[tuple[str, str, Any], ...]) -> dict[str, Any]:
    out = dict(row)
    for name, kind, empty in fields:
        value = out.get(name)
        if value is None and (name not in out or kind != "date"):
            out[name] = empty
    return out


def write(infno: str, output: Any) -> Any:
    """``output`` with every field the spec names for ``infno`` present and typed; other transactions pass unchanged.

    The ``A`` variants some provinces use (2207A…) answer as their base transaction. Fields the spec does not name are
    kept: clients ignore what they do not know."""
    schema = answer_schema()
    nodes = schema.get(infno) or schema.get(infno[:-1] if infno.endswith("A") else "")
    if not nodes or not isinstance(output, dict):
        return output
    out = dict(output)
    for node in nodes:
        if node.shape == "flat":
            out = _filled(out, node.fields)
            continue
        value = out.get(node.name)
        if node.shape == "list":
            items = [] if value is None else [value] if isinstance(value, dict) else value
            out[node.name] = [_filled(item, node.fields) if isinstance(item, dict) else item for item in items] \
                if isinstance(items, list) else items
        elif isinstance(value, dict) or value is None:
            out[node.name] = _filled(value or {}, node.fields)
    return out
