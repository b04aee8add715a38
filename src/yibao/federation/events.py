"""Background work of a federation process: the outbox relay (events to NATS JetStream), the durable consumers
(a node: confirmations of its reservations; the hub: clearing entries) and a node's sweeper (reservations the
place of care never confirmed). A node that was down catches up: its consumer is durable and its outbox kept."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog

from yibao.config import Settings
from yibao.core import clock, crypto
from yibao.core.errors import AuthError, YibaoError
from yibao.federation import care, home, hub, outbox
from yibao.federation.nodes import Federation
from yibao.federation.protocol import NODE, SIGNATURE, Unreachable
from yibao.store.db import Database

log = structlog.get_logger("yibao.federation")


async def _ensure_stream(js: Any) -> None:
    from nats.js.api import StreamConfig

    try:
        await js.stream_info(outbox.STREAM)
    except Exception:  # not there yet (or the server restarted without it): create it
        await js.add_stream(StreamConfig(name=outbox.STREAM, subjects=outbox.SUBJECTS))


def event_signature(key: bytes, node: str, subject: str, data: bytes) -> str:
    """An event's HMAC-SM3 under the key its node shares with the hub: the hub checks who says what it records."""
    return crypto.hmac_sm3_hex(key, f"{node}\n{subject}\n".encode() + data)


async def _relay(db: Database, js: Any, federation: Federation) -> int:
    events = await db.run(lambda: _unsent(db))
    sent = []
    for event_id, row_id, subject, payload in events:
        data = payload.encode()
        await js.publish(subject, data, headers={"Nats-Msg-Id": event_id, NODE: federation.admdvs,
                                                 SIGNATURE: event_signature(federation.key, federation.admdvs, subject, data)})
        sent.append(row_id)
    if sent:
        await db.run(lambda: _mark(db, sent))
    return len(sent)


def _unsent(db: Database) -> list[tuple[str, int, str, str]]:
    with db.unit_of_work(write=False) as session:
        return [(e.event_id, e.id, e.subject, e.payload) for e in outbox.unsent(session)]


def _mark(db: Database, ids: list[int]) -> None:
    with db.unit_of_work() as session:
        outbox.mark_sent(session, ids)


def _confirm(db: Database, federation: Federation, link: care.Link, event: dict[str, Any]) -> None:
    """A place of care says it committed a reservation. The message is only a prompt (anyone on the queue could send
    one): the home asks that node through the hub, signed, and confirms only what it says it settled."""
    key = str(event["msg_key"])
    with db.unit_of_work(write=False) as session:
        found = home.reservation(session, key)
    if found is None or found.state != "reserved":
        return
    state = link.call(found.origin_admdvs, "status", {"msg_key": key}).get("state")
    with db.unit_of_work() as session:
        if state == "settled":
            home.confirm(session, key, federation.admdvs)
        elif state == "abandoned":
            home.release(session, key)


def _record(db: Database, federation: Federation, node: str, signature: str, subject: str, data: bytes) -> None:
    """A node's clearing word, recorded once its signature holds and it speaks for its own side only."""
    key = federation.key_of(node)
    if key is None or not crypto.equal(signature, event_signature(key, node, subject, data)):
        raise AuthError(f"clearing event not signed by a known node ('{node[:12]}')")
    event = json.loads(data)
    speaker = event.get("home") if event.get("side") == "home" else event.get("care")
    if str(speaker or "")[:2] != node[:2]:
        raise AuthError(f"node {node} cannot speak for the {event.get('side')} side of {speaker}")
    with db.unit_of_work() as session:
        hub.record(session, event)


def sweep(db: Database, federation: Federation, link: care.Link, older_than_s: float) -> dict[str, int]:
    """Ask the place of care about each reservation it has not confirmed: confirm what it settled, release the rest."""
    with db.unit_of_work(write=False) as session:
        stale = home.stale_reservations(session, clock.now() - timedelta(seconds=older_than_s))
    done = {"confirmed": 0, "released": 0, "unanswered": 0}
    for key, origin in stale:
        try:
            state = link.call(origin, "status", {"msg_key": key}).get("state")
        except YibaoError:
            done["unanswered"] += 1
            continue
        with db.unit_of_work() as session:
            if state == "settled":
                home.confirm(session, key, federation.admdvs)
                done["confirmed"] += 1
            elif state == "abandoned":
                home.release(session, key)
                done["released"] += 1
    return done


class Worker:
    """The background tasks of one process, started and stopped with the app."""

    def __init__(self, db: Database, federation: Federation, settings: Settings, link: care.Link | None) -> None:
        self.db, self.federation, self.settings, self.link = db, federation, settings, link
        self.tasks: list[asyncio.Task[Any]] = []
        self.nc: Any = None

    async def start(self) -> None:
        if self.settings.nats_url:
            self.tasks.append(asyncio.create_task(self._nats()))
        if self.federation.role == "node" and self.link is not None:
            self.tasks.append(asyncio.create_task(self._every(self.settings.federation_sweep_s, self._sweep)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _every(self, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # one failed round must not end the loop: the next one retries
                log.warning("federation background round failed", exc_info=True)

    async def _sweep(self) -> None:
        link = self.link
        assert link is not None
        done = await self.db.run(lambda: sweep(self.db, self.federation, link, self.settings.federation_reservation_s))
        if done["confirmed"] or done["released"]:
            log.info("reservations swept", **done)

    async def _nats(self) -> None:
        import nats

        while True:  # connect (and reconnect after the server was away)
            try:
                self.nc = await nats.connect(self.settings.nats_url, max_reconnect_attempts=-1, connect_timeout=2)
                js = self.nc.jetstream()
                await _ensure_stream(js)
                consumer = await self._subscribe(js)
                while True:
                    await _relay(self.db, js, self.federation)
                    if consumer is not None:
                        await self._consume(consumer)
                    else:
                        await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("NATS unavailable; the outbox keeps the events", exc_info=True)
                if self.nc is not None:
                    with contextlib.suppress(Exception):
                        await self.nc.close()
                    self.nc = None
                await asyncio.sleep(1)

    async def _subscribe(self, js: Any) -> Any:
        if self.federation.role == "hub":
            return await js.pull_subscribe("yibao.clearing.>", durable="hub-clearing", stream=outbox.STREAM)
        return await js.pull_subscribe(f"yibao.node.{self.federation.admdvs[:2]}.>", durable=f"node-{self.federation.admdvs[:2]}",
                                       stream=outbox.STREAM)

    async def _consume(self, consumer: Any) -> None:
        import nats.errors

        try:
            messages = await consumer.fetch(100, timeout=0.2)
        except (nats.errors.TimeoutError, TimeoutError):  # nothing to fetch (nats-py raises either): not a lost connection
            return
        for message in messages:
            headers = message.headers or {}
            try:
                if self.federation.role == "hub":
                    await self.db.run(functools.partial(_record, self.db, self.federation, headers.get(NODE, ""),
                                                        headers.get(SIGNATURE, ""), message.subject, message.data))
                elif self.link is not None:
                    await self.db.run(functools.partial(_confirm, self.db, self.federation, self.link, json.loads(message.data)))
            except Unreachable:  # the place of care cannot answer now: the sweeper asks again later
                pass
            except (YibaoError, ValueError, KeyError) as error:  # forged, malformed, or about a reservation decided meanwhile
                log.warning("federation event refused", subject=message.subject, error=str(error)[:200])
            await message.ack()
