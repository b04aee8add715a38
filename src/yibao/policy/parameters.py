"""Loading policy parameters from YAML.

One directory per region (``admdvs``), one YAML file per parameter family. A leaf is a
mapping from effective date to value; the value in force on a day is the one with the latest
date not after it. Each file names its source (``reference``) and its unit (``yuan``,
``ratio``, ``tiers``, ``count`` (a whole number, e.g. months), ``cert_types`` (a list of mdtrt_cert_type codes),
``funds`` (a list of fund_pay_type codes), ``care_kinds`` (a list of kinds of care), ``factor`` (a positive multiplier, e.g. a
hospital level's coefficient) or ``payment_method`` (drg or dip); a subtree may override the unit
with ``_unit``. Every value is checked at load, and errors name the file, the key and the date.

The directory is the one shipped with yibao or ``YIBAO_POLICY_DIR``. ``yibao policy reload`` checks the files and their
test cases, then writes a stamp; a running process notices the stamp within ``YIBAO_POLICY_CHECK_S`` seconds (2 by
default), loads the whole directory again and swaps it in with one assignment; a directory that does not load is
refused with one line in the log and the policy in force stays. Edited files alone are not picked up: a file is
seen half written while it is being saved.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from yibao.core.errors import InputError

FAMILIES = ("deductible", "pool_ratio", "caps", "second_tier", "catalogue", "credential", "chronic", "treatment", "funds",
            "maternity", "drg", "credit")
UNITS = ("yuan", "ratio", "tiers", "count", "cert_types", "funds", "care_kinds", "factor", "payment_method")
# how a region pays hospitals for inpatient cases (drg.yaml): by DRG group (weight × rate) or by DIP packet (score × point value)
PAYMENT_METHODS = ("drg", "dip")
CERT_TYPES = ("01", "02", "03")  # mdtrt_cert_type: e-credential, resident ID card, social-security card
# fund_pay_type: employees' and residents' basic pooled funds, large-amount subsidy, civil-servant subsidy, residents'
# catastrophic insurance, medical assistance
FUND_CODES = ("310100", "390100", "330100", "320100", "390200", "610100")
# what a settlement pays for: general outpatient care, a stay, a pharmacy purchase, chronic/special-disease outpatient care
CARE_KINDS = ("outpatient", "inpatient", "pharmacy", "chronic")
STAMP = ".reload"  # written by `yibao policy reload`: a running process loads the directory again


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
        if unit == "factor":
            factor = Decimal(str(value))
            if not factor.is_finite() or factor <= 0 or factor != factor.quantize(Decimal("0.0001")):
                raise PolicyError(f"{where}: {value} must be a positive number with at most 4 decimals")
            return factor
        if unit == "payment_method":
            if value not in PAYMENT_METHODS:
                raise PolicyError(f"{where}: {value} must be one of {', '.join(PAYMENT_METHODS)}")
            return value
        if unit in ("funds", "care_kinds"):
            allowed = FUND_CODES if unit == "funds" else CARE_KINDS
            # an empty list is a value: e.g. no fund pays for pharmacy purchases
            if not isinstance(value, list) or any(not isinstance(c, str) or c not in allowed for c in value):
                raise PolicyError(f"{where}: {value} must be a list of quoted codes from {', '.join(allowed)}")
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
    # snapshots taken of this book (policy.service.policy_for): they go when a reload replaces the book
    snapshots: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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

    def children(self, admdvs: str, family: str, prefix: str) -> list[str]:
        """The names directly under a node: ``children('370100', 'chronic', 'ratio')`` → the disease codes."""
        head = f"{prefix}." if prefix else ""
        names = {k[len(head):].split(".", 1)[0] for k in self.regions.get(admdvs, {}).get(family, {}) if k.startswith(head)}
        return sorted(names)

    def effective_dates(self, admdvs: str) -> list[date]:
        """Every day on which one of the region's parameters changes."""
        return sorted({d for family in self.regions.get(admdvs, {}).values() for p in family.values() for d in p.dates})


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
                raise PolicyError(f"{source}: not valid YAML ({' '.join(str(error).split())})") from None  # one line
            families[family] = parse_family(document, source)
            references[(region_dir.name, family)] = str(document["reference"])
        regions[region_dir.name] = families
    if not regions:
        raise PolicyError(f"no region directories under {root}")
    return PolicyBook(regions, references)


def bundled_root() -> Path:
    """The policy directory: ``YIBAO_POLICY_DIR``, else the one shipped with yibao."""
    custom = os.environ.get("YIBAO_POLICY_DIR")
    return Path(custom) if custom else Path(str(resources.files("yibao.policy.data")))


def signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """What says the directory is ready to load again: the stamp `yibao policy reload` writes after it checked the files
    and their test cases. Not the files' own times: a file being written (an editor, a copy, a checkout) is seen half
    written, and a half-written file may still parse."""
    try:
        stat = (root / STAMP).stat()
    except FileNotFoundError:
        return ()
    return ((STAMP, stat.st_mtime_ns, stat.st_size),)


# Checks a book must pass before it is swapped in (the settlement engine registers one: every parameter its formulas
# read is present for every region); a check raises PolicyError.
CHECKS: list[Callable[[PolicyBook], None]] = []


def load_checked(root: Path) -> PolicyBook:
    book = load_directory(root)
    for check in CHECKS:
        check(book)
    return book


@dataclass(frozen=True)
class _Loaded:
    root: Path
    signature: tuple[tuple[str, int, int], ...]
    book: PolicyBook


_state: _Loaded | None = None
_refused: tuple[Path, tuple[tuple[str, int, int], ...]] | None = None  # a broken directory, reported once
_checked_at = 0.0
_lock = threading.Lock()
log = logging.getLogger("yibao.policy")


def _check_interval() -> float:
    try:
        return float(os.environ.get("YIBAO_POLICY_CHECK_S", "2"))
    except ValueError:
        return 2.0


def reload(root: Path | None = None) -> PolicyBook:
    """Load the directory now and put it in force; a broken one raises PolicyError and the policy in force stays."""
    global _state, _refused
    root = root or bundled_root()
    with _lock:
        seen = signature(root)
        try:
            book = load_checked(root)
        except PolicyError:
            _refused = (root, seen)
            raise
        _state = _Loaded(root, seen, book)  # one assignment: a reader sees the old book or the new, never a mix
        _refused = None
        return book


def bundled() -> PolicyBook:
    """The policy in force (the shipped directory or YIBAO_POLICY_DIR), loaded again when its files change."""
    global _checked_at
    state = _state
    if state is None:
        return reload()
    now = time.monotonic()
    if now - _checked_at < _check_interval():
        return state.book
    _checked_at = now
    root = bundled_root()
    seen = signature(root)
    if root == state.root and seen == state.signature:
        return state.book
    if _refused == (root, seen):
        return state.book
    try:
        book = reload(root)
    except PolicyError as error:
        # a half-edited or broken file must not stop settlements: keep what is in force, say why once
        log.error("policy in %s not reloaded, the policy in force stays: %s", root, error.message)
        return state.book
    log.info("policy reloaded from %s: regions %s", root, ", ".join(sorted(book.regions)))
    return book
