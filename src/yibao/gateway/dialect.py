"""Regional dialects of the national interface, as data (docs/dialects.md).

Provincial platforms implemented the national interface with local differences, and HIS vendors keep
one adapter per province. A dialect file (``gateway/dialects/<name>.yaml``) maps one province's wire to
yibao's canonical (national) interface both ways: the paths its clients post to, the header schemes
they sign with, their node and field names, date formats, the shapes of answers, and how its gateway
reports authentication errors.

This module is pure: `load_folder` reads and checks the files (every mistake is a `DialectError`
naming the file and the key), `Translation.inbound` turns a decoded request into the national
form and `Translation.outbound` turns the national answer into the dialect's. The gateway
(service.py) creates a `Translation` only for a key or path that is not national, so national calls
never pass through here.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from yibao.core.errors import AuthError
from yibao.core.schema import check_depth
from yibao.gateway.envelope import DECODER, ENCODER

NATIONAL = "national"
# a transaction number as provinces write it: 4 or 5 digits, an optional letter (2203A, 90100)
INFNO = re.compile(r"^\d{4,5}[A-Z]?$")
# header schemes a dialect's paths may accept (gateway/auth.py, gateway/front.py)
SCHEMES = ("yibao", "csb", "tif", "front")
ANSWER_SHAPES = ("list", "object")
# first path segments the platform serves itself (app.py): the national interface, the apps, operations
RESERVED_PREFIXES = {"fsi", "csb", "isp-api", "api", "app", "console", "schema", "health", "metrics"}
# Refused.reason values the gateway can report (gateway/auth.py, gateway/front.py); 'default' covers the rest
REFUSAL_REASONS = ("default", "unsigned", "malformed", "unknown_key", "signature", "scheme", "stale", "replayed", "unknown_front",
                   "front_address", "front_untrusted")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEGMENT = re.compile(r"^(?:[A-Za-z0-9_.~-]+|\{[a-z_]+\})$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# the national forms every canonical handler reads
NATIONAL_DATETIME = "%Y-%m-%d %H:%M:%S"
NATIONAL_DATE = "%Y-%m-%d"
_NATIONAL_DATETIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_NATIONAL_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# date patterns as HIS documentation writes them → strptime
_TOKENS = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%f"))
_PATTERN_TEXT = re.compile(r"^(?:yyyy|MM|dd|HH|mm|ss|SSS|[-/ :T.])+$")
_TOP_KEYS = {"name", "title", "extends", "sources", "regions", "paths", "auth", "gateway_errors", "envelope", "answer", "dates",
             "transactions"}
_RULE_KEYS = {"nodes", "flat", "fields", "answer"}
_ANSWER_RULE_KEYS = {"fields", "add", "shape"}
# keys of a file that a variant (``extends``) does not inherit: it is chosen by binding, not by region or path
_NOT_INHERITED = ("name", "title", "sources", "regions", "paths")


class DialectError(Exception):
    """A dialect file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class DateFormat:
    text: str  # as written in the file: yyyyMMddHHmmss
    strptime: str
    has_time: bool


@dataclass(frozen=True)
class Rule:
    """What a dialect changes in one transaction (``transactions`` entries for it and ``*``, merged)."""

    nodes: Mapping[str, str] = field(default_factory=dict)  # request node as sent → national node
    flat: str = ""  # national node that fields sent straight in ``input`` belong to
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # national node → {field as sent: national field}
    answer_fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # answer path → {national key: also written as}
    answer_add: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # answer path → {key: value written when absent}
    answer_shape: Mapping[str, str] = field(default_factory=dict)  # answer path → list | object

    @property
    def empty(self) -> bool:
        return not (self.nodes or self.flat or self.fields or self.answer_fields or self.answer_add or self.answer_shape)


@dataclass(frozen=True)
class Dialect:
    name: str
    title: str = ""
    extends: str = ""
    sources: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    # header schemes accepted on this dialect's paths (None: all); the shortest x-tif-nonce its clients send
    schemes: frozenset[str] | None = None
    tif_nonce_min: int | None = None
    # authentication failures on its paths, in its gateway's wrapper (None: the national envelope)
    error_wrapper: Mapping[str, Any] | None = None
    error_codes: Mapping[str, str] = field(default_factory=dict)
    # envelope fields filled when sent blank: a literal, or $region (digits 2–7 of fixmedins_code)
    blank: Mapping[str, str] = field(default_factory=dict)
    infcode: str = "number"
    # what an answer without data carries as ``output``; KEEP leaves the national {} / null
    empty_output: Any = None
    keeps_empty_output: bool = True
    datetime_fields: tuple[str, ...] = ()
    date_fields: tuple[str, ...] = ()
    dates_in: tuple[DateFormat, ...] = ()
    dates_out: tuple[DateFormat, DateFormat] | None = None
    rules: Mapping[str, Rule] = field(default_factory=dict)  # infno or * → rule
    _merged: dict[str, Rule] = field(default_factory=dict, compare=False, repr=False)

    @property
    def translates(self) -> bool:
        """False for a dialect that is the national interface itself: its calls skip translation entirely."""
        return bool(self.rules or self.blank or self.infcode != "number" or not self.keeps_empty_output or self.dates_in
                    or self.dates_out)

    def rule(self, infno: str) -> Rule:
        """The merged rule for one transaction: ``*`` first, then the transaction's own entries."""
        found = self._merged.get(infno)
        if found is None:
            found = _merge_rules(self.rules.get("*"), self.rules.get(infno))
            if len(self._merged) < 1000:  # bounded: infno comes from the caller
                self._merged[infno] = found
        return found

    def gateway_error(self, reason: str, message: str) -> dict[str, Any] | None:
        """An authentication failure in the dialect's gateway wrapper, or None when it answers with the national envelope."""
        if self.error_wrapper is None:
            return None
        code = self.error_codes.get(reason) or self.error_codes.get("default") or "-1"
        return _fill(self.error_wrapper, {"{code}": code, "{message}": message[:200]})


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return values.get(value, value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def _merge_rules(star: Rule | None, own: Rule | None) -> Rule:
    if star is None:
        return own or Rule()
    if own is None:
        return star

    def nested(a: Mapping[str, Mapping[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        merged = {k: dict(v) for k, v in a.items()}
        for k, v in b.items():
            merged.setdefault(k, {}).update(v)
        return merged

    return Rule(nodes={**star.nodes, **own.nodes}, flat=own.flat or star.flat, fields=nested(star.fields, own.fields),
                answer_fields=nested(star.answer_fields, own.answer_fields), answer_add=nested(star.answer_add, own.answer_add),
                answer_shape={**star.answer_shape, **own.answer_shape})


# -- translation ----------------------------------------------------------------------------------

@dataclass
class Translation:
    """One call through a dialect. ``inbound`` remembers what it renamed, so ``outbound`` can name a refused field
    the way the caller sent it (``input.mdtrtinfo.ipt_otp_no``, not ``input.mdtrtinfo.ipt_no``)."""

    dialect: Dialect
    infno: str = ""
    # national node → node as sent ("" when the fields came straight in input)
    renamed_nodes: dict[str, str] = field(default_factory=dict)
    # (national node, national field) → field as sent
    renamed_fields: dict[tuple[str, str], str] = field(default_factory=dict)

    def inbound(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The request envelope in the national form. The document given is not changed."""
        d = self.dialect
        doc = dict(document)
        infno = doc.get("infno")
        if isinstance(infno, str) and infno:
            self.infno = infno
        for name, default in d.blank.items():
            if doc.get(name) in (None, ""):
                doc[name] = _blank_value(default, doc)
        rule = d.rule(self.infno)
        raw_input = doc.get("input")
        if isinstance(raw_input, str) and raw_input.strip():
            try:  # some clients send input as a JSON string: translate what it holds
                raw_input = DECODER.decode(raw_input.encode())
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                pass  # the gateway refuses it with its own message
            else:
                check_depth(raw_input, "input")  # before the copy and the walks below, which recurse
        if isinstance(raw_input, dict) and not rule.empty:
            doc["input"] = self._input(copy.deepcopy(raw_input), rule)
        elif isinstance(raw_input, dict):
            doc["input"] = raw_input
        if d.dates_in:
            doc = _walk_dates(doc, lambda name, text: self._date_in(name, text))
        return doc

    def _input(self, data: dict[str, Any], rule: Rule) -> dict[str, Any]:
        if rule.flat and rule.flat not in data and not any(node in data for node in rule.nodes):
            data = {rule.flat: data}
            self.renamed_nodes[rule.flat] = ""
        for sent, national in rule.nodes.items():
            if sent in data and national not in data:
                data[national] = data.pop(sent)
                self.renamed_nodes[national] = sent
        for node, aliases in rule.fields.items():
            value = data.get(node)
            for row in value if isinstance(value, list) else [value]:
                if not isinstance(row, dict):
                    continue
                for sent, national in aliases.items():
                    if sent not in row:
                        continue
                    given = row.pop(sent)
                    # both sent: the national name wins (HSA sends ipt_no and ipt_otp_no in 2401)
                    if row.get(national) in (None, ""):
                        row[national] = given
                        self.renamed_fields[(node, national)] = sent
        return data

    def _date_in(self, name: str, text: str) -> str | None:
        kind = _kind(self.dialect, name)
        if kind is None:
            return None
        if (_NATIONAL_DATETIME_TEXT if kind == "datetime" else _NATIONAL_DATE_TEXT).match(text):
            return None
        for form in self.dialect.dates_in:
            try:
                when = datetime.strptime(text.strip(), form.strptime)
            except ValueError:
                continue
            return when.strftime(NATIONAL_DATETIME if kind == "datetime" else NATIONAL_DATE)
        return None  # the handler refuses it, naming the field

    def outbound(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """The national answer in the dialect's form. The answer given is not changed."""
        d = self.dialect
        out = copy.deepcopy(dict(answer))
        if d.infcode == "string" and isinstance(out.get("infcode"), int):
            out["infcode"] = str(out["infcode"])
        message = out.get("err_msg")
        if isinstance(message, str) and message.startswith("input.") and (self.renamed_nodes or self.renamed_fields):
            out["err_msg"] = self.as_sent(message)
        output = out.get("output")
        if output in ({}, None):
            if not d.keeps_empty_output:
                out["output"] = copy.deepcopy(d.empty_output)
            return out
        rule = d.rule(self.infno)
        for where, aliases in rule.answer_fields.items():
            _at(out, where, partial(_also, aliases=aliases))
        for where, values in rule.answer_add.items():
            _at(out, where, partial(_absent, values=values))
        if d.dates_out:
            out["output"] = _walk_dates(out["output"], self._date_out)
        for where, shape in rule.answer_shape.items():
            _reshape(out, where.split("."), shape)
        return out

    def _date_out(self, name: str, text: str) -> str | None:
        kind = _kind(self.dialect, name)
        assert self.dialect.dates_out is not None
        if kind == "datetime" and _NATIONAL_DATETIME_TEXT.match(text):
            return datetime.strptime(text, NATIONAL_DATETIME).strftime(self.dialect.dates_out[0].strptime)
        if kind == "date" and _NATIONAL_DATE_TEXT.match(text):
            return datetime.strptime(text, NATIONAL_DATE).strftime(self.dialect.dates_out[1].strptime)
        return None

    def as_sent(self, message: str) -> str:
        """``input.data.mdtrt_id: …`` → ``input.mdtrtinfo.mdtrt_id: …`` when the caller sent the node as mdtrtinfo."""
        head, sep, rest = message.partition(": ")
        found = re.match(r"^input\.([A-Za-z_]\w*)((?:\[\d+\])?)(?:\.([A-Za-z_]\w*))?", head)
        if not sep or not found:
            return message
        node, index, name = found.group(1), found.group(2), found.group(3)
        sent_name = self.renamed_fields.get((node, name or ""), name)
        sent_node = self.renamed_nodes.get(node, node)
        path = "input" + (f".{sent_node}{index}" if sent_node else "") + (f".{sent_name}" if sent_name else "")
        return path + head[found.end():] + sep + rest

    def outbound_bytes(self, body: bytes) -> bytes:
        """The gateway's encoded national answer, re-encoded in the dialect (amounts stay exact: Decimal both ways)."""
        try:
            answer = DECODER.decode(body)
        except msgspec.DecodeError:
            return body
        if not isinstance(answer, dict):
            return body
        return ENCODER.encode(self.outbound(answer))


def _blank_value(default: str, doc: Mapping[str, Any]) -> str:
    if default == "$region":
        code = doc.get("fixmedins_code")
        return code[1:7] if isinstance(code, str) and len(code) == 12 else ""
    return default


@cache
def _pattern(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or r"(?!)")


def _kind(dialect: Dialect, name: str) -> str | None:
    if dialect.date_fields and _pattern(dialect.date_fields).match(name):
        return "date"
    if dialect.datetime_fields and _pattern(dialect.datetime_fields).match(name):
        return "datetime"
    return None


def _walk_dates(value: Any, change: Callable[[str, str], str | None]) -> Any:
    """Every string under a named key, offered to ``change`` (None keeps it); containers are rebuilt, not mutated."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if isinstance(item, str):
                changed = change(key, item) if isinstance(key, str) else None
                result[key] = item if changed is None else changed
            else:
                result[key] = _walk_dates(item, change)
        return result
    if isinstance(value, list):
        return [_walk_dates(item, change) for item in value]
    return value


def _at(root: Any, where: str, apply: Callable[[dict[str, Any]], None]) -> None:
    """Call ``apply`` on every object at the dotted path; lists on the way are walked row by row."""
    targets = [root]
    for step in where.split("."):
        following: list[Any] = []
        for target in targets:
            value = target.get(step) if isinstance(target, dict) else None
            following.extend(value if isinstance(value, list) else [value])
        targets = following
    for target in targets:
        if isinstance(target, dict):
            apply(target)


def _also(node: dict[str, Any], aliases: Mapping[str, str]) -> None:
    for national, alias in aliases.items():
        if national in node and alias not in node:
            node[alias] = copy.deepcopy(node[national])


def _absent(node: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key not in node:
            node[key] = copy.deepcopy(value)


def _reshape(parent: Any, steps: list[str], shape: str) -> None:
    if isinstance(parent, list):
        for row in parent:
            _reshape(row, steps, shape)
        return
    if not isinstance(parent, dict) or steps[0] not in parent:
        return
    if len(steps) > 1:
        _reshape(parent[steps[0]], steps[1:], shape)
        return
    value = parent[steps[0]]
    if shape == "list" and isinstance(value, dict):
        parent[steps[0]] = [value]  # one row, as a list: the clients declare List<…>
    elif shape == "object" and isinstance(value, list) and len(value) <= 1:
        parent[steps[0]] = value[0] if value else {}  # a list of several rows stays a list: no row is dropped


# -- loading and checking -------------------------------------------------------------------------

class _Check:
    """Reads one file's document, raising DialectError('<file>: <key path>: <problem>')."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> DialectError:
        return DialectError(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")

    def mapping(self, value: Any, where: str, allowed: Iterable[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping (key: value), not {type(value).__name__}")
        if allowed is not None:
            known = set(allowed)
            for key in value:
                if str(key) not in known:
                    raise self.fail(f"{where}.{key}" if where else str(key), f"unknown key (known here: {', '.join(sorted(known))})")
        return {str(k): v for k, v in value.items()}

    def text(self, value: Any, where: str, *, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string{f' ({what})' if what else ''}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"'{value}' is not {what or 'valid here'}")
        return value

    def texts(self, value: Any, where: str, **kwargs: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(where, "must be a list")
        return tuple(self.text(v, f"{where}[{i}]", **kwargs) for i, v in enumerate(value))

    def names(self, value: Any, where: str, what: str) -> dict[str, str]:
        mapping = self.mapping(value, where)
        return {self.text(k, f"{where}.{k}", pattern=_IDENT, what=what): self.text(v, f"{where}.{k}", pattern=_IDENT, what=what)
                for k, v in mapping.items()}

    def date_format(self, value: Any, where: str) -> DateFormat:
        text = self.text(value, where, pattern=_PATTERN_TEXT, what="a date pattern of yyyy MM dd HH mm ss SSS and - / : T . or space")
        if not all(token in text for token in ("yyyy", "MM", "dd")):
            raise self.fail(where, f"'{text}' needs yyyy, MM and dd")
        converted = text
        for token, directive in _TOKENS:
            converted = converted.replace(token, directive)
        return DateFormat(text, converted, "HH" in text)


def _infnos(check: _Check, key: Any, where: str) -> list[str]:
    """A transactions key: one infno, several separated by commas ("2206, 2207"), or * for every transaction."""
    text = str(key).strip()
    if text == "*":
        return ["*"]
    numbers = [part.strip() for part in text.split(",")]
    for number in numbers:
        if not INFNO.match(number):
            raise check.fail(where, f"'{number}' is not a transaction number (4 or 5 digits and an optional letter) or *")
    return numbers


def _rule(check: _Check, raw: Any, where: str) -> Rule:
    body = check.mapping(raw, where, _RULE_KEYS)
    nodes = check.names(body.get("nodes"), f"{where}.nodes", "a node name")
    flat = check.text(body["flat"], f"{where}.flat", pattern=_IDENT, what="a node name") if body.get("flat") else ""
    fields = {node: check.names(aliases, f"{where}.fields.{node}", "a field name")
              for node, aliases in check.mapping(body.get("fields"), f"{where}.fields").items()}
    for node in fields:
        check.text(node, f"{where}.fields.{node}", pattern=_IDENT, what="a node name")
    answer = check.mapping(body.get("answer"), f"{where}.answer", _ANSWER_RULE_KEYS)
    answer_fields = {}
    for path, aliases in check.mapping(answer.get("fields"), f"{where}.answer.fields").items():
        answer_fields[_answer_path(check, path, f"{where}.answer.fields")] = check.names(aliases, f"{where}.answer.fields.{path}",
                                                                                         "a field name")
    answer_add = {}
    for path, values in check.mapping(answer.get("add"), f"{where}.answer.add").items():
        answer_add[_answer_path(check, path, f"{where}.answer.add")] = check.mapping(values, f"{where}.answer.add.{path}")
    answer_shape = {}
    for path, shape in check.mapping(answer.get("shape"), f"{where}.answer.shape").items():
        if shape not in ANSWER_SHAPES:
            raise check.fail(f"{where}.answer.shape.{path}", f"'{shape}' is not one of {', '.join(ANSWER_SHAPES)}")
        answer_shape[_answer_path(check, path, f"{where}.answer.shape")] = shape
    return Rule(nodes, flat, fields, answer_fields, answer_add, answer_shape)


def _answer_path(check: _Check, path: str, where: str) -> str:
    steps = path.split(".")
    if steps[0] != "output" or not all(_IDENT.match(s) for s in steps):
        raise check.fail(f"{where}.{path}", "an answer path starts at output and names keys with dots (output.setlinfo)")
    return path


def _path(check: _Check, template: str, where: str) -> str:
    check.text(template, where, what="a path")
    segments = template.split("/")
    if segments[0] != "" or len(segments) < 2 or not all(_SEGMENT.match(s) for s in segments[1:]):
        raise check.fail(where, f"'{template}' is not a path of literal segments and {{placeholders}}, starting with /")
    if _PLACEHOLDER.fullmatch(segments[1]):
        raise check.fail(where, f"'{template}' must begin with a literal segment")
    if segments[1].lower() in RESERVED_PREFIXES:
        raise check.fail(where, f"'{template}' is under /{segments[1]}/, which the platform serves itself")
    names = _PLACEHOLDER.findall(template)
    if len(set(names)) != len(names):
        raise check.fail(where, f"'{template}' repeats a placeholder")
    if "infno" in names and segments[-1] != "{infno}":
        raise check.fail(where, f"'{template}': {{infno}} must be the last segment")
    return template


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """The child's keys over the parent's; mappings merge key by key, a null in the child removes the parent's key."""
    merged = dict(parent)
    for key, value in child.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _normalise_transactions(check: _Check, raw: Any) -> dict[str, Any]:
    """``transactions`` with one key per infno (shared keys like "2206, 2207" spread out, in file order)."""
    spread: dict[str, Any] = {}
    for key, value in check.mapping(raw, "transactions").items():
        body = check.mapping(value, f"transactions.{key}")
        for infno in _infnos(check, key, f"transactions.{key}"):
            spread[infno] = _merge(spread.get(infno, {}), body)
    return spread


def parse(documents: Mapping[str, tuple[str, Any]]) -> dict[str, Dialect]:
    """Dialects from their YAML documents: file stem → (source label, document). ``extends`` is resolved here."""
    raw: dict[str, tuple[_Check, dict[str, Any]]] = {}
    for stem, (source, document) in documents.items():
        check = _Check(source)
        body = check.mapping(document, "", _TOP_KEYS)
        name = check.text(body.get("name"), "name", pattern=_NAME, what="lower-case letters, digits and _")
        if name != stem:
            raise check.fail("name", f"'{name}' must be the file's name ({stem}.yaml)")
        body["transactions"] = _normalise_transactions(check, body.get("transactions"))
        raw[name] = (check, body)
    if NATIONAL not in raw:
        raise DialectError(f"no {NATIONAL}.yaml: the national dialect must ship with the others")

    def resolved(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        check, body = raw[name]
        parent = body.get("extends")
        if not parent:
            return body
        check.text(parent, "extends", pattern=_NAME, what="a dialect's name")
        if parent not in raw:
            raise check.fail("extends", f"no dialect '{parent}' (known: {', '.join(sorted(raw))})")
        if parent in seen or parent == name:
            raise check.fail("extends", f"'{parent}' extends {name} in turn: a cycle")
        base = {k: v for k, v in resolved(parent, (*seen, name)).items() if k not in _NOT_INHERITED and k != "extends"}
        return _merge(base, body)

    dialects = {name: _build(raw[name][0], resolved(name)) for name in raw}
    owners: dict[str, str] = {}
    for d in dialects.values():
        for template in d.paths:
            shape = _PLACEHOLDER.sub("{}", template)
            if shape in owners:
                raise DialectError(f"{d.name}.yaml: paths: '{template}' is claimed by {owners[shape]} too")
            owners[shape] = d.name
    if dialects[NATIONAL].translates or dialects[NATIONAL].paths:
        raise DialectError(f"{NATIONAL}.yaml: the national dialect is the canonical interface: it has no rules and no paths of its own")
    return dialects


def _build(check: _Check, body: dict[str, Any]) -> Dialect:
    auth = check.mapping(body.get("auth"), "auth", {"schemes", "tif_nonce_min"})
    schemes = None
    if "schemes" in auth:
        chosen = check.texts(auth["schemes"], "auth.schemes")
        for i, scheme in enumerate(chosen):
            if scheme not in SCHEMES:
                raise check.fail(f"auth.schemes[{i}]", f"'{scheme}' is not one of {', '.join(SCHEMES)}")
        if not chosen:
            raise check.fail("auth.schemes", "names at least one scheme")
        schemes = frozenset(chosen)
    nonce_min = auth.get("tif_nonce_min")
    if nonce_min is not None and (not isinstance(nonce_min, int) or isinstance(nonce_min, bool) or not 1 <= nonce_min <= 64):
        raise check.fail("auth.tif_nonce_min", "must be a whole number from 1 to 64")
    errors = check.mapping(body.get("gateway_errors"), "gateway_errors", {"wrapper", "codes"})
    wrapper = None
    if errors:
        wrapper = check.mapping(errors.get("wrapper"), "gateway_errors.wrapper")
        if "{message}" not in repr(wrapper):
            raise check.fail("gateway_errors.wrapper", "must carry the refusal's text: put \"{message}\" where it goes")
    codes = check.mapping(errors.get("codes"), "gateway_errors.codes", REFUSAL_REASONS)
    codes = {k: check.text(str(v), f"gateway_errors.codes.{k}") for k, v in codes.items()}
    envelope = check.mapping(body.get("envelope"), "envelope", {"blank"})
    blank = {check.text(k, f"envelope.blank.{k}", pattern=_IDENT, what="an envelope field"): check.text(str(v), f"envelope.blank.{k}")
             for k, v in check.mapping(envelope.get("blank"), "envelope.blank").items()}
    answer = check.mapping(body.get("answer"), "answer", {"infcode", "empty_output"})
    infcode = answer.get("infcode", "number")
    if infcode not in ("number", "string"):
        raise check.fail("answer.infcode", f"'{infcode}' is number (0) or string (\"0\")")
    keeps_empty = "empty_output" not in answer
    empty = answer.get("empty_output")
    if not keeps_empty and empty not in ({}, "", None):
        raise check.fail("answer.empty_output", "is {} (an empty object), \"\" (an empty string) or null")
    dates = check.mapping(body.get("dates"), "dates", {"datetime_fields", "date_fields", "in", "out"})
    dates_in = tuple(check.date_format(v, f"dates.in[{i}]") for i, v in enumerate(dates.get("in") or []))
    out = check.mapping(dates.get("out"), "dates.out", {"datetime", "date"})
    dates_out = None
    if out:
        if set(out) != {"datetime", "date"}:
            raise check.fail("dates.out", "names both datetime and date")
        dates_out = (check.date_format(out["datetime"], "dates.out.datetime"), check.date_format(out["date"], "dates.out.date"))
        if (dates_out[0].strptime, dates_out[1].strptime) == (NATIONAL_DATETIME, NATIONAL_DATE):
            dates_out = None  # the national forms: nothing to rewrite
    datetime_fields = check.texts(dates.get("datetime_fields"), "dates.datetime_fields")
    date_fields = check.texts(dates.get("date_fields"), "dates.date_fields")
    if (dates_in or dates_out) and not (datetime_fields or date_fields):
        raise check.fail("dates", "name the fields the formats apply to (datetime_fields, date_fields)")
    rules = {infno: _rule(check, value, f"transactions.{infno}") for infno, value in body.get("transactions", {}).items()}
    regions = check.texts(body.get("regions"), "regions", pattern=re.compile(r"^\d{2,6}$"), what="a region code or its leading digits")
    return Dialect(
        name=body["name"], title=str(body.get("title") or ""), extends=str(body.get("extends") or ""),
        sources=check.texts(body.get("sources"), "sources"), regions=regions,
        paths=tuple(_path(check, p, f"paths[{i}]") for i, p in enumerate(check.texts(body.get("paths"), "paths"))),
        schemes=schemes, tif_nonce_min=nonce_min, error_wrapper=wrapper, error_codes=codes, blank=blank, infcode=infcode,
        empty_output=empty, keeps_empty_output=keeps_empty, datetime_fields=datetime_fields, date_fields=date_fields,
        dates_in=dates_in, dates_out=dates_out, rules={k: v for k, v in rules.items() if not v.empty},
    )


def load_folder(folder: Path | Any) -> Dialects:
    """Every ``*.yaml`` of a folder (a path or an importlib resource), checked."""
    documents = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        stem = entry.name.removesuffix(".yaml")
        try:
            documents[stem] = (entry.name, yaml.safe_load(entry.read_text(encoding="utf-8")))
        except yaml.YAMLError as error:
            raise DialectError(f"{entry.name}: not YAML: {error}") from None
    return Dialects(parse(documents))


@cache
def bundled() -> Dialects:
    """The dialects shipped in ``yibao/gateway/dialects``, loaded and checked once."""
    return load_folder(resources.files("yibao.gateway") / "dialects")


class Dialects:
    """The loaded dialects, and which one a call speaks."""

    def __init__(self, dialects: Mapping[str, Dialect]) -> None:
        self.by_name = dict(dialects)
        self._patterns = [(_template_pattern(template), name) for template, name in self.routes()]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> Dialect:
        return self.by_name[name]

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def routes(self) -> list[tuple[str, str]]:
        """(path template, dialect name) for every path a dialect declares."""
        return [(template, d.name) for d in self.by_name.values() for template in d.paths]

    def prefixes(self) -> dict[str, str]:
        """The first segment of every dialect path ("/ebus") → the dialect that answers what matches none of them
        there (the first to declare one), so a client of the dialect never reads a framework 404 page."""
        found: dict[str, str] = {}
        for template, name in self.routes():
            found.setdefault("/" + template.split("/")[1], name)
        return found

    def match(self, path: str) -> tuple[str, str | None] | None:
        """(dialect, infno from the path or None) for a request path that one of the templates matches."""
        for pattern, name in self._patterns:
            found = pattern.match(path)
            if found:
                return name, found.groupdict().get("infno")
        return None

    def for_region(self, admdvs: str) -> str | None:
        """The dialect an institution of the region is bound to when its key is issued: the longest matching
        ``regions`` prefix; None (national, or whatever the path selects) elsewhere."""
        best = None
        for d in self.by_name.values():
            for prefix in d.regions:
                if admdvs.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                    best = (prefix, d.name)
        return best[1] if best else None

    def speaking(self, bound: str | None, by_path: str | None) -> Dialect:
        """The dialect of a call: the key's binding; for a key bound to none, the one its path selects."""
        name = bound or by_path or NATIONAL
        found = self.by_name.get(name)
        if found is None:  # a binding to a file no longer shipped: refused until an operator binds another
            raise AuthError(f"the access key is bound to dialect '{name}', which this platform does not ship "
                            f"(`yibao keys dialect` binds one of: {', '.join(self.names())})")
        return found

    def translation(self, bound: str | None, by_path: str | None, infno: str | None = None) -> Translation | None:
        """A translation for the call, or None when it speaks the national interface (nothing to do)."""
        if not bound and not by_path:
            return None
        speaking = self.speaking(bound, by_path)
        return Translation(speaking, infno or "") if speaking.translates else None


def _template_pattern(template: str) -> re.Pattern[str]:
    """A path template as a regular expression: {infno} a transaction number, other placeholders any one segment."""
    parts = []
    for segment in template.split("/")[1:]:
        name = _PLACEHOLDER.fullmatch(segment)
        if name is None:
            parts.append(re.escape(segment))
        elif name.group(1) == "infno":
            parts.append(r"(?P<infno>\d{4,5}[A-Z]?)")
        else:
            parts.append(r"[^/]+")
    return re.compile("^/" + "/".join(parts) + "/?$")
