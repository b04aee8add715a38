"""Code tables (字典): loaded from YAML data, queried by type, region and date (1901)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yibao.codes.models import NATIONAL, CodeEntry
from yibao.core import clock
from yibao.core.errors import InputError


@dataclass(frozen=True)
class CodeValue:
    type: str
    value: str
    label: str
    parent_value: str
    sort: int
    admdvs: str


def parse_code_tables(document: dict[str, Any], source: str = "code_tables.yaml") -> tuple[str, date, list[CodeValue]]:
    """Validate the YAML document; errors name the file and key."""
    try:
        version = str(document["version"])
        begndate = document["begndate"]
        tables = document["tables"]
    except (KeyError, TypeError) as missing:
        raise InputError(f"{source}: missing top-level key {missing}") from None
    if not isinstance(begndate, date):
        raise InputError(f"{source}: begndate must be a date (yyyy-mm-dd)")
    values: list[CodeValue] = []

    def add(admdvs: str, name: str, table: Any) -> None:
        if not isinstance(table, dict) or not isinstance(table.get("values"), dict) or not table["values"]:
            raise InputError(f"{source}: tables.{name} needs a non-empty 'values' mapping")
        parents = table.get("parents") or {}
        for sort, (value, label) in enumerate(table["values"].items(), start=1):
            if not str(value).strip() or not str(label).strip():
                raise InputError(f"{source}: tables.{name}.values has an empty value or label")
            values.append(CodeValue(name, str(value), str(label), str(parents.get(str(value), "")), sort, admdvs))

    for name, table in tables.items():
        add(NATIONAL, name, table)
    for admdvs, local_tables in (document.get("local") or {}).items():
        for name, table in local_tables.items():
            add(str(admdvs), name, table)
    return version, begndate, values


def bundled_code_tables() -> tuple[str, date, list[CodeValue]]:
    text = resources.files("yibao.codes.data").joinpath("code_tables.yaml").read_text(encoding="utf-8")
    return parse_code_tables(yaml.safe_load(text))


def load(session: Session, version: str, begndate: date, values: list[CodeValue]) -> int:
    """Insert values not yet present (type, value, region); returns how many were added."""
    existing = {(e.type, e.value, e.admdvs) for e in session.execute(select(CodeEntry.type, CodeEntry.value, CodeEntry.admdvs))}
    created = clock.now()
    added = [
        CodeEntry(type=v.type, value=v.value, label=v.label, parent_value=v.parent_value, sort=v.sort, admdvs=v.admdvs,
                  vali_flag="1", begndate=begndate, version=version, create_date=created)
        for v in values
        if (v.type, v.value, v.admdvs) not in existing
    ]
    session.add_all(added)
    return len(added)


def query(session: Session, type_: str, admdvs: str | None, on: date, vali_flag: str | None, parent_value: str | None) -> list[CodeEntry]:
    regions = [NATIONAL] + ([admdvs] if admdvs and admdvs != NATIONAL else [])
    stmt = (
        select(CodeEntry)
        .where(CodeEntry.type == type_, CodeEntry.admdvs.in_(regions), CodeEntry.begndate <= on)
        .where(or_(CodeEntry.enddate.is_(None), CodeEntry.enddate >= on))
        .order_by(CodeEntry.admdvs, CodeEntry.sort, CodeEntry.value)
    )
    if vali_flag:
        stmt = stmt.where(CodeEntry.vali_flag == vali_flag)
    if parent_value:
        stmt = stmt.where(CodeEntry.parent_value == parent_value)
    return list(session.scalars(stmt))


def labels(session: Session, type_: str) -> dict[str, str]:
    return dict(session.execute(select(CodeEntry.value, CodeEntry.label).where(CodeEntry.type == type_)).tuples())


def entry_wire(entry: CodeEntry) -> dict[str, Any]:
    return {
        "type": entry.type,
        "label": entry.label,
        "value": entry.value,
        "parent_value": entry.parent_value,
        "sort": entry.sort,
        "vali_flag": entry.vali_flag,
        "create_user": entry.create_user,
        "create_date": clock.fmt_datetime(entry.create_date if isinstance(entry.create_date, datetime) else None),
        "version": entry.version,
    }
