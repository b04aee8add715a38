"""The national hub: routes calls between province nodes and clears what they owe each other, month by month.

Clearing works like settlement windows (Mojaloop): every settlement of care away from home reaches the hub twice,
once from the home (it paid) and once from the place of care (it was paid), as events over JetStream. A month's
window closes into a statement: per pair of regions what each side says, each region's net position over the
settlements both sides agree on, and every settlement one side has and the other has not (or with another amount).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yibao.core import clock
from yibao.core.errors import Conflict, InputError
from yibao.federation.models import ClearingEntry, ClearingWindow
from yibao.registry.models import Person


def window_of(when: datetime) -> str:
    return f"{when:%Y%m}"


def _open_window(session: Session, window: str) -> str:
    """The window an entry of ``window`` goes into: its own while open, else the first open one after it."""
    while True:
        found = session.get(ClearingWindow, window)
        if found is None:
            session.add(ClearingWindow(window=window, state="open", closed_at=None, statement=""))
            session.flush()
            return window
        if found.state == "open":
            return window
        year, month = int(window[:4]), int(window[4:])
        window = f"{year + month // 12}{month % 12 + 1:02d}"


def record(session: Session, event: dict[str, Any]) -> bool:
    """One side's word on one settlement; a repeat changes nothing. False when it was already recorded."""
    side, setl_id = str(event["side"]), str(event["setl_id"])
    if side not in ("home", "care"):
        raise InputError(f"unknown clearing side '{side[:10]}'")
    if session.get(ClearingEntry, (side, setl_id)) is not None:
        return False
    setl_time = datetime.fromisoformat(str(event["setl_time"]))
    # beside the other side's word when it came first (its window, while open), else in the settlement's month
    partner = session.get(ClearingEntry, ("care" if side == "home" else "home", setl_id))
    window = _open_window(session, partner.window if partner is not None else window_of(setl_time))
    session.add(ClearingEntry(side=side, setl_id=setl_id, window=window, home_admdvs=event["home"],
                              care_admdvs=event["care"], amount_fen=int(event["amount_fen"]), setl_time=setl_time,
                              received_at=clock.now()))
    session.flush()
    return True


def statement(session: Session, window: str) -> dict[str, Any]:
    """The window's statement as it stands (closed: as it was closed)."""
    window = month(window)
    found = session.get(ClearingWindow, window)
    if found is not None and found.state == "closed":
        return json.loads(found.statement)
    entries = session.scalars(select(ClearingEntry).where(ClearingEntry.window == window)).all()
    by_settlement: dict[str, dict[str, ClearingEntry]] = defaultdict(dict)
    for entry in entries:
        by_settlement[entry.setl_id][entry.side] = entry
    # a side that came after its partner's window closed is in a later window: the pair clears there, in the later one
    alone = [setl_id for setl_id, sides in by_settlement.items() if len(sides) == 1]
    for entry in session.scalars(select(ClearingEntry).where(ClearingEntry.setl_id.in_(alone), ClearingEntry.window != window)):
        if entry.window < window:
            by_settlement[entry.setl_id][entry.side] = entry
    pairs: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"home_says": 0, "care_says": 0, "agreed": 0, "settlements": 0})
    positions: dict[str, int] = defaultdict(int)
    mismatches = []
    for setl_id, sides in sorted(by_settlement.items()):
        any_side = sides.get("home") or sides["care"]
        pair = pairs[(any_side.home_admdvs, any_side.care_admdvs)]
        pair["settlements"] += 1
        home_says = sides["home"].amount_fen if "home" in sides else None
        care_says = sides["care"].amount_fen if "care" in sides else None
        pair["home_says"] += home_says or 0
        pair["care_says"] += care_says or 0
        if home_says is None or care_says is None or home_says != care_says:
            mismatches.append({"setl_id": setl_id, "home": any_side.home_admdvs, "care": any_side.care_admdvs,
                               "home_says_fen": home_says, "care_says_fen": care_says})
            continue
        pair["agreed"] += home_says
        positions[any_side.care_admdvs] += home_says     # the place of care is owed it
        positions[any_side.home_admdvs] -= home_says     # the home owes it
    return {"window": window, "state": found.state if found else "open",
            "pairs": [{"home": h, "care": c, **figures} for (h, c), figures in sorted(pairs.items())],
            "net_positions_fen": dict(sorted(positions.items())), "mismatches": mismatches}


def month(window: str) -> str:
    """A clearing window's name checked: a month (YYYYMM) that has begun."""
    if len(window) != 6 or not window.isdigit() or not 1 <= int(window[4:]) <= 12 or int(window[:4]) < 2000:
        raise InputError(f"'{window[:10]}' is not a month (YYYYMM)", field="window")
    if window > window_of(clock.now()):
        raise InputError(f"{window} has not begun: a month is closed at or after its end", field="window")
    return window


def is_hub(session: Session) -> bool:
    """A hub's database holds no insured people (a province node's does)."""
    return session.scalar(select(Person.psn_no).limit(1)) is None


def close(session: Session, window: str) -> dict[str, Any]:
    """Close a month: later entries of it go to the next open window; the statement is kept as closed."""
    window = month(window)
    found = session.get(ClearingWindow, window, with_for_update=True)
    if found is not None and found.state == "closed":
        raise Conflict(f"window {window} is already closed")
    if found is None:
        found = ClearingWindow(window=window, state="open", closed_at=None, statement="")
        session.add(found)
    result = statement(session, window)
    result["state"] = "closed"
    result["closed_at"] = clock.fmt_datetime(clock.now())
    found.state, found.closed_at, found.statement = "closed", clock.now(), json.dumps(result, ensure_ascii=False)
    session.flush()
    return result


def for_region(result: dict[str, Any], region: str) -> dict[str, Any]:
    """One region's statement: its pairs, its net position and the mismatches that involve it."""
    return {"window": result["window"], "state": result["state"], "region": region,
            "pairs": [p for p in result["pairs"] if region in (p["home"], p["care"])],
            "net_position_fen": result["net_positions_fen"].get(region, 0),
            "mismatches": [m for m in result["mismatches"] if region in (m["home"], m["care"])]}
