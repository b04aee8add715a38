"""The hub's clearing windows (yibao.federation.hub) on the suite's database: statements net to the fen, a settlement
one side has and the other has not is reported with its id, a late side clears with its partner in a later window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import delete

from yibao.core.errors import Conflict
from yibao.federation import hub
from yibao.federation.models import ClearingEntry, ClearingWindow
from yibao.store.db import Database


@pytest.fixture
def clean(db: Database) -> Iterator[Database]:
    def wipe() -> None:
        with db.unit_of_work() as session:
            session.execute(delete(ClearingEntry))
            session.execute(delete(ClearingWindow))

    wipe()
    yield db
    wipe()


def word(side: str, setl_id: str, amount: int, when: str = "2019-03-05T10:00:00", home: str = "370100", care: str = "440300") -> dict:
    return {"side": side, "setl_id": setl_id, "home": home, "care": care, "amount_fen": amount, "setl_time": when}


def test_a_month_nets_to_the_fen_and_names_what_does_not_match(clean: Database) -> None:
    with clean.unit_of_work() as session:
        for event in (word("home", "S1", 12_345), word("care", "S1", 12_345),         # agreed
                      word("home", "S2", 500), word("care", "S2", 501),                 # amounts differ
                      word("care", "S3", 700),                                          # the home never said it paid
                      word("home", "S4", 2_000, home="440300", care="370100"), word("care", "S4", 2_000, home="440300", care="370100"),
                      word("home", "S1", 99_999)):                                     # a repeat changes nothing
            hub.record(session, event)
        result = hub.close(session, "201903")
    assert result["net_positions_fen"] == {"370100": -12_345 + 2_000, "440300": 12_345 - 2_000}
    assert sum(result["net_positions_fen"].values()) == 0
    assert [(m["setl_id"], m["home_says_fen"], m["care_says_fen"]) for m in result["mismatches"]] == [("S2", 500, 501), ("S3", None, 700)]
    mine = hub.for_region(result, "440300")
    assert mine["net_position_fen"] == 10_345 and {p["home"] for p in mine["pairs"]} == {"370100", "440300"}
    with clean.unit_of_work() as session, pytest.raises(Conflict):
        hub.close(session, "201903")


def test_a_side_after_its_month_closed_clears_with_its_partner_in_the_next_window(clean: Database) -> None:
    with clean.unit_of_work() as session:
        hub.record(session, word("care", "L1", 800, when="2019-03-31T23:59:00"))
        march = hub.close(session, "201903")
        assert march["mismatches"][0]["setl_id"] == "L1" and march["net_positions_fen"] == {}
        hub.record(session, word("home", "L1", 800, when="2019-03-31T23:59:00"))  # the home's word, late
        april = hub.statement(session, hub.window_of(datetime(2019, 4, 1)))
    assert april["mismatches"] == [] and april["net_positions_fen"] == {"370100": -800, "440300": 800}


def test_a_month_is_named_right_and_closed_only_at_the_hub(clean: Database) -> None:
    from yibao.core.errors import InputError

    with clean.unit_of_work() as session:
        for bad in ("202613", "000000", "2026-11", "20261", "209901"):
            with pytest.raises(InputError):
                hub.close(session, bad)
