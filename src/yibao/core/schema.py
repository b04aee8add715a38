"""Typed input for the national interface, tolerant the way real clients need.

Clients send numbers as strings and strings as numbers, empty strings or ``null`` for absent values
(C# serializers write every unset string as ``null``), a one-element list where the spec has an
object and an object where it has a list, and ``input`` as an object or a JSON string. Each
transaction declares its input as msgspec Structs; `convert` reads all of these as the spec means
them, converts, and turns msgspec's errors into an `InputError` that names the field as it appears
on the wire (``input.data.mdtrt_cert_no``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, TypeVar, cast

import msgspec
from msgspec import inspect as mi

from yibao.core.errors import InputError

T = TypeVar("T")

# A required text field: present and not blank.
Required = Annotated[str, msgspec.Meta(min_length=1)]

_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`(?: - at `(?P<path>[^`]+)`)?")
_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>[^`]+)`)?$")


def _wire_path(path: str | None, prefix: str) -> str:
    if not path or path == "$":
        return prefix
    return (prefix + path[1:]).lstrip(".")


def _explain(error: msgspec.ValidationError, prefix: str) -> InputError:
    text = str(error)
    missing = _MISSING.match(text)
    if missing:
        field = (_wire_path(missing.group("path"), prefix) + "." + missing.group("name")).lstrip(".")
        return InputError("required field is missing (必填项为空)", field=field)
    at = _AT.match(text)
    assert at is not None
    field = _wire_path(at.group("path"), prefix)
    what = at.group("what")
    if "length >= 1" in what:
        return InputError("required field is empty (必填项为空)", field=field)
    return InputError(what.replace("`", ""), field=field)


@cache
def _info(tp: Any) -> mi.Type:
    return mi.type_info(tp)


def _takes_none(field: mi.Field) -> bool:
    """Whether ``null`` means something for this field: its type allows None, or it is an optional ``Any``."""
    kind = field.type
    if isinstance(kind, mi.UnionType):
        return any(isinstance(t, mi.NoneType) for t in kind.types)
    return isinstance(kind, (mi.NoneType, mi.AnyType)) and not field.required


def _coerce(value: Any, info: mi.Type) -> Any:
    """Turn numbers into text where text is expected, drop blank and null optional values, take a list of one for
    an object and an object for a list of one."""
    if isinstance(info, mi.StrType) and isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(info, mi.StructType) and isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    elif isinstance(info, mi.ListType) and isinstance(value, dict):
        value = [value]
    if isinstance(info, mi.UnionType):
        if any(isinstance(t, mi.StrType) for t in info.types) and isinstance(value, (int, Decimal)):
            return str(value)
        if any(isinstance(t, mi.NoneType) for t in info.types) and value == "":
            return None
        return value
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        out = dict(value)
        for f in info.fields:
            key = f.encode_name
            if key in out:
                v = out[key]
                # null is absent: the default for an optional field, "required field is missing" for a required one
                if v is None and not _takes_none(f):
                    del out[key]
                    continue
                v = _coerce(v, f.type)
                blank = (v == "" and not isinstance(f.type, mi.StrType)) or (v == [] and isinstance(f.type, mi.StructType))
                if blank and not f.required:
                    del out[key]
                else:
                    out[key] = v
        return out
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [_coerce(v, info.item_type) for v in value]
    return value


# No envelope of the interface nests more than a handful of levels; a deeper document is refused before
# anything walks it recursively (fingerprinting, conversion), so it cannot exhaust the stack.
MAX_DEPTH = 32


class _TooDeep(Exception):
    def __init__(self) -> None:
        self.path: list[str] = []


def _descend(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _TooDeep
    for child in value.values() if type(value) is dict else value:
        if type(child) is dict or type(child) is list:
            try:
                _descend(child, depth + 1)
            except _TooDeep as deep:  # the rare path names the key: found again by identity
                items = value.items() if type(value) is dict else enumerate(value)
                key = next(k for k, v in items if v is child)
                deep.path.append(f"[{key}]" if type(key) is int else f".{key}")
                raise


def check_depth(value: Any, prefix: str = "") -> None:
    """Refuse objects and arrays nested deeper than `MAX_DEPTH`, naming where (``input.data.x[0]…``)."""
    if type(value) is not dict and type(value) is not list:
        return
    try:
        _descend(value, 1)
    except _TooDeep as deep:
        path = (prefix + "".join(reversed(deep.path))).lstrip(".")
        raise InputError(f"JSON is nested deeper than {MAX_DEPTH} levels", field=path[:80] + ("…" if len(path) > 80 else "")) from None


def convert(value: Any, tp: type[T], prefix: str = "input") -> T:
    """Validate ``value`` (decoded JSON) as ``tp``; errors name the field under ``prefix``."""
    try:
        return msgspec.convert(_coerce(value, _info(cast(Any, tp))), tp, strict=False)
    except msgspec.ValidationError as error:
        raise _explain(error, prefix) from None
