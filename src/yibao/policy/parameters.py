"""Loading policy parameters from YAML.

One directory per region (``admdvs``), one YAML file per parameter family. A leaf is a
mapping from effective date to value; the value in force on a day is the one with the latest
date not after it. Each file names its source (``reference``) and its unit (``yuan``,
``ratio``, ``tiers``, ``count`` (a whole number, e.g. months) or ``cert_types``, a list of mdtrt_cert_type codes); a subtree
may override the unit with ``_unit``. Every value is
checked at load, and errors name the file, the key and the date.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from yibao.core.errors import InputError

FAMILIES = ("deductible", "pool_ratio", "caps", "second_tier", "catalogue", "credential", "chronic", "treatment")
UNITS = ("yuan", "ratio", "tiers", "count", "cert_types")
CERT_TYPES = ("01", "02", "03")  # mdtrt_cert_type: e-credential, resident ID card, social-security card


class PolicyError(InputError):
    """A policy file is missing, malformed or holds an impossible value."""


@dataclass(frozen=True)
class Parameter:
    """One parameter's history: sorted effective dates and the value from each."""

    key: str
    unit: str
    dates: tuple[date, ...]
    values: tuple[Any, ...]

    def at(self, on: date) -> Any:
        i = bisect_right(self.dates, on)
        if i == 0:
            raise PolicyError(f"{self.key} has no value in force on {on.isoformat()} (first from {self.dates[0].isoformat()})")
        return self.values[i - 1]


def _convert(value: Any, unit: str, where: str) -> Any:
    try:
        if unit == "yuan":
            amount = Decimal(str(value))
            if amount < 0 or amount != amount.quantize(Decimal("0.01")):
                raise PolicyError(f"{where}: {value} must be a non-negative amount in yuan with at most 2 decimals")
            return int(amount * 100)
        if unit == "ratio":
            ratio = Decimal(str(value))
            if not Decimal(0) <= ratio <= Decimal(1):
                raise PolicyError(f"{where}: {value} must be a ratio between 0 and 1")
            return ratio
        if unit == "tiers":
            if not isinstance(value, list) or not value:
                raise PolicyError(f"{where}: tiers must be a list of [from yuan, ratio]")
            tiers = [(_convert(t[0], "yuan", where), _convert(t[1], "ratio", where)) for t in value]
            if [t[0] for t in tiers] != sorted({t[0] for t in tiers}):
                raise PolicyError(f"{where}: tier thresholds must rise")
            return tuple(tiers)
        if unit == "count":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PolicyError(f"{where}: {value} must be a whole number, 0 or more")
            return value
        if unit == "cert_types":
            # quoted in YAML: an unquoted 01 would be read as the number 1
            if not isinstance(value, list) or any(not isinstance(c, str) or c not in CERT_TYPES for c in value):
                raise PolicyError(f"{where}: {value} must be a list of quoted credential types from {', '.join(CERT_TYPES)}")
            return frozenset(value)
    except (InvalidOperation, TypeError, IndexError, ValueError):
        raise PolicyError(f"{where}: '{value}' is not a valid {unit} value") from None
    raise PolicyError(f"{where}: unknown unit '{unit}' (use {', '.join(UNITS)})")


def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and bool(node) and all(isinstance(k, date) for k in node)


def parse_family(document: Any, source: str) -> dict[str, Parameter]:
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: must be a mapping")
    if not str(document.get("reference", "")).strip():
        raise PolicyError(f"{source}: 'reference' (the policy's source) is required")
    unit = document.get("unit")
    if unit not in UNITS:
        raise PolicyError(f"{source}: 'unit' must be one of {', '.join(UNITS)}")
    out: dict[str, Parameter] = {}

    def walk(node: Any, path: list[str], unit: str) -> None:
        if _is_leaf(node):
            key = ".".join(path)
            dates = tuple(sorted(node))
            values = tuple(_convert(node[d], unit, f"{source}: {key} on {d.isoformat()}") for d in dates)
            out[key] = Parameter(key, unit, dates, values)
            return
        if not isinstance(node, dict) or not node:
            raise PolicyError(f"{source}: {'.'.join(path) or '(top)'} must map keys to values by effective date (yyyy-mm-dd: value)")
        unit = node.get("_unit", unit)
        if unit not in UNITS:
            raise PolicyError(f"{source}: {'.'.join(path)}._unit must be one of {', '.join(UNITS)}")
        for k, child in node.items():
            if k in ("_unit", "reference", "unit") and not path:
                continue
            if k == "_unit":
                continue
            if isinstance(k, date):
                raise PolicyError(f"{source}: {'.'.join(path)} mixes dates with other keys")
            walk(child, [*path, str(k)], unit)

    walk(document, [], unit)
    return out


@dataclass
class PolicyBook:
    """Every region's parameters: ``book.value('370100', 'deductible', 'outpatient.310.in_service', day)``."""

    regions: dict[str, dict[str, dict[str, Parameter]]]
    references: dict[tuple[str, str], str]

    def has_region(self, admdvs: str) -> bool:
        return admdvs in self.regions

    def parameter(self, admdvs: str, family: str, key: str) -> Parameter:
        try:
            return self.regions[admdvs][family][key]
        except KeyError:
            if admdvs not in self.regions:
                raise PolicyError(f"no policy for region {admdvs}") from None
            raise PolicyError(f"{admdvs}/{family}.yaml has no parameter {key}") from None

    def value(self, admdvs: str, family: str, key: str, on: date) -> Any:
        return self.parameter(admdvs, family, key).at(on)

    def find(self, admdvs: str, family: str, key: str, on: date, default: Any = None) -> Any:
        try:
            return self.value(admdvs, family, key, on)
        except PolicyError:
            return default


def load_directory(root: Path | Any) -> PolicyBook:
    regions: dict[str, dict[str, dict[str, Parameter]]] = {}
    references: dict[tuple[str, str], str] = {}
    for region_dir in sorted(root.iterdir(), key=lambda p: p.name):
        if not region_dir.is_dir() or not region_dir.name.isdigit():
            continue
        families: dict[str, dict[str, Parameter]] = {}
        for family in FAMILIES:
            path = region_dir / f"{family}.yaml"
            source = f"{region_dir.name}/{family}.yaml"
            if not path.is_file():
                raise PolicyError(f"{source} is missing")
            try:
                document = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                raise PolicyError(f"{source}: not valid YAML ({error})") from None
            families[family] = parse_family(document, source)
            references[(region_dir.name, family)] = str(document["reference"])
        regions[region_dir.name] = families
    if not regions:
        raise PolicyError(f"no region directories under {root}")
    return PolicyBook(regions, references)


_bundled: PolicyBook | None = None


def bundled() -> PolicyBook:
    """The policy shipped with yibao (or the directory in YIBAO_POLICY_DIR), loaded once."""
    global _bundled
    if _bundled is None:
        import os

        custom = os.environ.get("YIBAO_POLICY_DIR")
        _bundled = load_directory(Path(custom) if custom else resources.files("yibao.policy.data"))
    return _bundled
