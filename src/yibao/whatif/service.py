"""The what-if: a year's settlements read once, replayed under the policy in force and under a changed one on every core.

Nothing is written: the reads run in one read-only unit of work, the replays in worker processes that never open the
database. The policy in force is replayed too (not only the changed one) so that the change is measured between two
replays of the same facts; how closely the current replay matches what was recorded is reported beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from yibao.policy.parameters import PolicyBook, load_checked
from yibao.store.db import Database
from yibao.whatif import history
from yibao.whatif.replay import Books, SettlementFacts, replay_person
from yibao.whatif.report import Summary

_books: tuple[Books, Books] | None = None


def _load(current: str, changed: str) -> None:
    global _books
    _books = (Books(load_checked(Path(current))), Books(load_checked(Path(changed))))


def summarise(current: Books, changed: Books, people: list[list[SettlementFacts]]) -> Summary:
    summary = Summary()
    for settlements in people:
        summary.add_person(replay_person(current, settlements), replay_person(changed, settlements))
    return summary


def _work(people: list[list[SettlementFacts]]) -> Summary:
    assert _books is not None, "the worker's books are loaded by its initializer"
    return summarise(*_books, people)


def run(db: Database, year: int, current_root: Path, changed_root: Path, *, workers: int | None = None, batch: int = 2000,
        progress: Callable[[int], None] | None = None, total: Callable[[int], None] | None = None) -> Summary:
    """Replay ``year`` under both policy directories (checked first: a broken one raises PolicyError before any work)."""
    current_book: PolicyBook = load_checked(current_root)
    changed_book: PolicyBook = load_checked(changed_root)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    summary = Summary()
    with db.unit_of_work(write=False) as session:
        if total is not None:
            total(history.count(session, year))
        batches = history.people_batches(session, year, batch)
        if workers <= 1:
            books = (Books(current_book), Books(changed_book))
            for people in batches:
                summary.merge(summarise(*books, people))
                if progress:
                    progress(sum(len(s) for s in people))
            return summary
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_load,
                                 initargs=(str(current_root), str(changed_root))) as pool:
            pending: list[tuple[Future[Summary], int]] = []
            for people in batches:
                pending.append((pool.submit(_work, people), sum(len(s) for s in people)))
                while len(pending) >= 2 * workers:  # bounded: the reader never runs far ahead of the replays
                    _collect(pending.pop(0), summary, progress)
            for item in pending:
                _collect(item, summary, progress)
    return summary


def _collect(item: tuple[Future[Summary], int], summary: Summary, progress: Callable[[int], None] | None) -> None:
    future, settlements = item
    summary.merge(future.result())
    if progress:
        progress(settlements)
