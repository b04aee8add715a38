"""What the gateway tells a call log about each verified call, and the log that keeps nothing.

The gateway does not know who keeps the log (today the vendors' console, `yibao.console.service.MessageLog`):
`yibao.app` passes one in, so the gateway imports no domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from yibao.gateway.auth import Caller
    from yibao.store.db import Database


@dataclass(slots=True)
class Trace:
    """What the gateway knows of a call before it is parsed: the raw body, when it started, from where."""

    body: bytes
    started: float
    ip: str = ""
    received: datetime | None = None  # the call's arrival (Beijing wall time): the message's time
    dialect: str = ""  # the regional dialect the call was translated from ("" national)


class CallLog(Protocol):
    def answered(self, session: Session, trace: Trace, caller: Caller, infno: str, msgid: str, reply: Any) -> Any:
        """Record a served call inside its transaction; hand the reply back."""

    def refused(self, session: Session, trace: Trace, caller: Caller, infno: str, err_msg: str, reply: Any) -> None:
        """Record a verified caller's refusal inside the refusal's transaction."""

    def refused_apart(self, db: Database, trace: Trace, caller: Caller, infno: str, err_msg: str, reply: Any) -> None:
        """Record a call that failed inside the platform, in a transaction of its own; never raises."""

    def prune(self, session: Session) -> None:
        """Drop what the log no longer keeps (the gateway's housekeeping calls it every few thousand calls)."""


class NoCallLog:
    """Keeps nothing: a gateway run without the console (benchmarks of the bare gateway, embedded use)."""

    def answered(self, session: Session, trace: Trace, caller: Caller, infno: str, msgid: str, reply: Any) -> Any:
        return reply

    def refused(self, session: Session, trace: Trace, caller: Caller, infno: str, err_msg: str, reply: Any) -> None:
        return None

    def refused_apart(self, db: Database, trace: Trace, caller: Caller, infno: str, err_msg: str, reply: Any) -> None:
        return None

    def prune(self, session: Session) -> None:
        return None
