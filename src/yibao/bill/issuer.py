"""The background issuer: every ``bill_issue_interval_s`` it bills the settlements that have no bill yet, in rounds of
a few dozen (each its own short transaction), until none is left; started and stopped with the app."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from yibao.bill import service
from yibao.config import Settings
from yibao.store.db import Database

log = structlog.get_logger("yibao.bill")


class Issuer:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.settings.bill_issue_interval_s > 0:
            self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.bill_issue_interval_s)
            try:
                while await self.db.run(lambda: service.issue_pending(self.db, self.settings), off_loop=True) >= service.BATCH:
                    await asyncio.sleep(0)  # a full round: more are waiting; let the loop serve requests in between
            except Exception:  # a failed round must not end the loop: the next one retries
                log.warning("bill issuing round failed", exc_info=True)
