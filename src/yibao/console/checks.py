"""Field-level warnings about one request, for the vendors' console. Pure: bytes and rules in, findings out.

Three kinds, each about a field as the wire names it (``input.feedetail[0].cnt``):

- ``unknown``: a key the transaction's input (the Struct in the gateway table) or the envelope does not have.
  The platform ignores it; a vendor usually meant another field (a misspelling, another province's name).
- ``format``: a date or time not written ``yyyy-MM-dd HH:mm:ss`` / ``yyyy-MM-dd``, a number with more decimals than
  the spec's scale, a code sent as a JSON number where the spec has text (leading zeros are lost).
- ``empty``: an optional field the platform would want, sent empty or left out (data/wanted.yaml).

Computed when the console shows a message, never on the gateway's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import msgspec
import yaml
from msgspec import inspect as mi

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.gateway.envelope import DECODER, Envelope

DATA = Path(__file__).parent / "data"
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# a finding quotes at most this much of a value
QUOTE = 40


@dataclass(frozen=True)
class Finding:
    path: str
    kind: str  # unknown | format | empty
    message: str


@dataclass(frozen=True)
class Rules:
    datetimes: frozenset[str]
    dates: frozenset[str]
    decimals: Mapping[str, int]
    # infno → ((path under input, why the platform wants it), …)
    wanted: Mapping[str, tuple[tuple[str, str], ...]]


@lru_cache(maxsize=1)
def bundled() -> Rules:
    formats = yaml.safe_load((DATA / "formats.yaml").read_text(encoding="utf-8"))
    wanted = yaml.safe_load((DATA / "wanted.yaml").read_text(encoding="utf-8"))
    return Rules(frozenset(formats["datetime"]), frozenset(formats["date"]), {str(k): int(v) for k, v in formats["decimals"].items()},
                 {str(infno): tuple((str(p), str(why)) for p, why in fields.items()) for infno, fields in wanted.items()})


def decode(body: bytes) -> Any:
    """The request as the gateway reads it (amounts as Decimal); GBK when it is not UTF-8; None when it is not JSON."""
    for text in (body, _gbk(body)):
        if text is None:
            continue
        try:
            return DECODER.decode(text)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            continue
    return None


def _gbk(body: bytes) -> bytes | None:
    try:
        return body.decode("gbk").encode()
    except UnicodeDecodeError:
        return None


def request_input(document: Any) -> Any:
    """``input`` as an object, also when the client sent it as a JSON string."""
    value = document.get("input") if isinstance(document, dict) else None
    if isinstance(value, str) and value.strip():
        try:
            return DECODER.decode(value.encode())
        except (msgspec.DecodeError, RecursionError):
            return value
    return value


def findings(body: bytes, input_types: Mapping[str, type], rules: Rules,
             translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[Finding]:
    """Every warning about ``body``; ``input_types`` maps each served infno to its input Struct; ``translate`` turns a
    regional dialect's request into the national form first (its own names are not unknown fields)."""
    document = decode(body)
    if not isinstance(document, dict):
        return []  # not a JSON object: the answer's err_msg already says so, and there are no fields to speak of
    if translate is not None:
        try:
            document = translate(document)
        except Exception:  # noqa: BLE001 - what the gateway could not translate it refused; judge the request as sent
            pass
    out: list[Finding] = []
    _walk(document, _info(Envelope), "", rules, out, skip=frozenset({"input"}))
    infno = str(document.get("infno", ""))
    input_type = input_types.get(infno)
    value = request_input(document)
    if input_type is not None and isinstance(value, (dict, list)):
        _walk(value, _info(input_type), "input", rules, out)
        for path, why in rules.wanted.get(infno, ()):
            for where, found in _lookup(value, path.split("."), "input"):
                if found is _ABSENT:
                    out.append(Finding(where, "empty", f"未传。{why}"))
                elif found is None or (isinstance(found, str) and not found.strip()):
                    out.append(Finding(where, "empty", f"为空。{why}"))
    return out


@cache
def _info(tp: Any) -> mi.Type:
    return mi.type_info(tp)


def _walk(value: Any, info: mi.Type, path: str, rules: Rules, out: list[Finding], skip: frozenset[str] = frozenset()) -> None:
    if isinstance(info, mi.UnionType):
        for member in info.types:  # the member that fits the value's shape (Struct | None, list | None …)
            if isinstance(member, (mi.StructType, mi.ListType)) and isinstance(value, (dict, list)):
                _walk(value, member, path, rules, out, skip)
                return
        return
    if isinstance(info, mi.StructType):
        if isinstance(value, list):  # a one-element list where the spec has an object: read as the gateway reads it
            for i, item in enumerate(value):
                _walk(item, info, f"{path}[{i}]", rules, out, skip)
            return
        if not isinstance(value, dict):
            return
        fields = {f.encode_name: f for f in info.fields}
        for key, child in value.items():
            where = f"{path}.{key}" if path else str(key)
            field = fields.get(key)
            if field is None:
                if key not in skip:
                    scope = "公共报文头" if not path else f"平台的 {path} 定义"
                    out.append(Finding(where, "unknown", f"{scope}中没有 {key}，平台忽略了它"
                                                         "（拼写？其他省份的字段名？）"))
                continue
            if isinstance(child, (dict, list)):
                _walk(child, field.type, where, rules, out)
            else:
                message = _format(str(key), child, field.type, rules)
                if message:
                    out.append(Finding(where, "format", message))
        return
    if isinstance(info, mi.ListType):
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, (dict, list)):
                _walk(item, info.item_type, f"{path}[{i}]", rules, out)


def _format(name: str, value: Any, declared: mi.Type, rules: Rules) -> str:
    """What is wrong with a leaf value's format, or ""."""
    if value is None or value == "":
        return ""
    if name in rules.datetimes:
        return _moment(value, DATETIME, "yyyy-MM-dd HH:mm:ss", clock.parse_datetime)
    if name in rules.dates:
        return _moment(value, DATE, "yyyy-MM-dd", clock.parse_date)
    if name in rules.decimals:
        return _number(value, rules.decimals[name])
    text_only = isinstance(declared, mi.StrType) or (isinstance(declared, mi.UnionType)
                                                     and any(isinstance(t, mi.StrType) for t in declared.types))
    if text_only and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return f"应为字符型，收到数值 {_quote(value)}：编码以 0 开头时前导零会丢失，请按字符串发送"
    if text_only and isinstance(value, bool):
        return f"应为字符型，收到布尔值 {str(value).lower()}"
    return ""


def _moment(value: Any, canonical: re.Pattern[str], pattern: str, parse: Any) -> str:
    if not isinstance(value, str):
        return f"应为字符串 {pattern}，收到 {_quote(value)}"
    accepted = True
    try:
        parse(value, "value")
    except InputError:
        accepted = False
    if accepted and canonical.fullmatch(value):
        return ""
    verdict = "平台能识别，但其他系统可能不能" if accepted else "平台无法识别"
    return f"'{_quote(value)}' 不是规范格式 {pattern}（{verdict}）"


def _number(value: Any, scale: int) -> str:
    if isinstance(value, bool):
        return f"应为数值，收到布尔值 {str(value).lower()}"
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return f"应为数值，收到 {_quote(value)}"
    if not amount.is_finite():
        return f"应为数值，收到 {_quote(value)}"
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places <= scale:
        return ""
    exact = amount == amount.quantize(Decimal(1).scaleb(-scale)) if amount.adjusted() < 30 else False
    verdict = "末位都是 0，平台能接受" if exact else "不能精确表示，平台会拒绝"
    return f"{_quote(value)} 有 {places} 位小数，规范最多 {scale} 位（{verdict}）"


_ABSENT = object()


def _lookup(value: Any, parts: list[str], path: str) -> list[tuple[str, Any]]:
    """(wire path, value or _ABSENT) for a wanted path such as ``feedetail[].chrg_bchno`` (a missing parent yields nothing:
    the call was refused for it already)."""
    if not parts:
        return [(path, value)]
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if isinstance(value, list) and len(value) == 1 and not many:
        value = value[0]  # the one-element list the gateway reads as an object
    if not isinstance(value, dict):
        return []
    if key not in value:
        return [] if rest else [(f"{path}.{key}", _ABSENT)]
    child = value[key]
    if not many:
        return _lookup(child, rest, f"{path}.{key}")
    items = child if isinstance(child, list) else [child]
    found: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        found.extend(_lookup(item, rest, f"{path}.{key}[{i}]"))
    return found


def _quote(value: Any) -> str:
    text = str(value)
    return text if len(text) <= QUOTE else text[:QUOTE - 1] + "…"
